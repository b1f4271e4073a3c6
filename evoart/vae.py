"""Brief training of a variational autoencoder genome: ``train_vae``.

A VAE genome (``genome.family == "vae"``) trains an encoder q(z | x), built like a
discriminator from the genome's ``vae`` genes, and a decoder built from the generator
genes exactly as a GAN's generator is (``nets.build_generator``). The decoder is what the
rest of evoart sees: its samples from the run's fixed latents are samples from the prior
N(0, I), so fitness, judging, rendering, walks and export treat it as any generator.

The loss per image (Kingma & Welling 2014; beta as in Higgins et al. 2017):

    reconstruction(x, decoder(z)) + beta * KL(q(z | x) || N(0, I)) / pixels
    (+ adversarial * the generator's adversarial loss on decoded prior samples)

with ``z = mu + sigma * eps`` (the reparameterisation trick). The reconstruction is one of
``genome.RECONSTRUCTIONS``, each averaged so that it is about one number per pixel; the KL
is divided by the number of pixel values (3 R^2) to be on the same footing. With an
adversarial weight above 0 a discriminator built from the genome's discriminator genes
trains against decoded prior samples with the genome's loss genes (a VAE-GAN, Larsen et al.
2016): it is saved as a GAN's is and sits on the judge panel like any D.

The ELBO reported (``elbo_of``) is the evidence lower bound of the same encoder and
decoder under one fixed observation model for every VAE, whatever loss it trained with: a
Gaussian decoder with one variance per individual, set to its mean squared error (the
maximum-likelihood variance, as in the calibrated decoders of Rybkin et al. 2021), in
nats per image at the run's resolution. It compares VAEs with each other; it is not a
likelihood of a GAN and never enters selection.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from . import losses
from .d_inputs import RandomFeatures, laplacian_levels
from .genome import (Genome, GenomeError, d_input_channels, encoder_as_discriminator, upsamplings_needed,
                     with_d_input)
from .nets import Discriminator, build_discriminator, build_generator, inherit_tensors
from .train import (
    R1_INTERVAL,
    Init,
    Trained,
    TrainStats,
    adam,
    _adam_state_by_name,
    _load_adam_state,
    _state_copy,
    autocast,
    channels_last,
    divergence,
    ema_update,
    finish_stats,
    start_generator,
)

#: The seed of the random-feature reconstruction loss's frozen network. Part of the
#: contract of the ``random-features`` reconstruction: changing it changes every such VAE.
RECONSTRUCTION_FEATURES_SEED = 1994  # the year of Sims' "Evolving Virtual Creatures"
LOGVAR_LIMIT = 10.0  # log-variances of q(z | x) are clamped to +-this: exp() stays finite


class Encoder(nn.Module):
    """q(z | x): the trunk of a discriminator of the encoder genes (reading pixels), whose
    head gives the mean and the log-variance of z (2 x latent numbers) instead of a logit."""

    def __init__(self, genome: Genome, resolution: int):
        super().__init__()
        self.latent = genome.generator.latent
        self.body = Discriminator(encoder_as_discriminator(genome), resolution)
        features = self.body.head.in_features
        self.body.head = nn.Linear(features, 2 * self.latent)
        # start near the prior: small means, unit variances
        nn.init.normal_(self.body.head.weight, std=0.01 / math.sqrt(features))
        nn.init.zeros_(self.body.head.bias)

    def forward(self, x):
        h = self.body.head(self.body.trunk(x).flatten(1))
        mu, logvar = h.float().chunk(2, dim=1)
        return mu, logvar.clamp(-LOGVAR_LIMIT, LOGVAR_LIMIT)


def build_encoder(genome: Genome, resolution: int) -> Encoder:
    if genome.vae is None:
        raise GenomeError(f"genome.vae: a {genome.family} genome has no encoder")
    return Encoder(genome, resolution)


# ---- reconstruction losses ---------------------------------------------------------------

class Reconstruction(nn.Module):
    """The reconstruction error of a batch, one of ``genome.RECONSTRUCTIONS``, about one
    number per pixel. The Laplacian-pyramid L1 is the mean absolute error of each band,
    summed over the bands (each octave of detail counts alike, where plain L1 is ruled by
    flat colour); the random-feature loss is the mean absolute error of each level of a
    frozen, seeded random convolutional network (``d_inputs.RandomFeatures``), summed."""

    def __init__(self, kind: str, genome: Genome, resolution: int):
        super().__init__()
        self.kind = kind
        self.levels = max(1, upsamplings_needed(resolution))  # down to 8x8, as D's pyramid
        self.features = None
        if kind == "random-features":
            self.features = RandomFeatures(d_input_channels(with_d_input(genome, "random-features"), resolution),
                                           seed=RECONSTRUCTION_FEATURES_SEED)

    def forward(self, recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        recon, x = recon.float(), x.float()
        if self.kind == "mse":
            return F.mse_loss(recon, x)
        if self.kind == "l1":
            return F.l1_loss(recon, x)
        if self.kind == "pyramid-l1":
            return sum(F.l1_loss(a, b) for a, b in zip(laplacian_levels(recon, self.levels),
                                                       laplacian_levels(x, self.levels)))
        with torch.no_grad():
            target = self.features(x)
        return sum(F.l1_loss(a, b) for a, b in zip(self.features(recon), target))


def kl_per_image(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) in nats, one per row."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)


def gaussian_elbo(mse: float, kl: float, dims: int) -> float:
    """The ELBO per image in nats of a Gaussian decoder whose variance is the mean squared
    error ``mse`` (the maximum-likelihood variance), for ``dims`` pixel values."""
    return -0.5 * dims * (math.log(2 * math.pi * max(mse, 1e-12)) + 1) - kl


@torch.no_grad()
def elbo_of(encoder: Encoder, decoder, images: torch.Tensor, *, seed: int = 0, batch: int = 64) -> dict[str, float]:
    """The ELBO of ``images`` ((N,3,R,R) in [-1,1]) under ``encoder`` and ``decoder``, one
    posterior sample each (seeded), with its parts: ``elbo`` (nats per image, higher is
    better), ``recon_mse`` (the decoder's mean squared error, on the [-1,1] scale) and
    ``kl`` (nats per image)."""
    encoder.eval()
    decoder.eval()
    device = next(decoder.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    sq, kl, n = 0.0, 0.0, 0
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)  # the decoder's noise injection
        for i in range(0, images.shape[0], batch):
            x = images[i: i + batch].to(device)
            mu, logvar = encoder(x)
            eps = torch.randn(mu.shape, generator=gen).to(device)
            recon = decoder(mu + (0.5 * logvar).exp() * eps).float()
            sq += float((recon - x).pow(2).sum())
            kl += float(kl_per_image(mu, logvar).sum())
            n += x.shape[0]
    dims = images[0].numel()
    mse = sq / (n * dims)
    return {"elbo": round(gaussian_elbo(mse, kl / n, dims), 4), "recon_mse": round(mse, 6), "kl": round(kl / n, 4)}


# ---- training ----------------------------------------------------------------------------

def train_vae(
    genome: Genome,
    data: torch.Tensor,
    *,
    steps: int,
    device: str = "cpu",
    seed: int = 0,
    init: Init | None = None,
    progress: Callable[[int, int], None] | None = None,
    budget_seconds: float | None = None,
    precision: str = "fp32",
) -> Trained:
    """Train a VAE genome on ``data`` ((N,3,R,R) in [-1,1]) for ``steps`` steps; the
    arguments and guarantees are ``train.train_briefly``'s (deterministic on the CPU for a
    seed, divergence detected, the caller's RNG untouched, parents' tensors inherited
    where they fit: the decoder through the same morphisms as a GAN's generator, the
    encoder and discriminator by name and shape from ``Inheritance.discriminator``'s
    parent). ``Trained.generator`` is the decoder (its EMA when the genome has one),
    ``Trained.discriminator`` the VAE-GAN's discriminator or None; the stats' curves hold
    the loss, reconstruction, KL and ELBO per step (the ELBO as ``gaussian_elbo`` of the
    batch)."""
    if genome.family != "vae":
        raise GenomeError(f"genome.family: train_vae trains vae genomes, got a {genome.family}")
    devices = [torch.device(device)] if str(device).startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        return _train(genome, data, steps=steps, device=device, seed=seed, init=init,
                      progress=progress, budget_seconds=budget_seconds, precision=precision)


def _train(genome, data, *, steps, device, seed, init, progress, budget_seconds, precision) -> Trained:
    resolution = data.shape[-1]
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    v, t, lg = genome.vae, genome.training, genome.loss
    dec = build_generator(genome, resolution)
    enc = build_encoder(genome, resolution)
    adversarial = v.adversarial > 0
    D = build_discriminator(genome, resolution) if adversarial else None
    recon_loss = Reconstruction(v.reconstruction, genome, resolution)
    stats = TrainStats(precision=precision)

    start = start_generator(dec, genome, resolution, init, seed, stats)
    side = init.inheritance.discriminator if init is not None else None
    side_source = (lambda name: (side, name)) if side is not None else (lambda name: None)
    if init is not None:
        stats.inherited["encoder"] = list(inherit_tensors(
            enc, [p.get("enc") if p else None for p in init.parents], side_source))
        if D is not None:
            stats.inherited["d"] = list(inherit_tensors(D, [p.get("d") if p else None for p in init.parents],
                                                        side_source))

    layout_ = torch.channels_last if channels_last(device, precision) else torch.contiguous_format
    nets = [m for m in (dec, enc, D, recon_loss) if m is not None]
    for m in nets:
        m.to(device, memory_format=layout_).train()
    dec_ema = start.make_ema(dec, genome, resolution, init, seed, device, layout_)

    opt = adam(list(dec.parameters()) + list(enc.parameters()), device, lr=t.lr_g, betas=(t.beta1, t.beta2))
    opt_d = adam(D.parameters(), device, lr=t.lr_d, betas=(t.beta1, t.beta2)) if D is not None else None
    if init is not None:
        _load_adam_state(opt, dec, init.parents, start.adam_source, "opt_g")
        _load_adam_state(opt, enc, init.parents, side_source, "opt_enc")
        if D is not None:
            _load_adam_state(opt_d, D, init.parents, side_source, "opt_d")

    data = data.to(device, memory_format=layout_)
    amp = lambda: autocast(device, precision)  # noqa: E731
    n = data.shape[0]
    b = min(t.batch_size, n)
    dims = data[0].numel()
    curves: dict[str, list[float]] = {"loss": [], "reconstruction": [], "kl": [], "elbo": []}
    if D is not None:
        curves.update(d_loss=[], g_adversarial=[])
    ema_steps = start.ema_steps
    d_step_count = 0
    report_every = max(1, steps // 50)
    t_start = time.perf_counter()

    def batch_real():
        idx = torch.randint(n, (b,), generator=gen)
        return data[idx.to(data.device)] if data.device.type != "cpu" else data[idx]

    def prior():
        return torch.randn(b, dec.latent, generator=gen).to(device)

    step = 0
    for step in range(1, steps + 1):
        dl = 0.0
        if D is not None:
            # (1) Update D (VAE-GAN): real images against decoded prior samples
            for _ in range(t.d_steps):
                real = batch_real()
                with amp():
                    with torch.no_grad():
                        fake = dec(prior())
                    real_logits, fake_logits = D(real), D(fake)
                d_loss = losses.d_adversarial(lg, real_logits.float(), fake_logits.float())
                d_step_count += 1
                if lg.r1 > 0 and d_step_count % R1_INTERVAL == 0:
                    d_loss = d_loss + (lg.r1 / 2) * R1_INTERVAL * losses.r1_penalty(D, real)
                opt_d.zero_grad(set_to_none=True)
                d_loss.backward()
                opt_d.step()
            dl = float(d_loss.detach())

        # (2) Update encoder and decoder: reconstruct x through z ~ q(z | x), stay near the prior
        x = batch_real()
        with amp():
            mu, logvar = enc(x)
            eps = torch.randn(mu.shape, generator=gen).to(device)
            recon = dec(mu + (0.5 * logvar).exp() * eps)
        rec = recon_loss(recon, x)
        kl = kl_per_image(mu, logvar).mean()
        loss = rec + v.beta * kl / dims
        ga = 0.0
        if D is not None:
            with amp():
                fake_logits = D(dec(prior()))
            g_adv = losses.g_adversarial(lg, fake_logits.float())
            loss = loss + v.adversarial * g_adv
            ga = float(g_adv.detach())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

        if dec_ema is not None:
            ema_steps = ema_update(dec_ema, dec, t.ema, ema_steps)

        # one host sync for the step's figures
        lv, rv, kv, mse = torch.stack([loss.detach().float(), rec.detach().float(), kl.detach().float(),
                                       (recon.detach().float() - x.float()).pow(2).mean()]).tolist()
        curves["loss"].append(lv)
        curves["reconstruction"].append(rv)
        curves["kl"].append(kv)
        curves["elbo"].append(gaussian_elbo(mse, kv, dims) if math.isfinite(mse + kv) else float("nan"))
        if D is not None:
            curves["d_loss"].append(dl)
            curves["g_adversarial"].append(ga)
        reason = divergence(step, {"VAE": lv, "D": dl})
        if reason is not None:
            stats.status, stats.reason = "diverged", reason
            break
        if progress is not None and (step % report_every == 0 or step == steps):
            progress(step, steps)
        if budget_seconds is not None and time.perf_counter() - t_start > budget_seconds:
            break

    finish_stats(stats, step, steps, t_start, curves, (dec, enc, D, dec_ema))
    state = {
        "g": _state_copy(dec),
        "d": _state_copy(D) if D is not None else None,
        "g_ema": _state_copy(dec_ema) if dec_ema is not None else None,
        "enc": _state_copy(enc),
        "opt_g": _adam_state_by_name(opt, dec),
        "opt_enc": _adam_state_by_name(opt, enc),
        "opt_d": _adam_state_by_name(opt_d, D) if D is not None else {},
        "meta": {"lineage_steps": stats.lineage_steps, "ema_steps": ema_steps,
                 "genome": genome.to_dict(), "resolution": resolution},
    }
    return Trained(dec_ema if dec_ema is not None else dec, D, state, stats, extra={"encoder": enc})

