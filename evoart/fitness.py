"""Fitness: train an individual briefly and score it (``evaluate``), then judge the whole
population with each other's discriminators (``judge``).

Evaluation uses a fixed protocol per run: the same latent vectors, the same number of
samples, the same real images and the same metric seeds for every individual, so that
differences between individuals are differences between generators, not noise. The
real-vs-real floors that put the metrics on one scale are measured once per dataset,
resolution, sample count and metric version (``protocol_floors``), cached on disk and
recorded with the run.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from . import metrics
from .files import atomic_write_text
from .genome import Genome
from .imaging import image_grid, png_bytes, to_uint8
from .nets import build_discriminator
from .objectives import WORST
from .seeds import json_digest
from .train import Init, generate, train_briefly
from .variation import Inheritance

LATENT_MAX = 256
# Per-channel colour parts are left out of the ledger: color, color_pixels and
# color_means say enough, and every stored number shows up in the gallery.
_UNSTORED = ("color_r", "color_g", "color_b")
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
    floors: dict | None = None      # metric -> Floor.to_dict(): real-vs-real at len(latents) samples
    features: str | None = None     # a feature extractor file (.pt2; .pt deprecated) replacing the random CNN
    _scorers: dict = field(default_factory=dict, repr=False, compare=False)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_scorers"] = {}
        return state

    def scorer(self, name: str):
        """The run's scorer of metric ``name``, built once: the registry gives each metric
        the parts of this context it declares (floors are measured only if one needs them)."""
        if name not in self._scorers:
            context = {"features": self.features}
            if "floors" in metrics.get_metric_info(name).context:
                if self.floors is None:
                    self.floors = protocol_floors(self)
                context["floors"] = self.floors
            self._scorers[name] = metrics.build_metric(name, self.holdout_images, seed=self.metric_seed, **context)
        return self._scorers[name]

    @property
    def samples(self) -> int:
        return int(self.latents.shape[0])

    @property
    def resolution(self) -> int:
        return int(self.train_images.shape[-1])


def make_context(cfg, train_u8: np.ndarray, holdout_u8: np.ndarray, device: str,
                 protocol: dict | None = None) -> EvalContext:
    """The evaluation context of a run (``cfg``: its ``EvolveConfig``). Its real-vs-real
    floors come from the run's record (``protocol``, as written by ``protocol_record``)
    when resuming, so a resumed run scores exactly as it began; else they are measured
    (or read from the cache)."""
    from .imaging import to_float_tensor

    ctx = EvalContext(
        train_images=to_float_tensor(train_u8),
        holdout_images=to_float_tensor(holdout_u8),
        latents=make_latents(cfg.samples, seed=cfg.seed + 1),
        noise_seed=cfg.seed + 2,
        metric_seed=cfg.seed + 3,
        device=device,
        features=cfg.features,
    )
    if protocol and protocol.get("floors"):
        ctx.floors = protocol["floors"]
    else:
        ctx.floors = protocol_floors(ctx)
    return ctx


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
            scores = {k: v for k, v in ctx.scorer("perceptual").score_all(fake).items() if k not in _UNSTORED}
            scores["diversity"] = ctx.scorer("diversity").score(fake)["diversity"]
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


# ---- the protocol's real-vs-real floors -------------------------------------------------

def _floors_cache_dir() -> str:
    from .paths import cache_dir

    return str(cache_dir() / "metrics")


def protocol_floors(ctx: EvalContext, *, repeats: int = metrics.FLOOR_REPEATS,
                    cache_dir: str | None = None) -> dict[str, dict]:
    """The run's real-vs-real floors: every metric on ``repeats`` draws of ``ctx.samples``
    training images (real, never in the held-out reference), scored against the held-out
    set exactly as individuals are.

    Computed once per held-out set, training set, sample count, metric seed, embedding
    and metric versions, and cached as JSON under the evoart cache folder (``$EVOART_CACHE``),
    so the second run on the same data starts at once. A cache that cannot be read or
    written is only a miss."""
    from .metrics import embedding_name, metric_versions, tensor_digest

    embedding = embedding_name(ctx.features)
    key_material = {
        "holdout": tensor_digest(ctx.holdout_images), "pool": tensor_digest(ctx.train_images),
        "n": ctx.samples, "seed": ctx.metric_seed, "repeats": repeats, "embedding": embedding,
        "versions": metric_versions(),
    }
    key = json_digest(key_material, length=24)
    path = os.path.join(cache_dir or _floors_cache_dir(), f"floors-{key}.json")
    try:
        with open(path) as f:
            cached = json.load(f)
        if cached.get("key") == key_material:
            return cached["floors"]
    except (OSError, ValueError, KeyError):
        pass
    scorers = metrics.build_scorers(ctx.holdout_images, seed=ctx.metric_seed, features=ctx.features)
    floors = metrics.measure_floors(scorers, ctx.train_images, ctx.samples, seed=ctx.metric_seed,
                                    repeats=repeats)
    out = {k: v.to_dict() for k, v in floors.items() if k not in _UNSTORED}
    try:
        atomic_write_text(path, json.dumps({"key": key_material, "floors": out}, indent=1, sort_keys=True),
                          durable=False)
    except OSError:
        pass  # a cache that cannot be written is only a miss next time
    return out


def protocol_record(ctx: EvalContext) -> dict:
    """What a run records about how it scores: metric versions, embedding, sample counts,
    seeds and the floors (so a resumed run, and ``evoart score --run``, use the same)."""
    from .metrics import embedding_name, metric_versions

    if ctx.floors is None:
        ctx.floors = protocol_floors(ctx)
    return {
        "versions": metric_versions(),
        "embedding": embedding_name(ctx.features),
        "features": ctx.features,
        "samples": ctx.samples,
        "reference_images": int(ctx.holdout_images.shape[0]),
        "metric_seed": ctx.metric_seed,
        "floors": ctx.floors,
    }
