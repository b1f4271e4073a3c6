"""Atomic file writes: the one helper every module that writes files goes through.

A file is written to a temporary name in its own folder, flushed and fsynced, renamed over
the target, and then the folder itself is fsynced, so that after a crash or a power cut
the target holds either its old bytes or its new ones, never half of each, and the
rename itself has reached the disk. Nothing is left behind when the write fails.
"""

from __future__ import annotations

import errno
import io
import os
import threading
from pathlib import Path
from typing import Any

from .faults import disk_space


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable; a no-op where folders cannot be opened
    (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temporary_name(path: Path) -> Path:
    """The hidden temporary file a write of ``path`` goes through (unique per process and
    thread, so concurrent writers never share one)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring). ``durable=False``
    skips both fsyncs, for files that are cheap to rebuild (gallery pages, caches): still
    atomic, not guaranteed on disk after a power cut."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        with open(tmp, "wb") as f:
            room = disk_space(path, len(data))  # None unless a test injects a full disk
            if room is not None:
                f.write(data[:room])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        if isinstance(exc, OSError) and not exc.filename:
            # write() and fsync() name no file: say which one could not be written
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    if durable:
        _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike, text: str, *, durable: bool = True) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), durable=durable)


def torch_bytes(obj: Any) -> bytes:
    """``torch.save`` into memory (a state_dict or a dict of them)."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_bytes(path, torch_bytes(obj))
