"""Ornaments: measurable properties of an individual's fixed-latent samples, the "peacock's
tail" that mate choice under ``--mate-choice runaway`` looks at (docs/RUNAWAY.md).

Each ornament is a number with a stated range, computed once per individual from its
samples (uint8 images (N, R, R, 3), as ``fitness.evaluate`` draws them from the run's
fixed latents) and stored in the ledger beside its metrics, under ``ornament.<name>``.
The registry below is the one list: its order is the order of the preference genes
(``genome.ORNAMENTS``), and ``record()`` is what a run writes down about it. numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .genome import ORNAMENTS

#: The version of the ornaments' definitions; changes whenever a value would change.
ORNAMENTS_VERSION = 1
PREFIX = "ornament."

_EDGE_THRESHOLD = 0.1     # a luminance step of 10% of the range between neighbours is an edge
_HIGH_FREQUENCY = 0.25    # cycles per pixel: half the Nyquist frequency


@dataclass(frozen=True)
class Ornament:
    name: str
    low: float
    high: float
    circular: bool          # hue: a value on a wheel (high wraps around to low)
    unit: str
    description: str
    compute: Callable[[np.ndarray], float]

    @property
    def key(self) -> str:
        return PREFIX + self.name

    def to_dict(self) -> dict:
        return {"range": [self.low, self.high], "circular": self.circular, "unit": self.unit,
                "description": self.description}


_REGISTRY: dict[str, Ornament] = {}


def register_ornament(name: str, *, low: float, high: float, description: str, unit: str = "",
                      circular: bool = False):
    """Register ``fn(images float (N, R, R, 3) in [0, 1]) -> float`` as ornament ``name``."""
    if name not in ORNAMENTS:
        raise ValueError(f"ornament {name!r} has no preference gene (genome.ORNAMENTS: {', '.join(ORNAMENTS)})")
    if name in _REGISTRY:
        raise ValueError(f"ornament {name!r} is already registered")

    def decorator(fn):
        _REGISTRY[name] = Ornament(name, low, high, circular, unit, description, fn)
        return fn

    return decorator


def _luminance(x: np.ndarray) -> np.ndarray:
    return x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114


def _chroma(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    hi, lo = x.max(axis=-1), x.min(axis=-1)
    return hi, lo, hi - lo


@register_ornament("saturation", low=0.0, high=1.0,
                   description="mean HSV saturation of the pixels: 0 grey, 1 pure colours")
def _saturation(x: np.ndarray) -> float:
    hi, _, c = _chroma(x)
    return float(np.where(hi > 0, c / np.maximum(hi, 1e-12), 0.0).mean())


@register_ornament("contrast", low=0.0, high=0.5,
                   description="RMS contrast: the standard deviation of each image's luminance, averaged")
def _contrast(x: np.ndarray) -> float:
    return float(_luminance(x).reshape(len(x), -1).std(axis=1).mean())


@register_ornament("edges", low=0.0, high=1.0,
                   description="edge density: share of pixels whose luminance gradient is above 0.1")
def _edges(x: np.ndarray) -> float:
    # forward differences: a central one would miss the finest (two-pixel) stripes
    y = _luminance(x)
    gx = np.zeros_like(y)
    gy = np.zeros_like(y)
    gx[:, :, :-1] = y[:, :, 1:] - y[:, :, :-1]
    gy[:, :-1, :] = y[:, 1:, :] - y[:, :-1, :]
    return float((np.hypot(gx, gy) > _EDGE_THRESHOLD).mean())


@register_ornament("symmetry", low=0.0, high=1.0,
                   description="left-right symmetry: 1 minus the mean difference between an image and its mirror")
def _symmetry(x: np.ndarray) -> float:
    return float(1.0 - np.abs(x - x[:, :, ::-1, :]).mean())


@register_ornament("hue", low=0.0, high=360.0, unit="°", circular=True,
                   description="dominant hue: the chroma-weighted circular mean of the pixels' hues "
                               "(0 red, 120 green, 240 blue; 0 for grey images)")
def _hue(x: np.ndarray) -> float:
    hi, lo, c = _chroma(x)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    safe = np.maximum(c, 1e-12)
    h = np.where(hi == r, ((g - b) / safe) % 6, np.where(hi == g, (b - r) / safe + 2, (r - g) / safe + 4))
    angle = h * (np.pi / 3)
    sx, sy = float((c * np.cos(angle)).sum()), float((c * np.sin(angle)).sum())
    if np.hypot(sx, sy) <= 1e-9 * max(1.0, float(c.sum())):
        return 0.0
    return float(np.degrees(np.arctan2(sy, sx)) % 360.0)


@register_ornament("detail", low=0.0, high=1.0,
                   description="high-frequency energy: share of the luminance spectrum's power (mean "
                               "removed) above half the Nyquist frequency")
def _detail(x: np.ndarray) -> float:
    y = _luminance(x)
    y = y - y.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(y)) ** 2
    fy = np.fft.fftfreq(y.shape[1])[:, None]
    fx = np.fft.fftfreq(y.shape[2])[None, :]
    high = np.hypot(fy, fx) > _HIGH_FREQUENCY
    total = float(power.sum())
    return float(power[:, high].sum() / total) if total > 1e-12 else 0.0


def registry() -> list[Ornament]:
    """Every ornament, in the order of the preference genes."""
    return [_REGISTRY[n] for n in ORNAMENTS]


def get(name: str) -> Ornament:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown ornament {name!r}; known: {', '.join(ORNAMENTS)}") from None


def keys() -> list[str]:
    """The ledger's metric names of the ornaments ("ornament.saturation", ...)."""
    return [o.key for o in registry()]


def compute(samples: np.ndarray) -> dict[str, float]:
    """Every ornament of one individual's samples (uint8 (N, R, R, 3)), keyed as stored."""
    x = np.asarray(samples)
    if x.ndim != 4 or x.shape[-1] != 3 or len(x) == 0:
        raise ValueError(f"ornaments need images shaped (N, R, R, 3), got {x.shape}")
    x = x.astype(np.float64) / 255.0
    return {o.key: o.compute(x) for o in registry()}


def of(metrics: dict[str, float]) -> dict[str, float] | None:
    """An individual's ornaments by name from its metrics, or None when it has none."""
    if not all(o.key in metrics for o in registry()):
        return None
    return {o.name: float(metrics[o.key]) for o in registry()}


def record() -> dict:
    """What a run records about its ornaments: the version and each one's range."""
    return {"version": ORNAMENTS_VERSION, "ornaments": {o.name: o.to_dict() for o in registry()}}


assert set(_REGISTRY) == set(ORNAMENTS), "every preference gene needs an ornament"
