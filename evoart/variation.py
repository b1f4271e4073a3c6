"""Variation: random genomes, Sims-style mutation, crossover and repair.

Every operator takes an explicit ``random.Random`` so that a run is reproducible and its
RNG state can be checkpointed. Every operator returns a genome that builds (``repair``
runs last) together with an ``Inheritance`` map that says which parent each part of the
child came from, so the child can start from its parents' trained tensors.

Families (``Genome.family``): mutation and crossover stay within a family. Every family
shares the generator, discriminator, loss and training genes and varies them alike; a
family's own genes (a VAE's ``VAEGenes``, an AR model's ``ARGenes``) vary only in its genomes, drawn after the shared
ones, so a GAN-only run draws the same numbers as before families existed. ``crossover``
refuses parents of two families (``ga`` pairs a parent only with one of its own family);
``switch_family``, rare and only in runs that allow several families, replaces a genome by a
fresh random one of another family.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace

from . import genome as G
from .errors import EvoartError
from .ar_genes import ARGenes, crossover_ar_genes, mutate_ar_genes, random_ar_genes, repair_ar
from .genome import Block, DiscriminatorGenes, Genome, GeneratorGenes, LossGenes, MateGenes, TrainingGenes, VAEGenes


class VariationError(EvoartError, ValueError):
    """An operator asked to do what it cannot: mate two families, draw an unknown family."""


@dataclass
class Inheritance:
    """Where each part of a child came from: indices into the child's parent list.

    ``blocks[i]`` is (parent, block index in that parent) or None for a new block;
    ``stem`` is the parent whose latent projection (and output layer) the child keeps;
    ``discriminator`` the parent whose D, optimiser and judge the child continues;
    ``identity_blocks`` the child blocks inserted to start as an identity (add and duplicate:
    ``morph.morph_generator`` silences their residual branch, so the child computes the
    parent's function).
    """

    blocks: list[tuple[int, int] | None] = field(default_factory=list)
    stem: int | None = 0
    discriminator: int | None = 0
    identity_blocks: tuple[int, ...] = ()

    def to_dict(self) -> dict:
        out = {"blocks": [list(b) if b else None for b in self.blocks],
               "stem": self.stem, "discriminator": self.discriminator}
        if self.identity_blocks:
            out["identity_blocks"] = list(self.identity_blocks)
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "Inheritance":
        return cls([tuple(b) if b else None for b in d["blocks"]], d["stem"], d["discriminator"],
                   tuple(d.get("identity_blocks", ())))

    @classmethod
    def identity(cls, genome: Genome) -> "Inheritance":
        return cls([(0, i) for i in range(len(genome.generator.blocks))], 0, 0)


# ---- helpers -----------------------------------------------------------------------------

def _round8(x: float, lo: int, hi: int) -> int:
    return int(min(hi, max(lo, 8 * round(x / 8))))


def _narrower(c: int, lo: int, hi: int) -> int:
    """About 20% fewer channels, and at least 8 fewer while above the minimum."""
    return min(_round8(c * 0.8, lo, hi), max(lo, c - 8))


def _choice(value, choices: tuple, default):
    """``value`` if it is one of ``choices`` (True is not taken for 1), else ``default``."""
    return value if value in choices and not isinstance(value, bool) else default


def _clamp(x: float, lo: float, hi: float) -> float:
    return float(min(hi, max(lo, x)))


def _log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def _weighted(rng: random.Random, options: dict):
    return rng.choices(list(options), weights=list(options.values()))[0]


def _scale(rng: random.Random, x: float, sigma: float) -> float:
    """Multiplicative perturbation: x * exp(N(0, sigma))."""
    return x * math.exp(rng.gauss(0.0, sigma))


# ---- random genomes ----------------------------------------------------------------------

def random_block(rng: random.Random, channels: int, upsample: str | None = None) -> Block:
    return Block(
        channels=_round8(channels, *G.CHANNELS),
        upsample=upsample or _weighted(rng, {"nearest": 3, "transposed": 3, "bilinear": 2,
                                             "pixelshuffle": 2}),
        kernel=_weighted(rng, {3: 8, 5: 1, 1: 1}),
        norm=_weighted(rng, {"batch": 4, "none": 2, "instance": 1, "group": 2}),
        activation=_weighted(rng, {"relu": 4, "lrelu": 4, "silu": 1, "elu": 1, "gelu": 1,
                                   "sin": 1, "tanh": 0.5}),
        residual=rng.random() < 0.2,
        noise=rng.random() < 0.15,
    )


# Random genomes start cheaper than the cap allows (half of it): evolution may grow them.
INITIAL_STEP_MACS_32 = G.MAX_STEP_MACS_32 / 2


def random_genome(rng: random.Random, resolution: int = 32, family: str = "gan") -> Genome:
    """A genome of ``family`` drawn from a distribution that favours cheap, trainable
    designs: three or four blocks with channels halving, learning rates near 1e-3, batch
    32 mostly, and a training step costing at most half the compute cap."""
    if family != "gan" and family not in RANDOM_FAMILY_GENES:
        raise VariationError(f"no random genomes of family {family!r} in this build "
                             f"(families: {', '.join(G.FAMILIES)})")
    cheapest = None
    for _ in range(50):
        genome = _draw_genome(rng, resolution)
        if family != "gan":  # the shared genes as drawn, and the family's own
            genome = repair(genome.replace(family=family, **{family: RANDOM_FAMILY_GENES[family](rng)}))
        cost = G.estimate_step_macs(genome, 32)
        if cost <= INITIAL_STEP_MACS_32:
            return genome
        if cheapest is None or cost < cheapest[0]:
            cheapest = (cost, genome)
    return cheapest[1]


def _draw_genome(rng: random.Random, resolution: int) -> Genome:
    n_up = G.upsamplings_needed(resolution)
    stem = rng.choice([64, 96, 128, 128, 160])
    blocks = []
    c = stem
    for _ in range(n_up):
        c = max(16, c // 2 if rng.random() < 0.8 else c)
        blocks.append(random_block(rng, c))
    if rng.random() < 0.3:
        blocks.append(random_block(rng, max(8, c // 2), upsample="none"))
    gen = GeneratorGenes(
        latent=rng.choice([32, 64, 64, 100, 128]),
        stem_channels=stem,
        blocks=tuple(blocks),
        output=_weighted(rng, {"tanh": 6, "sigmoid": 1, "clamp": 1, "sin": 1}),
    )
    disc = DiscriminatorGenes(
        family=_weighted(rng, {"dcgan": 2, "resnet": 1}),
        width=rng.choice([16, 16, 24, 32, 32, 48]),
        norm=_weighted(rng, {"spectral": 3, "none": 2, "batch": 2, "layer": 1, "instance": 1}),
        # every representation equally often: evolution chooses (docs/DISCRIMINATOR.md)
        input=rng.choice(G.D_INPUTS),
    )
    weights = {t: 0.0 for t in G.LOSS_TERMS}
    if rng.random() < 0.6:
        weights[rng.choice(G.LOSS_TERMS)] = 1.0
    else:
        for t in G.LOSS_TERMS:
            weights[t] = round(rng.random(), 3)
    loss = LossGenes(
        **weights,
        r1=_log_uniform(rng, 0.01, 10.0) if rng.random() < 0.3 else 0.0,
        feature_matching=_log_uniform(rng, 0.01, 1.0) if rng.random() < 0.25 else 0.0,
        mode_seeking=_log_uniform(rng, 0.01, 0.3) if rng.random() < 0.2 else 0.0,
    )
    training = TrainingGenes(
        lr_g=_log_uniform(rng, 4e-4, 3e-3),
        lr_d=_log_uniform(rng, 4e-4, 3e-3),
        beta1=_clamp(rng.choice([0.0, 0.5, 0.5]) + rng.gauss(0, 0.05), *G.BETA1),
        beta2=rng.choice([0.99, 0.99, 0.999]),
        d_steps=_weighted(rng, {1: 6, 2: 2, 3: 1}),
        batch_size=_weighted(rng, {32: 6, 16: 2, 64: 1}),
        ema=rng.choice([0.0, 0.99, 0.99, 0.995, 0.999]),
    )
    return repair(Genome(gen, disc, loss, training))


def random_vae_genes(rng: random.Random) -> VAEGenes:
    """A VAE's own genes: mostly a plain encoder, beta around 0.5 (at 0.1 and below the
    posteriors stray so far from the prior that its samples come out as noise; far above
    1 they blur: measured, docs/FAMILIES.md), every reconstruction loss equally often, and
    an adversarial term in a third of them."""
    return VAEGenes(
        encoder_family=_weighted(rng, {"dcgan": 2, "resnet": 1}),
        encoder_width=rng.choice([16, 16, 24, 32, 32, 48]),
        encoder_norm=_weighted(rng, {"none": 3, "batch": 2, "layer": 1, "instance": 1}),
        reconstruction=rng.choice(G.RECONSTRUCTIONS),
        beta=_log_uniform(rng, 0.15, 1.5),
        adversarial=_log_uniform(rng, 0.01, 0.2) if rng.random() < 1 / 3 else 0.0,
    )


#: How each family with genes of its own draws them (a further family adds its drawer here,
#: and its repair, mutation and crossover of them below).
RANDOM_FAMILY_GENES = {"vae": random_vae_genes, "ar": random_ar_genes}


def _repair_vae(v: VAEGenes) -> VAEGenes:
    adversarial = _clamp(v.adversarial, *G.VAE_ADVERSARIAL)
    return VAEGenes(
        encoder_family=v.encoder_family if v.encoder_family in G.D_FAMILIES else "dcgan",
        encoder_width=_round8(v.encoder_width, *G.D_WIDTH),
        encoder_norm=v.encoder_norm if v.encoder_norm in G.ENCODER_NORMS else "none",
        reconstruction=v.reconstruction if v.reconstruction in G.RECONSTRUCTIONS else "mse",
        beta=_clamp(v.beta, *G.VAE_BETA),
        # a weight too small to matter switches the term (and its discriminator) off
        adversarial=0.0 if adversarial < 1e-3 else round(adversarial, 6),
    )


# ---- repair ------------------------------------------------------------------------------

def repair(genome: Genome) -> Genome:
    """Bring any genome back inside the schema: clamp and round numbers, fix the block
    count, make sure some adversarial loss is on, and shrink channels until the compute
    cap holds. Never rejects: every genome builds afterwards."""
    g = genome.generator
    blocks = list(g.blocks)[: G.BLOCKS[1]] or [Block(channels=32)]
    blocks = [
        replace(
            b,
            channels=_round8(b.channels, *G.CHANNELS),
            upsample=b.upsample if b.upsample in G.UPSAMPLE_KINDS else "nearest",
            kernel=_choice(b.kernel, G.KERNEL_SIZES, 3),
            norm=b.norm if b.norm in G.G_NORMS else "none",
            activation=b.activation if b.activation in G.ACTIVATIONS else "relu",
            residual=bool(b.residual),
            noise=bool(b.noise),
        )
        for b in blocks
    ]
    gen = GeneratorGenes(
        latent=int(min(G.LATENT[1], max(G.LATENT[0], round(g.latent)))),
        stem_channels=_round8(g.stem_channels, *G.STEM_CHANNELS),
        blocks=tuple(blocks),
        output=g.output if g.output in G.OUTPUT_ACTIVATIONS else "tanh",
    )
    d = genome.discriminator
    disc = DiscriminatorGenes(
        family=d.family if d.family in G.D_FAMILIES else "dcgan",
        width=_round8(d.width, *G.D_WIDTH),
        norm=d.norm if d.norm in G.D_NORMS else "spectral",
        input=d.input if d.input in G.D_INPUTS else "pixels",
    )
    lo = genome.loss
    # Round before checking: a weight that rounds to 0 must not leave the genome without
    # any adversarial loss (validate would then reject what repair returns).
    adv = {t: round(_clamp(getattr(lo, t), *G.LOSS_WEIGHT), 6) for t in G.LOSS_TERMS}
    if sum(adv.values()) <= 0:
        adv["nonsaturating"] = 1.0
    loss = LossGenes(
        **adv,
        r1=_clamp(lo.r1, *G.R1),
        feature_matching=_clamp(lo.feature_matching, *G.FEATURE_MATCHING),
        mode_seeking=_clamp(lo.mode_seeking, *G.MODE_SEEKING),
    )
    t = genome.training
    ema = _clamp(t.ema, *G.EMA)
    training = TrainingGenes(
        lr_g=_clamp(t.lr_g, *G.LR),
        lr_d=_clamp(t.lr_d, *G.LR),
        beta1=_clamp(t.beta1, *G.BETA1),
        beta2=_clamp(t.beta2, *G.BETA2),
        d_steps=_choice(t.d_steps, G.D_STEPS, 1),
        batch_size=min(G.BATCH_SIZES, key=lambda b: abs(b - t.batch_size)),
        ema=0.0 if ema < 0.9 else ema,
    )
    family = genome.family if genome.family in G.FAMILIES else "gan"
    vae = _repair_vae(genome.vae or VAEGenes()) if family == "vae" else None
    # An AR genome's own genes are repaired under both of its caps (training step and
    # sampling: ar_genes.repair_ar); its GAN genes rest but are repaired like any others.
    ar = repair_ar(genome.ar or ARGenes()) if family == "ar" else None
    out = Genome(gen, disc, loss, training, family=family, vae=vae, ar=ar,
                 mate=repair_mate(genome.mate))
    # Shrink the widest layers until the generator fits the compute cap.
    while G.estimate_g_macs(out, 32) > G.MAX_G_MACS_32:
        gg = out.generator
        widest = max([gg.stem_channels] + [b.channels for b in gg.blocks])
        new_blocks = tuple(
            replace(b, channels=_narrower(b.channels, *G.CHANNELS)) if b.channels == widest else b
            for b in gg.blocks
        )
        stem = _narrower(gg.stem_channels, *G.STEM_CHANNELS) if gg.stem_channels == widest else gg.stem_channels
        if new_blocks == gg.blocks and stem == gg.stem_channels:
            # Already at minimum widths: drop the last block (the most expensive map).
            new_blocks = gg.blocks[:-1] if len(gg.blocks) > 1 else gg.blocks
            if new_blocks == gg.blocks:
                break
        out = replace(out, generator=replace(gg, blocks=new_blocks, stem_channels=stem))
    while G.estimate_d_macs(out, 32) > G.MAX_D_MACS_32 and out.discriminator.width > G.D_WIDTH[0]:
        out = replace(out, discriminator=replace(out.discriminator, width=out.discriminator.width - 8))
    while (out.vae is not None and G.estimate_encoder_macs(out, 32) > G.MAX_D_MACS_32
           and out.vae.encoder_width > G.D_WIDTH[0]):
        out = replace(out, vae=replace(out.vae, encoder_width=out.vae.encoder_width - 8))
    # A whole step over the cap: first fewer D steps, then a smaller batch, then narrower nets.
    while G.estimate_step_macs(out, 32) > G.MAX_STEP_MACS_32:
        tr = out.training
        if tr.d_steps > 1:
            out = replace(out, training=replace(tr, d_steps=tr.d_steps - 1))
        elif tr.batch_size > G.BATCH_SIZES[0]:
            out = replace(out, training=replace(tr, batch_size=tr.batch_size // 2))
        else:
            gg, dd = out.generator, out.discriminator
            new_blocks = tuple(replace(b, channels=_narrower(b.channels, *G.CHANNELS)) for b in gg.blocks)
            stem = _narrower(gg.stem_channels, *G.STEM_CHANNELS)
            width = _narrower(dd.width, *G.D_WIDTH)
            vae = out.vae and replace(out.vae, encoder_width=_narrower(out.vae.encoder_width, *G.D_WIDTH))
            if new_blocks == gg.blocks and stem == gg.stem_channels and width == dd.width and vae == out.vae:
                break
            out = replace(out, generator=replace(gg, blocks=new_blocks, stem_channels=stem),
                          discriminator=replace(dd, width=width), vae=vae)
    return G.validate(out)


# ---- mutation ----------------------------------------------------------------------------

def _mutate_block(rng: random.Random, b: Block, p: float, strength: float) -> Block:
    changes = {}
    if rng.random() < p:
        changes["channels"] = _round8(_scale(rng, b.channels, 0.35 * strength), *G.CHANNELS)
    if rng.random() < p * 0.5:
        changes["upsample"] = rng.choice(G.UPSAMPLE_KINDS)
    if rng.random() < p * 0.5:
        changes["kernel"] = rng.choice(G.KERNEL_SIZES)
    if rng.random() < p * 0.5:
        changes["norm"] = rng.choice(G.G_NORMS)
    if rng.random() < p * 0.5:
        changes["activation"] = rng.choice(G.ACTIVATIONS)
    if rng.random() < p * 0.3:
        changes["residual"] = not b.residual
    if rng.random() < p * 0.3:
        changes["noise"] = not b.noise
    return replace(b, **changes)


def identity_block(b: Block) -> Block:
    """The genes of a block inserted to start as an identity: a refine block (no
    upsampling) with a residual connection, whose branch the morphism silences. ReLU
    becomes leaky ReLU: a silenced branch outputs exactly 0, where ReLU has no gradient,
    so a ReLU branch would stay silent for ever; every other activation has f(0) = 0 and
    f'(0) > 0."""
    return replace(b, upsample="none", residual=True,
                   activation="lrelu" if b.activation == "relu" else b.activation)


def mutate(genome: Genome, rng: random.Random, strength: float = 1.0) -> tuple[Genome, Inheritance]:
    """Sims-style mutation: perturb numbers multiplicatively, swap categories, and add,
    remove, duplicate or re-type whole blocks. ``strength`` scales both how many genes
    change and by how much (1.0 = a few genes, gently).

    Added and duplicated blocks are identity blocks (``identity_block``): the child
    starts computing its parent's function (``morph``). Their genes are not perturbed
    further in the same mutation. A re-typed block keeps its place in the inheritance
    map, so the morphism keeps what of its tensors the new type can use.

    An AR genome mutates its own genes only (``ar_genes.mutate_ar_genes``: each with
    probability 0.15 x ``strength``, at least one); its resting GAN genes stay as they
    are, and the child continues its parent's model where shapes match."""
    p = min(1.0, 0.15 * strength)
    if genome.ar is not None:
        child = repair(genome.replace(ar=mutate_ar_genes(genome.ar, rng, rate=p)))
        return child, Inheritance.identity(child)
    g = genome.generator
    blocks = list(g.blocks)
    origin: list[tuple[int, int] | None] = [(0, i) for i in range(len(blocks))]
    fresh = [False] * len(blocks)  # inserted identity blocks: not perturbed further

    # Structural changes to the block list (at most one per mutation, as in Sims' nested
    # mutation: the structure changes rarely, the parameters often).
    r = rng.random()
    structural = min(0.6, 0.25 * strength)
    if r < structural:
        op = rng.choice(["add", "remove", "duplicate", "retype"])
        i = rng.randrange(len(blocks))
        if op == "add" and len(blocks) < G.BLOCKS[1]:
            c = blocks[i].channels
            blocks.insert(i + 1, identity_block(random_block(rng, c, upsample="none")))
            origin.insert(i + 1, None)
            fresh.insert(i + 1, True)
        elif op == "remove" and len(blocks) > G.BLOCKS[0]:
            del blocks[i], origin[i], fresh[i]
        elif op == "duplicate" and len(blocks) < G.BLOCKS[1]:
            blocks.insert(i + 1, identity_block(blocks[i]))
            origin.insert(i + 1, None)  # new tensors (silenced): input channels differ from the copy's
            fresh.insert(i + 1, True)
        elif op == "retype":
            blocks[i] = random_block(rng, blocks[i].channels, upsample=blocks[i].upsample)
    blocks = [b if new else _mutate_block(rng, b, p, strength) for b, new in zip(blocks, fresh)]

    latent = g.latent
    stem_c = g.stem_channels
    output = g.output
    if rng.random() < p:
        latent = int(round(_scale(rng, latent, 0.3 * strength)))
    if rng.random() < p:
        stem_c = _round8(_scale(rng, stem_c, 0.3 * strength), *G.STEM_CHANNELS)
    if rng.random() < p * 0.3:
        output = rng.choice(G.OUTPUT_ACTIVATIONS)

    d = genome.discriminator
    disc = d
    if rng.random() < p * 0.5:
        disc = replace(disc, family=rng.choice(G.D_FAMILIES))
    if rng.random() < p:
        disc = replace(disc, width=_round8(_scale(rng, d.width, 0.3 * strength), *G.D_WIDTH))
    if rng.random() < p * 0.5:
        disc = replace(disc, norm=rng.choice(G.D_NORMS))
    if rng.random() < p * 0.5:
        # what D looks at; its layers past the first are kept where shapes still match
        disc = replace(disc, input=rng.choice(G.D_INPUTS))

    lo = genome.loss
    loss = {}
    for term in G.LOSS_TERMS:
        w = getattr(lo, term)
        if rng.random() < p:
            w = _scale(rng, w, 0.5 * strength) if w > 0 else rng.random() * 0.5
        if rng.random() < p * 0.2:
            w = 0.0
        loss[term] = w
    for term, hi in (("r1", 10.0), ("feature_matching", 1.0), ("mode_seeking", 0.3)):
        w = getattr(lo, term)
        if rng.random() < p:
            w = _scale(rng, w, 0.6 * strength) if w > 0 else _log_uniform(rng, hi / 1000, hi)
        if rng.random() < p * 0.3:
            w = 0.0
        loss[term] = w

    t = genome.training
    tr = {
        "lr_g": _scale(rng, t.lr_g, 0.5 * strength) if rng.random() < p * 2 else t.lr_g,
        "lr_d": _scale(rng, t.lr_d, 0.5 * strength) if rng.random() < p * 2 else t.lr_d,
        "beta1": t.beta1 + rng.gauss(0, 0.15 * strength) if rng.random() < p else t.beta1,
        # beta2 and EMA live close to 1: perturb 1 - x multiplicatively.
        "beta2": 1 - _scale(rng, 1 - t.beta2, 0.5 * strength) if rng.random() < p else t.beta2,
        "d_steps": rng.choice(G.D_STEPS) if rng.random() < p * 0.5 else t.d_steps,
        "batch_size": rng.choice(G.BATCH_SIZES) if rng.random() < p * 0.5 else t.batch_size,
        "ema": t.ema,
    }
    if rng.random() < p:
        tr["ema"] = 0.0 if t.ema > 0 and rng.random() < 0.3 else 1 - _scale(rng, 1 - (t.ema or 0.99), 0.5 * strength)

    vae = _mutate_vae(rng, genome.vae, p, strength) if genome.vae is not None else None
    child = Genome(
        GeneratorGenes(latent=latent, stem_channels=stem_c, blocks=tuple(blocks), output=output),
        disc, LossGenes(**loss), TrainingGenes(**tr), family=genome.family, vae=vae,
        mate=genome.mate,  # mate genes: mutate_mate
    )
    child = repair(child)
    # repair may drop trailing blocks to meet the compute cap
    n = len(child.generator.blocks)
    return child, Inheritance(origin[:n], 0, 0, tuple(i for i in range(n) if fresh[i]))


def _mutate_vae(rng: random.Random, v: VAEGenes, p: float, strength: float) -> VAEGenes:
    """A VAE's own genes, perturbed as the shared ones are: numbers multiplicatively,
    categories swapped; the adversarial term switched on or off now and then."""
    changes = {}
    if rng.random() < p * 0.5:
        changes["encoder_family"] = rng.choice(G.D_FAMILIES)
    if rng.random() < p:
        changes["encoder_width"] = _round8(_scale(rng, v.encoder_width, 0.3 * strength), *G.D_WIDTH)
    if rng.random() < p * 0.5:
        changes["encoder_norm"] = rng.choice(G.ENCODER_NORMS)
    if rng.random() < p * 0.5:
        changes["reconstruction"] = rng.choice(G.RECONSTRUCTIONS)
    if rng.random() < p * 2:
        changes["beta"] = _scale(rng, v.beta, 0.5 * strength)
    if rng.random() < p:
        changes["adversarial"] = (_scale(rng, v.adversarial, 0.5 * strength) if v.adversarial > 0
                                  else _log_uniform(rng, 0.01, 0.2))
    if rng.random() < p * 0.3:
        changes["adversarial"] = 0.0
    return replace(v, **changes)


def switch_family(genome: Genome, rng: random.Random, families: tuple[str, ...],
                  resolution: int = 32) -> Genome:
    """The family-switch mutation: a fresh random genome of another of ``families`` (one
    is drawn uniformly among those other than ``genome``'s). Nothing carries over, so the
    child trains from scratch; with no other family allowed the genome is returned as it
    is."""
    others = [f for f in families if f != genome.family]
    if not others:
        return genome
    return random_genome(rng, resolution, family=rng.choice(others))


# ---- crossover ---------------------------------------------------------------------------

def crossover(a: Genome, b: Genome, rng: random.Random) -> tuple[Genome, Inheritance]:
    """Mate two genomes: graft the tail of one block list onto the head of the other
    (one cut point in each parent), blend the loss weights, take each training gene from
    either parent, and take the discriminator whole from one of them.

    Both parents must be of one family (``VariationError`` otherwise: their nets share no
    meaning). Two VAEs also mate their own genes: the encoder comes whole with the
    discriminator (``Inheritance.discriminator`` names that parent for both), the
    reconstruction loss from either parent, beta and the adversarial weight blended."""
    if a.family != b.family:
        raise VariationError(f"crossover mates genomes of one family, got {G.family_names.a_family(a.family)} and {G.family_names.a_family(b.family)}")
    if a.ar is not None:  # two AR models: uniform crossover of their own genes, the model from a
        child = repair(a.replace(ar=crossover_ar_genes(a.ar, b.ar, rng)))
        return child, Inheritance.identity(child)
    ba, bb = a.generator.blocks, b.generator.blocks
    cut_a = rng.randint(1, len(ba))
    cut_b = rng.randint(0, len(bb) - 1) if len(bb) > 1 else rng.randint(0, 1)
    blocks = list(ba[:cut_a]) + list(bb[cut_b:])
    origin = [(0, i) for i in range(cut_a)] + [(1, j) for j in range(cut_b, len(bb))]
    blocks, origin = blocks[: G.BLOCKS[1]], origin[: G.BLOCKS[1]]
    gen = replace(a.generator, blocks=tuple(blocks))

    d_from = rng.randrange(2)
    disc = (a, b)[d_from].discriminator

    alpha = rng.random()
    loss = LossGenes(**{
        f: alpha * getattr(a.loss, f) + (1 - alpha) * getattr(b.loss, f)
        for f in ("nonsaturating", "hinge", "leastsquares", "r1", "feature_matching", "mode_seeking")
    })
    training = TrainingGenes(**{
        f: getattr((a, b)[rng.randrange(2)].training, f)
        for f in ("lr_g", "lr_d", "beta1", "beta2", "d_steps", "batch_size", "ema")
    })
    vae = None
    if a.vae is not None:
        va, vb = a.vae, b.vae
        enc = (va, vb)[d_from]
        mix = rng.random()
        vae = VAEGenes(
            encoder_family=enc.encoder_family, encoder_width=enc.encoder_width, encoder_norm=enc.encoder_norm,
            reconstruction=(va, vb)[rng.randrange(2)].reconstruction,
            beta=math.exp(mix * math.log(va.beta) + (1 - mix) * math.log(vb.beta)),
            adversarial=mix * va.adversarial + (1 - mix) * vb.adversarial,
        )
    child = repair(Genome(gen, disc, loss, training, family=a.family, vae=vae,
                          mate=a.mate))  # mate genes: cross_mate
    return child, Inheritance(origin[: len(child.generator.blocks)], 0, d_from)


# ---- explore (population-based training) -------------------------------------------------

def perturb_training(genome: Genome, rng: random.Random, strength: float = 1.0) -> tuple[Genome, Inheritance]:
    """PBT's explore step (Jaderberg et al. 2017): the same architecture with its training
    and loss genes perturbed: each learning rate multiplied by 0.8 or 1.25 (more spread with
    ``strength``), beta1 nudged, and the loss weights and penalties scaled a little. The
    nets are unchanged, so the copy keeps every weight, its discriminator and its
    optimiser state (the identity inheritance)."""
    t, lo = genome.training, genome.loss
    factor = lambda: (1.25 if rng.random() < 0.5 else 0.8) ** max(0.5, strength)  # noqa: E731
    training = replace(t, lr_g=t.lr_g * factor(), lr_d=t.lr_d * factor(),
                       beta1=t.beta1 + rng.gauss(0, 0.05 * strength) if rng.random() < 0.3 else t.beta1)
    loss = replace(lo, **{f: getattr(lo, f) * factor() if getattr(lo, f) > 0 and rng.random() < 0.3
                          else getattr(lo, f)
                          for f in ("nonsaturating", "hinge", "leastsquares", "r1", "feature_matching", "mode_seeking")})
    vae = genome.vae
    if vae is not None:  # beta is a VAE's loss weight: explored like the others
        vae = replace(vae, beta=vae.beta * factor() if rng.random() < 0.3 else vae.beta)
    ar = genome.ar
    if ar is not None:  # an AR model's training gene is its learning rate (same shapes: every weight kept)
        ar = replace(ar, lr=ar.lr * factor())
    child = repair(replace(genome, training=training, loss=loss, vae=vae, ar=ar))
    return child, Inheritance.identity(child)


# ---- mate genes (Fisherian runaway, docs/RUNAWAY.md) -------------------------------------
# The preference and choosiness genes vary on an RNG of their own (the GA derives one per
# child), so that a run without mate choice, whose genomes carry the neutral default,
# draws exactly the random numbers it drew before these genes existed. Only active genes
# (drawn for mate choice) vary: crossover blends them as it blends the loss weights, which
# pulls a population's preferences together, and mutation spreads them apart again.
PREFERENCE_SIGMA = 0.25   # a mutated preference moves by N(0, 0.25 x strength)
CHOOSINESS_SIGMA = 0.5


def repair_mate(mate: MateGenes) -> MateGenes:
    lo, hi = G.PREFERENCE
    prefs = {k: round(_clamp(getattr(mate, k), lo, hi), 6) for k in G.ORNAMENTS}
    return MateGenes(**prefs, choosiness=round(_clamp(mate.choosiness, *G.CHOOSINESS), 6))


def random_taste(rng: random.Random) -> dict[str, float]:
    """A run's shared taste at generation 0 (a "sensory bias": Fisher's process needs a
    population whose mean preference is not zero to start from): for each ornament a
    direction, more or less, drawn at random, of strength 0.3 to 0.8."""
    return {k: rng.choice((-1.0, 1.0)) * rng.uniform(0.3, 0.8) for k in G.ORNAMENTS}


TASTE_SPREAD = 0.35  # individuals' preferences scatter around the run's taste by N(0, 0.35)


def random_mate(rng: random.Random, taste: dict[str, float] | None = None) -> MateGenes:
    """Generation 0's mate genes: each preference the run's ``taste`` (0 without one) plus
    N(0, TASTE_SPREAD), clamped to [-1, 1]; choosiness uniform in [1, 3]."""
    taste = taste or {}
    prefs = {k: taste.get(k, 0.0) + rng.gauss(0.0, TASTE_SPREAD) for k in G.ORNAMENTS}
    return repair_mate(MateGenes(**prefs, choosiness=rng.uniform(1.0, 3.0)))


def mutate_mate(mate: MateGenes, rng: random.Random, strength: float = 1.0) -> MateGenes:
    """Each preference (and the choosiness) moves with the same chance as the other genes of
    a mutation (0.15 x strength), by a Gaussian step; clamped to its range."""
    if not mate.active:
        return mate
    p = min(1.0, 0.15 * strength)
    prefs = {k: getattr(mate, k) + (rng.gauss(0.0, PREFERENCE_SIGMA * strength) if rng.random() < p else 0.0)
             for k in G.ORNAMENTS}
    c = mate.choosiness + (rng.gauss(0.0, CHOOSINESS_SIGMA * strength) if rng.random() < p else 0.0)
    return repair_mate(MateGenes(**prefs, choosiness=c))


def cross_mate(a: MateGenes, b: MateGenes, rng: random.Random) -> MateGenes:
    """A blend of the parents' mate genes, alpha * a + (1 - alpha) * b, as crossover blends
    the loss weights; a parent without active mate genes passes on the other's."""
    if not a.active or not b.active:
        return a if a.active else b
    alpha = rng.random()
    mix = {k: alpha * getattr(a, k) + (1 - alpha) * getattr(b, k) for k in (*G.ORNAMENTS, "choosiness")}
    return repair_mate(MateGenes(**mix))
