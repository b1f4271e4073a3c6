"""Writing pages: a file is rewritten only when its bytes change, atomically (a browser
or a second builder never sees half a page), so rebuilding after every generation of a
running evolution touches only what changed."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..files import atomic_write_bytes
from .view import STATIC_DIR, STATIC_FILES


class Writer:
    def __init__(self):
        self.pages = 0
        self.written = 0

    def write(self, path: Path, text: str | bytes) -> None:
        data = text.encode("utf-8") if isinstance(text, str) else text
        self.pages += 1
        try:
            if path.stat().st_size == len(data) and path.read_bytes() == data:
                return
        except OSError:
            pass
        atomic_write_bytes(path, data, durable=False)
        self.written += 1


def static_bytes(name: str) -> bytes:
    """The gallery's stylesheet or script, shipped as package data."""
    return resources.files(__package__).joinpath("static", name).read_bytes()


def write_static(w: Writer, folder: Path) -> None:
    for name in STATIC_FILES:
        w.write(folder / STATIC_DIR / name, static_bytes(name))
