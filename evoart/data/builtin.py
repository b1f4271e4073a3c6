"""The registry of built-in procedural datasets and the drawing helpers they share.

Built-in datasets are generated on the fly from a seed, so evoart needs no download and
ships no image files, and a run can be reproduced from its arguments alone.
"""

from __future__ import annotations

import colorsys
from typing import Callable

import numpy as np
from PIL import Image

from .types import DatasetInfo, Generator, _Builtin

# --------------------------------------------------------------------------
# Registry of built-in datasets
# --------------------------------------------------------------------------

# The registry is module state on purpose: generators register themselves at
# import time, like entry points. It is only ever added to by
# ``register_dataset``; nothing else here depends on mutable globals.
_REGISTRY: dict[str, _Builtin] = {}


def register_dataset(name: str, description: str) -> Callable[[Generator], Generator]:
    """Register ``fn(count, resolution, rng) -> uint8 (count, R, R, 3)`` as a built-in.

    Generators must draw everything from ``rng`` (so a seed reproduces the
    dataset byte for byte) and should draw image by image, so that the first
    k images of a large dataset equal a dataset of k images: previews then
    show exactly the images a run trains on.
    """

    def decorate(fn: Generator) -> Generator:
        if name in _REGISTRY:
            raise ValueError(f"a built-in dataset named {name!r} is already registered")
        _REGISTRY[name] = _Builtin(DatasetInfo(name=name, description=description), fn)
        return fn

    return decorate


def list_datasets() -> list[DatasetInfo]:
    """The built-in datasets, in registration order (the default first)."""
    return [entry.info for entry in _REGISTRY.values()]


def _builtin_names() -> str:
    return ", ".join(_REGISTRY)


# --------------------------------------------------------------------------
# Drawing helpers for the generators (all colours are float RGB in [0, 1])
# --------------------------------------------------------------------------


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0)), np.float32)


def _luma(rgb: np.ndarray) -> float:
    """Perceived brightness (Rec. 709 weights); used to guarantee contrast."""
    return float(rgb @ np.array([0.2126, 0.7152, 0.0722], np.float32))


def _unit_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1]: a (size, 1) column and a (1, size) row."""
    coords = ((np.arange(size, dtype=np.float32) + 0.5) / size).astype(np.float32)
    return coords[:, None], coords[None, :]


def _to_u8(canvas: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(canvas, 0.0, 1.0) * 255.0).astype(np.uint8)


def _downsample(canvas: Image.Image, resolution: int) -> np.ndarray:
    """Supersampled canvas -> final uint8 image (LANCZOS anti-aliases the edges)."""
    return np.asarray(canvas.resize((resolution, resolution), Image.Resampling.LANCZOS), dtype=np.uint8)


def _check_generated(name: str, images: np.ndarray, count: int, resolution: int) -> np.ndarray:
    expected = (count, resolution, resolution, 3)
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.shape != expected:
        got = (getattr(images, "dtype", type(images)), getattr(images, "shape", None))
        raise ValueError(f"built-in dataset {name!r} returned {got}, expected uint8 {expected}")
    return images



def _generate_builtin(name: str, count: int, resolution: int, seed: int) -> np.ndarray:
    entry = _REGISTRY[name]
    images = entry.generate(count, resolution, np.random.default_rng(seed))
    return _check_generated(name, images, count, resolution)


def _rgb255(colour: np.ndarray) -> tuple[int, int, int]:
    return tuple(int(round(float(c) * 255.0)) for c in np.clip(colour, 0.0, 1.0))
