"""The autoregressive (AR) family as evolution sees it: ``families`` registers these.

``evoart.autoregressive`` trains and samples one AR model from uint8 images; this module
fits it to the shapes every family shares (``train.Trained``, images in [-1, 1], the run's
fixed protocol):

* training reads the run's training images (the palette is fitted to them, or kept from
  a parent with as many colours) and continues a parent's model where tensor names and
  shapes match (Lamarckian, as GANs do): a continuation under the halving schedule is the
  same genome and keeps every tensor, so it trains on from its parent's weights;
* samples are drawn from the run's fixed sampling noise, one uniform number per image and
  scan step, made from the run's noise seed (``EvalContext.noise_seed``): every AR
  individual of a run draws from the same noise, as every GAN draws from the same latents;
* the state a run saves is tensors only (``ARTrainResult.checkpoint``), so the ledger
  loads it with ``torch.load(..., weights_only=True)``;
* bits per pixel (over palette tokens, on the held-out images) is the family's own
  metric: recorded, never selected on; an AR model has no discriminator, so it is judged
  and never judges.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .autoregressive import ARModel, ARTrainResult, nll_bits, train_ar
from .autoregressive.sampling import noise_for, sample_ar
from .autoregressive.training import checkpoint_parts, scan_tokens
from .ar_genes import scan_steps
from .genome import Genome
from .imaging import to_float_tensor, to_uint8
from .train import Trained, TrainStats

#: Held-out images the bits per pixel of a run's AR individuals are measured on (the first
#: of the run's held-out set: the same images for every individual).
BPP_IMAGES = 32


class ARGenerator(nn.Module):
    """What an AR individual renders from: the model with its palette and training size
    as buffers, so that its ``state_dict`` is ``ARTrainResult.checkpoint()`` (the
    ``generator.pt`` of a run), tensors only."""

    def __init__(self, result: ARTrainResult):
        super().__init__()
        self.genes = result.genes
        self.model = result.model()
        self.register_buffer("palette", torch.from_numpy(result.palette.copy()))
        self.register_buffer("resolution", torch.tensor(result.resolution))


def result_from_state(genome: Genome, state: dict) -> ARTrainResult:
    """An AR individual rebuilt from its saved generator state (``generator.pt``)."""
    return ARTrainResult.from_checkpoint(genome.ar, state)


def _parent(init) -> dict | None:
    """The parent state an AR child continues: the stem parent's AR checkpoint."""
    if init is None:
        return None
    slot = init.inheritance.stem if init.inheritance.stem is not None else 0
    parent = init.parents[slot] if slot < len(init.parents) else None
    if not parent or not parent.get("ar"):
        return None
    return parent


def train_ar_family(genome: Genome, data: torch.Tensor, *, steps: int, device: str = "cpu", seed: int = 0,
                    init=None, progress=None, budget_seconds: float | None = None,
                    precision: str = "fp32") -> Trained:
    """``train.train_briefly``'s signature for an AR genome: ``data`` (N,3,R,R) in [-1, 1].
    AR models train in fp32 whatever the run's precision: bf16 autocast measured 1.03x
    fp32's speed with AMX tiles and 0.85x without (docs/PERFORMANCE.md)."""
    images = to_uint8(data)
    parent = _parent(init)
    start = None
    if parent is not None:
        state, palette, _ = checkpoint_parts(parent["ar"])
        start = {"state": state, "palette": palette}
    report = (lambda step, total, bits: progress(step, total)) if progress is not None else None
    # bits per pixel are measured afterwards, on held-out images (ar_metrics), not here
    result = train_ar(genome.ar, images, steps=steps, seed=seed, device=device, progress=report, init=start,
                      budget_seconds=budget_seconds, evaluate=False)
    stats = TrainStats(status=result.status, reason=result.reason, steps=result.steps, seconds=round(result.seconds, 3),
                       steps_per_second=round(result.steps / result.seconds, 3) if result.seconds > 0 else 0.0,
                       precision="fp32", curves={"bits_per_pixel": list(result.curve)},
                       inherited={"ar": list(result.inherited)})
    lineage = int((parent or {}).get("meta", {}).get("lineage_steps", 0))
    stats.lineage_steps = lineage + result.steps
    generator = ARGenerator(result).to(device)
    state = {"ar": result.checkpoint(), "d": None, "meta": {"lineage_steps": stats.lineage_steps}}
    return Trained(generator=generator, discriminator=None, state=state, stats=stats)


@torch.no_grad()
def _draw(model: ARModel, palette: np.ndarray, count: int, resolution: int, noise_seed: int) -> torch.Tensor:
    if resolution != model.resolution:
        raise ValueError(f"this AR model was trained at {model.resolution} px; the run samples at {resolution} px")
    return to_float_tensor(sample_ar(model, noise_for(model, noise_seed, count), palette=palette))


def _palette(trained: Trained) -> np.ndarray:
    return trained.generator.palette.cpu().numpy()


def sample_ar_state(genome: Genome, generator_state: dict, latents: torch.Tensor, *, resolution: int,
                    noise_seed: int) -> torch.Tensor:
    """Images (N,3,R,R) in [-1, 1] from a saved AR state and the run's fixed sampling noise
    (one image per fixed latent: the latents give the count, the noise seed the draws)."""
    result = result_from_state(genome, generator_state)
    return _draw(result.model("cpu"), result.palette, int(latents.shape[0]), resolution, noise_seed)


def sample_ar_trained(trained: Trained, latents: torch.Tensor, *, noise_seed: int) -> torch.Tensor:
    """The same from a just-trained individual's model, on its device."""
    model = trained.generator.model
    return _draw(model, _palette(trained), int(latents.shape[0]), model.resolution, noise_seed)


def ar_metrics(genome: Genome, trained: Trained, images: torch.Tensor, *, seed: int) -> dict[str, float]:
    """Bits per pixel over palette tokens of held-out ``images`` (the first BPP_IMAGES), and
    what a model that knows nothing scores for scale (log2 K, times a pyramid's tokens per
    pixel). Not comparable with 8-bit bits/dim (docs/FAMILIES.md)."""
    model: ARModel = trained.generator.model
    tokens, orders = scan_tokens(to_uint8(images[:BPP_IMAGES]), _palette(trained), genome.ar)
    bpp = nll_bits(model, tokens, orders)
    # a model that knows nothing: log2 K per token, and a pyramid has more tokens than pixels
    uniform = math.log2(genome.ar.palette) * scan_steps(genome.ar, model.resolution) / model.resolution ** 2
    return {"bits_per_pixel": bpp if math.isfinite(bpp) else float("nan"), "uniform_bits": uniform}
