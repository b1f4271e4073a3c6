"""Rendering AR models: sizes beyond the training size, walks, and the exported step network.

Larger sizes. A model knows the R x R grid it was trained on (learned row and column
embeddings), so a larger canvas is made of R x R windows overlapping by half, visited in
an order in which each window's already-made pixels form the part of its own scan that
comes first. Which orders can do that:

* ``raster`` **continues its scan.** In a window, the pixels above (the top half) and to
  the left (the left half of the lower rows) are known from earlier windows; in raster
  order they come before the unknown bottom-right quarter of every row they share, so
  the model reads them as the context it was trained with and generates only the new
  quarter. Pixel for pixel it is a raster scan of the whole canvas whose context is the
  window around the pixel. The canvas size must be a multiple of R / 2.
* ``hilbert`` **only upscales.** The known part of a window is not a prefix of the Hilbert
  curve (the curve leaves the top half and comes back), so the model would have to draw
  pixels before others that it was trained to see first. ``render_ar`` samples at the
  training size and enlarges the palette image (nearest neighbour: the colours stay the
  palette's) and says so.

Walks. ``walk_noise`` moves the sampling noise through a Gaussian copula: each step's
uniform number is u = Phi(z) with z on a great circle between Gaussian keyframes,
z(s) = cos(pi s / 2) z_a + sin(pi s / 2) z_b, so every frame's noise is exactly uniform
and a loop of keyframes closes seamlessly. A token changes only when its u crosses a bin
of the model's cumulative distribution, but a changed token changes the context of every
later step: with 20 frames per keyframe, about 80% of the pixels change from one frame to
the next (docs/FAMILIES.md). An AR walk is a flickering sequence of samples in one style,
not a smooth morph. That is the definition, and its look.

Export: see ``StepNetwork``.
"""

from __future__ import annotations

import io
import json
import math
import warnings

import numpy as np
import torch
from torch import nn

from ..errors import EvoartError
from .model import ARModel
from .palette import dequantise, quantise
from .pyramid import PyramidModel, downsample, pyramid_orders
from .sampling import (_model_of, draw, draw_blocks, noise_for, sample_ar, sample_tokens, sampling_noise,
                       scan_with_cache, tokens_to_grid)
from .scans import get_scan

STEP_PROGRAM_METADATA = "evoart.json"


class RenderError(EvoartError, ValueError):
    """A render that cannot be made as asked; the message says why."""


def continues_scan(scan: str) -> bool:
    """Whether ``render_ar`` continues this scan beyond the training size (else it upscales,
    or for a pyramid adds finer scales: ``refines_scales``)."""
    return scan != "pyramid" and get_scan(scan).continues


def refines_scales(scan: str) -> bool:
    """Whether ``render_ar`` grows this scan by adding finer scales (a pyramid's)."""
    return scan == "pyramid"


def refined_sizes(resolution: int) -> str:
    return f"{resolution} px times a power of two ({2 * resolution}, {4 * resolution}, ...)"


def can_refine_to(resolution: int, size: int) -> bool:
    """Whether a pyramid trained at ``resolution`` grows to ``size`` by finer scales, each
    twice the last (an even training size, so each tile's parent region is half of it)."""
    k = size // resolution
    return resolution % 2 == 0 and size >= resolution and size % resolution == 0 and k & (k - 1) == 0


#: Pyramids drawn at once when a render adds a finer scale (tiles times samples): the
#: sampler's KV cache and the canvases grow with it.
REFINE_BATCH = 256


@torch.no_grad()
def refine_pyramid(model: PyramidModel, palette: np.ndarray, size: int, *, seed: int, count: int,
                   temperature: float) -> np.ndarray:
    """Token maps (count, size, size) of a pyramid model grown past its training size R by
    adding finer scales, as multi-resolution texture synthesis does. The model draws its
    own pyramid up to R; each finer scale (2R, 4R, ... up to ``size``) is then cut into
    tiles of R x R, and every tile is the finest scale of one more pyramid whose coarser
    scales are known: the scale above it is the tile's parent region (R/2 x R/2 cells of
    the scale just drawn) and the ones above that are that region's area means. The
    model draws the tile given them, exactly as it drew its own finest scale given its
    coarser ones. Each sees its own parent region only, so neighbouring tiles meet where
    their parents meet, with no shared context. A tile's noise comes from the seed, the
    scale, the sample and the tile, so the first k samples do not depend on ``count``."""
    r = model.resolution
    if not can_refine_to(r, size):
        raise RenderError(f"a pyramid AR model trained at {r} px adds finer scales to sizes of {refined_sizes(r)}, "
                          f"not {size}")
    device = next(model.parameters()).device
    tokens, orders = sample_tokens(model, noise_for(model, seed, count), temperature=temperature, palette=palette)
    level = tokens_to_grid(tokens, orders, r)            # (count, r, r)
    depth = 0
    while level.shape[1] < size:
        depth += 1
        level = _finer_scale(model, palette, level, seed, depth, temperature, device)
    return level


def _finer_scale(model: PyramidModel, palette: np.ndarray, level: np.ndarray, seed: int, depth: int,
                 temperature: float, device) -> np.ndarray:
    """The scale twice as fine as ``level`` (count, n, n), drawn in tiles of R x R."""
    r, lay = model.resolution, model.layout
    top = len(lay.sizes) - 1
    half, a_top = r // 2, lay.span(top)[0]
    count, n = level.shape[0], level.shape[1]
    m = 2 * n // r                                        # tiles per side
    colours = dequantise(level, palette)
    jobs = [(i, ty, tx) for i in range(count) for ty in range(m) for tx in range(m)]
    known = torch.zeros(lay.total, dtype=torch.bool)
    known[:a_top] = True                                  # every scale but the finest comes first
    out = np.zeros((count, 2 * n, 2 * n), np.int64)
    for c in range(0, len(jobs), REFINE_BATCH):
        chunk = jobs[c:c + REFINE_BATCH]
        canvases = np.zeros((len(chunk), lay.total), np.int64)
        for k, (i, ty, tx) in enumerate(chunk):
            rows, cols = slice(ty * half, (ty + 1) * half), slice(tx * half, (tx + 1) * half)
            a, e = lay.span(top - 1)
            canvases[k, a:e] = level[i, rows, cols].reshape(-1)
            for s in range(top - 1):
                a, e = lay.span(s)
                canvases[k, a:e] = quantise(downsample(colours[i:i + 1, rows, cols], lay.sizes[s]),
                                            palette).reshape(-1)
        ords = pyramid_orders(model.genes, r, canvases, palette)
        tok = torch.from_numpy(np.take_along_axis(canvases, ords, axis=1)).to(device)
        ords_t = torch.from_numpy(ords).to(device)
        noise = torch.from_numpy(np.stack([np.random.default_rng([seed, depth, i, ty, tx]).random(lay.total)
                                           for i, ty, tx in chunk])).to(device)
        if model.parallel:
            draw_blocks(model, tok, ords_t, noise, temperature, start=a_top)
        else:
            scan_with_cache(model, tok, ords_t, noise, temperature, known=known)
        tiles = tokens_to_grid(tok.cpu(), ords_t.cpu(), r)
        for k, (i, ty, tx) in enumerate(chunk):
            out[i, ty * r:(ty + 1) * r, tx * r:(tx + 1) * r] = tiles[k]
    return out


def _window_offsets(size: int, resolution: int) -> list[int]:
    half = resolution // 2
    return list(range(0, size - resolution + 1, half))


@torch.no_grad()
def continue_raster(model: ARModel, size: int, noise: np.ndarray, temperature: float) -> np.ndarray:
    """Token maps (N, size, size) of a raster scan continued over a larger canvas, in
    windows of the training size R overlapping by half (see the module's docstring).
    Windows that depend on none of each other's pixels are sampled together: window (i, j)
    needs (i - 1, j + 1), so the wavefront 2 i + j runs as one batch. ``noise`` is (N,
    size * size): the number of each canvas pixel, used when that pixel is drawn."""
    r = model.resolution
    half = r // 2
    if size % half or size < r:
        raise RenderError(f"a raster AR model trained at {r} px continues its scan to sizes that are multiples "
                          f"of {half} and at least {r}, not {size}")
    count = noise.shape[0]
    model.eval()
    device = next(model.parameters()).device
    offsets = _window_offsets(size, r)
    m = len(offsets)
    canvas = torch.zeros(count, size, size, dtype=torch.long)
    noise_t = torch.as_tensor(noise, dtype=torch.float64).reshape(count, size, size)
    order = torch.arange(r * r)
    ys, xs = order // r, order % r
    temp = float(temperature)
    for wave in range(3 * (m - 1) + 1):
        windows = [(i, wave - 2 * i) for i in range(m) if 0 <= wave - 2 * i < m]
        groups: dict[tuple[bool, bool], list[tuple[int, int]]] = {}
        for i, j in windows:
            groups.setdefault((i > 0, j > 0), []).append((i, j))
        for (top, left), members in groups.items():
            known = torch.zeros(r, r, dtype=torch.bool)
            if top:
                known[:half] = True
            if left:
                known[:, :half] = True
            known = known.reshape(-1)
            # batch: every window of the group for every image
            tok = torch.cat([canvas[:, offsets[i] + ys, offsets[j] + xs] for i, j in members]).to(device)
            u = torch.cat([noise_t[:, offsets[i] + ys, offsets[j] + xs] for i, j in members]).to(device)
            ords = order.to(device).expand(tok.shape[0], -1)
            scan_with_cache(model, tok, ords, u, temp, known=known)
            tok = tok.cpu()
            for k, (i, j) in enumerate(members):
                canvas[:, offsets[i] + ys, offsets[j] + xs] = tok[k * count:(k + 1) * count]
    return canvas.numpy()


def _with_palette(source, palette: np.ndarray | None, what: str) -> tuple[ARModel, np.ndarray]:
    model, own = _model_of(source)
    palette = own if palette is None else palette
    if palette is None:
        raise RenderError(f"{what} a bare model needs its palette")
    return model, palette


def render_ar(source, size: int, *, seed: int = 0, count: int = 1, temperature: float | None = None,
              palette: np.ndarray | None = None, upscale: bool = False) -> tuple[np.ndarray, str]:
    """uint8 images (count, size, size, 3) and how they were made: "sampled" (the training
    size), "continued" (a raster scan carried over a larger canvas), "refined" (a pyramid
    grown by finer scales: ``refine_pyramid``) or "upscaled" (sampled at the training
    size, enlarged by nearest neighbour: ``upscale``, or a scan that cannot continue). The
    noise comes from ``seed``: ``noise_for(model, seed, count)`` at the training size,
    ``sampling_noise(seed, count, size)`` for a continued raster scan."""
    model, palette = _with_palette(source, palette, "rendering")
    r = model.resolution
    temp = model.genes.temperature if temperature is None else float(temperature)
    if not isinstance(size, int) or size < 1:
        raise RenderError(f"render size must be a positive integer, got {size!r}")
    if size == r:
        return sample_ar(model, noise_for(model, seed, count), temperature=temp, palette=palette), "sampled"
    if size > r and refines_scales(model.genes.scan) and not upscale:
        return dequantise(refine_pyramid(model, palette, size, seed=seed, count=count, temperature=temp),
                          palette), "refined"
    if size > r and continues_scan(model.genes.scan) and not upscale:
        return dequantise(continue_raster(model, size, sampling_noise(seed, count, size), temp), palette), "continued"
    if size % r:
        raise RenderError(f"a {model.genes.scan} AR model only upscales (its scan cannot continue beyond "
                          f"{r} px); the size must be a multiple of {r}, not {size}")
    images = sample_ar(model, noise_for(model, seed, count), temperature=temp, palette=palette)
    factor = size // r
    return images.repeat(factor, axis=1).repeat(factor, axis=2), "upscaled"


# ---- walks -----------------------------------------------------------------------------------

def walk_noise(seed: int, count: int, resolution: int, *, frames: int, keyframes: int,
               steps: int | None = None) -> list[np.ndarray]:
    """Sampling noise for a looping walk: ``frames`` arrays (count, steps: resolution^2 unless
    told, a pyramid's ``model.steps``) of uniform
    numbers moved through a Gaussian copula between ``keyframes`` Gaussian keyframes (the
    last leads back to the first). Every frame's noise is exactly uniform."""
    if keyframes < 2:
        raise RenderError("an AR walk needs at least 2 keyframes")
    if frames < keyframes:
        raise RenderError(f"an AR walk needs at least as many frames ({frames}) as keyframes ({keyframes})")
    rng = np.random.default_rng(seed)
    steps = resolution * resolution if steps is None else int(steps)
    keys = [torch.from_numpy(rng.standard_normal((count, steps))) for _ in range(keyframes)]
    out = []
    for f in range(frames):
        pos = f * keyframes / frames
        k = int(pos)
        s = pos - k
        a, b = keys[k], keys[(k + 1) % keyframes]
        z = math.cos(math.pi * s / 2) * a + math.sin(math.pi * s / 2) * b
        out.append(torch.special.ndtr(z).clamp(0.0, 1.0 - 1e-12).numpy())
    return out


def walk_ar(source, *, frames: int, keyframes: int, seed: int = 0, temperature: float | None = None,
            palette: np.ndarray | None = None) -> list[np.ndarray]:
    """Frames (size, size, 3) uint8 of an AR walk at the training size (see ``walk_noise``)."""
    model, palette = _with_palette(source, palette, "a walk of")
    noises = walk_noise(seed, 1, model.resolution, frames=frames, keyframes=keyframes, steps=model.steps)
    # all frames sampled in one batch
    return list(sample_ar(model, np.concatenate(noises), temperature=temperature, palette=palette))


# ---- export ----------------------------------------------------------------------------------

class StepNetwork(nn.Module):
    """The step network as exported: one item in, the next token's probabilities out, with a
    fixed-size KV cache passed in and out (no data-dependent shapes, so it exports).

    Inputs (B is the batch, W the context window, L layers, H heads, D head size):
      prev_token (B,) int64 — the token of the previous step (anything at step 0);
      prev_pos (B,) int64 — its position y * R + x (anything at step 0);
      next_pos (B,) int64 — the position to generate now;
      first (B,) bool — true at the first item of a window (no previous token);
      length () int64 — items in the cache;
      keys, values (L, B, H, W, D) float32 — the cache.
    Outputs: probs (B, K) float32 at temperature 1, keys, values (the item written at slot
    ``length``).

    Sampling loop (T = R * R steps, h = W // 2, u[n, t] the sampling noise, order[t] the
    positions; ``sample_with_step_network`` is this loop)::

        keys = values = zeros(L, B, H, W, D); length = 0
        for t in range(T):
            if t >= W and t % h == 0:            # a new block: re-encode the block before it
                keys = values = zeros(...); length = 0
                for s in range(t - h, t):
                    _, keys, values = net(tok[s-1], order[s-1], order[s], False, length, keys, values)
                    length += 1
            p, keys, values = net(tok[t-1], order[t-1], order[t], t == 0, length, keys, values)
            length += 1
            tok[t] = first k with cumsum(normalised p ** (1 / temperature))[k] > u[t]
        image.flat[order] = palette[tok]
    """

    def __init__(self, model: ARModel):
        super().__init__()
        self.m = model

    def forward(self, prev_token, prev_pos, next_pos, first, length, keys, values):
        m = self.m
        x = m.token(prev_token) + m._where(prev_pos)
        x = torch.where(first[:, None], m.start.expand_as(x), x) + m._query(next_pos)
        x = x[:, None]
        slots = torch.arange(m.window)
        write = (slots == length).to(x.dtype)[None, None, :, None]          # (1, 1, W, 1)
        allowed = (slots <= length)[None, None, None, :]                     # (1, 1, 1, W)
        new_keys, new_values = [], []
        for i, block in enumerate(m.blocks):
            q, k, v = block._split(x)
            kk = keys[i] * (1 - write) + k * write
            vv = values[i] * (1 - write) + v * write
            y = torch.nn.functional.scaled_dot_product_attention(q, kk, vv, attn_mask=allowed)
            x = block._finish(x, y)
            new_keys.append(kk)
            new_values.append(vv)
        probs = torch.softmax(m.head(m.ln_out(x[:, 0])), dim=-1)
        return probs, torch.stack(new_keys), torch.stack(new_values)


EXPORT_REFUSAL = ("exports cover the raster and Hilbert scans (a pyramid's step also reads its coarser scales, "
                  "which the exported step network has no input for)")


def check_exportable(model: ARModel) -> None:
    """The step network takes one position and the previous token: a pyramid's queries also
    read the coarser scales' tokens, which it has no input for, so pyramids do not export."""
    if isinstance(model, PyramidModel):
        raise RenderError(EXPORT_REFUSAL)


def step_inputs(model: ARModel, batch: int = 2) -> tuple:
    L, H = len(model.blocks), model.genes.heads
    shape = (L, batch, H, model.window, model.width // H)
    # distinct tensors: torch.export would treat one tensor passed twice as one input
    return (torch.zeros(batch, dtype=torch.long), torch.zeros(batch, dtype=torch.long),
            torch.ones(batch, dtype=torch.long), torch.ones(batch, dtype=torch.bool), torch.tensor(0),
            torch.zeros(shape), torch.zeros(shape))


def step_program_bytes(source, *, name: str) -> bytes:
    """The step network as a ``torch.export`` program (``torch.export.save`` bytes, load
    with ``torch.export.load(f).module()``), the palette, genes and loop in the extra file
    ``evoart.json``. Writing it to a file is the caller's (render's) business."""
    model, palette = _model_of(source)
    check_exportable(model)
    net = StepNetwork(model.cpu().eval()).eval()
    meta = _step_metadata(model, palette, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(net, step_inputs(model), dynamic_shapes=_dynamic_batch())
        buf = io.BytesIO()
        torch.export.save(program, buf, extra_files={STEP_PROGRAM_METADATA: json.dumps(meta)})
    return buf.getvalue()


STEP_INPUTS = ("prev_token", "prev_pos", "next_pos", "first", "length", "keys", "values")
STEP_OUTPUTS = ("probs", "keys_out", "values_out")


def _step_metadata(model: ARModel, palette, name: str) -> dict:
    return {"evoart.name": name, "family": "ar", "genes": model.genes.to_dict(), "resolution": model.resolution,
            "window": model.window, "palette": None if palette is None else np.asarray(palette).tolist(),
            "inputs": list(STEP_INPUTS), "outputs": list(STEP_OUTPUTS),
            "loop": "see evoart.autoregressive.render.StepNetwork"}


def _dynamic_batch() -> tuple:
    batch = torch.export.Dim("batch", min=1)
    return ({0: batch}, {0: batch}, {0: batch}, {0: batch}, None, {1: batch}, {1: batch})


def step_onnx_bytes(source, *, name: str, opset: int = 18) -> bytes:
    """The step network as one ONNX file (dynamic batch; inputs and outputs named as in
    ``STEP_INPUTS`` / ``STEP_OUTPUTS``), evoart's description (``_step_metadata``, JSON)
    in the metadata entry ``evoart.json``. Needs onnx and onnxscript."""
    model, palette = _model_of(source)
    check_exportable(model)
    net = StepNetwork(model.cpu().eval()).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(net, step_inputs(model), dynamo=True, opset_version=opset,
                                    input_names=list(STEP_INPUTS), output_names=list(STEP_OUTPUTS),
                                    dynamic_shapes=_dynamic_batch(), external_data=False, verbose=False)
    proto = program.model_proto
    entry = proto.metadata_props.add()
    entry.key, entry.value = STEP_PROGRAM_METADATA, json.dumps(_step_metadata(model, palette, name))
    return proto.SerializeToString()


@torch.no_grad()
def sample_with_step_network(net, resolution: int, window: int, shape: tuple, noise: np.ndarray, order: np.ndarray,
                             temperature: float = 1.0) -> np.ndarray:
    """The documented loop of ``StepNetwork``, run on any callable with its signature (the
    module or a loaded program): tokens in scan order (B, T). ``shape`` is the cache's
    (L, B, H, W, D); ``order`` (T,) the scan."""
    noise = torch.as_tensor(noise, dtype=torch.float64)
    b, steps = noise.shape
    half = max(1, window // 2)
    order_t = torch.as_tensor(order, dtype=torch.long)
    tok = torch.zeros(b, steps, dtype=torch.long)
    zeros = torch.zeros(b, dtype=torch.long)
    first_no = torch.zeros(b, dtype=torch.bool)
    first_yes = torch.ones(b, dtype=torch.bool)

    def item(s, length, keys, values):
        if s == 0:
            return net(zeros, zeros, order_t[0].expand(b), first_yes, torch.tensor(length), keys, values)
        return net(tok[:, s - 1], order_t[s - 1].expand(b), order_t[s].expand(b), first_no,
                   torch.tensor(length), keys, values)

    keys, values, length = torch.zeros(shape), torch.zeros(shape), 0
    for t in range(steps):
        if t >= window and t % half == 0:
            keys, values, length = torch.zeros(shape), torch.zeros(shape), 0
            for s in range(t - half, t):
                _, keys, values = item(s, length, keys, values)
                length += 1
        probs, keys, values = item(t, length, keys, values)
        length += 1
        logits = torch.log(probs.clamp_min(1e-30))
        tok[:, t] = draw(logits, noise[:, t], temperature)
    return tok
