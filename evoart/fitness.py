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

import itertools
import json
import math
import os
import time
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from . import metrics, ornaments
from .config import resolve_batched, resolve_interleave
from .files import atomic_write_text
from .genome import Genome, GenomeError
from .imaging import image_grid, png_bytes, to_uint8
from .nets import build_discriminator
from .objectives import WORST
from .seeds import json_digest
from . import batched, families
from .train import Init, adam, resolve_precision, train_interleaved
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
    precision: str = "fp32"         # training precision, resolved: "fp32" or "bf16" (metrics stay fp32)
    floors: dict | None = None      # metric -> Floor.to_dict(): real-vs-real at len(latents) samples
    features: str | None = None     # a feature extractor file (.pt2; .pt deprecated) replacing the random CNN
    batched: bool = False           # train GANs of one architecture together (evoart.batched, ``group_tasks``)
    max_group: int = 32             # the most individuals one batched group holds
    interleave: int = 1             # GANs one worker trains at once, a step of each in turn (train.train_interleaved)
    _scorers: dict = field(default_factory=dict, repr=False, compare=False)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_scorers"] = {}
        return state

    @property
    def metric_device(self) -> str | None:
        """Where the scorers do their costly work: the run's card when it trains on CUDA
        (``cuda`` or ``cuda:N``), else None, the CPU (on an MPS device some of the
        metrics' float64 work would not run)."""
        return self.device if str(self.device).startswith("cuda") else None

    def scorer(self, name: str):
        """The run's scorer of metric ``name``, built once: the registry gives each metric
        the parts of this context it declares (floors are measured only if one needs them)."""
        if name not in self._scorers:
            context = {"features": self.features, "device": self.metric_device}
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


def noise_seed_of(seed: int) -> int:
    """The seed of a run's fixed noise (GANs' noise injection, AR models' sampling noise)."""
    return int(seed) + 2


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
        noise_seed=noise_seed_of(cfg.seed),
        metric_seed=cfg.seed + 3,
        device=device,
        precision=cfg.precision if cfg.precision != "auto" else resolve_precision("auto", device),
        features=cfg.features,
        batched=resolve_batched(getattr(cfg, "batched", "off"), device) == "on",
        interleave=resolve_interleave(getattr(cfg, "interleave", None), device),
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
    # how many individuals the generation trains at once (0: not said): a pool with more
    # workers than that gives each of them the idle workers' threads (halving's last
    # generations train one or two individuals)
    cohort: int = 0


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


def _init_of(task: EvalTask) -> Init | None:
    if task.inheritance is not None and any(p is not None for p in task.parents):
        return Init(task.parents, Inheritance.from_dict(task.inheritance))
    return None


def _failure(task: EvalTask, exc: Exception) -> Evaluation:
    last = traceback.extract_tb(exc.__traceback__)[-1]
    return failed(task.id, f"{type(exc).__name__}: {exc} ({last.filename.rsplit('/', 1)[-1]}:{last.lineno})")


def evaluate(task: EvalTask, ctx: EvalContext, progress: Callable[[int, int], None] | None = None) -> Evaluation:
    """Train one individual and score it on its own (the judging pass comes later).

    Exceptions in training or scoring make the individual ``failed`` with the reason;
    the run goes on."""
    t0 = time.perf_counter()
    try:
        genome = Genome.from_dict(task.genome)
        family = families.of(genome)
        trained = family.train(
            genome, ctx.train_images, steps=task.steps, device=ctx.device, seed=task.seed,
            init=_init_of(task), progress=progress, budget_seconds=task.budget_seconds, precision=ctx.precision,
        )
        out = _scored(task, genome, family, trained, ctx, t0, time.perf_counter())
    except Exception as exc:  # an individual's failure must not stop the run
        out = _failure(task, exc)
    # out here, a failed training's tensors (held by the traceback) are gone too
    release_device_memory(ctx.device)
    return out


def release_device_memory(device: str) -> None:
    """Give a GPU's cached blocks back between evaluations, whatever the executor: the
    next may be another architecture, and an out-of-memory failure must not leave the
    card full for it. Nothing to do on the CPU."""
    if str(device).startswith("cuda"):
        torch.cuda.empty_cache()


def group_tasks(tasks: list[EvalTask], ctx: EvalContext, workers: int = 1) -> list[list[EvalTask]]:
    """A generation's tasks as the executor runs them (its *work units*). With
    ``ctx.batched``, GAN individuals of one architecture (``batched.signature``) and the
    same steps and time limit form groups of up to ``ctx.max_group``, trained in one
    batched pass. With ``ctx.interleave`` above 1, the GAN individuals left alone, with
    the same steps and no time limit, form packs of up to ``ctx.interleave``, trained
    interleaved (``unit_kind``), and no larger than shares them out among ``workers``
    (8 individuals and 2 workers: two packs of 4, not one of 8 and an idle worker). Everything else is a unit of one. Units keep their tasks' order, in
    order of their first task."""
    keys = []
    for task in tasks:
        try:
            genome = Genome.from_dict(task.genome)
        except GenomeError:
            genome = None
        sig = batched.signature(genome, ctx.resolution) if (genome is not None and ctx.batched) else None
        keys.append(None if sig is None else (sig, task.steps, task.budget_seconds))
    units = [[tasks[i] for i in group] for group in batched.groups(keys, ctx.max_group)]
    if ctx.interleave <= 1:
        return units
    pack_keys = []
    for unit in units:
        genome = _genome_or_none(unit[0]) if len(unit) == 1 else None
        # a time limit is each individual's own: in a pack they would share one clock
        ok = genome is not None and genome.family == "gan" and unit[0].budget_seconds is None
        pack_keys.append(("pack", unit[0].steps) if ok else None)
    packable = sum(k is not None for k in pack_keys)
    size = max(1, min(ctx.interleave, math.ceil(packable / max(1, workers))))
    return [[t for i in pack for t in units[i]] for pack in batched.groups(pack_keys, size)]


def _genome_or_none(task: EvalTask) -> Genome | None:
    try:
        return Genome.from_dict(task.genome)
    except GenomeError:
        return None


def unit_kind(tasks: list[EvalTask], ctx: EvalContext) -> str:
    """How a unit from ``group_tasks`` trains: ``alone`` (one individual), ``batched`` (one
    architecture, with ``ctx.batched``: ``batched.train_group``) or ``interleaved``
    (``train.train_interleaved``)."""
    if len(tasks) == 1:
        return "alone"
    if ctx.batched:
        sigs = {batched.signature(g, ctx.resolution) if g is not None else None
                for g in map(_genome_or_none, tasks)}
        if len(sigs) == 1 and None not in sigs:
            return "batched"
    return "interleaved"


def evaluate_group(tasks: list[EvalTask], ctx: EvalContext,
                   progress: Callable[[str, int, int], None] | None = None) -> list[Evaluation]:
    """Evaluate a unit from ``group_tasks``: its members trained together (``unit_kind``:
    one batched training, or interleaved), then each scored on its own, as ``evaluate``
    scores it. ``progress(id, step, total)`` reports every member. If a batched training
    fails, each member is evaluated alone, so one bad member cannot fail its group; an
    interleaved member whose training fails (out of memory, most likely) is retried alone."""
    kind = unit_kind(tasks, ctx)
    if kind == "alone":
        task = tasks[0]
        return [evaluate(task, ctx, (lambda s, n: progress(task.id, s, n)) if progress else None)]
    if kind == "interleaved":
        return _evaluate_interleaved(tasks, ctx, progress)
    t0 = time.perf_counter()
    try:
        genomes = [Genome.from_dict(t.genome) for t in tasks]
        report = (lambda s, n: [progress(t.id, s, n) for t in tasks]) if progress else None
        trained = batched.train_group(
            genomes, ctx.train_images, steps=tasks[0].steps, seeds=[t.seed for t in tasks],
            inits=[_init_of(t) for t in tasks], device=ctx.device, precision=ctx.precision,
            progress=report, budget_seconds=tasks[0].budget_seconds)
    except Exception as exc:
        # out of memory, most likely on a GPU: smaller, one at a time
        warnings.warn(f"batched training of {len(tasks)} individuals failed ({type(exc).__name__}: {exc}); "
                      "training each alone", RuntimeWarning, stacklevel=2)
        release_device_memory(ctx.device)
        return [evaluate(t, ctx, (lambda s, n, _id=t.id: progress(_id, s, n)) if progress else None) for t in tasks]
    t1 = time.perf_counter()
    release_device_memory(ctx.device)  # the batched buffers go before the members are scored
    out = []
    for task, genome, tr in zip(tasks, genomes, trained):
        try:
            # each member's share of the batched training time
            out.append(_scored(task, genome, families.of(genome), tr, ctx, t1 - (t1 - t0) / len(tasks), t1))
        except Exception as exc:
            out.append(_failure(task, exc))
    del trained  # the members' nets; what the ledger keeps of them is in out
    release_device_memory(ctx.device)
    return out


def _evaluate_interleaved(tasks: list[EvalTask], ctx: EvalContext,
                          progress: Callable[[str, int, int], None] | None) -> list[Evaluation]:
    t0 = time.perf_counter()
    try:
        genomes = [Genome.from_dict(t.genome) for t in tasks]
        trained = train_interleaved(
            genomes, ctx.train_images, steps=tasks[0].steps, seeds=[t.seed for t in tasks],
            inits=[_init_of(t) for t in tasks], device=ctx.device, precision=ctx.precision,
            progress=(lambda i, s, n: progress(tasks[i].id, s, n)) if progress else None,
            budget_seconds=tasks[0].budget_seconds)
    except Exception as exc:  # before any member trained (the images did not fit, say): each alone
        warnings.warn(f"interleaved training of {len(tasks)} individuals failed ({type(exc).__name__}: {exc}); "
                      "training each alone", RuntimeWarning, stacklevel=2)
        release_device_memory(ctx.device)
        return [evaluate(t, ctx, (lambda s, n, _id=t.id: progress(_id, s, n)) if progress else None) for t in tasks]
    t1 = time.perf_counter()
    release_device_memory(ctx.device)
    out: dict[int, Evaluation] = {}
    retry = []
    for k, (task, genome, tr) in enumerate(zip(tasks, genomes, trained)):
        if isinstance(tr, Exception):
            retry.append((k, tr))
            continue
        try:
            # each member's share of the interleaved training time
            out[k] = _scored(task, genome, families.of(genome), tr, ctx, t1 - (t1 - t0) / len(tasks), t1)
        except Exception as exc:
            out[k] = _failure(task, exc)
    del trained, tr  # the members' nets: what the ledger keeps of them is in out
    release_device_memory(ctx.device)
    for k, exc in retry:  # most likely out of memory beside the others: alone it has the card to itself
        task = tasks[k]
        warnings.warn(f"{task.id}: training beside {len(tasks) - 1} others failed ({type(exc).__name__}: {exc}); "
                      "training it alone", RuntimeWarning, stacklevel=2)
        out[k] = evaluate(task, ctx, (lambda s, n, _id=task.id: progress(_id, s, n)) if progress else None)
    return [out[k] for k in range(len(tasks))]


def _scored(task: EvalTask, genome: Genome, family, trained, ctx: EvalContext, t0: float, t1: float) -> Evaluation:
    """Score a trained individual on its own fixed-latent samples (``evaluate``'s second half)."""
    gen_state = {k: v.detach().cpu() for k, v in trained.generator.state_dict().items()}
    fake = family.sample_trained(trained, ctx.latents, noise_seed=ctx.noise_seed)
    finite = bool(torch.isfinite(fake).all())
    status, reason = trained.stats.status, trained.stats.reason
    if not finite and status == "ok":
        status, reason = "diverged", "generated images contain NaN or infinity"
    if status == "ok":
        scores = {k: v for k, v in ctx.scorer("perceptual").score_all(fake).items() if k not in _UNSTORED}
        scores["diversity"] = ctx.scorer("diversity").score(fake)["diversity"]
        # the family's own measures (a VAE's ELBO on the held-out images): recorded, never selected on
        scores.update(family.family_metrics(genome, trained, ctx.holdout_images, seed=ctx.metric_seed))
    else:
        scores = {k: v for k, v in WORST.items() if k != "realism"}
        fake = torch.nan_to_num(fake, nan=0.0, posinf=1.0, neginf=-1.0)
    samples = to_uint8(fake)
    if status == "ok":  # what mate choice looks at (evoart.ornaments), once per individual
        scores.update(ornaments.compute(samples))
    t2 = time.perf_counter()
    return Evaluation(
        id=task.id, status=status, reason=reason, metrics=scores,
        stats=trained.stats.to_dict(),
        timings={"train_s": round(t1 - t0, 3), "score_s": round(t2 - t1, 3), "total_s": round(t2 - t0, 3)},
        samples=samples,
        generator_state=gen_state,
        train_state=trained.state,
    )


# ---- the judging pass --------------------------------------------------------------------

MIN_JUDGES = 3          # discriminators (besides the critic) every generator is judged by, kin if need be
CRITIC_STEPS = 150      # the fresh critic's fixed training budget each generation
CRITIC_BATCH = 64
CRITIC_LR = 1e-3
# Kin, from the least to the most related: the order in which kin are called back when a
# generator has fewer than MIN_JUDGES non-kin judges. A sibling's D shares only a
# parent's starting weights with G's own D; G's own D started from a parent's D; a
# child's D is G's own D trained further. G's own D never judges G.
KIN_FALLBACK_ORDER = ("sibling", "parent", "child")
BN_MODES = ("eval", "batch")


@dataclass
class Critic:
    """The panel's independent critic for one generation: trained from scratch for
    ``steps`` steps, seeded, on held-out real images against the generation's samples."""

    id: str                  # its D id in the judge matrix, e.g. "critic-g003"
    seed: int
    steps: int = CRITIC_STEPS


@dataclass
class Judged:
    matrix: dict[tuple[str, str], float]   # (D's id, G's id) -> share of pairs (ties half)
    realism: dict[str, float]               # G's id -> min(critic, median of its D judges)
    roles: dict[tuple[str, str], str] = field(default_factory=dict)  # cell -> peer|memory|fallback|critic
    critic_seconds: float = 0.0

    def fallbacks(self) -> dict[str, list[str]]:
        """G -> the kin whose D judged it because it had too few non-kin judges."""
        out: dict[str, list[str]] = {}
        for (d, g), role in sorted(self.roles.items()):
            if role == "fallback":
                out.setdefault(g, []).append(d)
        return out


class _CriticNet(torch.nn.Module):
    """A small convolutional critic with one output per generator (no normalisation:
    nothing depends on a batch-norm mode)."""

    def __init__(self, resolution: int, heads: int, width: int = 16):
        super().__init__()
        layers, c, r = [], 3, resolution
        for w in (width, 2 * width, 4 * width):
            layers += [torch.nn.Conv2d(c, w, 4, stride=2, padding=1), torch.nn.LeakyReLU(0.2, inplace=True)]
            c, r = w, r // 2
            if r <= 4:
                break
        self.features = torch.nn.Sequential(*layers)
        self.head = torch.nn.Linear(c * r * r, heads)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


def train_critic(real: torch.Tensor, fakes: list[torch.Tensor], *, steps: int, seed: int,
                 device: str = "cpu") -> torch.nn.Module:
    """A critic trained from scratch to tell ``real`` from each of ``fakes`` (all
    (N,3,R,R) in [-1,1]), with the logistic loss, for exactly ``steps`` steps.

    One shared trunk and one output per fake set (generator): head k learns real
    against generator k only, so a generator unlike the others (a constant colour, a
    near-black one) cannot hide in the crowd, at the cost of one small network. Each
    step sees a batch of real images and the same number of fakes from every
    generator. Scored on images it did not train on, head k estimates the
    neural-network divergence of Gulrajani et al. 2019 between real and generator k.
    Deterministic for a seed on the CPU. Returns the net: ``net(x)[:, k]``."""
    devices = [torch.device(device)] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        k = len(fakes)
        # channels_last: oneDNN's layout on the CPU (a critic step 1.1x faster); fp32 always,
        # since the critic is a measure
        layout = torch.channels_last if torch.device(device).type == "cpu" else torch.contiguous_format
        net = _CriticNet(real.shape[-1], k).to(device).to(memory_format=layout).train()
        # fused Adam, as the individuals train: 7% of the critic's time; its logits move by
        # rounding (0.3% after 150 steps), far inside the spread between critic seeds
        opt = adam(net.parameters(), device, lr=CRITIC_LR, betas=(0.5, 0.999))
        # every image a step may draw, real ones first, in the layout the net reads: a
        # step gathers its batch with one indexing call
        sets = [real, *fakes]
        pool = torch.cat(sets).to(device).contiguous(memory_format=layout)
        starts = list(itertools.accumulate((x.shape[0] for x in sets), initial=0))
        per = max(2, -(-CRITIC_BATCH // k))           # fakes of each generator per step
        b = min(CRITIC_BATCH, real.shape[0])
        softplus = torch.nn.functional.softplus
        owner = torch.arange(k, device=device).repeat_interleave(per)
        with torch.enable_grad():
            for _ in range(steps):
                # the same draws, in the same order, as indexing each set apart
                picks = [torch.randint(real.shape[0], (b,), generator=gen)]
                picks += [torch.randint(x.shape[0], (per,), generator=gen) + starts[i + 1]
                          for i, x in enumerate(fakes)]
                # real and fake in one call: the net has no batch statistics, so each image's
                # logits are what two calls would give, for half the calls
                logits = net(pool[torch.cat(picks).to(device)].contiguous(memory_format=layout))
                fake_logits = logits[b:].gather(1, owner[:, None]).squeeze(1)
                loss = softplus(-logits[:b]).mean() + softplus(fake_logits).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    return net.eval()


def panel_realism(cells: list[float], critic: float | None) -> float:
    """How a generator's judge cells become its realism: the stricter of the fresh
    critic and the median of its discriminator judges. The median is unmoved by a
    few fooled (or kin-like) Ds; the critic, trained on held-out images against this
    very generation's samples, cannot have a blind spot the generation did not show it,
    so a generator is never more real than it says."""
    parts = []
    if cells:
        parts.append(float(np.median(cells)))
    if critic is not None:
        parts.append(float(critic))
    return min(parts) if parts else 0.0


@torch.no_grad()
def judge(
    entries: list[tuple[str, Genome | None, dict | None, np.ndarray | None]],
    holdout: torch.Tensor,
    *,
    n: int,
    device: str = "cpu",
    kin: dict[str, dict[str, str]] | None = None,
    panel: list[tuple[str, Genome, dict | None]] = (),
    critic: Critic | None = None,
    min_judges: int = MIN_JUDGES,
    bn_mode: str = "batch",
) -> Judged:
    """The judging pass. Every discriminator on the panel scores generators' samples
    against the first ``n`` held-out real images; a cell is the share of (generated,
    real) pairs in which D scores the generated image as more real, ties counting half
    (0.5: D cannot tell them apart). Scale-free, so Ds trained with different losses compare.

    ``entries``: the population, (id, genome, D state or None, samples uint8 or None);
    each judges and is judged. An entry without a usable D (diverged, failed) does not
    judge; one without samples is not judged and gets realism 0. ``panel``: remembered
    judges, (id, genome, D state), which judge without being judged. ``kin``: G's id ->
    {D's id: relation} of the judges that must not judge it ("self", "parent", "sibling",
    "child"); G's own D is always left out. A generator left with fewer than
    ``min_judges`` Ds calls kin back in ``KIN_FALLBACK_ORDER`` (cells of role
    "fallback"). ``critic``: a fresh critic trained on the held-out images after the
    first ``n`` against every entry's samples after its first ``n`` (when it has more),
    then scoring every generator's first ``n``. ``bn_mode``: how a batch-norm D
    normalises while judging: "batch" (each batch's own statistics, real and generated
    apart, as D saw them in training; the default: of the modes measured it alone ranked
    generators like the held-out evaluation, docs/METRICS.md) or "eval" (running
    statistics). A D without batch norm judges the same either way.
    Realism: ``panel_realism``.
    """
    from .imaging import to_float_tensor

    if bn_mode not in BN_MODES:
        raise ValueError(f"bn_mode must be one of {', '.join(BN_MODES)}, got {bn_mode!r}")
    kin = kin or {}
    real = holdout[:n].to(device)
    fakes = {i: to_float_tensor(s[:n]).to(device) for i, _, _, s in entries if s is not None}
    resolution = real.shape[-1]
    judges = [(i, g, d, "peer") for i, g, d, _ in entries] + [(i, g, d, "memory") for i, g, d in panel]

    # who judges whom: non-kin first, then kin called back, least related first
    wanted: dict[tuple[str, str], str] = {}
    usable = [(d_id, role) for d_id, genome, d_state, role in judges if d_state is not None and genome is not None]
    for g_id in fakes:
        related = dict(kin.get(g_id, {}))
        related[g_id] = "self"
        chosen = [(d, role) for d, role in usable if d not in related]
        if len(chosen) < min_judges:
            backups = sorted((KIN_FALLBACK_ORDER.index(related[d]), d) for d, _ in usable
                             if related.get(d) in KIN_FALLBACK_ORDER)
            chosen += [(d, "fallback") for _, d in backups[: min_judges - len(chosen)]]
        for d, role in chosen:
            wanted[(d, g_id)] = role

    matrix: dict[tuple[str, str], float] = {}
    roles: dict[tuple[str, str], str] = {}
    for d_id, genome, d_state, _ in judges:
        targets = [g for g in fakes if (d_id, g) in wanted]
        if d_state is None or genome is None or not targets:
            continue
        D = build_discriminator(genome, resolution)
        D.load_state_dict(d_state)
        D.to(device)
        D.train() if bn_mode == "batch" else D.eval()
        # one batch a generator (a batch-norm D normalises each apart), one read of them all
        real_scores, *fake_scores = _read_scores([D(real)] + [D(fakes[g_id]) for g_id in targets])
        if not torch.isfinite(real_scores).all():
            continue
        for g_id, scores in zip(targets, fake_scores):
            matrix[(d_id, g_id)] = metrics.pairwise_realism(torch.nan_to_num(scores, nan=-float("inf")), real_scores)
            roles[(d_id, g_id)] = wanted[(d_id, g_id)]

    critic_cells: dict[str, float] = {}
    t0 = time.perf_counter()
    if critic is not None and fakes:
        rest = holdout[n:]
        critic_real = rest if rest.shape[0] >= n else holdout
        order = [i for i, _, _, s in entries if s is not None]
        samples_of = {i: s for i, _, _, s in entries if s is not None}
        train_fakes = [to_float_tensor(samples_of[i][n:] if len(samples_of[i]) > n else samples_of[i][:n])
                       for i in order]
        net = train_critic(critic_real, train_fakes, steps=critic.steps, seed=critic.seed, device=device)
        real_scores, *fake_scores = _read_scores([net(real)] + [net(fakes[g_id])[:, head]
                                                               for head, g_id in enumerate(order)])
        for head, (g_id, scores) in enumerate(zip(order, fake_scores)):
            critic_cells[g_id] = matrix[(critic.id, g_id)] = metrics.pairwise_realism(
                torch.nan_to_num(scores, nan=-float("inf")), real_scores[:, head])
            roles[(critic.id, g_id)] = "critic"
    critic_seconds = time.perf_counter() - t0

    realism = {}
    for g_id, *_ in entries:
        if g_id not in fakes:
            realism[g_id] = 0.0
            continue
        cells = [v for (d, g), v in matrix.items() if g == g_id and roles[(d, g)] != "critic"]
        realism[g_id] = panel_realism(cells, critic_cells.get(g_id))
    return Judged(matrix, realism, roles, round(critic_seconds, 3))


def _read_scores(outputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """Score tensors on the device, brought to the host as float32 in one copy (one sync
    on a GPU, where a read per generator judged was one each), in their own shapes."""
    flat = torch.cat([o.float().reshape(-1) for o in outputs]).cpu()
    return [part.reshape(o.shape) for part, o in zip(flat.split([o.numel() for o in outputs]), outputs)]


def generate_samples(genome: Genome, generator_state: dict, ctx: EvalContext, n: int | None = None) -> np.ndarray:
    """The first ``n`` fixed-latent samples of a saved generator, as uint8 (N,R,R,3).

    Both an uninterrupted and a resumed run judge from these (rebuilt from the saved
    state), so the judging pass is identical either way. Each family draws its own way
    (``families.Family.sample``)."""
    latents = ctx.latents if n is None else ctx.latents[:n]
    return to_uint8(families.of(genome).sample(genome, generator_state, latents, resolution=ctx.resolution,
                                               noise_seed=ctx.noise_seed))


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
    scorers = metrics.build_scorers(ctx.holdout_images, seed=ctx.metric_seed, features=ctx.features,
                                    device=ctx.metric_device)
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
