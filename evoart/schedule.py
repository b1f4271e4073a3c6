"""How a run spends its training steps: which individuals train in each generation, for
how many steps, and who survives ([engine] item 1).

Every generation gets the same budget of training steps, ``children x steps`` (the run's
``--budget-steps`` divided by its generations). A schedule splits it:

``plus`` (mu + lambda, evoart's first engine)
    lambda new children by mutation and crossover, ``steps`` each; the best mu of parents
    and children survive.
``comma`` (mu, lambda: full generational replacement)
    the same children; only they survive (the hall of fame keeps the best ever).
``pbt`` (population-based training, Jaderberg et al. 2017)
    the better half of the population keeps training (a *continuation*: the same genome
    starting from its own weights, discriminator and optimiser state); the worse half is
    replaced by copies of the better half ("exploit") whose training and loss genes are
    perturbed ("explore"), keeping every weight; the budget is split evenly.
``halving`` (successive halving, as in ASHA/Hyperband)
    generation 0 trains lambda random genomes; each later generation continues the best
    ``ceil(n / 2)`` of the previous one, down to one, each with ``budget / n`` steps, so
    the steps per individual double while their number halves. Nothing mutates: the
    compute goes into depth.

A continuation is a new individual in the ledger (origin ``continuation``) whose lineage
steps add up along its stem parents, so ``lineage_steps / total steps`` of the best is the
share of the run its lineage received.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SCHEDULES = ("plus", "comma", "pbt", "halving")
#: The schedules that breed children by mutation and crossover (the others continue or copy).
BREEDING = ("plus", "comma")


def default_schedule(*, inherit: bool, mate_choice: str) -> str:
    """The schedule a run gets when it names none: halving, which won at equal steps
    (docs/QUALITY.md), unless the run needs children that halving does not breed: children
    that start fresh (``inherit`` off) or that choose their mates (runaway mate choice)."""
    return "plus" if inherit is False or mate_choice == "runaway" else "halving"


@dataclass(frozen=True)
class Plan:
    """One generation's training plan."""

    continuations: tuple[int, ...]   # ranks (0 = best) of the population that keep training
    continuation_steps: int
    exploits: tuple[int, ...]        # ranks copied with perturbed training genes (pbt)
    offspring: int                   # new children by mutation and crossover
    offspring_steps: int
    replace: str                     # "plus": parents compete with children; "comma": children only

    @property
    def size(self) -> int:
        return len(self.continuations) + len(self.exploits) + self.offspring

    @property
    def steps(self) -> int:
        return (len(self.continuations) * self.continuation_steps
                + (len(self.exploits) + self.offspring) * self.offspring_steps)


def generation_budget(cfg) -> int:
    """The training steps of one generation: ``children x steps``."""
    return cfg.lam * cfg.steps


def halving_size(lam: int, generation: int) -> int:
    return max(1, math.ceil(lam / 2 ** generation))


def plan(cfg, generation: int, population: int) -> Plan:
    """The plan of ``generation`` (>= 1) for a ranked population of ``population``."""
    budget = generation_budget(cfg)
    kind = cfg.schedule
    if kind in ("plus", "comma"):
        return Plan((), 0, (), cfg.lam, cfg.steps, "plus" if kind == "plus" else "comma")
    if kind == "pbt":
        keep = math.ceil(population / 2)
        n = population
        steps = max(1, budget // n)
        return Plan(tuple(range(keep)), steps, tuple(r % keep for r in range(n - keep)), 0, steps, "comma")
    if kind == "halving":
        n = min(population, halving_size(cfg.lam, generation))
        return Plan(tuple(range(n)), max(1, budget // n), (), 0, 0, "comma")
    raise ValueError(f"unknown schedule {kind!r}")


def planned_steps(cfg) -> int:
    """The run's total training steps as planned (what ``--budget-steps`` asks for)."""
    total = cfg.lam * cfg.steps  # generation 0: lambda individuals, ``steps`` each
    population = min(cfg.population, cfg.lam)
    for g in range(1, cfg.generations):
        p = plan(cfg, g, population)
        total += p.steps
        population = min(cfg.population, p.size if p.replace == "comma" else population + p.size)
    return total


def steps_for_budget(budget: int, *, children: int, generations: int | None, steps: int | None,
                     default_steps: int) -> tuple[int, int]:
    """(steps, generations) that spend ``budget`` training steps with ``children`` per
    generation. Given generations: steps = budget / (children x generations). Given steps
    (or neither: the default steps): generations = budget / (children x steps), rounded,
    then steps adjusted so the run lands on the budget. Given both: they must multiply to
    the budget. Raises ValueError with the reason otherwise."""
    if generations is not None and steps is not None:
        if children * steps * generations != budget:
            raise ValueError(
                f"--budget-steps {budget} contradicts --steps {steps} x --generations {generations} x "
                f"{children} children = {children * steps * generations} steps: give at most two of them")
        return steps, generations
    if generations is None:
        per = steps if steps is not None else default_steps
        generations = max(1, round(budget / (children * per)))
    steps = budget // (children * generations)
    if steps < 1:
        raise ValueError(f"--budget-steps {budget} is less than one step for each of {children} children "
                         f"in {generations} generations")
    return steps, generations
