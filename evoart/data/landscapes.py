"""Built-in dataset: landscapes."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from .builtin import _check_generated, _downsample, _hsv, _luma, _to_u8, _unit_grid, register_dataset  # noqa: F401
from .types import SUPERSAMPLE

from dataclasses import dataclass

# --------------------------------------------------------------------------
# Built-in dataset: landscapes
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Mood:
    """A hand-tuned palette family; values are (hue, sat, val) ranges."""

    sky_top: tuple[tuple[float, float], ...]
    horizon: tuple[tuple[float, float], ...]
    disc: tuple[tuple[float, float], ...]
    land: tuple[tuple[float, float], ...]
    disc_y: tuple[float, float]
    glow: float


_MOODS = (
    _Mood(  # clear day: blue sky, white sun, green-blue hills
        sky_top=((0.56, 0.61), (0.5, 0.7), (0.7, 0.88)),
        horizon=((0.53, 0.58), (0.12, 0.25), (0.93, 1.0)),
        disc=((0.12, 0.15), (0.05, 0.15), (1.0, 1.0)),
        land=((0.38, 0.5), (0.4, 0.6), (0.2, 0.32)),
        disc_y=(0.1, 0.3),
        glow=0.35,
    ),
    _Mood(  # sunset: violet sky over an orange horizon, pale yellow sun, purple mountains
        sky_top=((0.72, 0.8), (0.45, 0.65), (0.35, 0.5)),
        horizon=((0.02, 0.09), (0.55, 0.75), (0.95, 1.0)),
        disc=((0.11, 0.14), (0.25, 0.5), (1.0, 1.0)),
        land=((0.76, 0.84), (0.45, 0.65), (0.12, 0.2)),
        disc_y=(0.3, 0.5),
        glow=0.5,
    ),
    _Mood(  # dusk: deep blue over pink, moon, indigo mountains
        sky_top=((0.62, 0.67), (0.6, 0.8), (0.22, 0.32)),
        horizon=((0.9, 0.98), (0.3, 0.45), (0.78, 0.9)),
        disc=((0.12, 0.14), (0.05, 0.12), (0.95, 1.0)),
        land=((0.67, 0.72), (0.5, 0.7), (0.08, 0.14)),
        disc_y=(0.12, 0.35),
        glow=0.2,
    ),
    _Mood(  # night: near-black navy, teal horizon, pale moon
        sky_top=((0.62, 0.66), (0.7, 0.9), (0.07, 0.13)),
        horizon=((0.52, 0.57), (0.45, 0.65), (0.3, 0.42)),
        disc=((0.13, 0.15), (0.05, 0.15), (0.92, 1.0)),
        land=((0.6, 0.65), (0.5, 0.7), (0.04, 0.08)),
        disc_y=(0.1, 0.3),
        glow=0.15,
    ),
    _Mood(  # desert: pale blue to warm sand, white sun, terracotta ridges
        sky_top=((0.55, 0.58), (0.3, 0.45), (0.85, 0.95)),
        horizon=((0.08, 0.11), (0.25, 0.4), (0.97, 1.0)),
        disc=((0.12, 0.14), (0.05, 0.1), (1.0, 1.0)),
        land=((0.02, 0.05), (0.6, 0.75), (0.4, 0.55)),
        disc_y=(0.1, 0.3),
        glow=0.3,
    ),
    _Mood(  # golden hour: teal sky to gold, near-white sun, deep teal hills
        sky_top=((0.48, 0.53), (0.4, 0.6), (0.5, 0.65)),
        horizon=((0.1, 0.13), (0.45, 0.6), (0.97, 1.0)),
        disc=((0.13, 0.15), (0.03, 0.1), (1.0, 1.0)),
        land=((0.48, 0.53), (0.55, 0.75), (0.15, 0.24)),
        disc_y=(0.15, 0.35),
        glow=0.3,
    ),
)


def _pick(rng: np.random.Generator, ranges: tuple[tuple[float, float], ...]) -> np.ndarray:
    return _hsv(*(rng.uniform(low, high) for low, high in ranges))


def _ridgeline(rng: np.random.Generator, knots: int, width: int, smooth: bool) -> np.ndarray:
    """A random-walk ridgeline normalised to [0, 1] (1 = highest), sampled at ``width`` columns.

    Many knots with linear interpolation give jagged far peaks; few knots with
    cosine interpolation give rolling near hills.
    """
    walk = np.cumsum(rng.normal(size=knots))
    walk = (walk - walk.min()) / max(float(np.ptp(walk)), 1e-6)
    position = np.linspace(0.0, knots - 1.0, width)
    left = np.minimum(position.astype(int), knots - 2)
    frac = position - left
    if smooth:
        frac = 0.5 - 0.5 * np.cos(math.pi * frac)
    return (walk[left] * (1.0 - frac) + walk[left + 1] * frac).astype(np.float32)


@register_dataset(
    "landscapes",
    "Layered mountain silhouettes under a gradient sky with a sun or moon, in day, sunset, "
    "dusk, night, desert and golden-hour palettes: the 'art' dataset.",
)
def generate_landscapes(count: int, resolution: int, rng: np.random.Generator) -> np.ndarray:
    size = SUPERSAMPLE * resolution
    yy, xx = _unit_grid(size)
    out = np.empty((count, resolution, resolution, 3), np.uint8)
    for index in range(count):
        mood = _MOODS[int(rng.integers(len(_MOODS)))]
        top, horizon, disc, land = (_pick(rng, ranges) for ranges in (mood.sky_top, mood.horizon, mood.disc, mood.land))

        # Ridgelines first (far to near), so the sun can be placed above the far ridge.
        layers = int(rng.integers(2, 4))
        ridges = []
        for layer in range(layers):
            depth = layer / (layers - 1)  # 0 = farthest, 1 = nearest
            base = 0.55 + 0.27 * depth + rng.uniform(-0.03, 0.03)
            height = (0.24 - 0.12 * depth) * rng.uniform(0.75, 1.15)
            knots = int(rng.integers(8, 15)) if depth < 0.5 else int(rng.integers(4, 8))
            ridges.append((depth, base - height * _ridgeline(rng, knots, size, smooth=depth >= 0.5)))

        # The canvas is planar (3, size, size): numpy is several times faster
        # when the innermost axis is a pixel row rather than 3 channels.
        top, horizon, disc, land = (colour[:, None, None] for colour in (top, horizon, disc, land))

        # Sky: vertical gradient, computed as one column and broadcast.
        horizon_y = rng.uniform(0.55, 0.7)
        ramp = np.clip(yy / horizon_y, 0.0, 1.0) ** 1.4
        sky = top + ramp * (horizon - top)  # (3, size, 1)

        # Sun or moon with a soft glow (separable Gaussian), sitting above the far ridge.
        radius = rng.uniform(0.06, 0.11)
        cx = rng.uniform(0.15, 0.85)
        far_ridge_at_disc = float(ridges[0][1][min(int(cx * size), size - 1)])
        cy = min(rng.uniform(*mood.disc_y), far_ridge_at_disc - 0.4 * radius)
        spread = (3.5 * radius) ** 2
        glow = (mood.glow * np.exp(-((yy - cy) ** 2) / spread)) * np.exp(-((xx - cx) ** 2) / spread)
        canvas = sky + glow * (disc - sky)
        inside = ((yy - cy) ** 2 + (xx - cx) ** 2) <= radius**2
        canvas = np.where(inside, disc, canvas)

        # Mountains: each layer mixes toward the horizon colour with distance
        # (aerial perspective) and fades into valley mist toward its foot.
        fog = rng.uniform(0.3, 0.6)
        for depth, ridge in ridges:
            colour = horizon + (0.4 + 0.6 * depth) * (land - horizon)
            mist = (fog * (1.0 - 0.7 * depth)) * np.clip((yy - float(ridge.min())) / 0.35, 0.0, 1.0)
            shaded = colour + mist * (horizon - colour)  # (3, size, 1)
            canvas = np.where(yy >= ridge[None, :], shaded, canvas)
        # Every pixel is a convex mix of colours in [0, 1], so no clipping is needed.
        pixels = (canvas * 255.0 + 0.5).astype(np.uint8).transpose(1, 2, 0)
        out[index] = _downsample(Image.fromarray(np.ascontiguousarray(pixels), "RGB"), resolution)
    return out


