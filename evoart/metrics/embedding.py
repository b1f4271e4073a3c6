"""The feature embedding of ``rkid`` and ``coverage``: fixed random CNNs, or the user's
own extractor (a ``torch.export`` ``.pt2`` file, or a deprecated TorchScript ``.pt``)."""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ..seeds import file_digest
from ._common import MetricError, check_images, check_size, full_fp32


#: Seed of the random CNNs. A constant, not the run's seed: the embedding is part of
#: the metric's definition, so ``rkid`` and ``coverage`` values compare across runs
#: and with ``evoart score``. Changing it (or the architecture) is a new version.
EMBEDDING_SEED = 1729
#: (kernel, widths) of each random CNN; each stage halves the resolution.
_RANDOM_CNNS = ((3, (32, 64, 128, 128)),)
_EMBED_BATCH = 128
#: The random embedding's name: part of cache keys and run records.
RANDOM_EMBEDDING = "random-cnn-v1"


class _RandomCNN(torch.nn.Module):
    """A randomly initialised convolutional net that is never trained.

    Why random weights work at all: a random conv layer followed by a nonlinearity is
    a bank of random local filters; the mean and the spread of each filter's response
    over the image describe texture and structure at that scale, and stacking stages
    (each after a 2x average pool) widens the receptive field. Such embeddings rank
    generative models much as trained ones do (Naeem et al. 2020; Lee et al. 2022),
    although they are blind to some changes a trained net sees (see docs/METRICS.md).
    """

    def __init__(self, kernel: int, widths: tuple[int, ...], generator: torch.Generator):
        super().__init__()
        convs = []
        c_in = 3
        for width in widths:
            conv = torch.nn.Conv2d(c_in, width, kernel, padding=kernel // 2, padding_mode="reflect")
            fan_in = c_in * kernel * kernel
            # He initialisation for a leaky ReLU of slope 0.2: activations keep their scale.
            std = math.sqrt(2.0 / ((1 + 0.2**2) * fan_in))
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * std)
                conv.bias.copy_(torch.randn(conv.bias.shape, generator=generator) * 0.1)
            convs.append(conv)
            c_in = width
        self.convs = torch.nn.ModuleList(convs)

    def forward(self, x: Tensor) -> Tensor:
        feats = _mean_std(x)
        for i, conv in enumerate(self.convs):
            if i > 0 and min(x.shape[-2:]) >= 2:
                x = F.avg_pool2d(x, 2)
            x = F.leaky_relu(conv(x), 0.2)
            feats += _mean_std(x)
        return torch.cat(feats, dim=1)


def _mean_std(x: Tensor) -> list[Tensor]:
    """Each channel's mean and population standard deviation over space, (N, C) each.

    Two passes (the mean, then the mean squared deviation from it), as ``Tensor.std``
    computes it, but with plain element-wise kernels: torch's CPU ``std`` over two
    dimensions took 22 ms for a (128, 32, 32, 32) map on one thread against 8 ms here,
    and was half of an individual's embedding time. The values agree to rounding
    (1e-7 of features of size 3)."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    std = (x - mean).square().mean(dim=(2, 3)).sqrt()
    return [mean.flatten(1), std]


@dataclass
class Embedding:
    """Images (N, 3, H, W) in [-1, 1] -> features (N, D) float64 on the CPU; ``name``
    identifies it. ``device``: where the module runs (images go there a batch at a time)."""

    name: str
    module: Callable[[Tensor], Tensor] = field(repr=False)
    device: torch.device = torch.device("cpu")

    def __call__(self, images: Tensor) -> Tensor:
        out = []
        with torch.no_grad(), full_fp32(self.device):
            for i in range(0, images.shape[0], _EMBED_BATCH):
                f = self.module(images[i : i + _EMBED_BATCH].to(self.device, torch.float32))
                if f.ndim == 4:  # a feature map: average over space
                    f = f.mean(dim=(2, 3))
                if f.ndim != 2:
                    raise MetricError(
                        f"the feature extractor {self.name} returned shape {tuple(f.shape)}; "
                        "expected (N, D) or (N, C, H, W)"
                    )
                out.append(f.detach().to("cpu", torch.float64))
        feats = torch.cat(out)
        if not bool(torch.isfinite(feats).all()):
            raise MetricError(f"the feature extractor {self.name} returned NaN or infinite features")
        return feats


def random_embedding(device: str | torch.device | None = None) -> Embedding:
    """The default embedding: a fixed random CNN (3x3 kernels, four stages),
    per-channel mean and standard deviation pooled at the input and after every stage
    (710 dimensions). Its weights are drawn on the CPU and moved to ``device`` (None:
    the CPU), so every device embeds with the same net."""
    gen = torch.Generator().manual_seed(EMBEDDING_SEED)
    where = torch.device(device if device is not None else "cpu")
    nets = [_RandomCNN(k, widths, gen).eval().to(where) for k, widths in _RANDOM_CNNS]

    def embed(x: Tensor) -> Tensor:
        return torch.cat([net(x) for net in nets], dim=1)

    return Embedding(RANDOM_EMBEDDING, embed, where)


#: How to turn a model into the file ``--features`` asks for. The batch size must be
#: dynamic: an exported program is otherwise fixed to its example's batch size, and the
#: embedding runs batches of up to 128 images.
SAVE_PT2 = ('torch.export.save(torch.export.export(model, (example,), '
            'dynamic_shapes=({0: torch.export.Dim("batch")},)), "features.pt2")')
EXAMPLE_NOTE = "example: a batch of 2 or more images (N, 3, R, R) in [-1, 1] at the run's resolution R"


def _extractor_path(features: str) -> str:
    path = os.path.abspath(os.path.expanduser(str(features)))
    if not os.path.isfile(path):
        raise MetricError(f"feature extractor {features} does not exist (give a torch.export .pt2 file)")
    return path


def _is_export(path: str) -> bool:
    return path.endswith(".pt2")


def embedding_name(features: str | None) -> str:
    """The name ``load_embedding(features)`` would give, without loading a model:
    ``export:<digest>`` for a ``torch.export`` file, ``torchscript:<digest>`` for a
    TorchScript one (as runs have always recorded it)."""
    if features is None:
        return RANDOM_EMBEDDING
    path = _extractor_path(features)
    return f"{'export' if _is_export(path) else 'torchscript'}:{file_digest(path)}"


def load_embedding(features: str | None, device: str | torch.device | None = None) -> Embedding:
    """The random-CNN embedding, or a local ``torch.export`` (``.pt2``) feature extractor:
    it gets images (N, 3, H, W) in [-1, 1] and returns (N, D) features or (N, C, H, W)
    maps (averaged over space). Nothing is downloaded.

    The random CNN runs on ``device``. A user's extractor runs on the CPU, where it was
    loaded, whatever ``device`` says: an exported program may hold tensors made for one
    device, and a metric must not fail half-way through a run.

    TorchScript (``.pt``) files are still read, with a ``FutureWarning`` (the
    deprecation category Python shows to users): torch has deprecated TorchScript."""
    if features is None:
        return random_embedding(device)
    path = _extractor_path(features)
    kind = "torch.export" if _is_export(path) else "TorchScript"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch's own note on torch.jit
            if _is_export(path):
                module = torch.export.load(path).module()
            else:
                module = torch.jit.load(path, map_location="cpu")
                module.eval()
    except Exception as exc:  # a corrupt or foreign file: say so plainly
        raise MetricError(f"{features} is not a loadable {kind} model: {exc}") from None
    if not _is_export(path):
        warnings.warn(
            f"{features}: TorchScript feature extractors are deprecated in torch; save the model "
            f"with torch.export instead: {SAVE_PT2} ({EXAMPLE_NOTE}), then pass the .pt2 file to --features",
            FutureWarning, stacklevel=2,
        )
    name = embedding_name(path)

    def run(x: Tensor) -> Tensor:
        try:
            return module(x)
        except Exception as exc:  # the user's model refused the images: say which and why
            hint = f"; export it with a dynamic batch size: {SAVE_PT2}" if _is_export(path) else ""
            raise MetricError(f"the feature extractor {features} failed on images shaped "
                              f"{tuple(x.shape)}: {exc}{hint}") from None

    return Embedding(name, run)


# Smallest feature std a dimension is divided by when standardising (a feature that is
# constant on the real set must not turn into infinities).
_FEATURE_STD_FLOOR = 1e-6


@dataclass
class EmbeddedReal:
    """Real-side work shared by ``rkid`` and ``coverage``: the embedding, the real set's
    per-dimension mean and std (to standardise every set) and its standardised features."""

    embedding: Embedding = field(repr=False)
    mean: Tensor = field(repr=False)
    std: Tensor = field(repr=False)
    real: Tensor = field(repr=False)        # (n, D) standardised
    image_size: tuple[int, int]

    def features(self, images: Tensor) -> Tensor:
        check_images(images, "fake images", min_count=2)
        check_size(images, self.image_size)
        return (self.embedding(images) - self.mean) / self.std


def embed_real(real: Tensor, features: str | None, embedding: Embedding | None = None,
               device: str | torch.device | None = None) -> EmbeddedReal:
    """The real set's embedding (``device``: where the random CNN runs, see
    :func:`load_embedding`); its features, and every fake set's, are kept on the CPU."""
    check_images(real, "real images", min_count=4)
    emb = embedding or load_embedding(features, device)
    f = emb(real)
    mean = f.mean(dim=0)
    std = f.std(dim=0).clamp_min(_FEATURE_STD_FLOOR)
    return EmbeddedReal(emb, mean, std, (f - mean) / std, (int(real.shape[-2]), int(real.shape[-1])))

