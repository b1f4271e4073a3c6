"""Training data of a run: a built-in procedural dataset or the user's image folder.

Built-in datasets are generated on the fly from a seed, so evoart needs no
download and ships no image files, and a run can be reproduced from its
arguments alone. A user's folder is decoded once into uint8 arrays and the
result cached *outside* that folder (evoart never writes into user data), so
the second run on the same folder starts immediately.

Everything here returns images as uint8 numpy arrays shaped (N, R, R, 3);
:mod:`evoart.imaging` converts them to the float tensors the GAN trains on.
"""

from __future__ import annotations

# Importing the generators registers them, in this order: the default first.
from . import shapes  # noqa: F401, I001
from . import landscapes  # noqa: F401, I001
from . import patterns  # noqa: F401, I001
from .builtin import list_datasets, register_dataset
from .folders import decode_image, default_cache_dir
from .loading import load_images, load_run_data, load_run_split, preview, recorded_split, require_count
from .splits import LEGACY_RECORD, SPLIT_VERSION, Split, folder_source, holdout_split, split_run, three_way_split
from .types import (
    BUILTIN_COUNT,
    CACHE_VERSION,
    DEFAULT_DATASET,
    IMAGE_EXTENSIONS,
    DataError,
    DatasetInfo,
    ImageSet,
)


__all__ = [
    "BUILTIN_COUNT",
    "CACHE_VERSION",
    "DEFAULT_DATASET",
    "IMAGE_EXTENSIONS",
    "DataError",
    "DatasetInfo",
    "ImageSet",
    "decode_image",
    "default_cache_dir",
    "LEGACY_RECORD",
    "SPLIT_VERSION",
    "Split",
    "folder_source",
    "holdout_split",
    "load_run_split",
    "recorded_split",
    "split_run",
    "three_way_split",
    "list_datasets",
    "load_images",
    "load_run_data",
    "preview",
    "register_dataset",
    "require_count",
]
