"""Networks built from a genome: ``build_generator`` and ``build_discriminator``.

The generator projects a latent vector to a small map (4x4 unless the genome has too
few upsampling blocks, see ``genome.layout``), runs the genome's blocks and ends in a
3x3 to-RGB convolution with the genome's output activation. The discriminator is one of
a small family (DCGAN-style strided convolutions or residual blocks) with evolved width,
normalisation and input representation (``evoart.d_inputs``). Both load inherited tensors wherever names and shapes match.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .d_inputs import build_input
from .genome import Block, Genome, d_input_channels, d_widths, layout, upsamplings_needed


# ---- small pieces ------------------------------------------------------------------------

class Sin(nn.Module):
    """Periodic activation, a nod to Sims' and CPPN images."""

    def forward(self, x):
        return torch.sin(x)


def activation(name: str) -> nn.Module:
    return {
        "relu": lambda: nn.ReLU(),
        "lrelu": lambda: nn.LeakyReLU(0.2),
        "elu": lambda: nn.ELU(),
        "gelu": lambda: nn.GELU(),
        "silu": lambda: nn.SiLU(),
        "tanh": lambda: nn.Tanh(),
        "sin": lambda: Sin(),
    }[name]()


def _functorch_active() -> bool:
    active = getattr(torch._C, "_are_functorch_transforms_active", None)
    return True if active is None else bool(active())


class GroupNorm(nn.GroupNorm):
    """``nn.GroupNorm``, faster on bf16 channels_last input (the layout bf16 training uses
    on the CPU). There torch's CPU kernel takes 5 times as long as on plain rows, forward
    and backward (6.6 against 1.4 ms for 32 x 24 x 32 x 32), so the input goes to plain
    rows and back: 1.5 to 1.7 times faster with the two copies, and 1.09 times faster
    whole training steps on the benchmark's genome set (docs/PERFORMANCE.md). The same
    parameters and state dict as ``nn.GroupNorm``. Inside vmap (``evoart.batched``) a
    tensor cannot be asked for its layout; batched members already run on plain rows."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.dtype == torch.bfloat16 and x.dim() == 4 and not _functorch_active()
                and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)):
            y = F.group_norm(x.contiguous(), self.num_groups, self.weight, self.bias, self.eps)
            return y.contiguous(memory_format=torch.channels_last)
        return super().forward(x)


def g_norm(name: str, channels: int) -> nn.Module:
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if name == "group":
        return GroupNorm(8 if channels >= 32 else channels // 4, channels)
    return nn.Identity()


class NoiseInjection(nn.Module):
    """Per-pixel noise with a learned per-channel scale (StyleGAN); starts at zero so an
    inherited network is not disturbed when a mutation switches noise on."""

    def __init__(self, channels: int):
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x):
        noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
        return x + self.scale * noise


class GBlock(nn.Module):
    def __init__(self, gene: Block, c_in: int, c_out: int, upsample: str):
        super().__init__()
        k = gene.kernel
        self.upsample = upsample
        if upsample == "transposed":
            # kernel k+1, stride 2: exactly doubles the map (k=3 is DCGAN's 4x4 kernel)
            self.conv = nn.ConvTranspose2d(c_in, c_out, k + 1, stride=2, padding=(k - 1) // 2)
        elif upsample == "pixelshuffle":
            self.conv = nn.Conv2d(c_in, c_out * 4, k, padding=k // 2)
        else:
            self.conv = nn.Conv2d(c_in, c_out, k, padding=k // 2)
        self.noise = NoiseInjection(c_out) if gene.noise else None
        self.norm = g_norm(gene.norm, c_out)
        self.act = activation(gene.activation)
        self.skip = None
        self.residual = gene.residual
        if gene.residual and c_in != c_out:
            self.skip = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x):
        if self.upsample in ("nearest", "bilinear"):
            x = F.interpolate(x, scale_factor=2, mode=self.upsample,
                              **({"align_corners": False} if self.upsample == "bilinear" else {}))
        h = self.conv(x)
        if self.upsample == "pixelshuffle":
            h = F.pixel_shuffle(h, 2)
        if self.noise is not None:
            h = self.noise(h)
        h = self.act(self.norm(h))
        if self.residual:
            s = x
            if self.upsample in ("transposed", "pixelshuffle"):
                s = F.interpolate(s, scale_factor=2, mode="nearest")
            if self.skip is not None:
                s = self.skip(s)
            h = (h + s) * (1 / math.sqrt(2))
        return h


class Generator(nn.Module):
    def __init__(self, genome: Genome, resolution: int):
        super().__init__()
        g = genome.generator
        stem_size, blocks = layout(genome, resolution)
        self.latent = g.latent
        self.resolution = resolution
        self.stem_size = stem_size
        self.stem_channels = g.stem_channels
        self.stem = nn.Linear(g.latent, g.stem_channels * 4 * 4)  # (stem_channels) x 4 x 4
        self.stem_act = nn.LeakyReLU(0.2)
        self.blocks = nn.ModuleList(
            GBlock(gene, bl.in_channels, bl.out_channels, bl.upsample)
            for gene, bl in zip(g.blocks, blocks)
        )
        self.to_rgb = nn.Conv2d(blocks[-1].out_channels, 3, 3, padding=1)
        self.output = g.output

    def forward(self, z):
        x = self.stem(z).view(z.shape[0], self.stem_channels, 4, 4)
        x = self.stem_act(x)
        if self.stem_size > 4:  # too few upsampling blocks for this resolution
            x = F.interpolate(x, size=self.stem_size, mode="nearest")
        for block in self.blocks:
            x = block(x)
        x = self.to_rgb(x)
        if self.output == "tanh":
            return torch.tanh(x)
        if self.output == "sigmoid":
            return torch.sigmoid(x) * 2 - 1
        if self.output == "sin":
            return torch.sin(x)
        return torch.clamp(x, -1, 1)


# ---- discriminator -----------------------------------------------------------------------

def _d_norm(name: str, channels: int) -> nn.Module:
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if name == "layer":
        return GroupNorm(1, channels)
    return nn.Identity()


def _sn(module: nn.Module, on: bool) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(module) if on else module


class DResBlock(nn.Module):
    """Residual downsampling block (SNGAN/BigGAN style, pooling first)."""

    def __init__(self, c_in: int, c_out: int, norm: str):
        super().__init__()
        sn = norm == "spectral"
        self.norm1 = _d_norm(norm, c_in)
        self.conv1 = _sn(nn.Conv2d(c_in, c_out, 3, padding=1), sn)
        self.norm2 = _d_norm(norm, c_out)
        self.conv2 = _sn(nn.Conv2d(c_out, c_out, 3, padding=1), sn)
        self.skip = _sn(nn.Conv2d(c_in, c_out, 1), sn)

    def forward(self, x):
        # Pool first: the convolutions run at the lower resolution, which keeps a residual
        # discriminator within the same compute as a DCGAN one of the same width.
        x = F.avg_pool2d(x, 2)
        h = self.conv1(F.leaky_relu(self.norm1(x), 0.2))
        h = self.conv2(F.leaky_relu(self.norm2(h), 0.2))
        return (h + self.skip(x)) * (1 / math.sqrt(2))


class Discriminator(nn.Module):
    """Maps images (N,3,R,R) in [-1,1] to one realism logit each; ``forward(x, True)`` also
    returns the flattened last feature map, used by the feature-matching loss.

    The ``input`` gene (``evoart.d_inputs``) says what the layers read: the pixels, or
    the levels of a Laplacian pyramid or of a frozen random feature network, the first
    in place of the pixels and each further one added, through a trainable 1x1
    convolution, to D's own map of the same size."""

    def __init__(self, genome: Genome, resolution: int):
        super().__init__()
        d = genome.discriminator
        downs = upsamplings_needed(resolution)
        sn = d.norm == "spectral"
        widths = d_widths(genome, resolution)
        in_channels = d_input_channels(genome, resolution)
        layers: list[nn.Module] = []
        taps: dict[int, tuple[int, int]] = {}  # input level -> (index of the layer after which it enters, channels)
        if d.family == "dcgan":
            # (w) x R/2 x R/2 -> ... -> (w * 2^(k-1)) x 4 x 4; no norm on the first layer
            c = in_channels[0]
            for i in range(downs):
                layers.append(_sn(nn.Conv2d(c, widths[i], 4, stride=2, padding=1), sn))
                if i > 0:
                    layers.append(_d_norm(d.norm, widths[i]))
                layers.append(nn.LeakyReLU(0.2))
                c = widths[i]
                taps[i + 1] = (len(layers) - 1, c)
        else:
            layers.append(_sn(nn.Conv2d(in_channels[0], widths[0], 3, padding=1), sn))
            c = widths[0]
            for i in range(downs):
                layers.append(DResBlock(c, widths[i + 1], d.norm))
                c = widths[i + 1]
                taps[i + 1] = (len(layers) - 1, c)
            layers.append(nn.LeakyReLU(0.2))
        self.features = nn.Sequential(*layers)
        self.head = _sn(nn.Linear(c * 16, 1), sn)
        # Built after the pixel D's layers, so a pixel D initialises exactly as before.
        self.input = build_input(genome, resolution)
        self.taps = nn.ModuleDict()
        self._tap_at: dict[int, int] = {}  # layer index -> input level
        if self.input is not None:
            for level in range(1, len(in_channels)):
                at, channels = taps[level]
                self.taps[str(level)] = _sn(nn.Conv2d(in_channels[level], channels, 1), sn)
                self._tap_at[at] = level

    def trunk(self, x):
        """D's own layers on its input: the image, or the input representation's levels."""
        if self.input is None:
            return self.features(x)
        levels = self.input(x)
        h = levels[0]
        for i, layer in enumerate(self.features):
            h = layer(h)
            level = self._tap_at.get(i)
            if level is not None:
                h = h + self.taps[str(level)](levels[level])
        return h

    def forward(self, x, return_features: bool = False):
        f = self.trunk(x).flatten(1)
        out = self.head(f).squeeze(1)
        return (out, f) if return_features else out


def build_generator(genome: Genome, resolution: int) -> Generator:
    return Generator(genome, resolution)


def build_discriminator(genome: Genome, resolution: int) -> Discriminator:
    return Discriminator(genome, resolution)


# ---- inheritance -------------------------------------------------------------------------

def generator_source_name(name: str, inheritance) -> tuple[int, str] | None:
    """Which parent and which tensor name a child generator tensor inherits from."""
    if name.startswith("blocks."):
        _, idx, rest = name.split(".", 2)
        src = inheritance.blocks[int(idx)] if int(idx) < len(inheritance.blocks) else None
        if src is None:
            return None
        return src[0], f"blocks.{src[1]}.{rest}"
    if inheritance.stem is None:
        return None
    return inheritance.stem, name


def inherit_tensors(module: nn.Module, parent_states: list[dict | None], source) -> tuple[int, int]:
    """Copy parents' tensors into ``module`` where a source exists and shapes match.

    ``source(name)`` returns (parent index, parent tensor name) or None. Returns
    (inherited, total) counts of tensors so a run can show how much was inherited.
    """
    own = module.state_dict()
    update = {}
    for name, tensor in own.items():
        src = source(name)
        if src is None:
            continue
        p, pname = src
        state = parent_states[p] if p < len(parent_states) else None
        if state is None or pname not in state:
            continue
        t = state[pname]
        if t.shape == tensor.shape and t.dtype == tensor.dtype:
            update[name] = t
    if update:
        module.load_state_dict(update, strict=False)
    return len(update), len(own)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
