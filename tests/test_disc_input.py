"""The discriminator's input representation: a gene (pixels, pyramid, random-features)."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
import torch

from evoart import genome as G
from evoart import variation
from evoart.d_inputs import RandomFeatures, laplacian_levels
from evoart.genome import Genome, GenomeError, dcgan_genome
from evoart.nets import build_discriminator, count_parameters
from evoart.train import Init, train_briefly
from evoart.variation import Inheritance

from genomes import squares, tiny_genome

INPUTS = G.D_INPUTS


def with_input(genome: Genome, kind: str, **disc) -> Genome:
    return G.validate(genome.replace(discriminator=dataclasses.replace(genome.discriminator, input=kind, **disc)))


@pytest.fixture(scope="module")
def data():
    return squares(48, seed=1, res=16)


# ---- the gene ----------------------------------------------------------------------------


def test_the_gene_round_trips_through_json():
    for kind in INPUTS:
        genome = with_input(dcgan_genome(), kind)
        again = Genome.from_json(genome.to_json())
        assert again == genome and again.discriminator.input == kind


def test_a_genome_saved_before_the_gene_reads_as_pixels_and_keeps_its_hash():
    d = dcgan_genome().to_dict()
    del d["discriminator"]["input"]
    d["schema_version"] = 1  # as written before the gene, and before the family gene
    d.pop("family", None)
    old = Genome.from_dict(d)
    assert old.discriminator.input == "pixels"
    assert old == dcgan_genome()
    # the hash of a genome as it was written before the gene: a run seeded from it resumes
    canon = json.dumps(d, sort_keys=True, separators=(",", ":"))
    import hashlib

    assert old.content_hash() == hashlib.sha256(canon.encode()).hexdigest()[:12]
    assert with_input(old, "pyramid").content_hash() != old.content_hash()


def test_an_unknown_representation_is_refused_naming_the_field():
    d = dcgan_genome().to_dict()
    d["discriminator"]["input"] = "wavelets"
    with pytest.raises(GenomeError, match=r"genome\.discriminator\.input: 'wavelets' is not one of pixels"):
        Genome.from_dict(d)
    d["discriminator"]["input"] = 3
    with pytest.raises(GenomeError, match=r"genome\.discriminator\.input: expected a string"):
        Genome.from_dict(d)


def test_the_shipped_presets_still_load_with_pixel_discriminators():
    from evoart.presets import list_presets, load_preset

    names = [p.name for p in list_presets()]
    assert "dcgan-classic" in names
    for name in names:
        assert load_preset(name).genome.discriminator.input in INPUTS
    assert load_preset("dcgan-classic").genome.discriminator.input == "pixels"


def test_evolution_draws_mutates_and_mates_the_gene():
    rng = random.Random(4)
    drawn = {variation.random_genome(rng).discriminator.input for _ in range(60)}
    assert drawn == set(INPUTS)
    parent = dcgan_genome()
    changed = set()
    for _ in range(300):
        child, inh = variation.mutate(parent, rng, strength=2.0)
        changed.add(child.discriminator.input)
        assert inh.discriminator == 0
    assert changed == set(INPUTS)
    a, b = with_input(parent, "pyramid"), with_input(parent, "random-features")
    for _ in range(20):
        child, inh = variation.crossover(a, b, rng)
        # D is taken whole from one parent, with what it looks at
        assert child.discriminator.input == (a, b)[inh.discriminator].discriminator.input
    assert variation.repair(with_input(parent, "pyramid")).discriminator.input == "pyramid"


def test_the_compute_estimate_counts_what_each_representation_adds():
    base = dcgan_genome()
    px, pyr, rf = (with_input(base, k) for k in INPUTS)
    assert G.estimate_d_input_macs(px, 32) == 0
    assert G.estimate_step_macs(px, 32) < G.estimate_step_macs(pyr, 32) < G.estimate_step_macs(rf, 32)
    # the frozen network is counted in the per-pass cap, and repair keeps every genome under it
    assert G.estimate_d_macs(rf, 32) > G.estimate_d_macs(px, 32) + G.estimate_d_input_macs(rf, 32) * 0.99
    wide = dataclasses.replace(rf.discriminator, family="resnet", width=128)
    fixed = variation.repair(rf.replace(discriminator=wide))
    assert fixed.discriminator.input == "random-features"
    assert G.estimate_d_macs(fixed, 32) <= G.MAX_D_MACS_32
    assert G.estimate_step_macs(fixed, 32) <= G.MAX_STEP_MACS_32 * 1.0001


# ---- the networks ------------------------------------------------------------------------


@pytest.mark.parametrize("family", G.D_FAMILIES)
def test_every_representation_builds_and_returns_one_logit_per_image(family):
    x = torch.rand(5, 3, 32, 32) * 2 - 1
    for kind in INPUTS:
        small = dcgan_genome().replace(training=dataclasses.replace(dcgan_genome().training, batch_size=16))
        wanted = small.replace(discriminator=G.DiscriminatorGenes(family, 16, "spectral", kind))
        genome = variation.repair(wanted)  # a residual D on random features narrows to fit the cap
        assert genome.discriminator.input == kind
        D = build_discriminator(genome, 32).eval()
        out, feats = D(x, return_features=True)
        assert out.shape == (5,) and torch.isfinite(out).all() and feats.shape[0] == 5
        # the whole state loads strictly into a fresh build (as the judging pass does)
        again = build_discriminator(genome, 32).eval()
        again.load_state_dict(D.state_dict())
        assert torch.allclose(again(x), D(x))


def test_the_laplacian_pyramid_is_lossless():
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    levels = laplacian_levels(x, 4)
    assert [t.shape[-1] for t in levels] == [32, 16, 8, 4]
    rebuilt = levels[-1]
    for band in reversed(levels[:-1]):
        rebuilt = band + torch.nn.functional.interpolate(rebuilt, scale_factor=2, mode="bilinear",
                                                         align_corners=False)
    assert torch.allclose(rebuilt, x, atol=1e-5)


def test_random_features_are_frozen_seeded_and_never_saved():
    genome = with_input(dcgan_genome(), "random-features")
    before = torch.random.get_rng_state()
    a, b = RandomFeatures([8, 16, 32]), RandomFeatures([8, 16, 32])
    assert torch.equal(torch.random.get_rng_state(), before)  # building draws nothing from torch's RNG
    for (na, ta), (nb, tb) in zip(a.named_buffers(), b.named_buffers()):
        assert na == nb and torch.equal(ta, tb)
    assert not torch.equal(a.weight0, RandomFeatures([8, 16, 32], seed=2).weight0)
    D = build_discriminator(genome, 32)
    pixel_D = build_discriminator(dcgan_genome(), 32)
    assert not any(name.startswith("input.") for name in D.state_dict())
    assert not any(name.startswith("input.") for name, _ in D.named_parameters())
    frozen = sum(t.numel() for t in D.input.buffers())
    assert frozen > 1000
    # trainable parameters: the pixel D's, its first layer reading 8 channels instead of 3,
    # and the 1x1 convolutions that bring the deeper levels in
    first = D.features[0].parametrizations.weight.original if hasattr(D.features[0], "parametrizations") \
        else D.features[0].weight
    assert count_parameters(D) - count_parameters(pixel_D) < frozen
    assert first.shape[1] == 8


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("kind", INPUTS)
def test_every_representation_trains_without_nan(kind, precision, data):
    # R1 and feature matching on: their gradients pass through the input representation
    genome = with_input(tiny_genome(), kind)
    genome = genome.replace(loss=dataclasses.replace(genome.loss, r1=1.0, feature_matching=0.1))
    trained = train_briefly(genome, data, steps=4, seed=3, precision=precision)
    assert trained.stats.status == "ok", trained.stats.reason
    assert all(torch.isfinite(torch.tensor(trained.stats.curves[c])).all() for c in ("d_loss", "g_loss"))
    fresh = build_discriminator(genome, 16)
    assert set(trained.state["d"]) == set(fresh.state_dict())
    assert all(torch.isfinite(v).all() for v in trained.state["d"].values())
    if kind == "random-features":
        for (name, t), (_, t0) in zip(trained.discriminator.input.named_buffers(), fresh.input.named_buffers()):
            assert torch.equal(t, t0), f"{name} changed in training"
        assert "input.weight0" not in trained.state["opt_d"]


def test_a_child_with_another_representation_inherits_what_still_fits(data):
    parent = with_input(tiny_genome(), "pixels")
    trained = train_briefly(parent, data, steps=2, seed=1)
    for kind in ("pyramid", "random-features"):
        child = with_input(parent, kind)
        out = train_briefly(child, data, steps=2, seed=2, init=Init([trained.state], Inheritance.identity(child)))
        inherited, total = out.stats.inherited["d"]
        assert out.stats.status == "ok"
        assert 0 < inherited < total  # the new 1x1 taps start fresh; deeper layers continue


def test_the_gallery_shows_the_gene_and_a_change_of_it_only():
    from evoart.gallery.genes import gene_diff, genome_view

    view = genome_view(with_input(dcgan_genome(), "pyramid"), {}, 32)
    assert {"key": "input", "value": "pyramid", "muted": False} in view["discriminator"]
    old = dcgan_genome().to_dict()
    del old["discriminator"]["input"]  # a parent saved before the gene
    same = gene_diff(dcgan_genome().to_dict(), old, 0, None, ["g000-i00"])
    assert not any("input" in row[0] for row in same)
    changed = gene_diff(with_input(dcgan_genome(), "random-features").to_dict(), old, 0, None, ["g000-i00"])
    assert ("discriminator.input", "pixels", "random-features") in changed
