"""Real-vs-real floors: what each metric gives *real* images at a sample count, and the
perceptual formula that puts swd, rkid and color on one scale with them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ._common import check_images, seeded_generator
from .registry import Scorer


#: The parts of ``perceptual``, each a distance with a real-vs-real floor.
PERCEPTUAL_PARTS = ("swd", "rkid", "color")
#: Real-vs-real repeats behind each floor (mean and spread).
FLOOR_REPEATS = 10


@dataclass(frozen=True)
class Floor:
    """What a metric gives *real* images at a sample count: mean and sample std over
    ``repeats`` disjoint draws. A fake set within a few std of ``mean`` is, by this
    metric and at this sample count, indistinguishable from real data."""

    mean: float
    std: float
    n: int
    repeats: int

    def z(self, value: float) -> float:
        """How many real-vs-real standard deviations ``value`` lies above the floor."""
        spread = max(self.std, 1e-9 * max(1.0, abs(self.mean)))
        return (value - self.mean) / spread

    def to_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std, "n": self.n, "repeats": self.repeats}

    @classmethod
    def from_dict(cls, d: dict) -> "Floor":
        return cls(float(d["mean"]), float(d["std"]), int(d["n"]), int(d["repeats"]))


def floor_draws(
    scorers: dict[str, Scorer], pool: Tensor, n: int, *, seed: int, repeats: int = FLOOR_REPEATS
) -> dict[str, list[float]]:
    """Real-vs-real values: every scorer's result on ``repeats`` draws of ``n`` images
    from ``pool`` (real images *not* in the scorers' reference set).

    Draws are disjoint while the pool lasts (then drawn afresh), and seeded."""
    check_images(pool, "real images for the floor", min_count=2)
    if n < 2 or n > pool.shape[0]:
        raise ValueError(f"a floor at n={n} needs between 2 and {pool.shape[0]} pool images")
    if repeats < 2:
        raise ValueError(f"repeats must be >= 2 to measure a spread, got {repeats}")
    gen = seeded_generator(seed, "floors/draws")
    per_draw = max(1, pool.shape[0] // n)
    values: dict[str, list[float]] = {}
    perm = torch.randperm(pool.shape[0], generator=gen)
    for r in range(repeats):
        if r and r % per_draw == 0:
            perm = torch.randperm(pool.shape[0], generator=gen)
        j = r % per_draw
        draw = pool[perm[j * n : (j + 1) * n].to(pool.device)]
        f = None
        for scorer in scorers.values():
            if hasattr(scorer, "score_features"):
                if f is None:
                    f = scorer.embedded.features(draw)  # type: ignore[attr-defined]
                result = scorer.score_features(f)  # type: ignore[attr-defined]
            else:
                result = scorer.score(draw)
            for key, value in result.items():
                values.setdefault(key, []).append(value)
    return values


def summarise_floors(values: dict[str, list[float]], n: int) -> dict[str, Floor]:
    """One :class:`Floor` per key of real-vs-real ``values`` (as :func:`floor_draws` gives
    them) measured at sample count ``n``: their mean and sample standard deviation."""
    return {
        key: Floor(float(np.mean(v)), float(np.std(v, ddof=1)), int(n), len(v))
        for key, v in values.items()
    }


def measure_floors(
    scorers: dict[str, Scorer], pool: Tensor, n: int, *, seed: int, repeats: int = FLOOR_REPEATS
) -> dict[str, Floor]:
    """Real-vs-real floors (mean and spread over draws) of every scorer's results, plus
    the floor of ``perceptual`` itself when swd, rkid and color are among them."""
    draws = floor_draws(scorers, pool, n, seed=seed, repeats=repeats)
    floors = summarise_floors(draws, n)
    if all(p in floors for p in PERCEPTUAL_PARTS):
        per_draw = [
            perceptual_from_parts({p: draws[p][r] for p in PERCEPTUAL_PARTS}, floors)["perceptual"]
            for r in range(repeats)
        ]
        floors.update(summarise_floors({"perceptual": per_draw}, n))
    return floors


def perceptual_from_parts(parts: dict[str, float], floors: dict[str, Floor]) -> dict[str, float]:
    """``perceptual`` and each part's z-score from swd, rkid and color values.

    perceptual = sum over parts of log(1 + max(0, z)), z = (value - floor mean) / floor std.

    Why z-scores: each part's real-vs-real spread at the sample count is its unit of
    "detectably different from real". Why the log: the parts' ranges differ by orders of
    magnitude in those units (a squared kernel distance such as rkid reaches thousands of
    spreads where SWD reaches tens), so a plain sum would be rkid alone; on a log scale
    halving any part's excess counts the same, and no single metric's quirks decide.
    Parts below their floor count 0: they are indistinguishable from real there.
    """
    out: dict[str, float] = {}
    total = 0.0
    for p in PERCEPTUAL_PARTS:
        z = floors[p].z(parts[p])
        out[f"{p}_z"] = z
        total += math.log1p(max(0.0, z))
    return {"perceptual": total, **out}


