"""The gallery root: the folder that holds the runs, where evoart writes its own
``index.html`` and ``_static/`` beside them.

evoart never overwrites a file it did not write. A root it owns carries a small marker
file; a folder without one is claimed only when nothing there would be overwritten, or
when what is there was written by an earlier evoart (its index page and static files say
so). Otherwise writing is refused with a message that says which files are in the way.
"""

from __future__ import annotations

from pathlib import Path

from ..files import atomic_write_text
from .view import INDEX_NAME, STATIC_DIR, STATIC_FILES, GalleryError

MARKER = ".evoart-gallery"
_MARKER_TEXT = ("This folder is an evoart gallery root: evoart writes index.html and _static/ here,\n"
                "beside one folder per run. Delete this file and evoart will not write here again\n"
                "until the folder holds nothing of yours that it would overwrite.\n")


def _head(path: Path, n: int = 65536) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(n).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _evoart_wrote(path: Path) -> bool:
    """Whether ``path`` (the root's index page or a static file) is one evoart writes."""
    if path.name == INDEX_NAME:
        text = _head(path)
        return "<title>evoart gallery</title>" in text and 'data-page="index"' in text
    if path.name in STATIC_FILES:
        return _head(path, 200).lstrip().startswith(("/* evoart gallery", "// evoart gallery"))
    return False


def in_the_way(root: Path) -> list[Path]:
    """Files under ``root`` that writing the gallery index would overwrite although
    evoart did not write them (empty for a root evoart owns)."""
    root = Path(root)
    if (root / MARKER).is_file() or not root.is_dir():
        return []
    candidates = [root / INDEX_NAME] + [root / STATIC_DIR / name for name in STATIC_FILES]
    foreign = [p for p in candidates if p.exists() and not (p.is_file() and _evoart_wrote(p))]
    static = root / STATIC_DIR
    if static.exists() and not static.is_dir():
        foreign.append(static)
    return foreign


def check_root(root: Path) -> None:
    """Raise GalleryError when evoart may not write its index into ``root``."""
    foreign = in_the_way(root)
    if foreign:
        shown = ", ".join(str(p.relative_to(root)) for p in foreign)
        raise GalleryError(
            f"{root} already holds {shown}, which evoart did not write; it keeps its gallery index "
            f"there and never overwrites files it did not write. Use another --out (a new or empty "
            f"folder, or an earlier evoart gallery), or move those files away.")


def claim_root(root: Path) -> None:
    """``check_root``, then mark ``root`` as evoart's."""
    root = Path(root)
    check_root(root)
    if not (root / MARKER).is_file():
        root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(root / MARKER, _MARKER_TEXT, durable=False)
