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


def ensure_scan_picture(genes, resolution: int, out: Path, *, weights: Path | None = None,
                        noise_seed: int | None = None) -> bool:
    """The order in which an AR sample's pixels were generated, as a colour ramp (dark
    blue first, pale yellow last: ``autoregressive.scans.order_picture``; a pyramid's
    scales side by side, ``autoregressive.pyramid.pyramid_picture``), written once.
    Raster, Hilbert and most pyramid orders are the same for every sample of a size, so
    the genes' order at the run's resolution is each sample's. A geodesic pyramid's order
    depends on the image: its picture is the order of the individual's first sample,
    drawn again from its ``weights`` (generator.pt) with the run's ``noise_seed`` (alone,
    not in the run's batch of samples: in a rare draw the batch's arithmetic can flip a
    token, and the picture then shows a sample of the same noise a token apart)."""
    if out.is_file():
        return True
    try:
        from PIL import Image

        from ..autoregressive.pyramid import depends_on_image, scan_picture  # torch comes with the package

        order = None
        if depends_on_image(genes):
            order = _first_sample_order(genes, weights, noise_seed)
            if order is None:
                return False
        try:
            picture = scan_picture(genes, resolution, order)
        except ValueError:
            return False
        # a pyramid's scales side by side are wide: about 800 screen pixels in all
        zoom = SCAN_PICTURE_SCALE if picture.shape[1] == picture.shape[0] else max(2, 800 // picture.shape[1])
        img = Image.fromarray(picture).resize((picture.shape[1] * zoom, picture.shape[0] * zoom), Image.NEAREST)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        atomic_write_bytes(out, buf.getvalue(), durable=False)
        return True
    except OSError:
        return False


def _first_sample_order(genes, weights: Path | None, noise_seed: int | None):
    """The scan order of an AR individual's first sample, drawn again from its weights."""
    if weights is None or noise_seed is None or not weights.is_file():
        return None
    import pickle

    import torch

    from ..autoregressive.sampling import noise_for, sample_tokens
    from ..autoregressive.training import ARTrainResult
    from ..errors import EvoartError

    try:
        result = ARTrainResult.from_checkpoint(genes, torch.load(weights, map_location="cpu", weights_only=True))
    except (EvoartError, RuntimeError, OSError, ValueError, KeyError, pickle.UnpicklingError):
        return None  # an unreadable generator.pt: the page goes without the picture
    model = result.model()
    _, orders = sample_tokens(model, noise_for(model, noise_seed, 1), palette=result.palette)
    return orders[0].numpy()
