"""The AR network: a small causal transformer over palette tokens, told the next position.

Items and steps. An image of R x R pixels is generated in T = R^2 scan steps; ``order[t]``
is the position (``y * R + x``) generated at step t. The network reads one *item* per step:

    item t = token(t - 1) + where(t - 1) + query(t)        (item 0: start + query(0))

the token generated at the previous step with its position embedding, plus the position
embedding of the position to generate now (σ-GPT, Pannatier et al. 2024; XLNet's query
stream). Its output at item t is the distribution of the token at step t. Because the
network is told where it is going, nothing in it assumes an order: raster, Hilbert, or an
order that depends on the image (issue 18) use the same weights and code.

Context. Attention is causal and limited to a window of ``context`` items (a gene). Items
are cut into blocks of half a window, h = context / 2: item t is computed in a window made
of its own block and the block before, from scratch (items 0 .. context - 1 in the first
window), so no information reaches it from further back, at any depth. Training windows
of ``context`` items cover those windows; sampling with a KV cache re-encodes the
previous block (one parallel pass) every h steps, so cached sampling is the same
computation as recomputing each token's window from scratch (tested), and the
likelihood of whole scans (``forward``) is computed in the same windows.

Positions are learned row and column embeddings of the training size (one pair for
``where``, one for ``query``), so a model knows the 0 .. R - 1 grid it was trained on:
renders beyond that size work in windows of R x R (see ``render``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ar_genes import ARGenes, scan_steps, window_length


def _attend(q: torch.Tensor, kt: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Attention of a few queries q (B, H, n, D) over cached keys, stored transposed
    (B, H, D, length), and values (B, H, length, D), written out: with one query per step,
    torch's fused CPU kernel made sampling about 15% slower (docs/FAMILIES.md). Keys are
    kept transposed so that both products read the cache in place (a slice of it is a
    valid strided matrix)."""
    scores = (q @ kt) * (q.shape[-1] ** -0.5)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN x), then x + MLP(LN x)."""

    def __init__(self, width: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), nn.GELU(),
                                 nn.Linear(mlp_ratio * width, width))

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, n, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return q, k, v  # each (B, heads, n, head size)

    def _finish(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        b, _, n, _ = y.shape
        x = x + self.proj(y.transpose(1, 2).reshape(b, n, -1))
        return x + self.mlp(self.ln2(x))

    def forward(self, x: torch.Tensor, causal: bool = True) -> tuple[torch.Tensor, tuple]:
        """Attention over x (B, n, d), causal unless told otherwise (a parallel pyramid's
        block); returns the output and the block's keys and values."""
        q, k, v = self._split(x)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self._finish(x, y), (k, v)

    def extend(self, x: torch.Tensor, cache_k: torch.Tensor, cache_v: torch.Tensor, length: int) -> torch.Tensor:
        """Items x (B, n, d) attending to the ``length`` cached items and causally to each
        other; written to the cache at slots ``length`` .. ``length + n - 1``. One item (a
        sampling step) attends to everything cached and needs no mask."""
        q, k, v = self._split(x)
        n = x.shape[1]
        cache_k[..., length:length + n] = k.transpose(-2, -1)
        cache_v[:, :, length:length + n] = v
        mask = None
        if n > 1:
            i = torch.arange(n, device=x.device)[:, None]
            j = torch.arange(length + n, device=x.device)[None, :]
            mask = j <= i + length
        y = _attend(q, cache_k[..., :length + n], cache_v[:, :, :length + n], mask)
        return self._finish(x, y)


class ARModel(nn.Module):
    """Logits of the palette token at each scan step, given the steps before it."""

    def __init__(self, genes: ARGenes, resolution: int):
        super().__init__()
        self.genes = genes
        self.resolution = int(resolution)
        self.palette_size = genes.palette
        self.width = genes.width
        self.window = window_length(genes, resolution)
        self.steps = scan_steps(genes, resolution)      # tokens generated per image
        self.half = max(1, self.window // 2)
        d, r = genes.width, self.resolution
        self.token = nn.Embedding(genes.palette, d)
        self.start = nn.Parameter(torch.zeros(d))          # the item before the first token
        self.where_row = nn.Embedding(r, d)                  # position of the token read
        self.where_col = nn.Embedding(r, d)
        self.query_row = nn.Embedding(r, d)                  # position of the token to predict
        self.query_col = nn.Embedding(r, d)
        self.blocks = nn.ModuleList(Block(d, genes.heads, genes.mlp_ratio) for _ in range(genes.layers))
        self.ln_out = nn.LayerNorm(d)
        self.head = nn.Linear(d, genes.palette)
        for emb in (self.token, self.where_row, self.where_col, self.query_row, self.query_col):
            nn.init.normal_(emb.weight, std=0.02)

    # ---- items ---------------------------------------------------------------------------
    def _where(self, pos: torch.Tensor) -> torch.Tensor:
        return self.where_row(pos // self.resolution) + self.where_col(pos % self.resolution)

    def _query(self, pos: torch.Tensor, canvas: torch.Tensor | None = None) -> torch.Tensor:
        """The embedding of the position to generate; a pyramid's adds the coarser tokens
        from ``canvas`` (``pyramid.PyramidModel``), a flat scan's reads no canvas."""
        return self.query_row(pos // self.resolution) + self.query_col(pos % self.resolution)

    def items(self, token_vectors: torch.Tensor, orders: torch.Tensor, first: int = 0,
              canvas: torch.Tensor | None = None) -> torch.Tensor:
        """Input items ``first`` .. ``first + n - 1`` from the token vectors (B, n, d) of
        steps ``first - 1`` .. ``first + n - 2`` and the orders (B, n + 1) of steps ``first - 1``
        .. ``first + n - 1`` (for ``first == 0`` the leading entries stand for "before the
        start": pass any token vector and position there, they are replaced)."""
        prev = token_vectors + self._where(orders[:, :-1])
        if first == 0:
            prev = torch.cat([self.start.expand(prev.shape[0], 1, -1), prev[:, 1:]], dim=1)
        return prev + self._query(orders[:, 1:], canvas)

    def trunk(self, x: torch.Tensor, causal: bool = True) -> torch.Tensor:
        """The blocks over items x (B, n, d), causal unless told otherwise, then the head:
        logits (B, n, K)."""
        for block in self.blocks:
            x, _ = block(x, causal)
        return self.head(self.ln_out(x))

    def forward_vectors(self, token_vectors: torch.Tensor, orders: torch.Tensor,
                        canvas: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, T, K) of every step of whole scans, from the token vectors (B, T, d)
        of the steps and the orders (B, T). Item t reads token vector t - 1 only."""
        b, t, d = token_vectors.shape
        shifted_vectors = torch.cat([token_vectors.new_zeros(b, 1, d), token_vectors[:, :-1]], dim=1)
        shifted_orders = torch.cat([orders[:, :1], orders], dim=1)
        x = self.items(shifted_vectors, shifted_orders, first=0, canvas=canvas)
        if t <= self.window:
            return self.trunk(x)
        # Each later block is computed from scratch in a window of its own items and the
        # block before, as sampling does (a mask over the whole scan would let deeper
        # layers see further back through the earlier items).
        windows = [(0, self.window, 0)] + [(b - self.half, min(b + self.half, t), self.half)
                                          for b in range(self.window, t, self.half)]
        out = []
        for a, e, keep in windows:
            out.append(self.trunk(x[:, a:e])[:, keep:])
        return torch.cat(out, dim=1)

    def forward(self, tokens: torch.Tensor, orders: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, K): ``tokens`` (B, T) are the tokens in scan order, ``orders``
        (B, T) the positions of the steps."""
        return self.forward_vectors(self.token(tokens), orders)

    def forward_window(self, tokens: torch.Tensor, orders: torch.Tensor, first: int, end: int) -> torch.Tensor:
        """Logits (B, end - first, K) of items first .. end - 1 attending only within that
        window (training windows; the blocks of sampling). ``tokens`` and ``orders`` are
        the whole scans (B, T) or at least steps 0 .. end - 1."""
        return self.trunk(self.window_items(tokens, orders, first, end))

    def window_items(self, tokens: torch.Tensor, orders: torch.Tensor, first: int, end: int) -> torch.Tensor:
        """Input items first .. end - 1 (B, end - first, d) of whole scans."""
        return self._window_items(tokens, orders, first, end, None)

    def _window_items(self, tokens: torch.Tensor, orders: torch.Tensor, first: int, end: int,
                      canvas: torch.Tensor | None) -> torch.Tensor:
        lo = max(0, first - 1)
        vecs = self.token(tokens[:, lo:end - 1])
        pos = orders[:, lo:end]
        if first == 0:
            vecs = torch.cat([vecs.new_zeros(vecs.shape[0], 1, vecs.shape[2]), vecs], dim=1)
            pos = torch.cat([orders[:, :1], pos], dim=1)
        return self.items(vecs, pos, first=first, canvas=canvas)

    # ---- cached stepping -------------------------------------------------------------------
    def new_cache(self, batch: int, device=None, dtype=torch.float32) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per block: keys (B, H, D, W), stored transposed, and values (B, H, W, D)."""
        heads, size = self.genes.heads, self.width // self.genes.heads
        return [(torch.zeros(batch, heads, size, self.window, device=device, dtype=dtype),
                 torch.zeros(batch, heads, self.window, size, device=device, dtype=dtype)) for _ in self.blocks]

    def step(self, cache: list, length: int, prev_token: torch.Tensor | None, prev_pos: torch.Tensor | None,
             next_pos: torch.Tensor, canvas: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, K) of one item, attending to ``length`` cached items; the item is
        written to the cache. ``prev_token`` None: the item before the first token.
        ``canvas``: the tokens generated so far by position (a pyramid's queries read it)."""
        if prev_token is None:
            x = self.start.expand(next_pos.shape[0], -1)
        else:
            x = self.token(prev_token) + self._where(prev_pos)
        x = x[:, None] + self._query(next_pos[:, None], canvas)
        for block, (k, v) in zip(self.blocks, cache):
            x = block.extend(x, k, v, length)
        return self.head(self.ln_out(x[:, 0]))

    def prefill(self, cache: list, tokens: torch.Tensor, orders: torch.Tensor, first: int, end: int) -> None:
        """Encode items first .. end - 1 in one causal pass into cache slots 0 .. end - first - 1
        (the block before the next item, after a reset)."""
        x = self.window_items(tokens, orders, first, end)
        n = x.shape[1]
        for block, (ck, cv) in zip(self.blocks, cache):
            x, (k, v) = block(x)
            ck[..., :n] = k.transpose(-2, -1)
            cv[:, :, :n] = v

    def extend_cache(self, cache: list, length: int, tokens: torch.Tensor, orders: torch.Tensor,
                     first: int, end: int) -> None:
        """Append items first .. end - 1 (their tokens all known) to a cache holding ``length``
        items, in one pass: a run of known tokens costs one step, not end - first."""
        x = self.window_items(tokens, orders, first, end)
        for block, (k, v) in zip(self.blocks, cache):
            x = block.extend(x, k, v, length)

    def new_canvas(self, batch: int, device=None) -> torch.Tensor | None:
        """The tokens drawn so far by position, for a model whose queries read them (a
        pyramid's: ``pyramid.PyramidModel``); a flat scan's reads none."""
        return None

    def window_start(self, t: int) -> int:
        """The first item of item t's window: 0 in the first window, then the start of the
        block before its own."""
        return 0 if t < self.window else (t // self.half - 1) * self.half
