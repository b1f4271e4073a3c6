"""``coverage`` (Naeem et al. 2020) and its companion ``density``, in the embedding.
Higher is better; falls with mode collapse."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from .embedding import EmbeddedReal, embed_real
from .registry import register_metric


@dataclass
class CoverageScorer:
    """Share of real images whose k-nearest-neighbour ball holds at least one fake."""

    embedded: EmbeddedReal = field(repr=False)
    radii: Tensor = field(repr=False)  # (n,) distance of each real image to its k-th real neighbour
    k: int

    @property
    def name(self) -> str:
        return "coverage"

    def score_features(self, f: Tensor) -> dict[str, float]:
        d = torch.cdist(f, self.embedded.real)               # (m, n)
        inside = d < self.radii[None, :]
        return {
            "coverage": float(inside.any(dim=0).double().mean()),
            # density (same paper): how many real balls each fake falls in, / k; ~1 for real data
            "density": float(inside.double().sum() / (self.k * f.shape[0])),
        }

    def score(self, fake: Tensor) -> dict[str, float]:
        return self.score_features(self.embedded.features(fake))


def make_coverage_from(embedded: EmbeddedReal, k: int) -> CoverageScorer:
    """A coverage scorer on real features embedded before (shared with ``rkid``)."""
    if not isinstance(k, int) or k < 1 or k >= embedded.real.shape[0]:
        raise ValueError(f"k must be an int in [1, {embedded.real.shape[0] - 1}], got {k!r}")
    d = torch.cdist(embedded.real, embedded.real)
    radii = torch.kthvalue(d, k + 1, dim=1).values  # k+1: the nearest is the image itself
    return CoverageScorer(embedded, radii, k)


@register_metric(
    "coverage",
    direction="higher",
    version=1,
    context=("features", "device"),
    description=(
        "Coverage (Naeem et al. 2020, k=5) in the random-CNN embedding: share of real images "
        "with a generated image among their 5 nearest real neighbours. Falls with mode collapse."
    ),
)
def make_coverage(real: Tensor, *, seed: int, k: int = 5, features: str | None = None,
                  device=None) -> CoverageScorer:
    """Build a coverage scorer for ``real`` (deterministic; ``seed`` is unused)."""
    return make_coverage_from(embed_real(real, features, device=device), k)

