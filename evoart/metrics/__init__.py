"""Image-set metrics that score an individual's generator against the real data.

Why this package looks the way it does:

* The genetic algorithm scores a whole population (say 20 generators) against
  the *same* real image set, so every metric is a factory that does the
  real-side work once and returns a ``Scorer`` whose ``score(fake)`` is cheap.
* Metrics are looked up by name from one registry (:mod:`.registry`, in the style of
  StyleGAN3's ``metric_main``) so configs and logs can name them, and every
  metric says whether lower or higher is better, carries a version number
  that changes whenever its values would change (so stored fitness values from
  different versions are never compared by accident) and declares the context
  options its factory takes; callers build scorers with :func:`build_metric`.
* All randomness comes from explicit seeds; the same inputs and seed give the
  same numbers on every run, and every individual is scored with the same
  random projections and patch positions (common random numbers), which makes
  the differences *between* individuals much less noisy than each value alone.

Images everywhere are float tensors shaped (N, 3, H, W) with values in [-1, 1].

One file per family: ``pyramid`` and ``swd`` (multi-scale sliced Wasserstein distance),
``embedding`` (fixed random CNNs or the user's extractor), ``rkid`` (kernel distance),
``coverage`` (and density), ``color``, ``diversity``, ``floors`` (real-vs-real floors)
and ``perceptual`` (the fitness distance combining swd, rkid and color), plus
``realism`` (:func:`pairwise_realism`, used when one individual's discriminator judges
another's generator). The names evoart reports live in ``evoart.objectives``.
"""

from __future__ import annotations

from ._common import MetricError, tensor_digest
from .color import ColorScorer, make_color
from .coverage import CoverageScorer, make_coverage
from .diversity import DiversityScorer, make_diversity
from .embedding import (
    EMBEDDING_SEED,
    RANDOM_EMBEDDING,
    SAVE_PT2,
    EmbeddedReal,
    Embedding,
    embed_real,
    embedding_name,
    load_embedding,
    random_embedding,
)
from .floors import (
    FLOOR_REPEATS,
    PERCEPTUAL_PARTS,
    Floor,
    floor_draws,
    measure_floors,
    perceptual_from_parts,
    summarise_floors,
)
from .perceptual import PerceptualScorer, build_scorers, make_perceptual
from .pyramid import laplacian_pyramid, swd_num_levels
from .realism import pairwise_realism
from .registry import (
    CONTEXT_OPTIONS,
    MetricFactory,
    MetricInfo,
    Scorer,
    build_metric,
    get_metric,
    get_metric_info,
    list_metrics,
    metric_versions,
    register_metric,
)
from .rkid import RKID_SCALE, RKIDScorer, kid, make_rkid
from .swd import SWDScorer, make_swd, swd_floor, wasserstein_1d_sorted

__all__ = [
    # the registry
    "CONTEXT_OPTIONS", "MetricFactory", "MetricInfo", "Scorer", "build_metric", "get_metric",
    "get_metric_info", "list_metrics", "metric_versions", "register_metric", "MetricError",
    # the metric families
    "SWDScorer", "make_swd", "swd_floor", "swd_num_levels", "laplacian_pyramid", "wasserstein_1d_sorted",
    "pairwise_realism",
    "DiversityScorer", "make_diversity",
    "EMBEDDING_SEED", "RANDOM_EMBEDDING", "SAVE_PT2", "Embedding", "EmbeddedReal", "embed_real",
    "embedding_name", "load_embedding", "random_embedding",
    "RKID_SCALE", "RKIDScorer", "kid", "make_rkid",
    "CoverageScorer", "make_coverage",
    "ColorScorer", "make_color",
    "FLOOR_REPEATS", "PERCEPTUAL_PARTS", "Floor", "floor_draws", "measure_floors", "perceptual_from_parts",
    "summarise_floors",
    "PerceptualScorer", "build_scorers", "make_perceptual",
    "tensor_digest",
]
