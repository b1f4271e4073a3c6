"""The genome as a user meets it: JSON files that round-trip, a content hash that names
the genes, validation errors that say which field is wrong, and a layout that makes
every genome build at every resolution within a known compute cost."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import random
import subprocess
import sys

import pytest
import torch
from torch import nn

from evoart import genome as G
from evoart import nets, variation
from evoart.genome import (
    Block,
    DiscriminatorGenes,
    Genome,
    GenomeError,
    GeneratorGenes,
    LossGenes,
    dcgan_genome,
    describe,
    estimate_d_macs,
    estimate_g_macs,
    estimate_step_macs,
    layout,
    upsamplings_needed,
    validate,
)


def with_blocks(genome: Genome, *blocks: Block) -> Genome:
    return genome.replace(generator=dataclasses.replace(genome.generator, blocks=tuple(blocks)))


def with_training(genome: Genome, **changes) -> Genome:
    return genome.replace(training=dataclasses.replace(genome.training, **changes))


# ---- JSON round trip ---------------------------------------------------------------------


@pytest.mark.parametrize("make", [Genome, dcgan_genome], ids=["default", "dcgan"])
def test_json_round_trip_gives_the_same_genome(make):
    genome = make()
    assert validate(genome) is genome
    for indent in (None, 2):
        text = genome.to_json(indent=indent)
        assert json.loads(text)["schema_version"] == G.SCHEMA_VERSION
        again = Genome.from_json(text)
        assert again == genome
        assert again.to_json(indent=indent) == text
        assert again.content_hash() == genome.content_hash()
    assert Genome.from_dict(json.loads(genome.to_json())) == genome


def test_json_is_plain_and_readable():
    data = json.loads(dcgan_genome().to_json())
    assert set(data) == {"schema_version", "family", "generator", "discriminator", "loss", "training"}
    assert data["family"] == "gan"
    blocks = data["generator"]["blocks"]
    assert isinstance(blocks, list) and len(blocks) == 3
    assert blocks[0] == {"channels": 64, "upsample": "transposed", "kernel": 3, "norm": "batch",
                         "activation": "relu", "residual": False, "noise": False}


def test_missing_fields_take_the_defaults():
    genome = Genome.from_json('{"schema_version": 1, "training": {"lr_g": 0.0005}}')
    assert genome.training.lr_g == 0.0005
    assert genome.generator == GeneratorGenes()
    assert genome.discriminator == DiscriminatorGenes()
    text = '{"schema_version": 1, "generator": {"blocks": [%s]}}' % ", ".join(
        '{"channels": %d, "upsample": "transposed"}' % c for c in (32, 24, 16))
    blocks = Genome.from_json(text).generator.blocks
    assert blocks == tuple(Block(channels=c, upsample="transposed") for c in (32, 24, 16))
    assert blocks[0].kernel == 3 and blocks[0].norm == "batch" and not blocks[0].residual


def test_integers_are_accepted_where_numbers_are_expected():
    genome = Genome.from_json('{"schema_version": 1, "loss": {"nonsaturating": 1, "r1": 2}}')
    assert genome.loss.r1 == 2.0 and isinstance(genome.loss.r1, float)


def test_dcgan_genome_is_the_paper_recipe_scaled_down():
    g = dcgan_genome()
    assert [b.upsample for b in g.generator.blocks] == ["transposed"] * 3
    assert {b.norm for b in g.generator.blocks} == {"batch"}
    assert {b.activation for b in g.generator.blocks} == {"relu"}
    assert g.generator.output == "tanh" and g.generator.latent == 100
    assert g.loss.adversarial() == {"nonsaturating": 1.0}
    assert (g.training.lr_g, g.training.lr_d, g.training.beta1, g.training.beta2) == (2e-4, 2e-4, 0.5, 0.999)
    assert g.training.ema == 0.0
    assert g.discriminator == DiscriminatorGenes("dcgan", 16, "batch")


def test_describe_is_one_line_with_the_shape():
    text = describe(dcgan_genome())
    assert "\n" not in text
    assert "z100" in text and "128>64-32-16" in text and "[ttt]" in text and "dcgan/16/batch" in text


# ---- content hash ------------------------------------------------------------------------


def _every_gene_changed(genome: Genome) -> list[tuple[str, Genome]]:
    """One valid variant of ``genome`` per gene, each differing from it in that gene only."""
    alternatives = {
        int: lambda v: v + 8,
        float: lambda v: v * 0.5 if v else 0.25,
        bool: lambda v: not v,
    }
    other_choice = {
        "upsample": "bilinear", "kernel": 5, "norm": "group", "activation": "sin",
        "output": "sigmoid", "family": "resnet", "d_steps": 2, "batch_size": 32, "input": "pyramid",
    }
    variants = []
    gen = genome.generator
    for f in dataclasses.fields(Block):
        value = getattr(gen.blocks[1], f.name)
        new = other_choice.get(f.name) if f.name in other_choice else alternatives[type(value)](value)
        blocks = list(gen.blocks)
        blocks[1] = dataclasses.replace(blocks[1], **{f.name: new})
        variants.append((f"blocks[1].{f.name}", with_blocks(genome, *blocks)))
    for part in ("generator", "discriminator", "loss", "training"):
        genes = getattr(genome, part)
        for f in dataclasses.fields(genes):
            if f.name == "blocks":
                continue
            value = getattr(genes, f.name)
            if f.name == "norm":
                new = "none"
            elif f.name == "ema":
                new = 0.999
            elif f.name in ("beta1", "beta2"):
                new = value - 0.01
            elif f.name in other_choice:
                new = other_choice[f.name]
            else:
                new = alternatives[type(value)](value)
            variants.append((f"{part}.{f.name}", genome.replace(**{part: dataclasses.replace(genes, **{f.name: new})})))
    variants.append(("one block fewer", with_blocks(genome, *gen.blocks[:2])))
    return variants


def test_content_hash_is_stable():
    a, b = Genome(), Genome()
    assert a.content_hash() == b.content_hash()
    assert len(a.content_hash()) == 12 and set(a.content_hash()) <= set("0123456789abcdef")
    # the same genes written with another key order and spacing have the same hash
    shuffled = json.dumps(dict(reversed(list(json.loads(a.to_json()).items()))), indent=4)
    assert Genome.from_json(shuffled).content_hash() == a.content_hash()


def test_content_hash_is_the_same_in_another_process():
    code = "from evoart.genome import dcgan_genome; print(dcgan_genome().content_hash())"
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == dcgan_genome().content_hash()


def test_content_hash_changes_with_every_gene():
    base = with_training(dcgan_genome(), batch_size=16)
    variants = _every_gene_changed(base)  # one per field of the schema, read from the dataclasses
    hashes = {base.content_hash()}
    for name, variant in variants:
        validate(variant)
        assert variant != base, name
        assert variant.content_hash() != base.content_hash(), name
        hashes.add(variant.content_hash())
    assert len(hashes) == len(variants) + 1


# ---- validation messages -----------------------------------------------------------------


def _dcgan_dict() -> dict:
    return json.loads(dcgan_genome().to_json())


def _set(path: str, value):
    """An edit of the DCGAN genome's dict: ``path`` like 'generator.blocks.0.kernel'."""
    def edit(d):
        *parents, last = path.split(".")
        node = d
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if value is _DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
        return d
    return edit


_DELETE = object()

BAD_GENOMES = [
    # (case, edit of the DCGAN genome dict, the field the message must name, more text it must contain)
    ("no schema_version", _set("schema_version", _DELETE), "genome.schema_version", "missing"),
    ("newer schema_version", _set("schema_version", 3), "genome.schema_version", "3"),
    ("schema_version as text", _set("schema_version", "1"), "genome.schema_version", "'1'"),
    ("schema_version as true", _set("schema_version", True), "genome.schema_version", "True"),
    ("unknown top-level field", _set("colour", "red"), "genome.colour", "unknown field"),
    ("unknown generator field", _set("generator.depth", 4), "genome.generator.depth", "unknown field"),
    ("unknown block field", _set("generator.blocks.1.dilation", 2), "genome.generator.blocks[1].dilation", "unknown field"),
    ("unknown training field", _set("training.momentum", 0.9), "genome.training.momentum", "unknown field"),
    ("generator not an object", _set("generator", [1, 2]), "genome.generator", "expected an object"),
    ("blocks not a list", _set("generator.blocks", {"channels": 8}), "genome.generator.blocks", "list"),
    ("block not an object", _set("generator.blocks.2", 16), "genome.generator.blocks[2]", "expected an object"),
    ("bool for an int", _set("generator.latent", True), "genome.generator.latent", "integer"),
    ("bool for a kernel", _set("generator.blocks.0.kernel", True), "genome.generator.blocks[0].kernel", "integer"),
    ("float for an int", _set("generator.blocks.0.channels", 64.0), "genome.generator.blocks[0].channels", "integer"),
    ("int for a bool", _set("generator.blocks.1.residual", 1), "genome.generator.blocks[1].residual", "true or false"),
    ("text for a number", _set("training.lr_g", "0.001"), "genome.training.lr_g", "number"),
    ("bool for a number", _set("loss.hinge", True), "genome.loss.hinge", "number"),
    ("number for text", _set("generator.output", 1), "genome.generator.output", "string"),
    ("null for a number", _set("loss.r1", None), "genome.loss.r1", "number"),
    ("latent too small", _set("generator.latent", 4), "genome.generator.latent", "outside [8, 256]"),
    ("channels too large", _set("generator.blocks.2.channels", 512), "genome.generator.blocks[2].channels", "outside"),
    ("channels not a multiple of 8", _set("generator.stem_channels", 100), "genome.generator.stem_channels", "multiple of 8"),
    ("negative learning rate", _set("training.lr_d", -0.001), "genome.training.lr_d", "outside"),
    ("learning rate too high", _set("training.lr_g", 0.5), "genome.training.lr_g", "outside"),
    ("beta1 too high", _set("training.beta1", 0.99), "genome.training.beta1", "outside"),
    ("beta2 too low", _set("training.beta2", 0.5), "genome.training.beta2", "outside"),
    ("ema between off and on", _set("training.ema", 0.5), "genome.training.ema", "at least 0.9"),
    ("ema of 1 never moves", _set("training.ema", 1.0), "genome.training.ema", "outside"),
    ("r1 too large", _set("loss.r1", 1000.0), "genome.loss.r1", "outside"),
    ("negative loss weight", _set("loss.hinge", -0.5), "genome.loss.hinge", "outside"),
    ("discriminator too narrow", _set("discriminator.width", 4), "genome.discriminator.width", "outside"),
    ("unknown upsampling", _set("generator.blocks.0.upsample", "cubic"), "genome.generator.blocks[0].upsample", "'cubic'"),
    ("unsupported kernel", _set("generator.blocks.0.kernel", 7), "genome.generator.blocks[0].kernel", "1, 3, 5"),
    ("unknown block norm", _set("generator.blocks.2.norm", "layer"), "genome.generator.blocks[2].norm", "'layer'"),
    ("unknown activation", _set("generator.blocks.1.activation", "swish"), "genome.generator.blocks[1].activation", "sin"),
    ("unknown output", _set("generator.output", "relu"), "genome.generator.output", "tanh"),
    ("unknown family", _set("discriminator.family", "stylegan"), "genome.discriminator.family", "resnet"),
    ("unknown D norm", _set("discriminator.norm", "group"), "genome.discriminator.norm", "spectral"),
    ("unsupported d_steps", _set("training.d_steps", 4), "genome.training.d_steps", "1, 2, 3"),
    ("unsupported batch size", _set("training.batch_size", 48), "genome.training.batch_size", "16, 32, 64"),
    ("no adversarial loss", lambda d: {**d, "loss": {**d["loss"], "nonsaturating": 0.0}}, "genome.loss", "adversarial"),
    ("no blocks", _set("generator.blocks", []), "genome.generator.blocks", "0 blocks"),
    ("nine blocks", _set("generator.blocks", [{"channels": 8, "upsample": "none"}] * 9), "genome.generator.blocks", "9 blocks"),
]


@pytest.mark.parametrize("edit, field, text", [c[1:] for c in BAD_GENOMES], ids=[c[0] for c in BAD_GENOMES])
def test_from_json_names_the_bad_field(edit, field, text):
    data = edit(_dcgan_dict())
    with pytest.raises(GenomeError) as info:
        Genome.from_json(json.dumps(data))
    message = str(info.value)
    assert message.startswith(field + ":") or message.startswith(field + " "), message
    assert text in message


def test_non_finite_numbers_are_rejected():
    text = dcgan_genome().to_json().replace('"lr_g": 0.0002', '"lr_g": NaN')
    assert "NaN" in text
    with pytest.raises(GenomeError, match=r"^genome\.training\.lr_g: nan is outside"):
        Genome.from_json(text)


def test_malformed_json_is_a_genome_error():
    with pytest.raises(GenomeError, match="not valid JSON"):
        Genome.from_json('{"schema_version": 1, "generator": ')
    with pytest.raises(GenomeError, match="expected a JSON object"):
        Genome.from_json("[1, 2, 3]")
    assert issubclass(GenomeError, ValueError)


def test_validate_checks_genomes_built_in_python_too():
    with pytest.raises(GenomeError, match=r"^genome\.generator\.blocks\[1\]\.activation: 'swish'"):
        validate(with_blocks(Genome(), Block(), Block(activation="swish")))
    with pytest.raises(GenomeError, match=r"^genome\.training\.batch_size"):
        validate(with_training(Genome(), batch_size=100))
    with pytest.raises(GenomeError, match=r"^genome\.generator\.blocks\[0\]\.kernel"):
        validate(with_blocks(dcgan_genome(), Block(16, kernel=True), Block(16), Block(16)))
    with pytest.raises(GenomeError, match=r"^genome\.generator\.blocks\[2\]\.noise"):
        validate(with_blocks(dcgan_genome(), Block(16), Block(16), Block(16, noise=1)))
    with pytest.raises(GenomeError, match=r"^genome\.training\.d_steps"):
        validate(with_training(dcgan_genome(), d_steps=True))
    with pytest.raises(GenomeError, match=r"^genome\.loss: at least one"):
        validate(Genome(loss=LossGenes(nonsaturating=0.0)))


def test_compute_cap_of_the_generator():
    wide = with_blocks(Genome(), *[Block(channels=256, upsample=u) for u in ["nearest"] * 3 + ["none"] * 5])
    assert estimate_g_macs(wide, 32) > G.MAX_G_MACS_32
    with pytest.raises(GenomeError, match=r"^genome\.generator: \d+ M multiply-adds per image at 32 px exceeds"):
        validate(wide)
    with pytest.raises(GenomeError, match=r"^genome\.generator: "):
        Genome.from_json(wide.to_json())


def test_compute_cap_of_the_discriminator():
    wide_d = Genome(discriminator=DiscriminatorGenes("resnet", 128, "spectral"))
    assert estimate_g_macs(wide_d, 32) <= G.MAX_G_MACS_32
    assert estimate_d_macs(wide_d, 32) > G.MAX_D_MACS_32
    with pytest.raises(GenomeError, match=r"^genome\.discriminator\.width: .* exceeds the cap"):
        validate(wide_d)


def test_compute_cap_of_a_training_step():
    big = with_training(Genome(discriminator=DiscriminatorGenes("dcgan", 32, "spectral")), batch_size=64, d_steps=3)
    assert estimate_g_macs(big, 32) <= G.MAX_G_MACS_32 and estimate_d_macs(big, 32) <= G.MAX_D_MACS_32
    assert estimate_step_macs(big, 32) > G.MAX_STEP_MACS_32
    with pytest.raises(GenomeError, match=r"^genome\.training: one training step costs"):
        validate(big)
    validate(with_training(big, batch_size=16, d_steps=1))  # the same nets with a cheaper step are fine


# ---- layout at a resolution --------------------------------------------------------------


def _ups(blocks) -> list[str]:
    return [b.upsample for b in blocks]


def test_layout_of_three_upsampling_blocks():
    genome = Genome()  # three transposed blocks: 128 -> 64 -> 32 -> 16 channels
    stem, blocks = layout(genome, 32)
    assert stem == 4
    assert _ups(blocks) == ["transposed"] * 3
    assert [(b.in_size, b.out_size) for b in blocks] == [(4, 8), (8, 16), (16, 32)]
    assert [(b.in_channels, b.out_channels) for b in blocks] == [(128, 64), (64, 32), (32, 16)]

    stem, blocks = layout(genome, 16)  # one upsampling too many: the last one refines
    assert stem == 4
    assert _ups(blocks) == ["transposed", "transposed", "none"]
    assert [(b.in_size, b.out_size) for b in blocks] == [(4, 8), (8, 16), (16, 16)]

    stem, blocks = layout(genome, 64)  # one too few and no refine block: 4x4 map upsampled to 8x8
    assert stem == 8
    assert _ups(blocks) == ["transposed"] * 3
    assert [(b.in_size, b.out_size) for b in blocks] == [(8, 16), (16, 32), (32, 64)]


def test_layout_with_refine_blocks_in_between():
    genome = with_blocks(Genome(), Block(32, "none"), Block(32, "bilinear"), Block(16, "none"),
                         Block(16, "pixelshuffle"), Block(8, "nearest"))
    assert layout(genome, 16)[0] == 4
    assert _ups(layout(genome, 16)[1]) == ["none", "bilinear", "none", "pixelshuffle", "none"]
    assert _ups(layout(genome, 32)[1]) == ["none", "bilinear", "none", "pixelshuffle", "nearest"]
    stem, blocks = layout(genome, 64)  # one too few: the first refine block upsamples instead
    assert stem == 4 and blocks[-1].out_size == 64
    assert _ups(blocks) == ["nearest", "bilinear", "none", "pixelshuffle", "nearest"]
    only_refine = with_blocks(Genome(), Block(16, "none"))  # promoted, then 2 parameter-free
    assert layout(only_refine, 32)[0] == 16 and layout(only_refine, 32)[1][0].out_size == 32


@pytest.mark.parametrize("resolution", [16, 32, 64])
def test_every_genome_upsamples_exactly_to_the_resolution(resolution):
    rng = random.Random(resolution)
    k = upsamplings_needed(resolution)
    assert 4 * 2 ** k == resolution
    for _ in range(60):
        genome, _ = variation.mutate(variation.random_genome(rng), rng, strength=3.0)
        stem, blocks = layout(genome, resolution)
        assert blocks[-1].out_size == resolution
        assert (blocks[0].in_size, blocks[0].in_channels) == (stem, genome.generator.stem_channels)
        for a, b in zip(blocks, blocks[1:]):
            assert b.in_size == a.out_size and b.in_channels == a.out_channels
        for bl, gene in zip(blocks, genome.generator.blocks):
            assert bl.out_channels == gene.channels
            assert bl.out_size == bl.in_size * (1 if bl.upsample == "none" else 2)
            # a block upsamples its own way or refines; a refine block may be promoted to nearest
            assert bl.upsample in ((gene.upsample, "none") if gene.upsample != "none" else ("none", "nearest"))
        # the 4x4 map is enlarged (without parameters) only when the blocks cannot upsample
        # enough between them, refine blocks included
        assert (stem > 4) == (len(blocks) < k)


@pytest.mark.parametrize("resolution", [0, 4, 12, 24, 33])
def test_unsupported_resolutions_are_refused(resolution):
    with pytest.raises(GenomeError, match=rf"^resolution: {resolution} must be a power of two"):
        upsamplings_needed(resolution)


# ---- cost estimates ----------------------------------------------------------------------


def test_generator_cost_grows_with_width():
    for i in range(3):
        costs = []
        for c in range(8, 257, 8):
            blocks = list(Genome().generator.blocks)
            blocks[i] = dataclasses.replace(blocks[i], channels=c)
            costs.append(estimate_g_macs(with_blocks(Genome(), *blocks), 32))
        assert all(a < b for a, b in zip(costs, costs[1:])), i
    stems = [estimate_g_macs(Genome().replace(generator=dataclasses.replace(Genome().generator, stem_channels=c)), 32)
             for c in range(16, 257, 8)]
    assert all(a < b for a, b in zip(stems, stems[1:]))


@pytest.mark.parametrize("family", G.D_FAMILIES)
def test_discriminator_cost_grows_with_width(family):
    costs = [estimate_d_macs(Genome(discriminator=DiscriminatorGenes(family, w, "none")), 32)
             for w in range(8, 129, 8)]
    assert all(a < b for a, b in zip(costs, costs[1:]))


def test_step_cost_grows_with_width_batch_and_d_steps():
    base = Genome()
    widths = [estimate_step_macs(base.replace(discriminator=DiscriminatorGenes("dcgan", w, "none")), 32)
              for w in range(8, 129, 8)]
    assert all(a < b for a, b in zip(widths, widths[1:]))
    batches = [estimate_step_macs(with_training(base, batch_size=b), 32) for b in G.BATCH_SIZES]
    assert all(a < b for a, b in zip(batches, batches[1:]))
    d_steps = [estimate_step_macs(with_training(base, d_steps=d), 32) for d in G.D_STEPS]
    assert all(a < b for a, b in zip(d_steps, d_steps[1:]))
    assert estimate_g_macs(base, 64) > estimate_g_macs(base, 32) > estimate_g_macs(base, 16)


def _measured_macs(model: nn.Module, x: torch.Tensor) -> int:
    from evoart.d_inputs import RandomFeatures

    total = 0

    def hook(m, inputs, output):
        nonlocal total
        if isinstance(m, nn.ConvTranspose2d):
            total += inputs[0][0].numel() * m.out_channels * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Conv2d):
            total += output[0].numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            total += m.in_features * m.out_features
        elif isinstance(m, RandomFeatures):  # frozen weights as buffers, applied with F.conv2d
            total += sum(out[0].numel() * w.shape[1] * 9 for out, w in zip(output, m.buffers()))

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return total


def test_estimates_match_the_multiply_adds_of_the_built_nets():
    """The compute cap means something only if the estimate tracks the real networks."""
    rng = random.Random(7)
    genomes = [Genome(), dcgan_genome(), Genome(discriminator=DiscriminatorGenes("resnet", 24, "spectral"))]
    genomes += [variation.mutate(variation.random_genome(rng), rng, 2.0)[0] for _ in range(8)]
    for genome in genomes:
        for r in (16, 32):
            gen = nets.build_generator(genome, r)
            disc = nets.build_discriminator(genome, r)
            g = _measured_macs(gen, torch.randn(1, genome.generator.latent))
            d = _measured_macs(disc, torch.zeros(1, 3, r, r))
            assert g == pytest.approx(estimate_g_macs(genome, r), rel=0.05), describe(genome)
            assert d == pytest.approx(estimate_d_macs(genome, r), rel=0.05), describe(genome)


def test_genomes_are_immutable_values():
    genome = dcgan_genome()
    with pytest.raises(dataclasses.FrozenInstanceError):
        genome.training.lr_g = 1.0  # type: ignore[misc]
    copied = copy.deepcopy(genome)
    assert copied == genome and hash(copied) == hash(genome)
