"""The genes of an autoregressive (AR) individual, their ranges and their variation.

They sit below ``genome`` (which holds them as ``Genome.ar``); the model, training and
sampling that read them are the package ``evoart.autoregressive``.

An AR individual quantises images to a palette of K colours fitted to the training data
and trains a small causal transformer to predict one token after another in a scan order.
This module never imports torch, so genes can be read, checked and varied anywhere.

Compute: one training step feeds ``batch_size`` windows of ``context`` scan steps each
(a 32 px image is 1,024 steps); ``estimate_ar_step_macs`` counts its multiply-adds and
``validate_ar`` holds it under the project's cap (``genome_limits.MAX_STEP_MACS_32``), as for a
GAN. The context is what makes wide models affordable: attention over 1,024 steps costs
more than the weights at these widths.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .genome_limits import MAX_STEP_MACS_32, GenomeError, build_part, check_choice, check_range

# ---- vocabularies and ranges -----------------------------------------------------------------

# Scan orders the model is trained in. The model is told the next position at every step
# (any-order queries), so the vocabulary grows without changing the network. "pyramid" is
# next-scale prediction (token maps of 1 x 1, 2 x 2, ... up to the run's size, each scale
# conditioned on every coarser one; ``evoart.autoregressive.pyramid``); within a scale its
# tokens come in the order of the ``within`` gene.
SCAN_ORDERS = ("raster", "hilbert", "pyramid")
FLAT_SCANS = ("raster", "hilbert")  # one token per pixel, a permutation of the pixels (``scans``)
# Within a pyramid's scale: all at once ("parallel", as VAR), or one token at a time in
# raster, Hilbert or geodesic order. The geodesic order depends on the coarser scale
# already generated (``evoart.autoregressive.geodesic``); a pyramid with it is what the
# gallery and the presets call the geodesic scan.
WITHIN_ORDERS = ("parallel", "raster", "hilbert", "geodesic")
# the geodesic cost's edge weight: cost = 1 + lambda * |grad I|, I in [0, 1] per pixel; 200
# makes the weakest edge of the two-region test images cost more than a path round a
# region of a 32 px image, and crossings level off from there (docs/GEODESIC.md)
GEO_LAMBDA = (0.0, 400.0)
GEO_SEEDS = ("extrema", "random", "centre")  # where the geodesic fronts start in each scale
# The pyramid's genes, at the values every genome had before they existed: a raster or
# Hilbert genome leaves them out of its JSON and hashes as it did (``ARGenes.to_dict``).
LATER_AR_GENES = {"within": "parallel", "geo_lambda": 200.0, "geo_seeds": "extrema"}
PYRAMID_GENES = tuple(LATER_AR_GENES)
PALETTE = (16, 256)            # K, the number of palette colours (tokens)
WIDTH = (32, 256)              # model width, a multiple of 16
LAYERS = (1, 6)
HEADS = (1, 2, 4, 8)           # width / heads (the head size) must be at least 8
MLP_RATIOS = (1, 2, 4)         # hidden width of each block's MLP, in multiples of the width
CONTEXTS = (64, 128, 256, 512, 1024)  # scan steps a token can look back over (a 32 px image is 1,024)
BATCH_SIZES = (1, 2, 4, 8, 16)  # windows of `context` steps per training step
LR = (1e-4, 1e-2)              # AdamW learning rate, evolved on a log scale
TEMPERATURE = (0.5, 1.5)       # sampling temperature: below 1 sharper, above 1 wilder

# Sampling cap: 64 samples at 32 px must take at most 10 s on one core of this project's
# CPU (issue 17). Sampling is one step at a time, so its cost is not the training MACs:
# ``estimate_ar_sample_cost`` counts the weights' multiply-adds, attention over the cached
# window weighted by ATTENTION_WEIGHT (batched one-query products run about 5x slower per
# multiply-add than the weight matrices) and a fixed cost per layer and step
# (STEP_OVERHEAD, in multiply-add equivalents per image). Fitted to seven designs on the
# 2-core CI machine under load (benchmarks/ar_sampling.py, docs/FAMILIES.md: seconds =
# 0.057 s per G equivalent for 64 images, residuals under 0.4 s); the cap is about 7 s.
ATTENTION_WEIGHT = 5.0
STEP_OVERHEAD = 120e3
MAX_SAMPLE_COST_32 = 2.0e9

# Random genes start under half the cap, as random GAN genomes do: evolution may grow them.
INITIAL_STEP_MACS_32 = MAX_STEP_MACS_32 / 2


@dataclass(frozen=True)
class ARGenes:
    """What evolves in an autoregressive individual (defaults: the ``ar-raster`` preset)."""

    palette: int = 64
    scan: str = "raster"
    width: int = 96
    layers: int = 3
    heads: int = 4
    mlp_ratio: int = 2
    context: int = 128
    batch_size: int = 16
    lr: float = 2e-3
    temperature: float = 1.0
    within: str = "parallel"       # pyramid only: the order within a scale
    geo_lambda: float = 200.0      # pyramid with the geodesic order only
    geo_seeds: str = "extrema"     # the same

    def to_dict(self) -> dict[str, Any]:
        """The genes as JSON; the pyramid's genes only where they differ from their
        defaults, so genomes from before they existed keep their JSON and hash."""
        d = asdict(self)
        for name, old in LATER_AR_GENES.items():
            if d[name] == old:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, data: Any, where: str = "ar") -> "ARGenes":
        """Build and validate from parsed JSON; a GenomeError names the field."""
        return validate_ar(build_part(cls, data, where), where)

    def replace(self, **changes: Any) -> "ARGenes":
        return replace(self, **changes)


# ---- validation --------------------------------------------------------------------------

def validate_ar(genes: ARGenes, where: str = "ar") -> ARGenes:
    """Raise GenomeError naming the first gene outside its range; return the genes."""
    check_range(f"{where}.palette", genes.palette, *PALETTE)
    if not isinstance(genes.palette, int):
        raise GenomeError(f"{where}.palette: expected an integer, got {genes.palette!r}")
    check_choice(f"{where}.scan", genes.scan, SCAN_ORDERS)
    check_range(f"{where}.width", genes.width, *WIDTH)
    if genes.width % 16:
        raise GenomeError(f"{where}.width: {genes.width} is not a multiple of 16")
    check_choice(f"{where}.layers", genes.layers, tuple(range(LAYERS[0], LAYERS[1] + 1)))
    check_choice(f"{where}.heads", genes.heads, HEADS)
    if genes.width % genes.heads or genes.width // genes.heads < 8:
        raise GenomeError(f"{where}.heads: {genes.heads} heads do not split width {genes.width} "
                          "into heads of at least 8 channels")
    check_choice(f"{where}.mlp_ratio", genes.mlp_ratio, MLP_RATIOS)
    check_choice(f"{where}.context", genes.context, CONTEXTS)
    check_choice(f"{where}.batch_size", genes.batch_size, BATCH_SIZES)
    check_range(f"{where}.lr", genes.lr, *LR)
    check_range(f"{where}.temperature", genes.temperature, *TEMPERATURE)
    check_choice(f"{where}.within", genes.within, WITHIN_ORDERS)
    check_range(f"{where}.geo_lambda", genes.geo_lambda, *GEO_LAMBDA)
    check_choice(f"{where}.geo_seeds", genes.geo_seeds, GEO_SEEDS)
    step = estimate_ar_step_macs(genes, 32)
    if step > MAX_STEP_MACS_32 * 1.0001:
        raise GenomeError(
            f"{where}: one training step costs {step / 1e9:.1f} G multiply-adds at 32 px, over the cap of "
            f"{MAX_STEP_MACS_32 / 1e9:.1f} G; lower batch_size or context, or narrow the model")
    sample = estimate_ar_sample_cost(genes, 32)
    if sample > MAX_SAMPLE_COST_32 * 1.0001:
        raise GenomeError(
            f"{where}: sampling one 32 px image costs {sample / 1e9:.1f} G multiply-add equivalents, over the "
            f"cap of {MAX_SAMPLE_COST_32 / 1e9:.1f} G (64 samples in 10 s); shorten the context, or use a "
            "narrower or shallower model")
    return genes


# ---- cost --------------------------------------------------------------------------------

def pyramid_sizes(resolution: int) -> tuple[int, ...]:
    """The sides of a pyramid's token maps, coarsest first: 1, 2, 4, ... up to the
    resolution, each the ceiling of half the next (24 px: 1, 2, 3, 6, 12, 24)."""
    sizes = [int(resolution)]
    while sizes[-1] > 1:
        sizes.append((sizes[-1] + 1) // 2)
    return tuple(reversed(sizes))


def scan_steps(genes: ARGenes, resolution: int) -> int:
    """Tokens generated for one image: one per pixel, and for a pyramid one per cell of
    every scale (1,365 at 32 px against 1,024)."""
    if genes.scan == "pyramid":
        return sum(n * n for n in pyramid_sizes(resolution))
    return resolution * resolution


def is_parallel(genes: ARGenes) -> bool:
    """A pyramid whose scales come all at once: each scale in blocks of up to ``context``
    tokens that attend to each other both ways (none of them reads a token of its own
    scale), one pass per block."""
    return genes.scan == "pyramid" and genes.within == "parallel"


def scan_label(genes: ARGenes) -> str:
    """The scan's name for people: raster, hilbert, pyramid (within a scale all at once,
    raster or Hilbert: ``pyramid/raster``) or geodesic (a pyramid whose scales are filled
    in geodesic order)."""
    if genes.scan != "pyramid":
        return genes.scan
    if genes.within == "geodesic":
        return "geodesic"
    return "pyramid" if genes.within == "parallel" else f"pyramid/{genes.within}"


def window_length(genes: ARGenes, resolution: int) -> int:
    """Scan steps in one training window: the context, or the whole scan if smaller."""
    return min(genes.context, scan_steps(genes, resolution))


def estimate_ar_forward_macs_per_token(genes: ARGenes, resolution: int) -> float:
    """Multiply-adds of the forward pass for one token of a training window: per layer
    the four attention projections (4 d^2), the MLP (2 r d^2) and attention, scores and
    weighted sum, over on average half the window when causal (2 d * T/2) or over the
    whole block when a pyramid's scale comes all at once (2 d * T); then the output head."""
    d, T = genes.width, window_length(genes, resolution)
    attention = 2 * d * T if is_parallel(genes) else d * T
    per_layer = 4 * d * d + 2 * genes.mlp_ratio * d * d + attention
    return genes.layers * per_layer + d * genes.palette


def estimate_ar_step_macs(genes: ARGenes, resolution: int = 32) -> float:
    """Multiply-adds of one training step (backward counted as twice the forward)."""
    tokens = genes.batch_size * window_length(genes, resolution)
    return 3.0 * tokens * estimate_ar_forward_macs_per_token(genes, resolution)


def estimate_ar_sample_cost(genes: ARGenes, resolution: int = 32) -> float:
    """Multiply-add equivalents of sampling one image with the KV cache (see
    ATTENTION_WEIGHT): per step and layer the weights (4 d^2 + 2 r d^2), attention over the
    cached items (2 d n, n on average half the window in the first window, then three
    quarters of it) and the fixed per-step cost; then the output head. A pyramid whose
    scales come all at once takes one pass per block instead of one per token: the
    weights, attention over its block as whole matrices, and the fixed cost per pass."""
    d, steps = genes.width, scan_steps(genes, resolution)
    window = window_length(genes, resolution)
    weights = genes.layers * (4 + 2 * genes.mlp_ratio) * d * d + d * genes.palette
    if is_parallel(genes):
        passes = sum(-(-n * n // window) for n in pyramid_sizes(resolution))
        return steps * (weights + genes.layers * 2 * d * window) + passes * genes.layers * STEP_OVERHEAD
    n_avg = steps / 2 if steps <= window else 0.75 * window
    attention = genes.layers * 2 * d * n_avg
    return steps * (weights + ATTENTION_WEIGHT * attention + genes.layers * STEP_OVERHEAD)


def describe_ar(genes: ARGenes) -> str:
    """One line a person can read, e.g. ``AR hilbert K=64 96x3 h4 ctx256 T=1.0`` (a
    geodesic pyramid adds its edge weight and seeds: ``AR geodesic lambda=10 extrema K=64 ...``)."""
    geo = f" lambda={genes.geo_lambda:.3g} {genes.geo_seeds}" if genes.scan == "pyramid" and genes.within == "geodesic" else ""
    return (f"AR {scan_label(genes)}{geo} K={genes.palette} {genes.width}x{genes.layers} h{genes.heads} "
            f"ctx{genes.context} T={genes.temperature:.2g}")


# ---- random genes, mutation, crossover ---------------------------------------------------

def _weighted(rng: random.Random, options: dict):
    return rng.choices(list(options), weights=list(options.values()))[0]


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def _clamp(x: float, lo: float, hi: float) -> float:
    return float(min(hi, max(lo, x)))


def _step_choice(rng: random.Random, value, choices: tuple):
    """A neighbour of ``value`` in the ordered ``choices`` (one step up or down)."""
    i = choices.index(value) if value in choices else 0
    j = min(len(choices) - 1, max(0, i + rng.choice((-1, 1))))
    return choices[j]


def _heads_for(width: int, heads: int) -> int:
    """As many of ``heads`` as still divide ``width`` into heads of at least 8 channels."""
    while heads > 1 and (width % heads or width // heads < 8):
        heads //= 2
    return heads


def _narrower(g: ARGenes) -> ARGenes:
    """16 channels narrower, with the heads that still fit."""
    w = max(WIDTH[0], g.width - 16)
    return replace(g, width=w, heads=_heads_for(w, g.heads))


def repair_ar(genes: ARGenes, cap: float = MAX_STEP_MACS_32) -> ARGenes:
    """Genes inside every range and under the caps: heads that divide the width, then
    smaller batches, shorter contexts and narrower models until a training step fits
    ``cap``, then shorter contexts, narrower and shallower models until sampling fits."""
    g = genes
    palette = int(min(PALETTE[1], max(PALETTE[0], round(g.palette))))
    width = int(min(WIDTH[1], max(WIDTH[0], 16 * round(g.width / 16))))
    heads = _heads_for(width, g.heads if g.heads in HEADS else 4)
    g = replace(g, palette=palette, width=width, heads=heads,
                scan=g.scan if g.scan in SCAN_ORDERS else "raster",
                layers=int(min(LAYERS[1], max(LAYERS[0], g.layers))),
                mlp_ratio=g.mlp_ratio if g.mlp_ratio in MLP_RATIOS else 2,
                context=g.context if g.context in CONTEXTS else 256,
                batch_size=g.batch_size if g.batch_size in BATCH_SIZES else 4,
                lr=_clamp(g.lr, *LR), temperature=_clamp(g.temperature, *TEMPERATURE),
                within=g.within if g.within in WITHIN_ORDERS else "parallel",
                geo_lambda=_clamp(g.geo_lambda, *GEO_LAMBDA),
                geo_seeds=g.geo_seeds if g.geo_seeds in GEO_SEEDS else "extrema")
    # the pyramid's genes rest at their defaults where nothing reads them, so two genomes
    # that train the same model have the same JSON and hash
    if g.scan != "pyramid":
        g = replace(g, **LATER_AR_GENES)
    elif g.within != "geodesic":
        g = replace(g, geo_lambda=LATER_AR_GENES["geo_lambda"], geo_seeds=LATER_AR_GENES["geo_seeds"])
    # Shrink what costs most per quality first: batch, then context, then width, then layers.
    while estimate_ar_step_macs(g, 32) > cap:
        if g.batch_size > BATCH_SIZES[0]:
            g = replace(g, batch_size=BATCH_SIZES[BATCH_SIZES.index(g.batch_size) - 1])
        elif g.context > CONTEXTS[0]:
            g = replace(g, context=CONTEXTS[CONTEXTS.index(g.context) - 1])
        elif g.width > WIDTH[0]:
            g = _narrower(g)
        elif g.layers > LAYERS[0]:
            g = replace(g, layers=g.layers - 1)
        else:
            break
    while estimate_ar_sample_cost(g, 32) > MAX_SAMPLE_COST_32:
        if g.context > 256:
            g = replace(g, context=CONTEXTS[CONTEXTS.index(g.context) - 1])
        elif g.width > 128:
            g = _narrower(g)
        elif g.layers > LAYERS[0]:
            g = replace(g, layers=g.layers - 1)
        elif g.context > CONTEXTS[0]:
            g = replace(g, context=CONTEXTS[CONTEXTS.index(g.context) - 1])
        else:
            break
    return g


def random_ar_genes(rng: random.Random, scan: str | None = None) -> ARGenes:
    """AR genes drawn from a distribution of cheap, trainable designs (a step under half
    the cap): palettes of 32 to 128 colours mostly, 2 to 4 layers, learning rates near 2e-3."""
    g = ARGenes(
        palette=_weighted(rng, {16: 1, 32: 3, 64: 4, 128: 2, 256: 1}),
        scan=scan if scan is not None else rng.choice(SCAN_ORDERS),
        width=rng.choice((48, 64, 96, 96, 128)),
        layers=_weighted(rng, {1: 1, 2: 3, 3: 3, 4: 2, 6: 1}),
        heads=_weighted(rng, {1: 1, 2: 2, 4: 3, 8: 1}),
        mlp_ratio=_weighted(rng, {1: 1, 2: 3, 4: 2}),
        context=_weighted(rng, {64: 1, 128: 2, 256: 3, 512: 2, 1024: 1}),
        batch_size=_weighted(rng, {2: 1, 4: 3, 8: 3, 16: 1}),
        lr=_log_uniform(rng, 5e-4, 5e-3),
        temperature=_clamp(rng.gauss(1.0, 0.1), *TEMPERATURE),
    )
    if g.scan == "pyramid":  # drawn only for a pyramid, so raster and Hilbert draws stay as they were
        g = replace(g, within=rng.choice(WITHIN_ORDERS))
        if g.within == "geodesic":
            g = replace(g, geo_lambda=_log_uniform(rng, 20.0, GEO_LAMBDA[1]), geo_seeds=rng.choice(GEO_SEEDS))
    return repair_ar(g, INITIAL_STEP_MACS_32)


def mutate_ar_genes(genes: ARGenes, rng: random.Random, rate: float = 0.3) -> ARGenes:
    """Each gene changes with probability ``rate`` (at least one changes): numbers by a
    multiplicative step, choices to a neighbour, the scan order to another order. The
    result is repaired under the cap. The pyramid's own genes vary only in a pyramid, and
    the geodesic ones only in a geodesic pyramid (elsewhere they rest at their defaults)."""
    g = genes
    names = [f.name for f in fields(ARGenes) if f.name not in PYRAMID_GENES or (
        g.scan == "pyramid" and (f.name == "within" or g.within == "geodesic"))]
    forced = rng.choice(names)
    for name in names:
        if name != forced and rng.random() >= rate:
            continue
        if name == "palette":
            g = replace(g, palette=int(round(g.palette * math.exp(rng.gauss(0.0, 0.4)))))
        elif name == "scan":
            others = [s for s in SCAN_ORDERS if s != g.scan]
            g = replace(g, scan=rng.choice(others) if others else g.scan)
        elif name == "width":
            g = replace(g, width=g.width + 16 * rng.choice((-2, -1, 1, 2)))
        elif name == "layers":
            g = replace(g, layers=g.layers + rng.choice((-1, 1)))
        elif name == "heads":
            g = replace(g, heads=_step_choice(rng, g.heads, HEADS))
        elif name == "mlp_ratio":
            g = replace(g, mlp_ratio=_step_choice(rng, g.mlp_ratio, MLP_RATIOS))
        elif name == "context":
            g = replace(g, context=_step_choice(rng, g.context, CONTEXTS))
        elif name == "batch_size":
            g = replace(g, batch_size=_step_choice(rng, g.batch_size, BATCH_SIZES))
        elif name == "lr":
            g = replace(g, lr=g.lr * math.exp(rng.gauss(0.0, 0.4)))
        elif name == "temperature":
            g = replace(g, temperature=g.temperature + rng.gauss(0.0, 0.1))
        elif name == "within":
            g = replace(g, within=rng.choice([w for w in WITHIN_ORDERS if w != g.within]))
        elif name == "geo_lambda":
            g = replace(g, geo_lambda=max(5.0, g.geo_lambda) * math.exp(rng.gauss(0.0, 0.5)))
        elif name == "geo_seeds":
            g = replace(g, geo_seeds=rng.choice([m for m in GEO_SEEDS if m != g.geo_seeds]))
    return repair_ar(g)


def crossover_ar_genes(a: ARGenes, b: ARGenes, rng: random.Random) -> ARGenes:
    """Uniform crossover: each gene from either parent; the learning rate and temperature
    may blend (geometric and arithmetic means). Repaired under the cap."""
    kwargs = {}
    pyramid = "pyramid" in (a.scan, b.scan)  # the pyramid's genes are drawn only where one parent has them
    for f in fields(ARGenes):
        if f.name in PYRAMID_GENES and not pyramid:
            continue
        va, vb = getattr(a, f.name), getattr(b, f.name)
        kwargs[f.name] = va if rng.random() < 0.5 else vb
    if rng.random() < 0.5:
        kwargs["lr"] = math.sqrt(a.lr * b.lr)
    if rng.random() < 0.5:
        kwargs["temperature"] = 0.5 * (a.temperature + b.temperature)
    return repair_ar(ARGenes(**kwargs))
