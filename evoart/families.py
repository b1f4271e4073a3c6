"""Model families: where evoart asks "which kind of model is this genome?".

Every genome has a family (``Genome.family``). Each family is one ``Family`` record of
plain functions, registered here by name, and every caller that trains, samples, judges
or renders goes through it instead of assuming a GAN:

* ``train``: ``train.train_briefly``'s signature, returning ``train.Trained`` (whose
  ``generator`` is what samples and renders, ``discriminator`` None if the family has none);
* ``sample``: images (N,3,R,R) in [-1,1] from the generator state a run saved and the
  run's fixed latents (or, for a family without latents, its fixed sampling noise);
  ``sample_trained`` the same from a just-trained ``Trained``, on its device;
* ``family_metrics``: the family's own measures of a trained individual (a VAE's ELBO),
  recorded beside the shared metrics and never used by selection, which compares every
  family by the same objectives (``objectives.OBJECTIVES``);
* ``has_discriminator``: whether an individual sits on the judge panel (a family without
  one is judged, never judges);
* ``renders``: whether ``evoart render`` draws it with the generator pipeline (a spatial
  latent, walks, export).

The autoregressive models (``ar_family``) are the third; a further family adds its
``Family`` with ``register``, and the genome schema gains its genes as
``genome.FAMILY_GENES`` describes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .ar_family import ar_metrics, sample_ar_state, sample_ar_trained, train_ar_family
from .errors import EvoartError
from .genome import Genome
from .nets import build_generator
from .train import generate, train_briefly
from .vae import elbo_of, train_vae


class FamilyError(EvoartError, ValueError):
    """A family evoart does not know, or an operation the family does not have."""


@dataclass(frozen=True)
class Family:
    name: str
    label: str                                   # how pages and tables name it
    train: Callable                              # (genome, data, *, steps, device, seed, init, progress, budget_seconds, precision) -> Trained
    sample: Callable                             # (genome, generator_state, latents, *, resolution, noise_seed) -> (N,3,R,R)
    sample_trained: Callable                     # (trained, latents, *, noise_seed) -> (N,3,R,R)
    family_metrics: Callable                     # (genome, trained, images, *, seed) -> dict[str, float]
    has_discriminator: Callable[[Genome], bool]
    renders: bool = True


def sample_generator(genome: Genome, generator_state: dict, latents: torch.Tensor, *, resolution: int,
                     noise_seed: int) -> torch.Tensor:
    """A generator's images from fixed latents: a GAN's G or a VAE's decoder."""
    G = build_generator(genome, resolution)
    G.load_state_dict(generator_state)
    return generate(G, latents, noise_seed=noise_seed)


def sample_trained_generator(trained, latents: torch.Tensor, *, noise_seed: int) -> torch.Tensor:
    return generate(trained.generator, latents, noise_seed=noise_seed)


def _no_metrics(genome: Genome, trained, images: torch.Tensor, *, seed: int) -> dict[str, float]:
    return {}


def _vae_metrics(genome: Genome, trained, images: torch.Tensor, *, seed: int) -> dict[str, float]:
    """The ELBO of ``images`` (held-out: never trained on) and its parts (``vae.elbo_of``)."""
    return elbo_of(trained.extra["encoder"], trained.generator, images, seed=seed)


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    FAMILIES[family.name] = family
    return family


register(Family("gan", "GAN", train_briefly, sample_generator, sample_trained_generator, _no_metrics,
                lambda genome: True))
register(Family("vae", "VAE", train_vae, sample_generator, sample_trained_generator, _vae_metrics,
                lambda genome: genome.vae is not None and genome.vae.adversarial > 0))
# An AR model has no discriminator (judged, never judging) and renders through its own
# path (evoart.render's AR branch: continued scans, copula walks, the step network).
register(Family("ar", "AR", train_ar_family, sample_ar_state, sample_ar_trained, ar_metrics,
                lambda genome: False, renders=False))


def get(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise FamilyError(f"unknown model family {name!r} (this evoart has {', '.join(FAMILIES)})") from None


def of(genome: Genome) -> Family:
    """The family record of ``genome``."""
    return get(genome.family)


#: Measures a family records that selection must not see (documented in docs/FAMILIES.md).
FAMILY_METRICS = ("elbo", "recon_mse", "kl", "bits_per_pixel", "uniform_bits")
