"""Fitness: train an individual briefly and score it (``evaluate``), then judge the whole
population with each other's discriminators (``judge``).

Evaluation uses a fixed protocol per run: the same latent vectors, the same number of
samples, the same real images and the same metric seeds for every individual, so that
differences between individuals are differences between generators, not noise.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from . import metrics
from .genome import Genome
from .imaging import image_grid, png_bytes, to_uint8
from .nets import build_discriminator
from .train import Init, generate, train_briefly
from .variation import Inheritance

LATENT_MAX = 256
# The objective values a diverged or failed individual gets: the worst possible realism
# and a perceptual distance far beyond any trained generator's.
WORST = {"realism": 0.0, "swd": 1e4, "diversity": 0.0}
SAMPLE_GRID = 64  # images in an individual's samples.png (8 x 8)


@dataclass
class EvalContext:
    """What every evaluation of a run shares. Picklable: a process pool sends it to each
    worker once; scorers are built lazily in the process that uses them."""

    train_images: torch.Tensor      # (N,3,R,R) in [-1,1]: what individuals train on
    holdout_images: torch.Tensor    # (M,3,R,R): never trained on; judged against and scored against
    latents: torch.Tensor           # (samples, LATENT_MAX): the run's fixed latent vectors
    noise_seed: int
    metric_seed: int
    device: str = "cpu"
    _scorers: dict = field(default_factory=dict, repr=False, compare=False)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_scorers"] = {}
        return state

    def scorer(self, name: str):
        if name not in self._scorers:
            self._scorers[name] = metrics.get_metric(name)(self.holdout_images, seed=self.metric_seed)
        return self._scorers[name]

    @property
    def resolution(self) -> int:
        return int(self.train_images.shape[-1])


def make_latents(n: int, seed: int) -> torch.Tensor:
    """The run's fixed latent vectors; a genome with latent size L uses the first L columns."""
    return torch.randn(n, LATENT_MAX, generator=torch.Generator().manual_seed(seed))


@dataclass
class EvalTask:
    id: str
    genome: dict
    seed: int
    steps: int
    parents: list[dict | None] = field(default_factory=list)   # training states, by parent slot
    inheritance: dict | None = None
    budget_seconds: float | None = None


@dataclass
class Evaluation:
    id: str
    status: str                      # "ok" | "diverged" | "failed"
    reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    stats: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    samples: np.ndarray | None = None          # uint8 (N,R,R,3) from the fixed latents
    generator_state: dict | None = None        # what renders: the EMA generator when there is one
    train_state: dict | None = None            # what a child inherits

    def samples_png(self) -> bytes | None:
        if self.samples is None:
            return None
        return png_bytes(image_grid(self.samples[:SAMPLE_GRID], cols=8, pad=1, scale=2))


def failed(task_id: str, reason: str) -> Evaluation:
    return Evaluation(id=task_id, status="failed", reason=reason, metrics=dict(WORST))


def evaluate(task: EvalTask, ctx: EvalContext, progress: Callable[[int, int], None] | None = None) -> Evaluation:
    """Train one individual and score it on its own (the judging pass comes later).

    Exceptions in training or scoring make the individual ``failed`` with the reason;
    the run goes on."""
    t0 = time.perf_counter()
    try:
        genome = Genome.from_dict(task.genome)
        init = None
        if task.inheritance is not None and any(p is not None for p in task.parents):
            init = Init(task.parents, Inheritance.from_dict(task.inheritance))
        trained = train_briefly(
            genome, ctx.train_images, steps=task.steps, device=ctx.device, seed=task.seed,
            init=init, progress=progress, budget_seconds=task.budget_seconds,
        )
        t1 = time.perf_counter()
        fake = generate(trained.generator, ctx.latents, noise_seed=ctx.noise_seed)
        finite = bool(torch.isfinite(fake).all())
        status, reason = trained.stats.status, trained.stats.reason
        if not finite and status == "ok":
            status, reason = "diverged", "generated images contain NaN or infinity"
        if status == "ok":
            scores = {"swd": ctx.scorer("swd").score(fake)["swd"],
                      "diversity": ctx.scorer("diversity").score(fake)["diversity"]}
        else:
            scores = {k: v for k, v in WORST.items() if k != "realism"}
            fake = torch.nan_to_num(fake, nan=0.0, posinf=1.0, neginf=-1.0)
        t2 = time.perf_counter()
        gen_state = {k: v.detach().cpu() for k, v in trained.generator.state_dict().items()}
        return Evaluation(
            id=task.id, status=status, reason=reason, metrics=scores,
            stats=trained.stats.to_dict(),
            timings={"train_s": round(t1 - t0, 3), "score_s": round(t2 - t1, 3), "total_s": round(t2 - t0, 3)},
            samples=to_uint8(fake),
            generator_state=gen_state,
            train_state=trained.state,
        )
    except Exception as exc:  # an individual's failure must not stop the run
        last = traceback.extract_tb(exc.__traceback__)[-1]
        return failed(task.id, f"{type(exc).__name__}: {exc} ({last.filename.rsplit('/', 1)[-1]}:{last.lineno})")


# ---- the judging pass --------------------------------------------------------------------

@dataclass
class Judged:
    matrix: dict[tuple[str, str], float]   # (D's individual, G's individual) -> share of pairs
    realism: dict[str, float]               # G's individual -> mean over the other Ds


@torch.no_grad()
def judge(
    entries: list[tuple[str, Genome, dict | None, np.ndarray | None]],
    holdout: torch.Tensor,
    *,
    n: int,
    device: str = "cpu",
) -> Judged:
    """Each discriminator of the population scores every other generator's samples and
    ``n`` held-out real images; realism of a generator is the share of (generated, real)
    pairs in which a D scores the generated image at least as real, averaged over the
    other individuals' Ds (its own D left out). Scale-free, so it compares individuals
    trained with different adversarial losses.

    ``entries``: (id, genome, discriminator state or None, samples uint8 or None). An
    individual without a usable D (diverged, failed) does not judge; one without samples
    is not judged and gets realism 0.
    """
    from .imaging import to_float_tensor

    real = holdout[:n].to(device)
    fakes = {i: to_float_tensor(s[:n]).to(device) for i, _, _, s in entries if s is not None}
    matrix: dict[tuple[str, str], float] = {}
    resolution = real.shape[-1]
    for d_id, genome, d_state, _ in entries:
        if d_state is None:
            continue
        D = build_discriminator(genome, resolution)
        D.load_state_dict(d_state)
        D.to(device).eval()
        real_scores = D(real).float().cpu()
        if not torch.isfinite(real_scores).all():
            continue
        for g_id, fake in fakes.items():
            if g_id == d_id:
                continue
            fake_scores = torch.nan_to_num(D(fake).float().cpu(), nan=-float("inf"))
            matrix[(d_id, g_id)] = metrics.pairwise_realism(fake_scores, real_scores)
    realism = {}
    for g_id, *_ in entries:
        values = [v for (d, g), v in matrix.items() if g == g_id]
        realism[g_id] = float(np.mean(values)) if values and g_id in fakes else 0.0
    return Judged(matrix, realism)


def generate_samples(genome: Genome, generator_state: dict, ctx: EvalContext, n: int | None = None) -> np.ndarray:
    """The first ``n`` fixed-latent samples of a saved generator, as uint8 (N,R,R,3).

    Both an uninterrupted and a resumed run judge from these (rebuilt from the saved
    state), so the judging pass is identical either way."""
    from .nets import build_generator

    G = build_generator(genome, ctx.resolution)
    G.load_state_dict(generator_state)
    latents = ctx.latents if n is None else ctx.latents[:n]
    return to_uint8(generate(G, latents, noise_seed=ctx.noise_seed))
