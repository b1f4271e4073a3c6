"""Sharing presets: ``export_preset`` writes one zip file (the JSON and the weights),
``import_preset`` reads it back, or a plain preset JSON with its weights beside it.

A bundle is untrusted: its members are named, capped and CRC-checked before anything is
parsed, the weights are checked against their checksum and the genome, and nothing is
written until all of it has passed.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from pathlib import Path
from typing import Any

from ..files import atomic_write_bytes
from ..seeds import bytes_digest
from .loading import (
    _is_zip,
    _load_state_bytes,
    _read_capped,
    check_state_fits,
    load_preset,
    os_errors,
    read_preset_file,
)
from .model import (
    BUNDLE_MEMBERS,
    BUNDLE_PRESET,
    BUNDLE_WEIGHTS,
    MAX_PRESET_BYTES,
    MAX_WEIGHTS_BYTES,
    Preset,
    PresetError,
    _parse_json_bytes,
    parse_preset,
    validate_name,
)
from .saving import write_preset


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
        if bytes_digest(weights) != preset.weights.sha256:
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
    with os_errors("write", file):
        file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(file, buf.getvalue())
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
    with os_errors("read"):
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
        if len(weights) != preset.weights.bytes or bytes_digest(weights) != preset.weights.sha256:
            raise PresetError(f"{source}: the weights do not match the size and checksum the preset records; "
                              "the file is damaged or was altered")
        state = _load_state_bytes(weights, f"{source} weights")
        check_state_fits(preset.genome, preset.weights.resolution, state, f"{source} weights")
    new_name = validate_name(name) if name is not None else preset.name
    prov = dict(preset.provenance)
    renamed = Preset(new_name, preset.genome, preset.notes, prov)
    return write_preset(renamed, weights, resolution=preset.resolution, force=force)
