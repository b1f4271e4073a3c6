"""What a discriminator looks at: its input representation (the ``discriminator.input`` gene).

* ``pixels``: the image itself, one level.
* ``pyramid``: a Laplacian pyramid, finest band first, the low-pass 8x8 image last. It is
  lossless (the image is the sum of its upsampled bands), so D sees what pixels show, but
  split by octave of spatial frequency, and each band enters D at its own resolution: a
  multi-scale D in the manner of MSG-GAN's (Karnewar & Wang 2020) inputs at every scale.
* ``random-features``: a fixed random convolutional network, seeded, never trained: a 3x3
  convolution at full resolution, then stride-2 3x3 convolutions down to 4x4, leaky ReLU
  after each. Every level enters D at its own resolution, as the levels of a pretrained
  feature network do in Projected GANs (Sauer et al. 2021); nothing here is pretrained or
  downloaded. D never sees the pixels themselves.

Both multi-level inputs are parameter-free as far as the optimiser is concerned: the
random weights are buffers, not parameters, and not persistent ones either, so they are
neither trained, nor counted, nor saved with a state, nor inherited: every D rebuilds the
same ones from :data:`RANDOM_FEATURES_SEED` without touching torch's global random
state, so parent, child and every judge see the same features. Every level is a
differentiable function of the image, so R1 and the generator's gradient pass through.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .genome import Genome, d_input_channels

#: The seed of the frozen random-feature network. Part of the contract of the
#: ``random-features`` gene: changing it changes what every saved D of that kind reads.
RANDOM_FEATURES_SEED = 1991  # the year of Sims' "Artificial Evolution for Computer Graphics"
_LRELU = 0.2


def laplacian_levels(x: Tensor, levels: int) -> list[Tensor]:
    """The Laplacian pyramid of ``x`` (N,C,R,R), finest band first and the low-pass image
    (R / 2^(levels-1) pixels a side) last. Average pooling down, bilinear up: cheap and
    exactly invertible (``x = band_0 + up(band_1 + up(...))``). Computed in fp32 even
    under bf16 autocast: a band is a small difference of two nearly equal images, where
    bf16's 8-bit mantissa would be mostly rounding."""
    g = x.float()
    out = []
    for _ in range(levels - 1):
        down = F.avg_pool2d(g, 2)
        out.append(g - F.interpolate(down, scale_factor=2, mode="bilinear", align_corners=False))
        g = down
    out.append(g)
    return out


class LaplacianInput(nn.Module):
    """Parameter-free: the image as its Laplacian pyramid, one level per D resolution."""

    def __init__(self, levels: int):
        super().__init__()
        self.levels = levels

    def forward(self, x: Tensor) -> list[Tensor]:
        return laplacian_levels(x, self.levels)


class RandomFeatures(nn.Module):
    """A frozen, seeded random conv network; ``forward`` returns every level's features.

    Weights are He-normal for the leaky ReLU (so each level keeps about the variance of
    its input), drawn from a private ``torch.Generator`` seeded with ``seed``: the same
    seed and channel list always give the same network, and building one leaves torch's
    global random state where it was."""

    def __init__(self, channels: list[int], seed: int = RANDOM_FEATURES_SEED):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        gain = math.sqrt(2.0 / (1 + _LRELU ** 2))
        c = 3
        self.count = len(channels)
        for i, w in enumerate(channels):
            weight = torch.randn(w, c, 3, 3, generator=gen) * (gain / math.sqrt(c * 9))
            # not persistent: rebuilt from the seed, never saved or inherited
            self.register_buffer(f"weight{i}", weight, persistent=False)
            c = w

    def forward(self, x: Tensor) -> list[Tensor]:
        out = []
        h = x
        for i in range(self.count):
            w = getattr(self, f"weight{i}")
            h = F.leaky_relu(F.conv2d(h, w, stride=1 if i == 0 else 2, padding=1), _LRELU)
            out.append(h)
        return out


def build_input(genome: Genome, resolution: int) -> nn.Module | None:
    """The frozen input module of a genome's D, or None for pixels (D reads the image)."""
    kind = genome.discriminator.input
    if kind == "pixels":
        return None
    channels = d_input_channels(genome, resolution)
    if kind == "pyramid":
        return LaplacianInput(len(channels))
    return RandomFeatures(channels)
