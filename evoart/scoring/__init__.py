"""Scoring outside evolution: two image sets or folders (``evoart score``), a run's
individuals again with its own protocol, and the held-out evaluation (``evoart score
--heldout``) on the run's evaluation split. Above ``fitness`` and ``store``: it reads runs
and data, and never trains an individual (the held-out evaluation trains its own critic
and, on ``shapes``, a classifier)."""

from .folders import MIN_REAL_IMAGES, REPORTED, ScoreError, score_folders, score_image_sets
from .heldout import Budget, critic_divergence, evaluate_run, evaluate_samples
from .rescore import rescore_run

__all__ = ["MIN_REAL_IMAGES", "REPORTED", "Budget", "ScoreError", "critic_divergence", "evaluate_run",
           "evaluate_samples", "rescore_run", "score_folders", "score_image_sets"]
