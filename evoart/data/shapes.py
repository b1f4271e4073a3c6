"""Built-in dataset: shapes."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .builtin import _check_generated, _rgb255, _downsample, _hsv, _luma, _to_u8, _unit_grid, register_dataset  # noqa: F401
from .types import SUPERSAMPLE

# --------------------------------------------------------------------------
# Built-in dataset: shapes
# --------------------------------------------------------------------------


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
    return _draw_shapes(count, resolution, rng, None)


#: The shape kinds of ``shapes``, in the order of their label numbers.
SHAPE_KINDS = ("circle", "square", "triangle")


def shapes_with_labels(count: int, resolution: int, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The built-in ``shapes`` images for ``seed`` (the same pixels as
    ``load_images("shapes", resolution, count=count, seed=seed)``) and the generator's
    own labels: ``count`` (1-3 shapes, int64), ``kind`` (the largest shape's kind, an
    index into :data:`SHAPE_KINDS`; it is drawn first, so later shapes may overlap it)
    and ``kinds`` (every shape's kind, largest first, -1 where there is none; (N, 3))."""
    labels: list[list[int]] = []
    images = _draw_shapes(count, resolution, np.random.default_rng(seed), labels)
    kinds = np.full((count, 3), -1, np.int64)
    for i, row in enumerate(labels):
        kinds[i, :len(row)] = row
    return images, {"count": np.array([len(row) for row in labels], np.int64), "kind": kinds[:, 0], "kinds": kinds}


def _draw_shapes(count: int, resolution: int, rng: np.random.Generator, labels: list | None) -> np.ndarray:
    """The images of ``shapes``; with ``labels`` (a list), each image's shape kinds are
    appended to it. Labels are read off the draws, never drawn: the pixels are the same."""
    size = SUPERSAMPLE * resolution
    out = np.empty((count, resolution, resolution, 3), np.uint8)
    for index in range(count):
        canvas, background_luma = _shapes_background(rng, resolution, size)
        draw = ImageDraw.Draw(canvas)
        n_shapes = 1 + int(np.searchsorted([0.4, 0.75], rng.random()))  # 1, 2, 3 shapes: 40/35/25 %
        radii = np.sort(rng.uniform(0.14, 0.28, n_shapes))[::-1]  # large first: small ones stay visible
        hues: list[float] = []
        placed: list[tuple[float, float, float]] = []
        drawn: list[int] = []
        for radius in radii:
            kind = int(rng.integers(3))
            drawn.append(kind)
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
        if labels is not None:
            labels.append(drawn)
    return out


