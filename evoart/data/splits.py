"""A run's three disjoint splits: training, the fitness holdout and the evaluation holdout.

* **train**: what individuals train on.
* **fitness holdout** (``holdout``, default 256): never trained on; judging and the
  fitness metrics compare with it (``EvalContext.holdout_images``).
* **evaluation holdout** (``eval_holdout``, default 256): no individual and no fitness
  term ever sees it. Only ``evoart score --heldout`` (``evoart.scoring.heldout``) reads
  it, after the run, so the claims of quality are measured on images the evolution could
  not have been steered by.

Images that come from one source photograph (crops) stay in one split: otherwise a crop
in the evaluation split would have a near-twin in the training split. ``ImageSet.sources``
names each image's source (see :func:`folder_source`); the split permutes *sources* with
the run's seed and fills the evaluation split first, then the fitness holdout, and leaves
the rest to training. With every image its own source (built-ins, a folder of separate
photographs) the evaluation split has exactly ``eval_holdout`` images and depends only on
the seed and its size, not on ``holdout``.

The split's identity is kept in the run's record (:meth:`Split.record`: version, seed,
sizes and a digest of each split's indices) so it can be rebuilt exactly later; a run
recorded before evaluation splits existed has no such record and keeps its two-way split
(:data:`LEGACY_RECORD`, :func:`holdout_split`), so it resumes and rescores on the data it
began with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..seeds import array_digest
from .types import DataError, ImageSet

#: 1: train + fitness holdout (``holdout_split``), runs recorded before evaluation splits.
#: 2: train + fitness holdout + evaluation holdout, split by source.
SPLIT_VERSION = 2
#: What a run record without a ``splits`` entry means: a run of the two-way split.
LEGACY_RECORD = {"version": 1}

#: A folder file named ``<source>@<k>.<ext>`` (k digits) is crop k of photograph
#: ``<source>``; every other file is its own source.
_CROP = re.compile(r"^(?P<source>.+)@\d+$")


def folder_source(relative: str) -> str:
    """The source of a folder file, from its path relative to the folder.

    Crops of one photograph share a source when they sit in one sub-folder and are named
    ``<source>@<k>.<ext>`` (``harbour@0.png``, ``harbour@1.png``, ... in ``crops/``:
    source ``crops/harbour``). Any other file is its own source. The ``@`` marker is
    explicit on purpose: camera and download names (``IMG_0001``, ``photo-2``) share
    prefixes without being crops of one picture, and must not be grouped."""
    parent, _, name = relative.rpartition("/")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    match = _CROP.match(stem)
    if match is None:
        return relative
    return f"{parent}/{match['source']}" if parent else match["source"]


def source_ids(names: list[str]) -> np.ndarray:
    """Integer source ids (int64) for per-image source names, numbered in order of first
    appearance: equal names, equal ids."""
    index: dict[str, int] = {}
    return np.array([index.setdefault(n, len(index)) for n in names], dtype=np.int64)


def holdout_split(n: int, n_holdout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` into (train, held-out) index arrays with a seeded permutation.

    The two-way split of runs recorded before evaluation splits existed (split version
    1); kept exactly so those runs resume on the data they began with. Both arrays are
    sorted int64 and disjoint, and together cover ``range(n)``; the same arguments always
    give the same split.
    """
    if not 0 <= n_holdout <= n:
        raise ValueError(f"n_holdout must be between 0 and n={n}, got {n_holdout}")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_holdout:]).astype(np.int64), np.sort(order[:n_holdout]).astype(np.int64)


def three_way_split(sources: np.ndarray, n_fitness: int, n_eval: int, seed: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, fitness, evaluation) index arrays (sorted int64, disjoint, covering every
    image) that keep each source's images in one split.

    Sources are taken in a seeded random order: into the evaluation split until it holds
    at least ``n_eval`` images, then into the fitness split until it holds at least
    ``n_fitness``; the rest train. With one image per source the sizes are exact."""
    sources = np.asarray(sources, dtype=np.int64)
    n = len(sources)
    if n_fitness < 0 or n_eval < 0 or n_fitness + n_eval > n:
        raise ValueError(f"n_fitness + n_eval must be between 0 and n={n}, got {n_fitness} + {n_eval}")
    unique, first, inverse = np.unique(sources, return_index=True, return_inverse=True)
    by_appearance = np.argsort(first, kind="stable")   # source k = k-th source to appear
    rank = np.empty(len(unique), np.int64)
    rank[by_appearance] = np.arange(len(unique))
    group = rank[inverse.reshape(-1)]                  # image -> source number by appearance
    members: list[list[int]] = [[] for _ in unique]
    for image, g in enumerate(group):
        members[g].append(image)
    order = np.random.default_rng(seed).permutation(len(unique))
    evaluation: list[int] = []
    fitness: list[int] = []
    train: list[int] = []
    for g in order:
        if len(evaluation) < n_eval:
            evaluation.extend(members[g])
        elif len(fitness) < n_fitness:
            fitness.extend(members[g])
        else:
            train.extend(members[g])
    def sort(part: list[int]) -> np.ndarray:
        return np.sort(np.array(part, dtype=np.int64))

    return sort(train), sort(fitness), sort(evaluation)


@dataclass(frozen=True)
class Split:
    """The index arrays of a run's splits (into ``ImageSet.images``) and how they were made."""

    version: int
    seed: int
    train: np.ndarray
    fitness: np.ndarray
    evaluation: np.ndarray      # empty for version 1
    requested: tuple[int, int]  # (fitness holdout, evaluation holdout) asked for
    sources: int                # distinct sources

    def record(self) -> dict:
        """What the run's record keeps so the split can be rebuilt and checked exactly."""
        return {
            "version": self.version, "seed": self.seed,
            "requested": {"fitness": self.requested[0], "evaluation": self.requested[1]},
            "sizes": {"train": len(self.train), "fitness": len(self.fitness), "evaluation": len(self.evaluation)},
            "sources": self.sources,
            "digests": {part: _digest(getattr(self, part)) for part in ("train", "fitness", "evaluation")},
        }


def _digest(indices: np.ndarray) -> str:
    return array_digest(np.asarray(indices, dtype=np.int64))


def split_run(imageset: ImageSet, *, holdout: int, eval_holdout: int, seed: int,
              batch: int, recorded: dict | None = None) -> Split:
    """The split of a run's images.

    ``recorded`` is the run record's ``splits`` entry when the run exists (``None``: a
    new run, split with this version; :data:`LEGACY_RECORD`: a run recorded before
    evaluation splits, split two ways as it was). A recorded split is rebuilt from its
    own seed and sizes and checked against its digests. ``batch`` is the largest batch a
    genome may train with: the training split must hold at least that many images.
    """
    version = SPLIT_VERSION if recorded is None else int(recorded.get("version", 1))
    n = len(imageset)
    if version == 1:
        if recorded is not None and "seed" in recorded:
            seed = int(recorded["seed"])
        require = batch + holdout
        _require(imageset, require, f"the largest batch ({batch}) plus the held-out split ({holdout})")
        train, fitness = holdout_split(n, holdout, seed=seed)
        split = Split(1, seed, train, fitness, np.empty(0, np.int64), (holdout, 0), n)
    elif version == 2:
        if recorded is not None:
            seed = int(recorded["seed"])
            holdout = int(recorded["requested"]["fitness"])
            eval_holdout = int(recorded["requested"]["evaluation"])
        _require(imageset, batch + holdout + eval_holdout,
                 f"the largest batch ({batch}) plus the fitness holdout ({holdout}) plus the "
                 f"evaluation holdout ({eval_holdout}). Add images, or lower holdout or eval_holdout "
                 "(in a --config file).")
        sources = imageset.source_ids()
        train, fitness, evaluation = three_way_split(sources, holdout, eval_holdout, seed)
        n_sources = int(len(np.unique(sources)))
        if len(train) < batch:
            raise DataError(
                f"After splitting {imageset.source if imageset.kind == 'folder' else imageset.name} by source "
                f"({n_sources} sources for {n} images; crops named <source>@<k> share one), only {len(train)} "
                f"images are left to train on; evoart needs at least {batch}: the largest batch. Add images or "
                "sources, or lower holdout or eval_holdout (in a --config file).")
        split = Split(2, seed, train, fitness, evaluation, (holdout, eval_holdout), n_sources)
    else:
        raise DataError(f"this run's data split has version {version}, which this evoart does not know; "
                        "upgrade evoart to use it")
    if recorded is not None and "digests" in recorded:
        now = split.record()["digests"]
        changed = [part for part, digest in recorded["digests"].items() if now.get(part) != digest]
        if changed:
            raise DataError(
                f"the {', '.join(changed)} split of this run cannot be rebuilt as it was recorded (the images or "
                "their sources changed since the run began). Restore the images, or start a new run.")
    return split


def _require(imageset: ImageSet, needed: int, why: str) -> None:
    from .loading import require_count

    require_count(imageset, needed, why)
