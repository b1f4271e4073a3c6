"""What every metric family shares: the user-facing error, image checks, seeded random
streams, the fast row sort, full float32 on a GPU and the content digest of an image set."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
from torch import Tensor

from ..errors import EvoartError
from ..seeds import array_digest, torch_generator


class MetricError(EvoartError, ValueError):
    """Images or a feature extractor the metrics cannot use; the message is for the user.

    A ``ValueError`` too, so callers that catch ``ValueError`` keep working."""


def seeded_generator(seed: int, purpose: str) -> torch.Generator:
    """A CPU generator for one purpose, seeded from ``seed`` with blake2b.

    Why: real patches, fake patches and projection directions each need their own
    stream, and the streams must not depend on call order or on Python's randomised
    ``hash``. The metrics derive with blake2b (``evoart.seeds``); changing it would
    change every stored value.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    return torch_generator(int(seed), purpose, algorithm="blake2b")


def check_images(images: Tensor, what: str, *, min_count: int = 1) -> None:
    if not isinstance(images, Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{what} must be shaped (N, 3, H, W), got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"{what} must be a float tensor in [-1, 1], got {images.dtype}")
    if images.shape[0] < min_count:
        raise ValueError(f"{what} needs at least {min_count} images, got {images.shape[0]}")
    if not bool(torch.isfinite(images).all()):
        raise ValueError(f"{what} contain NaN or infinite values")


def check_size(fake: Tensor, image_size: tuple[int, int]) -> None:
    """Fake images must be the size of the real set a scorer was built on."""
    if tuple(fake.shape[-2:]) != image_size:
        raise MetricError(f"fake images are {tuple(fake.shape[-2:])} but real images are {image_size}")


def sort_rows_(x: Tensor) -> Tensor:
    """Sort each row ascending, in place where possible (``x`` must be a scratch tensor).

    Why numpy on CPU: its SIMD sort is ~3-4x faster than ``torch.sort`` on one
    thread, and sorting the projections is the dominant cost of SWD. Sorted
    values are the same whichever algorithm produced them.
    """
    if x.device.type == "cpu":
        x = x.detach().contiguous()
        x.numpy().sort(axis=-1)
        return x
    return torch.sort(x, dim=-1).values


@contextmanager
def full_fp32(device: str | torch.device | None) -> Iterator[None]:
    """Float32 convolutions and matrix products in full float32 on CUDA, not TF32 (cuDNN's
    default for convolutions on Ampere and later: 10 mantissa bits). A metric's numbers are
    part of its definition, so on a card it computes what the CPU computes, to rounding.
    Nothing to do off CUDA."""
    if device is None or torch.device(device).type != "cuda":
        yield
        return
    conv, matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = conv, matmul


def tensor_digest(images: Tensor) -> str:
    """A short content hash of an image tensor (shape, dtype and bytes)."""
    return array_digest(images)
