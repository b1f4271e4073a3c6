"""Scan orders: the order in which an AR model generates the pixels of an image.

An order of a size x size image is a permutation of the flat positions ``y * size + x``:
``order[t]`` is the position generated at scan step t. The model is told the next position
at every step (see ``model``), so any order plugs in, including orders that depend on the
image being generated (issue 18's geodesic scan): such an order is computed per image,
from the image during training and from what has been generated so far when sampling,
and passed to the model as a (batch, steps) array.

* ``raster``: rows top to bottom, each left to right (PixelRNN, PixelCNN).
* ``hilbert``: the Hilbert curve, a space-filling curve whose consecutive steps are always
  neighbours, so the context of a pixel is a compact blob around it rather than a band of
  rows. For a size that is not a power of two, the curve of the next power of two is
  walked and the positions outside the image are skipped: still a permutation, and still
  local, with a jump where the curve leaves the image and comes back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import EvoartError


class ScanError(EvoartError, ValueError):
    """An unknown scan order or a size it cannot scan."""


@dataclass(frozen=True)
class ScanOrder:
    name: str
    # (size, tokens or None) -> permutation of size * size positions; tokens are the
    # image's own tokens (size, size) for orders that depend on the image
    build: Callable[[int, np.ndarray | None], np.ndarray]
    depends_on_image: bool = False
    description: str = ""
    # whether a larger render continues the scan past the training size in overlapping
    # windows (``render.render_ar``); otherwise it only upscales
    continues: bool = False


_SCANS: dict[str, ScanOrder] = {}


def register_scan(order: ScanOrder) -> ScanOrder:
    if order.name in _SCANS:
        raise ValueError(f"a scan order named {order.name!r} is already registered")
    _SCANS[order.name] = order
    return order


def scan_names() -> tuple[str, ...]:
    return tuple(_SCANS)


def get_scan(name: str) -> ScanOrder:
    try:
        return _SCANS[name]
    except KeyError:
        raise ScanError(f"unknown scan order {name!r}; evoart knows {', '.join(_SCANS)}") from None


def _check_size(size: int) -> int:
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
        raise ScanError(f"a scan needs a positive image size, got {size!r}")
    return int(size)


def raster_order(size: int, tokens: np.ndarray | None = None) -> np.ndarray:
    size = _check_size(size)
    return np.arange(size * size, dtype=np.int64)


def hilbert_xy(n: int, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of steps ``d`` along the Hilbert curve of an n x n grid (n a power of two),
    by the classic bit-by-bit construction: at each scale pick the quadrant from two bits
    of d, then rotate/reflect the sub-square so the curve joins up."""
    d = np.asarray(d, dtype=np.int64).copy()
    x = np.zeros_like(d)
    y = np.zeros_like(d)
    s = 1
    while s < n:
        rx = (d // 2) & 1
        ry = (d ^ rx) & 1
        # rotate the quadrant: when ry == 0, flip (if rx == 1) and transpose
        flip = (ry == 0) & (rx == 1)
        x = np.where(flip, s - 1 - x, x)
        y = np.where(flip, s - 1 - y, y)
        swap = ry == 0
        x, y = np.where(swap, y, x), np.where(swap, x, y)
        x = x + s * rx
        y = y + s * ry
        d = d // 4
        s *= 2
    return x, y


def hilbert_order(size: int, tokens: np.ndarray | None = None) -> np.ndarray:
    size = _check_size(size)
    n = 1
    while n < size:
        n *= 2
    x, y = hilbert_xy(n, np.arange(n * n))
    inside = (x < size) & (y < size)
    return (y[inside] * size + x[inside]).astype(np.int64)


register_scan(ScanOrder("raster", raster_order, description="rows top to bottom, each left to right",
                        continues=True))
register_scan(ScanOrder("hilbert", hilbert_order,
                        description="the Hilbert space-filling curve (clipped from the next power of two)"))


def scan_order(name: str, size: int, tokens: np.ndarray | None = None) -> np.ndarray:
    """The permutation of ``size * size`` positions that the named order scans."""
    scan = get_scan(name)
    if scan.depends_on_image and tokens is None:
        raise ScanError(f"the {name} scan depends on the image: pass its tokens")
    return scan.build(_check_size(size), tokens)


def batch_orders(name: str, size: int, tokens: np.ndarray | None = None, count: int | None = None) -> np.ndarray:
    """Orders of a batch, shape (N, size * size): one per image of ``tokens`` (N, size,
    size) for an order that depends on the image, else the same order ``count`` times."""
    scan = get_scan(name)
    if scan.depends_on_image:
        if tokens is None:
            raise ScanError(f"the {name} scan depends on the image: pass the tokens")
        return np.stack([scan.build(size, t) for t in tokens])
    n = count if count is not None else (len(tokens) if tokens is not None else 1)
    return np.broadcast_to(scan.build(size, None), (n, size * size)).copy()


def order_picture(order: np.ndarray, size: int) -> np.ndarray:
    """The scan order as a picture: uint8 (size, size, 3), each pixel coloured by the
    step at which it was generated, on a ramp from dark blue (first) through magenta and
    orange to pale yellow (last)."""
    order = np.asarray(order)
    if sorted(order.tolist()) != list(range(size * size)):
        raise ScanError("the order is not a permutation of the image's positions")
    step = np.empty(size * size, np.float64)
    step[order] = np.arange(size * size) / max(1, size * size - 1)
    return ramp(step).reshape(size, size, 3)


def ramp(step: np.ndarray) -> np.ndarray:
    """Numbers in [0, 1] as uint8 colours (..., 3) on the scan pictures' ramp: dark blue at
    0 through magenta and orange to pale yellow at 1."""
    step = np.asarray(step, np.float64)
    stops = np.array([[13, 8, 135], [126, 3, 168], [204, 71, 120], [248, 149, 64], [240, 249, 33]], np.float64)
    pos = step * (len(stops) - 1)
    i = np.minimum(pos.astype(int), len(stops) - 2)
    f = (pos - i)[..., None]
    rgb = stops[i] * (1 - f) + stops[i + 1] * f
    return np.rint(rgb).astype(np.uint8)
