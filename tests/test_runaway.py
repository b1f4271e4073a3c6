"""Fisherian runaway: ornaments measured from an individual's samples, preference and
choosiness genes that are inherited, crossed and mutated, mate choice by them
(``--mate-choice runaway``), attractiveness in survival (``--runaway-strength``), and the
gallery's plots of the peacock's tail.

The GA-level tests breed real populations through ``ga.make_children`` and
``ga.select_and_rank`` (DEAP's NSGA-II) without training: a synthetic ornament, computed
from each genome's learning-rate genes (inherited from either parent, mutated often),
stands in for what training would make of the genes, and the objectives are drawn anew
each generation, independent of the genome, so survival is neutral and only mate choice
can move the ornament."""

from __future__ import annotations

import json
import math
import random
import statistics
from dataclasses import replace

import numpy as np
import pytest
from e2e import TINY, evoart, ledger, only_run

from evoart import ga, ornaments, runaway, schedule, variation
from evoart.config import ConfigError, EvolveConfig
from evoart.executors import SerialExecutor
from evoart.genome import Genome, GenomeError, MateGenes
from evoart.seeds import derive_seed

FLOORS = {"perceptual": {"mean": 1.0, "std": 0.5, "n": 64, "repeats": 5},
          "coverage": {"mean": 0.8, "std": 0.05, "n": 64, "repeats": 5}}
NAMED = "saturation"  # the ornament the synthetic tests name


# ---- ornaments ---------------------------------------------------------------------------

def _images(fill) -> np.ndarray:
    x = np.zeros((8, 16, 16, 3), np.uint8)
    fill(x)
    return x


def test_every_ornament_stays_in_its_stated_range_and_reads_what_it_says():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    grey = _images(lambda x: x.__setitem__(..., 128))
    red = _images(lambda x: x.__setitem__((..., 0), 255))
    blue = _images(lambda x: x.__setitem__((..., 2), 255))
    half = _images(lambda x: x.__setitem__((slice(None), slice(None), slice(0, 8)), 255))  # left half white
    stripes = _images(lambda x: x.__setitem__((slice(None), slice(None), slice(0, None, 2)), 255))
    values = {n: ornaments.compute(x) for n, x in
              [("noise", noise), ("grey", grey), ("red", red), ("blue", blue), ("half", half), ("stripes", stripes)]}
    for v in values.values():
        for o in ornaments.registry():
            assert o.low <= v[o.key] <= o.high, (o.name, v[o.key])
    k = {o.name: o.key for o in ornaments.registry()}
    assert values["red"][k["saturation"]] == 1.0 and values["grey"][k["saturation"]] == 0.0
    assert values["half"][k["contrast"]] == pytest.approx(0.5) and values["grey"][k["contrast"]] == 0.0
    assert values["stripes"][k["edges"]] > values["half"][k["edges"]] > values["grey"][k["edges"]] == 0.0
    assert values["grey"][k["symmetry"]] == 1.0 and values["half"][k["symmetry"]] == 0.0
    assert values["red"][k["hue"]] == pytest.approx(0.0) and values["blue"][k["hue"]] == pytest.approx(240.0)
    assert values["stripes"][k["detail"]] > 0.9 and values["half"][k["detail"]] < 0.5
    with pytest.raises(ValueError, match="shaped"):
        ornaments.compute(np.zeros((16, 16, 3), np.uint8))


def test_the_run_records_each_ornaments_range():
    rec = ornaments.record()
    assert list(rec["ornaments"]) == list(runaway.ORNAMENTS)
    assert rec["ornaments"]["hue"]["circular"] and rec["ornaments"]["contrast"]["range"] == [0.0, 0.5]


# ---- the mate genes ----------------------------------------------------------------------

def test_genomes_saved_before_mate_genes_load_and_keep_their_hash():
    old = Genome().to_dict()
    assert "mate" not in old                     # written as before: the default says nothing
    g = Genome.from_dict(old)
    assert g.mate == MateGenes() and not g.mate.active
    assert g.content_hash() == "92f95c73e078"  # Genome().content_hash() before the genes existed
    chooser = g.replace(mate=MateGenes(saturation=0.5, choosiness=2.0))
    assert chooser.content_hash() != g.content_hash()
    assert Genome.from_json(chooser.to_json()) == chooser
    bad = chooser.to_dict()
    bad["mate"]["choosiness"] = 9
    with pytest.raises(GenomeError, match=r"genome\.mate\.choosiness: 9.0 is outside \[0, 4\]"):
        Genome.from_dict(bad)


def test_mate_genes_are_crossed_and_mutated_only_once_drawn():
    rng = random.Random(3)
    assert variation.mutate_mate(MateGenes(), rng) == MateGenes()          # a run without mate choice
    a, b = variation.random_mate(rng), variation.random_mate(rng)
    assert a.active and b.active
    child = variation.cross_mate(a, b, rng)
    for k in (*runaway.ORNAMENTS, "choosiness"):                           # a blend, between the parents
        lo, hi = sorted((getattr(a, k), getattr(b, k)))
        assert lo - 1e-9 <= getattr(child, k) <= hi + 1e-9
    mutants = [variation.mutate_mate(a, random.Random(i), 1.0) for i in range(50)]
    assert sum(m != a for m in mutants) > 25                               # most change a little
    assert all(-1 <= getattr(m, k) <= 1 for m in mutants for k in runaway.ORNAMENTS)
    # the whole genome: crossover and mutation keep the mate genes for the GA to vary
    g = variation.random_genome(random.Random(1), 16).replace(mate=a)
    assert variation.mutate(g, random.Random(2))[0].mate == a
    assert variation.crossover(g, variation.random_genome(random.Random(5), 16), random.Random(2))[0].mate == a


def test_a_run_without_mate_choice_draws_no_mate_genes():
    cfg = EvolveConfig(population=6, seed=4, resolution=16, schedule="plus").validate()
    tb = ga.make_toolbox(cfg, SerialExecutor(None))
    population = ga.initial_members(tb, cfg, random.Random(4))
    assert all(not m.genome.mate.active for m in population)
    chosen = EvolveConfig(population=6, seed=4, resolution=16, mate_choice="runaway", schedule="plus").validate()
    drawn = ga.initial_members(tb, chosen, random.Random(4))
    assert all(m.genome.mate.active for m in drawn)
    # the same genomes otherwise: the mate genes come from a stream of their own
    assert [m.genome.replace(mate=MateGenes()) for m in drawn] == [m.genome for m in population]


def test_a_chooser_picks_the_candidate_its_taste_matches_and_choosiness_sharpens_it():
    z = [{k: 0.0 for k in runaway.ORNAMENTS} for _ in range(4)]
    for i, v in enumerate((-1.5, -0.5, 0.5, 1.5)):
        z[i][NAMED] = v
    likes_more = MateGenes(saturation=0.8, choosiness=3.0)
    likes_less = MateGenes(saturation=-0.8, choosiness=3.0)
    indifferent = MateGenes(saturation=0.8, choosiness=0.0)
    assert max(range(4), key=runaway.choice_weights(likes_more, z).__getitem__) == 3
    assert max(range(4), key=runaway.choice_weights(likes_less, z).__getitem__) == 0
    assert runaway.choice_weights(indifferent, z) == pytest.approx([0.25] * 4)
    mild = runaway.choice_weights(MateGenes(saturation=0.8, choosiness=1.0), z)
    assert runaway.choice_weights(likes_more, z)[3] > mild[3] > 0.25


def test_a_circular_ornament_is_measured_around_the_wheel():
    scale = runaway.scale_of([{**{k: 0.5 for k in runaway.ORNAMENTS}, "hue": h} for h in (350.0, 10.0)])
    assert scale.center["hue"] == pytest.approx(0.0, abs=1e-6) or scale.center["hue"] == pytest.approx(360.0)
    assert runaway.deviation("hue", 350.0, scale.center["hue"]) == pytest.approx(-10.0)
    assert scale.spread["hue"] < 15


def test_config_refuses_mate_choice_where_nothing_mates():
    with pytest.raises(ConfigError, match="schedule halving breeds none"):
        EvolveConfig(mate_choice="runaway", schedule="halving").validate()
    with pytest.raises(ConfigError, match="crossover_rate 0 makes none"):
        EvolveConfig(mate_choice="runaway", crossover_rate=0.0, schedule="plus").validate()
    with pytest.raises(ConfigError, match="runaway_strength must be a number from 0"):
        EvolveConfig(runaway_strength=1.5).validate()
    with pytest.raises(ConfigError, match="mate_choice must be random or runaway"):
        EvolveConfig(mate_choice="peacock").validate()
    # attractiveness in survival works with every schedule
    EvolveConfig(mate_choice="runaway", schedule="halving", runaway_strength=0.5).validate()


# ---- the GA with a synthetic ornament ----------------------------------------------------

def synthetic(genome: Genome) -> float:
    """The named ornament as a number of the genome: the learning rates' mean log10,
    mapped from [1e-5, 1e-2] onto [0, 1]."""
    t = genome.training
    return (math.log10(t.lr_g) + math.log10(t.lr_d) + 10) / 6


def _score(m: ga.Member, seed: int, generation: int) -> None:
    """Neutral objectives, drawn anew each generation (as realism is re-judged); the other
    ornaments level, so that mate choice sees only the named one."""
    r = random.Random(derive_seed(seed, m.id, generation, "objectives"))
    m.status = "ok"
    m.metrics = {"realism": r.random(), "perceptual": 1 + 10 * r.random(), "coverage": r.random()}
    m.metrics.update({o.key: 0.5 if not o.circular else 0.0 for o in ornaments.registry()})
    m.metrics[ornaments.get(NAMED).key] = synthetic(m.genome)
    m.metrics["score"] = ga.display_score(m.metrics, FLOORS)
    m.fitness.values = tuple(m.objectives()[k] for k in ga.OBJECTIVES)


def breed(seed: int, mate_choice: str, *, taste: float, generations: int = 20, population: int = 64,
          crossover_rate: float = 0.6, **settings) -> list[dict]:
    """``generations`` generations bred through the GA as ``ga.evolve`` breeds them (the
    schedule's plan, ``make_children``, ``survivors``), without training, from one
    generation 0 (the same for both mate choices: its tastes scatter around ``taste`` for
    the named ornament); returns ``runaway.generation_stats`` of every population."""
    cfg = EvolveConfig(population=population, seed=seed, resolution=16, mate_choice=mate_choice, schedule="plus",
                       crossover_rate=crossover_rate, **settings).validate()
    tb = ga.make_toolbox(cfg, SerialExecutor(None))
    rng, deap_rng = random.Random(seed), random.Random(seed)
    first = replace(cfg, mate_choice="runaway")
    members = ga.initial_members(tb, first, rng)
    taste_rng = random.Random(seed)
    for m in members:
        m.genome = m.genome.replace(mate=variation.repair_mate(
            replace(m.genome.mate, **{NAMED: taste + taste_rng.gauss(0, 0.35)})))
        _score(m, seed, 0)
    history = []

    def record():
        history.append(runaway.generation_stats([(m.genome.mate, ornaments.of(m.metrics)) for m in members]))

    with ga.deap_random(deap_rng):
        members = ga.next_population(tb, [], members, cfg, FLOORS, None)
    record()
    for gen in range(1, generations + 1):
        plan = schedule.plan(cfg, gen, len(members))
        children = ga.make_children(tb, gen, members, cfg, rng, plan)
        for m in members + children:
            _score(m, seed, gen)
        with ga.deap_random(deap_rng):
            members = ga.next_population(tb, members, children, cfg, FLOORS, plan)
        record()
    return history


def _tail(history: list[dict]) -> list[float]:
    return [h["ornaments"][NAMED]["mean"] for h in history]


def _blocks(values: list[float]) -> list[float]:
    """Generation 0, then the means of generations 1-5, 6-10, 11-15 and 16-20."""
    return [values[0]] + [statistics.mean(values[i:i + 5]) for i in (1, 6, 11, 16)]


SEEDS_AND_TASTES = [(0, 0.6), (1, -0.6), (2, 0.6)]


@pytest.fixture(scope="module")
def bred():
    return {(seed, choice): breed(seed, choice, taste=taste)
            for seed, taste in SEEDS_AND_TASTES for choice in ("runaway", "random")}


@pytest.mark.slow  # make test-fast's slowest on a slower 2-core machine (2026-12-02)
@pytest.mark.parametrize("seed,taste", SEEDS_AND_TASTES)
def test_the_ornament_runs_away_in_the_direction_of_the_mean_preference(bred, seed, taste):
    """3 seeds x 20 generations: under runaway the named ornament's mean moves monotonically
    (five-generation means, from generation 0 on), the way the population's mean preference
    points, and further than under random mate choice from the same generation 0."""
    chosen, control = bred[(seed, "runaway")], bred[(seed, "random")]
    preference = statistics.mean(h["ornaments"][NAMED]["preference"] for h in chosen)
    assert math.copysign(1, preference) == math.copysign(1, taste)
    way = math.copysign(1, preference)
    blocks = _blocks(_tail(chosen))
    assert all(way * (b - a) > 0 for a, b in zip(blocks, blocks[1:])), blocks
    moved = _tail(chosen)[-1] - _tail(chosen)[0]
    drift = _tail(control)[-1] - _tail(control)[0]
    assert way * moved > 0 and abs(moved) > abs(drift), (moved, drift)


# ---- no collapse -------------------------------------------------------------------------

def test_preferences_stay_apart_under_the_default_mutation_and_collapse_without_it():
    """Crossover blends the tastes (pulling them together) and mutation spreads them: with
    the default crossover rate (0.3: most children mutate) the spread stays above
    ``PREFERENCE_FLOOR`` for 20 generations; with every child a crossover (nothing mutates)
    it collapses below it."""
    floor = runaway.PREFERENCE_FLOOR
    for seed in (0, 1):
        kept = breed(seed, "runaway", taste=0.6, crossover_rate=0.3, population=24)
        assert min(h["preference_spread"] for h in kept) > floor, [h["preference_spread"] for h in kept]
    collapsed = breed(0, "runaway", taste=0.6, crossover_rate=1.0, population=24)
    assert collapsed[0]["preference_spread"] > floor
    assert collapsed[-1]["preference_spread"] < floor / 2


def test_runaway_strength_gives_places_to_the_most_attractive():
    """Eight individuals, the more saturated the worse on every objective, and a
    population that likes saturation: the objectives keep the four least saturated; at
    strength 0.5 every second place goes to the most attractive (the first stays the
    objectives'), so the two most saturated take two of the four places."""
    pool = []
    for i in range(8):
        m = ga.new_member(id=f"g001-i{i:02d}", genome=Genome(mate=MateGenes(saturation=1.0, choosiness=2.0)),
                          parents=[], born=1, seed=i, origin="random", inheritance=None)
        m.status = "ok"
        m.metrics = {"realism": 0.5 - i / 20, "perceptual": 2.0 + i, "coverage": 0.8 - i / 20,
                     **{o.key: 0.5 if not o.circular else 0.0 for o in ornaments.registry()}}
        m.metrics[ornaments.get(NAMED).key] = i / 10
        m.metrics["score"] = ga.display_score(m.metrics, FLOORS)
        m.fitness.values = tuple(m.objectives()[k] for k in ga.OBJECTIVES)
        pool.append(m)
    for selection in ("nsga2", "weighted"):
        plain = EvolveConfig(population=4, mate_choice="runaway", selection=selection, schedule="plus").validate()
        half = EvolveConfig(population=4, mate_choice="runaway", selection=selection, schedule="plus",
                            runaway_strength=0.5).validate()
        tb = ga.make_toolbox(plain, SerialExecutor(None))
        with ga.deap_random(random.Random(0)):
            kept = [m.id for m in ga.select_and_rank(tb, pool, plain, FLOORS)]
            shifted = [m.id for m in ga.select_and_rank(tb, pool, half, FLOORS)]
        assert sorted(kept) == [f"g001-i{i:02d}" for i in range(4)], selection
        assert shifted == ["g001-i00", "g001-i07", "g001-i01", "g001-i06"], selection


@pytest.mark.parametrize("kind", schedule.SCHEDULES)
def test_mate_choice_and_attractiveness_work_under_every_schedule(kind):
    """plus and comma breed: the chosen mates lean the way the taste points (random mates
    do not). pbt and halving continue or copy the best by rank: with --runaway-strength
    0.5 every second rank goes to the most attractive, so the most saturated of the
    population (which likes saturation) keeps training."""
    settings = {"schedule": kind, "population": 24, "seed": 5, "resolution": 16, "crossover_rate": 0.6}
    if kind == "comma":
        settings["children"] = 48
    if kind in ("pbt", "halving"):
        settings["runaway_strength"] = 0.5
    cfg = EvolveConfig(mate_choice="runaway", **settings).validate()
    tb = ga.make_toolbox(cfg, SerialExecutor(None))
    rng = random.Random(5)
    members = ga.initial_members(tb, cfg, rng)
    for m in members:
        m.genome = m.genome.replace(mate=replace(m.genome.mate, **{NAMED: 0.8}))
        _score(m, 5, 0)
    with ga.deap_random(random.Random(5)):
        members = ga.next_population(tb, [], members, cfg, FLOORS, None)
    zs = ga._ornament_z(members)
    plan = schedule.plan(cfg, 1, len(members))
    if kind in ("plus", "comma"):
        lean = {}
        for choice in ("runaway", "random"):
            children = ga.make_children(tb, 1, members, replace(cfg, mate_choice=choice), random.Random(7), plan)
            mates = [zs[c.parents[1]][NAMED] for c in children if c.origin == "crossover"]
            assert len(mates) > 5
            lean[choice] = statistics.mean(mates)
        assert lean["runaway"] > 0.4 and lean["runaway"] > lean["random"] + 0.3, lean
    else:
        children = ga.make_children(tb, 1, members, cfg, random.Random(7), plan)
        most = max(members, key=lambda m: m.metrics[ornaments.get(NAMED).key])
        assert members[0].front == 0                                  # the first place: the objectives'
        assert members[1].id == most.id                               # the second: the most attractive
        assert most.id in {c.parents[0] for c in children}, "the most attractive keeps training"


# ---- a tiny real run ---------------------------------------------------------------------

@pytest.mark.slow
def test_a_tiny_runaway_run_stores_ornaments_and_its_gallery_plots_them(tmp_path):
    out = tmp_path / "g"
    proc = evoart("evolve", *TINY, "--generations", "2", "--workers", "1", "--mate-choice", "runaway",
                  "--crossover-rate", "0.75", "--out", str(out))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    run = only_run(out)
    db = ledger(run)
    ok = [r["id"] for r in db.execute("SELECT id FROM individual WHERE status = 'ok'")]
    assert ok
    for ind in ok:
        names = {r[0] for r in db.execute("SELECT metric FROM score WHERE individual = ?", (ind,))}
        assert set(ornaments.keys()) <= names, ind
    genomes = [json.loads(r[0]) for r in db.execute("SELECT genome FROM individual")]
    assert all(Genome.from_dict(g).mate.active for g in genomes)
    chose = [json.loads(r[0]) for r in db.execute("SELECT parents FROM individual WHERE origin = 'crossover'")]
    assert chose, "a crossover child"
    record = json.loads(db.execute("SELECT config FROM run").fetchone()[0])
    assert record["evolve"]["mate_choice"] == "runaway" and record["ornaments"]["version"] >= 1
    page = (run / "index.html").read_text()
    assert "the peacock&#39;s tail" in page or "the peacock's tail" in page
    for title in ("mean preference for each ornament", "correlation of preference and ornament",
                  "spread of the preferences", "saturation (0–1)", "hue (0–360°, circular)"):
        assert title in page, title
    # resuming keeps mate choice: the run is extended by one generation under the same settings
    proc = evoart("evolve", "--resume", str(run), "--generations", "3")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    record = json.loads(ledger(run).execute("SELECT config FROM run").fetchone()[0])
    assert record["evolve"]["mate_choice"] == "runaway"
    proc = evoart("evolve", "--resume", str(run), "--generations", "4", "--mate-choice", "random")
    assert proc.returncode != 0 and "cannot change when resuming" in proc.stderr + proc.stdout


def test_the_command_line_refuses_mate_choice_that_cannot_act_with_a_message():
    from click.testing import CliRunner

    from evoart.cli import main

    res = CliRunner().invoke(main, ["evolve", "--mate-choice", "runaway", "--schedule", "halving", "--dry-run"])
    assert res.exit_code != 0 and "schedule halving breeds none" in res.output
    assert "Traceback" not in res.output
    res = CliRunner().invoke(main, ["evolve", "--mate-choice", "runaway", "--runaway-strength", "0.25",
                                    "--crossover-rate", "0.6", "--dry-run"])
    assert res.exit_code == 0, res.output
    cfg = json.loads(res.output)
    assert (cfg["mate_choice"], cfg["runaway_strength"], cfg["crossover_rate"]) == ("runaway", 0.25, 0.6)
