"""The pyramid scan: next-scale prediction over palette token maps (issue 18).

An image of R x R pixels becomes token maps of 1 x 1, 2 x 2, 4 x 4, ... up to R x R
(``ar_genes.pyramid_sizes``; each scale is the area mean of the image at that size,
quantised with the individual's palette), and the model generates them coarsest first,
as VAR does (Tian et al. 2024, next-scale prediction) and as multi-resolution texture
synthesis works: "the auto-regressive model is now working off of prior generated values
across different spatial scales". At 32 px that is 1 + 4 + 16 + 64 + 256 + 1,024 = 1,365
tokens.

Positions. Every cell of every scale has a *global position* g, numbered scale by scale
(scale 0 is g = 0, scale 1 is g = 1 .. 4, and so on, each scale row by row). A scan of a
pyramid is a permutation of the global positions that visits the scales in order; within
a scale the cells come in the ``within`` gene's order: all at once (``parallel``), raster,
Hilbert, or geodesic (``evoart.autoregressive.geodesic``: the order depends on the coarser
scale, so it is computed per image).

Conditioning on every coarser scale. The query of the item that predicts the cell g of
scale s (``model``: the network is told which position comes next) adds, to the embedding
of where g is, one embedding for each coarser scale k < s of the token of g's *ancestor*
there (the cell of scale k that holds g's centre), from a table per scale. So each token
sees the whole column of coarser tokens above it, and through attention the other cells'
columns. Within a scale:

* ``parallel``: a scale's cells are cut into blocks of up to ``context`` cells (raster
  order). A block's items carry no token of their own scale, only their positions and
  the coarser tokens, so they attend to each other both ways, and the whole block is
  drawn in one pass: every token of a scale is drawn given the coarser scales only.
* an order (raster, Hilbert, geodesic): one token at a time, causal attention over a
  window of ``context`` items of the pyramid's scan, as the flat scans are (``model``).

A token of scale s never depends on a token of its own scale that comes later in the
order, or on any finer scale (``tests/test_pyramid.py`` checks it with gradients).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from ..ar_genes import ARGenes, is_parallel, pyramid_sizes, window_length
from .model import ARModel
from .palette import dequantise, quantise
from .scans import hilbert_order, ramp, raster_order


@dataclass(frozen=True)
class Layout:
    """The global positions of a pyramid of side ``resolution``."""

    resolution: int
    sizes: tuple[int, ...]          # the scales' sides, coarsest first
    offsets: tuple[int, ...]        # the first global position of each scale
    total: int                      # global positions in all
    scale: np.ndarray               # (total,) the scale of each position
    centre_row: np.ndarray          # (total,) the row of its centre on the R x R grid
    centre_col: np.ndarray
    ancestors: np.ndarray           # (total, scales) the ancestor at each coarser scale, else -1

    def span(self, s: int) -> tuple[int, int]:
        return self.offsets[s], self.offsets[s] + self.sizes[s] ** 2

    def blocks(self, window: int) -> list[tuple[int, int]]:
        """Each scale cut into consecutive runs of at most ``window`` positions."""
        out = []
        for s in range(len(self.sizes)):
            a, e = self.span(s)
            out += [(b, min(b + window, e)) for b in range(a, e, window)]
        return out


@lru_cache(maxsize=16)
def layout(resolution: int) -> Layout:
    sizes = pyramid_sizes(resolution)
    r = int(resolution)
    offsets = tuple(int(x) for x in np.cumsum([0] + [n * n for n in sizes[:-1]]))
    total = offsets[-1] + sizes[-1] ** 2
    scale = np.empty(total, np.int64)
    crow = np.empty(total, np.int64)
    ccol = np.empty(total, np.int64)
    anc = np.full((total, len(sizes)), -1, np.int64)
    for s, n in enumerate(sizes):
        a = offsets[s]
        y, x = np.divmod(np.arange(n * n), n)
        cy = np.minimum(r - 1, (2 * y + 1) * r // (2 * n))
        cx = np.minimum(r - 1, (2 * x + 1) * r // (2 * n))
        scale[a:a + n * n], crow[a:a + n * n], ccol[a:a + n * n] = s, cy, cx
        for k in range(s):
            m = sizes[k]
            anc[a:a + n * n, k] = offsets[k] + (cy * m // r) * m + cx * m // r
    for arr in (scale, crow, ccol, anc):
        arr.setflags(write=False)
    return Layout(r, sizes, offsets, total, scale, crow, ccol, anc)


def downsample(images_u8: np.ndarray, n: int) -> np.ndarray:
    """The area mean of uint8 images (N, R, R, 3) at n x n, rounded to uint8."""
    images = np.asarray(images_u8)
    r = images.shape[1]
    if n == r:
        return images.copy()
    if r % n == 0:
        f = r // n
        return np.rint(images.reshape(len(images), n, f, n, f, 3).mean(axis=(2, 4))).astype(np.uint8)
    # exact area weights of each source pixel in each target cell, row and column alike
    w = np.zeros((n, r))
    for i in range(n):
        lo, hi = i * r / n, (i + 1) * r / n
        for j in range(int(lo), min(r, int(np.ceil(hi)))):
            w[i, j] = min(hi, j + 1) - max(lo, j)
    w /= w.sum(1, keepdims=True)
    out = np.einsum("ay,nyxc,bx->nabc", w, images.astype(np.float64), w)
    return np.rint(out).astype(np.uint8)


def pyramid_canvas(images_u8: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Token maps of every scale, quantised with ``palette``: int64 (N, total) by global position."""
    images = np.asarray(images_u8)
    lay = layout(images.shape[1])
    parts = [quantise(downsample(images, n), palette).reshape(len(images), -1) for n in lay.sizes]
    return np.concatenate(parts, axis=1).astype(np.int64)


def scale_order(genes: ARGenes, lay: Layout, s: int, canvas: np.ndarray | None = None,
                palette: np.ndarray | None = None) -> np.ndarray:
    """The global positions of scale s in the order the genes generate them. A geodesic
    order reads the scale above from ``canvas`` (total,) with ``palette``."""
    if genes.within == "geodesic" and lay.sizes[s] > 1:
        if canvas is None or palette is None:
            raise ValueError("a geodesic order reads the coarser scale: pass the canvas and the palette")
        return scale_orders(genes, lay, s, np.asarray(canvas)[None], palette)[0]
    a, _ = lay.span(s)
    n = lay.sizes[s]
    within = genes.within
    if within in ("parallel", "raster", "geodesic"):  # (a geodesic 1 x 1 scale has one cell)
        local = raster_order(n)
    elif within == "hilbert":
        local = hilbert_order(n)
    else:
        raise ValueError(f"unknown order within a scale: {within!r}")
    return a + np.asarray(local, np.int64)


def scale_orders(genes: ARGenes, lay: Layout, s: int, canvases: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """``scale_order`` of scale s for each canvas of a batch (N, total): (N, n * n); a
    geodesic order is computed for the whole batch at once."""
    canvases = np.asarray(canvases)
    if not (genes.within == "geodesic" and lay.sizes[s] > 1):
        return np.broadcast_to(scale_order(genes, lay, s), (len(canvases), lay.sizes[s] ** 2)).copy()
    from .geodesic import geodesic_orders

    a, e = lay.span(s)
    n = lay.sizes[s]
    parents = canvases[:, lay.ancestors[a:e, s - 1]]    # each cell shows its parent's colour
    pictures = dequantise(parents.reshape(len(canvases), n, n), palette)
    return a + geodesic_orders(pictures, genes.geo_lambda, genes.geo_seeds)


def depends_on_image(genes: ARGenes) -> bool:
    return genes.scan == "pyramid" and genes.within == "geodesic"


def pyramid_orders(genes: ARGenes, resolution: int, canvases: np.ndarray | None = None,
                   palette: np.ndarray | None = None, count: int | None = None) -> np.ndarray:
    """Orders (N, total) of whole pyramids: one per canvas of ``canvases`` (N, total) for
    the geodesic order, else the same order ``count`` times."""
    lay = layout(resolution)
    if depends_on_image(genes):
        if canvases is None:
            raise ValueError("the geodesic scan depends on the image: pass its canvases")
        return np.concatenate([scale_orders(genes, lay, s, canvases, palette) for s in range(len(lay.sizes))], axis=1)
    one = np.concatenate([scale_order(genes, lay, s) for s in range(len(lay.sizes))])
    n = count if count is not None else (len(canvases) if canvases is not None else 1)
    return np.broadcast_to(one, (n, lay.total)).copy()


def finest(canvas: torch.Tensor | np.ndarray, resolution: int) -> np.ndarray:
    """The finest scale of canvases (N, total): token maps (N, R, R)."""
    lay = layout(resolution)
    a, e = lay.span(len(lay.sizes) - 1)
    c = canvas.numpy() if isinstance(canvas, torch.Tensor) else np.asarray(canvas)
    return c[:, a:e].reshape(-1, resolution, resolution)


def pyramid_picture(genes: ARGenes, resolution: int, order: np.ndarray) -> np.ndarray:
    """A pyramid's scan as a picture: uint8 (R, L * (R + 1) - 1, 3), its scales side by
    side, coarsest first (the order of the scales), each enlarged to R x R, every cell
    coloured by when it was generated within its scale on the scan ramp (``scans.ramp``:
    dark blue first, pale yellow last). A scale that comes all at once is coloured by the
    pass that drew it (one colour per block). ``order`` (total,): the global positions in
    scan order (one sample's)."""
    lay = layout(resolution)
    order = np.asarray(order, np.int64)
    if sorted(order.tolist()) != list(range(lay.total)):
        raise ValueError("the order is not a permutation of the pyramid's positions")
    when = np.empty(lay.total, np.float64)
    when[order] = np.arange(lay.total)
    if is_parallel(genes):
        for a, e in lay.blocks(window_length(genes, resolution)):
            when[order[a:e]] = a
    for s_ in range(len(lay.sizes)):  # each scale on the whole ramp
        a, e = lay.span(s_)
        lo, hi = when[a:e].min(), when[a:e].max()
        when[a:e] = (when[a:e] - lo) / max(1.0, hi - lo)
    colours = ramp(when)
    r = lay.resolution
    out = np.full((r, len(lay.sizes) * (r + 1) - 1, 3), 255, np.uint8)
    for s, n in enumerate(lay.sizes):
        a, e = lay.span(s)
        rows = (np.arange(r) * n // r)
        cell = colours[a:e].reshape(n, n, 3)[rows][:, rows]
        out[:, s * (r + 1):s * (r + 1) + r] = cell
    return out


def scan_picture(genes: ARGenes, resolution: int, sample_order: np.ndarray | None = None) -> np.ndarray:
    """The picture of the genes' scan at a size: a flat scan's order, or a pyramid's scales
    (``pyramid_picture``). An order that depends on the image (the geodesic pyramid)
    needs one sample's own order, ``sample_order``."""
    from .scans import order_picture, scan_order

    if genes.scan != "pyramid":
        return order_picture(scan_order(genes.scan, resolution), resolution)
    if depends_on_image(genes):
        if sample_order is None:
            raise ValueError("the geodesic scan depends on the image: pass one sample's order")
        return pyramid_picture(genes, resolution, sample_order)
    return pyramid_picture(genes, resolution, pyramid_orders(genes, resolution)[0])


#: Share of training steps whose window is centred on a scale drawn uniformly (the rest:
#: on any token): see ``PyramidModel.training_span``.
COARSE_SHARE = 0.5


class PyramidModel(ARModel):
    """The AR network over a pyramid's global positions (see the module's docstring).

    The row and column embeddings are the flat model's, read at each cell's centre on the
    R x R grid, plus an embedding of the scale, so a raster parent's position tensors mean
    the same here. ``coarse`` holds one token table per scale: the ancestors' tokens
    that each query adds."""

    def __init__(self, genes: ARGenes, resolution: int):
        super().__init__(genes, resolution)
        lay = layout(resolution)
        self.layout = lay
        self.parallel = is_parallel(genes)
        self.positions = lay.total
        levels, d = len(lay.sizes), genes.width
        self.where_scale = nn.Embedding(levels, d)
        self.query_scale = nn.Embedding(levels, d)
        self.coarse = nn.Embedding(levels * genes.palette + 1, d, padding_idx=levels * genes.palette)
        for emb in (self.where_scale, self.query_scale, self.coarse):
            nn.init.normal_(emb.weight, std=0.02)
        with torch.no_grad():
            self.coarse.weight[-1].zero_()
        self.register_buffer("pos_scale", torch.from_numpy(lay.scale.copy()), persistent=False)
        self.register_buffer("pos_row", torch.from_numpy(lay.centre_row.copy()), persistent=False)
        self.register_buffer("pos_col", torch.from_numpy(lay.centre_col.copy()), persistent=False)
        self.register_buffer("pos_ancestors", torch.from_numpy(lay.ancestors.copy()), persistent=False)
        self.blocks_of_scan = lay.blocks(window_length(genes, resolution))

    def training_span(self, rng: np.random.Generator) -> tuple[int, int]:
        """The steps a .. e - 1 one training step trains: a window of ``context`` steps (or,
        all at once, the block) around a target token. The target is, half the time, a
        token of a scale drawn uniformly, else any token: the few coarse tokens decide an
        image's layout, and drawn by their share of the tokens alone they would hardly be
        trained (the 1 x 1 scale once in 1,365 steps at 32 px)."""
        lay = self.layout
        if rng.random() < COARSE_SHARE:
            lo, hi = lay.span(int(rng.integers(len(lay.sizes))))
            target = int(rng.integers(lo, hi))
        else:
            target = int(rng.integers(lay.total))
        if self.parallel:
            return next((a, e) for a, e in self.blocks_of_scan if a <= target < e)
        first = min(max(0, target - int(rng.integers(self.window))), lay.total - self.window)
        return first, first + self.window

    # ---- items ---------------------------------------------------------------------------
    def _where(self, pos: torch.Tensor) -> torch.Tensor:
        return self.where_row(self.pos_row[pos]) + self.where_col(self.pos_col[pos]) \
            + self.where_scale(self.pos_scale[pos])

    def _query(self, pos: torch.Tensor, canvas: torch.Tensor | None = None) -> torch.Tensor:
        q = self.query_row(self.pos_row[pos]) + self.query_col(self.pos_col[pos]) \
            + self.query_scale(self.pos_scale[pos])
        if canvas is None:
            raise ValueError("a pyramid's queries read the coarser scales: pass the canvas")
        return q + self.ancestry(pos, canvas)

    def ancestry(self, pos: torch.Tensor, canvas: torch.Tensor) -> torch.Tensor:
        """The sum, over the coarser scales, of the embedding of pos's ancestor token
        there: (B, n, d) for positions (B, n). ``canvas`` is (B, total) tokens, or (B,
        total, K) one-hot (or soft) tokens, which makes the tokens differentiable."""
        anc = self.pos_ancestors[pos]                                 # (B, n, levels)
        valid = anc >= 0
        levels, k = anc.shape[-1], self.palette_size
        safe = anc.clamp(min=0)
        b, n = pos.shape
        if canvas.dtype.is_floating_point:
            onehot = torch.gather(canvas, 1, safe.reshape(b, -1, 1).expand(-1, -1, k)).reshape(b, n, levels, k)
            onehot = onehot * valid[..., None]
            table = self.coarse.weight[:-1].reshape(levels, k, -1)
            return torch.einsum("bnlk,lkd->bnd", onehot, table)
        tok = torch.gather(canvas, 1, safe.reshape(b, -1)).reshape(b, n, levels)
        index = torch.where(valid, torch.arange(levels, device=pos.device) * k + tok,
                            torch.full_like(tok, levels * k))
        return self.coarse(index).sum(-2)

    def canvas_of(self, tokens: torch.Tensor, orders: torch.Tensor) -> torch.Tensor:
        """The canvas (B, total) of tokens in scan order (B, t) at positions (B, t); cells
        not yet generated hold 0 (no query reads them: they are never an ancestor of a
        cell that comes before them)."""
        canvas = tokens.new_zeros(tokens.shape[0], self.positions)
        return canvas.scatter_(1, orders, tokens)

    def new_canvas(self, batch: int, device=None) -> torch.Tensor:
        return torch.zeros(batch, self.positions, dtype=torch.long, device=device)

    # ---- whole scans, windows, blocks ----------------------------------------------------
    def forward(self, tokens: torch.Tensor, orders: torch.Tensor) -> torch.Tensor:
        canvas = self.canvas_of(tokens, orders)
        if self.parallel:
            return self._blocks(orders, canvas)
        return self.forward_vectors(self.token(tokens), orders, canvas)

    def _blocks(self, orders: torch.Tensor, canvas: torch.Tensor) -> torch.Tensor:
        """Logits of whole scans of a parallel pyramid, block by block."""
        return torch.cat([self.trunk(self._query(orders[:, a:e], canvas), causal=False)
                          for a, e in self.blocks_of_scan], dim=1)

    def forward_soft(self, canvas: torch.Tensor, orders: torch.Tensor) -> torch.Tensor:
        """``forward`` of one-hot (or soft) canvases (B, total, K): the same computation
        with the token lookups as products, so gradients reach every input token."""
        if self.parallel:
            return self._blocks(orders, canvas)
        k = self.palette_size
        vectors = torch.gather(canvas, 1, orders[..., None].expand(-1, -1, k)) @ self.token.weight
        return self.forward_vectors(vectors, orders, canvas)

    def forward_block(self, tokens: torch.Tensor, orders: torch.Tensor, a: int, e: int) -> torch.Tensor:
        """Logits (B, e - a, K) of the block of steps a .. e - 1 of a parallel pyramid, from
        the tokens of the steps before it (``tokens`` and ``orders`` cover at least 0 .. a - 1)."""
        canvas = self.canvas_of(tokens[:, :a], orders[:, :a])
        return self.trunk(self._query(orders[:, a:e], canvas), causal=False)

    def window_items(self, tokens: torch.Tensor, orders: torch.Tensor, first: int, end: int) -> torch.Tensor:
        canvas = self.canvas_of(tokens[:, :end], orders[:, :end])
        return self._window_items(tokens, orders, first, end, canvas)


def make_model(genes: ARGenes, resolution: int) -> ARModel:
    """The network for these genes: the pyramid's for a pyramid scan, else the flat one."""
    return PyramidModel(genes, resolution) if genes.scan == "pyramid" else ARModel(genes, resolution)
