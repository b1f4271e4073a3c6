"""The configuration of a run: one typed dataclass, stored with the run.

The command-line options and the keys of a ``--config FILE.toml`` share these names
(``population = 16``); ``config.json`` in the run folder records every field.
"""

from __future__ import annotations

import re
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import EvoartError
from .family_names import DEFAULT_FAMILIES, FAMILIES
from .objectives import OBJECTIVES
from .schedule import BREEDING, SCHEDULES, default_schedule

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(EvoartError, ValueError):
    """A configuration a run cannot use; the message is meant for the user."""


@dataclass
class EvolveConfig:
    data: str = "shapes"            # a built-in dataset name or an image folder
    population: int = 8             # individuals kept each generation (mu)
    children: int | None = None     # new individuals each generation (lambda); None = population
    generations: int = 6            # generations in all, generation 0 included
    steps: int = 120                # training steps per new individual
    resolution: int = 32
    samples: int = 128              # generated images scored per individual (fixed latents)
    judge_samples: int | None = None  # images per G and real images per D when judging; None = min(64, samples)
    holdout: int = 256              # the fitness holdout: real images no individual trains on, used for judging and scoring
    eval_holdout: int = 256         # the evaluation holdout: real images nothing in evolution sees (evoart score --heldout); 0 = none
    device: str = "auto"
    precision: str = "auto"         # auto | fp32 | bf16: bf16 autocast where the device has bf16 units; a run records what auto resolved to
    workers: int = 2                # parallel evaluations (processes); 1 = in this process
    executor: str = "local"         # local (this machine: in process or a process pool) | ray (evoart.ray_executor)
    ray_address: str | None = None  # with executor ray: auto, ray://HOST:PORT or HOST:PORT; None starts a local instance
    cpus_per_individual: int = 1    # with executor ray: CPUs (torch threads) each evaluation asks Ray for
    gpus_per_individual: float = 0.0  # with executor ray: GPUs each evaluation asks for (0.25 packs four on a GPU)
    batched: str = "auto"           # auto | on | off: GANs of one architecture trained together (evoart.batched); auto = on a GPU
    interleave: int | None = None   # GANs a worker trains at once, a step of each in turn, each on its own CUDA stream; None = auto (resolve_interleave)
    seed: int = 0
    inherit: bool = True            # children start from their parents' trained tensors
    mutation_strength: float = 1.0
    crossover_rate: float = 0.3     # share of children made by crossover (then mutated)
    budget_seconds: float | None = None  # per-individual time limit; makes a run not reproducible
    from_presets: list[str] = field(default_factory=list)
    selection: str = "nsga2"        # "nsga2" (Pareto fronts) or "weighted" (a weighted sum)
    weights: dict[str, float] | None = None  # for "weighted": objective -> weight; None = all 1
    features: str | None = None     # a torch.export feature extractor (.pt2; TorchScript .pt deprecated) for rkid and coverage
    schedule: str | None = None     # how each generation's steps are spent: halving | plus | comma | pbt (evoart.schedule); None = schedule.default_schedule
    budget_steps: int | None = None  # the run's total training steps; sets steps or generations (see apply_budget)
    mate_choice: str = "random"     # random | runaway: crossover's second parent chosen by the first's evolved preferences
    runaway_strength: float = 0.0   # share of survivors chosen by attractiveness instead of the objectives (0 to 1)
    families: list[str] = field(default_factory=lambda: list(DEFAULT_FAMILIES))  # model families allowed: gan, vae, ar (docs/FAMILIES.md)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def lam(self) -> int:
        return self.children if self.children is not None else self.population

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> "EvolveConfig":
        known = {f.name for f in fields(cls)}
        data = {k.replace("-", "_"): v for k, v in data.items()}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown option {unknown[0]!r} (known: {', '.join(sorted(known))})")
        cfg = cls(**data)
        if data.get("budget_steps") is not None:
            apply_budget(cfg, explicit_steps="steps" in data, explicit_generations="generations" in data,
                         source=source)
        cfg.validate(source=source)
        return cfg

    def validate(self, *, source: str = "config") -> "EvolveConfig":
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ConfigError(f"{source}: {msg}")

        if self.judge_samples is None:
            self.judge_samples = min(64, self.samples) if isinstance(self.samples, int) else 64
        ints = ["population", "generations", "steps", "resolution", "samples", "judge_samples",
                "holdout", "eval_holdout", "workers", "seed"]
        for name in ints:
            v = getattr(self, name)
            need(isinstance(v, int) and not isinstance(v, bool), f"{name} must be an integer, got {v!r}")
        need(isinstance(self.data, str) and self.data.strip() != "",
             f"data must be a built-in dataset name (shapes, landscapes, patterns) or the path of an image "
             f"folder, in quotes in a TOML file (data = \"shapes\"), got {self.data!r}")
        need(self.population >= 2, "population must be at least 2 (the judging pass compares individuals)")
        need(self.population <= MAX_POPULATION,
             f"population must be at most {MAX_POPULATION}, got {self.population}: {WHY_MAX_POPULATION}")
        need(self.children is None or (_is_int(self.children) and self.children >= 1),
             "children must be a positive integer")
        need(self.children is None or self.children <= MAX_POPULATION,
             f"children must be at most {MAX_POPULATION}, got {self.children}: {WHY_MAX_POPULATION}")
        need(self.generations >= 1, "generations must be at least 1")
        need(self.generations <= MAX_GENERATIONS,
             f"generations must be at most {MAX_GENERATIONS}, got {self.generations} (extend a run later "
             "with --resume RUN --generations N)")
        need(self.steps >= 1, "steps must be at least 1")
        need(self.steps <= MAX_STEPS,
             f"steps must be at most {MAX_STEPS}, got {self.steps}: each generation trains every new "
             "individual this many steps")
        need(0 <= self.seed <= MAX_SEED, f"seed must be a whole number from 0 to {MAX_SEED}, got {self.seed}")
        need(self.resolution in (16, 32, 64, 128), "resolution must be 16, 32, 64 or 128")
        need(self.samples >= 16, "samples must be at least 16")
        need(self.samples <= MAX_SAMPLES, f"samples must be at most {MAX_SAMPLES}, got {self.samples}")
        need(2 <= self.judge_samples <= self.samples, "judge_samples must be between 2 and samples")
        need(self.holdout >= self.judge_samples, "holdout must be at least judge_samples")
        need(self.eval_holdout == 0 or self.eval_holdout >= EVAL_HOLDOUT_MIN,
             f"eval_holdout must be 0 (no evaluation split: evoart score --heldout cannot judge the run) or at "
             f"least {EVAL_HOLDOUT_MIN} (the evaluation critic trains on one half and is tested on the other), "
             f"got {self.eval_holdout}")
        need(self.workers >= 1, "workers must be at least 1")
        need(self.workers <= MAX_WORKERS, f"workers must be at most {MAX_WORKERS}, got {self.workers}")
        need(isinstance(self.device, str) and (self.device in ("auto", "cpu", "cuda", "mps")
                                               or re.fullmatch(r"cuda:\d+", self.device) is not None),
             f"device must be auto, cpu, cuda, cuda:N (a GPU's index) or mps, got {self.device!r}")
        need(self.precision in PRECISIONS,
             f"precision must be {', '.join(PRECISIONS[:-1])} or {PRECISIONS[-1]}, got {self.precision!r}")
        need(self.executor in EXECUTORS, f"executor must be {' or '.join(EXECUTORS)}, got {self.executor!r}")
        need(self.ray_address is None or (isinstance(self.ray_address, str) and self.ray_address.strip() != ""),
             "ray_address must be auto, ray://HOST:PORT or HOST:PORT")
        need(self.executor == "ray" or (self.ray_address is None and self.gpus_per_individual == 0
                                        and self.cpus_per_individual == 1),
             "ray_address, cpus_per_individual and gpus_per_individual go with executor ray (--executor ray)")
        need(_is_int(self.cpus_per_individual) and 1 <= self.cpus_per_individual <= 256,
             "cpus_per_individual must be a whole number from 1 to 256")
        need(_is_number(self.gpus_per_individual) and 0 <= self.gpus_per_individual <= 8,
             "gpus_per_individual must be a number from 0 to 8 (0.25 packs four individuals on a GPU)")
        need(self.batched in BATCHED, f"batched must be {', '.join(BATCHED[:-1])} or {BATCHED[-1]}, got {self.batched!r}")
        need(self.interleave is None or (_is_int(self.interleave) and 1 <= self.interleave <= MAX_INTERLEAVE),
             f"interleave must be a whole number from 1 (one individual at a time) to {MAX_INTERLEAVE}, "
             f"got {self.interleave!r}")
        need(isinstance(self.inherit, bool), "inherit must be true or false")
        need(_is_number(self.mutation_strength) and 0 < self.mutation_strength <= 5,
             "mutation_strength must be in (0, 5]")
        need(_is_number(self.crossover_rate) and 0 <= self.crossover_rate <= 1,
             "crossover_rate must be in [0, 1]")
        need(self.budget_seconds is None or (_is_number(self.budget_seconds) and self.budget_seconds > 0),
             "budget_seconds must be a positive number")
        need(isinstance(self.from_presets, list), "from_presets must be a list of preset names")
        if self.schedule is None:
            self.schedule = default_schedule(inherit=self.inherit, mate_choice=self.mate_choice)
        need(self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.schedule == "pbt":
            need(self.children is None or self.children == self.population,
                 f"schedule {self.schedule} trains the population itself: children must equal population "
                 f"(or be left out), got {self.children} and {self.population}")
        if self.schedule not in BREEDING:
            need(self.inherit is not False,
                 f"schedule {self.schedule} keeps training individuals from their own weights: it needs "
                 "inheritance (drop --no-inherit, or choose --schedule plus or comma)")
        if self.schedule == "comma":
            need(self.lam >= self.population,
                 f"schedule comma replaces the whole population by children: children ({self.lam}) must be at "
                 f"least population ({self.population})")
        need(self.budget_steps is None or (_is_int(self.budget_steps) and self.budget_steps >= 1),
             f"budget_steps must be a positive whole number of training steps, got {self.budget_steps!r}")
        need(self.mate_choice in MATE_CHOICES,
             f"mate_choice must be {' or '.join(MATE_CHOICES)}, got {self.mate_choice!r}")
        need(_is_number(self.runaway_strength) and 0 <= self.runaway_strength <= 1,
             f"runaway_strength must be a number from 0 (mate choice only) to 1 (attractiveness alone decides "
             f"who survives), got {self.runaway_strength!r}")
        if self.mate_choice == "runaway" and not self.runaway_strength:
            need(self.schedule in BREEDING,
                 f"mate choice picks the second parent of crossover children, and schedule {self.schedule} breeds "
                 "none (it continues or copies the best): use --schedule plus or comma, or let attractiveness "
                 "decide some survivors with --runaway-strength above 0")
            need(self.crossover_rate > 0,
                 "mate choice picks the second parent of crossover children, and crossover_rate 0 makes none: "
                 "raise --crossover-rate (0.5 lets half the children choose)")
        need(self.selection in SELECTIONS, f"selection must be one of {', '.join(SELECTIONS)}, got {self.selection!r}")
        self.families = parse_families(self.families, source=source)
        self.weights = parse_weights(self.weights, source=source)
        if self.weights is not None and self.selection != "weighted":
            raise ConfigError(f"{source}: weights are for --selection weighted (selection is {self.selection})")
        if self.features is not None:
            need(isinstance(self.features, str) and self.features, "features must be a path to a .pt2 file")
            path = Path(self.features).expanduser()
            need(path.is_file(), f"features: {self.features} does not exist (a torch.export .pt2 file)")
            self.features = str(path.resolve())
        return self


SELECTIONS = ("nsga2", "weighted")
MATE_CHOICES = ("random", "runaway")  # how crossover picks its second parent (evoart.runaway)


def recorded_evolve(record: dict) -> dict:
    """A run record's ``evolve`` settings, completed with what the evoart that recorded
    them did for settings added since (a resumed or re-scored run goes on as it began)."""
    cfg = dict(record["evolve"])
    if "splits" not in record:  # recorded before evaluation splits: it keeps its two-way split
        cfg.setdefault("eval_holdout", 0)
    cfg.setdefault("precision", "fp32")  # recorded before precisions: it trained in fp32
    cfg.setdefault("schedule", "plus")   # recorded before schedules: mu + lambda
    cfg.setdefault("batched", "off")     # recorded before batched groups: each individual trained alone
    return cfg


def apply_budget(cfg: "EvolveConfig", *, explicit_steps: bool, explicit_generations: bool,
                 source: str = "config") -> "EvolveConfig":
    """Turn ``cfg.budget_steps`` (the run's total training steps) into steps and
    generations. Every generation trains ``children x steps`` steps, so the budget fixes
    their product with the generations: given --generations, the steps follow; given
    --steps (or neither: the default 120), the generations follow, rounded, and the steps
    are adjusted to land on the budget; given both, they must multiply to the budget."""
    from .schedule import steps_for_budget

    if not (_is_int(cfg.budget_steps) and cfg.budget_steps >= 1):
        raise ConfigError(f"{source}: budget_steps must be a positive whole number of training steps, "
                          f"got {cfg.budget_steps!r}")
    if not (_is_int(cfg.population) and (cfg.children is None or _is_int(cfg.children))):
        return cfg  # validate() reports the population
    try:
        cfg.steps, cfg.generations = steps_for_budget(
            cfg.budget_steps, children=cfg.lam, generations=cfg.generations if explicit_generations else None,
            steps=cfg.steps if explicit_steps else None, default_steps=cfg.steps)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    cfg.budget_steps = cfg.lam * cfg.steps * cfg.generations  # what the run will train, rounding included
    return cfg
#: Upper bounds of the sizes a run may ask for. They are far above any run that ends in a
#: working day on one machine, and they refuse a typo (an extra zero or three) before it
#: starts a run that never ends or eats the memory. The judging pass pits every
#: discriminator against every other generator, so its cost grows with the square of the
#: population.
MAX_POPULATION = 512
WHY_MAX_POPULATION = ("the judging pass pits every discriminator against every other generator, so "
                      f"{MAX_POPULATION} individuals are already {MAX_POPULATION * (MAX_POPULATION - 1):,} "
                      "pairs and hundreds of trainings a generation")
MAX_GENERATIONS = 10_000
MAX_STEPS = 1_000_000
MAX_SAMPLES = 4096
MAX_WORKERS = 256
#: Seeds are whole numbers from 0 to 2**32 - 1 (what numpy, torch and Python all take).
MAX_SEED = 2**32 - 1
#: Training precisions: ``auto`` resolves (``train.resolve_precision``) to bf16 where the
#: device has bf16 units, else fp32.
PRECISIONS = ("auto", "fp32", "bf16")
#: Batched training of same-architecture GANs (``evoart.batched``): ``auto`` resolves
#: (``resolve_batched``) to on for a GPU and off on the CPU, where a batched group of four
#: trained 1.7x slower than the four alone (docs/PERFORMANCE.md).
BATCHED = ("auto", "on", "off")
#: Where evaluations run: ``local`` (in this process, or a pool of ``workers`` processes)
#: or ``ray`` (a Ray cluster, ``evoart.ray_executor``).
EXECUTORS = ("local", "ray")


#: Interleaved training (``train.train_interleaved``): a worker on a GPU trains this many
#: GAN individuals at once, each on its own CUDA stream, so that small individuals' kernels
#: run side by side on a card one of them leaves mostly idle. On the CPU it gains nothing
#: (one thread runs one kernel at a time), so ``auto`` is 1 there. 8: what filled an H100
#: with eager processes (ANCHORS.md); gpu_check.py measures 1 to 16 on the lent card.
INTERLEAVE_GPU = 8
#: Each interleaved individual uses two CUDA streams (its own and its graphs' side stream),
#: and torch hands out 32 a device before it reuses them: past 16, individuals would
#: share streams and run one after another.
MAX_INTERLEAVE = 16


def resolve_interleave(value: int | None, device: str) -> int:
    """``None`` (auto) is ``INTERLEAVE_GPU`` on CUDA, 1 elsewhere."""
    if value is not None:
        return int(value)
    return INTERLEAVE_GPU if str(device).startswith("cuda") else 1


def resolve_batched(name: str, device: str) -> str:
    """``auto`` is ``on`` where the device is a GPU (CUDA), ``off`` elsewhere."""
    if name != "auto":
        return name
    return "on" if str(device).startswith("cuda") else "off"
#: The smallest evaluation holdout: the held-out evaluation's critic trains on one half
#: of it and is tested on the other, and coverage needs neighbours.
EVAL_HOLDOUT_MIN = 32


def _is_int(v: Any) -> bool:
    """An integer, and not a boolean (``true`` in a TOML file is not 1)."""
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def parse_families(families: Any, *, source: str = "config") -> list[str]:
    """The model families a run allows, from ``"gan,vae"`` or a list; each once, in the
    order of ``FAMILIES``. A run of one family breeds as before families existed."""
    if isinstance(families, str):
        families = [f.strip() for f in families.split(",") if f.strip()]
    if not isinstance(families, (list, tuple)) or not all(isinstance(f, str) for f in families):
        raise ConfigError(f"{source}: families must be a list of family names such as gan,vae, got {families!r}")
    if not families:
        raise ConfigError(f"{source}: families must name at least one of {', '.join(FAMILIES)}")
    for f in families:
        if f not in FAMILIES:
            raise ConfigError(f"{source}: unknown family {f!r} in families (known: {', '.join(FAMILIES)})")
    return [f for f in FAMILIES if f in families]


def parse_weights(weights: Any, *, source: str = "config") -> dict[str, float] | None:
    """Selection weights from ``"realism=2,perceptual=1"``, a table or a list in objective
    order; objectives not named weigh 0 when some are named. None stays None."""
    if weights is None:
        return None
    if isinstance(weights, str):
        pairs = {}
        for part in filter(None, (p.strip() for p in weights.split(","))):
            name, sep, value = part.partition("=")
            if not sep:
                raise ConfigError(f"{source}: weights must look like realism=1,perceptual=2,coverage=1 "
                                  f"(got {part!r})")
            try:
                pairs[name.strip()] = float(value)
            except ValueError:
                raise ConfigError(f"{source}: weight of {name.strip()} is not a number: {value!r}") from None
        weights = pairs
    elif isinstance(weights, (list, tuple)):
        if len(weights) != len(OBJECTIVES):
            raise ConfigError(f"{source}: a list of weights needs {len(OBJECTIVES)} numbers "
                              f"({', '.join(OBJECTIVES)})")
        weights = dict(zip(OBJECTIVES, weights))
    if not isinstance(weights, dict):
        raise ConfigError(f"{source}: weights must be a table such as {{realism = 1, perceptual = 2}}")
    unknown = sorted(set(weights) - set(OBJECTIVES))
    if unknown:
        raise ConfigError(f"{source}: unknown objective {unknown[0]!r} in weights (known: {', '.join(OBJECTIVES)})")
    out = {}
    for name in OBJECTIVES:
        w = weights.get(name, 0.0)
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not w >= 0 or w == float("inf"):
            raise ConfigError(f"{source}: weight of {name} must be a number >= 0, got {w!r}")
        out[name] = float(w)
    if sum(out.values()) <= 0:
        raise ConfigError(f"{source}: at least one weight must be above 0")
    return out


def load_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    # Allow either top-level keys or an [evolve] table.
    if "evolve" in data and isinstance(data["evolve"], dict):
        data = {**{k: v for k, v in data.items() if k != "evolve"}, **data["evolve"]}
    return data
