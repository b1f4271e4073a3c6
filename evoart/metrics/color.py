"""``color``: per-channel colour statistics, which SWD normalises away. Lower is better."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ._common import check_images, check_size, sort_rows_
from .registry import register_metric
from .swd import wasserstein_1d_sorted


_COLOR_QUANTILES = 256


def _to_levels(images: Tensor) -> Tensor:
    """[-1, 1] -> 8-bit grey levels [0, 255] (float64)."""
    return (images.detach().to("cpu", torch.float64).clamp(-1, 1) + 1.0) * 127.5


def _quantiles(values: Tensor, q: int) -> Tensor:
    """Each row's values at the q mid-quantiles (i + 0.5) / q, by sorting (exact order
    statistics, no interpolation). Sorted by ``sort_rows_`` (numpy's sort, 7x faster than
    torch's here: 9 ms against 1.3 ms for 128 images of 32 px), on a copy."""
    s = sort_rows_(values.detach().clone())
    n = s.shape[-1]
    idx = ((torch.arange(q, dtype=torch.float64) + 0.5) * n / q).long().clamp_max(n - 1)
    return s[..., idx]


@dataclass
class ColorScorer:
    """Wasserstein-1 distances, in 8-bit grey levels, between real and fake per channel:
    of all pixel values and of per-image mean colours."""

    real_pixels: Tensor = field(repr=False)  # (3, Q) pixel-value quantiles per channel
    real_means: Tensor = field(repr=False)   # (3, n) per-image means per channel, sorted
    image_size: tuple[int, int]

    @property
    def name(self) -> str:
        return "color"

    def score(self, fake: Tensor) -> dict[str, float]:
        check_images(fake, "fake images")
        check_size(fake, self.image_size)
        levels = _to_levels(fake)
        pixels = _quantiles(levels.transpose(0, 1).reshape(3, -1), self.real_pixels.shape[1])
        w_pixels = (pixels - self.real_pixels).abs().mean(dim=1)               # (3,)
        means = torch.sort(levels.mean(dim=(2, 3)).T.contiguous(), dim=1).values
        w_means = wasserstein_1d_sorted(self.real_means, means)               # (3,)
        result = {
            "color": float((w_pixels.mean() + w_means.mean()) / 2),
            "color_pixels": float(w_pixels.mean()),
            "color_means": float(w_means.mean()),
        }
        for c, name in enumerate("rgb"):
            result[f"color_{name}"] = float((w_pixels[c] + w_means[c]) / 2)
        return result


@register_metric(
    "color",
    direction="lower",
    version=1,
    description=(
        "Colour statistics distance in 8-bit grey levels: mean over R, G, B of the "
        "Wasserstein-1 distances between pixel values and between per-image mean colours. "
        "Sees global colour and contrast shifts that SWD's normalisation hides."
    ),
)
def make_color(real: Tensor, *, seed: int) -> ColorScorer:
    """Build a colour scorer for ``real`` (deterministic; ``seed`` is unused)."""
    check_images(real, "real images", min_count=2)
    levels = _to_levels(real)
    pixels = _quantiles(levels.transpose(0, 1).reshape(3, -1), _COLOR_QUANTILES)
    means = torch.sort(levels.mean(dim=(2, 3)).T.contiguous(), dim=1).values
    return ColorScorer(pixels, means, (int(real.shape[-2]), int(real.shape[-1])))

