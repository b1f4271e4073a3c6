"""The genetic algorithm: DEAP types and toolbox, the (mu + lambda) generation loop, the
hall of fame and lineage. The only module that imports deap.

The loop never touches files: it reports through a ``Ledger`` (which the run folder
implements in ``runner``) and ``progress`` callbacks, and evaluates through the
toolbox's ``map`` (serial, a process pool, or later Ray). Every random choice comes from
one ``random.Random`` whose state is checkpointed with each generation, so a killed run
resumes to exactly the same genomes as an uninterrupted one.
"""

from __future__ import annotations

import math
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Protocol

import numpy as np
from deap import base, creator, tools

from . import ornaments, runaway, schedule, variation
from .config import EvolveConfig
from .fitness import Critic, EvalContext, EvalTask, Evaluation, judge
from .genome import Genome
from .memory import resident_mib
from .objectives import OBJECTIVES, WEIGHTS, WORST, display_score, utilities  # noqa: F401 (re-exported)
from .seeds import derive_seed

class Member:
    """One individual of the population: a genome, where it came from and how it scored."""

    def __init__(self, id: str, genome: Genome, *, parents: list[str], born: int, seed: int,
                 origin: str, inheritance: variation.Inheritance | None):
        self.id = id
        self.genome = genome
        self.parents = parents
        self.born = born
        self.seed = seed
        self.origin = origin              # "random", "mutation", "crossover", "continuation", "exploit", "preset:NAME"
        self.inheritance = inheritance
        self.steps: int | None = None     # training steps planned for it (None: the run's --steps)
        self.lineage_steps = 0            # steps trained along its stem parents, its own included
        self.trained_steps = 0            # steps it trained itself
        self.status = "pending"
        self.reason = ""
        self.metrics: dict[str, float] = {}
        self.front = 0
        self.crowding = 0.0

    def objectives(self) -> dict[str, float]:
        return {k: self.metrics.get(k, WORST[k]) for k in OBJECTIVES}

    def row(self) -> dict[str, Any]:
        return {"id": self.id, "genome": self.genome.to_dict(), "genome_hash": self.genome.content_hash(),
                "parents": self.parents, "origin": self.origin, "seed": self.seed,
                "inheritance": self.inheritance.to_dict() if self.inheritance else None}

    def __repr__(self) -> str:
        return f"Member({self.id}, {self.status}, {self.objectives()})"


# DEAP's creator is global: create the classes once, at import of this one module.
if not hasattr(creator, "EvoartFitness"):
    creator.create("EvoartFitness", base.Fitness, weights=WEIGHTS)
if not hasattr(creator, "EvoartIndividual"):
    creator.create("EvoartIndividual", Member, fitness=creator.EvoartFitness)


def new_member(*, steps: int | None = None, **kwargs) -> Member:
    m = creator.EvoartIndividual(**kwargs)
    m.steps = steps
    return m


def individual_id(generation: int, index: int) -> str:
    return f"g{generation:03d}-i{index:02d}"


def individual_seed(run_seed: int, ind_id: str) -> int:
    return derive_seed(run_seed, ind_id, algorithm="sha256", bits=31)


@contextmanager
def deap_random(state: random.Random):
    """Run DEAP's built-ins, which draw from the global ``random``, on ``state`` instead:
    the caller's global RNG is saved and restored around them, and ``state`` carries on
    from where they left it (it is checkpointed with every generation)."""
    saved = random.getstate()
    random.setstate(state.getstate())
    try:
        yield
    finally:
        state.setstate(random.getstate())
        random.setstate(saved)


def restore_hall_of_fame(hof: tools.ParetoFront, members: list[Member]) -> None:
    """Put back a checkpointed hall of fame exactly: DEAP keeps its items best-first and
    their fitnesses in ascending order, so both lists are rebuilt rather than re-inserted
    (re-inserting would reorder ties)."""
    for m in members:
        m.fitness.values = tuple(m.objectives()[k] for k in OBJECTIVES)
    hof.items = list(members)
    hof.keys = [m.fitness for m in reversed(members)]


def _rng_to_json(state) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _rng_from_json(data) -> tuple:
    return (data[0], tuple(data[1]), data[2])


# ---- the ledger the loop reports to -----------------------------------------------------

@dataclass
class ResumePoint:
    """Where a run stopped: the last finished generation's population (with metrics) and
    RNG states, plus the children of an unfinished generation and those already done."""

    next_generation: int
    population: list[Member]
    rng_state: list
    global_rng_state: list
    hall_of_fame: list[Member]                 # the Pareto front so far, in DEAP's order
    begun: list[Member] | None = None          # children of next_generation, if it was begun
    begun_state: dict | None = None
    history: list[dict] = field(default_factory=list)   # the finished generations' summaries
    panel: list[Member] = field(default_factory=list)    # the remembered judges of next_generation
    panel_culled: dict = field(default_factory=dict)     # ... and the generation each was culled in


class Ledger(Protocol):
    def resume_point(self, cfg: EvolveConfig) -> ResumePoint | None: ...
    def begin_generation(self, generation: int, children: list[Member], state: dict) -> None: ...
    def commit(self, member: Member, evaluation: Evaluation) -> None: ...
    def end_generation(self, generation: int, ranked: list[Member], pool: list[Member],
                       judged, state: dict, samples: dict[str, np.ndarray]) -> None: ...
    def load_train_state(self, ind_id: str) -> dict | None: ...
    def load_generator_state(self, ind_id: str) -> dict | None: ...
    def load_discriminator_state(self, ind_id: str) -> dict | None: ...
    def load_samples(self, ind_id: str) -> np.ndarray | None: ...


Progress = Callable[[str, dict], None]


@dataclass
class EvolveResult:
    generations: int
    population: list[Member]                 # the last generation, best first
    hall_of_fame: list[Member]               # the Pareto front over the whole run
    evaluated: int                           # individuals trained in this call
    history: list[dict] = field(default_factory=list)


# ---- toolbox -----------------------------------------------------------------------------

def make_toolbox(cfg: EvolveConfig, executor) -> base.Toolbox:
    tb = base.Toolbox()
    tb.register("map", executor.map)
    tb.register("random_genome", variation.random_genome, resolution=cfg.resolution)
    tb.register("mutate", variation.mutate, strength=cfg.mutation_strength)
    tb.register("mate", variation.crossover)
    tb.register("select", tools.selNSGA2)
    return tb


def _tournament(population: list[Member], rng: random.Random) -> Member:
    """Binary tournament on (Pareto front, crowding distance), as in NSGA-II; in an
    interactive run the artist's picks (a higher ``preference``) win it first."""
    a, b = rng.sample(population, 2) if len(population) >= 2 else (population[0], population[0])
    pa, pb = -a.metrics.get("preference", 0.0), -b.metrics.get("preference", 0.0)
    if (pa, a.front, -a.crowding) <= (pb, b.front, -b.crowding):
        return a
    return b


def _rank(pool: list[Member]) -> list[Member]:
    """Sort best first: by Pareto front, then crowding distance (spread), then display score.

    The pool is put in id order first: crowding distances of tied objective values depend
    on the order they come in, and a resumed run's population comes back from the ledger
    in rank order, not in the order selection left it (a tiny run's realism ties at 0)."""
    pool = sorted(pool, key=lambda m: m.id)
    fronts = tools.sortNondominated(pool, len(pool))
    for f_index, front in enumerate(fronts):
        tools.emo.assignCrowdingDist(front)
        for m in front:
            m.front = f_index
            m.crowding = float(m.fitness.crowding_dist)
    return sorted(pool, key=lambda m: (m.front, -m.crowding, -m.metrics.get("score", 0.0), m.id))


def _rank_weighted(pool: list[Member], weights: dict[str, float] | None, floors: dict | None) -> list[Member]:
    """Sort best first by the weighted score (``--selection weighted``). ``front`` becomes
    the rank, so the parents' tournament prefers the better-ranked of two."""
    ranked = sorted(pool, key=lambda m: (-display_score(m.metrics, floors, weights), m.id))
    for i, m in enumerate(ranked):
        m.front, m.crowding = i, 0.0
    return ranked


def select_and_rank(tb, pool: list[Member], cfg: EvolveConfig, floors: dict | None,
                    k: int | None = None) -> list[Member]:
    """The next population (``k``, by default the run's population), best first: NSGA-II
    (DEAP's selNSGA2) or the weighted sum; with ``runaway_strength`` above 0, a share of
    the ranking goes to attractiveness (``_survive_with_attractiveness``)."""
    k = cfg.population if k is None else k
    if cfg.runaway_strength > 0:
        return _survive_with_attractiveness(pool, cfg, floors, k)
    if cfg.selection == "weighted":
        return _rank_weighted(pool, cfg.weights, floors)[:k]
    return _rank(tb.select(pool, k))


# ---- mate choice (Fisherian runaway, evoart.runaway) -------------------------------------

def mate_rng(cfg: EvolveConfig, child_id: str) -> random.Random:
    """The RNG of a child's mate genes and of its mate choice, derived from the run's seed
    and the child's id: the GA's own stream draws exactly what it drew before mate choice
    existed, and a resumed run redraws the same numbers."""
    return random.Random(derive_seed(cfg.seed, "mate", child_id, bits=63))


def _ornament_z(members: list[Member]) -> dict[str, dict[str, float]]:
    """Each member's ornaments standardised over ``members`` (``runaway.standardised``)."""
    orns = {m.id: ornaments.of(m.metrics) if m.status == "ok" else None for m in members}
    scale = runaway.scale_of([o for o in orns.values() if o is not None])
    return {m.id: runaway.standardised(orns[m.id], scale) for m in members}


def _survive_with_attractiveness(pool: list[Member], cfg: EvolveConfig, floors: dict | None,
                                 k: int) -> list[Member]:
    """``--runaway-strength S``: the ranking merges two orders, the objectives' (NSGA-II's
    fronts and crowding, or the weighted score) and attractiveness (``runaway.
    attractiveness``, judged by the pool's choosers), so that of the first n places
    floor(S x n) go to the most attractive and the rest to the objectives' best (the first
    place stays the objectives' unless S = 1). The top ``k`` survive; a schedule that
    continues or copies the best by rank (pbt, halving) so continues the attractive too."""
    by_objectives = _ranked(pool, cfg, floors)   # also sets the fronts the tournaments read
    zs = _ornament_z(pool)
    appeal = dict(zip([m.id for m in pool],
                      runaway.attractiveness([m.genome.mate for m in pool], [zs[m.id] for m in pool])))
    by_appeal = sorted(pool, key=lambda m: (m.status != "ok", -appeal[m.id], m.id))
    order: list[Member] = []
    taken: set[str] = set()
    attractive = 0
    for n in range(1, len(pool) + 1):
        use_appeal = math.floor(cfg.runaway_strength * n + 1e-9) > attractive
        source = by_appeal if use_appeal else by_objectives
        pick = next(m for m in source if m.id not in taken)
        attractive += use_appeal
        taken.add(pick.id)
        order.append(pick)
    return order[:k]


def _choose_mate(p1: Member, population: list[Member], zs: dict[str, dict[str, float]],
                 rng: random.Random) -> Member:
    """``--mate-choice runaway``: ``p1`` picks its mate among ``MATE_CANDIDATES`` distinct
    winners of the usual tournament among ``population`` (its possible mates, itself not
    among them; every one of them if there are no more), by how
    well their ornaments match its preference, weighted by its choosiness."""
    candidates: list[Member] = []
    want = min(runaway.MATE_CANDIDATES, len(population))
    while len(candidates) < want:
        candidates.append(_tournament([m for m in population if m not in candidates], rng))
    pick = runaway.choose(p1.genome.mate, [zs[c.id] for c in candidates], rng)
    return candidates[pick]


def _vary_mate(genome: Genome, parents: list[Member], cfg: EvolveConfig, child_id: str) -> Genome:
    """The child's mate genes: the parents' crossed (two parents) or mutated (one), on the
    child's own RNG; genomes without active mate genes keep the neutral default."""
    rng = mate_rng(cfg, child_id)
    if len(parents) == 2:
        mate = variation.cross_mate(parents[0].genome.mate, parents[1].genome.mate, rng)
    else:
        mate = variation.mutate_mate(parents[0].genome.mate, rng, cfg.mutation_strength)
    return genome if mate == genome.mate else replace(genome, mate=mate)


def run_taste(cfg: EvolveConfig) -> dict[str, float]:
    """The run's shared taste at generation 0 (``variation.random_taste``), from its seed."""
    return variation.random_taste(random.Random(derive_seed(cfg.seed, "taste", bits=63)))


def breeds_mates(cfg: EvolveConfig) -> bool:
    """Whether generation 0 draws mate genes: under mate choice or a runaway strength."""
    return cfg.mate_choice == "runaway" or cfg.runaway_strength > 0


def next_population(tb, population: list[Member], children: list[Member], cfg: EvolveConfig,
                    floors: dict | None, plan: schedule.Plan | None) -> list[Member]:
    """The next population, best first, as the generation's plan replaces: "plus" selects
    from parents and children, "comma" from the children alone (the parents were judged
    beside them). Runs DEAP's built-ins: call it inside ``deap_random``."""
    if plan is not None and plan.replace == "comma":
        return select_and_rank(tb, children, cfg, floors, k=min(cfg.population, len(children)))
    return select_and_rank(tb, population + children, cfg, floors)


def _ranked(population: list[Member], cfg: EvolveConfig, floors: dict | None) -> list[Member]:
    if cfg.selection == "weighted":
        return _rank_weighted(population, cfg.weights, floors)
    return _rank(population)


#: The share of mutations that, in a run allowing several families, replace the genome
#: by a fresh random one of another allowed family (``variation.switch_family``): rare, as
#: it throws away everything the lineage learned, but enough that a family missing from
#: the population can come back.
FAMILY_SWITCH_RATE = 0.05


def make_children(tb, generation: int, population: list[Member], cfg: EvolveConfig,
                  rng: random.Random, plan: schedule.Plan | None = None) -> list[Member]:
    """The generation's new individuals as its schedule plans them (``evoart.schedule``):
    continuations of the best, exploited copies with perturbed training genes, and
    children by mutation and crossover.

    Families: a crossover's second parent is drawn (by the same tournament) among the
    first parent's family only; when the first parent is the only one of its family, the
    child is a mutant of it instead. In a run allowing several families a mutation is,
    with probability ``FAMILY_SWITCH_RATE``, a family switch: a fresh random genome of
    another allowed family, which trains from scratch (origin "switch")."""
    several = len(cfg.families) > 1
    plan = plan or schedule.plan(cfg, generation, len(population))
    children = []
    for rank in plan.continuations:
        p = population[rank]
        cid = individual_id(generation, len(children))
        children.append(new_member(
            id=cid, genome=p.genome, parents=[p.id], born=generation, seed=individual_seed(cfg.seed, cid),
            origin="continuation", inheritance=variation.Inheritance.identity(p.genome), steps=plan.continuation_steps))
    for rank in plan.exploits:
        p = population[rank]
        cid = individual_id(generation, len(children))
        genome, inh = variation.perturb_training(p.genome, rng, cfg.mutation_strength)
        children.append(new_member(
            id=cid, genome=genome, parents=[p.id], born=generation, seed=individual_seed(cfg.seed, cid),
            origin="exploit", inheritance=inh, steps=plan.offspring_steps))
    first = len(children)
    choosing = cfg.mate_choice == "runaway"
    zs = _ornament_z(population) if choosing and plan.offspring else {}
    for k in range(first, first + plan.offspring):
        cid = individual_id(generation, k)
        mated = False
        if rng.random() < cfg.crossover_rate and len(population) >= 2:
            p1 = _tournament(population, rng)
            kin = [m for m in population if m is not p1 and m.genome.family == p1.genome.family]
            if kin:  # else: the only one of its family, it is mutated instead (below)
                p2 = (_choose_mate(p1, kin, zs, mate_rng(cfg, cid + ":choice")) if choosing
                      else _tournament(kin, rng))
                genome, inh = tb.mate(p1.genome, p2.genome, rng)
                parents, origin, mated = [p1.id, p2.id], "crossover", True
                genome = _vary_mate(genome, [p1, p2], cfg, cid)
        else:
            p1 = _tournament(population, rng)
        if not mated:
            if several and rng.random() < FAMILY_SWITCH_RATE:
                genome = variation.switch_family(p1.genome, rng, tuple(cfg.families), cfg.resolution)
                inh, parents, origin = None, [p1.id], "switch"
            else:
                genome, inh = tb.mutate(p1.genome, rng)
                parents, origin = [p1.id], "mutation"
            genome = _vary_mate(genome, [p1], cfg, cid)  # a switched family keeps its parent's taste
        children.append(new_member(
            id=cid, genome=genome, parents=parents, born=generation, seed=individual_seed(cfg.seed, cid),
            origin=origin, inheritance=inh if cfg.inherit else None, steps=plan.offspring_steps,
        ))
    return children


def initial_members(tb, cfg: EvolveConfig, rng: random.Random, seeds: list[tuple[str, Genome]] = (),
                    weighted: set[str] | frozenset = frozenset()) -> list[Member]:
    """Generation 0: the given seed genomes (presets) and their mutants, filled up with
    random genomes. A seed named in ``weighted`` has trained weights (see ``seed_parent``):
    it starts from them and its mutants inherit them where shapes match, unless the run
    does not inherit at all. Its discriminator starts fresh (presets keep only G)."""
    out = []
    seeds = list(seeds)
    taste = run_taste(cfg) if breeds_mates(cfg) else None
    for k in range(cfg.lam):
        cid = individual_id(0, k)
        inh = None
        if seeds and k < len(seeds):
            name, genome = seeds[k]
            origin = name if name.startswith("from:") else f"preset:{name}"  # from: another run's individual
            if name in weighted and cfg.inherit:
                inh = replace(variation.Inheritance.identity(genome), discriminator=None)
        elif seeds and k < 2 * len(seeds):
            name, base_genome = seeds[k - len(seeds)]
            genome, mutant_inh = tb.mutate(base_genome, rng)
            origin = f"mutant:{name}"
            if name in weighted and cfg.inherit:
                inh = replace(mutant_inh, discriminator=None)
        else:  # the allowed families in turn, so that each starts with its share
            genome = tb.random_genome(rng, family=cfg.families[(k - 2 * len(seeds)) % len(cfg.families)])
            origin = "random"
        if taste is not None and not genome.mate.active:
            genome = replace(genome, mate=variation.random_mate(mate_rng(cfg, cid), taste))
        out.append(new_member(id=cid, genome=genome, parents=[], born=0,
                              seed=individual_seed(cfg.seed, cid), origin=origin, inheritance=inh))
    return out


def seed_parent(member: Member) -> str | None:
    """The preset a generation-0 member was seeded from ("preset:NAME", "mutant:NAME")."""
    if member.born == 0 and not member.parents and ":" in member.origin:
        kind, name = member.origin.split(":", 1)
        if kind in ("preset", "mutant"):
            return name
        if kind == "from":  # --from RUN:INDIVIDUAL: the seed is named by the whole origin
            return member.origin
    return None


# ---- the judge panel ---------------------------------------------------------------------

# Remembered judges: the discriminators of the individuals culled in the last
# PANEL_GENERATIONS generations, at most PANEL_MEMORY of them, the most recently culled
# first. They are the judges today's generators' parents and grandparents had to get
# past, so a weakness that paid off a generation or two ago does not pay again; the cost
# is bounded (k x children Ds). Not the hall of fame: with realism judged by a fresh
# critic the Pareto front is small and mostly still in the population (tiny runs: no
# front member outside it in 8 seeds of 8), so its memory would be empty.
PANEL_GENERATIONS = 2
PANEL_MEMORY = 16


def kin_relations(pool: list[Member], judges: list[Member]) -> dict[str, dict[str, str]]:
    """For each generator of ``pool``: the judges that are its kin and how ("parent",
    "child", "sibling": born in the same generation with a parent in common). Its own D
    is left out by ``judge`` itself."""
    out: dict[str, dict[str, str]] = {}
    for g in pool:
        related: dict[str, str] = {}
        for d in judges:
            relation = kin_relation((d.id, d.parents, d.born), (g.id, g.parents, g.born))
            if relation not in (None, "self"):
                related[d.id] = relation
        out[g.id] = related
    return out


def kin_relation(d: tuple, g: tuple) -> str | None:
    """How individual ``d`` is related to ``g``, each ``(id, parents, born)``: "self",
    "parent", "child", "sibling" (born in the same generation with a parent in common)
    or None. The panel's rule, also drawn by the gallery's heat map."""
    (d_id, d_parents, d_born), (g_id, g_parents, g_born) = d, g
    if d_id == g_id:
        return "self"
    if d_id in g_parents:
        return "parent"
    if g_id in d_parents:
        return "child"
    if d_born == g_born and set(d_parents) & set(g_parents):
        return "sibling"
    return None


def remembered_judges(generation: int, pool: list[Member], ranked: list[Member],
                      panel: list[Member], culled: dict[str, int]) -> tuple[list[Member], dict[str, int]]:
    """The panel's memory for the generation after ``generation``: its culled members
    with a D, and those of ``panel`` culled within ``PANEL_GENERATIONS`` generations
    (see ``PANEL_MEMORY``). Returns the members and the generation each was culled in."""
    alive = {m.id for m in ranked}
    now = {m.id: generation for m in pool if m.id not in alive and m.status == "ok"}
    kept = {m.id: culled[m.id] for m in panel
            if m.id not in alive and m.id not in now and culled.get(m.id, -1) > generation - PANEL_GENERATIONS}
    by_id = {m.id: m for m in [*panel, *pool]}
    order = sorted({**kept, **now}.items(), key=lambda kv: (-kv[1], -by_id[kv[0]].born, kv[0]))[:PANEL_MEMORY]
    return [by_id[i] for i, _ in order], dict(order)


def critic_for(cfg: EvolveConfig, generation: int) -> Critic:
    """The generation's fresh critic: its D id in the judge matrix and its seed."""
    return Critic(id=f"critic-g{generation:03d}", seed=derive_seed(cfg.seed, "critic", generation, bits=31))


# ---- the loop ----------------------------------------------------------------------------

def evolve(
    cfg: EvolveConfig,
    ctx: EvalContext,
    executor,
    *,
    ledger: Ledger | None = None,
    progress: Progress | None = None,
    seed_genomes: list[tuple[str, Genome]] = (),
    seed_states: dict[str, dict] | None = None,
    judge_device: str = "cpu",
) -> EvolveResult:
    """Run (mu + lambda) evolution for ``cfg.generations`` generations in all, resuming
    from ``ledger`` when it holds an unfinished run. ``seed_states`` maps a seed genome's
    name to the training state its generation-0 members start from (preset weights)."""
    seed_states = seed_states or {}
    emit = progress or (lambda kind, info: None)
    tb = make_toolbox(cfg, executor)
    rng = random.Random(cfg.seed)
    deap_rng = random.Random(cfg.seed)  # the global RNG's state while DEAP's built-ins run
    hof = tools.ParetoFront(similar=lambda a, b: a.id == b.id)
    history: list[dict] = []   # the logbook: one summary per generation
    population: list[Member] = []
    start_gen = 0
    resume = ledger.resume_point(cfg) if ledger is not None else None
    begun: list[Member] | None = None
    panel: list[Member] = []   # the remembered judges (Ds culled in the last generations)
    culled: dict[str, int] = {}
    if resume is not None:
        start_gen = resume.next_generation
        population = resume.population
        rng.setstate(_rng_from_json(resume.rng_state))
        deap_rng.setstate(_rng_from_json(resume.global_rng_state))
        for m in population:
            m.fitness.values = tuple(m.objectives()[k] for k in OBJECTIVES)
        with deap_random(deap_rng):
            population = _ranked(population, cfg, ctx.floors)
        restore_hall_of_fame(hof, resume.hall_of_fame or population)
        history = list(resume.history)
        begun = resume.begun
        panel = list(resume.panel)
        culled = dict(resume.panel_culled)
        if begun is not None and resume.begun_state:
            rng.setstate(_rng_from_json(resume.begun_state["rng"]))
            deap_rng.setstate(_rng_from_json(resume.begun_state["global_rng"]))
            planned = resume.begun_state.get("steps") or {}  # runs begun before schedules: --steps each
            for m in begun:
                m.steps = planned.get(m.id)

    # In-memory state of the current population and panel: training states (for
    # inheritance), generator and discriminator states (for judging). Reloaded from the
    # ledger after a resume. Every trained individual keeps its D, inheriting or not.
    train_states: dict[str, dict | None] = {}
    gen_states: dict[str, dict | None] = {}
    d_states: dict[str, dict | None] = {}

    def train_state(ind_id: str) -> dict | None:
        if ind_id not in train_states and ledger is not None:
            train_states[ind_id] = ledger.load_train_state(ind_id)
        return train_states.get(ind_id)

    def gen_state(ind_id: str) -> dict | None:
        if ind_id not in gen_states and ledger is not None:
            gen_states[ind_id] = ledger.load_generator_state(ind_id)
        return gen_states.get(ind_id)

    def d_state(ind_id: str) -> dict | None:
        if ind_id not in d_states and ledger is not None:
            d_states[ind_id] = ledger.load_discriminator_state(ind_id)
        return d_states.get(ind_id)

    # The fixed-latent samples the judging pass judges: each individual's are those its
    # worker drew when it was evaluated (the ledger keeps them, so a resumed run judges
    # the same bits); drawn again here only when none were kept.
    sample_cache: dict[str, np.ndarray] = {}

    def fixed_samples(m: Member) -> np.ndarray | None:
        if m.id not in sample_cache and ledger is not None:
            loaded = ledger.load_samples(m.id)
            if loaded is not None:
                sample_cache[m.id] = loaded
        s = sample_cache.get(m.id)
        if s is None and (gs := gen_state(m.id)) is not None:
            from .fitness import generate_samples  # local: keeps torch out of DEAP-only imports

            s = generate_samples(m.genome, gs, ctx)
        return s
    evaluated = 0
    for gen in range(start_gen, cfg.generations):
        # the generation's plan (who trains how long, who survives), from the population it breeds from
        plan = schedule.plan(cfg, gen, len(population)) if gen > 0 else None
        if begun is not None:
            children, begun = begun, None
        else:
            children = (initial_members(tb, cfg, rng, seed_genomes, set(seed_states)) if gen == 0
                        else make_children(tb, gen, population, cfg, rng, plan))
            if ledger is not None:
                ledger.begin_generation(gen, children, {
                    "rng": _rng_to_json(rng.getstate()), "global_rng": _rng_to_json(deap_rng.getstate()),
                    "steps": {c.id: c.steps or cfg.steps for c in children}})
        t_gen = time.perf_counter()
        emit("generation_start", {"generation": gen, "generations": cfg.generations,
                                  "children": len(children), "population": population})

        todo = [c for c in children if c.status == "pending"]
        by_id = {c.id: c for c in children}
        def task_parents(c: Member) -> list[dict | None]:
            if c.inheritance is None:
                return []
            if seed_parent(c) is not None:  # a preset's weights stand in for a parent
                return [seed_states.get(seed_parent(c))]
            return [train_state(p) for p in c.parents]

        tasks = [
            EvalTask(
                id=c.id, genome=c.genome.to_dict(), seed=c.seed, steps=c.steps or cfg.steps,
                parents=task_parents(c),
                inheritance=c.inheritance.to_dict() if c.inheritance is not None else None,
                budget_seconds=cfg.budget_seconds,
                cohort=len(children),  # the whole generation's, resumed or not: the same threads either way
            )
            for c in todo
        ]
        emit("evaluating", {"generation": gen, "todo": len(todo), "done": len(children) - len(todo)})
        for ev in tb.map(tasks):
            m = by_id[ev.id]
            m.status, m.reason, m.metrics = ev.status, ev.reason, dict(ev.metrics)
            m.lineage_steps = int((ev.stats or {}).get("lineage_steps", 0))
            m.trained_steps = int((ev.stats or {}).get("steps", 0))
            if ev.status == "ok":
                if ev.samples is not None:
                    sample_cache[m.id] = ev.samples
                train_states[m.id] = ev.train_state if cfg.inherit else None
                gen_states[m.id] = ev.generator_state
                d_states[m.id] = ev.train_state["d"] if ev.train_state else None
            if ledger is not None:
                ledger.commit(m, ev)
            evaluated += 1
            emit("evaluated", {"generation": gen, "member": m, "evaluation": ev})

        # The judging pass: the panel (the population's Ds but kin, the remembered Ds and
        # a fresh critic) judges every G.
        emit("judging", {"generation": gen})
        t_judge = time.perf_counter()
        pool = population + children
        samples = {}
        entries = []
        for m in pool:
            ok = m.status == "ok"
            # all fixed latents: the first judge_samples are judged, the rest train the critic
            s = fixed_samples(m) if ok else None
            if s is not None:
                samples[m.id] = s
            entries.append((m.id, m.genome, d_state(m.id) if ok else None, s))
        in_pool = {m.id for m in pool}
        remembered = [m for m in panel if m.id not in in_pool]
        judged = judge(entries, ctx.holdout_images, n=cfg.judge_samples, device=judge_device,
                       kin=kin_relations(pool, pool + remembered),
                       panel=[(m.id, m.genome, d_state(m.id)) for m in remembered],
                       critic=critic_for(cfg, gen))
        for m in pool:
            if m.status == "ok":
                m.metrics["realism"] = judged.realism[m.id]
            else:
                m.metrics.update(WORST)
            m.fitness.values = tuple(m.objectives()[k] for k in OBJECTIVES)
            m.metrics["score"] = display_score(m.metrics, ctx.floors) if m.status == "ok" else 0.0

        judge_seconds = time.perf_counter() - t_judge
        gen_steps = sum(m.trained_steps for m in children)
        total_steps = (history[-1].get("total_steps", 0) if history else 0) + gen_steps
        with deap_random(deap_rng):
            ranked = next_population(tb, population, children, cfg, ctx.floors, plan)
            hof.update(ranked)
        panel, culled = remembered_judges(gen, pool, ranked, panel, culled)
        state = {"rng": _rng_to_json(rng.getstate()), "global_rng": _rng_to_json(deap_rng.getstate()),
                 "population": [m.id for m in ranked], "hall_of_fame": [m.id for m in hof],
                 "hall_of_fame_metrics": {m.id: dict(m.metrics) for m in hof},
                 "judges": [m.id for m in remembered],   # the remembered judges of this generation
                 "panel": [m.id for m in panel],         # ... and of the next one
                 "panel_culled": culled}
        summary = {
            "generation": gen,
            "best_realism": max(m.metrics["realism"] for m in ranked),
            "median_realism": float(np.median([m.metrics["realism"] for m in ranked])),
            "best_swd": min(m.metrics["swd"] for m in ranked),
            "median_swd": float(np.median([m.metrics["swd"] for m in ranked])),
            "best_perceptual": min(m.metrics["perceptual"] for m in ranked),
            "median_perceptual": float(np.median([m.metrics["perceptual"] for m in ranked])),
            "best_coverage": max(m.metrics["coverage"] for m in ranked),
            "best_score": max(m.metrics["score"] for m in ranked),
            "median_score": float(np.median([m.metrics["score"] for m in ranked])),
            "diverged": sum(1 for m in children if m.status == "diverged"),
            "failed": sum(1 for m in children if m.status == "failed"),
            "judge_seconds": round(judge_seconds, 2),
            "critic_seconds": judged.critic_seconds,
            "kin_fallbacks": len(judged.fallbacks()),
            "seconds": round(time.perf_counter() - t_gen, 2),
            "driver_rss_mib": round(resident_mib(), 1),
            "steps": gen_steps,
            "total_steps": total_steps,
            "best_lineage_steps": ranked[0].lineage_steps if ranked else 0,
            "best_lineage_share": round(ranked[0].lineage_steps / total_steps, 4) if ranked and total_steps else 0.0,
        }
        state["summary"] = summary
        if ledger is not None:
            ledger.end_generation(gen, ranked, pool, judged, state, samples)
        survivors = {m.id for m in ranked}
        for k in [k for k in d_states if k not in survivors and k not in {m.id for m in panel}]:
            del d_states[k]
        sample_cache = {k: v for k, v in samples.items() if k in survivors}
        for d in (train_states, gen_states):
            for k in [k for k in d if k not in survivors]:
                del d[k]
        population = ranked
        history.append(summary)
        emit("generation_end", {"generation": gen, "generations": cfg.generations, "ranked": ranked,
                                "pool": pool, "summary": summary})

    return EvolveResult(cfg.generations, population, list(hof), evaluated, history)
