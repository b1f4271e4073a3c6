"""Brief GAN training of one genome: ``train_briefly``.

Trains a generator and discriminator built from a genome for a budget of steps (or,
not reproducibly, of seconds), optionally starting from parents' trained tensors,
optimiser state and EMA (Lamarckian inheritance), and records loss curves, speed and
divergence. No files, no fitness: the caller decides what to keep.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Generator as Generator_, Iterator

import torch

from .config import PRECISIONS
from .errors import EvoartError
from . import graphs, losses
from .genome import Genome, GenomeError
from .morph import morph_generator
from .nets import (
    Discriminator,
    Generator,
    build_discriminator,
    build_generator,
    generator_source_name,
    inherit_tensors,
)
from .variation import Inheritance

# A loss beyond this (in absolute value) counts as exploding: every adversarial variant
# stays within a few tens while training is healthy.
EXPLODING_LOSS = 1e3
R1_INTERVAL = 4  # lazy R1 (StyleGAN2): every 4th D step, scaled up by 4
CURVE_POINTS = 50
# On an accelerator, losses are read on the host (and checked for divergence) this often:
# each read waits for the device to finish the queued work.
DIVERGENCE_CHECK_EVERY = 25


class DeviceError(EvoartError, ValueError):
    """A device that this machine or this torch does not have."""


def resolve_device(name: str = "auto") -> str:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    if not isinstance(name, str):
        raise DeviceError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device {name} was asked for, but torch sees no CUDA device (torch "
                              f"{torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); use "
                              "--device cpu, or auto to take a GPU only when there is one")
        index = name.partition(":")[2]
        if index and (not index.isdigit() or int(index) >= torch.cuda.device_count()):
            raise DeviceError(f"device {name} was asked for, but torch sees {torch.cuda.device_count()} CUDA "
                              f"device(s): use cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise DeviceError("--device mps was asked for, but this torch has no MPS support")
    if name not in ("cpu", "cuda", "mps") and not name.startswith("cuda:"):
        raise DeviceError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps")
    return name


#: CPU flags (``/proc/cpuinfo``) of the units that run bf16 matrix products natively.
#: Without them bf16 is emulated in software: no faster than fp32, usually slower.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")

#: The table behind ``--precision auto`` on the CPU: a whole training step's steps per second
#: in bf16 autocast over fp32, by the CPU's best level (median of four genomes of
#: benchmarks/throughput-genomes.json, one thread, interleaved; ``benchmarks/precision_table.py``,
#: with oneDNN held to each level by ``ONEDNN_MAX_CPU_ISA``). The AVX-512 rows are from
#: 2026-12-01's 2-core AMD EPYC, whose own level is AVX-512 BF16; the AMX row is from
#: 2026-12-02's 2-core Intel Xeon with AMX tiles (docs/precision-table-amx.json). ``auto``
#: picks bf16 where the figure is above 1.
BF16_MEASURED = {"amx_bf16": 1.16, "avx512_bf16": 1.15, "avx512_core": 0.58, "avx2": 0.12}


class PrecisionError(EvoartError, ValueError):
    """A precision this machine cannot run usefully (bf16 without bf16 units)."""


def cpu_flags() -> set[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where there is none: macOS,
    Windows, a sandbox); the first ``flags`` line speaks for every core."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.partition(":")[2].split())
    return set()


def cpu_bf16_level(flags: set[str]) -> str:
    """The row of ``BF16_MEASURED`` a CPU with ``flags`` falls in ("none" below AVX2)."""
    if "amx_bf16" in flags:
        return "amx_bf16"
    if flags & set(BF16_CPU_FLAGS):
        return "avx512_bf16"
    if "avx512f" in flags:
        return "avx512_core"
    return "avx2" if "avx2" in flags else "none"


def cpu_bf16_speedup(flags: set[str] | None = None) -> float | None:
    """The measured bf16 / fp32 speed of a training step on a CPU with ``flags`` (this
    CPU's by default), or None where nothing was measured for its level."""
    return BF16_MEASURED.get(cpu_bf16_level(cpu_flags() if flags is None else flags))


def bf16_supported(device: str) -> bool:
    """Whether bf16 autocast pays on ``device``: on a CUDA card with bf16 units (compute
    capability 8.0, Ampere, or later), on the CPU where ``BF16_MEASURED`` puts its level
    above fp32's speed. Not ``torch.cuda.is_bf16_supported()``: by default it says yes
    where bf16 is only emulated (a V100, a T4), and it asks the current card, not ``device``."""
    kind = torch.device(device).type
    if kind == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.get_device_capability(torch.device(device)) >= (8, 0))
    if kind == "cpu":
        return (cpu_bf16_speedup() or 0.0) > 1.0
    return False


def resolve_precision(name: str = "auto", device: str = "cpu") -> str:
    """``auto`` picks bf16 where ``device`` has bf16 units, else fp32; ``bf16`` on a
    device without them is refused with the reason (emulated bf16 is slower than fp32).
    Resolved once when a run starts: the run records the result and a resume reuses it."""
    if name not in PRECISIONS:
        raise PrecisionError(f"unknown precision {name!r}: use auto, fp32 or bf16")
    if name == "fp32":
        return "fp32"
    ok = bf16_supported(device)
    if name == "auto":
        return "bf16" if ok else "fp32"
    if not ok:
        kind = torch.device(device).type
        if kind == "cpu":
            speed = cpu_bf16_speedup()
            where = "this CPU's flags include neither " + " nor ".join(BF16_CPU_FLAGS)
            measured = (f" (a training step ran at {speed:.2f}x fp32's speed on such a CPU, "
                        "docs/PERFORMANCE.md)" if speed is not None else "")
        else:
            where, measured = f"{device} has no bf16 units (a card before Ampere, compute capability 8.0)", ""
        raise PrecisionError(f"--precision bf16 was asked for, but {where}: bf16 would be emulated and slower "
                             f"than fp32{measured}. Use --precision fp32 (or auto, which picks fp32 here).")
    return "bf16"


def channels_last(device: str, precision: str) -> bool:
    """Whether to train with channels_last nets and images: always on the CPU, where
    oneDNN's convolutions want it (a whole fp32 step ran 1.24-1.32x faster on four
    genomes, one thread, interleaved), and with bf16 elsewhere (tensor cores)."""
    return torch.device(device).type == "cpu" or precision == "bf16"


def autocast(device: str, precision: str, cache: bool = True):
    """The forward passes' context: bf16 autocast for ``precision == "bf16"``, else
    nothing. Parameters, gradients and optimiser state stay fp32 either way. ``cache``
    off for a step captured in a CUDA graph (autocast's cached casts would be stale)."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, cache_enabled=cache)


@dataclass
class Init:
    """Where a child starts: its parents' training states and the map of what came from
    which parent. ``parents[i]`` is a state from ``Trained.state`` or None."""

    parents: list[dict | None]
    inheritance: Inheritance


@dataclass
class TrainStats:
    status: str = "ok"            # "ok" or "diverged"
    reason: str = ""
    steps: int = 0                # generator steps taken now
    lineage_steps: int = 0        # generator steps including every ancestor's
    seconds: float = 0.0          # training wall time; a batched or interleaved member's share of its group's
    steps_per_second: float = 0.0
    precision: str = "fp32"       # what the forward passes ran in: "fp32" or "bf16"
    group: int = 1                # individuals trained together in one batched pass (evoart.batched)
    interleaved: int = 1          # individuals trained at once, a step of each in turn (train_interleaved)
    graphs: str = ""              # CUDA graphs (evoart.graphs): "" not tried, else what was captured or why not
    curves: dict[str, list[float]] = field(default_factory=dict)
    inherited: dict[str, list[int]] = field(default_factory=dict)  # part -> [inherited, total]

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Trained:
    generator: Generator          # the EMA generator when the genome uses EMA (a VAE: its decoder)
    discriminator: Discriminator | None  # None for a family trained without one
    state: dict                   # everything a child needs to continue training
    stats: TrainStats
    extra: dict = field(default_factory=dict)  # a family's other nets (a VAE's encoder)


def _fused(device: str) -> bool:
    return torch.device(device).type in ("cpu", "cuda")


def adam(params, device: str, **kw) -> torch.optim.Adam:
    """Adam with the fused kernel where torch has one: the same update in one pass over
    all parameters instead of a dozen small ops per tensor; an Adam step of a
    ``dcgan-classic`` G and D took less than half the time of the per-tensor loop on one thread."""
    return torch.optim.Adam(params, fused=_fused(device) or None, **kw)


def _state_copy(module: torch.nn.Module) -> dict:
    return {k: v.detach().cpu().clone(memory_format=torch.contiguous_format) for k, v in module.state_dict().items()}


def _adam_state_by_name(opt: torch.optim.Optimizer, module: torch.nn.Module) -> dict:
    """Adam state keyed by parameter name, so it survives architecture changes."""
    out = {}
    for name, p in module.named_parameters():
        st = opt.state.get(p)
        if st:
            out[name] = {k: (v.detach().cpu().clone(memory_format=torch.contiguous_format) if torch.is_tensor(v) else v)
                         for k, v in st.items()}
    return out


def _load_adam_state(opt, module, parent_states, source, key: str) -> None:
    for name, p in module.named_parameters():
        src = source(name)
        if src is None:
            continue
        parent = parent_states[src[0]] if src[0] < len(parent_states) else None
        st = (parent or {}).get(key, {}).get(src[1])
        if st and st["exp_avg"].shape == p.shape:
            # in the parameter's layout (channels_last on the CPU), as the optimiser's own state is
            opt.state[p] = {k: (torch.empty_like(p).copy_(v) if torch.is_tensor(v) and v.shape == p.shape
                                else v.clone().to(p.device) if torch.is_tensor(v) else v)
                            for k, v in st.items()}
            if "step" in opt.state[p] and torch.is_tensor(opt.state[p]["step"]):
                # the fused kernel keeps the step count beside the parameter, the others on the CPU
                fused = any(g.get("fused") for g in opt.param_groups)
                opt.state[p]["step"] = opt.state[p]["step"].to(p.device if fused else "cpu", torch.float32)


def _morph_parents(parents: list[dict | None], resolution: int) -> list[Genome | None] | None:
    """The parents' genomes, read from their states, when every parent present has one
    at this resolution; None otherwise (a state from before morphisms, a preset's
    weights): the child then inherits by name and shape (``nets.inherit_tensors``)."""
    out = []
    for p in parents:
        if p is None:
            out.append(None)
            continue
        meta = p.get("meta") or {}
        if "genome" not in meta or meta.get("resolution") != resolution:
            return None
        try:
            out.append(Genome.from_dict(meta["genome"]))
        except GenomeError:
            return None
    return out if any(g is not None for g in out) else None


def _unchanged(state: dict, parent_states: list[dict | None], source) -> set[str]:
    """Child tensors equal to the parent tensor of the same role (same name and shape)."""
    out = set()
    for name, t in state.items():
        src = source(name)
        if src is None or src[0] >= len(parent_states) or parent_states[src[0]] is None:
            continue
        pt = parent_states[src[0]].get(src[1])
        if pt is not None and pt.shape == t.shape and torch.equal(pt.to(t.dtype), t):
            out.add(name)
    return out


@dataclass
class GeneratorStart:
    """How a generator started (``start_generator``): what its EMA copy and its
    optimiser state must follow."""

    morph_from: list[Genome | None] | None
    fresh: dict
    memo: dict
    adam_source: Callable
    source: Callable
    ema_steps: int = 0

    def make_ema(self, G, genome: Genome, resolution: int, init: "Init | None", seed: int, device,
                 layout) -> "Generator | None":
        """The generator's EMA copy (None when the genome has no EMA), frozen, started
        from the parents' EMA tensors when there are parents (``inherit_ema``)."""
        if genome.training.ema <= 0:
            return None
        G_ema = copy.deepcopy(G).eval()
        for p in G_ema.parameters():
            p.requires_grad_(False)
        if init is not None:
            self.inherit_ema(G_ema, genome, resolution, init, seed)
            G_ema.to(device, memory_format=layout)
        return G_ema

    def inherit_ema(self, G_ema, genome: Genome, resolution: int, init: "Init", seed: int) -> None:
        """Start the EMA generator from the parents' EMA tensors (or their generators'),
        rewritten as the generator's were."""
        esd = [(p.get("g_ema") or p["g"]) if p else None for p in init.parents]
        if self.morph_from is not None:  # the same channel choices as the generator's (memo)
            G_ema.load_state_dict(morph_generator(
                genome, resolution, [(g, s) for g, s in zip(self.morph_from, esd)], init.inheritance,
                base=self.fresh, seed=seed, memo=self.memo).state)
        else:
            inherit_tensors(G_ema, esd, self.source)


def start_generator(G, genome: Genome, resolution: int, init: "Init | None", seed: int,
                    stats: "TrainStats") -> GeneratorStart:
    """Load a child generator (a GAN's G or a VAE's decoder) from its parents' states:
    network morphisms where every parent has a genome at this resolution, by name and
    shape otherwise; records what was inherited and the lineage's step counts in ``stats``."""
    g_source = lambda name: generator_source_name(name, init.inheritance)  # noqa: E731
    start = GeneratorStart(None, {k: v.clone() for k, v in G.state_dict().items()}, {}, g_source, g_source)
    if init is None:
        return start
    start.morph_from = _morph_parents(init.parents, resolution)
    gsd = [p["g"] if p else None for p in init.parents]
    morphed = None
    if start.morph_from is not None:
        # network morphisms: the child starts computing its parent's function (morph)
        try:
            morphed = morph_generator(genome, resolution, [(g, s) for g, s in zip(start.morph_from, gsd)],
                                      init.inheritance, base=start.fresh, seed=seed, memo=start.memo)
        except (RuntimeError, IndexError, ValueError, KeyError) as exc:  # a layout morph misreads
            warnings.warn(f"morphing the parents' generator failed ({type(exc).__name__}: {exc}); "
                          "inheriting by name and shape instead", RuntimeWarning, stacklevel=3)
            start.morph_from = None
    if morphed is not None:
        G.load_state_dict(morphed.state)
        stats.inherited["g"] = [len(morphed.derived), len(start.fresh)]
        # Adam's moments belong to the values they were gathered for: kept for tensors
        # copied unchanged, dropped (fresh) for every rewritten one
        unchanged = _unchanged(morphed.state, gsd, g_source)
        start.adam_source = lambda name: g_source(name) if name in unchanged else None  # noqa: E731
    else:
        stats.inherited["g"] = list(inherit_tensors(G, gsd, g_source))
    stem_parent = init.parents[init.inheritance.stem] if init.inheritance.stem is not None else None
    if stem_parent:
        stats.lineage_steps = int(stem_parent.get("meta", {}).get("lineage_steps", 0))
        start.ema_steps = int(stem_parent.get("meta", {}).get("ema_steps", 0))
    return start



def _downsample_curve(values: list[float], points: int = CURVE_POINTS) -> list[float]:
    if len(values) <= points:
        return [round(v, 5) for v in values]
    step = len(values) / points
    return [
        round(sum(values[int(i * step): int((i + 1) * step)]) / max(1, int((i + 1) * step) - int(i * step)), 5)
        for i in range(points)
    ]


def ema_update(ema: torch.nn.Module, net: torch.nn.Module, decay: float, ema_steps: int) -> int:
    """One step of a generator's EMA copy; returns the EMA's step count. The decay is
    ramped in (as in many GAN codebases) so that a fresh lineage is not stuck near its
    random initialisation for hundreds of steps."""
    ema_steps += 1
    beta = min(decay, (1 + ema_steps) / (10 + ema_steps))
    with torch.no_grad():
        # one multi-tensor launch each, not one per tensor: on a GPU whose step is a
        # replayed graph, a launch per parameter would be most of the host's work a step
        torch._foreach_lerp_(list(ema.parameters()), list(net.parameters()), 1 - beta)
        buffers = list(ema.buffers())
        if buffers:
            torch._foreach_copy_(buffers, list(net.buffers()))
    return ema_steps


def divergence(step: int, named_losses: dict[str, float]) -> str | None:
    """Why training must stop at ``step`` (a loss that is not finite, or above
    EXPLODING_LOSS), or None: the reason a diverged individual records."""
    values = list(named_losses.values())
    if not all(math.isfinite(v) for v in values):
        return f"loss became {'NaN' if any(v != v for v in values) else 'infinite'} at step {step}"
    if any(abs(v) > EXPLODING_LOSS for v in values):
        return f"loss exploded at step {step} (" + ", ".join(f"{k} {v:.3g}" for k, v in named_losses.items()) + ")"
    return None


def finish_stats(stats: TrainStats, step: int, steps: int, started: float, curves: dict[str, list[float]],
                 nets) -> None:
    """Close a training run's stats (time, steps, the lineage's steps, downsampled curves)
    and put its nets back in the default layout, in eval mode: what callers render,
    score and save is layout-free."""
    stats.seconds = time.perf_counter() - started
    stats.steps = step if steps > 0 else 0
    stats.lineage_steps += stats.steps
    stats.steps_per_second = stats.steps / stats.seconds if stats.seconds > 0 else 0.0
    stats.curves = {k: _downsample_curve(c) for k, c in curves.items()}
    for net in nets:
        if net is not None:
            net.to(memory_format=torch.contiguous_format).eval()


def train_briefly(
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
    """Train ``genome`` as a GAN on ``data`` ((N,3,R,R) in [-1,1]) for ``steps`` generator
    steps (each preceded by ``d_steps`` discriminator steps).

    Deterministic on the CPU for a fixed seed and inputs. ``budget_seconds`` stops early
    when the time is up, which makes the result depend on the machine: documented as not
    reproducible. Divergence (a non-finite or exploding loss) stops training and marks
    the stats ``diverged``; the nets are returned as they are then (possibly holding NaN),
    and callers must not let a child inherit them. The caller's torch RNG state is left
    untouched.

    ``precision`` ("fp32" or "bf16", as ``resolve_precision`` gives it): with "bf16" the
    forward passes run under bf16 autocast; nets and images are channels_last with bf16
    and on the CPU (``channels_last``); logits are cast to fp32 before any loss, R1 runs in fp32,
    and parameters, gradients, optimiser and EMA state stay fp32, so a state trained in
    one precision continues in the other.
    """
    if precision not in ("fp32", "bf16"):
        raise PrecisionError(f"train_briefly needs a resolved precision (fp32 or bf16), got {precision!r}")
    if genome.family != "gan":  # its other genes would be silently ignored
        raise GenomeError(f"genome.family: train_briefly trains GANs, got a {genome.family}; "
                          "train through evoart.families.of(genome).train")
    devices = [torch.device(device)] if str(device).startswith("cuda") else []
    # cuda:N current while it trains: a CUDA graph captures and replays on the current device
    current = torch.cuda.device(devices[0]) if devices else contextlib.nullcontext()
    with torch.random.fork_rng(devices=devices), current:
        return _train(genome, data, steps=steps, device=device, seed=seed, init=init,
                      progress=progress, budget_seconds=budget_seconds, precision=precision)


def own_draws_only(genome: Genome) -> bool:
    """Whether every random draw a GAN individual's training makes comes from its own
    generator (batch indices, latents), none from torch's global one: then it can train
    in one batched pass with others (``evoart.batched``) and see what it would see alone.
    Noise injection draws in G's forward pass, from the global one."""
    return genome.family == "gan" and not any(b.noise for b in genome.generator.blocks)


def train_interleaved(
    genomes: list[Genome],
    data: torch.Tensor,
    *,
    steps: int,
    seeds: list[int],
    inits: list[Init | None] | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    progress: Callable[[int, int, int], None] | None = None,
    budget_seconds: float | None = None,
) -> list[Trained | Exception]:
    """Train several GAN individuals at once in this process, one generator step of each
    in turn, each on its own CUDA stream on a GPU: while the card runs one individual's
    step (a replayed graph, ``evoart.graphs``), the host issues the next one's, and small
    individuals' kernels run side by side on a card that one of them leaves mostly idle.
    Processes cannot do that: kernels of different processes take turns on a card.

    Each individual trains exactly as ``train_briefly`` trains it alone with its seed and
    init: its own generator draws its batches and latents, and torch's global RNG (noise
    injection's) is its own (``_OwnRNG``), so on the CPU the results are identical, bit
    for bit, to training them one after another. ``progress(i, step, total)`` reports
    individual i. ``budget_seconds`` is each individual's, and the individuals share the
    wall clock, so each stops after ``budget_seconds x len(genomes)`` of it (one whose
    packmates stop early gets more than its share: ``fitness.group_tasks`` never packs
    timed tasks). An individual whose training raises (out of memory, a bad genome) gets
    the exception in its place in the result, without its traceback (the frames hold its
    nets), and the others go on."""
    if precision not in ("fp32", "bf16"):
        raise PrecisionError(f"train_interleaved needs a resolved precision (fp32 or bf16), got {precision!r}")
    odd = [i for i, g in enumerate(genomes) if g.family != "gan"]
    if odd:
        raise GenomeError(f"train_interleaved trains GANs; genome(s) {odd} are not: train them through "
                          "evoart.families.of(genome).train")
    if len(seeds) != len(genomes) or (inits is not None and len(inits) != len(genomes)):
        raise ValueError("train_interleaved needs one seed (and one init, if any) per genome")
    inits = inits or [None] * len(genomes)
    on = torch.device(device)
    cuda = on.type == "cuda"
    devices = [on] if cuda else []
    current = torch.cuda.device(on) if cuda else contextlib.nullcontext()
    out: list = [None] * len(genomes)
    with torch.random.fork_rng(devices=devices), current:
        layout_ = torch.channels_last if channels_last(device, precision) else torch.contiguous_format
        shared = data.to(device, memory_format=layout_)  # one copy of the images for all of them
        streams: list = [None] * len(genomes)
        if cuda:
            here = torch.cuda.current_stream(on)
            streams = [torch.cuda.Stream(on) for _ in genomes]
            for s in streams:
                s.wait_stream(here)  # the images are copied on this stream
        limit = budget_seconds * len(genomes) if budget_seconds is not None else None
        rng = _OwnRNG(len(genomes), on)
        runs = {i: _training(g, data, steps=steps, device=device, seed=seed, init=init,
                             progress=(lambda s, n, i=i: progress(i, s, n)) if progress else None,
                             budget_seconds=limit, precision=precision, data_on_device=shared,
                             graphs_ok=rng.per_state or own_draws_only(g))
                for i, (g, seed, init) in enumerate(zip(genomes, seeds, inits))}
        try:
            while runs:
                for i in list(runs):
                    with torch.cuda.stream(streams[i]) if cuda else contextlib.nullcontext():
                        rng.enter(i)
                        try:
                            next(runs[i])
                            rng.leave(i)
                        except StopIteration as done:
                            out[i] = done.value
                            out[i].stats.interleaved = len(genomes)
                            share(out[i].stats, len(genomes))
                            del runs[i]
                        except Exception as exc:  # noqa: BLE001 - this individual fails, the others go on
                            # its nets, optimisers and graphs are held by the traceback's frames
                            # (and the step functions they ran): let them go now, not when the
                            # caller drops the exception, keeping where it was raised as a note
                            where = traceback.extract_tb(exc.__traceback__)[-1]
                            if hasattr(exc, "add_note"):  # Python 3.11 on
                                exc.add_note(f"raised at {where.filename}:{where.lineno} ({where.name}), training "
                                             f"individual {i} of {len(genomes)} interleaved")
                            out[i] = exc.with_traceback(None)
                            del runs[i], exc
        finally:
            rng.close()
        if cuda:
            for s in streams:
                here.wait_stream(s)  # what the caller does next (scoring) sees finished nets
    return out


def share(stats: TrainStats, members: int) -> None:
    """A member of ``members`` trained at once (interleaved, or in a batched group): its
    seconds are its share of their wall time, so that a run's steps over its seconds is
    what the worker trained a second."""
    stats.seconds /= members
    stats.steps_per_second = stats.steps / stats.seconds if stats.seconds > 0 else 0.0


class _OwnRNG:
    """Torch's global RNG as each interleaved individual's own (noise injection draws from
    it in G's forward pass). The CPU generator's state is saved after each of an
    individual's steps and set again before its next. On CUDA each individual gets its
    own generator *state object*, swapped in before each of its steps
    (``graphsafe_set_state``): a CUDA graph registers the state current when it is
    captured and refills that state's seed and offset on the device at each replay, so
    each individual's graphs read their own. Copying seed and offset in and out of one
    shared state would let one individual's replay refill what another's running graph
    reads (torch 2.3 to 2.12 keep one such pair a state)."""

    def __init__(self, n: int, device: torch.device):
        self.cpu: list = [None] * n
        self.gen = None
        if device.type == "cuda":
            gen = torch.cuda.default_generators[device.index if device.index is not None else torch.cuda.current_device()]
            if hasattr(gen, "graphsafe_set_state") and hasattr(gen, "clone_state"):
                self.gen = gen
                self.original = gen.graphsafe_get_state()
                self.cuda = [gen.clone_state() for _ in range(n)]  # each reseeded by its setup_gan
            else:  # an old torch: swap the values, and keep steps that draw noise out of graphs
                self.values: list = [None] * n
        self.per_state = device.type != "cuda" or self.gen is not None
        self.device = device

    def enter(self, i: int) -> None:
        if self.cpu[i] is not None:
            torch.set_rng_state(self.cpu[i])
        if self.gen is not None:
            self.gen.graphsafe_set_state(self.cuda[i])
        elif self.device.type == "cuda" and self.values[i] is not None:
            torch.cuda.set_rng_state(self.values[i], self.device)

    def leave(self, i: int) -> None:
        self.cpu[i] = torch.get_rng_state()
        if self.gen is not None:
            self.cuda[i] = self.gen.graphsafe_get_state()  # a failed capture may have put in a fresh one
        elif self.device.type == "cuda":
            self.values[i] = torch.cuda.get_rng_state(self.device)  # seed and offset, on the host: no sync

    def close(self) -> None:
        if self.gen is not None:
            self.gen.graphsafe_set_state(self.original)


@dataclass
class GanRun:
    """One GAN individual set up to train (``setup_gan``): its nets, optimisers (with
    inherited state loaded), EMA copy, batch generator and loss genes. The
    per-individual loop (``_train``) and the batched one (``evoart.batched``) both start
    from it and end in ``finish_gan``, so an individual starts and ends the same either way."""

    genome: Genome
    resolution: int
    G: Generator
    D: Discriminator
    G_ema: Generator | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    stats: TrainStats
    ema_steps: int
    data: torch.Tensor            # on the device, in the training layout
    gen: torch.Generator          # draws this individual's batch indices and latents
    batch: int
    joint_d: bool                 # D scores real and fake in one call (no batch norm in D)

    def batch_indices(self) -> torch.Tensor:
        return torch.randint(self.data.shape[0], (self.batch,), generator=self.gen)

    def host_latents(self) -> torch.Tensor:
        return torch.randn(self.batch, self.G.latent, generator=self.gen)


def setup_gan(genome: Genome, data: torch.Tensor, *, device: str, seed: int, init: Init | None,
              precision: str, data_on_device: torch.Tensor | None = None) -> GanRun:
    """Build, initialise and place a GAN individual as ``train_briefly`` trains it. Uses
    (and reseeds) torch's global RNG: call it inside ``torch.random.fork_rng``.
    ``data_on_device``: ``data`` already moved to the device in the training layout, for
    callers that set up several individuals on the same data."""
    resolution = data.shape[-1]
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    G = build_generator(genome, resolution)
    D = build_discriminator(genome, resolution)
    t = genome.training
    stats = TrainStats(precision=precision)

    d_source = lambda name: (init.inheritance.discriminator, name) if init.inheritance.discriminator is not None else None  # noqa: E731
    start = start_generator(G, genome, resolution, init, seed, stats)
    if init is not None:
        dsd = [p["d"] if p else None for p in init.parents]
        stats.inherited["d"] = list(inherit_tensors(D, dsd, d_source))

    layout_ = torch.channels_last if channels_last(device, precision) else torch.contiguous_format
    G.to(device, memory_format=layout_).train()
    D.to(device, memory_format=layout_).train()
    G_ema = start.make_ema(G, genome, resolution, init, seed, device, layout_)

    opt_g = adam(G.parameters(), device, lr=t.lr_g, betas=(t.beta1, t.beta2))
    opt_d = adam(D.parameters(), device, lr=t.lr_d, betas=(t.beta1, t.beta2))
    if init is not None:
        _load_adam_state(opt_g, G, init.parents, start.adam_source, "opt_g")
        _load_adam_state(opt_d, D, init.parents, d_source, "opt_d")

    if data_on_device is None:
        data_on_device = data.to(device, memory_format=layout_)
    # D scores real and fake images in one batch unless batch norm would mix their
    # statistics: half the calls and, with spectral norm, half the power iterations
    # (SNGAN's one per D step); measured 1.03-1.18x a step with spectral norm, no change without
    joint_d = genome.discriminator.norm != "batch"
    return GanRun(genome, resolution, G, D, G_ema, opt_g, opt_d, stats, start.ema_steps, data_on_device, gen,
                  min(t.batch_size, data.shape[0]), joint_d)


def finish_gan(run: GanRun, step: int, steps: int, started: float, d_curve: list[float],
               g_curve: list[float]) -> Trained:
    """Close a GAN individual's training (``finish_stats``) and gather its state."""
    stats = run.stats
    finish_stats(stats, step, steps, started, {"d_loss": d_curve, "g_loss": g_curve}, (run.G, run.D, run.G_ema))
    state = {
        "g": _state_copy(run.G),
        "d": _state_copy(run.D),
        "g_ema": _state_copy(run.G_ema) if run.G_ema is not None else None,
        "opt_g": _adam_state_by_name(run.opt_g, run.G),
        "opt_d": _adam_state_by_name(run.opt_d, run.D),
        # the genome and resolution let a child rewrite these tensors into its own layout (morph)
        "meta": {"lineage_steps": stats.lineage_steps, "ema_steps": run.ema_steps,
                 "genome": run.genome.to_dict(), "resolution": run.resolution},
    }
    return Trained(run.G_ema if run.G_ema is not None else run.G, run.D, state, stats)


def divergence_check_every(device: str) -> int:
    """How many steps' losses are gathered before they are read on the host and checked
    for divergence: every step on the CPU, where reading a loss costs nothing, and
    ``DIVERGENCE_CHECK_EVERY`` on an accelerator, where each read waits for the device."""
    return 1 if torch.device(device).type == "cpu" else DIVERGENCE_CHECK_EVERY


class LossLog:
    """A lone individual's losses, kept where they were computed and read on the host
    ``every`` steps (one transfer for the whole chunk).

    ``add(step, values)`` takes one step's losses (0-d tensors by name) and returns, at
    a check, the reason (``divergence``) of the first bad step since the last check, or
    None. ``curves`` holds every step's values as host floats, up to the bad step."""

    def __init__(self, names: tuple[str, ...], every: int):
        self.names, self.every = names, max(1, int(every))
        self.curves: dict[str, list[float]] = {n: [] for n in names}
        self._pending: list[tuple[int, dict]] = []

    def add(self, step: int, values: dict[str, torch.Tensor], force: bool = False) -> str | None:
        self._pending.append((step, {k: v.detach() for k, v in values.items()}))
        if len(self._pending) < self.every and not force:
            return None
        pending, self._pending = self._pending, []
        host = torch.stack([torch.stack([v[n].float() for _, v in pending]) for n in self.names]).cpu().tolist()
        for j, (step_j, _) in enumerate(pending):
            vals = {n: host[i][j] for i, n in enumerate(self.names)}
            for n in self.names:
                self.curves[n].append(vals[n])
            reason = divergence(step_j, vals)
            if reason is not None:
                return reason
        return None


def step_draws(run: GanRun) -> list[torch.Tensor]:
    """One generator step's draws from the individual's own generator, in the order the
    step uses them: each D step's batch indices and latents, then G's latents, then (with
    feature matching) the real batch its features are matched against."""
    out = []
    for _ in range(run.genome.training.d_steps):
        out += [run.batch_indices(), run.host_latents()]
    out.append(run.host_latents())
    if run.genome.loss.feature_matching > 0:
        out.append(run.batch_indices())
    return out


def r1_pattern(run: GanRun, d_steps_before: int) -> tuple[bool, ...]:
    """Which of a generator step's D steps carry the lazy R1 penalty, given the D steps
    taken before it: a step's *pattern*, what a captured graph is keyed by."""
    r1 = run.genome.loss.r1 > 0
    return tuple(r1 and (d_steps_before + i + 1) % R1_INTERVAL == 0 for i in range(run.genome.training.d_steps))


def gan_step(run: GanRun, inputs, pattern: tuple[bool, ...], amp) -> tuple[torch.Tensor, torch.Tensor]:
    """One generator step of ``run`` (its D steps first) on ``inputs`` (``step_draws``,
    on the device) and R1 ``pattern``; returns the last D loss and the G loss as 0-d
    tensors, never read on the host here, so that the step can be captured in a graph."""
    G, D, opt_g, opt_d, lg = run.G, run.D, run.opt_g, run.opt_d, run.genome.loss
    b, data = run.batch, run.data
    it = iter(inputs)
    d_loss = None
    for r1 in pattern:
        # (1) Update D: maximise realism of real images, minimise it for generated ones
        real, zd = data[next(it)], next(it)
        with amp():
            with torch.no_grad():
                fake = G(zd)
            if run.joint_d:
                real_logits, fake_logits = D(torch.cat([real, fake])).split(b)
            else:
                real_logits, fake_logits = D(real), D(fake)
        d_loss = losses.d_adversarial(lg, real_logits.float(), fake_logits.float())
        if r1:
            # in fp32: a squared gradient norm is where bf16's 8-bit mantissa would show
            d_loss = d_loss + (lg.r1 / 2) * R1_INTERVAL * losses.r1_penalty(D, real)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()

    # (2) Update G: make D score generated images as real
    z = next(it)
    with amp():
        fake = G(z)
        if lg.feature_matching > 0:
            fake_logits, fake_feat = D(fake, return_features=True)
            with torch.no_grad():
                _, real_feat = D(data[next(it)], return_features=True)
        else:
            fake_logits = D(fake)
    g_loss = losses.g_adversarial(lg, fake_logits.float())
    if lg.feature_matching > 0:
        g_loss = g_loss + lg.feature_matching * losses.feature_matching(real_feat.float(), fake_feat.float())
    if lg.mode_seeking > 0:
        g_loss = g_loss + lg.mode_seeking * losses.mode_seeking(z, fake.float())
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    return d_loss, g_loss


def _train(genome, data, **kwargs) -> Trained:
    return _to_end(_training(genome, data, **kwargs))


def _to_end(training: Iterator[None]) -> Trained:
    while True:
        try:
            next(training)
        except StopIteration as done:
            return done.value


def _training(genome, data, *, steps, device, seed, init, progress, budget_seconds, precision,
              data_on_device=None, graphs_ok: bool = True) -> Generator_[None, None, Trained]:
    """The per-individual loop, one generator step per ``next``; returns the ``Trained``.
    ``train_briefly`` runs it to the end, ``train_interleaved`` runs several in turn.
    ``graphs_ok=False`` keeps its steps out of CUDA graphs."""
    run = setup_gan(genome, data, device=device, seed=seed, init=init, precision=precision,
                    data_on_device=data_on_device)
    G, G_ema, stats = run.G, run.G_ema, run.stats
    t = genome.training
    on = torch.device(device)
    use_graphs = graphs_ok and graphs.graphs_wanted(device)
    # a graph replays the casts it captured: autocast's weight cache must not outlive a step
    amp = lambda: autocast(device, precision, cache=not use_graphs)  # noqa: E731
    step_fn = lambda inputs, pattern: gan_step(run, inputs, pattern, amp)  # noqa: E731
    stepper = None
    if use_graphs:
        graphs.make_capturable(run.opt_g, run.opt_d)
        stepper = graphs.StepGraphs(step_fn, on, before_capture=lambda: (run.opt_g.zero_grad(set_to_none=True),
                                                                           run.opt_d.zero_grad(set_to_none=True)))
    log = LossLog(("D", "G"), divergence_check_every(device))
    d_steps_before = 0
    report_every = max(1, steps // 50)
    t_start = time.perf_counter()

    step = 0
    for step in range(1, steps + 1):
        pattern = r1_pattern(run, d_steps_before)
        d_steps_before += t.d_steps
        inputs = step_draws(run)
        if stepper is not None:
            d_loss, g_loss = stepper(inputs, pattern)
        else:
            # not blocking: a plain copy from host memory waits for the device's queue
            d_loss, g_loss = step_fn([x.to(on, non_blocking=True) for x in inputs], pattern)

        if G_ema is not None:
            run.ema_steps = ema_update(G_ema, G, t.ema, run.ema_steps)

        out_of_time = budget_seconds is not None and time.perf_counter() - t_start > budget_seconds
        bad = log.add(step, {"D": d_loss, "G": g_loss}, force=step == steps or out_of_time)
        if bad is not None:
            stats.status, stats.reason = "diverged", bad
            break
        if progress is not None and (step % report_every == 0 or step == steps):
            progress(step, steps)
        if out_of_time:
            break
        yield

    if stepper is not None:
        stats.graphs = stepper.summary()
        # the nets' gradients live in the graphs' memory pools: let go of them with the graphs
        run.opt_g.zero_grad(set_to_none=True)
        run.opt_d.zero_grad(set_to_none=True)
    return finish_gan(run, step, steps, t_start, log.curves["D"], log.curves["G"])


@torch.no_grad()
def generate(generator: Generator, latents: torch.Tensor, *, noise_seed: int = 0, batch: int = 64) -> torch.Tensor:
    """Images (N,3,R,R) in [-1,1] on the CPU from fixed latents; noise injection is seeded
    so that the same generator always draws the same images."""
    generator.eval()
    device = next(generator.parameters()).device
    out = []
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(noise_seed)
        for i in range(0, latents.shape[0], batch):
            z = latents[i: i + batch, : generator.latent].to(device)
            out.append(generator(z).float().cpu())
    return torch.cat(out)
