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
from .genome import Genome
from .imaging import image_grid, png_bytes, to_uint8
from .nets import build_discriminator
from .train import Init, generate, train_briefly
from .variation import Inheritance

LATENT_MAX = 256
# The objective values a diverged or failed individual gets: the worst possible realism
# and coverage, and distances far beyond any trained generator's.
WORST = {"realism": 0.0, "perceptual": 1e3, "coverage": 0.0, "swd": 1e4, "diversity": 0.0}
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
    features: str | None = None     # a TorchScript feature extractor replacing the random CNN
    _scorers: dict = field(default_factory=dict, repr=False, compare=False)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_scorers"] = {}
        return state

    def scorer(self, name: str):
        if name not in self._scorers:
            options = {}
            if name == "perceptual":
                if self.floors is None:
                    self.floors = protocol_floors(self)
                options = {"floors": self.floors, "features": self.features}
            elif name in ("rkid", "coverage"):
                options = {"features": self.features}
            self._scorers[name] = metrics.get_metric(name)(self.holdout_images, seed=self.metric_seed, **options)
        return self._scorers[name]

    @property
    def samples(self) -> int:
        return int(self.latents.shape[0])

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
    from .data import default_cache_dir

    return str(default_cache_dir() / "metrics")


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
    import hashlib

    key = hashlib.sha256(json.dumps(key_material, sort_keys=True).encode()).hexdigest()[:24]
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
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump({"key": key_material, "floors": out}, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        pass
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


# ---- scoring outside a run: two image sets, or a run's individuals again ----------------

#: What ``evoart score`` reports, in this order.
REPORTED = ("perceptual", "swd", "rkid", "color", "coverage", "density", "diversity")
MIN_REAL_IMAGES = 32


def _pick(names: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    if not names:
        return REPORTED
    unknown = [n for n in names if n not in REPORTED]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}; evoart score reports: {', '.join(REPORTED)}")
    return tuple(dict.fromkeys(names))


def score_image_sets(
    real: torch.Tensor, fake: torch.Tensor, *, samples: int | None = None, seed: int = 0,
    features: str | None = None, names: list[str] | tuple[str, ...] | None = None,
    repeats: int = metrics.FLOOR_REPEATS,
) -> dict:
    """Every metric between a real and a generated image set ((N, 3, R, R) in [-1, 1]).

    The real images are split at random (seeded) into halves: the reference every metric
    compares with, and a pool from which the real-vs-real floors are measured at the same
    sample count as the fakes. ``samples`` fakes (default: as many as the fake set has,
    at most half the pool, so floor draws can be disjoint) are scored. Returns a flat
    ``{metric: value}`` plus ``meta``.
    """
    names = _pick(names)
    if real.shape[0] < MIN_REAL_IMAGES:
        raise ValueError(f"need at least {MIN_REAL_IMAGES} real images (half are the reference, half "
                         f"measure the real-vs-real spread), got {real.shape[0]}")
    if tuple(real.shape[-2:]) != tuple(fake.shape[-2:]):
        raise ValueError(f"real images are {tuple(real.shape[-2:])} but generated ones {tuple(fake.shape[-2:])}")
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(real.shape[0], generator=gen)
    half = real.shape[0] // 2
    reference, pool = real[perm[:half]], real[perm[half:]]
    limit = min(fake.shape[0], pool.shape[0] // 2)
    n = min(samples, limit) if samples else limit
    if n < 2:
        raise ValueError(f"need at least 2 generated images, got {fake.shape[0]}")
    chosen = fake[torch.randperm(fake.shape[0], generator=gen)[:n]] if n < fake.shape[0] else fake
    scorer = metrics.make_perceptual(reference, seed=seed, floor_real=pool, n=n, repeats=repeats,
                                     features=features)
    result = scorer.score_all(chosen)
    floors = dict(scorer.floors)
    if "diversity" in names:
        div = metrics.make_diversity(reference, seed=seed)
        result["diversity"] = div.score(chosen)["diversity"]
        floors["diversity"] = metrics._summarise(
            {"diversity": [div.score(pool[torch.randperm(pool.shape[0], generator=gen)[:n]])["diversity"]
                           for _ in range(repeats)]}, n)["diversity"]
    versions = metrics.metric_versions()
    return {
        **{k: float(result[k]) for k in names},
        "meta": {
            "samples": n, "fake_images": int(fake.shape[0]), "real_images": int(real.shape[0]),
            "reference_images": int(reference.shape[0]), "floor_pool_images": int(pool.shape[0]),
            "resolution": int(real.shape[-1]), "seed": seed, "embedding": scorer.embedding_name,
            "floors": {k: floors[k].to_dict() for k in names if k in floors},
            "versions": {k: versions[k] for k in names if k in versions},
            "parts": {k: float(v) for k, v in result.items() if k not in names and k not in _UNSTORED},
        },
    }


def score_folders(real: str, fake: str, *, resolution: int = 32, **options) -> dict:
    """``score_image_sets`` on two image folders (or built-in dataset names), decoded at
    ``resolution`` as evoart decodes training data."""
    from . import data
    from .imaging import to_float_tensor

    real_set = data.load_images(real, resolution)
    fake_set = data.load_images(fake, resolution)
    out = score_image_sets(to_float_tensor(real_set.images), to_float_tensor(fake_set.images), **options)
    out["meta"].update({"real": real_set.source, "fake": fake_set.source,
                        "skipped": len(real_set.skipped) + len(fake_set.skipped)})
    return out


def rescore_run(run_dir, *, generation: int | None = None, names=None,
                progress: Callable[[int, int], None] | None = None) -> dict:
    """Score a run's individuals again with this evoart's metrics and the run's own
    protocol: its data split, fixed latents, noise seed, metric seed and recorded floors.
    Reads the run (never writes it). ``generation``: only that generation's members;
    default: every individual whose generator weights were saved."""
    from .config import EvolveConfig
    from .genome import Genome
    from .nets import build_generator
    from .runner import load_data, make_context
    from .store import opened

    names = _pick(names)
    with opened(run_dir) as store:
        record = store.config
        cfg = EvolveConfig.from_dict(record["evolve"], source=f"run {store.run_dir.name}")
        if generation is None:
            rows = [r for r in store.individuals() if r.status == "ok"]
        else:
            ids = [i for i, _ in store.members(generation)]
            if not ids:
                raise ValueError(f"run {store.run_dir.name} has no finished generation {generation}")
            rows = store.individuals(ids=ids)
        _, train_u8, holdout_u8 = load_data(cfg)
        ctx = make_context(cfg, train_u8, holdout_u8, "cpu", protocol=record.get("metrics"))
        scorer = ctx.scorer("perceptual")
        out = []
        for done, row in enumerate(rows, 1):
            state = store.load_generator_state(row.id)
            entry = {"id": row.id, "born": row.born, "status": row.status,
                     "recorded": store.scores(row.id, generation)}
            if state is not None:
                G = build_generator(Genome.from_dict(row.genome), ctx.resolution)
                G.load_state_dict(state)
                fake = generate(G, ctx.latents, noise_seed=ctx.noise_seed)
                result = scorer.score_all(fake)
                if "diversity" in names:
                    result["diversity"] = ctx.scorer("diversity").score(fake)["diversity"]
                entry.update({k: float(result[k]) for k in names})
            out.append(entry)
            if progress:
                progress(done, len(rows))
    return {
        "individuals": out,
        "meta": {"run": str(run_dir), "samples": ctx.samples, "reference_images": int(ctx.holdout_images.shape[0]),
                 "resolution": ctx.resolution, "floors": {k: ctx.floors[k] for k in names if k in ctx.floors},
                 "versions": {k: v for k, v in metrics.metric_versions().items() if k in names},
                 "recorded_versions": (record.get("metrics") or {}).get("versions"),
                 "generation": generation},
    }
