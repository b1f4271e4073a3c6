"""Mate choice by evolved preferences: Fisherian runaway (docs/RUNAWAY.md).

Every genome carries a preference for each ornament (``genome.MateGenes``) and a
choosiness. Under ``--mate-choice runaway`` the first parent of a crossover child is
chosen by the usual selection; it then picks its mate among a few candidates (each the
winner of the usual tournament) with probability proportional to
``exp(choosiness x match)``, where ``match`` is the sum over ornaments of its preference
times the candidate's ornament, standardised over the population (a z-score; for the
hue, a signed angle from the population's circular mean). So a positive preference is an
open-ended taste for *more* of an ornament than the others show: as the ornament grows,
the taste keeps pulling, which is what lets a preference and an ornament run away
together (Fisher 1930; Lande 1981).

``attractiveness`` is how much the population's choosers, on average, like an individual:
``--runaway-strength`` gives that share of the survivors' places to the most attractive.

``generation_stats`` summarises one generation for the gallery's plots and for the
tests: each ornament's mean and spread, each preference's mean and spread, and the
correlation across individuals between a preference and its ornament, which Fisher's
process predicts builds up (choosy parents with a taste for an ornament have children
carrying both the taste and the ornament). numpy only; no I/O.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np

from . import ornaments as O
from .genome import ORNAMENTS, MateGenes

#: The spread of the preferences (``generation_stats``'s ``preference_spread``) below which
#: a population's tastes count as collapsed: docs/RUNAWAY.md says why 0.05.
PREFERENCE_FLOOR = 0.05
#: Candidates a chooser picks its mate from ("a few": with more, choosiness bites harder).
MATE_CANDIDATES = 4


@dataclass(frozen=True)
class Scale:
    """Where a population's ornaments lie: the centre (the mean; for hue the circular
    mean) and the spread (standard deviation; for hue the circular one, in degrees)."""

    center: dict[str, float]
    spread: dict[str, float]


def _circular(values: np.ndarray) -> tuple[float, float]:
    a = np.radians(values)
    s, c = float(np.sin(a).mean()), float(np.cos(a).mean())
    r = min(1.0, math.hypot(s, c))
    center = math.degrees(math.atan2(s, c)) % 360.0 if r > 1e-12 else 0.0
    spread = math.degrees(math.sqrt(-2.0 * math.log(r))) if r > 1e-12 else 180.0
    return center, spread


def deviation(name: str, value: float, center: float) -> float:
    """``value - center``; for a circular ornament the signed angle in (-180, 180]."""
    if O.get(name).circular:
        return (value - center + 180.0) % 360.0 - 180.0
    return value - center


def scale_of(rows: list[dict[str, float]]) -> Scale:
    """The scale of a population's ornaments (``rows``: each individual's, by name)."""
    center, spread = {}, {}
    for name in ORNAMENTS:
        v = np.array([r[name] for r in rows], dtype=float)
        if len(v) == 0:
            center[name], spread[name] = 0.0, 0.0
        elif O.get(name).circular:
            center[name], spread[name] = _circular(v)
        else:
            center[name], spread[name] = float(v.mean()), float(v.std())
    return Scale(center, spread)


def standardised(orn: dict[str, float] | None, scale: Scale) -> dict[str, float]:
    """An individual's ornaments as z-scores on ``scale`` (0 where the population does not
    vary, or for an individual without ornaments: it looks average)."""
    if orn is None:
        return {k: 0.0 for k in ORNAMENTS}
    return {k: deviation(k, orn[k], scale.center[k]) / scale.spread[k] if scale.spread[k] > 1e-12 else 0.0
            for k in ORNAMENTS}


def match(mate: MateGenes, z: dict[str, float]) -> float:
    """How well a candidate's standardised ornaments match a chooser's preference."""
    return sum(getattr(mate, k) * z[k] for k in ORNAMENTS)


def choice_weights(chooser: MateGenes, candidates: list[dict[str, float]]) -> list[float]:
    """The probability of each candidate (its z-scores) being chosen: a softmax of
    choosiness x match. Choosiness 0 (or no candidates that differ) picks at random."""
    scores = [chooser.choosiness * match(chooser, z) for z in candidates]
    top = max(scores)
    w = [math.exp(s - top) for s in scores]
    total = sum(w)
    return [x / total for x in w]


def choose(chooser: MateGenes, candidates: list[dict[str, float]], rng: random.Random) -> int:
    """The index of the candidate ``chooser`` mates with."""
    w = choice_weights(chooser, candidates)
    r, acc = rng.random(), 0.0
    for i, x in enumerate(w):
        acc += x
        if r < acc:
            return i
    return len(w) - 1


def attractiveness(mates: list[MateGenes], zs: list[dict[str, float]]) -> list[float]:
    """For each individual, the mean over the others of their choosiness x match with it:
    how much the population would like it as a mate (its survival under
    ``--runaway-strength``)."""
    n = len(mates)
    total = {k: sum(m.choosiness * getattr(m, k) for m in mates) for k in ORNAMENTS}
    out = []
    for i in range(n):
        others = max(1, n - 1)
        taste = {k: (total[k] - mates[i].choosiness * getattr(mates[i], k)) / others for k in ORNAMENTS}
        out.append(sum(taste[k] * zs[i][k] for k in ORNAMENTS))
    return out


def _corr(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 3 or a.std() < 1e-12 or b.std() < 1e-12:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def generation_stats(rows: list[tuple[MateGenes, dict[str, float] | None]]) -> dict:
    """One generation's population, ``(mate genes, ornaments by name or None)`` each:
    ``{ornament: {"mean", "spread", "preference", "preference_spread", "correlation"}}``
    (hue: circular mean and spread; the correlation is Pearson's across individuals
    between the preference and the ornament, the hue as its angle from the mean; None
    where it is undefined), and ``preference_spread``: the mean over ornaments of the
    preferences' standard deviation (how far apart the population's tastes are)."""
    with_orn = [(m, o) for m, o in rows if o is not None]
    scale = scale_of([o for _, o in with_orn])
    out: dict = {"ornaments": {}, "individuals": len(rows)}
    spreads = []
    for k in ORNAMENTS:
        prefs = np.array([getattr(m, k) for m, _ in rows], dtype=float)
        p_orn = np.array([getattr(m, k) for m, _ in with_orn], dtype=float)
        dev = np.array([deviation(k, o[k], scale.center[k]) for _, o in with_orn], dtype=float)
        spreads.append(float(prefs.std()) if len(prefs) else 0.0)
        out["ornaments"][k] = {
            "mean": scale.center[k] if with_orn else None,
            "spread": scale.spread[k] if with_orn else None,
            "preference": float(prefs.mean()) if len(prefs) else None,
            "preference_spread": spreads[-1],
            "correlation": _corr(p_orn, dev),
        }
    out["preference_spread"] = float(np.mean(spreads)) if spreads else 0.0
    return out
