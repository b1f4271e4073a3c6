"""Mutations keep what was learned: a child starts computing its parent's function
wherever its new layout can (network morphisms, ``evoart.morph``)."""

from __future__ import annotations

import dataclasses
import io
import random

import pytest
import torch

from evoart.genome import Block, Genome, GeneratorGenes, validate
from evoart.train import Init, generate, train_briefly
from evoart.variation import Inheritance, identity_block, mutate

from genomes import squares

RES = 16


def parent_genome(**gen) -> Genome:
    """A small generator with batch norm, noise, a residual block and EMA."""
    g = GeneratorGenes(
        latent=16, stem_channels=32,
        blocks=(Block(16, "nearest", 3, "batch", "relu", noise=True),
                Block(16, "transposed", 3, "instance", "lrelu", residual=True),
                Block(8, "none", 3, "batch", "elu")),
        output="tanh")
    genome = Genome(generator=dataclasses.replace(g, **gen))
    return validate(genome.replace(training=dataclasses.replace(genome.training, batch_size=16, ema=0.99)))


@pytest.fixture(scope="module")
def data() -> torch.Tensor:
    return squares(64, seed=0, res=RES)


@pytest.fixture(scope="module")
def parent(data):
    return train_briefly(parent_genome(), data, steps=25, seed=1)


LATENTS = torch.randn(64, 256, generator=torch.Generator().manual_seed(3))


def images(trained) -> torch.Tensor:
    return generate(trained.generator, LATENTS, noise_seed=0)


def child_of(parent, genome: Genome, inheritance: Inheritance, data):
    return train_briefly(genome, data, steps=0, seed=9, init=Init([parent.state], inheritance))


def with_blocks(genome: Genome, blocks, **gen) -> Genome:
    return validate(genome.replace(generator=dataclasses.replace(genome.generator, blocks=tuple(blocks), **gen)))


def gap(parent, child) -> float:
    return float((images(parent) - images(child)).abs().max())


def mean_gap(parent, child) -> float:
    return float((images(parent) - images(child)).abs().mean())


def test_an_added_block_starts_as_an_identity(parent, data):
    base = parent_genome()
    b = list(base.generator.blocks)
    for at, new in ((1, identity_block(Block(16, "none", 5, "group", "relu", noise=True))),  # identity skip
                    (3, identity_block(Block(24, "none", 3, "batch", "gelu")))):             # 1x1 skip, wider
        blocks = b[:at] + [new] + b[at:]
        origin = [(0, i) for i in range(at)] + [None] + [(0, i) for i in range(at, len(b))]
        child = child_of(parent, with_blocks(base, blocks), Inheritance(origin, 0, 0, (at,)), data)
        assert gap(parent, child) < 1e-4, at
    # before morphisms, the same insertion started from random tensors
    blocks = b[:1] + [identity_block(b[0])] + b[1:]
    plain = child_of(parent, with_blocks(base, blocks), Inheritance([(0, 0), None, (0, 1), (0, 2)], 0, 0), data)
    assert gap(parent, plain) > 0.1


def test_an_identity_block_learns(parent, data):
    """The silenced branch has gradients: a few steps of training switch it on."""
    base = parent_genome()
    b = list(base.generator.blocks)
    genome = with_blocks(base, b[:2] + [identity_block(Block(16, "none", 3, "batch", "relu"))] + b[2:])
    child = train_briefly(genome, data, steps=3, seed=9,
                          init=Init([parent.state], Inheritance([(0, 0), (0, 1), None, (0, 2)], 0, 0, (2,))))
    assert float(child.state["g"]["blocks.2.norm.weight"].abs().max()) > 0


def test_a_duplicated_block_from_mutate_keeps_the_function(parent, data):
    """Drawn by the GA's own operator: every add or duplicate keeps the parent's output."""
    base = parent_genome()
    rng, seen = random.Random(0), 0
    for _ in range(400):
        child, inh = mutate(base, rng)
        if not inh.identity_blocks:
            continue
        # keep only the structural change: the other generator genes as the parent's
        blocks = [child.generator.blocks[i] if i in inh.identity_blocks else base.generator.blocks[o[1]]
                  for i, o in enumerate(inh.blocks)]
        genome = with_blocks(base, blocks)
        assert gap(parent, child_of(parent, genome, inh, data)) < 1e-4
        seen += 1
        if seen == 3:
            break
    assert seen == 3


def test_widening_a_block_and_the_stem_computes_the_same_function(parent, data):
    base = parent_genome()
    b = list(base.generator.blocks)
    wider = with_blocks(base, [dataclasses.replace(b[0], channels=24), b[1], dataclasses.replace(b[2], channels=16)],
                        stem_channels=48, latent=24)
    child = child_of(parent, wider, Inheritance.identity(wider), data)
    assert gap(parent, child) < 1e-4  # the EMA generator, which renders
    # the generator that trains got the same channel choices: it computes its parent's function too
    from evoart.nets import build_generator
    g_child, g_parent = build_generator(wider, RES), build_generator(parent_genome(), RES)
    g_child.load_state_dict(child.state["g"])
    g_parent.load_state_dict(parent.state["g"])
    assert float((generate(g_child, LATENTS) - generate(g_parent, LATENTS)).abs().max()) < 1e-4
    # and the copies are not left symmetric: their outgoing weights are split unequally
    w = child.state["g"]["blocks.1.conv.weight"]  # transposed: (in, out, k, k)
    assert child.stats.inherited["g"][0] == child.stats.inherited["g"][1]
    assert not torch.allclose(w[16:], w[:8])


def test_narrowing_keeps_the_units_the_next_layer_weighs_most(parent, data):
    base = parent_genome()
    b = list(base.generator.blocks)
    narrow = with_blocks(base, [dataclasses.replace(b[0], channels=8), b[1], b[2]])
    child = child_of(parent, narrow, Inheritance.identity(narrow), data)
    pw = parent.state["g"]["blocks.1.conv.weight"]  # (in 16, out 16, 4, 4): block 1 reads block 0
    kept = sorted(torch.topk(pw.pow(2).sum((1, 2, 3)), 8).indices.tolist())
    assert torch.equal(child.state["g"]["blocks.0.conv.weight"], parent.state["g"]["blocks.0.conv.weight"][kept])
    fresh = train_briefly(narrow, data, steps=0, seed=9)
    assert mean_gap(parent, child) < mean_gap(parent, fresh)


def test_kernel_upsampler_norm_and_output_changes_that_the_layout_can_express_are_exact(parent, data):
    base = parent_genome()
    b = list(base.generator.blocks)
    cases = {
        "kernel 3 -> 5": [dataclasses.replace(b[0], kernel=5), b[1], b[2]],
        "nearest -> transposed": [dataclasses.replace(b[0], upsample="transposed"), b[1], b[2]],
        "transposed -> pixelshuffle": [b[0], dataclasses.replace(b[1], upsample="pixelshuffle"), b[2]],
        "batch -> none (folded)": [b[0], b[1], dataclasses.replace(b[2], norm="none")],
        "noise on": [b[0], dataclasses.replace(b[1], noise=True), b[2]],
    }
    for name, blocks in cases.items():
        genome = with_blocks(base, blocks)
        assert gap(parent, child_of(parent, genome, Inheritance.identity(genome), data)) < 1e-4, name
    genome = with_blocks(base, b, output="sigmoid")
    assert gap(parent, child_of(parent, genome, Inheritance.identity(genome), data)) < 1e-4, "tanh -> sigmoid"


def test_remove_and_retype_keep_the_other_parts(parent, data):
    base = parent_genome()
    b = list(base.generator.blocks)
    pg = parent.state["g"]
    removed = with_blocks(base, [b[0], b[2]])
    child = child_of(parent, removed, Inheritance([(0, 0), (0, 2)], 0, 0), data)
    g = child.state["g"]
    for name in ("stem.weight", "blocks.0.conv.weight", "blocks.0.norm.running_var", "to_rgb.weight"):
        assert torch.equal(g[name], pg[name]), name
    # 16 -> 8 reads 16 either way; now it upsamples too (the layout promotes it), same filters
    assert torch.equal(g["blocks.1.conv.weight"], pg["blocks.2.conv.weight"])
    fresh = train_briefly(removed, data, steps=0, seed=9)
    assert mean_gap(parent, child) < mean_gap(parent, fresh)
    # re-typed: a new activation and norm; the convolution and everything else are kept
    retyped = with_blocks(base, [b[0], b[1], dataclasses.replace(b[2], norm="instance", activation="sin")])
    child = child_of(parent, retyped, Inheritance.identity(retyped), data)
    g = child.state["g"]
    for name in ("blocks.2.conv.weight", "blocks.2.norm.weight", "blocks.2.norm.bias", "blocks.1.conv.weight"):
        assert torch.equal(g[name], pg[name]), name


def test_adam_state_is_kept_only_for_unchanged_tensors_and_training_continues(parent, data):
    base = parent_genome()
    b = list(base.generator.blocks)
    wider = with_blocks(base, [dataclasses.replace(b[0], channels=24), b[1], b[2]])
    child = train_briefly(wider, data, steps=2, seed=9, init=Init([parent.state], Inheritance.identity(wider)))
    assert child.stats.status == "ok"
    assert "stem.weight" in child.state["opt_g"]
    assert child.state["opt_g"]["stem.weight"]["step"] > parent.state["opt_g"]["stem.weight"]["step"]
    assert child.state["opt_g"]["blocks.1.conv.weight"]["step"] == 2  # rewritten: its moments restarted


def test_a_saved_state_still_morphs_and_an_old_one_still_inherits(parent, data):
    """What the ledger writes loads with weights_only and morphs; a state saved before
    morphisms existed (no genome in its meta) falls back to name-and-shape inheritance."""
    buf = io.BytesIO()
    torch.save(parent.state, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    base = parent_genome()
    b = list(base.generator.blocks)
    wider = with_blocks(base, [dataclasses.replace(b[0], channels=24), b[1], b[2]])
    assert gap(parent, child_of(parent, wider, Inheritance.identity(wider), data)) < 1e-4
    child = train_briefly(wider, data, steps=0, seed=9, init=Init([loaded], Inheritance.identity(wider)))
    assert gap(parent, child) < 1e-4
    old = dict(loaded, meta={k: v for k, v in loaded["meta"].items() if k not in ("genome", "resolution")})
    child = train_briefly(wider, data, steps=1, seed=9, init=Init([old], Inheritance.identity(wider)))
    assert child.stats.status == "ok"
    got, total = child.stats.inherited["g"]
    assert 0 < got < total  # the tensors whose shapes still match


def test_whenever_the_morphism_reports_an_exact_child_it_computes_the_parents_function(data):
    """Over the GA's own mutations of random genomes, the ``exact`` flag is never a lie."""
    from evoart import variation
    from evoart.morph import morph_generator
    from evoart.nets import build_generator

    rng = random.Random(4)
    exact = 0
    for pi in range(3):
        pg = variation.random_genome(rng, RES)
        trained = train_briefly(pg, data, steps=3, seed=pi)
        before = images(trained)
        for _ in range(40):
            child, inh = variation.mutate(pg, rng)
            G = build_generator(child, RES)
            m = morph_generator(child, RES, [(pg, trained.state["g_ema"] or trained.state["g"])], inh,
                                base={k: v.clone() for k, v in G.state_dict().items()}, seed=3)
            G.load_state_dict(m.state)
            if m.exact:
                exact += 1
                assert float((generate(G, LATENTS, noise_seed=0) - before).abs().max()) < 1e-4, \
                    (pg.generator, child.generator)
    assert exact > 0
