"""Variation as the GA relies on it: every random, mutated or mated genome builds and runs
at every resolution and survives a trip through JSON; operators are reproducible from
their own RNG and leave the global one alone; repair fixes anything; mutation strength
means something; and the inheritance maps point at real parent blocks."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import statistics

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evoart import genome as G
from evoart import nets
from evoart.genome import (
    Block,
    DiscriminatorGenes,
    Genome,
    GeneratorGenes,
    LossGenes,
    TrainingGenes,
    dcgan_genome,
    validate,
)
from evoart.variation import Inheritance, crossover, mutate, random_genome, repair

# ---- the property test: 500 genomes build, run and round-trip ----------------------------

EXAMPLES = 5
GENOMES_PER_EXAMPLE = 100
RESOLUTIONS = (16, 32)
BATCH = 2


def check_inheritance(child: Genome, inh: Inheritance, parents: tuple[Genome, ...]) -> None:
    """One entry per child block, each None or an existing block of an existing parent,
    inherited blocks in their parents' order; stem and D from an existing parent."""
    assert len(inh.blocks) == len(child.generator.blocks)
    last = {}
    for entry in inh.blocks:
        if entry is None:
            continue
        p, j = entry
        assert 0 <= p < len(parents)
        assert 0 <= j < len(parents[p].generator.blocks)
        assert j > last.get(p, -1), "inherited blocks keep their order"
        last[p] = j
    assert inh.stem is not None and 0 <= inh.stem < len(parents)
    assert inh.discriminator is not None and 0 <= inh.discriminator < len(parents)
    assert Inheritance.from_dict(json.loads(json.dumps(inh.to_dict()))) == inh


def check_builds_runs_and_round_trips(genome: Genome) -> None:
    again = Genome.from_json(genome.to_json())
    assert again == genome
    assert again.content_hash() == genome.content_hash()
    with torch.no_grad():
        for r in RESOLUTIONS:
            g = nets.build_generator(genome, r)
            d = nets.build_discriminator(genome, r)
            images = g(torch.randn(BATCH, genome.generator.latent))
            assert images.shape == (BATCH, 3, r, r), (r, genome.to_json())
            assert torch.isfinite(images).all()
            assert images.min() >= -1 and images.max() <= 1
            logits = d(images)
            assert logits.shape == (BATCH,), (r, genome.to_json())
            assert torch.isfinite(logits).all()


def make_genomes(seed: int, strength: float, n: int) -> list[tuple[str, Genome]]:
    """A lineage: random genomes, mutations (at ``strength`` and at 3) and crossovers of
    anything made so far, so later genomes are many operators away from random ones."""
    rng = random.Random(seed)
    pool: list[Genome] = []
    out = []
    for i in range(n):
        kind = ("random", "mutated", "crossed")[i % 3] if len(pool) >= 2 else "random"
        if kind == "random":
            child = random_genome(rng, resolution=rng.choice((16, 32, 64)))
            assert validate(child) is child
        elif kind == "mutated":
            parent = rng.choice(pool)
            child, inh = mutate(parent, rng, strength=strength if i % 2 else 3.0)
            check_inheritance(child, inh, (parent,))
        else:
            a, b = rng.sample(pool, 2)
            child, inh = crossover(a, b, rng)
            check_inheritance(child, inh, (a, b))
            assert child.discriminator.family == (a, b)[inh.discriminator].discriminator.family
            if rng.random() < 0.5:  # the GA mutates mated children too
                child, _ = mutate(child, rng, strength=strength)
        pool.append(child)
        out.append((kind, child))
    return out


@pytest.mark.slow  # one of make test-fast's slowest (12-25 s here)
def test_500_random_mutated_and_crossed_genomes_build_run_and_round_trip():
    checked: list[tuple[str, str]] = []

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(seed=st.integers(0, 2 ** 32 - 1), strength=st.floats(0.1, 3.0))
    def check(seed, strength):
        for kind, genome in make_genomes(seed, strength, GENOMES_PER_EXAMPLE):
            check_builds_runs_and_round_trips(genome)
            checked.append((kind, genome.content_hash()))

    check()
    assert len(checked) >= 500
    kinds = [k for k, _ in checked]
    assert min(kinds.count(k) for k in ("random", "mutated", "crossed")) >= 150
    assert len({h for _, h in checked}) >= 400  # genuinely different genomes, not 500 copies


# ---- reproducibility and the global RNG --------------------------------------------------


def _run_operators(seed: int):
    rng = random.Random(seed)
    a = random_genome(rng)
    b = random_genome(rng, resolution=16)
    m, m_inh = mutate(a, rng, strength=2.0)
    c, c_inh = crossover(a, b, rng)
    return a, b, m, m_inh.to_dict(), c, c_inh.to_dict(), rng.random()


def test_operators_are_deterministic_for_a_seed_and_leave_global_random_alone():
    random.seed(1234)
    before = random.getstate()
    first = [_run_operators(s) for s in range(20)]
    again = [_run_operators(s) for s in range(20)]
    assert random.getstate() == before
    assert first == again
    # and the seed matters: twenty seeds give twenty different outcomes
    assert len({json.dumps([x.to_dict() if isinstance(x, Genome) else x for x in r]) for r in first}) == 20


def test_operators_ignore_the_global_random_state():
    random.seed(1)
    one = _run_operators(5)
    random.seed(2)
    assert _run_operators(5) == one


# ---- random genomes ----------------------------------------------------------------------


@pytest.mark.parametrize("resolution", [16, 32, 64])
def test_random_genomes_upsample_to_their_resolution(resolution):
    rng = random.Random(resolution)
    k = G.upsamplings_needed(resolution)
    for _ in range(100):
        genome = random_genome(rng, resolution=resolution)
        ups = [b for b in genome.generator.blocks if b.upsample != "none"]
        assert len(ups) == k
        assert len(genome.generator.blocks) in (k, k + 1)
        assert G.layout(genome, resolution)[0] == 4  # no enlarged stem needed


def test_random_genomes_vary_and_stay_within_the_caps():
    rng = random.Random(0)
    genomes = [random_genome(rng) for _ in range(200)]
    assert len({g.content_hash() for g in genomes}) == 200
    for field in ("latent", "stem_channels", "output"):
        assert len({getattr(g.generator, field) for g in genomes}) > 1, field
    assert {g.discriminator.family for g in genomes} == set(G.D_FAMILIES)
    assert len({g.training.lr_g for g in genomes}) == 200
    for g in genomes:
        assert G.estimate_step_macs(g, 32) <= G.MAX_STEP_MACS_32
    cheap = sum(G.estimate_step_macs(g, 32) <= G.MAX_STEP_MACS_32 / 2 for g in genomes)
    assert cheap >= 195  # they start at about half the cap, leaving evolution room to grow


# ---- repair ------------------------------------------------------------------------------


def test_repair_fixes_a_genome_outside_every_range():
    wild = Genome(
        generator=GeneratorGenes(
            latent=100_000,
            stem_channels=5000,
            blocks=tuple(Block(channels=10_000 + i, upsample="cubic", kernel=7, norm="layer",
                               activation="swish", residual=1, noise=0) for i in range(20)),
            output="relu",
        ),
        discriminator=DiscriminatorGenes(family="stylegan", width=1000, norm="group"),
        loss=LossGenes(nonsaturating=-1.0, hinge=0.0, leastsquares=-3.0, r1=1e6,
                       feature_matching=-2.0, mode_seeking=7.0),
        training=TrainingGenes(lr_g=-0.1, lr_d=50.0, beta1=-1.0, beta2=2.0, d_steps=9,
                               batch_size=1000, ema=0.5),
    )
    fixed = repair(wild)
    assert validate(fixed) is fixed
    assert Genome.from_json(fixed.to_json()) == fixed
    g = fixed.generator
    assert 1 <= len(g.blocks) <= 8
    assert g.latent == 256 and g.output == "tanh"
    assert all(b.upsample == "nearest" and b.kernel == 3 and b.norm == "none" and b.activation == "relu"
               for b in g.blocks)
    assert all(b.residual is True and b.noise is False for b in g.blocks)
    assert fixed.discriminator.family == "dcgan" and fixed.discriminator.norm == "spectral"
    assert fixed.loss.adversarial() == {"nonsaturating": 1.0}
    assert (fixed.loss.r1, fixed.loss.feature_matching, fixed.loss.mode_seeking) == (100.0, 0.0, 1.0)
    t = fixed.training
    assert (t.lr_g, t.lr_d, t.beta1, t.beta2) == (1e-5, 1e-2, 0.0, 0.9999)
    assert t.d_steps in G.D_STEPS and t.batch_size in G.BATCH_SIZES and t.ema == 0.0
    assert G.estimate_step_macs(fixed, 32) <= G.MAX_STEP_MACS_32


def test_repair_of_edge_cases():
    empty = repair(Genome().replace(generator=GeneratorGenes(blocks=())))
    assert len(empty.generator.blocks) == 1
    near = repair(Genome().replace(
        generator=dataclasses.replace(Genome().generator, stem_channels=3, latent=2,
                                      blocks=(Block(33.3), Block(-50), Block(12))),  # type: ignore[arg-type]
        training=dataclasses.replace(Genome().training, ema=1.5, batch_size=20, d_steps=True),  # type: ignore[arg-type]
    ))
    assert near.generator.stem_channels == 16 and near.generator.latent == 8
    assert [b.channels for b in near.generator.blocks] == [32, 8, 16]
    assert near.training.ema == G.EMA[1] and near.training.batch_size == 16
    assert near.training.d_steps == 1  # True is not a number of steps
    twenty = repair(Genome().replace(generator=dataclasses.replace(
        Genome().generator, blocks=tuple(Block(8, "none") for _ in range(20)))))
    assert len(twenty.generator.blocks) == 8
    kernel_true = repair(Genome().replace(generator=dataclasses.replace(
        Genome().generator, blocks=(Block(16, kernel=True),) * 3)))  # type: ignore[arg-type]
    assert kernel_true.generator.blocks[0].kernel == 3
    assert Genome.from_json(kernel_true.to_json()) == kernel_true


@pytest.mark.parametrize("make", [Genome, dcgan_genome], ids=["default", "dcgan"])
def test_repair_keeps_a_valid_genome(make):
    assert repair(make()) == make()


_categories = lambda valid: st.sampled_from(tuple(valid) + ("bogus", ""))  # noqa: E731
_ints = st.integers(-10_000, 100_000)
_floats = st.floats(allow_nan=True, allow_infinity=True)


@st.composite
def junk_genomes(draw):
    blocks = draw(st.lists(st.builds(
        Block, channels=_ints, upsample=_categories(G.UPSAMPLE_KINDS),
        kernel=st.sampled_from((0, 1, 2, 3, 5, 7, True)), norm=_categories(G.G_NORMS),
        activation=_categories(G.ACTIVATIONS), residual=st.sampled_from((True, False, 0, 1)),
        noise=st.booleans()), max_size=20))
    return Genome(
        GeneratorGenes(draw(_ints), draw(_ints), tuple(blocks), draw(_categories(G.OUTPUT_ACTIVATIONS))),
        DiscriminatorGenes(draw(_categories(G.D_FAMILIES)), draw(_ints), draw(_categories(G.D_NORMS))),
        LossGenes(*[draw(_floats) for _ in range(6)]),
        TrainingGenes(draw(_floats), draw(_floats), draw(_floats), draw(_floats),
                      draw(st.sampled_from((0, 1, 2, 3, 4, True))), draw(_ints), draw(_floats)),
    )


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(junk_genomes())
def test_repair_makes_any_genome_valid_and_is_idempotent(genome):
    fixed = repair(genome)
    validate(fixed)
    assert Genome.from_json(fixed.to_json()) == fixed
    assert repair(fixed) == fixed


# ---- mutation strength -------------------------------------------------------------------


def _genes(genome: Genome) -> dict:
    out = {}

    def walk(path, x):
        if isinstance(x, dict):
            for k, v in x.items():
                walk(f"{path}.{k}", v)
        elif isinstance(x, list):
            out[path + ".count"] = len(x)
            for i, v in enumerate(x):
                walk(f"{path}[{i}]", v)
        else:
            out[path] = x

    walk("genome", genome.to_dict())
    return out


def _mutation_stats(strength: float, n: int = 200):
    rng = random.Random(42)
    parents = [random_genome(rng) for _ in range(20)]
    fractions, lr_steps, structural = [], [], 0
    for i in range(n):
        parent = parents[i % len(parents)]
        child, inh = mutate(parent, rng, strength=strength)
        a, b = _genes(parent), _genes(child)
        keys = set(a) | set(b)
        fractions.append(sum(a.get(k) != b.get(k) for k in keys) / len(keys))
        lr_steps.append(abs(math.log(child.training.lr_g / parent.training.lr_g)))
        structural += len(child.generator.blocks) != len(parent.generator.blocks) or None in inh.blocks
    return statistics.mean(fractions), statistics.mean(lr_steps), structural / n


def test_mutation_strength_scales_how_much_changes():
    gentle, gentle_lr, gentle_struct = _mutation_stats(0.1)
    normal, _, _ = _mutation_stats(1.0)
    strong, strong_lr, strong_struct = _mutation_stats(3.0)
    assert gentle < 0.03, gentle        # a gene or so in a hundred
    assert 0.05 < normal < 0.3, normal  # "a few genes, gently"
    assert strong > 0.25, strong        # a third of the genome
    assert strong > 10 * gentle
    assert strong_lr > 20 * max(gentle_lr, 1e-6)
    assert gentle_struct < 0.05 < 0.4 < strong_struct


# ---- inheritance maps --------------------------------------------------------------------


def test_gentle_mutation_without_structural_change_is_an_identity_map():
    rng = random.Random(3)
    seen = 0
    for _ in range(100):
        parent = random_genome(rng)
        child, inh = mutate(parent, rng, strength=0.1)
        if len(child.generator.blocks) == len(parent.generator.blocks) and None not in inh.blocks:
            assert inh == Inheritance.identity(child)
            seen += 1
    assert seen > 80


def test_structural_mutations_map_surviving_blocks_to_their_parent_blocks():
    rng = random.Random(11)
    grown = shrunk = 0
    for _ in range(300):
        parent = random_genome(rng)
        child, inh = mutate(parent, rng, strength=3.0)
        check_inheritance(child, inh, (parent,))
        n_child, n_parent = len(child.generator.blocks), len(parent.generator.blocks)
        grown += n_child > n_parent
        shrunk += n_child < n_parent
        if n_child == n_parent + 1:
            assert inh.blocks.count(None) >= 1  # the new block has no parent tensors
    assert grown > 10 and shrunk > 10


def test_mutation_maps_each_block_to_the_parent_block_it_came_from():
    """One structural change at most: a kept block sits where it was, or one place
    later/earlier when a block was inserted/removed before it, and keeps its kind
    unless the mutation swapped it."""
    rng = random.Random(5)
    shifted = 0
    for _ in range(300):
        parent = random_genome(rng)
        child, inh = mutate(parent, rng, strength=1.0)
        offsets = {j - i for i, (_, j) in ((i, e) for i, e in enumerate(inh.blocks) if e is not None)}
        assert offsets <= {-1, 0, 1} and not {-1, 1} <= offsets
        shifted += bool(offsets - {0})
    assert shifted > 10


@pytest.mark.slow  # one of make test-fast's slowest (2026-12-02, a slow hour: the suite at 3:18)
def test_crossover_maps_blocks_to_both_parents():
    rng = random.Random(8)
    from_a = from_b = 0
    for _ in range(300):
        a, b = random_genome(rng), random_genome(rng)
        child, inh = crossover(a, b, rng)
        check_inheritance(child, inh, (a, b))
        # the head comes from a and the tail from b
        parents_in_order = [e[0] for e in inh.blocks if e is not None]
        assert parents_in_order == sorted(parents_in_order)
        assert inh.blocks[0] == (0, 0)
        for i, (p, j) in enumerate(e for e in inh.blocks if e is not None):
            src = (a, b)[p].generator.blocks[j]
            got = child.generator.blocks[i]
            assert (got.upsample, got.kernel, got.norm, got.activation) == \
                   (src.upsample, src.kernel, src.norm, src.activation)
        assert child.generator.latent == a.generator.latent
        from_a += any(e[0] == 0 for e in inh.blocks)
        from_b += any(e and e[0] == 1 for e in inh.blocks)
        assert child.discriminator.family == (a, b)[inh.discriminator].discriminator.family
    assert from_a == 300 and from_b > 200


def test_inheritance_identity_and_json():
    genome = dcgan_genome()
    inh = Inheritance.identity(genome)
    assert inh.blocks == [(0, 0), (0, 1), (0, 2)] and inh.stem == 0 and inh.discriminator == 0
    mixed = Inheritance([(0, 0), None, (1, 2)], 0, 1)
    data = json.loads(json.dumps(mixed.to_dict()))
    assert data == {"blocks": [[0, 0], None, [1, 2]], "stem": 0, "discriminator": 1}
    assert Inheritance.from_dict(data) == mixed
