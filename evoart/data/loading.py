"""The entry points: load a dataset by name or folder, check counts, split a run's data."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from .. import imaging
from . import builtin, types
from .folders import _fingerprint, _load_folder
from .splits import LEGACY_RECORD, Split, holdout_split, split_run  # noqa: F401  (holdout_split: re-exported)
from .types import DataError, ImageSet

# --------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------


def _check_positive(value: int | None, what: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
        raise DataError(f"{what} must be a positive whole number, got {value!r}")


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # e.g. a name too long to be a path: treat as "no such folder"
        return False


def load_images(
    source: str | os.PathLike,
    resolution: int,
    *,
    count: int | None = None,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImageSet:
    """Load the training images named by ``source``.

    ``source`` is an existing folder (searched recursively) or else the name
    of a built-in dataset; an existing path always wins, so a folder called
    ``shapes`` in the working directory is loaded as a folder.

    Built-in: ``count or BUILTIN_COUNT`` images generated from
    ``np.random.default_rng(seed)``; identical arguments give identical bytes.
    Folder: every readable image, centre-cropped and resized to
    ``resolution``, in sorted path order; ``count`` (if given) keeps the first
    ``count`` of them; ``seed`` is not used. Unreadable files are listed in
    ``ImageSet.skipped``. The decoded folder is cached under ``cache_dir``
    (default :func:`default_cache_dir`), never inside the folder itself.
    ``progress(done, total)`` is called after each decoded file (once with
    ``(total, total)`` on a cache hit).

    Raises DataError for a missing path that is not a built-in name, a path
    that is a file, or a folder without usable images.
    """
    _check_positive(resolution, "Resolution")
    _check_positive(count, "Image count")
    path = Path(source).expanduser()
    if _exists(path):
        if not path.is_dir():
            raise DataError(
                f"{path.resolve()} is a file, not a folder. Give a folder of images "
                f"(searched recursively) or a built-in dataset ({builtin._builtin_names()})."
            )
        return _load_folder(path.resolve(), int(resolution), count=count, cache_dir=cache_dir, progress=progress)
    name = str(source)
    if name in builtin._REGISTRY:
        images = builtin._generate_builtin(name, int(count or types.BUILTIN_COUNT), int(resolution), seed)
        return ImageSet(
            name=name, kind="builtin", source=name, fingerprint=_fingerprint(images), images=images, skipped=[]
        )
    raise DataError(
        f"{path.absolute()} does not exist, and {name!r} is not a built-in dataset. "
        f"Give an existing image folder or one of the built-in datasets: {builtin._builtin_names()}."
    )


def require_count(imageset: ImageSet, needed: int, why: str) -> None:
    """Raise DataError unless ``imageset`` holds at least ``needed`` images.

    ``why`` completes the sentence "evoart needs at least N: ..." and should
    say what the images are needed for and what the user can change.
    """
    have = len(imageset.images)
    if have >= needed:
        return
    where = imageset.source if imageset.kind == "folder" else f"the built-in dataset {imageset.name!r}"
    noun = "image" if have == 1 else "images"
    skipped = f" ({len(imageset.skipped)} skipped)" if imageset.skipped else ""
    raise DataError(f"Only {have} usable {noun} in {where}{skipped}; evoart needs at least {needed}: {why}")


def load_run_split(cfg, progress: Callable[[int, int], None] | None = None, *,
                   recorded: dict | None = None) -> tuple[ImageSet, Split]:
    """A run's images (``cfg``: an ``EvolveConfig``) and their split into training,
    fitness holdout and evaluation holdout (:mod:`evoart.data.splits`).

    ``recorded``: the run record's ``splits`` entry for an existing run
    (:func:`recorded_split` reads it from a record), ``None`` for a new run."""
    from ..genome import BATCH_SIZES

    images = load_images(cfg.data, cfg.resolution, progress=progress)
    split = split_run(images, holdout=cfg.holdout, eval_holdout=getattr(cfg, "eval_holdout", 0),
                      seed=cfg.seed, batch=max(BATCH_SIZES), recorded=recorded)
    return images, split


def recorded_split(run_record: dict) -> dict:
    """The ``splits`` entry of a run's record; a run recorded before evaluation splits
    existed has none and keeps its two-way split (``LEGACY_RECORD``)."""
    return run_record.get("splits") or dict(LEGACY_RECORD)


def load_run_data(cfg, progress: Callable[[int, int], None] | None = None, *,
                  recorded: dict | None = None) -> tuple[ImageSet, np.ndarray, np.ndarray]:
    """A run's images split into a training set and the fitness holdout nobody trains on:
    ``(ImageSet, train uint8, fitness holdout uint8)``. The evaluation holdout is not
    returned: what trains and what scores fitness never needs it."""
    images, split = load_run_split(cfg, progress, recorded=recorded)
    return images, images.images[split.train], images.images[split.fitness]


def preview(
    name_or_path: str | os.PathLike,
    resolution: int,
    n: int = 64,
    seed: int = 0,
    *,
    scale: int | None = None,
    cache_dir: Path | None = None,
) -> Image.Image:
    """A grid of the first ``n`` images of a dataset, for ``evoart datasets preview``.

    For built-ins these are exactly the first ``n`` images a run with the
    same seed trains on. ``scale`` defaults to whatever makes tiles about
    96 px, since 32 px images are too small to judge at 1:1.
    """
    imageset = load_images(name_or_path, resolution, count=n, seed=seed, cache_dir=cache_dir)
    scale = scale or max(1, math.ceil(96 / resolution))
    return imaging.image_grid(imageset.images[:n], scale=scale)

