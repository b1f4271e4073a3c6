"""Disturbed image sets for validating the metrics: the FID paper's test, reconstructed.

Heusel et al. 2017 (appendix A1) showed that FID grows steadily as real images are
disturbed more and more. evoart's metrics must pass the same test before their numbers
steer evolution. Each disturbance here takes real images (N, 3, H, W) in [-1, 1] and a
level; levels 1-3 are the paper's (level 0 is the clean set):

==================  =======================  ==============================================
disturbance         levels                   what it does (paper's wording, reconstructed)
==================  =======================  ==============================================
``noise``           alpha 0.25, 0.5, 0.75    (1 - alpha) X + alpha N, N Gaussian noise
                                             scaled (per image, min-max) to the pixel range
``blur``            sigma 1, 2, 4 px         Gaussian blur (truncated at 4 sigma,
                                             replicated borders, as skimage's gaussian)
``rectangles``      alpha 0.25, 0.5, 0.75    five black squares of side alpha * image size
                                             at random places inside the image
``swirl``           strength 1, 2, 4         skimage's ``swirl`` (radius 100 px, its default,
                                             centred, bilinear, reflected borders)
``salt_pepper``     alpha 0.1, 0.2, 0.3      a share alpha of pixels set to black or white
                                             (half each)
``contamination``   alpha 0.25, 0.5, 0.75    a share alpha of the images replaced by images
                                             of another dataset
==================  =======================  ==============================================

Pixel sizes (blur sigma, swirl radius) are the paper's and skimage's as they stand, not
rescaled to evoart's 32 px images: rescaling would be a choice, and the levels must not
be chosen to make a metric pass. Two further probes are not from the paper: ``collapse``
(the set made of N/k distinct images, each repeated k = 4, 16, 64 times) and
``color_shift`` (every pixel's red raised and blue lowered by 0.05, 0.1, 0.2 of the
[-1, 1] range, i.e. about 6, 13 and 26 grey levels).

Everything is seeded: the same images, disturbance, level and seed give the same pixels.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import metrics
from ..objectives import REPORTED
from ..seeds import torch_generator

#: Levels 1-3 of each disturbance (level 0 is the clean set).
LEVELS: dict[str, tuple[float, ...]] = {
    "noise": (0.25, 0.5, 0.75),
    "blur": (1.0, 2.0, 4.0),
    "rectangles": (0.25, 0.5, 0.75),
    "swirl": (1.0, 2.0, 4.0),
    "salt_pepper": (0.1, 0.2, 0.3),
    "contamination": (0.25, 0.5, 0.75),
    "collapse": (4, 16, 64),
    "color_shift": (0.05, 0.1, 0.2),
}
#: The FID paper's six, in its order.
FID_PAPER = ("noise", "blur", "rectangles", "swirl", "salt_pepper", "contamination")
SWIRL_RADIUS = 100.0  # skimage.transform.swirl's default


def _gen(seed: int, purpose: str) -> torch.Generator:
    return torch_generator(seed, purpose, algorithm="blake2b")


def gaussian_noise(images: Tensor, alpha: float, *, seed: int = 0) -> Tensor:
    noise = torch.randn(images.shape, generator=_gen(seed, "noise"), dtype=images.dtype)
    flat = noise.flatten(1)
    lo, hi = flat.min(dim=1).values, flat.max(dim=1).values
    noise = ((flat - lo[:, None]) / (hi - lo)[:, None] * 2 - 1).view_as(images)  # to [-1, 1]
    return (1 - alpha) * images + alpha * noise


def gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    radius = int(4.0 * sigma + 0.5)  # skimage/scipy: truncate = 4.0
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = (k / k.sum()).to(images.dtype)
    c = images.shape[1]
    x = F.pad(images, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def black_rectangles(images: Tensor, alpha: float, *, seed: int = 0, count: int = 5) -> Tensor:
    n, _, h, w = images.shape
    side_h, side_w = max(1, round(alpha * h)), max(1, round(alpha * w))
    g = _gen(seed, "rectangles")
    y0 = torch.randint(0, h - side_h + 1, (n, count), generator=g)
    x0 = torch.randint(0, w - side_w + 1, (n, count), generator=g)
    yy = torch.arange(h)[None, None, :, None]
    xx = torch.arange(w)[None, None, None, :]
    inside = ((yy >= y0[..., None, None]) & (yy < y0[..., None, None] + side_h)
              & (xx >= x0[..., None, None]) & (xx < x0[..., None, None] + side_w)).any(dim=1)
    return torch.where(inside[:, None], torch.full_like(images, -1.0), images)


def swirl(images: Tensor, strength: float, *, radius: float = SWIRL_RADIUS) -> Tensor:
    """skimage.transform.swirl (rotation 0): each output pixel at distance rho from the
    centre samples the input rotated by strength * exp(-rho / (radius * ln2 / 5))."""
    n, _, h, w = images.shape
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                          indexing="ij")
    x0, y0 = w / 2, h / 2  # skimage: np.array(image.shape)[:2][::-1] / 2
    rho = torch.sqrt((x - x0) ** 2 + (y - y0) ** 2)
    theta = strength * torch.exp(-rho / (radius / 5 * math.log(2))) + torch.atan2(y - y0, x - x0)
    sx, sy = x0 + rho * torch.cos(theta), y0 + rho * torch.sin(theta)
    grid = torch.stack([2 * sx / (w - 1) - 1, 2 * sy / (h - 1) - 1], dim=-1).to(images.dtype)
    return F.grid_sample(images, grid[None].expand(n, -1, -1, -1), mode="bilinear",
                         padding_mode="reflection", align_corners=True)


def salt_and_pepper(images: Tensor, alpha: float, *, seed: int = 0) -> Tensor:
    n, _, h, w = images.shape
    g = _gen(seed, "salt_pepper")
    hit = torch.rand(n, 1, h, w, generator=g) < alpha
    white = torch.rand(n, 1, h, w, generator=g) < 0.5
    value = torch.where(white, 1.0, -1.0).to(images.dtype).expand_as(images)
    return torch.where(hit.expand_as(images), value, images)


def contamination(images: Tensor, alpha: float, *, other: Tensor, seed: int = 0) -> Tensor:
    n = images.shape[0]
    k = round(alpha * n)
    if other.shape[0] < k:
        raise ValueError(f"contamination at {alpha} needs {k} other images, got {other.shape[0]}")
    which = torch.randperm(n, generator=_gen(seed, "contamination"))[:k]
    out = images.clone()
    out[which] = other[:k].to(images.dtype)
    return out


def collapse(images: Tensor, repeats: int) -> Tensor:
    """N/repeats distinct images, each repeated ``repeats`` times (N images in all)."""
    n = images.shape[0]
    distinct = max(1, n // repeats)
    return images[:distinct].repeat_interleave(repeats, dim=0)[:n].contiguous()


def color_shift(images: Tensor, amount: float) -> Tensor:
    shift = torch.tensor([amount, 0.0, -amount], dtype=images.dtype).view(1, 3, 1, 1)
    return (images + shift).clamp(-1, 1)


def disturb(images: Tensor, kind: str, level: int, *, seed: int = 0, other: Tensor | None = None) -> Tensor:
    """``images`` disturbed by ``kind`` at ``level`` (0 = unchanged, 1-3 = :data:`LEVELS`)."""
    if kind not in LEVELS:
        raise ValueError(f"unknown disturbance {kind!r}; known: {', '.join(LEVELS)}")
    if not 0 <= level <= len(LEVELS[kind]):
        raise ValueError(f"level must be 0..{len(LEVELS[kind])}, got {level}")
    if level == 0:
        return images
    a = LEVELS[kind][level - 1]
    ops: dict[str, Callable[[], Tensor]] = {
        "noise": lambda: gaussian_noise(images, a, seed=seed),
        "blur": lambda: gaussian_blur(images, a),
        "rectangles": lambda: black_rectangles(images, a, seed=seed),
        "swirl": lambda: swirl(images, a),
        "salt_pepper": lambda: salt_and_pepper(images, a, seed=seed),
        "contamination": lambda: contamination(images, a, other=_need(other), seed=seed),
        "collapse": lambda: collapse(images, int(a)),
        "color_shift": lambda: color_shift(images, a),
    }
    return ops[kind]()


def _need(other: Tensor | None) -> Tensor:
    if other is None:
        raise ValueError("contamination needs the other dataset's images (other=...)")
    return other


# ---------------------------------------------------------------------------
# The validation table (tests/test_metrics_validation.py, benchmarks/metrics_table.py)
# ---------------------------------------------------------------------------

#: Metrics reported per disturbance level: every reported metric that the perceptual
#: scorer's ``score_all`` computes, i.e. all but diversity ("perceptual" and "swd" need
#: SWD, the slow part).
TABLE_METRICS = tuple(m for m in REPORTED if m != "diversity")
#: Probes that do not need SWD: only embedding and colour metrics are computed for them.
CHEAP_PROBES = ("collapse", "color_shift")


def validation_table(
    dataset: str = "shapes",
    other: str = "landscapes",
    *,
    resolution: int = 32,
    n: int = 512,
    seed: int = 0,
    floor_repeats: int = 5,
    kid_splits: int = 40,
) -> dict:
    """Every metric on the FID paper's disturbances of a built-in dataset, at ``n`` images.

    reference = n real images; the "fake" set = n *other* real images, disturbed; floors =
    ``floor_repeats`` further disjoint draws of n real images; ``other`` = the dataset
    used for contamination. Also: KID between two random halves (n each) of all those real
    images, over ``kid_splits`` splits (its mean should be 0 within two standard errors).
    Returns plain data (JSON-able) with the timings of its parts.
    """
    import time

    import numpy as np

    from .. import data
    from ..imaging import to_float_tensor

    t0 = time.perf_counter()
    total = (2 + floor_repeats) * n
    real = to_float_tensor(data.load_images(dataset, resolution, count=total, seed=seed).images)
    foreign = to_float_tensor(data.load_images(other, resolution, count=n, seed=seed + 1).images)
    reference, clean, pool = real[:n], real[n : 2 * n], real[2 * n :]
    t_data = time.perf_counter() - t0

    t0 = time.perf_counter()
    scorer = metrics.build_metric("perceptual", reference, seed=seed, floor_real=pool, n=n, repeats=floor_repeats)
    t_floors = time.perf_counter() - t0

    def row(images: Tensor, full: bool) -> dict[str, float]:
        if full:
            r = scorer.score_all(images)
        else:
            f = scorer.rkid.embedded.features(images)
            r = {**scorer.rkid.score_features(f), **scorer.coverage.score_features(f), **scorer.color.score(images)}
        return {k: float(r[k]) for k in TABLE_METRICS if k in r}

    t0 = time.perf_counter()
    clean_row = row(clean, True)
    table: dict[str, list[dict[str, float]]] = {}
    for kind in (*FID_PAPER, *CHEAP_PROBES):
        full = kind not in CHEAP_PROBES
        levels = [clean_row if full else {k: v for k, v in clean_row.items() if k not in ("perceptual", "swd")}]
        for level in range(1, len(LEVELS[kind]) + 1):
            levels.append(row(disturb(clean, kind, level, seed=seed + 7, other=foreign), full))
        table[kind] = levels
    t_table = time.perf_counter() - t0

    # KID between halves of the real set: unbiased means zero on average.
    t0 = time.perf_counter()
    raw = scorer.rkid.embedded.embedding(real)
    gen = torch.Generator().manual_seed(seed + 11)
    kids = []
    for _ in range(kid_splits):
        perm = torch.randperm(raw.shape[0], generator=gen)
        a, b = raw[perm[:n]], raw[perm[n : 2 * n]]
        mean, std = a.mean(dim=0), a.std(dim=0).clamp_min(1e-6)
        a, b = (a - mean) / std, (b - mean) / std
        kids.append(metrics.kid(a, b))
    t_kid = time.perf_counter() - t0

    return {
        "dataset": dataset, "other": other, "resolution": resolution, "n": n, "seed": seed,
        "floor_repeats": floor_repeats, "levels": {k: list(v) for k, v in LEVELS.items()},
        "floors": {k: v.to_dict() for k, v in scorer.floors.items() if k in TABLE_METRICS},
        "table": table,
        "kid_halves": {"mean": float(np.mean(kids)), "se": float(np.std(kids, ddof=1) / math.sqrt(len(kids))),
                       "splits": len(kids), "values": kids},
        "versions": metrics.metric_versions(),
        "embedding": scorer.embedding_name,
        "seconds": {"data": round(t_data, 1), "scorers_and_floors": round(t_floors, 1),
                    "table": round(t_table, 1), "kid_halves": round(t_kid, 1)},
    }
