"""Built-in dataset: patterns."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from .builtin import _check_generated, _rgb255, _downsample, _hsv, _luma, _to_u8, _unit_grid, register_dataset  # noqa: F401
from .types import SUPERSAMPLE

# --------------------------------------------------------------------------
# Built-in dataset: patterns
# --------------------------------------------------------------------------


def _pattern_palette(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two colours with clear brightness contrast: complementary, light/dark of one hue, or neutral + accent."""
    first = second = _hsv(0.0, 0.0, 0.0)
    for _ in range(12):
        hue = rng.random()
        scheme = int(rng.integers(3))
        if scheme == 0:
            first = _hsv(hue, rng.uniform(0.6, 0.9), rng.uniform(0.85, 1.0))
            second = _hsv(hue + 0.5 + rng.uniform(-0.05, 0.05), rng.uniform(0.6, 0.9), rng.uniform(0.3, 0.6))
        elif scheme == 1:
            first = _hsv(hue, rng.uniform(0.15, 0.35), rng.uniform(0.9, 1.0))
            second = _hsv(hue + rng.uniform(-0.06, 0.06), rng.uniform(0.6, 0.9), rng.uniform(0.25, 0.5))
        else:
            neutral_light = rng.random() < 0.5
            first = _hsv(rng.uniform(0.08, 0.12), rng.uniform(0.03, 0.12), 0.95 if neutral_light else 0.15)
            second = _hsv(hue, rng.uniform(0.7, 0.95), rng.uniform(0.55, 0.8) if neutral_light else rng.uniform(0.85, 1.0))
        if abs(_luma(first) - _luma(second)) > 0.28:
            break
    if rng.random() < 0.5:
        first, second = second, first
    return first, second


@register_dataset(
    "patterns",
    "Two-colour stripes, checkerboards and concentric rings of random orientation, "
    "frequency and palette.",
)
def generate_patterns(count: int, resolution: int, rng: np.random.Generator) -> np.ndarray:
    size = SUPERSAMPLE * resolution
    yy, xx = _unit_grid(size)
    yy, xx = yy - 0.5, xx - 0.5
    out = np.empty((count, resolution, resolution, 3), np.uint8)
    for index in range(count):
        first, second = (_rgb255(c) for c in _pattern_palette(rng))
        kind = int(rng.integers(3))
        angle = rng.uniform(0.0, math.pi)
        cos, sin = math.cos(angle), math.sin(angle)
        phase = rng.random()
        if kind == 0:  # stripes
            freq, duty = rng.uniform(1.5, 4.5), rng.uniform(0.35, 0.65)
            u = (xx * (cos * freq)) + (yy * (sin * freq) + phase)
            mask = (u - np.floor(u)) < duty
        elif kind == 1:  # checkers
            freq = rng.uniform(1.5, 3.5)
            u = np.floor((xx * (cos * freq)) + (yy * (sin * freq) + phase))
            v = np.floor((yy * (cos * freq) + phase) - (xx * (sin * freq)))
            mask = (u + v) % 2 == 0
        else:  # concentric rings around a centre that may lie off the image
            freq, duty = rng.uniform(2.0, 5.0), rng.uniform(0.35, 0.65)
            cx, cy = rng.uniform(-0.7, 0.7, 2)
            r = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) * freq + phase
            mask = (r - np.floor(r)) < duty
        # A two-entry palette image: PIL expands it to RGB far faster than numpy would.
        canvas = Image.fromarray(mask.astype(np.uint8), "P")
        canvas.putpalette(second + first)
        out[index] = _downsample(canvas.convert("RGB"), resolution)
    return out


