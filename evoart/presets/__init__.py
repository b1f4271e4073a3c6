"""Presets: the genomes an artist keeps, shares, re-renders and evolves from.

A preset is one human-readable JSON file (a genome, notes, where it came from) with,
optionally, its trained generator kept next to it as a ``state_dict``. The presets that
come with evoart are package data (``evoart/presets/shipped/*.json``, read through
``importlib.resources``); the user's live in ``user_dir()``.

* ``model``: the preset, its fields and their checks (``parse_preset``, ``validate_name``).
* ``loading``: finding, listing and loading presets and their weights.
* ``saving``: writing the user's presets (from a run or a render), renaming, deleting.
* ``bundles``: one zip file per preset for sharing (``export_preset``, ``import_preset``).

Every reader treats its input as untrusted and raises ``PresetError`` with a message
meant for the user; nothing is overwritten without ``force``; every file is written
atomically. Nothing here ever loads a pickle.
"""

from __future__ import annotations

from .bundles import export_preset, import_preset
from .loading import (
    SHIPPED_FOLDER,
    check_state_fits,
    find_preset,
    list_presets,
    load_preset,
    load_weights,
    read_preset_file,
    seed_state,
    shipped_dir,
    state_bytes,
    user_dir,
)
from .model import (
    BUNDLE_MEMBERS,
    BUNDLE_PRESET,
    BUNDLE_WEIGHTS,
    KIND,
    MAX_NOTES_CHARS,
    MAX_PRESET_BYTES,
    MAX_WEIGHTS_BYTES,
    NAME_RE,
    ORIGINS,
    PRESET_SUFFIX,
    PROVENANCE_FIELDS,
    RESOLUTIONS,
    SCHEMA_VERSION,
    WEIGHTS_SUFFIX,
    Preset,
    PresetError,
    PresetInfo,
    WeightsRef,
    parse_preset,
    validate_name,
)
from .saving import (
    check_name_free,
    delete_preset,
    rename_preset,
    save_from_run,
    save_trained,
    write_preset,
)

__all__ = [
    "BUNDLE_MEMBERS", "BUNDLE_PRESET", "BUNDLE_WEIGHTS", "KIND", "MAX_NOTES_CHARS", "MAX_PRESET_BYTES",
    "MAX_WEIGHTS_BYTES", "NAME_RE", "ORIGINS", "PRESET_SUFFIX", "PROVENANCE_FIELDS", "RESOLUTIONS",
    "SCHEMA_VERSION", "SHIPPED_FOLDER", "WEIGHTS_SUFFIX", "Preset", "PresetError", "PresetInfo", "WeightsRef",
    "check_name_free", "check_state_fits", "delete_preset", "export_preset", "find_preset", "import_preset",
    "list_presets", "load_preset", "load_weights", "parse_preset", "read_preset_file", "rename_preset",
    "save_from_run", "save_trained", "seed_state", "shipped_dir", "state_bytes", "user_dir", "validate_name",
    "write_preset",
]
