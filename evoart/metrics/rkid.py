"""``rkid``: the unbiased kernel distance (KID, Binkowski et al. 2018) in the embedding.
Lower is better; 0 means the same distribution."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from .embedding import EmbeddedReal, embed_real
from .registry import register_metric


def poly_kernel(x: Tensor, y: Tensor) -> Tensor:
    """k(x, y) = (x.y / d + 1)^3, the KID kernel (Binkowski et al. 2018)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mean_off_diagonal(k: Tensor) -> float:
    n = k.shape[0]
    return float((k.sum() - k.diagonal().sum()) / (n * (n - 1)))


#: rkid is reported x 1e3, as KID usually is.
RKID_SCALE = 1e3


@dataclass
class RKIDScorer:
    """Unbiased squared MMD with the cubic polynomial kernel, against one real set."""

    embedded: EmbeddedReal = field(repr=False)
    real_term: float  # mean k(x, x') over distinct real pairs, computed once

    @property
    def name(self) -> str:
        return "rkid"

    def score_features(self, f: Tensor) -> dict[str, float]:
        if f.shape[0] < 2:
            raise ValueError("rkid needs at least 2 fake images")
        fake_term = mean_off_diagonal(poly_kernel(f, f))
        cross = float(poly_kernel(f, self.embedded.real).mean())
        return {"rkid": (self.real_term + fake_term - 2.0 * cross) * RKID_SCALE}

    def score(self, fake: Tensor) -> dict[str, float]:
        return self.score_features(self.embedded.features(fake))


def make_rkid_from(embedded: EmbeddedReal) -> RKIDScorer:
    """An rkid scorer on real features embedded before (shared with ``coverage``)."""
    return RKIDScorer(embedded, mean_off_diagonal(poly_kernel(embedded.real, embedded.real)))


def kid(a: Tensor, b: Tensor) -> float:
    """The unbiased KID (x :data:`RKID_SCALE`) between two standardised feature sets, the
    same sum in the same order as ``RKIDScorer`` with ``a`` as the real side."""
    real_term = mean_off_diagonal(poly_kernel(a, a))
    fake_term = mean_off_diagonal(poly_kernel(b, b))
    cross = float(poly_kernel(b, a).mean())
    return (real_term + fake_term - 2.0 * cross) * RKID_SCALE


@register_metric(
    "rkid",
    direction="lower",
    version=1,
    context=("features", "device"),
    description=(
        "Unbiased kernel distance (KID, cubic polynomial kernel, x1e3) between fake and real "
        "images in the embedding of two fixed random CNNs (or --features); 0 = same distribution."
    ),
)
def make_rkid(real: Tensor, *, seed: int, features: str | None = None, device=None) -> RKIDScorer:
    """Build an rkid scorer for ``real``. ``seed`` is accepted for the registry's sake:
    the embedding is fixed (:data:`EMBEDDING_SEED`) and KID uses every pair, so nothing
    here is random."""
    return make_rkid_from(embed_real(real, features, device=device))

