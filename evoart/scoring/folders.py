"""Scoring two image sets, or two image folders (``evoart score REAL FAKE``), with the
metrics a run uses, each against its real-vs-real floor measured at the same sample
count."""

from __future__ import annotations

import torch

from .. import metrics
from ..errors import EvoartError
from ..objectives import REPORTED

_UNSTORED = ("color_r", "color_g", "color_b")


class ScoreError(EvoartError, ValueError):
    """Image sets or a run that cannot be scored; the message is meant for the user."""


MIN_REAL_IMAGES = 32


def _pick(names: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    if not names:
        return REPORTED
    unknown = [n for n in names if n not in REPORTED]
    if unknown:
        raise ScoreError(f"unknown metric {unknown[0]!r}; evoart score reports: {', '.join(REPORTED)}")
    return tuple(dict.fromkeys(names))


def score_image_sets(
    real: torch.Tensor, fake: torch.Tensor, *, samples: int | None = None, seed: int = 0,
    features: str | None = None, names: list[str] | tuple[str, ...] | None = None,
    repeats: int = metrics.FLOOR_REPEATS,
) -> dict:
    """Every metric between a real and a generated image set ((N, 3, R, R) in [-1, 1]).

    The real images are split at random (seeded) into halves: the reference every metric
    compares with, and a pool from which the real-vs-real floors are measured at the same
    sample count as the fakes. ``samples`` fakes (default: as many as the fake set has,
    at most half the pool, so floor draws can be disjoint) are scored. Returns a flat
    ``{metric: value}`` plus ``meta``.
    """
    names = _pick(names)
    if real.shape[0] < MIN_REAL_IMAGES:
        raise ScoreError(f"need at least {MIN_REAL_IMAGES} real images (half are the reference, half "
                         f"measure the real-vs-real spread), got {real.shape[0]}")
    if tuple(real.shape[-2:]) != tuple(fake.shape[-2:]):
        raise ScoreError(f"real images are {tuple(real.shape[-2:])} but generated ones {tuple(fake.shape[-2:])}")
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(real.shape[0], generator=gen)
    half = real.shape[0] // 2
    reference, pool = real[perm[:half]], real[perm[half:]]
    limit = min(fake.shape[0], pool.shape[0] // 2)
    n = min(samples, limit) if samples else limit
    if n < 2:
        raise ScoreError(f"need at least 2 generated images, got {fake.shape[0]}")
    chosen = fake[torch.randperm(fake.shape[0], generator=gen)[:n]] if n < fake.shape[0] else fake
    scorer = metrics.build_metric("perceptual", reference, seed=seed, floor_real=pool, n=n, repeats=repeats,
                                  features=features)
    result = scorer.score_all(chosen)
    floors = dict(scorer.floors)
    if "diversity" in names:
        div = metrics.build_metric("diversity", reference, seed=seed)
        result["diversity"] = div.score(chosen)["diversity"]
        floors["diversity"] = metrics.summarise_floors(
            {"diversity": [div.score(pool[torch.randperm(pool.shape[0], generator=gen)[:n]])["diversity"]
                           for _ in range(repeats)]}, n)["diversity"]
    versions = metrics.metric_versions()
    return {
        **{k: float(result[k]) for k in names},
        "meta": {
            "samples": n, "fake_images": int(fake.shape[0]), "real_images": int(real.shape[0]),
            "reference_images": int(reference.shape[0]), "floor_pool_images": int(pool.shape[0]),
            "resolution": int(real.shape[-1]), "seed": seed, "embedding": scorer.embedding_name,
            "floors": {k: floors[k].to_dict() for k in names if k in floors},
            "versions": {k: versions[k] for k in names if k in versions},
            "parts": {k: float(v) for k, v in result.items() if k not in names and k not in _UNSTORED},
        },
    }


def score_folders(real: str, fake: str, *, resolution: int = 32, **options) -> dict:
    """``score_image_sets`` on two image folders (or built-in dataset names), decoded at
    ``resolution`` as evoart decodes training data."""
    from .. import data
    from ..imaging import to_float_tensor

    real_set = data.load_images(real, resolution)
    fake_set = data.load_images(fake, resolution)
    out = score_image_sets(to_float_tensor(real_set.images), to_float_tensor(fake_set.images), **options)
    out["meta"].update({"real": real_set.source, "fake": fake_set.source,
                        "skipped": len(real_set.skipped) + len(fake_set.skipped)})
    return out
