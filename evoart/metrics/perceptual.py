"""``perceptual``: the fitness distance. swd, rkid and color, each as a z-score against
its real-vs-real floor at the same sample count (:mod:`.floors`), summed on a log scale."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

from .color import ColorScorer, make_color
from .coverage import CoverageScorer, make_coverage_from
from .embedding import embed_real
from .floors import FLOOR_REPEATS, PERCEPTUAL_PARTS, Floor, measure_floors, perceptual_from_parts
from .registry import Scorer, register_metric
from .rkid import RKIDScorer, make_rkid_from
from .swd import SWDScorer, make_swd


@dataclass
class PerceptualScorer:
    """``perceptual`` = sum over swd, rkid and color of log(1 + max(0, z)), z the part's
    distance above its real-vs-real floor in units of that floor's spread, both measured
    on real images at the sample count the fakes are scored at
    (:func:`perceptual_from_parts`).

    One scorer computes every metric of the fixed protocol (``score_all``): the fake
    images are embedded once for both ``rkid`` and ``coverage``.
    """

    swd: SWDScorer = field(repr=False)
    rkid: RKIDScorer = field(repr=False)
    coverage: CoverageScorer = field(repr=False)
    color: ColorScorer = field(repr=False)
    floors: dict[str, Floor]

    @property
    def name(self) -> str:
        return "perceptual"

    @property
    def embedding_name(self) -> str:
        return self.rkid.embedded.embedding.name

    def _combine(self, parts: dict[str, float]) -> dict[str, float]:
        return perceptual_from_parts(parts, self.floors)

    def score(self, fake: Tensor) -> dict[str, float]:
        """``perceptual``, its parts and their z-scores."""
        parts: dict[str, float] = {}
        parts.update(self.swd.score(fake))
        parts.update(self.rkid.score(fake))
        parts.update(self.color.score(fake))
        return {**self._combine(parts), **parts}

    def score_all(self, fake: Tensor) -> dict[str, float]:
        """Every metric of the protocol: perceptual (with parts), coverage and density."""
        parts: dict[str, float] = {}
        parts.update(self.swd.score(fake))
        f = self.rkid.embedded.features(fake)
        parts.update(self.rkid.score_features(f))
        parts.update(self.coverage.score_features(f))
        parts.update(self.color.score(fake))
        return {**self._combine(parts), **parts}


def build_scorers(
    real: Tensor, *, seed: int, features: str | None = None, k: int = 5, device=None
) -> dict[str, Scorer]:
    """swd, rkid, coverage and color scorers for one real set, sharing one embedding.

    ``device`` (default: the real images' device) is where the costly parts run: swd
    and the random-CNN embedding, nine tenths of an individual's scoring on a CPU. The
    rest (color, the kernel and neighbour sums on the features) is cheap and stays on
    the CPU in float64."""
    embedded = embed_real(real, features, device=device)
    return {
        "swd": make_swd(real, seed=seed, device=device),
        "rkid": make_rkid_from(embedded),
        "coverage": make_coverage_from(embedded, k),
        "color": make_color(real, seed=seed),
    }


@register_metric(
    "perceptual",
    direction="lower",
    version=1,
    context=("floors", "floor_real", "n", "repeats", "features", "device"),
    description=(
        "The fitness distance: swd, rkid and color, each as a z-score against its real-vs-real "
        "spread at the same sample count, summed as log(1 + max(0, z)). About 1 for real images."
    ),
)
def make_perceptual(
    real: Tensor,
    *,
    seed: int,
    floors: dict[str, Floor | dict] | None = None,
    floor_real: Tensor | None = None,
    n: int | None = None,
    repeats: int = FLOOR_REPEATS,
    features: str | None = None,
    device=None,
) -> PerceptualScorer:
    """Build the combined scorer. Either pass ``floors`` (measured before, e.g. read from
    a run's record) or ``floor_real`` -- real images outside ``real`` -- and the fake
    sample count ``n`` to measure them here."""
    scorers = build_scorers(real, seed=seed, features=features, device=device)
    if floors is None:
        if floor_real is None or n is None:
            raise ValueError(
                "perceptual needs the real-vs-real spread of its parts: pass floors, or floor_real "
                "(real images outside the reference set) and n (the fake sample count)"
            )
        floors = measure_floors(scorers, floor_real, n, seed=seed, repeats=repeats)
    floors = {k: v if isinstance(v, Floor) else Floor.from_dict(v) for k, v in floors.items()}
    missing = [p for p in PERCEPTUAL_PARTS if p not in floors]
    if missing:
        raise ValueError(f"floors lack {', '.join(missing)}")
    return PerceptualScorer(
        swd=scorers["swd"], rkid=scorers["rkid"], coverage=scorers["coverage"],  # type: ignore[arg-type]
        color=scorers["color"], floors=floors,  # type: ignore[arg-type]
    )


