"""Function-preserving inheritance of a generator: network morphisms (Net2Net).

A mutated or mated child starts from its parents' trained tensors. Copying a tensor only
where its name and shape match (``nets.inherit_tensors``) throws away what the parent
learned wherever the layout changed. ``morph_generator`` instead rewrites the parent's
tensors into the child's layout so that the child computes the parent's function right
after the mutation wherever the new layout can express it (Chen et al. 2016, Net2Net;
Elsken et al. 2019, LEMONADE), and as close to it as the layout allows elsewhere.

The walk follows the child's feature maps from the stem to the output. Each child map is
described as a copy of a parent map: child channel ``j`` = ``scale`` x parent channel
``src[j]``. A layer that reads such a map gets its input weights split among the copies
(Net2WiderNet, with random unequal fractions that sum to one, so the copies do not stay
symmetric in training) and divided by the scale; a layer that writes one takes the
parent's output rows ``src``.

What each kind of change keeps (``exact``: the child's function equals the parent's, in
eval mode, up to float rounding):

* **identity block** (``Inheritance.identity_blocks``, made by the add and duplicate mutations):
  the block is residual and its branch is silenced (the norm's scale and shift zeroed, or
  without a norm the convolution), so the block passes its input through the skip path;
  the skip's 1/sqrt(2) is undone by multiplying the next layer's input weights by
  sqrt(2), and a 1x1 skip (channels differ) is set to sqrt(2) x a channel copy. Exact,
  except where the next block is a residual block with an identity skip (its skip path
  cannot be rescaled) or the inserted block must upsample (``genome.layout`` promoted it).
* **widening** (more channels in a block or the stem): new channels copy random existing
  ones, including their norm statistics and noise scale; the next layer's weights are
  split. Exact for batch, instance and no norm; approximate for group norm (groups mix
  copied channels).
* **narrowing**: keeps the channels the next layer weighs most (largest input-weight
  norm); the dropped channels' contribution is lost.
* **latent**: a longer latent gets zero weights for the new components (exact); a shorter
  one keeps the components with the largest weights (approximate).
* **kernel / upsampler**: the convolution is refitted by least squares to the parent's
  operator (its response to an impulse): exact whenever the child's operator family
  contains the parent's (a larger kernel; nearest+conv, transposed and pixel-shuffle of
  3x3 at 2x map into each other one way: nearest -> transposed -> pixel-shuffle), the
  closest one otherwise. A change between upsampling and not shifts the layout: the
  filters are fitted as if the refine block upsampled (nearest), which keeps them, but
  the maps change size: approximate.
* **normalisation**: the same kind keeps everything; batch -> none folds the running
  statistics into the convolution (exact in eval mode); none -> batch starts as the
  identity in eval mode; other changes keep the affine scale and shift.
* **activation**, **noise off**: all weights kept; the function changes by the new
  nonlinearity (or the missing noise). Noise switched on starts at scale 0 (exact).
* **residual on/off**: all weights kept; switching on with a 1x1 skip zeroes that skip
  and rescales the next layer (exact); otherwise approximate.
* **output activation**: tanh <-> sigmoid is exact (sigmoid(2x) x 2 - 1 = tanh x, the
  to-RGB layer is rescaled); others keep the weights.
* **removing a block**: every other tensor kept; the next block reads the removed block's
  input instead (its channels matched by weight norm): approximate.
* **crossover**: each part from its parent as above; where the parents meet, channels are
  matched by weight norm: approximate.

The discriminator is inherited by name and shape as before (``nets.inherit_tensors``).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

from .genome import Genome, layout

SQRT2 = math.sqrt(2.0)


@dataclass
class MapSource:
    """A child feature map as a copy of a parent map: child channel j is ``scale`` times
    channel ``src[j]`` of map ``index`` of parent ``parent`` (map 0 is the stem's output,
    map k + 1 block k's). ``parent`` None: a map with no counterpart in any parent."""

    parent: int | None
    index: int
    src: list[int]
    scale: float = 1.0
    exact: bool = True


@dataclass
class Morphed:
    state: dict            # the child's complete state dict
    derived: set[str]      # child tensors computed from a parent's (the rest: fresh init)
    exact: bool            # the child computes the parent's function (see the module doc)


# ---- convolutions in one canonical form --------------------------------------------------
# Every block convolution as weights (out, in, n) and bias (out, phases): n parameters per
# channel pair, in the order the impulse responses below use.

def _canon(kind: str, w: torch.Tensor) -> torch.Tensor:
    if kind == "transposed":  # (in, out, k+1, k+1)
        return w.permute(1, 0, 2, 3).flatten(2)
    if kind == "pixelshuffle":  # (4 out, in, k, k): output channel c reads rows 4c..4c+3
        o4, i, k, _ = w.shape
        return w.view(o4 // 4, 4, i, k, k).permute(0, 2, 1, 3, 4).flatten(2)
    return w.flatten(2)


def _uncanon(kind: str, c: torch.Tensor, k: int) -> torch.Tensor:
    o, i, _ = c.shape
    if kind == "transposed":
        return c.view(o, i, k + 1, k + 1).permute(1, 0, 2, 3).contiguous()
    if kind == "pixelshuffle":
        return c.view(o, i, 4, k, k).permute(0, 2, 1, 3, 4).reshape(o * 4, i, k, k).contiguous()
    return c.view(o, i, k, k).contiguous()


def _bias_canon(kind: str, b: torch.Tensor) -> torch.Tensor:
    return b.view(-1, 4) if kind == "pixelshuffle" else b.view(-1, 1)


def _bias_uncanon(kind: str, b: torch.Tensor) -> torch.Tensor:
    if kind == "pixelshuffle":
        return (b if b.shape[1] == 4 else b.expand(-1, 4)).reshape(-1).contiguous()
    return (b if b.shape[1] == 1 else b.mean(1, keepdim=True)).reshape(-1).contiguous()


def _n_params(kind: str, k: int) -> int:
    return (k + 1) ** 2 if kind == "transposed" else 4 * k * k if kind == "pixelshuffle" else k * k


def _response(kind: str, k: int, theta: torch.Tensor) -> torch.Tensor:
    """The output of one channel pair's operator with parameters ``theta`` for an impulse
    in the middle of a 9x9 map (18x18 out when the kind upsamples)."""
    x = torch.zeros(1, 1, 9, 9, dtype=torch.float64)
    x[..., 4, 4] = 1.0
    if kind == "transposed":
        return F.conv_transpose2d(x, theta.view(1, 1, k + 1, k + 1), stride=2, padding=(k - 1) // 2)
    if kind == "pixelshuffle":
        return F.pixel_shuffle(F.conv2d(x, theta.view(4, 1, k, k), padding=k // 2), 2)
    if kind in ("nearest", "bilinear"):
        x = F.interpolate(x, scale_factor=2, mode=kind, **({"align_corners": False} if kind == "bilinear" else {}))
    return F.conv2d(x, theta.view(1, 1, k, k), padding=k // 2)


@lru_cache(maxsize=None)
def kernel_map(parent_kind: str, pk: int, child_kind: str, ck: int) -> tuple[torch.Tensor, bool] | None:
    """The least-squares map (n_child x n_parent) from a parent convolution's per-pair
    parameters to the child's, and whether it is exact; None where one kind upsamples
    and the other does not."""
    if (parent_kind == "none") != (child_kind == "none"):
        return None
    if parent_kind == child_kind and pk == ck:
        n = _n_params(child_kind, ck)
        return torch.eye(n, dtype=torch.float64), True
    def basis(kind, k):
        n = _n_params(kind, k)
        return torch.stack([_response(kind, k, e).flatten() for e in torch.eye(n, dtype=torch.float64)], 1)
    bp, bc = basis(parent_kind, pk), basis(child_kind, ck)
    p = torch.linalg.lstsq(bc, bp).solution  # (n_child, n_parent)
    exact = bool((bc @ p - bp).abs().max() < 1e-9)
    return p, exact


# ---- channel choices ---------------------------------------------------------------------

def _gen(seed: int, key: str) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + zlib.crc32(key.encode())) % (2 ** 62))


def _choose(memo: dict, key: str, n_child: int, importance: torch.Tensor, seed: int) -> list[int]:
    """Which parent channel each of ``n_child`` channels copies: all of them, plus random
    repeats when widening; the most important when narrowing. Memoised under ``key`` so
    that the EMA generator gets the same choice as the generator."""
    if key in memo:
        return memo[key]
    n_parent = importance.numel()
    if n_child >= n_parent:
        extra = torch.randint(n_parent, (n_child - n_parent,), generator=_gen(seed, key)).tolist()
        src = list(range(n_parent)) + extra
    else:
        src = sorted(torch.topk(importance.double(), n_child).indices.tolist())
    memo[key] = src
    return src


def _fractions(src: list[int], seed: int, key: str) -> torch.Tensor:
    """Shares of a parent channel's outgoing weight for each of its copies: one for a
    single copy; random and unequal (summing to one) for several, which keeps the
    function and lets the copies drift apart in training."""
    src_t = torch.tensor(src)
    u = torch.rand(len(src), generator=_gen(seed, "frac:" + key), dtype=torch.float64) + 0.5
    total = torch.zeros(int(src_t.max()) + 1 if src else 0, dtype=torch.float64).index_add_(0, src_t, u)
    counts = torch.bincount(src_t, minlength=total.numel())
    f = u / total[src_t]
    return torch.where(counts[src_t] == 1, torch.ones_like(f), f)


def _read_input(w: torch.Tensor, m: MapSource, seed: int, key: str) -> torch.Tensor:
    """Input weights (out, in_parent, ...) rewritten to read the child map ``m``."""
    f = _fractions(m.src, seed, key).to(w.dtype)
    shape = [1, len(m.src)] + [1] * (w.dim() - 2)
    return w[:, m.src] * f.view(shape) / m.scale


# ---- the walk ----------------------------------------------------------------------------

class _Parent:
    def __init__(self, genome: Genome, state: dict, resolution: int):
        self.genome = genome
        self.state = state
        self.stem_size, self.layout = layout(genome, resolution)

    def t(self, name):
        return self.state[name].detach().to(torch.float64)

    def has(self, name):
        return name in self.state

    def importance(self, index: int) -> torch.Tensor:
        """How much the parent's consumer of map ``index`` weighs each channel."""
        if index >= len(self.layout):
            w = self.t("to_rgb.weight")
            return w.pow(2).sum((0, 2, 3)).sqrt()
        bl = self.layout[index]
        c = _canon(bl.upsample, self.t(f"blocks.{index}.conv.weight"))
        imp = c.pow(2).sum((0, 2))
        if self.has(f"blocks.{index}.skip.weight"):
            imp = imp + self.t(f"blocks.{index}.skip.weight").pow(2).sum((0, 2, 3))
        return imp.sqrt()


def morph_generator(child: Genome, resolution: int, parents: list, inheritance, *, base: dict,
                    seed: int = 0, memo: dict | None = None) -> Morphed:
    """The child's generator state from its parents', by the rules of the module doc.

    ``parents[i]`` is (genome, generator state dict) or None; ``base`` the child's fresh
    state dict (kept where nothing is inherited); ``memo`` shares channel choices between
    calls (the generator and its EMA). Deterministic for a fixed ``seed``."""
    memo = {} if memo is None else memo
    ps = [(_Parent(g, s, resolution) if g is not None and s is not None else None) for g, s in parents]
    out = {k: v.clone() for k, v in base.items()}
    derived: set[str] = set()
    exact = True

    def put(name, value):
        out[name] = value.to(base[name].dtype).reshape(base[name].shape).clone()
        derived.add(name)

    g = child.generator
    stem_size, blocks = layout(child, resolution)
    sp = inheritance.stem
    P = ps[sp] if sp is not None and sp < len(ps) else None

    # -- stem: (latent) -> (stem channels) x 4 x 4 --
    if P is not None:
        pg = P.genome.generator
        imp = P.importance(0)
        src = _choose(memo, "map0", g.stem_channels, imp, seed)
        w = P.t("stem.weight").view(pg.stem_channels, 16, pg.latent)[src]
        if g.latent >= pg.latent:
            cols = torch.zeros(len(src), 16, g.latent, dtype=w.dtype)
            cols[..., : pg.latent] = w
        else:
            norms = w.pow(2).sum((0, 1))
            keep = memo.setdefault("latent", sorted(torch.topk(norms, g.latent).indices.tolist()))
            cols = w[..., keep]
            exact = False
        put("stem.weight", cols.reshape(-1, g.latent))
        put("stem.bias", P.t("stem.bias").view(pg.stem_channels, 16)[src].reshape(-1))
        cur = MapSource(sp, 0, src, 1.0, stem_size == P.stem_size)
        producer = ["stem.weight", "stem.bias"]  # its leaky ReLU is positively homogeneous
        exact = exact and g.stem_channels >= pg.stem_channels
    else:
        cur = MapSource(None, 0, list(range(g.stem_channels)), 1.0, False)
        exact = False
        producer = None

    identity = set(getattr(inheritance, "identity_blocks", ()) or ())
    for j, (gene, bl) in enumerate(zip(g.blocks, blocks)):
        origin = inheritance.blocks[j] if j < len(inheritance.blocks) else None
        pre = f"blocks.{j}."
        if j in identity:
            cur, ok = _identity_block(j, gene, bl, cur, origin, ps, put, base, seed)
            nxt = j + 1 < len(blocks) and j + 1 not in identity and g.blocks[j + 1].residual and \
                blocks[j + 1].in_channels == blocks[j + 1].out_channels
            if cur.scale != 1.0 and nxt and producer:
                # the next block's identity skip cannot undo the 1/sqrt(2): the producer of
                # the map (positively homogeneous) outputs sqrt(2) x instead
                for name in producer:
                    out[name] = out[name] * (1 / cur.scale)
                cur = MapSource(cur.parent, cur.index, cur.src, 1.0, cur.exact)
            elif cur.scale != 1.0 and nxt:
                cur = MapSource(cur.parent, cur.index, cur.src, cur.scale, False)
                ok = False
            producer = None
            exact = exact and ok
            continue
        Q = ps[origin[0]] if origin is not None and origin[0] < len(ps) else None
        producer = None
        if gene.activation in ("relu", "lrelu") and not gene.residual:
            producer = [pre + "norm.weight", pre + "norm.bias"] if pre + "norm.weight" in base else \
                [n for n in (pre + "conv.weight", pre + "conv.bias", pre + "noise.scale") if n in base]
        if Q is None:
            cur = MapSource(None, j + 1, list(range(bl.out_channels)), 1.0, False)
            exact = False
            continue
        pslot, pj = origin
        pgene, pbl = Q.genome.generator.blocks[pj], Q.layout[pj]
        ok = True
        if cur.parent == pslot and cur.index == pj and len(cur.src) == bl.in_channels and \
                max(cur.src) < pbl.in_channels:
            m_in = cur
            ok = cur.exact
        else:  # the maps do not correspond (a block removed, a crossover point): match by weight
            m_in = MapSource(pslot, pj, _choose(memo, f"in{j}", bl.in_channels, Q.importance(pj), seed), 1.0)
            ok = False
        p_identity_skip = pgene.residual and pbl.in_channels == pbl.out_channels
        c_identity_skip = gene.residual and bl.in_channels == bl.out_channels
        if c_identity_skip and p_identity_skip and m_in is cur:
            out_src = list(m_in.src)
            memo.setdefault(f"map{j + 1}", out_src)
        else:
            out_src = _choose(memo, f"map{j + 1}", bl.out_channels, Q.importance(pj + 1), seed)
        ok = ok and bl.out_channels >= pbl.out_channels  # narrowing drops channels

        # convolution: rows from out_src, columns read m_in, kernel refitted
        km = kernel_map(pbl.upsample, pgene.kernel, bl.upsample, gene.kernel)
        if km is None:  # upsampling switched on or off (the layout shifted): fit the filters as if
            # the refine block were a nearest-upsampling one, so the kernel keeps its shape
            # (a plain convolution on either side keeps its filters as they are)
            def twin(kind, other):
                return (other if other in ("nearest", "bilinear") else "nearest") if kind == "none" else kind
            km = (kernel_map(twin(pbl.upsample, bl.upsample), pgene.kernel,
                             twin(bl.upsample, pbl.upsample), gene.kernel)[0], False)
        conv_scale = torch.ones(bl.out_channels, dtype=torch.float64)
        conv_shift = None
        if km is None:
            ok = False
            w_c = None
        else:
            kmat, kexact = km
            ok = ok and kexact
            w = _canon(pbl.upsample, Q.t(f"blocks.{pj}.conv.weight"))[out_src]
            w = _read_input(w, m_in, seed, f"conv{j}")
            w_c = torch.einsum("oin,cn->oic", w, kmat)
            b_p = _bias_canon(pbl.upsample, Q.t(f"blocks.{pj}.conv.bias"))[out_src]
            b_c = b_p if (bl.upsample == "pixelshuffle") == (pbl.upsample == "pixelshuffle") else (
                b_p.expand(-1, 4) if bl.upsample == "pixelshuffle" else b_p.mean(1, keepdim=True))

        # normalisation
        pn, cn = pgene.norm, gene.norm
        qn = f"blocks.{pj}.norm."
        if pn == cn and cn != "none":
            for part in ("weight", "bias", "running_mean", "running_var"):
                if Q.has(qn + part) and pre + "norm." + part in base:
                    put(pre + "norm." + part, Q.t(qn + part)[out_src])
            if Q.has(qn + "num_batches_tracked") and pre + "norm.num_batches_tracked" in base:
                put(pre + "norm.num_batches_tracked", Q.state[qn + "num_batches_tracked"])
            if cn == "group" and out_src != list(range(pbl.out_channels)):
                ok = False
        elif pn == "batch" and cn == "none" and w_c is not None:
            # fold the running statistics into the convolution (exact in eval mode)
            sd = (Q.t(qn + "running_var") + 1e-5).sqrt()[out_src]
            gam, bet, mu = Q.t(qn + "weight")[out_src], Q.t(qn + "bias")[out_src], Q.t(qn + "running_mean")[out_src]
            conv_scale = gam / sd
            conv_shift = bet - mu * gam / sd  # the noise scale is folded below too
        elif pn == cn:  # none and none
            pass
        elif cn == "batch" and pn == "none":
            ok = False  # identity in eval mode (the fresh running stats), not in training
        else:
            for part in ("weight", "bias"):
                if Q.has(qn + part) and pre + "norm." + part in base:
                    put(pre + "norm." + part, Q.t(qn + part)[out_src])
            ok = False
        if w_c is not None:
            shape = [-1] + [1] * (w_c.dim() - 1)
            w_c = w_c * conv_scale.view(shape)
            b_c = b_c * conv_scale.view(-1, 1)
            if conv_shift is not None:
                b_c = b_c + conv_shift.view(-1, 1)
            put(pre + "conv.weight", _uncanon(bl.upsample, w_c, gene.kernel))
            put(pre + "conv.bias", _bias_uncanon(bl.upsample, b_c))

        # noise
        if gene.noise and pgene.noise:
            put(pre + "noise.scale", Q.t(f"blocks.{pj}.noise.scale")[:, out_src] * conv_scale.view(1, -1, 1, 1))
        elif pgene.noise and not gene.noise:
            ok = False
        if gene.activation != pgene.activation:
            ok = False

        # residual path
        out_scale = 1.0
        has_skip, p_has_skip = pre + "skip.weight" in base, Q.has(f"blocks.{pj}.skip.weight")
        if gene.residual and pgene.residual:
            if has_skip and p_has_skip:
                sk = Q.t(f"blocks.{pj}.skip.weight")[out_src]
                put(pre + "skip.weight", _read_input(sk, m_in, seed, f"skip{j}"))
            elif has_skip:  # the parent's skip was the identity: a channel copy does the same
                put(pre + "skip.weight", _copy_matrix(out_src, m_in, pbl.in_channels, seed, f"skip{j}"))
                ok = ok and set(out_src) <= set(m_in.src)
            elif p_has_skip or m_in.scale != 1.0:
                ok = False
        elif gene.residual:  # switched on: silence the new skip if it has weights
            if has_skip:
                put(pre + "skip.weight", torch.zeros_like(base[pre + "skip.weight"]))
            else:
                ok = False
            out_scale = 1 / SQRT2
        elif pgene.residual:  # switched off: the branch alone, scaled as before
            ok = False
            out_scale = SQRT2
        if bl.upsample != pbl.upsample and not (km and km[1]):
            ok = False
        cur = MapSource(pslot, pj + 1, out_src, out_scale, ok)
        exact = exact and ok

    # -- to RGB and the output activation, from the stem's parent --
    if P is not None:
        n_last = len(P.layout)
        if cur.parent == sp and cur.index == n_last and max(cur.src) < P.layout[-1].out_channels:
            m = cur
        else:
            m = MapSource(sp, n_last, _choose(memo, "rgb", blocks[-1].out_channels, P.importance(n_last), seed), 1.0)
            exact = False
        w = _read_input(P.t("to_rgb.weight"), m, seed, "rgb")
        b = P.t("to_rgb.bias")
        po, co = P.genome.generator.output, g.output
        if (po, co) == ("tanh", "sigmoid"):
            w, b = w * 2, b * 2
        elif (po, co) == ("sigmoid", "tanh"):
            w, b = w / 2, b / 2
        elif po != co:
            exact = False
        put("to_rgb.weight", w)
        put("to_rgb.bias", b)
        exact = exact and m.exact
    return Morphed(out, derived, exact)


def _copy_matrix(out_src: list[int], m_in: MapSource, n_parent: int, seed: int, key: str) -> torch.Tensor:
    """A 1x1 convolution whose output channel j copies parent channel ``out_src[j]`` out
    of the child map ``m_in`` (split among its copies there, undoing its scale)."""
    w = torch.zeros(len(out_src), n_parent, 1, 1, dtype=torch.float64)
    for j, c in enumerate(out_src):
        w[j, c] = 1.0
    return _read_input(w, m_in, seed, key)


def _identity_block(j, gene, bl, cur: MapSource, origin, ps, put, base, seed):
    """Set up block ``j`` to pass its input through: a silent residual branch and, when its
    channels differ, a 1x1 skip that copies (sqrt(2) x, undoing the block's 1/sqrt(2))."""
    pre = f"blocks.{j}."
    ok = cur.exact and gene.residual and bl.upsample == "none"
    if pre + "norm.weight" in base:
        put(pre + "norm.weight", torch.zeros_like(base[pre + "norm.weight"]))
        put(pre + "norm.bias", torch.zeros_like(base[pre + "norm.bias"]))
    else:
        put(pre + "conv.weight", torch.zeros_like(base[pre + "conv.weight"]))
        put(pre + "conv.bias", torch.zeros_like(base[pre + "conv.bias"]))
    if pre + "noise.scale" in base:
        put(pre + "noise.scale", torch.zeros_like(base[pre + "noise.scale"]))
    if not gene.residual:
        return MapSource(None, j + 1, list(range(bl.out_channels)), 1.0, False), False
    if pre + "skip.weight" in base:
        n_in = len(cur.src)
        if bl.out_channels >= n_in:
            extra = torch.randint(n_in, (bl.out_channels - n_in,), generator=_gen(seed, f"id{j}")).tolist()
            pick = list(range(n_in)) + extra
        else:
            pick = list(range(bl.out_channels))
            ok = False
        w = torch.zeros(bl.out_channels, n_in, 1, 1, dtype=torch.float64)
        # a child channel picked several times is copied whole each time; the reader splits
        for o, i in enumerate(pick):
            w[o, i] = SQRT2
        put(pre + "skip.weight", w)
        return MapSource(cur.parent, cur.index, [cur.src[i] for i in pick], cur.scale, ok), ok
    return MapSource(cur.parent, cur.index, list(cur.src), cur.scale / SQRT2, ok), ok
