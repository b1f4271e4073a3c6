"""Brief training of an AR individual: palette, token scans, windows, divergence.

``train_ar`` fits the palette (or keeps a parent's of the same size), quantises the images,
scans them in the genes' order and trains on random windows of ``context`` steps with
AdamW (linear warm-up, cosine decay to a tenth, gradients clipped at norm 1). The result
holds everything needed to sample again: the state, the palette, the genes and the size.

Bits per pixel. The loss is the negative log-likelihood of palette tokens in bits: one
token per pixel, K possible values, so a model that knows nothing scores log2 K and a
perfect one 0. It is *not* comparable with the 8-bit bits/dim of PixelCNN papers, which
count three 256-valued channels per pixel and are divided by 3: the palette has already
thrown away the colour detail that those models pay for.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..ar_genes import ARGenes, validate_ar
from .model import ARModel
from .palette import PaletteError, check_palette, fit_palette, quantise
from .pyramid import PyramidModel, depends_on_image, make_model, pyramid_canvas, pyramid_orders
from .scans import batch_orders

WARMUP = 0.1               # share of the steps spent warming the learning rate up (at most 50 steps)
EXPLODED = 2.0             # diverged: training loss above this many times log2 K after the warm-up
EVAL_IMAGES = 64           # images the final bits per pixel are measured on



def checkpoint_parts(checkpoint: dict[str, torch.Tensor]) -> tuple[dict, np.ndarray, int]:
    """The model's tensors, the palette and the training size of an AR checkpoint
    (``ARTrainResult.checkpoint``); PaletteError if it is not one."""
    try:
        state = {k[len("model."):]: v for k, v in checkpoint.items() if k.startswith("model.")}
        return state, check_palette(checkpoint["palette"].numpy()), int(checkpoint["resolution"])
    except (KeyError, AttributeError, TypeError) as exc:
        raise PaletteError(f"not an AR checkpoint: {exc}") from None

@dataclass
class ARTrainResult:
    """A trained AR individual: what ``sample_ar`` needs, and how training went."""

    genes: ARGenes
    resolution: int
    state: dict[str, torch.Tensor]       # the model's state_dict, on the CPU
    palette: np.ndarray                  # (K, 3) uint8
    curve: list[float] = field(default_factory=list)   # training loss per step, bits per pixel
    bits_per_pixel: float = float("nan")  # over palette tokens (not 8-bit bits/dim)
    status: str = "ok"                   # "ok" or "diverged"
    reason: str = ""
    steps: int = 0
    seconds: float = 0.0
    inherited: list[int] = field(default_factory=lambda: [0, 0])  # tensors taken from init, of all

    def model(self, device: str | torch.device = "cpu") -> ARModel:
        m = make_model(self.genes, self.resolution)
        m.load_state_dict(self.state)
        return m.to(device).eval()

    def checkpoint(self) -> dict[str, torch.Tensor]:
        """Everything needed to sample again, as tensors only (``torch.save`` it and load it
        with ``torch.load(..., weights_only=True)``): the model's state under ``model.``,
        the palette and the training size. The genes travel in the genome's JSON."""
        out = {f"model.{k}": v for k, v in self.state.items()}
        out["palette"] = torch.from_numpy(np.ascontiguousarray(self.palette))
        out["resolution"] = torch.tensor(self.resolution)
        return out

    @classmethod
    def from_checkpoint(cls, genes: ARGenes, checkpoint: dict[str, torch.Tensor]) -> "ARTrainResult":
        """A result to sample from (or to inherit from) rebuilt from ``checkpoint()``."""
        state, palette, resolution = checkpoint_parts(checkpoint)
        if len(palette) != genes.palette:
            raise PaletteError(f"the checkpoint's palette has {len(palette)} colours; the genes say {genes.palette}")
        result = cls(genes=genes, resolution=resolution, state=state, palette=palette)
        result.model()  # raises if the state does not fit the genes
        return result


def _check_images(images_u8: np.ndarray) -> int:
    images_u8 = np.asarray(images_u8)
    if images_u8.dtype != np.uint8 or images_u8.ndim != 4 or images_u8.shape[-1] != 3 \
            or images_u8.shape[1] != images_u8.shape[2] or len(images_u8) == 0:
        raise PaletteError(f"expected square uint8 images shaped (N, R, R, 3), got "
                           f"{images_u8.dtype} {images_u8.shape}")
    return int(images_u8.shape[1])


def scan_tokens(images_u8: np.ndarray, palette: np.ndarray, genes: ARGenes) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens in scan order (N, T) and the orders (N, T) of uint8 images: T is one step per
    pixel, or for a pyramid one per cell of every scale (the orders then number the
    pyramid's global positions, ``pyramid.layout``)."""
    size = _check_images(images_u8)
    if genes.scan == "pyramid":
        flat = pyramid_canvas(images_u8, palette)
        orders = pyramid_orders(genes, size, flat, palette)
        return torch.from_numpy(np.take_along_axis(flat, orders, axis=1)), torch.from_numpy(orders)
    grid = quantise(images_u8, palette)
    orders = batch_orders(genes.scan, size, grid)
    flat = grid.reshape(len(grid), -1)
    return torch.from_numpy(np.take_along_axis(flat, orders, axis=1)), torch.from_numpy(orders)


class ImageOrders:
    """The training scans of an order that depends on the image (the geodesic pyramid's),
    computed for each image the first time a batch draws it rather than for every
    image up front (about 9 ms an image at 32 px: 14 s for 1,536 images, most of a
    120-step individual's training), and kept for the process's next training of the
    same images, palette and genes (a continuation). ``batch(picks)`` gives what
    ``scan_tokens`` gives for those images, bit for bit."""

    _kept: dict[tuple, "ImageOrders"] = {}
    KEEP = 2  # scans of this many (images, palette, genes) kept per process (17 MB each at 32 px)

    def __init__(self, genes: ARGenes, images_u8: np.ndarray, palette: np.ndarray):
        self.genes, self.palette = genes, palette
        self.size = _check_images(images_u8)
        self.flat = pyramid_canvas(images_u8, palette)
        self.orders = np.zeros(self.flat.shape, np.int64)
        self.ready = np.zeros(len(self.flat), bool)

    @classmethod
    def of(cls, genes: ARGenes, images_u8: np.ndarray, palette: np.ndarray) -> "ImageOrders":
        import hashlib

        key = (genes.within, genes.geo_lambda, genes.geo_seeds, images_u8.shape,
               hashlib.blake2b(np.ascontiguousarray(images_u8).tobytes(), digest_size=16).hexdigest(),
               np.ascontiguousarray(palette).tobytes())
        found = cls._kept.pop(key, None)
        if found is None:
            found = cls(genes, images_u8, palette)
        cls._kept[key] = found  # the most recent last
        while len(cls._kept) > cls.KEEP:
            cls._kept.pop(next(iter(cls._kept)))
        return found

    def batch(self, picks: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        todo = np.unique(picks[~self.ready[picks]])
        if len(todo):
            self.orders[todo] = pyramid_orders(self.genes, self.size, self.flat[todo], self.palette)
            self.ready[todo] = True
        orders = self.orders[picks]
        return torch.from_numpy(np.take_along_axis(self.flat[picks], orders, axis=1)), torch.from_numpy(orders)


@torch.no_grad()
def nll_bits(model: ARModel, tokens: torch.Tensor, orders: torch.Tensor, batch: int = 16) -> float:
    """Mean negative log-likelihood in bits per pixel of whole scans, each token seen with
    the context that sampling gives it (its block and the block before). A flat scan has
    one token per pixel; a pyramid's coarser scales are counted too (all its tokens'
    bits over the finest scale's pixels), so its figure bounds the bits of the image's
    tokens from above."""
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for s in range(0, len(tokens), batch):
        tok = tokens[s:s + batch].to(device)
        ords = orders[s:s + batch].to(device)
        logits = model(tok, ords)
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), tok.reshape(-1),
                                       reduction="sum"))
        count += tok.shape[0] * model.resolution ** 2
    return total / count / math.log(2)


def inherit_state(model: ARModel, state: dict[str, torch.Tensor] | None) -> list[int]:
    """Copy every tensor of ``state`` whose name and shape match the model's (Lamarckian
    inheritance: a child of another width keeps nothing of that width, one of more layers
    keeps the layers it shares). Returns [tensors inherited, tensors in the model]."""
    own = model.state_dict()
    if not state:
        return [0, len(own)]
    taken = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    own.update({k: v.to(own[k].dtype) for k, v in taken.items()})
    model.load_state_dict(own)
    return [len(taken), len(own)]


def _lr_at(step: int, steps: int, lr: float) -> float:
    warm = max(1, min(50, int(WARMUP * steps)))
    if step < warm:
        return lr * (step + 1) / warm
    progress = (step - warm) / max(1, steps - warm)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train_ar(genes: ARGenes, images_u8: np.ndarray, *, steps: int, seed: int, device: str = "cpu",
             progress: Callable[[int, int, float], None] | None = None,
             init: ARTrainResult | dict | None = None, eval_images: np.ndarray | None = None,
             budget_seconds: float | None = None, evaluate: bool = True) -> ARTrainResult:
    """Train an AR model on ``images_u8`` (N, R, R, 3) for ``steps`` steps.

    ``init``: a parent (an ``ARTrainResult`` or a dict with ``state`` and ``palette``): its
    palette is kept when it has K colours (so token embeddings keep their meaning), and
    its tensors are copied where names and shapes match. ``progress(step, steps, bits)``
    is called after every step. The final bits per pixel are measured on ``eval_images``
    (default: the first 64 training images), unless ``evaluate`` is off (a caller that
    measures on images of its own: the figure is then NaN). A NaN or exploding loss stops training with
    status "diverged"; the result then holds the state as it was. ``budget_seconds``
    stops training early (status "ok", fewer steps) once that much time has passed, as a
    run's ``budget_seconds`` stops a GAN.
    """
    validate_ar(genes)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    size = _check_images(images_u8)
    started = time.perf_counter()
    parent_state, parent_palette = None, None
    if isinstance(init, ARTrainResult):
        parent_state, parent_palette = init.state, init.palette
    elif isinstance(init, dict):
        parent_state, parent_palette = init.get("state"), init.get("palette")
    if parent_palette is not None and len(check_palette(np.asarray(parent_palette))) == genes.palette:
        palette = np.asarray(parent_palette).copy()
    else:
        palette = fit_palette(images_u8, genes.palette, seed=seed)
    lazy = ImageOrders.of(genes, images_u8, palette) if depends_on_image(genes) else None
    if lazy is None:
        tokens, orders = scan_tokens(images_u8, palette, genes)
        tokens_d, orders_d = tokens.to(device), orders.to(device)
        count, steps_total = tokens.shape
    else:
        count, steps_total = lazy.flat.shape

    torch.manual_seed(seed)
    model = make_model(genes, size)
    inherited = inherit_state(model, parent_state)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=genes.lr, betas=(0.9, 0.95), weight_decay=0.01)
    rng = np.random.default_rng(seed)
    window = model.window
    pyramid = isinstance(model, PyramidModel)
    curve: list[float] = []
    status, reason = "ok", ""
    limit = EXPLODED * math.log2(genes.palette)
    warm = max(1, min(50, int(WARMUP * steps)))
    done = 0
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, steps, genes.lr)
        picks = rng.integers(0, count, genes.batch_size)
        if lazy is None:
            pick = torch.from_numpy(picks).to(device)
            tok, ords = tokens_d[pick], orders_d[pick]
        else:
            tok, ords = (t.to(device) for t in lazy.batch(picks))
        if pyramid:  # a window (or a parallel pyramid's block) that the coarse scales get their share of
            a, e = model.training_span(rng)
            logits = model.forward_block(tok, ords, a, e) if model.parallel else model.forward_window(tok, ords, a, e)
        else:
            a = int(rng.integers(0, steps_total - window + 1))
            e = a + window
            logits = model.forward_window(tok, ords, a, e)
        loss = F.cross_entropy(logits.reshape(-1, genes.palette), tok[:, a:e].reshape(-1))
        bits = float(loss.detach()) / math.log(2)
        if not math.isfinite(bits):
            status, reason = "diverged", f"loss became {'NaN' if bits != bits else 'infinite'} at step {step}"
            break
        if step >= warm and bits > limit:
            status, reason = "diverged", f"loss exploded at step {step} ({bits:.3g} bits, log2 K = " \
                                         f"{math.log2(genes.palette):.3g})"
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        curve.append(bits)
        done = step + 1
        if progress is not None:
            progress(done, steps, bits)
        if budget_seconds is not None and time.perf_counter() - started > budget_seconds:
            break

    if status == "ok" and evaluate:
        if eval_images is not None:
            ev_tok, ev_ord = scan_tokens(eval_images, palette, genes)
        elif lazy is None:
            ev_tok, ev_ord = tokens[:EVAL_IMAGES], orders[:EVAL_IMAGES]
        else:
            ev_tok, ev_ord = lazy.batch(np.arange(min(EVAL_IMAGES, count)))
        bpp = nll_bits(model, ev_tok, ev_ord)
    else:
        bpp = float("nan")
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return ARTrainResult(genes=genes, resolution=size, state=state, palette=palette, curve=curve,
                         bits_per_pixel=bpp, status=status, reason=reason, steps=done,
                         seconds=time.perf_counter() - started, inherited=inherited)
