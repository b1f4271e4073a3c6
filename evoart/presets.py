"""Presets: the genomes an artist keeps, shares, re-renders and evolves from.

A preset is one human-readable JSON file::

    {"schema_version": 1, "kind": "evoart-preset", "name": "moth-wings", "notes": "...",
     "genome": {...}, "provenance": {"run": ..., "individual": ..., ...},
     "weights": null | {"file": "moth-wings.generator.pt", "resolution": 32,
                        "sha256": "...", "bytes": 123456}}

with, optionally, the trained generator kept next to it as a ``state_dict`` (loaded with
``weights_only=True``; nothing here ever loads a pickle). Shipped presets live in the
top-level ``presets/`` folder (installed as data files by ``pip install .``); the user's
live in ``user_dir()``. ``export_preset`` writes one zip file (the JSON and the weights)
for sharing, and ``import_preset`` reads it back, or a plain preset JSON.

Every reader here treats its input as untrusted: sizes are capped before anything is
parsed, every field is checked, names are checked before they become file names, and a
failure raises ``PresetError`` with a message meant for the user. Nothing is written
until everything has been checked, nothing is overwritten without ``force``, and every
file is written atomically. Only ``load_weights`` and the weight checks import torch.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sys
import unicodedata
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import __version__
from .errors import EvoartError
from .genome import Genome, GenomeError, describe, genome_from_dict

SCHEMA_VERSION = 1
KIND = "evoart-preset"
NAME_RE = r"[a-z0-9][a-z0-9._-]{0,63}"
_NAME = re.compile(NAME_RE)

PRESET_SUFFIX = ".json"
WEIGHTS_SUFFIX = ".generator.pt"
# A preset is a genome and a few notes: a few KB. Anything near the cap is not a preset,
# and parsing it would only waste memory (or be an attack on it).
MAX_PRESET_BYTES = 256 * 1024
MAX_NOTES_CHARS = 10_000
# The largest generator the genome's compute cap allows has a few million parameters
# (tens of MB); the cap leaves room without letting a bundle fill a disk.
MAX_WEIGHTS_BYTES = 256 * 1024 * 1024
BUNDLE_PRESET = "preset.json"
BUNDLE_WEIGHTS = "generator.pt"
BUNDLE_MEMBERS = (BUNDLE_PRESET, BUNDLE_WEIGHTS)
RESOLUTIONS = (8, 16, 32, 64, 128, 256)

ORIGINS = ("user", "shipped", "file")

# Provenance fields and their JSON types. A preset from a run fills most of them; a
# shipped one says where its design comes from ("reference").
PROVENANCE_FIELDS: dict[str, tuple[type, ...]] = {
    "source": (str,),               # "run", "shipped", "render", "imported"
    "reference": (str,),            # the paper or idea a hand-written genome follows
    "run": (str,),
    "individual": (str,),
    "generation": (int,),
    "genome_hash": (str,),
    "dataset": (str,),
    "dataset_fingerprint": (str,),
    "resolution": (int,),
    "seed": (int,),
    "run_seed": (int,),
    "steps": (int,),                # training steps behind the weights, ancestors included
    "metrics": (dict,),
    "evoart_version": (str,),
    "created": (str,),
    "derived_from": (str,),         # the preset this one was rendered or trained from
}


class PresetError(EvoartError):
    """A preset that cannot be read, written or found; the message is meant for the user."""


# ---- names and places --------------------------------------------------------------------

def validate_name(name: str) -> str:
    """Return ``name`` if it can name a preset (and so a file), else raise PresetError
    saying what is wrong with it."""
    if not isinstance(name, str) or name == "":
        raise PresetError("a preset name cannot be empty")
    shown = name.encode("unicode_escape").decode("ascii")
    rule = "names are 1 to 64 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise PresetError(f"preset name '{shown}' contains control characters; {rule}")
    if "/" in name or "\\" in name:
        raise PresetError(f"preset name '{shown}' contains a path separator; {rule}")
    if ".." in name:
        raise PresetError(f"preset name '{shown}' contains '..'; {rule}")
    if any(c.isspace() for c in name):
        raise PresetError(f"preset name '{shown}' contains spaces; {rule}")
    if len(name) > 64:
        raise PresetError(f"preset name '{shown[:70]}...' is {len(name)} characters long; {rule}")
    if _NAME.fullmatch(name) is None:
        hint = " (use lowercase)" if _NAME.fullmatch(name.lower()) else ""
        raise PresetError(f"preset name '{shown}' is not allowed{hint}; {rule}")
    return name


def user_dir() -> Path:
    """Where the user's presets live: ``$EVOART_HOME/presets`` when EVOART_HOME is set,
    else the platform's per-user data folder (``$XDG_DATA_HOME/evoart/presets`` or
    ``~/.local/share/evoart/presets`` on Linux, ``~/Library/Application Support/evoart/
    presets`` on macOS, ``%APPDATA%\\evoart\\presets`` on Windows): see ``evoart.paths``."""
    from .paths import user_presets_dir

    return user_presets_dir()


def shipped_dir() -> Path:
    """The folder of the presets that come with evoart.

    In a checkout (and an editable install) it is the repository's top-level
    ``presets/``. A regular ``pip install .`` installs those files as data files under
    ``<prefix>/share/evoart/presets``; the installed distribution's file list says where
    that prefix is (a venv, ``--user``, ``--prefix``)."""
    package = Path(__file__).resolve().parent
    checkout = package.parent / "presets"
    if checkout.is_dir() and (package.parent / "pyproject.toml").is_file():
        return checkout
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        dist = distribution("evoart")
        for f in dist.files or ():
            parts = Path(str(f)).parts
            if len(parts) >= 4 and parts[-4:-1] == ("share", "evoart", "presets"):
                return Path(dist.locate_file(f)).resolve().parent
    except (PackageNotFoundError, OSError):
        pass
    for prefix in (sys.prefix, sys.base_prefix):
        candidate = Path(prefix) / "share" / "evoart" / "presets"
        if candidate.is_dir():
            return candidate
    return checkout  # missing: list_presets shows no shipped presets rather than failing


# ---- the preset itself -------------------------------------------------------------------

@dataclass(frozen=True)
class WeightsRef:
    file: str           # a plain file name next to the preset's JSON
    resolution: int     # the image size the generator was trained at
    sha256: str
    bytes: int

    def to_dict(self) -> dict:
        return {"file": self.file, "resolution": self.resolution, "sha256": self.sha256, "bytes": self.bytes}


@dataclass(frozen=True)
class Preset:
    name: str
    genome: Genome
    notes: str = ""
    provenance: dict = field(default_factory=dict)
    weights: WeightsRef | None = None
    path: Path | None = None      # the JSON file it was read from
    origin: str = "file"          # "user", "shipped" or "file"

    @property
    def weights_path(self) -> Path | None:
        if self.weights is None or self.path is None:
            return None
        return self.path.parent / self.weights.file

    @property
    def resolution(self) -> int | None:
        """The resolution the weights were trained at (None without weights)."""
        return self.weights.resolution if self.weights is not None else None

    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": KIND,
            "name": self.name,
            "notes": self.notes,
            "genome": self.genome.to_dict(),
            "provenance": self.provenance,
            "weights": self.weights.to_dict() if self.weights else None,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class PresetInfo:
    """One line of ``list_presets``: enough to show a table without loading weights."""

    name: str
    origin: str
    path: Path
    notes: str = ""
    has_weights: bool = False
    resolution: int | None = None
    summary: str = ""
    error: str | None = None      # the file is there but cannot be used
    shadowed: bool = False        # a user preset of the same name takes precedence


def _where(source: str | Path) -> str:
    return str(source)


def parse_preset(data: Any, *, source: str | Path = "preset", name_from_file: str | None = None) -> Preset:
    """Check parsed JSON field by field and build a Preset; raises PresetError naming the
    offending field."""
    where = _where(source)
    if not isinstance(data, dict):
        raise PresetError(f"{where}: a preset is a JSON object, this is {type(data).__name__}")
    version = data.get("schema_version")
    if version is None:
        raise PresetError(f"{where}: schema_version is missing: is this an evoart preset?")
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        raise PresetError(f"{where}: preset schema_version {version!r} is not supported (this evoart "
                          f"{__version__} reads version {SCHEMA_VERSION}); a newer evoart may read it")
    known = ("schema_version", "kind", "name", "notes", "genome", "provenance", "weights")
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise PresetError(f"{where}: unknown field {unknown[0]!r} (a preset has {', '.join(known)})")
    if data.get("kind", KIND) != KIND:
        raise PresetError(f"{where}: kind is {data.get('kind')!r}, expected {KIND!r}")
    name = data.get("name")
    if not isinstance(name, str):
        raise PresetError(f"{where}: name must be a string")
    try:
        validate_name(name)
    except PresetError as exc:
        raise PresetError(f"{where}: {exc}") from None
    if name_from_file is not None:
        name = name_from_file  # the file's name wins: copying a file is renaming it
    notes = data.get("notes", "")
    if not isinstance(notes, str):
        raise PresetError(f"{where}: notes must be a string")
    if len(notes) > MAX_NOTES_CHARS:
        raise PresetError(f"{where}: notes are {len(notes)} characters long, at most {MAX_NOTES_CHARS}")
    if "genome" not in data:
        raise PresetError(f"{where}: genome is missing")
    try:
        genome = genome_from_dict(data["genome"])
    except GenomeError as exc:
        raise PresetError(f"{where}: {exc}") from None
    provenance = _check_provenance(data.get("provenance", {}), where)
    weights = _check_weights_ref(data.get("weights"), where)
    return Preset(name=name, genome=genome, notes=notes, provenance=provenance, weights=weights)


def _check_provenance(prov: Any, where: str) -> dict:
    if prov is None:
        return {}
    if not isinstance(prov, dict):
        raise PresetError(f"{where}: provenance must be an object")
    out = {}
    for key, value in prov.items():
        if key not in PROVENANCE_FIELDS:
            raise PresetError(f"{where}: provenance.{key}: unknown field (known: {', '.join(PROVENANCE_FIELDS)})")
        if value is None:
            out[key] = None
            continue
        types = PROVENANCE_FIELDS[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise PresetError(f"{where}: provenance.{key}: expected {types[0].__name__}, got {value!r}")
        if key == "metrics":
            for m, v in value.items():
                if not isinstance(m, str) or isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise PresetError(f"{where}: provenance.metrics.{m}: expected a number, got {v!r}")
        if isinstance(value, str) and len(value) > 1000:
            raise PresetError(f"{where}: provenance.{key}: longer than 1000 characters")
        out[key] = value
    return out


def _check_weights_ref(ref: Any, where: str) -> WeightsRef | None:
    if ref is None:
        return None
    if not isinstance(ref, dict):
        raise PresetError(f"{where}: weights must be an object or null")
    known = ("file", "resolution", "sha256", "bytes")
    unknown = sorted(set(ref) - set(known))
    if unknown:
        raise PresetError(f"{where}: weights.{unknown[0]}: unknown field")
    missing = [k for k in known if k not in ref]
    if missing:
        raise PresetError(f"{where}: weights.{missing[0]} is missing")
    f = ref["file"]
    # The weights file is always a plain name beside the JSON: a preset cannot point
    # evoart at any other file on the machine.
    if (not isinstance(f, str) or not f or "/" in f or "\\" in f or ".." in f or f.startswith(".")
            or any(unicodedata.category(c).startswith("C") for c in f)):
        raise PresetError(f"{where}: weights.file must be a plain file name beside the preset, got {f!r}")
    res = ref["resolution"]
    if isinstance(res, bool) or res not in RESOLUTIONS:
        raise PresetError(f"{where}: weights.resolution: {res!r} is not one of {', '.join(map(str, RESOLUTIONS))}")
    sha = ref["sha256"]
    if not isinstance(sha, str) or re.fullmatch(r"[0-9a-f]{64}", sha) is None:
        raise PresetError(f"{where}: weights.sha256 must be 64 hex digits")
    size = ref["bytes"]
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_WEIGHTS_BYTES:
        raise PresetError(f"{where}: weights.bytes: {size!r} is not a size up to {MAX_WEIGHTS_BYTES} bytes")
    return WeightsRef(f, res, sha, size)


def _parse_json_bytes(raw: bytes, source: str | Path) -> Any:
    where = _where(source)
    if len(raw) > MAX_PRESET_BYTES:
        raise PresetError(f"{where} is {len(raw) / 1e6:.1f} MB; a preset file is at most "
                          f"{MAX_PRESET_BYTES // 1024} KB of JSON (weights live in their own file)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PresetError(f"{where} is not a text (UTF-8) file: is it a preset?") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PresetError(f"{where} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except RecursionError:
        raise PresetError(f"{where} nests too deeply to be a preset") from None


def _read_capped(path: Path, cap: int, what: str) -> bytes:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise PresetError(f"{path} does not exist") from None
    if not path.is_file():
        raise PresetError(f"{path} is not a file")
    if size > cap:
        raise PresetError(f"{path} is {size / 1e6:.1f} MB; {what} is at most {cap / 1e6:.2g} MB")
    with open(path, "rb") as f:
        return f.read(cap + 1)


def read_preset_file(path: Path, *, origin: str = "file", name_from_file: bool = False) -> Preset:
    """Read and check one preset JSON file (not its weights' contents, only that the
    weights file is there with the size the preset says)."""
    path = Path(path)
    raw = _read_capped(path, MAX_PRESET_BYTES, "a preset file (JSON; weights live in their own file)")
    data = _parse_json_bytes(raw, path)
    stem = path.name[: -len(PRESET_SUFFIX)] if path.name.endswith(PRESET_SUFFIX) else None
    p = parse_preset(data, source=path, name_from_file=stem if name_from_file else None)
    p = Preset(p.name, p.genome, p.notes, p.provenance, p.weights, path, origin)
    if p.weights is not None:
        wp = p.weights_path
        if not wp.is_file():
            raise PresetError(f"{path}: its weights file {wp.name} is missing (expected at {wp})")
        if wp.stat().st_size != p.weights.bytes:
            raise PresetError(f"{path}: its weights file {wp.name} has {wp.stat().st_size} bytes, the preset "
                              f"says {p.weights.bytes}: it was replaced or damaged")
    return p


# ---- lookup ------------------------------------------------------------------------------

def _json_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.name.endswith(PRESET_SUFFIX) and not p.name.startswith("."))


def list_presets() -> list[PresetInfo]:
    """Every preset, shipped and the user's, sorted by name (user first on a tie). A file
    that cannot be read is listed with its error instead of hiding the others."""
    out = []
    user_names = {p.name[: -len(PRESET_SUFFIX)] for p in _json_files(user_dir())}
    for origin, folder in (("user", user_dir()), ("shipped", shipped_dir())):
        for path in _json_files(folder):
            stem = path.name[: -len(PRESET_SUFFIX)]
            shadowed = origin == "shipped" and stem in user_names
            try:
                p = read_preset_file(path, origin=origin, name_from_file=True)
            except PresetError as exc:
                out.append(PresetInfo(stem, origin, path, error=str(exc), shadowed=shadowed))
                continue
            out.append(PresetInfo(p.name, origin, path, p.notes, p.weights is not None, p.resolution,
                                  describe(p.genome), None, shadowed))
    return sorted(out, key=lambda i: (i.name, ORIGINS.index(i.origin)))


def _path_in(folder: Path, name: str) -> Path:
    return folder / f"{validate_name(name)}{PRESET_SUFFIX}"


def find_preset(name: str) -> tuple[Path, str] | None:
    """(JSON path, origin) of the preset called ``name``: the user's first, then shipped."""
    validate_name(name)
    for origin, folder in (("user", user_dir()), ("shipped", shipped_dir())):
        path = _path_in(folder, name)
        if path.is_file():
            return path, origin
    return None


def _looks_like_path(ref: str) -> bool:
    return "/" in ref or os.sep in ref or ref.endswith((PRESET_SUFFIX, ".zip"))


def load_preset(name_or_path: str | Path) -> Preset:
    """A preset by name (the user's first, then shipped ones) or by the path of a preset
    JSON file. Raises PresetError when there is none or it cannot be used."""
    if isinstance(name_or_path, Path) or _looks_like_path(str(name_or_path)):
        path = Path(name_or_path).expanduser()
        if not path.exists():
            raise PresetError(f"{path} does not exist")
        if path.is_file() and _is_zip(path):
            raise PresetError(f"{path} is an exported preset bundle; add it with `evoart preset import {path}` "
                              "and use it by name")
        return read_preset_file(path, origin="file")
    name = str(name_or_path)
    found = find_preset(name)
    if found is None:
        names = sorted({i.name for i in list_presets() if i.error is None})
        raise PresetError(f"no preset named {name!r}; known presets: {', '.join(names) or 'none'} "
                          "(`evoart preset list` shows them)")
    path, origin = found
    return read_preset_file(path, origin=origin, name_from_file=True)


# ---- weights -----------------------------------------------------------------------------

def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _load_state_bytes(raw: bytes, source: str):
    import pickle

    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on odd pickle protocols: the error below says it
            state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, zipfile.BadZipFile, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PresetError(f"{source} is not a readable weights file (a torch state_dict): {first[:200]}") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise PresetError(f"{source} does not hold a generator state_dict (names to tensors)")
    return state


def check_state_fits(genome: Genome, resolution: int, state: dict, source: str) -> None:
    """Raise PresetError unless ``state`` is exactly a generator of ``genome`` at
    ``resolution``: same tensor names and shapes, finite values."""
    import torch

    from .nets import build_generator

    expected = build_generator(genome, resolution).state_dict()
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    if missing or extra:
        which = f"lacks {missing[0]}" if missing else f"has {extra[0]}, which the genome does not"
        raise PresetError(f"{source} does not fit the genome at {resolution} px: it {which} "
                          f"({len(missing)} tensors missing, {len(extra)} unexpected)")
    for k, t in expected.items():
        if tuple(state[k].shape) != tuple(t.shape):
            raise PresetError(f"{source} does not fit the genome at {resolution} px: {k} has shape "
                              f"{tuple(state[k].shape)}, the genome needs {tuple(t.shape)}")
        if state[k].is_floating_point() and not bool(torch.isfinite(state[k]).all()):
            raise PresetError(f"{source}: {k} holds NaN or infinite values; these weights diverged")


def load_weights(preset: Preset) -> dict | None:
    """The preset's generator state_dict (CPU tensors), checked against its genome, or
    None when it has no weights."""
    if preset.weights is None:
        return None
    path = preset.weights_path
    raw = _read_capped(path, MAX_WEIGHTS_BYTES, "a weights file")
    if _sha256(raw) != preset.weights.sha256:
        raise PresetError(f"{path} does not match the checksum in {preset.path}: it was replaced or damaged")
    state = _load_state_bytes(raw, str(path))
    check_state_fits(preset.genome, preset.weights.resolution, state, str(path))
    return state


def state_bytes(state: dict) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save({k: v.detach().cpu().contiguous() for k, v in state.items()}, buf)
    return buf.getvalue()


# ---- writing -----------------------------------------------------------------------------

def _atomic_write(path: Path, data: bytes) -> None:
    from .files import atomic_write_bytes

    atomic_write_bytes(path, data)


def _shipped_names() -> set[str]:
    return {p.name[: -len(PRESET_SUFFIX)] for p in _json_files(shipped_dir())}


def check_name_free(name: str, force: bool = False) -> Path:
    """The user JSON path for a new preset ``name``, or PresetError when the name is not
    allowed or taken (by a shipped preset always; by a user preset unless ``force``)."""
    validate_name(name)
    if name in _shipped_names() and user_dir().resolve() != shipped_dir().resolve():
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
        ref = WeightsRef(f"{preset.name}{WEIGHTS_SUFFIX}", resolution, _sha256(weights), len(weights))
    out = Preset(preset.name, preset.genome, preset.notes, dict(preset.provenance), ref, path, "user")
    text = out.to_json().encode("utf-8")
    if len(text) > MAX_PRESET_BYTES:
        raise PresetError(f"preset {preset.name!r} would be {len(text)} bytes, over the {MAX_PRESET_BYTES} cap")
    path.parent.mkdir(parents=True, exist_ok=True)
    if weights is not None:
        _atomic_write(out.weights_path, weights)
    _atomic_write(path, text)
    if old_weights is not None and old_weights != out.weights_path and old_weights.exists():
        old_weights.unlink()
    return path


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def save_from_run(run_dir: Path, individual: str, name: str, *, with_weights: bool = False,
                  notes: str = "", force: bool = False) -> Path:
    """Keep an individual of a run as a user preset: its genome, where it came from and,
    with ``with_weights``, its trained generator. Refuses to overwrite without ``force``."""
    from .store import RunStore, StoreError

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
            state = store.load_generator_state(individual)
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
        if _sha256(weights) != preset.weights.sha256:
            raise PresetError(f"{preset.weights_path} does not match its checksum; not renaming a damaged preset")
    renamed = Preset(new, preset.genome, preset.notes, preset.provenance)
    path = write_preset(renamed, weights, resolution=preset.resolution, force=force)
    preset.path.unlink()
    if preset.weights_path is not None and preset.weights_path.exists():
        preset.weights_path.unlink()
    return path


def export_preset(name_or_path: str | Path, file: Path, *, force: bool = False) -> Path:
    """Write one zip file holding the preset's JSON and, when it has them, its weights,
    for sharing. Refuses to overwrite ``file`` without ``force``."""
    preset = load_preset(name_or_path)
    file = Path(file)
    if file.exists() and not force:
        raise PresetError(f"{file} exists; pass --force to overwrite it")
    if file.is_dir():
        raise PresetError(f"{file} is a folder; give a file name such as {preset.name}.zip")
    weights = None
    if preset.weights is not None:
        weights = _read_capped(preset.weights_path, MAX_WEIGHTS_BYTES, "a weights file")
        if _sha256(weights) != preset.weights.sha256:
            raise PresetError(f"{preset.weights_path} does not match its checksum; not exporting a damaged preset")
    doc = preset.to_dict()
    if doc["weights"] is not None:
        doc["weights"]["file"] = BUNDLE_WEIGHTS
    buf = io.BytesIO()
    # Fixed timestamps: exporting the same preset twice gives the same bytes.
    stamp = (2020, 1, 1, 0, 0, 0)
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo(BUNDLE_PRESET, stamp), json.dumps(doc, indent=2, ensure_ascii=False) + "\n",
                   compress_type=zipfile.ZIP_DEFLATED)
        if weights is not None:
            z.writestr(zipfile.ZipInfo(BUNDLE_WEIGHTS, stamp), weights, compress_type=zipfile.ZIP_DEFLATED)
    file.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(file, buf.getvalue())
    return file


def _read_bundle(file: Path) -> tuple[Any, bytes | None]:
    """The parsed preset JSON and the weights bytes of an exported zip, every member
    checked (names, sizes, CRCs) before it is used."""
    try:
        z = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise PresetError(f"{file} is truncated or damaged: not a readable preset bundle ({exc})") from None
    with z:
        names = z.namelist()
        odd = [n for n in names if n not in BUNDLE_MEMBERS]
        if odd or BUNDLE_PRESET not in names or len(set(names)) != len(names):
            raise PresetError(f"{file} is not an evoart preset bundle: it holds {', '.join(names[:5]) or 'nothing'}; "
                              f"a bundle holds {BUNDLE_PRESET} and optionally {BUNDLE_WEIGHTS}")
        caps = {BUNDLE_PRESET: MAX_PRESET_BYTES, BUNDLE_WEIGHTS: MAX_WEIGHTS_BYTES}
        out = {}
        for info in z.infolist():
            if info.file_size > caps[info.filename]:
                raise PresetError(f"{file}: {info.filename} is {info.file_size / 1e6:.1f} MB, over the "
                                  f"{caps[info.filename] / 1e6:.2g} MB a preset may have")
            try:
                with z.open(info) as f:
                    data = f.read(caps[info.filename] + 1)
            except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
                raise PresetError(f"{file} is truncated or damaged: {info.filename} cannot be read ({exc})") from None
            if len(data) != info.file_size:
                raise PresetError(f"{file} is truncated or damaged: {info.filename} is incomplete")
            out[info.filename] = data
    return _parse_json_bytes(out[BUNDLE_PRESET], f"{file}:{BUNDLE_PRESET}"), out.get(BUNDLE_WEIGHTS)


def _is_zip(file: Path) -> bool:
    with open(file, "rb") as f:
        return f.read(4) in (b"PK\x03\x04", b"PK\x05\x06")


def import_preset(file: Path, *, name: str | None = None, force: bool = False) -> Path:
    """Add a preset from an exported bundle (zip) or a preset JSON file (with its weights
    file beside it, if it has weights) to the user's presets, under its own name or
    ``name``. Everything is checked (genome, weights against the genome) before anything
    is written; nothing is overwritten without ``force``."""
    file = Path(file).expanduser()
    if not file.exists():
        raise PresetError(f"{file} does not exist")
    if not file.is_file():
        raise PresetError(f"{file} is not a file")
    size = file.stat().st_size
    if size > MAX_PRESET_BYTES + MAX_WEIGHTS_BYTES:
        raise PresetError(f"{file} is {size / 1e6:.0f} MB, too large to be a preset")
    weights: bytes | None = None
    if _is_zip(file):
        data, weights = _read_bundle(file)
        source = f"{file}:{BUNDLE_PRESET}"
        preset = parse_preset(data, source=source)
        if preset.weights is not None and weights is None:
            raise PresetError(f"{file}: the preset refers to weights, but the bundle has no {BUNDLE_WEIGHTS}")
        if preset.weights is None and weights is not None:
            raise PresetError(f"{file}: the bundle has {BUNDLE_WEIGHTS} but its preset does not refer to it")
    else:
        if size > MAX_PRESET_BYTES:
            raise PresetError(f"{file} is {size / 1e6:.1f} MB; a preset file is at most "
                              f"{MAX_PRESET_BYTES // 1024} KB of JSON (weights live in their own file)")
        preset = read_preset_file(file, origin="file")
        source = str(file)
        if preset.weights is not None:
            weights = _read_capped(preset.weights_path, MAX_WEIGHTS_BYTES, "a weights file")
    if preset.weights is not None:
        if len(weights) != preset.weights.bytes or _sha256(weights) != preset.weights.sha256:
            raise PresetError(f"{source}: the weights do not match the size and checksum the preset records; "
                              "the file is damaged or was altered")
        state = _load_state_bytes(weights, f"{source} weights")
        check_state_fits(preset.genome, preset.weights.resolution, state, f"{source} weights")
    new_name = validate_name(name) if name is not None else preset.name
    prov = dict(preset.provenance)
    renamed = Preset(new_name, preset.genome, preset.notes, prov)
    return write_preset(renamed, weights, resolution=preset.resolution, force=force)


def seed_state(preset: Preset, resolution: int) -> dict | None:
    """The training state a run's generation 0 starts from when it is seeded with this
    preset: its generator weights (as G and EMA; the discriminator starts fresh), or
    None when it has no weights or they were trained at another resolution."""
    if preset.weights is None or preset.weights.resolution != resolution:
        return None
    g = load_weights(preset)
    return {"g": g, "g_ema": g, "d": {}, "opt_g": {}, "opt_d": {}, "meta": {}}
