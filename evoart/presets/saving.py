"""Writing the user's presets: saving from a run or a render, renaming, deleting.

Nothing is written until everything has been checked, nothing is overwritten without
``force``, a shipped preset's name is never taken, and every file is written atomically
(``evoart.files.atomic_write_bytes``): weights first, then the JSON that refers to them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from .. import __version__
from ..files import atomic_write_bytes
from ..genome import Genome
from ..seeds import bytes_digest
from .loading import (
    _json_files,
    _path_in,
    _read_capped,
    check_state_fits,
    os_errors,
    read_preset_file,
    shipped_dir,
    state_bytes,
    user_dir,
)
from .model import (
    MAX_NOTES_CHARS,
    MAX_PRESET_BYTES,
    MAX_WEIGHTS_BYTES,
    PRESET_SUFFIX,
    RESOLUTIONS,
    WEIGHTS_SUFFIX,
    Preset,
    PresetError,
    WeightsRef,
    _check_provenance,
    validate_name,
)


def _shipped_names() -> set[str]:
    return {p.name[: -len(PRESET_SUFFIX)] for p in _json_files(shipped_dir())}


def check_name_free(name: str, force: bool = False) -> Path:
    """The user JSON path for a new preset ``name``, or PresetError when the name is not
    allowed or taken (by a shipped preset always; by a user preset unless ``force``)."""
    validate_name(name)
    if name in _shipped_names():
        raise PresetError(f"{name!r} is the name of a preset shipped with evoart; choose another name")
    path = _path_in(user_dir(), name)
    if path.exists() and not force:
        raise PresetError(f"a preset named {name!r} already exists ({path}); pass --force to replace it, "
                          "or choose another name")
    return path


def write_preset(preset: Preset, weights: bytes | None = None, *, resolution: int | None = None,
                 force: bool = False) -> Path:
    """Write ``preset`` (and the serialised ``weights`` trained at ``resolution``) into
    the user's folder; returns the JSON path. Weights first, then the JSON that refers to
    them, each atomically; a replaced preset's stale weights file is removed last."""
    path = check_name_free(preset.name, force)
    old_weights = None
    if path.exists():
        try:
            old = read_preset_file(path, origin="user", name_from_file=True)
            old_weights = old.weights_path
        except PresetError:
            pass
    ref = None
    if weights is not None:
        if resolution not in RESOLUTIONS:
            raise PresetError(f"weights need a resolution, one of {RESOLUTIONS}")
        ref = WeightsRef(f"{preset.name}{WEIGHTS_SUFFIX}", resolution, bytes_digest(weights), len(weights))
    out = Preset(preset.name, preset.genome, preset.notes, dict(preset.provenance), ref, path, "user")
    text = out.to_json().encode("utf-8")
    if len(text) > MAX_PRESET_BYTES:
        raise PresetError(f"preset {preset.name!r} would be {len(text)} bytes, over the {MAX_PRESET_BYTES} cap")
    if path.parent.exists() and not path.parent.is_dir():
        raise PresetError(f"your presets folder {path.parent} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if weights is not None:
            atomic_write_bytes(out.weights_path, weights)
        atomic_write_bytes(path, text)
        if old_weights is not None and old_weights != out.weights_path and old_weights.exists():
            old_weights.unlink()
    except OSError as exc:
        raise PresetError(
            f"cannot write {exc.filename or path}: {exc.strerror or exc}. Your presets live in {path.parent} "
            "(EVOART_HOME/presets when EVOART_HOME is set): make that folder writable, or set EVOART_HOME "
            "to a folder you can write.") from None
    return path


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def save_from_run(run_dir: Path, individual: str, name: str, *, with_weights: bool = False,
                  notes: str = "", force: bool = False) -> Path:
    """Keep an individual of a run as a user preset: its genome, where it came from and,
    with ``with_weights``, its trained generator. Refuses to overwrite without ``force``."""
    from ..store import DamagedFile, RunStore, StoreError

    validate_name(name)
    check_name_free(name, force)
    if len(notes) > MAX_NOTES_CHARS:
        raise PresetError(f"notes are {len(notes)} characters long, at most {MAX_NOTES_CHARS}")
    store = RunStore.open(Path(run_dir), readonly=True)
    try:
        try:
            row = store.individual(individual)
        except StoreError:
            ids = [r.id for r in store.individuals()]
            raise PresetError(f"run {store.name} has no individual {individual!r} "
                              f"(it has {ids[0]} ... {ids[-1]})" if ids else
                              f"run {store.name} has no individuals yet") from None
        record = store.config
        evolve = record.get("evolve", {})
        dataset = record.get("dataset", {})
        resolution = int(evolve.get("resolution", 32))
        genome = Genome.from_dict(row.genome)
        weights = None
        if with_weights:
            if row.status != "ok":
                raise PresetError(f"{individual} has no usable weights: its training {row.status}"
                                  + (f" ({row.reason})" if row.reason else "") + "; save it without --with-weights")
            try:
                state = store.load_generator_state(individual)
            except DamagedFile as exc:
                raise PresetError(f"{exc} Or keep {individual}'s genome alone: leave out --with-weights.") from None
            if state is None:
                raise PresetError(f"{individual} has no saved generator weights in {store.run_dir}")
            check_state_fits(genome, resolution, state, f"{individual}'s generator.pt")
            weights = state_bytes(state)
        provenance = {
            "source": "run",
            "run": store.name,
            "individual": individual,
            "generation": row.born,
            "genome_hash": row.genome_hash,
            "dataset": dataset.get("name"),
            "dataset_fingerprint": dataset.get("fingerprint"),
            "resolution": resolution,
            "seed": row.seed,
            "run_seed": evolve.get("seed"),
            "steps": (row.stats or {}).get("lineage_steps"),
            "metrics": {k: float(v) for k, v in store.scores(individual).items()},
            "evoart_version": store.versions.get("evoart", __version__),
            "created": _now(),
        }
    finally:
        store.close()
    provenance = {k: v for k, v in provenance.items() if v is not None}
    preset = Preset(name, genome, notes, provenance)
    return write_preset(preset, weights, resolution=resolution if weights else None, force=force)


def save_trained(name: str, genome: Genome, state: dict, resolution: int, *, notes: str = "",
                 provenance: dict | None = None, force: bool = False) -> Path:
    """Keep a generator trained outside a run (for example by ``evoart render``) as a
    user preset with weights."""
    validate_name(name)
    check_state_fits(genome, resolution, state, "the trained generator")
    prov = {**(provenance or {}), "created": _now(), "evoart_version": __version__, "resolution": resolution}
    _check_provenance(prov, "provenance")
    return write_preset(Preset(name, genome, notes, prov), state_bytes(state), resolution=resolution, force=force)


def _user_preset(name: str, verb: str) -> Preset:
    validate_name(name)
    path = _path_in(user_dir(), name)
    if not path.is_file():
        if _path_in(shipped_dir(), name).is_file():
            raise PresetError(f"{name!r} is shipped with evoart and cannot be {verb}; "
                              "only your own presets can")
        raise PresetError(f"you have no preset named {name!r} (in {user_dir()})")
    return read_preset_file(path, origin="user", name_from_file=True)


def delete_preset(name: str) -> list[Path]:
    """Delete a user preset and its weights; returns the removed files."""
    validate_name(name)
    path = _path_in(user_dir(), name)
    try:
        preset = _user_preset(name, "deleted")
        wp = preset.weights_path
    except PresetError:
        if not path.is_file():
            raise
        # a damaged preset can still be deleted, with the weights file its name implies
        guess = user_dir() / f"{name}{WEIGHTS_SUFFIX}"
        wp = guess if guess.is_file() else None
    removed = [path]
    with os_errors("delete"):
        path.unlink()
        if wp is not None and wp.exists():
            wp.unlink()
            removed.append(wp)
    return removed


def rename_preset(old: str, new: str, *, force: bool = False) -> Path:
    """Rename a user preset (and its weights file)."""
    preset = _user_preset(old, "renamed")
    validate_name(new)
    if new == old:
        raise PresetError(f"{old!r} already has that name")
    check_name_free(new, force)
    weights = None
    if preset.weights is not None:
        weights = _read_capped(preset.weights_path, MAX_WEIGHTS_BYTES, "a weights file")
        if bytes_digest(weights) != preset.weights.sha256:
            raise PresetError(f"{preset.weights_path} does not match its checksum; not renaming a damaged preset")
    renamed = Preset(new, preset.genome, preset.notes, preset.provenance)
    path = write_preset(renamed, weights, resolution=preset.resolution, force=force)
    with os_errors("remove the old name's file"):
        preset.path.unlink()
        if preset.weights_path is not None and preset.weights_path.exists():
            preset.weights_path.unlink()
    return path
