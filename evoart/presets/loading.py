"""Finding, listing and loading presets, and reading their weights.

The user's presets live in ``user_dir()`` (``evoart.paths.user_presets_dir()``); the
presets that come with evoart are package data, ``evoart/presets/shipped/*.json``, read
through ``importlib.resources``, so they are found the same way in a checkout, an
editable install and an installed wheel. A user preset hides a shipped one of the same
name.

Every reader caps sizes before anything is parsed and raises ``PresetError`` with a
message meant for the user. Weights are ``state_dict`` files loaded with
``weights_only=True`` (nothing here ever loads a pickle), checked against their checksum
and against the genome. Only the weights functions import torch.
"""

from __future__ import annotations

import io
import os
import warnings
import zipfile
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import os_errors as _os_errors
from ..genome import Genome, describe
from ..seeds import bytes_digest
from .model import (
    MAX_PRESET_BYTES,
    MAX_WEIGHTS_BYTES,
    ORIGINS,
    PRESET_SUFFIX,
    Preset,
    PresetError,
    PresetInfo,
    _parse_json_bytes,
    parse_preset,
    validate_name,
)

if TYPE_CHECKING:  # importlib.resources.abc from Python 3.11 on, importlib.abc before
    from importlib.resources.abc import Traversable

SHIPPED_FOLDER = "shipped"   # inside the evoart.presets package


# ---- places ------------------------------------------------------------------------------

def user_dir() -> Path:
    """Where the user's presets live: ``$EVOART_HOME/presets`` when EVOART_HOME is set,
    else the platform's per-user data folder (``$XDG_DATA_HOME/evoart/presets`` or
    ``~/.local/share/evoart/presets`` on Linux, ``~/Library/Application Support/evoart/
    presets`` on macOS, ``%APPDATA%\\evoart\\presets`` on Windows): see ``evoart.paths``."""
    from ..paths import user_presets_dir

    return user_presets_dir()


def shipped_dir() -> Traversable:
    """The folder of the presets that come with evoart: the package data folder
    ``evoart/presets/shipped``, as ``importlib.resources`` finds it (a ``Path`` wherever
    evoart is installed as files, which is everywhere pip puts it)."""
    return files(__package__) / SHIPPED_FOLDER


def os_errors(doing: str, path: object = None):
    """``errors.os_errors`` raising a PresetError."""
    return _os_errors(doing, path, error=PresetError)


def _as_path(path) -> Path | Traversable:
    return Path(path) if isinstance(path, (str, os.PathLike)) else path


def _read_capped(path: Path | Traversable, cap: int, what: str) -> bytes:
    if not isinstance(path, Path):  # package data that is not a plain file (a zip import)
        if not path.is_file():
            raise PresetError(f"{path} does not exist")
        data = path.read_bytes()
        if len(data) > cap:
            raise PresetError(f"{path} is {len(data) / 1e6:.1f} MB; {what} is at most {cap / 1e6:.2g} MB")
        return data
    try:
        size = path.stat().st_size
    except (FileNotFoundError, ValueError):  # ValueError: a NUL in the name
        raise PresetError(f"{path} does not exist") from None
    if not path.is_file():
        raise PresetError(f"{path} is not a file")
    if size > cap:
        raise PresetError(f"{path} is {size / 1e6:.1f} MB; {what} is at most {cap / 1e6:.2g} MB")
    with os_errors("read"), open(path, "rb") as f:
        return f.read(cap + 1)


def _size(path: Path | Traversable) -> int:
    return path.stat().st_size if isinstance(path, Path) else len(path.read_bytes())


def read_preset_file(path: Path | Traversable, *, origin: str = "file", name_from_file: bool = False) -> Preset:
    """Read and check one preset JSON file (not its weights' contents, only that the
    weights file is there with the size the preset says)."""
    path = _as_path(path)
    raw = _read_capped(path, MAX_PRESET_BYTES, "a preset file (JSON; weights live in their own file)")
    data = _parse_json_bytes(raw, path)
    stem = path.name[: -len(PRESET_SUFFIX)] if path.name.endswith(PRESET_SUFFIX) else None
    p = parse_preset(data, source=path, name_from_file=stem if name_from_file else None)
    p = Preset(p.name, p.genome, p.notes, p.provenance, p.weights, path, origin)
    if p.weights is not None:
        wp = p.weights_path
        if not wp.is_file():
            raise PresetError(f"{path}: its weights file {wp.name} is missing (expected at {wp})")
        if _size(wp) != p.weights.bytes:
            raise PresetError(f"{path}: its weights file {wp.name} has {_size(wp)} bytes, the preset "
                              f"says {p.weights.bytes}: it was replaced or damaged")
    return p


def _is_zip(file: Path) -> bool:
    with os_errors("read"), open(file, "rb") as f:
        return f.read(4) in (b"PK\x03\x04", b"PK\x05\x06")


# ---- lookup ------------------------------------------------------------------------------

def _json_files(folder: Path | Traversable) -> list[Path | Traversable]:
    if not folder.is_dir():
        return []
    with os_errors("list the presets in"):
        return sorted((p for p in folder.iterdir() if p.name.endswith(PRESET_SUFFIX) and not p.name.startswith(".")),
                      key=lambda p: p.name)


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


def _path_in(folder: Path | Traversable, name: str) -> Path | Traversable:
    return folder / f"{validate_name(name)}{PRESET_SUFFIX}"


def find_preset(name: str) -> tuple[Path | Traversable, str] | None:
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
    from ..nets import build_generator

    if genome.family == "ar":  # an AR state is its checkpoint: the model, the palette, the size
        from ..ar_family import result_from_state
        from ..errors import EvoartError

        try:
            result = result_from_state(genome, state)
        except (EvoartError, RuntimeError) as exc:
            raise PresetError(f"{source} does not fit the AR genome: {str(exc).splitlines()[0]}") from None
        if result.resolution != resolution:
            raise PresetError(f"{source} was trained at {result.resolution} px, not {resolution} px")
        for k, t in result.state.items():
            _check_finite(source, k, t)
        return
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
        _check_finite(source, k, state[k])


def _check_finite(source: str, name: str, t) -> None:
    import torch

    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise PresetError(f"{source}: {name} holds NaN or infinite values; these weights diverged")


def load_weights(preset: Preset) -> dict | None:
    """The preset's generator state_dict (CPU tensors), checked against its genome, or
    None when it has no weights."""
    if preset.weights is None:
        return None
    path = preset.weights_path
    raw = _read_capped(path, MAX_WEIGHTS_BYTES, "a weights file")
    if bytes_digest(raw) != preset.weights.sha256:
        raise PresetError(f"{path} does not match the checksum in {preset.path}: it was replaced or damaged")
    state = _load_state_bytes(raw, str(path))
    check_state_fits(preset.genome, preset.weights.resolution, state, str(path))
    return state


def state_bytes(state: dict) -> bytes:
    """A generator state_dict as the bytes of a weights file (CPU, contiguous tensors)."""
    from ..files import torch_bytes

    return torch_bytes({k: v.detach().cpu().contiguous() for k, v in state.items()})


def seed_state(preset: Preset, resolution: int) -> dict | None:
    """The training state a run's generation 0 starts from when it is seeded with this
    preset: its generator weights (as G and EMA; the discriminator starts fresh), or
    None when it has no weights or they were trained at another resolution."""
    if preset.weights is None or preset.weights.resolution != resolution:
        return None
    g = load_weights(preset)
    return {"g": g, "g_ema": g, "d": {}, "opt_g": {}, "opt_d": {}, "meta": {}}
