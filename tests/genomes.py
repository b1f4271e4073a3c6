"""Small genomes shared by the library tests."""

from __future__ import annotations

import dataclasses

from evoart.genome import Block, DiscriminatorGenes, Genome, GeneratorGenes, LossGenes, TrainingGenes, validate


def tiny_genome(**training) -> Genome:
    """A small, sane GAN: about 8 ms a step on one core at 16 px. Keyword arguments
    replace training genes."""
    genome = Genome(
        generator=GeneratorGenes(
            latent=16, stem_channels=32,
            blocks=(Block(16, "nearest", 3, "batch", "relu"), Block(8, "nearest", 3, "batch", "relu")),
        ),
        discriminator=DiscriminatorGenes("dcgan", 8, "none"),
        loss=LossGenes(nonsaturating=1.0),
        training=TrainingGenes(lr_g=2e-3, lr_d=2e-3, beta1=0.5, beta2=0.99, d_steps=1, batch_size=16, ema=0.0),
    )
    return validate(genome.replace(training=dataclasses.replace(genome.training, **training)))


def squares(n: int, seed: int, res: int = 16):
    """Coloured squares of random size and place on black, in [-1, 1]: a tiny dataset
    for the library tests."""
    import torch

    g = torch.Generator().manual_seed(seed)
    x = -torch.ones(n, 3, res, res)
    for i in range(n):
        s = int(torch.randint(4, 10, (1,), generator=g))
        y0, x0 = (int(v) for v in torch.randint(0, res - s + 1, (2,), generator=g))
        x[i, :, y0:y0 + s, x0:x0 + s] = torch.rand(3, 1, 1, generator=g) * 2 - 1
    return x


def assert_selection_ignores_family_metrics(genome, metrics: dict) -> None:
    """What selection reads of an individual (its objectives, its display score) does not
    move when a family's own measures (the ELBO, bits per pixel) do."""
    from evoart import families, ga

    m = ga.new_member(id="g000-i00", genome=genome, parents=[], born=0, seed=0, origin="random", inheritance=None)
    m.metrics = dict(metrics)
    before = (m.objectives(), ga.display_score(m.metrics, None))
    m.metrics.update({k: metrics.get(k, 0.0) * 3 - 1e4 for k in families.FAMILY_METRICS})
    assert (m.objectives(), ga.display_score(m.metrics, None)) == before


def tiny_context(cache_dir) -> "EvalContext":
    """An evaluation context of 16 px squares with quickly measured floors (cached in
    ``cache_dir``): what the executor tests evaluate tiny genomes in."""
    from evoart import fitness
    from evoart.fitness import EvalContext, make_latents

    c = EvalContext(train_images=squares(64, 1), holdout_images=squares(32, 2),
                    latents=make_latents(16, seed=3), noise_seed=4, metric_seed=5)
    c.floors = fitness.protocol_floors(c, repeats=2, cache_dir=str(cache_dir))
    return c
