"""The palette: K colours fitted to the training data, and images as palette tokens.

Seeded k-means (k-means++ starts, then Lloyd iterations) on a seeded sample of the
training pixels, in RGB. A colour that ends up with no pixels is restarted at the pixel
farthest from its nearest centre, so all K colours are used when the data has K distinct
colours or more. Colours are sorted by luma, so token 0 is the darkest: the order carries
no meaning for the model, but it makes palettes and token maps readable.
"""

from __future__ import annotations

import numpy as np

from ..errors import EvoartError

SAMPLE_PIXELS = 32768   # pixels the k-means sees (a seeded sample; enough for 256 colours)
ITERATIONS = 20
LUMA = np.array([0.2126, 0.7152, 0.0722])


class PaletteError(EvoartError, ValueError):
    """Images or a palette that cannot be used: the message says why."""


def _pixels(images_u8: np.ndarray) -> np.ndarray:
    images_u8 = np.asarray(images_u8)
    if images_u8.dtype != np.uint8 or images_u8.ndim != 4 or images_u8.shape[-1] != 3:
        raise PaletteError(f"expected uint8 images shaped (N, H, W, 3), got {images_u8.dtype} {images_u8.shape}")
    if images_u8.shape[0] == 0:
        raise PaletteError("no images to fit a palette to")
    return images_u8.reshape(-1, 3)


def _nearest(points: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest centre of each point and the squared distance to it."""
    d = (points * points).sum(1, keepdims=True) - 2.0 * points @ centres.T + (centres * centres).sum(1)[None]
    idx = d.argmin(1)
    return idx, np.maximum(d[np.arange(len(points)), idx], 0.0)


def fit_palette(images_u8: np.ndarray, k: int, *, seed: int = 0) -> np.ndarray:
    """K colours (uint8, shape (K, 3), sorted by luma) fitted to the images' pixels."""
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise PaletteError(f"palette size must be a positive integer, got {k!r}")
    rng = np.random.default_rng(seed)
    pixels = _pixels(images_u8)
    if len(pixels) > SAMPLE_PIXELS:
        pixels = pixels[rng.choice(len(pixels), SAMPLE_PIXELS, replace=False)]
    x = pixels.astype(np.float64)
    # k-means++: each new centre drawn with probability proportional to squared distance
    centres = np.empty((k, 3))
    centres[0] = x[rng.integers(len(x))]
    dist = ((x - centres[0]) ** 2).sum(1)
    for i in range(1, k):
        total = dist.sum()
        j = rng.choice(len(x), p=dist / total) if total > 0 else rng.integers(len(x))
        centres[i] = x[j]
        dist = np.minimum(dist, ((x - centres[i]) ** 2).sum(1))
    for _ in range(ITERATIONS):
        idx, d = _nearest(x, centres)
        counts = np.bincount(idx, minlength=k)
        sums = np.zeros((k, 3))
        np.add.at(sums, idx, x)
        moved = centres.copy()
        used = counts > 0
        moved[used] = sums[used] / counts[used, None]
        for empty in np.flatnonzero(~used):
            far = int(d.argmax())
            moved[empty] = x[far]
            d[far] = 0.0
        if np.abs(moved - centres).max() < 0.05:
            centres = moved
            break
        centres = moved
    palette = np.clip(np.rint(centres), 0, 255).astype(np.uint8)
    order = np.argsort(palette.astype(np.float64) @ LUMA, kind="stable")
    return palette[order]


def check_palette(palette: np.ndarray) -> np.ndarray:
    palette = np.asarray(palette)
    if palette.dtype != np.uint8 or palette.ndim != 2 or palette.shape[1] != 3 or len(palette) == 0:
        raise PaletteError(f"a palette is uint8 shaped (K, 3), got {palette.dtype} {palette.shape}")
    return palette


def quantise(images_u8: np.ndarray, palette: np.ndarray, *, chunk: int = 65536) -> np.ndarray:
    """Tokens (int64, shape (N, H, W)): the index of each pixel's nearest palette colour."""
    palette = check_palette(palette)
    n, h, w, _ = np.asarray(images_u8).shape
    pixels = _pixels(images_u8).astype(np.float64)
    centres = palette.astype(np.float64)
    out = np.empty(len(pixels), np.int64)
    for s in range(0, len(pixels), chunk):
        out[s:s + chunk] = _nearest(pixels[s:s + chunk], centres)[0]
    return out.reshape(n, h, w)


def dequantise(tokens: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W, 3) from tokens (N, H, W)."""
    palette = check_palette(palette)
    tokens = np.asarray(tokens)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= len(palette)):
        raise PaletteError(f"tokens outside the palette of {len(palette)} colours")
    return palette[tokens]
