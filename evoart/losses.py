"""Adversarial losses and regularisers, weighted by the genome's loss genes.

Each adversarial variant is a pair of functions of discriminator logits; the genome's
weights mix them (normalised to sum 1), so E-GAN's discrete choice of loss is the special
case of a single non-zero weight.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .genome import LossGenes

# name -> (discriminator loss(real_logits, fake_logits), generator loss(fake_logits))
ADVERSARIAL = {
    "nonsaturating": (
        lambda r, f: F.softplus(-r).mean() + F.softplus(f).mean(),
        lambda f: F.softplus(-f).mean(),
    ),
    "hinge": (
        lambda r, f: F.relu(1 - r).mean() + F.relu(1 + f).mean(),
        lambda f: -f.mean(),
    ),
    "leastsquares": (
        lambda r, f: 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f ** 2).mean(),
        lambda f: 0.5 * ((f - 1) ** 2).mean(),
    ),
}


def d_adversarial(genes: LossGenes, real_logits, fake_logits):
    return sum(w * ADVERSARIAL[t][0](real_logits, fake_logits) for t, w in genes.adversarial().items())


def g_adversarial(genes: LossGenes, fake_logits):
    return sum(w * ADVERSARIAL[t][1](fake_logits) for t, w in genes.adversarial().items())


def r1_penalty(discriminator, real):
    """R1 (Mescheder et al. 2018): squared gradient norm of D on real images."""
    real = real.detach().requires_grad_(True)
    out = discriminator(real)
    (grad,) = torch.autograd.grad(out.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def feature_matching(real_features, fake_features):
    """Salimans et al. 2016: match the mean of D's last features on real and fake."""
    return (real_features.detach().mean(0) - fake_features.mean(0)).pow(2).mean()


def mode_seeking(z, fake, eps: float = 1e-5):
    """Mao et al. 2019: penalise generators whose images change less than their latents.

    Split the batch in two halves; the ratio of image distance to latent distance should
    be large, so the loss is its inverse."""
    n = z.shape[0] // 2
    if n == 0:
        return fake.new_zeros(())
    dz = (z[:n] - z[n: 2 * n]).abs().mean()
    dx = (fake[:n] - fake[n: 2 * n]).abs().mean()
    return 1.0 / (dx / dz + eps)
