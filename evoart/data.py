"""Training data of a run: a built-in procedural dataset or the user's image folder.

Built-in datasets are generated on the fly from a seed, so evoart needs no
download and ships no image files, and a run can be reproduced from its
arguments alone. A user's folder is decoded once into uint8 arrays and the
result cached *outside* that folder (evoart never writes into user data), so
the second run on the same folder starts immediately.

Everything here returns images as uint8 numpy arrays shaped (N, R, R, 3);
:mod:`evoart.imaging` converts them to the float tensors the GAN trains on.
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import PIL
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from evoart import imaging
from evoart.errors import EvoartError
from evoart.files import atomic_write_bytes
from evoart.seeds import array_digest

__all__ = [
    "BUILTIN_COUNT",
    "CACHE_VERSION",
    "DEFAULT_DATASET",
    "IMAGE_EXTENSIONS",
    "DataError",
    "DatasetInfo",
    "ImageSet",
    "decode_image",
    "default_cache_dir",
    "holdout_split",
    "list_datasets",
    "load_images",
    "load_run_data",
    "preview",
    "register_dataset",
    "require_count",
]

DEFAULT_DATASET = "shapes"
#: Images generated for a built-in dataset when no count is given: enough that
#: a short GAN training run does not simply memorise them.
BUILTIN_COUNT = 2048
#: File name endings (compared case-insensitively) that count as images in a folder.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
#: Bump when decoding changes in a way that alters pixels, to invalidate old caches.
CACHE_VERSION = 1
#: Built-ins are drawn at this multiple of the target resolution and then
#: downsampled with LANCZOS, which anti-aliases every edge for free.
SUPERSAMPLE = 4

Generator = Callable[[int, int, np.random.Generator], np.ndarray]


class DataError(EvoartError):
    """A problem with the user's data. The CLI shows the message verbatim
    (exit code 2), so every message says what is wrong and what to do."""


@dataclass(frozen=True)
class DatasetInfo:
    """Name and one-line description of a built-in dataset, for ``evoart datasets``."""

    name: str
    description: str


@dataclass(frozen=True)
class _Builtin:
    info: DatasetInfo
    generate: Generator


@dataclass(eq=False)
class ImageSet:
    """The decoded training images of a run and where they came from.

    ``fingerprint`` is the first 16 hex digits of a sha256 over the image
    array itself (shape and bytes): two ImageSets have the same fingerprint
    exactly when they hold the same pixels, whatever the path, file dates or
    library versions that produced them. Run records store it so that a
    resumed or compared run can tell whether it saw the same data.

    ``skipped`` lists ``(path, reason)`` for files that could not be used;
    ``cached`` says whether a folder was read from the decode cache.
    """

    name: str
    kind: Literal["builtin", "folder"]
    source: str
    fingerprint: str
    images: np.ndarray
    skipped: list[tuple[str, str]] = field(default_factory=list)
    cached: bool = False

    def __len__(self) -> int:
        return int(self.images.shape[0])


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


# --------------------------------------------------------------------------
# Built-in dataset: shapes
# --------------------------------------------------------------------------


def _rgb255(colour: np.ndarray) -> tuple[int, int, int]:
    return tuple(int(round(float(c) * 255.0)) for c in np.clip(colour, 0.0, 1.0))


def _shapes_background(rng: np.random.Generator, resolution: int, size: int) -> tuple[Image.Image, float]:
    """A muted light or dark background, plain or softly graded; returns (canvas, luma).

    A gradient is linear, so it is computed at the final resolution and
    upscaled bilinearly: indistinguishable, and 16x less numpy work.
    """
    hue = rng.random()
    sat = rng.uniform(0.08, 0.35)
    light = rng.random() < 0.5
    val = rng.uniform(0.78, 0.94) if light else rng.uniform(0.12, 0.28)
    first = _hsv(hue, sat, val)
    if rng.random() < 0.4:
        return Image.new("RGB", (size, size), _rgb255(first)), _luma(first)
    second = _hsv(hue + rng.uniform(-0.06, 0.06), sat + rng.uniform(-0.05, 0.1), val + rng.uniform(-0.12, 0.12))
    angle = rng.uniform(0.0, 2.0 * math.pi)
    yy, xx = _unit_grid(resolution)
    ramp = np.clip((xx - 0.5) * math.cos(angle) + (yy - 0.5) * math.sin(angle) + 0.5, 0.0, 1.0)
    small = Image.fromarray(_to_u8(first + ramp[..., None] * (second - first)), "RGB")
    return small.resize((size, size), Image.Resampling.BILINEAR), 0.5 * (_luma(first) + _luma(second))


def _shape_colour(rng: np.random.Generator, background_luma: float, taken: list[float]) -> tuple[np.ndarray, float]:
    """A saturated colour that differs in hue from ``taken`` and stands out from the background."""
    colour, hue = _hsv(0.0, 1.0, 1.0), 0.0
    for _ in range(12):
        hue = rng.random()
        colour = _hsv(hue, rng.uniform(0.7, 1.0), rng.uniform(0.8, 1.0))
        distinct = all(min(abs(hue - other), 1.0 - abs(hue - other)) > 0.12 for other in taken)
        if distinct and abs(_luma(colour) - background_luma) > 0.22:
            break
    return colour, hue


def _place(rng: np.random.Generator, radius: float, placed: list[tuple[float, float, float]]) -> tuple[float, float]:
    """A centre that keeps the shape inside the image and mostly clear of earlier
    shapes (a GAN learns shapes faster when they are not piled up)."""
    cx = cy = 0.5
    for _ in range(10):
        cx, cy = rng.uniform(radius, 1.0 - radius, 2)
        if all(math.hypot(cx - ox, cy - oy) > 0.75 * (radius + other) for ox, oy, other in placed):
            break
    return float(cx), float(cy)


def _polygon(cx: float, cy: float, radius: float, sides: int, angle: float, size: int) -> list[tuple[float, float]]:
    turns = angle + 2.0 * math.pi * np.arange(sides) / sides
    return [(size * (cx + radius * math.cos(t)), size * (cy + radius * math.sin(t))) for t in turns]


@register_dataset(
    "shapes",
    "One to three filled circles, squares and triangles in saturated colours on a plain or "
    "softly graded background. Simple on purpose: a tiny GAN shows recognisable shapes quickly.",
)
def generate_shapes(count: int, resolution: int, rng: np.random.Generator) -> np.ndarray:
    size = SUPERSAMPLE * resolution
    out = np.empty((count, resolution, resolution, 3), np.uint8)
    for index in range(count):
        canvas, background_luma = _shapes_background(rng, resolution, size)
        draw = ImageDraw.Draw(canvas)
        n_shapes = 1 + int(np.searchsorted([0.4, 0.75], rng.random()))  # 1, 2, 3 shapes: 40/35/25 %
        radii = np.sort(rng.uniform(0.14, 0.28, n_shapes))[::-1]  # large first: small ones stay visible
        hues: list[float] = []
        placed: list[tuple[float, float, float]] = []
        for radius in radii:
            kind = int(rng.integers(3))
            colour, hue = _shape_colour(rng, background_luma, hues)
            hues.append(hue)
            cx, cy = _place(rng, radius, placed)
            placed.append((cx, cy, radius))
            angle = rng.uniform(0.0, 2.0 * math.pi)
            fill = _rgb255(colour)
            if kind == 0:  # circle: a bit smaller than its bounding radius so areas match
                r = 0.85 * radius * size
                draw.ellipse((cx * size - r, cy * size - r, cx * size + r, cy * size + r), fill=fill)
            elif kind == 1:  # square, any rotation
                draw.polygon(_polygon(cx, cy, radius, 4, angle, size), fill=fill)
            else:  # equilateral triangle, any rotation
                draw.polygon(_polygon(cx, cy, radius, 3, angle, size), fill=fill)
        out[index] = _downsample(canvas, resolution)
    return out


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


def _generate_builtin(name: str, count: int, resolution: int, seed: int) -> np.ndarray:
    entry = _REGISTRY[name]
    images = entry.generate(count, resolution, np.random.default_rng(seed))
    return _check_generated(name, images, count, resolution)


# --------------------------------------------------------------------------
# Folders
# --------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """Where decoded folders are cached when no ``cache_dir`` is given:
    ``$EVOART_CACHE``, else the user's cache folder (``evoart.paths.cache_dir``)."""
    from .paths import cache_dir

    return cache_dir()


@dataclass(frozen=True)
class _Candidate:
    relative: str
    path: Path
    size: int
    mtime_ns: int


def _find_candidates(folder: Path) -> list[_Candidate]:
    """Files under ``folder`` with an image extension, in sorted order.

    Hidden files and folders (names starting with '.', e.g. ``.thumbnails``
    or macOS ``._`` files) are ignored, and symlinked folders are not
    followed, so a folder cannot pull in unrelated or duplicate images.
    """
    found = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(name for name in dirs if not name.startswith("."))
        for name in files:
            if name.startswith(".") or not name.lower().endswith(IMAGE_EXTENSIONS):
                continue
            path = Path(root) / name
            try:
                stat = path.stat()
                size, mtime_ns = stat.st_size, stat.st_mtime_ns
            except OSError:  # a broken link: listed, and reported as skipped when decoded
                size, mtime_ns = -1, -1
            found.append(_Candidate(path.relative_to(folder).as_posix(), path, size, mtime_ns))
    return sorted(found, key=lambda candidate: candidate.relative)


def _grey_to_8bit(image: Image.Image) -> Image.Image:
    """Scale 16/32-bit greyscale to 8 bit (PIL's own conversion clips to white).

    ``I;16*`` is 16-bit by definition. Mode ``I`` carries no bit depth, so it
    is read as 8-bit if every value fits, else as 16-bit.
    """
    values = np.asarray(image).astype(np.float64)
    if image.mode.startswith("I;16") or values.max(initial=0) > 255:
        values = values / 257.0
    return Image.fromarray(np.rint(np.clip(values, 0, 255)).astype(np.uint8), "L")


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB. Transparency is composited onto black, i.e. colour
    times alpha: it invents no light, and transparent sprites then read as
    objects on the same dark ground evoart shows its grids on."""
    if image.mode.startswith("I") or image.mode == "F":
        return _grey_to_8bit(image).convert("RGB")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La", "P") or "transparency" in image.info
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    return Image.alpha_composite(black, rgba).convert("RGB")


def decode_image(path: Path, resolution: int) -> np.ndarray:
    """Decode one file to uint8 (resolution, resolution, 3); raises if the file is unusable.

    Steps: first frame only (animated GIF/WebP), EXIF orientation applied,
    converted to RGB, centre-cropped to a square, resized with LANCZOS. JPEGs
    are decoded at reduced size (``draft``) when they are much larger than
    needed, which makes big photo folders several times faster to load.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PIL warns about odd EXIF/palettes; the file still loads
        with Image.open(path) as opened:
            opened.draft(None, (2 * resolution, 2 * resolution))
            upright = ImageOps.exif_transpose(opened)
            upright.load()
            rgb = _to_rgb(upright)
    width, height = rgb.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = rgb.resize(
        (resolution, resolution),
        Image.Resampling.LANCZOS,
        box=(left, top, left + side, top + side),
        reducing_gap=3.0,
    )
    return np.asarray(square, dtype=np.uint8)


def _skip_reason(error: Exception) -> str:
    """A short, user-readable reason why a file was skipped."""
    text = str(error)
    if isinstance(error, UnidentifiedImageError):
        return "not a readable image (format not recognised)"
    if isinstance(error, Image.DecompressionBombError):
        return "too many pixels (PIL decompression-bomb limit)"
    if isinstance(error, PermissionError):
        return "permission denied"
    if isinstance(error, FileNotFoundError):
        return "file vanished or is a broken link"
    if "truncated" in text.lower():
        return "truncated file"
    detail = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return detail if len(detail) <= 100 else detail[:97] + "..."


def _decode_all(
    candidates: list[_Candidate], resolution: int, progress: Callable[[int, int], None] | None
) -> tuple[np.ndarray, list[tuple[str, str]]]:
    images = []
    skipped = []
    for done, candidate in enumerate(candidates, start=1):
        try:
            images.append(decode_image(candidate.path, resolution))
        except Exception as error:  # one bad file must never stop a run: report it instead
            skipped.append((str(candidate.path), _skip_reason(error)))
        if progress is not None:
            progress(done, len(candidates))
    stacked = np.stack(images) if images else np.empty((0, resolution, resolution, 3), np.uint8)
    return stacked, skipped


def _cache_path(cache_root: Path, folder: Path, resolution: int, candidates: list[_Candidate]) -> tuple[Path, str]:
    """Cache file and full key for this folder listing.

    The key covers the folder, every candidate's (relative path, size,
    mtime_ns), the resolution, CACHE_VERSION and the Pillow version, so any
    added, removed or modified file (or a decoder upgrade) misses the cache.
    The file name starts with a per-(folder, resolution) slot so that stale
    entries of the same slot can be removed when a new one is written.
    """
    listing = [[c.relative, c.size, c.mtime_ns] for c in candidates]
    payload = {
        "version": CACHE_VERSION,
        "pillow": PIL.__version__,
        "folder": str(folder),
        "resolution": resolution,
        "files": listing,
    }
    key = hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()
    slot = hashlib.sha256(json.dumps([str(folder), resolution]).encode()).hexdigest()[:16]
    return cache_root / "images" / f"{slot}-{key[:32]}.npz", key


def _read_cache(path: Path, key: str, resolution: int) -> tuple[np.ndarray, list[tuple[str, str]]] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["key"]) != key:
                return None
            images = stored["images"]
            skipped = [(str(p), str(r)) for p, r in stored["skipped"]]
    except Exception:  # a corrupt or foreign cache file is just a miss
        return None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (resolution, resolution, 3):
        return None
    return images, skipped


def _write_cache(path: Path, key: str, images: np.ndarray, skipped: list[tuple[str, str]]) -> None:
    """Store atomically so that concurrent runs never read half a file; failures are
    ignored because the cache is only a speed-up."""
    import io

    try:
        buf = io.BytesIO()
        np.savez(buf, key=np.array(key), images=images, skipped=np.array(skipped, dtype=str).reshape(-1, 2))
        atomic_write_bytes(path, buf.getvalue(), durable=False)
        slot = path.name.split("-", 1)[0]
        for stale in path.parent.glob(f"{slot}-*.npz"):
            if stale != path:
                stale.unlink(missing_ok=True)
    except OSError:
        pass


def _fingerprint(images: np.ndarray) -> str:
    return array_digest(images)


def _load_folder(
    folder: Path,
    resolution: int,
    *,
    count: int | None,
    cache_dir: Path | None,
    progress: Callable[[int, int], None] | None,
) -> ImageSet:
    candidates = _find_candidates(folder)
    if not candidates:
        extensions = ", ".join(IMAGE_EXTENSIONS)
        raise DataError(f"No images found in {folder} (looked for {extensions} recursively)")
    cache_file, key = _cache_path(Path(cache_dir or default_cache_dir()), folder, resolution, candidates)
    loaded = _read_cache(cache_file, key, resolution)
    cached = loaded is not None
    if loaded is None:
        loaded = _decode_all(candidates, resolution, progress)
        _write_cache(cache_file, key, *loaded)
    elif progress is not None:
        progress(len(candidates), len(candidates))
    images, skipped = loaded
    if len(images) == 0:
        example_path, example_reason = skipped[0]
        raise DataError(
            f"None of the {len(candidates)} image files in {folder} could be read "
            f"(for example {example_path}: {example_reason}). "
            "Check that the files are intact images, or point evoart at another folder."
        )
    if count is not None:
        images = images[:count]
    return ImageSet(
        name=folder.name,
        kind="folder",
        source=str(folder),
        fingerprint=_fingerprint(images),
        images=images,
        skipped=skipped,
        cached=cached,
    )


# --------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------


def _check_positive(value: int | None, what: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
        raise DataError(f"{what} must be a positive whole number, got {value!r}")


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # e.g. a name too long to be a path: treat as "no such folder"
        return False


def load_images(
    source: str | os.PathLike,
    resolution: int,
    *,
    count: int | None = None,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImageSet:
    """Load the training images named by ``source``.

    ``source`` is an existing folder (searched recursively) or else the name
    of a built-in dataset; an existing path always wins, so a folder called
    ``shapes`` in the working directory is loaded as a folder.

    Built-in: ``count or BUILTIN_COUNT`` images generated from
    ``np.random.default_rng(seed)``; identical arguments give identical bytes.
    Folder: every readable image, centre-cropped and resized to
    ``resolution``, in sorted path order; ``count`` (if given) keeps the first
    ``count`` of them; ``seed`` is not used. Unreadable files are listed in
    ``ImageSet.skipped``. The decoded folder is cached under ``cache_dir``
    (default :func:`default_cache_dir`), never inside the folder itself.
    ``progress(done, total)`` is called after each decoded file (once with
    ``(total, total)`` on a cache hit).

    Raises DataError for a missing path that is not a built-in name, a path
    that is a file, or a folder without usable images.
    """
    _check_positive(resolution, "Resolution")
    _check_positive(count, "Image count")
    path = Path(source).expanduser()
    if _exists(path):
        if not path.is_dir():
            raise DataError(
                f"{path.resolve()} is a file, not a folder. Give a folder of images "
                f"(searched recursively) or a built-in dataset ({_builtin_names()})."
            )
        return _load_folder(path.resolve(), int(resolution), count=count, cache_dir=cache_dir, progress=progress)
    name = str(source)
    if name in _REGISTRY:
        images = _generate_builtin(name, int(count or BUILTIN_COUNT), int(resolution), seed)
        return ImageSet(
            name=name, kind="builtin", source=name, fingerprint=_fingerprint(images), images=images, skipped=[]
        )
    raise DataError(
        f"{path.absolute()} does not exist, and {name!r} is not a built-in dataset. "
        f"Give an existing image folder or one of the built-in datasets: {_builtin_names()}."
    )


def require_count(imageset: ImageSet, needed: int, why: str) -> None:
    """Raise DataError unless ``imageset`` holds at least ``needed`` images.

    ``why`` completes the sentence "evoart needs at least N: ..." and should
    say what the images are needed for and what the user can change.
    """
    have = len(imageset.images)
    if have >= needed:
        return
    where = imageset.source if imageset.kind == "folder" else f"the built-in dataset {imageset.name!r}"
    noun = "image" if have == 1 else "images"
    skipped = f" ({len(imageset.skipped)} skipped)" if imageset.skipped else ""
    raise DataError(f"Only {have} usable {noun} in {where}{skipped}; evoart needs at least {needed}: {why}")


def holdout_split(n: int, n_holdout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into (train, held-out) index arrays with a seeded permutation.

    The held-out images are never trained on, so metrics on them measure
    generalisation rather than memorisation. Both arrays are sorted int64 and
    disjoint, and together cover ``range(n)``; the same arguments always give
    the same split.
    """
    if not 0 <= n_holdout <= n:
        raise ValueError(f"n_holdout must be between 0 and n={n}, got {n_holdout}")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_holdout:]).astype(np.int64), np.sort(order[:n_holdout]).astype(np.int64)


def load_run_data(cfg, progress: Callable[[int, int], None] | None = None) -> tuple[ImageSet, np.ndarray, np.ndarray]:
    """A run's images (``cfg``: an ``EvolveConfig``) split into a training set and a
    held-out set nobody trains on: ``(ImageSet, train uint8, held-out uint8)``."""
    from .genome import BATCH_SIZES

    images = load_images(cfg.data, cfg.resolution, progress=progress)
    require_count(images, max(BATCH_SIZES) + cfg.holdout,
                  f"the largest batch ({max(BATCH_SIZES)}) plus the held-out split ({cfg.holdout})")
    train_idx, hold_idx = holdout_split(len(images.images), cfg.holdout, seed=cfg.seed)
    return images, images.images[train_idx], images.images[hold_idx]


def preview(
    name_or_path: str | os.PathLike,
    resolution: int,
    n: int = 64,
    seed: int = 0,
    *,
    scale: int | None = None,
    cache_dir: Path | None = None,
) -> Image.Image:
    """A grid of the first ``n`` images of a dataset, for ``evoart datasets preview``.

    For built-ins these are exactly the first ``n`` images a run with the
    same seed trains on. ``scale`` defaults to whatever makes tiles about
    96 px, since 32 px images are too small to judge at 1:1.
    """
    imageset = load_images(name_or_path, resolution, count=n, seed=seed, cache_dir=cache_dir)
    scale = scale or max(1, math.ceil(96 / resolution))
    return imaging.image_grid(imageset.images[:n], scale=scale)
