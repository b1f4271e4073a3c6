"""Thumbnails: 2 x 2 samples cut from an individual's sample grid; and an AR
individual's scan order as a picture."""

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


#: The scan-order picture is drawn at this many screen pixels per image pixel.
SCAN_PICTURE_SCALE = 6


def ensure_scan_picture(scan: str, resolution: int, out: Path) -> bool:
    """The order in which an AR sample's pixels were generated, as a colour ramp (dark
    blue first, pale yellow last: ``autoregressive.scans.order_picture``), written once.
    Raster and Hilbert orders are the same for every sample of a size, so the order of
    the genes' scan at the run's resolution is the order of each of its samples; an
    order that depends on the image (issue 18) will need the sample's own."""
    if out.is_file():
        return True
    try:
        from PIL import Image

        from ..autoregressive.scans import ScanError, order_picture, scan_order  # torch comes with the package

        try:
            picture = order_picture(scan_order(scan, resolution), resolution)
        except ScanError:
            return False
        img = Image.fromarray(picture).resize((resolution * SCAN_PICTURE_SCALE,) * 2, Image.NEAREST)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        atomic_write_bytes(out, buf.getvalue(), durable=False)
        return True
    except OSError:
        return False
