"""The preset itself: what a preset file holds, and every check of it.

A preset is one human-readable JSON file::

    {"schema_version": 1, "kind": "evoart-preset", "name": "moth-wings", "notes": "...",
     "genome": {...}, "provenance": {"run": ..., "individual": ..., ...},
     "weights": null | {"file": "moth-wings.generator.pt", "resolution": 32,
                        "sha256": "...", "bytes": 123456}}

``parse_preset`` treats its input as untrusted: every field is checked, names are
checked before they become file names, and a failure raises ``PresetError`` with a
message meant for the user. Nothing here touches the disk.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import EvoartError
from ..genome import Genome, GenomeError, genome_from_dict

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
