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

import torch
from torch import nn

from .autoregressive import ARModel, ARTrainResult, nll_bits, train_ar
from .autoregressive.palette import dequantise
from .autoregressive.sampling import sample_tokens, sampling_noise, tokens_to_grid
from .autoregressive.training import scan_tokens
from .genome import Genome
from .imaging import to_float_tensor, to_uint8
from .train import Trained, TrainStats

#: Held-out images the bits per pixel of a run's AR individuals are measured on (the first
#: of the run's held-out set: the same images for every individual).
BPP_IMAGES = 32
#: Training images the bits per pixel in a training's stats are measured on (cheap).
TRAIN_BPP_IMAGES = 16


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

    def result(self) -> ARTrainResult:
        return ARTrainResult.from_checkpoint(self.genes, {k: v.cpu() for k, v in self.state_dict().items()})


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
    AR models train in fp32 whatever the run's precision (their losses are small sums of
    log-probabilities; bf16 is not measured for them)."""
    images = to_uint8(data)
    parent = _parent(init)
    start = None
    if parent is not None:
        ckpt = parent["ar"]
        start = {"state": {k[len("model."):]: v for k, v in ckpt.items() if k.startswith("model.")},
                 "palette": ckpt["palette"].numpy()}
    report = (lambda step, total, bits: progress(step, total)) if progress is not None else None
    result = train_ar(genome.ar, images, steps=steps, seed=seed, device=device, progress=report, init=start,
                      eval_images=images[:TRAIN_BPP_IMAGES], budget_seconds=budget_seconds)
    stats = TrainStats(status=result.status, reason=result.reason, steps=result.steps, seconds=round(result.seconds, 3),
                       steps_per_second=round(result.steps / result.seconds, 3) if result.seconds > 0 else 0.0,
                       precision="fp32", curves={"bits_per_pixel": list(result.curve)},
                       inherited={"ar": list(result.inherited)})
    lineage = int((parent or {}).get("meta", {}).get("lineage_steps", 0))
    stats.lineage_steps = lineage + result.steps
    generator = ARGenerator(result).to(device)
    state = {"ar": result.checkpoint(), "d": None, "meta": {"lineage_steps": stats.lineage_steps,
                                                            "train_bits_per_pixel": result.bits_per_pixel}}
    return Trained(generator=generator, discriminator=None, state=state, stats=stats, extra={"result": result})


@torch.no_grad()
def _draw(result: ARTrainResult, count: int, resolution: int, noise_seed: int, device) -> torch.Tensor:
    if resolution != result.resolution:
        raise ValueError(f"this AR model was trained at {result.resolution} px; the run samples at {resolution} px")
    model = result.model(device)
    tokens, orders = sample_tokens(model, sampling_noise(noise_seed, count, resolution))
    return to_float_tensor(dequantise(tokens_to_grid(tokens, orders, resolution), result.palette))


def sample_ar_state(genome: Genome, generator_state: dict, latents: torch.Tensor, *, resolution: int,
                    noise_seed: int) -> torch.Tensor:
    """Images (N,3,R,R) in [-1, 1] from a saved AR state and the run's fixed sampling noise
    (one image per fixed latent: the latents give the count, the noise seed the draws)."""
    return _draw(result_from_state(genome, generator_state), int(latents.shape[0]), resolution, noise_seed, "cpu")


def sample_ar_trained(trained: Trained, latents: torch.Tensor, *, noise_seed: int) -> torch.Tensor:
    result = trained.extra.get("result") or trained.generator.result()
    device = trained.generator.palette.device
    return _draw(result, int(latents.shape[0]), result.resolution, noise_seed, device)


def ar_metrics(genome: Genome, trained: Trained, images: torch.Tensor, *, seed: int) -> dict[str, float]:
    """Bits per pixel over palette tokens of held-out ``images`` (the first BPP_IMAGES), and
    log2 K for scale. Not comparable with 8-bit bits/dim (docs/FAMILIES.md)."""
    result = trained.extra.get("result") or trained.generator.result()
    model: ARModel = trained.generator.model
    tokens, orders = scan_tokens(to_uint8(images[:BPP_IMAGES]), result.palette, genome.ar.scan)
    bpp = nll_bits(model, tokens, orders)
    return {"bits_per_pixel": bpp if math.isfinite(bpp) else float("nan"), "uniform_bits": math.log2(genome.ar.palette)}
