"""What selection optimises and what evoart reports, in one torch-free place.

Every caller (the GA, the configuration, fitness, scoring, the gallery, the command line
and the benchmarks) takes its objective and metric names from here, so a name is
written once. The metrics themselves (how each is computed, its direction and version)
live behind the registry in ``evoart.metrics``.
"""

from __future__ import annotations

# Objectives, in the order of the DEAP fitness weights: realism (from the population's
# discriminators) up, the perceptual distance (swd, rkid and color against their real-vs-real
# floors, see metrics.perceptual_from_parts) down, and coverage (Naeem et al. 2020: how much
# of the real data the samples reach; low for a collapsed generator) up.
OBJECTIVES = ("realism", "perceptual", "coverage")
WEIGHTS = (1.0, -1.0, 1.0)
#: "higher" or "lower" is better, per objective (the sign of its weight).
BETTER = {name: "higher" if w > 0 else "lower" for name, w in zip(OBJECTIVES, WEIGHTS)}

#: The metrics ``evoart score`` reports and the gallery can show, in this order.
REPORTED = ("perceptual", "swd", "rkid", "color", "coverage", "density", "diversity")

#: The objective values a diverged or failed individual gets: the worst possible realism
#: and coverage, and distances far beyond any trained generator's.
WORST = {"realism": 0.0, "perceptual": 1e3, "coverage": 0.0, "swd": 1e4, "diversity": 0.0}

#: How tables and pages name and explain what selection uses (the display score first).
LABELS = {"score": "score", "realism": "realism", "perceptual": "perceptual", "coverage": "coverage"}
HELP = {
    "score": "one number for display, 0-100: the mean of realism, perceptual and coverage mapped to [0, 1] "
             "(about 100 for real images)",
    "realism": "how often the other individuals' discriminators took its images for real (higher is better)",
    "perceptual": "distance to the held-out real images: SWD, a random-CNN kernel distance and colour "
                  "statistics, each against its real-vs-real spread (lower is better; about 1 for real images)",
    "coverage": "share of the real images with one of its samples among their nearest neighbours "
                "(higher is better; falls with mode collapse)",
}

# ---- the display score -------------------------------------------------------------------
# One number per individual for tables and the gallery, 0-100, absolute (comparable across
# generations and runs on the same data): the mean of three utilities in [0, 1],
#   realism     min(1, realism / 0.5)              0.5 = the other Ds cannot tell it from real
#   perceptual  1 / (1 + excess / PERCEPTUAL_HALF)  excess = perceptual - its real-vs-real mean
#   coverage    min(1, coverage / real coverage)    real coverage at the same sample count
# Real images score about 100. ``--selection weighted`` ranks by the same utilities with
# the user's weights.
REALISM_FULL = 0.5
PERCEPTUAL_HALF = 6.0  # each part about 6 spreads above its floor (log1p(6) ~ 2) halves the utility


def utilities(metrics: dict[str, float], floors: dict | None) -> dict[str, float]:
    """The three objectives mapped to [0, 1], 1 = as good as real data (see above)."""
    floors = floors or {}
    realism = metrics.get("realism", WORST["realism"])
    perceptual = metrics.get("perceptual", WORST["perceptual"])
    coverage = metrics.get("coverage", WORST["coverage"])
    p_floor = floors.get("perceptual", {}).get("mean", 0.0)
    c_floor = floors.get("coverage", {}).get("mean", 1.0) or 1.0
    return {
        "realism": min(1.0, max(0.0, realism / REALISM_FULL)),
        "perceptual": 1.0 / (1.0 + max(0.0, perceptual - p_floor) / PERCEPTUAL_HALF),
        "coverage": min(1.0, max(0.0, coverage / c_floor)),
    }


def display_score(metrics: dict[str, float], floors: dict | None,
                  weights: dict[str, float] | None = None) -> float:
    """0-100: the (weighted) mean of ``utilities``; equal weights for display."""
    u = utilities(metrics, floors)
    w = weights or {k: 1.0 for k in OBJECTIVES}
    total = sum(w.get(k, 0.0) for k in OBJECTIVES)
    return round(100.0 * sum(w.get(k, 0.0) * u[k] for k in OBJECTIVES) / total, 4)
