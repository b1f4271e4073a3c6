"""``diversity``: mean pairwise distance between generated images in a cheap embedding,
relative to the same quantity for the real set. 1.0 means as varied as the data; a
collapsed generator scores near 0. Higher is better."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import MetricError, check_images, check_size, seeded_generator
from .registry import register_metric


def _embed(images: Tensor, grid: int) -> Tensor:
    """grid x grid average-pooled colour layout, flattened (3*grid*grid dims)."""
    return F.adaptive_avg_pool2d(images.detach().to(torch.float64), grid).flatten(1)


def _mean_pairwise_distance(emb: Tensor) -> float:
    return float(F.pdist(emb).mean())


def _subsample(images: Tensor, max_images: int, generator: torch.Generator) -> Tensor:
    if images.shape[0] <= max_images:
        return images
    idx = torch.randperm(images.shape[0], generator=generator)[:max_images]
    return images[idx.to(images.device)]


@dataclass
class DiversityScorer:
    """Diversity relative to one real image set (real spread computed once)."""

    seed: int
    grid: int
    max_images: int
    image_size: tuple[int, int]
    real_spread: float

    @property
    def name(self) -> str:
        return "diversity"

    def score(self, fake: Tensor) -> dict[str, float]:
        """``diversity`` = fake spread / real spread, plus both raw spreads."""
        check_images(fake, "fake images", min_count=2)
        check_size(fake, self.image_size)
        with torch.no_grad():
            sample = _subsample(fake, self.max_images, seeded_generator(self.seed, "diversity/fake"))
            spread = _mean_pairwise_distance(_embed(sample, self.grid))
        return {
            "diversity": spread / self.real_spread,
            "diversity_fake": spread,
            "diversity_real": self.real_spread,
        }


@register_metric(
    "diversity",
    direction="higher",
    version=1,
    description=(
        "Mean pairwise L2 distance between 4x4 average-pooled images, relative to the "
        "real set: 1.0 = as varied as the data, ~0 = mode collapse."
    ),
)
def make_diversity(
    real: Tensor, *, seed: int, grid: int = 4, max_images: int = 1024
) -> DiversityScorer:
    """Build a diversity scorer for ``real``.

    Why this embedding: a 4x4 colour layout is cheap, and a collapsed generator
    (the GA's most common failure besides noise) produces near-identical
    layouts. The ratio to the real set's spread makes the number readable
    without knowing the data. Sets larger than ``max_images`` are subsampled
    (seeded) to bound the O(N^2) pairwise cost.
    """
    check_images(real, "real images", min_count=2)
    if not isinstance(grid, int) or grid < 1:
        raise ValueError(f"grid must be a positive int, got {grid!r}")
    if not isinstance(max_images, int) or max_images < 2:
        raise ValueError(f"max_images must be an int >= 2, got {max_images!r}")
    with torch.no_grad():
        sample = _subsample(real, max_images, seeded_generator(seed, "diversity/real"))
        real_spread = _mean_pairwise_distance(_embed(sample, grid))
    if not real_spread > 0.0 or math.isnan(real_spread):
        raise MetricError("real images have no variation at this grid; diversity is undefined")
    return DiversityScorer(
        seed=int(seed),
        grid=grid,
        max_images=max_images,
        image_size=(int(real.shape[-2]), int(real.shape[-1])),
        real_spread=real_spread,
    )

