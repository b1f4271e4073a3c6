"""Thumbnails: 2 x 2 samples cut from an individual's sample grid."""

from __future__ import annotations

import io
from pathlib import Path

from ..files import atomic_write_bytes


def ensure_thumb(samples: Path, out: Path) -> bool:
    """Cut the first 2 x 2 samples out of an individual's 8-column sample grid (1 px
    padding, as ``fitness`` draws it); kept until samples.png changes."""
    if not samples.is_file():
        return False
    try:
        if out.is_file() and out.stat().st_mtime >= samples.stat().st_mtime:
            return True
        from PIL import Image

        with Image.open(samples) as img:
            img.load()
            w, h = img.size
            tile = (w - 9) / 8
            if tile >= 1 and tile == int(tile) and h >= 2 * tile + 3:
                side = int(2 * tile + 3)
                small = img.crop((0, 0, side, side))
            else:  # an unexpected layout: the whole grid, scaled down
                small = img.copy()
                small.thumbnail((192, 192), Image.NEAREST)
            buf = io.BytesIO()
            small.convert("RGB").save(buf, format="PNG")
        atomic_write_bytes(out, buf.getvalue(), durable=False)
        return True
    except OSError:
        return False
