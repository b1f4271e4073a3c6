"""Sampling an AR model from fixed sampling noise.

The protocol's fixed latents become fixed sampling noise: one uniform number per image and
scan step, ``noise[n, t]``, and the token drawn at step t of image n is the first palette
index whose cumulative probability exceeds it (inverse-CDF sampling). Every AR individual
of a run draws from the same noise, so its samples are reproducible, and two individuals'
samples differ only where their models do. ``sampling_noise(seed, count, resolution)``
makes that noise.

The KV cache keeps the keys and values of the items in the current window; every half
window (h = context / 2 steps) the cache is reset and the previous block re-encoded in one
pass, so each token sees exactly the context it was trained with (``model``).
"""

from __future__ import annotations

import numpy as np
import torch

from .model import ARModel
from .palette import dequantise
from .pyramid import PyramidModel, depends_on_image, finest, pyramid_orders, scale_orders
from .scans import batch_orders, get_scan


def sampling_noise(seed: int, count: int, resolution: int, steps: int | None = None) -> np.ndarray:
    """Uniform numbers in [0, 1), float64 (count, steps): one per image and scan step
    (``steps`` defaults to resolution^2, one per pixel; a pyramid has more, ``model.steps``).
    The same seed gives the same noise, and the first k images' noise does not depend on
    ``count``."""
    if count < 1 or resolution < 1:
        raise ValueError(f"sampling noise needs a positive count and resolution, got {count}, {resolution}")
    steps = resolution * resolution if steps is None else int(steps)
    rng = np.random.default_rng(seed)
    return np.stack([rng.random(steps) for _ in range(count)])


def noise_for(model: ARModel, seed: int, count: int) -> np.ndarray:
    """The sampling noise of ``count`` images of this model's scan."""
    return sampling_noise(seed, count, model.resolution, model.steps)


def draw(logits: torch.Tensor, u: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Inverse-CDF draw: the token whose cumulative probability first exceeds u (B,)."""
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    cdf = probs.cumsum(-1)
    return (cdf < u[:, None].to(cdf)).sum(-1).clamp(max=logits.shape[-1] - 1)


def _model_of(source) -> tuple[ARModel, np.ndarray | None]:
    if isinstance(source, ARModel):
        return source, None
    if hasattr(source, "model") and hasattr(source, "palette"):
        return source.model(), source.palette
    raise TypeError(f"expected an ARModel or a trained result, got {type(source).__name__}")


def _orders_for(model: ARModel, count: int, orders) -> torch.Tensor:
    size = model.resolution
    if orders is None and isinstance(model, PyramidModel):
        # a geodesic pyramid's later scales are filled in as they are reached
        orders = pyramid_orders(model.genes, size, count=count) if not depends_on_image(model.genes) \
            else np.zeros((count, model.steps), np.int64)
    if orders is None:
        orders = model.genes.scan
    if isinstance(orders, str):
        if get_scan(orders).depends_on_image:
            raise ValueError(f"the {orders} scan depends on the image being generated: its sampler "
                             "recomputes the order as it goes (pass the orders explicitly here)")
        orders = batch_orders(orders, size, count=count)
    orders = torch.as_tensor(np.asarray(orders), dtype=torch.long)
    if orders.shape != (count, model.steps):
        raise ValueError(f"orders must be shaped ({count}, {model.steps}), got {tuple(orders.shape)}")
    return orders


@torch.no_grad()
def sample_tokens(model: ARModel, noise: np.ndarray, *, temperature: float | None = None, orders=None,
                  cached: bool = True, palette: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens in scan order (N, T) and the orders (N, T) drawn with ``noise`` (N, T).
    ``cached=False`` recomputes every token's window from scratch (slow; the reference
    the KV cache is tested against). A geodesic pyramid computes each scale's order from
    the scale above once that is drawn, which needs the ``palette``."""
    model.eval()
    device = next(model.parameters()).device
    noise = torch.as_tensor(np.asarray(noise), dtype=torch.float64)
    count, steps = noise.shape
    if steps != model.steps:
        raise ValueError(f"noise has {steps} steps per image; a {model.resolution} px {model.genes.scan} "
                         f"model needs {model.steps}")
    temp = model.genes.temperature if temperature is None else float(temperature)
    if not temp > 0:
        raise ValueError(f"temperature must be above 0, got {temperature!r}")
    ords = _orders_for(model, count, orders).to(device)
    tokens = torch.zeros(count, steps, dtype=torch.long, device=device)
    noise = noise.to(device)
    before = _geodesic_orders(model, ords, palette, orders is None)
    if isinstance(model, PyramidModel) and model.parallel:
        draw_blocks(model, tokens, ords, noise, temp)
    elif cached:
        scan_with_cache(model, tokens, ords, noise, temp, before_step=before)
    else:
        canvas = model.new_canvas(count, device)
        for t in range(steps):
            if before is not None:
                before(t, canvas)
            logits = model.forward_window(tokens, ords, model.window_start(t), t + 1)[:, -1]
            tokens[:, t] = draw(logits, noise[:, t], temp)
            if canvas is not None:
                canvas.scatter_(1, ords[:, t:t + 1], tokens[:, t:t + 1])
    return tokens.cpu(), ords.cpu()


def draw_blocks(model: PyramidModel, tokens: torch.Tensor, orders: torch.Tensor, noise: torch.Tensor,
                temperature: float, start: int = 0) -> None:
    """Fill ``tokens`` (B, T) of a parallel pyramid block by block, one pass each, drawing
    with ``noise``; blocks before step ``start`` are known and kept."""
    for a, e in model.blocks_of_scan:
        if a < start:
            continue
        logits = model.forward_block(tokens, orders, a, e)
        tokens[:, a:e] = draw(logits.reshape(-1, logits.shape[-1]), noise[:, a:e].reshape(-1),
                              temperature).reshape(tokens.shape[0], e - a)


def _geodesic_orders(model: ARModel, orders: torch.Tensor, palette: np.ndarray | None, fill: bool):
    """For a geodesic pyramid whose orders are to be filled in (``fill``): the hook that
    writes scale s's order into ``orders`` when its first step comes, from the canvas."""
    if not (fill and isinstance(model, PyramidModel) and depends_on_image(model.genes)):
        return None
    if palette is None:
        raise ValueError("sampling a geodesic pyramid needs its palette (each scale's order is read "
                         "from the colours of the scale above)")
    lay, genes = model.layout, model.genes
    starts = {lay.offsets[s]: s for s in range(len(lay.sizes))}

    def before(t: int, canvas: torch.Tensor | None) -> None:
        s = starts.get(t)
        if s is None:
            return
        a, e = lay.span(s)
        here = canvas.cpu().numpy()
        orders[:, a:e] = torch.from_numpy(scale_orders(genes, lay, s, here, palette))
    return before


def scan_with_cache(model: ARModel, tokens: torch.Tensor, orders: torch.Tensor, noise: torch.Tensor,
                    temperature: float, known: torch.Tensor | None = None, before_step=None) -> None:
    """Fill ``tokens`` (B, T) in scan order, drawing each step's token with ``noise``.
    ``known`` (T,) bool: steps whose tokens are already in ``tokens`` (the same steps for
    the whole batch): they are read, not drawn, and a run of them costs one pass.
    ``before_step(t, canvas)`` is called before each step (a geodesic pyramid writes a
    scale's orders when it begins); a pyramid's canvas holds the tokens drawn so far."""
    steps = tokens.shape[1]
    known_list = [False] * steps if known is None else [bool(k) for k in known]
    cache = model.new_cache(tokens.shape[0], tokens.device)
    canvas = model.new_canvas(tokens.shape[0], tokens.device)
    length, t = 0, 0
    while t < steps:
        if before_step is not None:
            before_step(t, canvas)
        if t >= model.window and t % model.half == 0:
            model.prefill(cache, tokens, orders, t - model.half, t)
            length = model.half
        if known_list[t]:
            boundary = max(model.window, (t // model.half + 1) * model.half)
            end = t + 1
            while end < min(steps, boundary) and known_list[end]:
                end += 1
            model.extend_cache(cache, length, tokens, orders, t, end)
            if canvas is not None:
                canvas.scatter_(1, orders[:, t:end], tokens[:, t:end])
            length += end - t
            t = end
            continue
        if t == 0:
            logits = model.step(cache, length, None, None, orders[:, 0], canvas)
        else:
            logits = model.step(cache, length, tokens[:, t - 1], orders[:, t - 1], orders[:, t], canvas)
        length += 1
        tokens[:, t] = draw(logits, noise[:, t], temperature)
        if canvas is not None:
            canvas.scatter_(1, orders[:, t:t + 1], tokens[:, t:t + 1])
        t += 1


def tokens_to_grid(tokens: torch.Tensor, orders: torch.Tensor, size: int) -> np.ndarray:
    """Tokens in scan order (N, T) -> token maps (N, size, size); of a pyramid's scan
    (T its global positions), the finest scale's."""
    grid = torch.empty_like(tokens)
    grid.scatter_(1, orders, tokens)
    if tokens.shape[1] != size * size:
        return finest(grid, size)
    return grid.reshape(-1, size, size).numpy()


def sample_ar(source, noise: np.ndarray, *, temperature: float | None = None, palette: np.ndarray | None = None,
              orders=None) -> np.ndarray:
    """uint8 images (N, R, R, 3) drawn with ``noise`` (N, R^2) from a trained result
    (``ARTrainResult``) or from a model and its ``palette``."""
    model, own_palette = _model_of(source)
    palette = own_palette if palette is None else palette
    if palette is None:
        raise ValueError("sampling a bare model needs its palette")
    tokens, ords = sample_tokens(model, noise, temperature=temperature, orders=orders, palette=palette)
    return dequantise(tokens_to_grid(tokens, ords, model.resolution), palette)
