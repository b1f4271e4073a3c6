"""The Laplacian pyramid behind SWD, matching the reference's scipy/cv2-style
pyrDown/pyrUp (tkarras/progressive_growing_of_gans)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


_BINOMIAL_5 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=torch.float64) / 16.0


def _blur_separable(x: Tensor, *, gain: float, stride: int = 1) -> Tensor:
    """Filter an already mirror-padded ``x`` with the 5x5 binomial kernel (/256) times ``gain``.

    The 5x5 kernel is the outer product of [1, 4, 6, 4, 1] / 16 with itself,
    so two 1-D passes give the same result as the reference's 2-D convolution
    (up to float rounding) at 2/5 of the cost.
    """
    c = x.shape[1]
    k = (_BINOMIAL_5 * math.sqrt(gain)).to(device=x.device, dtype=torch.float32)
    x = F.conv2d(x, k.view(1, 1, 5, 1).expand(c, 1, 5, 1), stride=(stride, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, 1, 5).expand(c, 1, 1, 5), stride=(1, stride), groups=c)


def _pyr_down(x: Tensor) -> Tensor:
    """Blur with the 5x5 binomial filter (mirror borders) and keep every 2nd pixel.

    Same as the reference's ``pyr_down`` (scipy ``mode="mirror"`` is torch's
    ``"reflect"``); a stride-2 convolution computes exactly the kept pixels.
    """
    return _blur_separable(F.pad(x, (2, 2, 2, 2), mode="reflect"), gain=1.0, stride=2)


def _pyr_up(x: Tensor) -> Tensor:
    """Zero-insert to twice the size and blur with 4x the binomial filter.

    Same as the reference's ``pyr_up``: the zero-inserted image is mirror-padded
    *before* filtering, which is what makes the borders match cv2.pyrUp.
    """
    n, c, h, w = x.shape
    up = x.new_zeros((n, c, 2 * h, 2 * w))
    up[:, :, ::2, ::2] = x
    return _blur_separable(F.pad(up, (2, 2, 2, 2), mode="reflect"), gain=4.0)


def laplacian_pyramid(images: Tensor, *, num_levels: int) -> list[Tensor]:
    """Laplacian pyramid, finest level first, coarsest (a Gaussian level) last.

    Why a Laplacian pyramid: each level holds the detail of one octave of
    spatial frequency, so SWD per level says at which scale fakes differ from
    the data (fine texture vs. coarse layout).
    """
    if num_levels < 1:
        raise ValueError(f"num_levels must be >= 1, got {num_levels}")
    h, w = images.shape[-2:]
    factor = 2 ** (num_levels - 1)
    if h % factor or w % factor:
        raise ValueError(
            f"image size {h}x{w} must be divisible by {factor} for {num_levels} pyramid levels"
        )
    pyramid = [images.to(torch.float32)]
    for _ in range(1, num_levels):
        down = _pyr_down(pyramid[-1])
        pyramid[-1] = pyramid[-1] - _pyr_up(down)
        pyramid.append(down)
    return pyramid


def swd_num_levels(size: int, *, min_resolution: int = 16) -> int:
    """Number of pyramid levels: resolutions ``size, size/2, ...`` that are >= ``min_resolution``."""
    levels, res = 0, size
    while res >= min_resolution:
        levels += 1
        res //= 2
    return levels

