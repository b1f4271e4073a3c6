"""A user's image folder: finding, decoding and caching its images.

A folder is decoded once into uint8 arrays and the result cached *outside* that folder
(evoart never writes into user data), so the second run on the same folder starts
immediately.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import PIL
from PIL import Image, ImageOps, UnidentifiedImageError

from ..files import atomic_write_bytes
from ..seeds import array_digest
from .types import CACHE_VERSION, IMAGE_EXTENSIONS, DataError, ImageSet

# --------------------------------------------------------------------------
# Folders
# --------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """Where decoded folders are cached when no ``cache_dir`` is given:
    ``$EVOART_CACHE``, else the user's cache folder (``evoart.paths.cache_dir``)."""
    from ..paths import cache_dir

    return cache_dir()


@dataclass(frozen=True)
class _Candidate:
    relative: str
    path: Path
    size: int
    mtime_ns: int
    special: str | None = None  # what it is when it is not a regular file (a FIFO, a device...)


def _special_kind(mode: int) -> str | None:
    """None for a regular file, else a name for what it is: reading a FIFO or a device
    blocks or never ends, so evoart reads regular files only."""
    if stat.S_ISREG(mode):
        return None
    for test, name in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def _find_candidates(folder: Path, unreadable: list[tuple[str, str]] | None = None) -> list[_Candidate]:
    """Files under ``folder`` with an image extension, in sorted order.

    Hidden files and folders (names starting with '.', e.g. ``.thumbnails``
    or macOS ``._`` files) are ignored, and symlinked folders are not
    followed, so a folder cannot pull in unrelated or duplicate images.
    Folders that cannot be listed (no permission) are appended to ``unreadable``
    as (path, reason), never skipped silently.
    """
    found = []

    def cannot_list(error: OSError) -> None:
        if unreadable is not None:
            unreadable.append((str(error.filename or folder), f"folder cannot be read: {_skip_reason(error)}"))

    for root, dirs, files in os.walk(folder, followlinks=False, onerror=cannot_list):
        dirs[:] = sorted(name for name in dirs if not name.startswith("."))
        for name in files:
            if name.startswith(".") or not name.lower().endswith(IMAGE_EXTENSIONS):
                continue
            path = Path(root) / name
            special = None
            try:
                info = path.stat()
                size, mtime_ns = info.st_size, info.st_mtime_ns
                special = _special_kind(info.st_mode)
            except OSError:  # a broken link: listed, and reported as skipped when decoded
                size, mtime_ns = -1, -1
            found.append(_Candidate(path.relative_to(folder).as_posix(), path, size, mtime_ns, special))
    return sorted(found, key=lambda candidate: candidate.relative)


def _grey_to_8bit(image: Image.Image) -> Image.Image:
    """Scale 16/32-bit greyscale to 8 bit (PIL's own conversion clips to white).

    ``I;16*`` is 16-bit by definition. Mode ``I`` carries no bit depth, so it
    is read as 8-bit if every value fits, else as 16-bit.
    """
    values = np.asarray(image).astype(np.float64)
    if image.mode.startswith("I;16") or values.max(initial=0) > 255:
        values = values / 257.0
    return Image.fromarray(np.rint(np.clip(values, 0, 255)).astype(np.uint8), "L")


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB. Transparency is composited onto black, i.e. colour
    times alpha: it invents no light, and transparent sprites then read as
    objects on the same dark ground evoart shows its grids on."""
    if image.mode.startswith("I") or image.mode == "F":
        return _grey_to_8bit(image).convert("RGB")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La", "P") or "transparency" in image.info
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    return Image.alpha_composite(black, rgba).convert("RGB")


class NotARegularFile(OSError):
    """A FIFO, a device or a socket where an image file was expected."""


def _open_regular(path: Path):
    """``path`` opened for reading if it is a regular file. The open does not block (a
    FIFO with no writer would wait forever), and the check is on the opened file, so a
    file swapped for a FIFO after listing is refused too."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        kind = _special_kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise NotARegularFile(f"{kind}, not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def decode_image(path: Path, resolution: int) -> np.ndarray:
    """Decode one file to uint8 (resolution, resolution, 3); raises if the file is unusable.

    Steps: first frame only (animated GIF/WebP), EXIF orientation applied,
    converted to RGB, centre-cropped to a square, resized with LANCZOS. JPEGs
    are decoded at reduced size (``draft``) when they are much larger than
    needed, which makes big photo folders several times faster to load.
    """
    with warnings.catch_warnings(), _open_regular(path) as file:
        warnings.simplefilter("ignore")  # PIL warns about odd EXIF/palettes; the file still loads
        with Image.open(file) as opened:
            opened.draft(None, (2 * resolution, 2 * resolution))
            upright = ImageOps.exif_transpose(opened)
            upright.load()
            rgb = _to_rgb(upright)
    width, height = rgb.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = rgb.resize(
        (resolution, resolution),
        Image.Resampling.LANCZOS,
        box=(left, top, left + side, top + side),
        reducing_gap=3.0,
    )
    return np.asarray(square, dtype=np.uint8)


def _skip_reason(error: Exception) -> str:
    """A short, user-readable reason why a file was skipped."""
    text = str(error)
    if isinstance(error, UnidentifiedImageError):
        return "not a readable image (format not recognised)"
    if isinstance(error, Image.DecompressionBombError):
        return "too many pixels (PIL decompression-bomb limit)"
    if isinstance(error, PermissionError):
        return "permission denied"
    if isinstance(error, NotARegularFile):
        return f"{error}: evoart reads regular files only"
    if isinstance(error, FileNotFoundError):
        return "file vanished or is a broken link"
    if "truncated" in text.lower():
        return "truncated file"
    detail = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return detail if len(detail) <= 100 else detail[:97] + "..."


def _decode_all(
    candidates: list[_Candidate], resolution: int, progress: Callable[[int, int], None] | None
) -> tuple[np.ndarray, list[tuple[str, str]]]:
    images = []
    skipped = []
    for done, candidate in enumerate(candidates, start=1):
        try:
            if candidate.special is not None:  # never opened: reading a FIFO can block forever
                raise NotARegularFile(f"{candidate.special}, not a regular file")
            images.append(decode_image(candidate.path, resolution))
        except Exception as error:  # one bad file must never stop a run: report it instead
            skipped.append((str(candidate.path), _skip_reason(error)))
        if progress is not None:
            progress(done, len(candidates))
    stacked = np.stack(images) if images else np.empty((0, resolution, resolution, 3), np.uint8)
    return stacked, skipped


def _cache_path(cache_root: Path, folder: Path, resolution: int, candidates: list[_Candidate]) -> tuple[Path, str]:
    """Cache file and full key for this folder listing.

    The key covers the folder, every candidate's (relative path, size,
    mtime_ns), the resolution, CACHE_VERSION and the Pillow version, so any
    added, removed or modified file (or a decoder upgrade) misses the cache.
    The file name starts with a per-(folder, resolution) slot so that stale
    entries of the same slot can be removed when a new one is written.
    """
    listing = [[c.relative, c.size, c.mtime_ns] for c in candidates]
    payload = {
        "version": CACHE_VERSION,
        "pillow": PIL.__version__,
        "folder": str(folder),
        "resolution": resolution,
        "files": listing,
    }
    key = hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()
    slot = hashlib.sha256(json.dumps([str(folder), resolution]).encode()).hexdigest()[:16]
    return cache_root / "images" / f"{slot}-{key[:32]}.npz", key


def _read_cache(path: Path, key: str, resolution: int) -> tuple[np.ndarray, list[tuple[str, str]]] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["key"]) != key:
                return None
            images = stored["images"]
            skipped = [(str(p), str(r)) for p, r in stored["skipped"]]
    except Exception:  # a corrupt or foreign cache file is just a miss
        return None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (resolution, resolution, 3):
        return None
    return images, skipped


def _write_cache(path: Path, key: str, images: np.ndarray, skipped: list[tuple[str, str]]) -> None:
    """Store atomically so that concurrent runs never read half a file; failures are
    ignored because the cache is only a speed-up."""
    import io

    try:
        buf = io.BytesIO()
        np.savez(buf, key=np.array(key), images=images, skipped=np.array(skipped, dtype=str).reshape(-1, 2))
        atomic_write_bytes(path, buf.getvalue(), durable=False)
        slot = path.name.split("-", 1)[0]
        for stale in path.parent.glob(f"{slot}-*.npz"):
            if stale != path:
                stale.unlink(missing_ok=True)
    except OSError:
        pass


def _fingerprint(images: np.ndarray) -> str:
    return array_digest(images)


def _load_folder(
    folder: Path,
    resolution: int,
    *,
    count: int | None,
    cache_dir: Path | None,
    progress: Callable[[int, int], None] | None,
) -> ImageSet:
    unreadable: list[tuple[str, str]] = []
    candidates = _find_candidates(folder, unreadable)
    for path, reason in unreadable:
        if Path(path) == folder:
            raise DataError(f"cannot read the image folder {folder}: {reason.split(': ', 1)[-1]}. evoart must be "
                            "able to list its files: check its permissions (ls -ld), or point evoart at "
                            "another folder.")
    if not candidates:
        extensions = ", ".join(IMAGE_EXTENSIONS)
        also = ""
        if unreadable:
            also = (f"; {len(unreadable)} subfolder(s) could not be read, for example {unreadable[0][0]} "
                    f"({unreadable[0][1]})")
        raise DataError(f"No images found in {folder} (looked for {extensions} recursively){also}")
    cache_file, key = _cache_path(Path(cache_dir or default_cache_dir()), folder, resolution, candidates)
    loaded = _read_cache(cache_file, key, resolution)
    cached = loaded is not None
    if loaded is None:
        loaded = _decode_all(candidates, resolution, progress)
        _write_cache(cache_file, key, *loaded)
    elif progress is not None:
        progress(len(candidates), len(candidates))
    images, skipped = loaded
    skipped = unreadable + list(skipped)  # reported with the unreadable files
    if len(images) == 0:
        example_path, example_reason = skipped[len(unreadable)] if len(skipped) > len(unreadable) else skipped[0]
        raise DataError(
            f"None of the {len(candidates)} image files in {folder} could be read "
            f"(for example {example_path}: {example_reason}). "
            "Check that the files are intact images, or point evoart at another folder."
        )
    from .splits import folder_source, source_ids

    failed = {path for path, _ in skipped}
    kept = [c.relative for c in candidates if str(c.path) not in failed]
    sources = source_ids([folder_source(r) for r in kept]) if len(kept) == len(images) else None
    if count is not None:
        images = images[:count]
        sources = sources[:count] if sources is not None else None
    return ImageSet(
        name=folder.name,
        kind="folder",
        source=str(folder),
        fingerprint=_fingerprint(images),
        images=images,
        skipped=skipped,
        cached=cached,
        sources=sources,
    )


