"""What every part of ``evoart.data`` shares: constants, the error type, the image set."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np

from ..errors import EvoartError

DEFAULT_DATASET = "shapes"
#: Images generated for a built-in dataset when no count is given: enough that
#: a short GAN training run does not simply memorise them.
BUILTIN_COUNT = 2048
#: File name endings (compared case-insensitively) that count as images in a folder.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
#: Bump when decoding changes in a way that alters pixels, to invalidate old caches.
CACHE_VERSION = 1
#: Built-ins are drawn at this multiple of the target resolution and then
#: downsampled with LANCZOS, which anti-aliases every edge for free.
SUPERSAMPLE = 4

Generator = Callable[[int, int, np.random.Generator], np.ndarray]


class DataError(EvoartError):
    """A problem with the user's data. The CLI shows the message verbatim
    (exit code 2), so every message says what is wrong and what to do."""


@dataclass(frozen=True)
class DatasetInfo:
    """Name and one-line description of a built-in dataset, for ``evoart datasets``."""

    name: str
    description: str


@dataclass(frozen=True)
class _Builtin:
    info: DatasetInfo
    generate: Generator


@dataclass(eq=False)
class ImageSet:
    """The decoded training images of a run and where they came from.

    ``fingerprint`` is the first 16 hex digits of a sha256 over the image
    array itself (shape and bytes): two ImageSets have the same fingerprint
    exactly when they hold the same pixels, whatever the path, file dates or
    library versions that produced them. Run records store it so that a
    resumed or compared run can tell whether it saw the same data.

    ``skipped`` lists ``(path, reason)`` for files that could not be used;
    ``cached`` says whether a folder was read from the decode cache.

    ``sources`` gives each image's source photograph as an int64 id (equal ids, one
    source), so the data split can keep crops of one photograph together; ``None`` means
    every image is its own source (built-ins). For folders see
    :func:`evoart.data.splits.folder_source`.
    """

    name: str
    kind: Literal["builtin", "folder"]
    source: str
    fingerprint: str
    images: np.ndarray
    skipped: list[tuple[str, str]] = field(default_factory=list)
    cached: bool = False
    sources: np.ndarray | None = None

    def source_ids(self) -> np.ndarray:
        """Each image's source id (int64); one source per image when none are known."""
        if self.sources is None:
            return np.arange(len(self), dtype=np.int64)
        return np.asarray(self.sources, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.images.shape[0])

