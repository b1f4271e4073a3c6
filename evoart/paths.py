"""Where evoart keeps the user's files: presets (a data folder) and caches.

The folders come from platformdirs, with the options that match where earlier evoart
releases put them, so existing presets and caches are still found:

* user data (presets): ``$EVOART_HOME`` when set, else ``platformdirs.user_data_dir
  ("evoart", appauthor=False, roaming=True)``: ``~/.local/share/evoart`` (or
  ``$XDG_DATA_HOME/evoart``) on Linux, ``~/Library/Application Support/evoart`` on macOS,
  ``%APPDATA%\\evoart`` on Windows, exactly as before.
* cache: ``$EVOART_CACHE`` when set, else ``platformdirs.user_cache_dir("evoart",
  appauthor=False)``. On Linux that is ``~/.cache/evoart`` (or ``$XDG_CACHE_HOME/evoart``)
  as before; on macOS and Windows earlier releases also used ``~/.cache/evoart``, which is
  still used while it exists (a cache is only a speed-up, but a warm one is worth keeping).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP = "evoart"


def user_data_dir() -> Path:
    """The folder of the user's own evoart files (``presets/`` inside)."""
    home = os.environ.get("EVOART_HOME")
    if home:
        return Path(home).expanduser()
    return Path(platformdirs.user_data_dir(APP, appauthor=False, roaming=True))


def user_presets_dir() -> Path:
    return user_data_dir() / "presets"


def _legacy_cache_dir() -> Path:
    return Path.home() / ".cache" / APP


def cache_dir() -> Path:
    """Where decoded image folders and measured metric floors are cached."""
    if os.environ.get("EVOART_CACHE"):
        return Path(os.environ["EVOART_CACHE"]).expanduser()
    new = Path(platformdirs.user_cache_dir(APP, appauthor=False))
    if sys.platform in ("darwin", "win32"):  # where earlier releases used ~/.cache/evoart
        legacy = _legacy_cache_dir()
        if not new.exists() and legacy.is_dir():
            return legacy
    return new
