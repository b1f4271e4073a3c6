"""The genome: what evolution changes.

A genome is a tree of typed dataclasses: a generator (latent size, a variable-length list
of blocks, an output activation), a discriminator family, loss weightings and training
settings, and a model family (``family``: a GAN, a VAE or an autoregressive model) whose
own genes, if it has any, sit in one typed part named after it (``vae``, ``ar``; see
``FAMILY_GENES``). It round-trips through JSON with a ``schema_version``, has a content hash, and
``validate`` names the offending field. This module never imports torch or deap, so a
genome can be read, shown and checked anywhere.

Gene ranges are part of the contract: they cap the compute of one individual so that a run
fits its budget (see ``estimate_cost``), and ``variation.repair`` keeps every genome
inside them.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from . import family_names
from .family_names import a_family
from .ar_genes import ARGenes, describe_ar, estimate_ar_step_macs, validate_ar
from .genome_limits import MAX_STEP_MACS_32, GenomeError, build_part
from .genome_limits import check_choice as _check_choice
from .genome_limits import check_range as _check_range

SCHEMA_VERSION = 2
#: Versions this evoart reads: 1 (before the family gene; every genome a GAN) and 2.
READABLE_SCHEMA_VERSIONS = (1, 2)

# ---- Gene vocabularies and ranges --------------------------------------------------------

UPSAMPLE_KINDS = ("transposed", "nearest", "bilinear", "pixelshuffle", "none")
KERNEL_SIZES = (1, 3, 5)
G_NORMS = ("none", "batch", "instance", "group")
ACTIVATIONS = ("relu", "lrelu", "elu", "gelu", "silu", "tanh", "sin")
OUTPUT_ACTIVATIONS = ("tanh", "sigmoid", "clamp", "sin")
D_FAMILIES = ("dcgan", "resnet")
D_NORMS = ("none", "batch", "instance", "layer", "spectral")
# What the discriminator looks at (docs/DISCRIMINATOR.md): the raw pixels; a Laplacian
# pyramid whose every level enters the D at its own resolution (a multi-scale D); or a
# fixed, seeded random convolutional feature network (Projected-GAN style, nothing
# pretrained), whose every level enters the D likewise.
D_INPUTS = ("pixels", "pyramid", "random-features")
LOSS_TERMS = ("nonsaturating", "hinge", "leastsquares")
BATCH_SIZES = (16, 32, 64)
D_STEPS = (1, 2, 3)

CHANNELS = (8, 256)        # per generator block, multiples of 8
STEM_CHANNELS = (16, 256)  # the 4x4 map the latent is projected to, multiples of 8
LATENT = (8, 256)
BLOCKS = (1, 8)
D_WIDTH = (8, 128)         # channels of the first discriminator layer, multiples of 8
LR = (1e-5, 1e-2)          # Adam learning rates, evolved on a log scale
BETA1 = (0.0, 0.95)
BETA2 = (0.9, 0.9999)
EMA = (0.0, 0.9999)        # 0 disables the generator EMA
LOSS_WEIGHT = (0.0, 1.0)
R1 = (0.0, 100.0)
FEATURE_MATCHING = (0.0, 10.0)
MODE_SEEKING = (0.0, 1.0)
# The frozen random-feature network of the "random-features" input: channels of its level
# at full resolution, doubling at each halving, at most the cap. Kept narrow: it runs on
# every image D sees, and (frozen) it learns nothing, so it only has to be cheap and rich
# enough for D's trainable layers to read (about 1 M multiply-adds per image at 32 px).
RANDOM_FEATURE_CHANNELS = (8, 32)
# Genes added after schema version 1 and the value that reproduces what genomes without
# them did; a genome with that value hashes as it did before the gene existed.
LATER_GENES = {("discriminator", "input"): "pixels"}

# Compute cap: multiply-accumulates of one generator forward pass of one image at 32 px.
# The reference DCGAN scaled into these ranges costs about 13 M; the cap leaves room to
# grow while keeping one CPU training step under ~0.2 s at batch 32.
MAX_G_MACS_32 = 60e6
# The same for one discriminator forward pass at 32 px (the D runs on real and fake
# images, d_steps times per generator step, so its cost counts as much as G's).
MAX_D_MACS_32 = 12e6
# And for a whole training step: MAX_STEP_MACS_32, defined in ``genome_limits`` (every
# family's genes are held under it, the AR genes included) and re-exported here.

# ---- Model families (the family gene) ------------------------------------------------------
# A genome is one of these. "gan" is what every genome was before the gene existed. The
# genes of the generator are every family's image model where it has one (a VAE's
# decoder is built from them); a family with genes of its own keeps them in the part
# named in FAMILY_GENES, present exactly when the genome is of that family. A further
# family (the autoregressive "ar") adds a frozen dataclass, a Genome field defaulting to
# None, an entry in FAMILY_GENES and its checks in ``_validate_family``.
FAMILIES = family_names.FAMILIES  # ("gan", "vae", "ar")
# Genes at the top of a genome added after schema version 1, and the value that
# reproduces the genomes from before them (see ``Genome.content_hash``; a family's own
# part, None in every other family, is left out by ``to_dict``).
LATER_TOP_GENES = {"family": "gan"}
#: The schema version the content hash is computed at: a version number is not a gene,
#: so bumping the schema leaves every hash as it was.
HASH_SCHEMA_VERSION = 1

# VAE genes. The encoder is built like a discriminator (DCGAN-style strided convolutions
# or residual blocks, evolved width and normalisation, reading the pixels) ending in the
# mean and log-variance of q(z | x). Spectral norm is left out: it caps the encoder's
# gain, which an encoder has no reason to want.
ENCODER_NORMS = ("none", "batch", "instance", "layer")
# How a reconstruction is compared with its image: squared or absolute error of the
# pixels, absolute error of the Laplacian-pyramid bands (a cheap perceptual loss: each
# octave counts alike, so edges are not drowned by flat colour), or absolute error of a
# fixed, seeded random convolutional network's features (nothing pretrained).
RECONSTRUCTIONS = ("mse", "l1", "pyramid-l1", "random-features")
VAE_BETA = (1e-3, 4.0)      # weight of the KL term per latent nat against the reconstruction per pixel
VAE_ADVERSARIAL = (0.0, 1.0)  # weight of the VAE-GAN term; 0 trains no discriminator


@dataclass(frozen=True)
class Block:
    """One generator block: (upsample) -> conv -> norm -> activation (+ noise, + skip)."""

    channels: int = 64
    upsample: str = "nearest"
    kernel: int = 3
    norm: str = "batch"
    activation: str = "relu"
    residual: bool = False
    noise: bool = False


@dataclass(frozen=True)
class GeneratorGenes:
    latent: int = 64
    stem_channels: int = 128
    blocks: tuple[Block, ...] = (
        Block(channels=64, upsample="transposed"),
        Block(channels=32, upsample="transposed"),
        Block(channels=16, upsample="transposed"),
    )
    output: str = "tanh"


@dataclass(frozen=True)
class DiscriminatorGenes:
    family: str = "dcgan"
    width: int = 32
    norm: str = "spectral"
    input: str = "pixels"  # one of D_INPUTS; genomes from before the gene read as "pixels"


@dataclass(frozen=True)
class LossGenes:
    """Weights of the adversarial variants (normalised to sum 1 when training) and of the
    regularisers. A discrete loss choice, as in E-GAN, is the case of one non-zero weight."""

    nonsaturating: float = 1.0
    hinge: float = 0.0
    leastsquares: float = 0.0
    r1: float = 0.0
    feature_matching: float = 0.0
    mode_seeking: float = 0.0

    def adversarial(self) -> dict[str, float]:
        total = sum(getattr(self, t) for t in LOSS_TERMS)
        if total <= 0:
            return {"nonsaturating": 1.0}
        return {t: getattr(self, t) / total for t in LOSS_TERMS if getattr(self, t) > 0}


@dataclass(frozen=True)
class TrainingGenes:
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    beta1: float = 0.5
    beta2: float = 0.99
    d_steps: int = 1
    batch_size: int = 32
    ema: float = 0.99


@dataclass(frozen=True)
class VAEGenes:
    """The genes only a variational autoencoder has (its decoder is ``Genome.generator``).

    The loss per image is the chosen reconstruction error, averaged over the pixels (or
    the bands, or the features), plus ``beta`` times the KL divergence of q(z | x) from
    N(0, I) per pixel, plus ``adversarial`` times the generator's adversarial loss
    against a discriminator built from ``Genome.discriminator`` and trained with
    ``Genome.loss`` (a VAE-GAN, Larsen et al. 2016); with ``adversarial`` 0 those genes
    rest unused. ``Genome.training``'s ``lr_g`` drives the encoder and decoder, ``lr_d``
    and ``d_steps`` the discriminator."""

    encoder_family: str = "dcgan"   # one of D_FAMILIES
    encoder_width: int = 32         # channels of the encoder's first layer, as D_WIDTH
    encoder_norm: str = "none"      # one of ENCODER_NORMS
    reconstruction: str = "pyramid-l1"  # one of RECONSTRUCTIONS
    beta: float = 0.05
    adversarial: float = 0.0


#: Each family's own genes, in the Genome field named after the family (present exactly
#: when the genome is of that family; "gan" has none of its own).
FAMILY_GENES: dict[str, type] = {"vae": VAEGenes, "ar": ARGenes}


# ---- Mate choice (Fisherian runaway, docs/RUNAWAY.md) ------------------------------------
# The ornaments the preference genes weigh, in this order: measurable properties of an
# individual's fixed-latent samples, computed (each with its range) by ``evoart.ornaments``.
ORNAMENTS = ("saturation", "contrast", "edges", "symmetry", "hue", "detail")
PREFERENCE = (-1.0, 1.0)   # per ornament: > 0 prefers mates with more of it, < 0 with less
CHOOSINESS = (0.0, 4.0)    # 0 picks among the candidates at random; 4 almost always the best match


@dataclass(frozen=True)
class MateGenes:
    """How an individual picks its mate under ``--mate-choice runaway``: a preference for
    each ornament and a choosiness. The default (all 0) is the genome of a run without
    mate choice, and a genome that carries it hashes as it did before these genes existed."""

    saturation: float = 0.0
    contrast: float = 0.0
    edges: float = 0.0
    symmetry: float = 0.0
    hue: float = 0.0
    detail: float = 0.0
    choosiness: float = 0.0

    @property
    def active(self) -> bool:
        """Drawn for mate choice (not the neutral default): only active genes vary."""
        return self != MateGenes()


# Whole parts added after schema version 1: a genome whose part equals the part's default
# hashes (and is written) as it was before the part existed.
LATER_PARTS: dict[str, type] = {"mate": MateGenes}



@dataclass(frozen=True)
class Genome:
    generator: GeneratorGenes = field(default_factory=GeneratorGenes)
    discriminator: DiscriminatorGenes = field(default_factory=DiscriminatorGenes)
    loss: LossGenes = field(default_factory=LossGenes)
    training: TrainingGenes = field(default_factory=TrainingGenes)
    # ---- the family gene and the families' own genes ----
    family: str = "gan"             # one of FAMILIES
    vae: VAEGenes | None = None     # present exactly when family == "vae"
    ar: ARGenes | None = None       # present exactly when family == "ar" (evoart.ar_genes)
    mate: MateGenes = field(default_factory=MateGenes)

    # ---- serialisation ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["generator"]["blocks"] = [dict(b) for b in d["generator"]["blocks"]]
        for part, cls in LATER_PARTS.items():  # a later part is written only where it says something
            if d[part] == asdict(cls()):
                del d[part]
        for part in FAMILY_GENES:  # a family's own genes appear only in its genomes, as they write themselves
            genes = getattr(self, part, None)
            if genes is None:
                d.pop(part, None)
            elif hasattr(genes, "to_dict"):
                d[part] = genes.to_dict()  # ARGenes leaves its later genes out at their defaults
        return {"schema_version": SCHEMA_VERSION, **d}

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> "Genome":
        return genome_from_dict(data)

    @classmethod
    def from_json(cls, text: str) -> "Genome":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GenomeError(f"genome is not valid JSON: {exc}") from None
        return genome_from_dict(data)

    def content_hash(self) -> str:
        """A short, stable id of the genes (not of trained weights). A gene added later
        counts only when it differs from the value that reproduces the old behaviour, so
        a genome saved before the gene existed keeps its hash (and a run seeded from it
        still resumes)."""
        d = self.to_dict()  # without later parts at their default (to_dict leaves them out)
        for (part, name), old in LATER_GENES.items():
            if d[part].get(name) == old:
                del d[part][name]
        for name, old in LATER_TOP_GENES.items():
            if d.get(name, old) == old:
                d.pop(name, None)
        d["schema_version"] = HASH_SCHEMA_VERSION
        canon = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:12]

    def replace(self, **changes: Any) -> "Genome":
        return replace(self, **changes)


def validate_mate(mate: MateGenes) -> None:
    for k in ORNAMENTS:
        _check_range(f"genome.mate.{k}", getattr(mate, k), *PREFERENCE)
    _check_range("genome.mate.choosiness", mate.choosiness, *CHOOSINESS)


# ---- Construction from untrusted data ----------------------------------------------------

def _build(cls, data: Any, where: str):
    return build_part(cls, data, where, nested={"blocks": Block})


def genome_from_dict(data: Any) -> Genome:
    """Build and validate a genome from parsed JSON; raises GenomeError naming the field."""
    if not isinstance(data, dict):
        raise GenomeError("genome: expected a JSON object")
    data = dict(data)
    version = data.pop("schema_version", None)
    if version is None:
        raise GenomeError("genome.schema_version: missing")
    if isinstance(version, bool) or version not in READABLE_SCHEMA_VERSIONS:
        raise GenomeError(
            f"genome.schema_version: {version!r} is not supported (this evoart reads "
            f"{', '.join(str(v) for v in READABLE_SCHEMA_VERSIONS)})"
        )
    parts = {
        "generator": GeneratorGenes,
        "discriminator": DiscriminatorGenes,
        "loss": LossGenes,
        "training": TrainingGenes,
        **LATER_PARTS,
    }
    if version >= 2:
        parts.update(FAMILY_GENES)
    unknown = sorted(set(data) - set(parts) - ({"family"} if version >= 2 else set()))
    if unknown:
        which = "" if version >= 2 or unknown[0] not in ({"family"} | set(FAMILY_GENES)) else \
            f" in schema version {version} (the family gene came with version 2)"
        raise GenomeError(f"genome.{unknown[0]}: unknown field{which}")
    kwargs = {k: _build(cls, data[k], f"genome.{k}")
              for k, cls in parts.items() if k in data and not (k in FAMILY_GENES and data[k] is None)}
    if "family" in data:
        if not isinstance(data["family"], str):
            raise GenomeError(f"genome.family: expected a string, got {data['family']!r}")
        kwargs["family"] = data["family"]
    genome = Genome(**kwargs)
    validate(genome)
    return genome


# ---- Validation --------------------------------------------------------------------------

def _check_multiple(path: str, value: int, lo: int, hi: int, step: int = 8) -> None:
    _check_range(path, value, lo, hi)
    if value % step:
        raise GenomeError(f"{path}: {value} is not a multiple of {step}")


def _validate_family(genome: Genome) -> None:
    """The family gene and the family's own genes: present for its family, absent otherwise."""
    _check_choice("genome.family", genome.family, FAMILIES)
    for part in FAMILY_GENES:  # a family's genes are in the field of its name
        family, genes = part, getattr(genome, part)
        if family == genome.family and genes is None:
            raise GenomeError(f"genome.{part}: {a_family(family)} genome needs its {part} genes")
        if family != genome.family and genes is not None:
            raise GenomeError(f"genome.{part}: only {a_family(family)} genome has {part} genes (this one is {a_family(genome.family)})")
    v = genome.vae
    if v is not None:
        _check_choice("genome.vae.encoder_family", v.encoder_family, D_FAMILIES)
        _check_multiple("genome.vae.encoder_width", v.encoder_width, *D_WIDTH)
        _check_choice("genome.vae.encoder_norm", v.encoder_norm, ENCODER_NORMS)
        _check_choice("genome.vae.reconstruction", v.reconstruction, RECONSTRUCTIONS)
        _check_range("genome.vae.beta", v.beta, *VAE_BETA)
        _check_range("genome.vae.adversarial", v.adversarial, *VAE_ADVERSARIAL)
        cost = estimate_encoder_macs(genome, 32)
        if cost > MAX_D_MACS_32 * 1.0001:
            raise GenomeError(
                f"genome.vae.encoder_width: {cost / 1e6:.0f} M multiply-adds per image at 32 px exceeds "
                f"the cap of {MAX_D_MACS_32 / 1e6:.0f} M; use a narrower encoder"
            )
    if genome.ar is not None:
        # The AR genes' own ranges and both caps (training step and sampling); the GAN
        # genes of an AR genome rest (nothing builds them; a family switch draws a fresh
        # genome) but are validated like any others.
        validate_ar(genome.ar, where="genome.ar")


def validate(genome: Genome) -> Genome:
    """Raise GenomeError naming the first gene outside the schema; return the genome."""
    _validate_family(genome)
    g = genome.generator
    _check_range("genome.generator.latent", g.latent, *LATENT)
    _check_multiple("genome.generator.stem_channels", g.stem_channels, *STEM_CHANNELS)
    _check_choice("genome.generator.output", g.output, OUTPUT_ACTIVATIONS)
    if not BLOCKS[0] <= len(g.blocks) <= BLOCKS[1]:
        raise GenomeError(
            f"genome.generator.blocks: {len(g.blocks)} blocks, expected {BLOCKS[0]} to {BLOCKS[1]}"
        )
    for i, b in enumerate(g.blocks):
        p = f"genome.generator.blocks[{i}]"
        _check_multiple(f"{p}.channels", b.channels, *CHANNELS)
        _check_choice(f"{p}.upsample", b.upsample, UPSAMPLE_KINDS)
        _check_choice(f"{p}.kernel", b.kernel, KERNEL_SIZES)
        _check_choice(f"{p}.norm", b.norm, G_NORMS)
        _check_choice(f"{p}.activation", b.activation, ACTIVATIONS)
        _check_choice(f"{p}.residual", b.residual, (True, False))
        _check_choice(f"{p}.noise", b.noise, (True, False))
    d = genome.discriminator
    _check_choice("genome.discriminator.family", d.family, D_FAMILIES)
    _check_multiple("genome.discriminator.width", d.width, *D_WIDTH)
    _check_choice("genome.discriminator.norm", d.norm, D_NORMS)
    _check_choice("genome.discriminator.input", d.input, D_INPUTS)
    lo = genome.loss
    for term in LOSS_TERMS:
        _check_range(f"genome.loss.{term}", getattr(lo, term), *LOSS_WEIGHT)
    if sum(getattr(lo, t) for t in LOSS_TERMS) <= 0:
        raise GenomeError("genome.loss: at least one adversarial weight must be above 0")
    _check_range("genome.loss.r1", lo.r1, *R1)
    _check_range("genome.loss.feature_matching", lo.feature_matching, *FEATURE_MATCHING)
    _check_range("genome.loss.mode_seeking", lo.mode_seeking, *MODE_SEEKING)
    t = genome.training
    _check_range("genome.training.lr_g", t.lr_g, *LR)
    _check_range("genome.training.lr_d", t.lr_d, *LR)
    _check_range("genome.training.beta1", t.beta1, *BETA1)
    _check_range("genome.training.beta2", t.beta2, *BETA2)
    _check_choice("genome.training.d_steps", t.d_steps, D_STEPS)
    _check_choice("genome.training.batch_size", t.batch_size, BATCH_SIZES)
    _check_range("genome.training.ema", t.ema, *EMA)
    if t.ema != 0 and t.ema < 0.9:
        raise GenomeError(f"genome.training.ema: {t.ema!r} must be 0 (off) or at least 0.9")
    validate_mate(genome.mate)
    cost = estimate_g_macs(genome, 32)
    if cost > MAX_G_MACS_32 * 1.0001:
        raise GenomeError(
            f"genome.generator: {cost / 1e6:.0f} M multiply-adds per image at 32 px exceeds "
            f"the cap of {MAX_G_MACS_32 / 1e6:.0f} M; use fewer or narrower blocks"
        )
    d_cost = estimate_d_macs(genome, 32)
    if d_cost > MAX_D_MACS_32 * 1.0001:
        raise GenomeError(
            f"genome.discriminator.width: {d_cost / 1e6:.0f} M multiply-adds per image at 32 px "
            f"exceeds the cap of {MAX_D_MACS_32 / 1e6:.0f} M; use a narrower discriminator"
        )
    step = estimate_step_macs(genome, 32)
    if step > MAX_STEP_MACS_32 * 1.0001:
        raise GenomeError(
            f"genome.training: one training step costs {step / 1e9:.1f} G multiply-adds at 32 px, "
            f"over the cap of {MAX_STEP_MACS_32 / 1e9:.1f} G; lower batch_size or d_steps, or narrow the nets"
        )
    return genome


# ---- Layout at a resolution --------------------------------------------------------------

def upsamplings_needed(resolution: int) -> int:
    """The generator starts from a 4x4 map; each upsampling doubles it."""
    if resolution < 8 or resolution & (resolution - 1):
        raise GenomeError(f"resolution: {resolution} must be a power of two, 8 or more")
    return int(math.log2(resolution)) - 2


@dataclass(frozen=True)
class BlockLayout:
    index: int
    in_channels: int
    out_channels: int
    upsample: str        # the kind actually used at this resolution ("none" for refine)
    in_size: int
    out_size: int


def layout(genome: Genome, resolution: int) -> tuple[int, list[BlockLayout]]:
    """Which blocks upsample at ``resolution`` and the sizes of every map.

    The latent is always projected to a 4x4 map. The first k upsampling blocks upsample
    (k = log2(resolution / 4)); any later ones act as refine blocks. When a genome has
    fewer than k, its first refine blocks upsample (nearest) instead, and whatever is
    still missing is made up by parameter-free nearest upsampling of the 4x4 map before
    the first block, so every genome builds at every supported resolution. Making up
    upsamplings adds no parameters; an upsampling block that acts as a refine block at a
    small resolution builds a plain convolution instead of its transposed or pixel-shuffle
    one, so its parameter count can differ there. Returns (size of the map entering the
    first block, layouts).
    """
    k = upsamplings_needed(resolution)
    blocks = genome.generator.blocks
    missing = max(0, k - sum(1 for b in blocks if b.upsample != "none"))
    promote = set([i for i, b in enumerate(blocks) if b.upsample == "none"][:missing])
    stem = 4 * 2 ** (missing - len(promote))
    size, used, c_in = stem, 0, genome.generator.stem_channels
    out = []
    for i, b in enumerate(blocks):
        kind = "nearest" if i in promote else b.upsample
        if kind != "none" and used >= k:
            kind = "none"
        if kind != "none":
            used += 1
        new_size = size * 2 if kind != "none" else size
        out.append(BlockLayout(i, c_in, b.channels, kind, size, new_size))
        size, c_in = new_size, b.channels
    return stem, out


def estimate_g_macs(genome: Genome, resolution: int) -> float:
    """Multiply-accumulates of one generator forward pass for one image (approximate)."""
    stem, blocks = layout(genome, resolution)
    g = genome.generator
    macs = g.latent * g.stem_channels * 16  # the 4x4 projection
    for bl, b in zip(blocks, g.blocks):
        area = bl.out_size ** 2
        k = b.kernel
        if bl.upsample == "pixelshuffle":
            macs += bl.in_channels * bl.out_channels * 4 * k * k * bl.in_size ** 2
        elif bl.upsample == "transposed":
            macs += bl.in_channels * bl.out_channels * (k + 1) ** 2 * bl.in_size ** 2
        else:
            macs += bl.in_channels * bl.out_channels * k * k * area
        if b.residual and bl.in_channels != bl.out_channels:
            macs += bl.in_channels * bl.out_channels * area
    last = blocks[-1]
    macs += last.out_channels * 3 * 9 * last.out_size ** 2  # to-RGB 3x3 conv
    return float(macs)


def d_widths(genome: Genome, resolution: int) -> list[int]:
    """Channel widths of the discriminator's levels, from full resolution down to 4x4."""
    d = genome.discriminator
    return [min(256, d.width * 2 ** i) for i in range(upsamplings_needed(resolution) + 1)]


def d_input_channels(genome: Genome, resolution: int) -> list[int]:
    """Channels of the discriminator's input at each of its levels, full resolution first:
    one level for pixels; for the random features one per map size down to 4x4; for the
    pyramid one per map size down to 8x8, where its low-pass image enters, so that the
    image's coarse colour and layout meet at least one of D's convolutions (entering at
    4x4 it would reach only D's linear head: measured, docs/QUALITY.md)."""
    levels = upsamplings_needed(resolution) + 1
    kind = genome.discriminator.input
    if kind == "pixels":
        return [3]
    if kind == "pyramid":
        return [3] * max(1, levels - 1)
    lo, hi = RANDOM_FEATURE_CHANNELS
    return [min(hi, lo * 2 ** i) for i in range(levels)]


def estimate_d_input_macs(genome: Genome, resolution: int) -> float:
    """Multiply-accumulates of the frozen part of D's input for one image: the random
    feature network (3x3 convolutions, stride 2 after the first), or the pyramid's
    pooling, upsampling and differences (a few per pixel); 0 for pixels."""
    kind = genome.discriminator.input
    if kind == "pixels":
        return 0.0
    chans = d_input_channels(genome, resolution)
    if kind == "pyramid":
        return float(sum(3 * 6 * (resolution // 2 ** i) ** 2 for i in range(len(chans))))
    macs, c = 0.0, 3
    for i, w in enumerate(chans):
        macs += c * w * 9 * (resolution // 2 ** i) ** 2
        c = w
    return macs


def estimate_d_macs(genome: Genome, resolution: int) -> float:
    """Multiply-accumulates of one discriminator forward pass for one image (approximate),
    its frozen input representation included (``estimate_d_input_macs``)."""
    w = d_widths(genome, resolution)
    k = len(w) - 1
    chans = d_input_channels(genome, resolution)
    c0 = chans[0]
    macs = estimate_d_input_macs(genome, resolution)
    dcgan = genome.discriminator.family == "dcgan"
    # the trainable 1x1 convolutions that bring input level i into the map of that size
    # (in a DCGAN D the map entering level i has the previous level's width)
    for i in range(1, len(chans)):
        macs += chans[i] * (w[i - 1] if dcgan else w[i]) * (resolution // 2 ** i) ** 2
    if dcgan:
        c = c0
        for i in range(k):
            macs += c * w[i] * 16 * (resolution // 2 ** (i + 1)) ** 2
            c = w[i]
        return macs + c * 16
    macs += c0 * w[0] * 9 * resolution ** 2
    for i in range(k):
        area = (resolution // 2 ** (i + 1)) ** 2
        macs += (w[i] * w[i + 1] * 9 + w[i + 1] * w[i + 1] * 9 + w[i] * w[i + 1]) * area
    return macs + w[-1] * 16


def estimate_step_macs(genome: Genome, resolution: int) -> float:
    """Multiply-accumulates of one training step of ``genome``'s family (the cap,
    ``MAX_STEP_MACS_32``, holds for every family)."""
    if genome.family == "vae":
        return estimate_vae_step_macs(genome, resolution)
    if genome.family == "ar":
        return estimate_ar_step_macs(genome.ar, resolution)
    return estimate_gan_step_macs(genome, resolution)


def estimate_gan_step_macs(genome: Genome, resolution: int) -> float:
    """Multiply-accumulates of one GAN training step (backward counted as twice the forward):
    each D step runs G once and D on real and fake; the G step runs G and D once. D's
    frozen input part has no weights to train: it runs forward on real and fake in each
    D step (no gradient is needed there) and forward plus the input gradient in the G
    step."""
    t = genome.training
    g = estimate_g_macs(genome, resolution)
    frozen = estimate_d_input_macs(genome, resolution)
    d = estimate_d_macs(genome, resolution) - frozen
    return t.batch_size * (3 * (g * (t.d_steps + 1) + d * (2 * t.d_steps + 1)) + frozen * 2 * (t.d_steps + 1))


def encoder_as_discriminator(genome: Genome) -> Genome:
    """A VAE genome whose discriminator genes are its encoder's (reading pixels): the
    encoder is that discriminator's trunk."""
    v = genome.vae
    return replace(genome, discriminator=DiscriminatorGenes(v.encoder_family, v.encoder_width, v.encoder_norm,
                                                            "pixels"))


def with_d_input(genome: Genome, kind: str) -> Genome:
    """``genome`` with its discriminator reading ``kind`` (one of D_INPUTS)."""
    return replace(genome, discriminator=replace(genome.discriminator, input=kind))


def estimate_encoder_macs(genome: Genome, resolution: int) -> float:
    """Multiply-accumulates of a VAE encoder's forward pass for one image: the
    discriminator of its encoder genes on the pixels, with a head giving 2 x latent
    numbers (the mean and log-variance) instead of one logit."""
    as_d = encoder_as_discriminator(genome)  # (its norm costs nothing here)
    w = d_widths(as_d, resolution)
    return estimate_d_macs(as_d, resolution) - w[-1] * 16 + w[-1] * 16 * 2 * genome.generator.latent


def estimate_reconstruction_macs(genome: Genome, resolution: int) -> float:
    """Multiply-accumulates of the reconstruction loss's frozen network for one image
    pair (the random features; a few per pixel otherwise, counted as 0)."""
    if genome.vae.reconstruction != "random-features":
        return 0.0
    return estimate_d_input_macs(with_d_input(genome, "random-features"), resolution)


def estimate_vae_step_macs(genome: Genome, resolution: int) -> float:
    """Multiply-accumulates of one VAE training step: encoder and decoder forward and
    backward on the batch, the reconstruction loss's network forward on the image and the
    reconstruction and backward through the latter, and with an adversarial term a whole
    GAN step on top (the discriminator's steps and the decoder's adversarial pass on
    prior samples)."""
    t = genome.training
    enc = estimate_encoder_macs(genome, resolution)
    g = estimate_g_macs(genome, resolution)
    rec = estimate_reconstruction_macs(genome, resolution)
    macs = t.batch_size * (3 * (enc + g) + 4 * rec)
    if genome.vae.adversarial > 0:
        macs += estimate_gan_step_macs(genome, resolution)
    return macs


def describe(genome: Genome) -> str:
    """One line a person can read: the shape of the generator and the training choice."""
    if genome.family == "ar":
        return describe_ar(genome.ar)
    g = genome.generator
    chans = "-".join(str(b.channels) for b in g.blocks)
    ups = "".join(b.upsample[0] if b.upsample != "none" else "." for b in g.blocks)
    acts = ",".join(sorted({b.activation for b in g.blocks}))
    adv = "+".join(f"{k[:2]}{v:.1f}" for k, v in genome.loss.adversarial().items())
    d = genome.discriminator
    seen = "" if d.input == "pixels" else f" on {d.input}"
    if genome.family == "vae":
        v = genome.vae
        critic = f"; D {d.family}/{d.width}/{d.norm}{seen} x{v.adversarial:.2f}" if v.adversarial > 0 else ""
        return (
            f"VAE z{g.latent} {g.stem_channels}>{chans} [{ups}] {acts}; E {v.encoder_family}"
            f"/{v.encoder_width}/{v.encoder_norm}; {v.reconstruction} beta {v.beta:.2g}{critic}; "
            f"lr {genome.training.lr_g:.1e} b{genome.training.batch_size}"
        )
    return (
        f"z{g.latent} {g.stem_channels}>{chans} [{ups}] {acts}; D {d.family}"
        f"/{d.width}/{d.norm}{seen}; {adv}; "
        f"lr {genome.training.lr_g:.1e}/{genome.training.lr_d:.1e} b{genome.training.batch_size}"
    )


def dcgan_genome() -> Genome:
    """The DCGAN of Radford et al. 2015 as a genome, widths scaled into the gene ranges.

    DCGAN at 32 px (ngf = 64) maps z to 512 channels at 4x4, then 256, 128 and 64; here
    the stem has 128 and the blocks 64-32-16 (a quarter of each), with latent 100,
    transposed convolutions (kernel gene 3 = DCGAN's 4x4, stride 2), batch norm, ReLU,
    tanh output, non-saturating loss, Adam 2e-4 / (0.5, 0.999), batch 32 (the paper used
    128; 32 keeps one step within the compute cap), no EMA, and a
    DCGAN discriminator of width 16 (a quarter of ndf = 64) with batch norm.
    """
    return Genome(
        generator=GeneratorGenes(
            latent=100,
            stem_channels=128,
            blocks=(
                Block(64, "transposed", 3, "batch", "relu"),
                Block(32, "transposed", 3, "batch", "relu"),
                Block(16, "transposed", 3, "batch", "relu"),
            ),
            output="tanh",
        ),
        discriminator=DiscriminatorGenes(family="dcgan", width=16, norm="batch"),
        loss=LossGenes(nonsaturating=1.0),
        training=TrainingGenes(lr_g=2e-4, lr_d=2e-4, beta1=0.5, beta2=0.999, d_steps=1,
                               batch_size=32, ema=0.0),
    )
