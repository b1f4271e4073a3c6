"""Scoring outside evolution: two image sets or folders (``evoart score``) and a run's
individuals again with its own protocol. Above ``fitness`` and ``store``: it reads runs
and data, and never trains."""

from .folders import MIN_REAL_IMAGES, REPORTED, ScoreError, score_folders, score_image_sets
from .rescore import rescore_run

__all__ = ["MIN_REAL_IMAGES", "REPORTED", "ScoreError", "rescore_run", "score_folders", "score_image_sets"]
