"""Losses as training relies on them: each adversarial variant rewards a discriminator
that tells real from fake and a generator that fools it; the genome's weights mix the
variants, normalised to sum 1 (E-GAN's single loss is one non-zero weight); R1, feature
matching and mode seeking are zero where nothing is wrong, positive where something is,
and their genes scale them in the loss a run records."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from evoart import losses
from evoart.genome import LOSS_TERMS, LossGenes
from evoart.train import train_briefly

from genomes import tiny_genome

# What a sure and right D outputs on real and on fake images, in each loss's own coding
# (least squares: Mao et al.'s targets 1 for real and 0 for fake); halfway is unsure.
TARGETS = {"nonsaturating": (3.0, -3.0), "hinge": (1.0, -1.0), "leastsquares": (1.0, 0.0)}


def logits(value: float) -> torch.Tensor:
    return torch.full((64,), value) + torch.linspace(-0.1, 0.1, 64)


def only(term: str) -> LossGenes:
    return LossGenes(**{t: (1.0 if t == term else 0.0) for t in LOSS_TERMS})


# ---- adversarial losses ------------------------------------------------------------------


@pytest.mark.parametrize("term", LOSS_TERMS)
def test_the_discriminator_loss_is_lower_when_it_tells_real_from_fake(term):
    genes, (real, fake) = only(term), TARGETS[term]
    unsure = (real + fake) / 2
    right = losses.d_adversarial(genes, logits(real), logits(fake))
    fooled = losses.d_adversarial(genes, logits(fake), logits(real))
    assert right < losses.d_adversarial(genes, logits(unsure), logits(unsure)) < fooled
    assert right.ndim == 0 and torch.isfinite(right)


@pytest.mark.parametrize("term", LOSS_TERMS)
def test_the_generator_loss_is_lower_when_it_fools_the_discriminator(term):
    genes, (real, fake) = only(term), TARGETS[term]
    fooled = losses.g_adversarial(genes, logits(real))  # D takes the fakes for real
    unsure = losses.g_adversarial(genes, logits((real + fake) / 2))
    assert fooled < unsure < losses.g_adversarial(genes, logits(fake))


@pytest.mark.parametrize("term", LOSS_TERMS)
def test_each_loss_pushes_the_logits_the_right_way(term):
    """From an unsure D, a gradient step on D's loss raises the real logits and lowers the
    fake ones; one on G's loss raises the fake ones."""
    genes, (real_target, fake_target) = only(term), TARGETS[term]
    unsure = (real_target + fake_target) / 2
    real, fake = torch.full((8,), unsure, requires_grad=True), torch.full((8,), unsure, requires_grad=True)
    losses.d_adversarial(genes, real, fake).backward()
    assert (real.grad < 0).all() and (fake.grad > 0).all()
    fake_g = torch.full((8,), unsure, requires_grad=True)
    losses.g_adversarial(genes, fake_g).backward()
    assert (fake_g.grad < 0).all()


def test_the_genome_weights_mix_the_losses_normalised_to_one():
    r, f = torch.randn(2, 32, generator=torch.Generator().manual_seed(0))

    def d(genes):
        return float(losses.d_adversarial(genes, r, f))

    def g(genes):
        return float(losses.g_adversarial(genes, f))

    single = {t: (d(only(t)), g(only(t))) for t in LOSS_TERMS}
    mixed = LossGenes(nonsaturating=0.5, hinge=0.3, leastsquares=0.2)
    assert d(mixed) == pytest.approx(
        0.5 * single["nonsaturating"][0] + 0.3 * single["hinge"][0] + 0.2 * single["leastsquares"][0])
    assert g(mixed) == pytest.approx(
        0.5 * single["nonsaturating"][1] + 0.3 * single["hinge"][1] + 0.2 * single["leastsquares"][1])
    # only the proportions count: a tenth of every weight is the same loss
    tenth = LossGenes(nonsaturating=0.05, hinge=0.03, leastsquares=0.02)
    assert d(tenth) == pytest.approx(d(mixed))
    assert g(tenth) == pytest.approx(g(mixed))
    # one non-zero weight, however small, is that loss alone (E-GAN's discrete choice)
    for t in LOSS_TERMS:
        small = LossGenes(**{u: (0.01 if u == t else 0.0) for u in LOSS_TERMS})
        assert d(small) == pytest.approx(single[t][0])
    # the regularisers' genes are not adversarial weights
    regularised = dataclasses.replace(only("hinge"), r1=5.0, feature_matching=2.0, mode_seeking=1.0)
    assert d(regularised) == pytest.approx(single["hinge"][0])


# ---- regularisers ------------------------------------------------------------------------


class Linear(nn.Module):
    """A discriminator whose input gradient is known: a fixed linear map of the image."""

    def __init__(self, scale: float):
        super().__init__()
        self.w = nn.Parameter(torch.full((3 * 4 * 4,), scale))

    def forward(self, x):
        return x.flatten(1) @ self.w


def test_r1_is_zero_for_a_flat_discriminator_and_grows_with_its_slope():
    real = torch.rand(6, 3, 4, 4)
    assert losses.r1_penalty(Linear(0.0), real) == 0
    one, two = (losses.r1_penalty(Linear(w), real).item() for w in (1.0, 2.0))
    assert one > 0
    assert two == pytest.approx(4 * one)  # a squared gradient norm
    assert not real.requires_grad  # the caller's images are left as they were


def test_r1_can_be_trained_against():
    d = Linear(1.0)
    losses.r1_penalty(d, torch.rand(6, 3, 4, 4)).backward()
    assert d.w.grad is not None and (d.w.grad > 0).all()  # shrinking the slope lowers it


def test_feature_matching_is_zero_when_the_means_agree_and_moves_only_the_generator():
    real = torch.randn(16, 32)
    assert losses.feature_matching(real, real.flip(0)) == pytest.approx(0, abs=1e-12)  # same mean
    fake = (real + 1.0).requires_grad_(True)
    real.requires_grad_(True)
    loss = losses.feature_matching(real, fake)
    assert loss.item() == pytest.approx(1.0)
    loss.backward()
    assert fake.grad is not None and real.grad is None  # D's real features are a fixed target


def test_mode_seeking_punishes_a_collapsed_generator():
    z = torch.randn(8, 16, generator=torch.Generator().manual_seed(0))
    varied = torch.randn(8, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    collapsed = varied[:1].expand(8, -1, -1, -1)  # one image whatever the latent
    assert 0 < losses.mode_seeking(z, varied) < losses.mode_seeking(z, collapsed)
    assert losses.mode_seeking(z, 2 * varied) < losses.mode_seeking(z, varied)  # more change, less loss
    assert losses.mode_seeking(z[:1], varied[:1]) == 0  # one image: no pair to compare


# ---- the genes scale the regularisers in what a run records --------------------------------


def recorded(curve: str, steps: int, **loss_genes) -> list[float]:
    """The loss curve of a tiny genome trained ``steps`` steps on red squares."""
    genome = tiny_genome()
    genome = genome.replace(loss=dataclasses.replace(genome.loss, **loss_genes))
    images = -torch.ones(64, 3, 16, 16)
    images[:, 0, 4:12, 4:12] = 1.0
    return train_briefly(genome, images, steps=steps, seed=0).stats.curves[curve]


@pytest.mark.parametrize("gene, weight", [("feature_matching", 1.0), ("mode_seeking", 0.5)])
def test_a_generator_regulariser_adds_its_gene_times_itself_to_the_generator_loss(gene, weight):
    # one step: D's update comes first and does not depend on the gene, so the same D
    # judges the same images and only the regulariser's term differs
    none, once, twice = (recorded("g_loss", 1, **{gene: w})[0] for w in (0.0, weight, 2 * weight))
    assert once > none
    assert twice - none == pytest.approx(2 * (once - none), abs=3e-5)  # curves keep 5 decimals


def test_r1_adds_its_gene_times_itself_to_the_discriminator_loss_every_fourth_step():
    none, once, twice = (recorded("d_loss", 4, r1=w) for w in (0.0, 10.0, 20.0))
    assert none[:3] == once[:3] == twice[:3]  # lazy R1: the first three steps go without
    assert once[3] > none[3]
    assert twice[3] - none[3] == pytest.approx(2 * (once[3] - none[3]), abs=3e-5)
