"""Selection as the GA relies on it: objectives point the right way (E-GAN's two official
versions disagree on the sign of their diversity term; evoart tests its own), NSGA-II and
the weighted sum rank as documented, the display score is absolute and bounded, a mated
child inherits each part from the parent it came from (the discriminator from one), and a
whole run in this process is reproducible."""

from __future__ import annotations

import random

import pytest
import torch

from genomes import squares

from evoart import config, ga, metrics, variation
from evoart.config import EvolveConfig
from evoart.executors import SerialExecutor
from evoart.fitness import EvalContext, EvalTask, WORST, evaluate, make_latents, protocol_floors
from evoart.train import train_briefly

FLOORS = {"perceptual": {"mean": 1.0, "std": 0.5, "n": 64, "repeats": 5},
          "coverage": {"mean": 0.8, "std": 0.05, "n": 64, "repeats": 5}}


def member(i: int, realism: float, perceptual: float, coverage: float) -> ga.Member:
    m = ga.new_member(id=f"g001-i{i:02d}", genome=variation.random_genome(random.Random(i), 16),
                      parents=[], born=1, seed=i, origin="random", inheritance=None)
    m.status = "ok"
    m.metrics = {"realism": realism, "perceptual": perceptual, "coverage": coverage}
    m.metrics["score"] = ga.display_score(m.metrics, FLOORS)
    m.fitness.values = tuple(m.objectives()[k] for k in ga.OBJECTIVES)
    return m


def test_each_objective_counts_the_way_its_metric_points():
    """Better in one objective and level in the others dominates: more realism (the share of
    pairs the other discriminators took for real), and perceptual and coverage the way the
    metric registry says each metric improves."""
    level = (0.3, 6.0, 0.4)
    base = member(0, *level)
    for i, name in enumerate(ga.OBJECTIVES):
        direction = "higher" if name == "realism" else metrics.get_metric_info(name).direction
        better = list(level)
        better[i] = level[i] * 1.5 if direction == "higher" else level[i] / 1.5
        m = member(1, *better)
        assert m.fitness.dominates(base.fitness) and not base.fitness.dominates(m.fitness), name


def test_a_failed_individual_is_never_better_than_a_scored_one():
    failed = member(9, WORST["realism"], WORST["perceptual"], WORST["coverage"])
    for values in [(0.0, 50.0, 0.0), (0.05, 12.0, 0.0), (0.3, 6.0, 0.4), (0.5, 1.0, 0.8)]:
        scored = member(1, *values)
        assert scored.fitness.dominates(failed.fitness), values
        assert scored.metrics["score"] > failed.metrics["score"], values


def test_display_score_is_absolute_bounded_and_monotone():
    real_like = {"realism": 0.5, "perceptual": 1.0, "coverage": 0.8}
    assert ga.display_score(real_like, FLOORS) == 100.0
    assert ga.display_score(WORST, FLOORS) < 1.0
    base = {"realism": 0.2, "perceptual": 8.0, "coverage": 0.3}
    s = ga.display_score(base, FLOORS)
    assert 0 < s < 100
    assert ga.display_score({**base, "realism": 0.3}, FLOORS) > s
    assert ga.display_score({**base, "perceptual": 6.0}, FLOORS) > s
    assert ga.display_score({**base, "coverage": 0.4}, FLOORS) > s
    # perceptual: full marks at its real-vs-real floor, half marks about 6 spreads above it
    assert ga.utilities({"perceptual": 1.0}, FLOORS)["perceptual"] == 1.0
    assert ga.utilities({"perceptual": 1.0 + 6.0}, FLOORS)["perceptual"] == pytest.approx(0.5)


def test_nsga2_puts_the_dominating_individual_first_and_a_collapsed_twin_behind():
    best = member(0, 0.45, 3.0, 0.6)
    twin = member(1, 0.30, 6.0, 0.4)
    collapsed = member(2, 0.30, 6.0, 0.02)  # the twin's numbers, but no coverage
    noisy = member(3, 0.05, 12.0, 0.0)
    cfg = EvolveConfig(population=3).validate()
    tb = ga.make_toolbox(cfg, SerialExecutor(None))
    ranked = ga.select_and_rank(tb, [noisy, collapsed, twin, best], cfg, FLOORS)
    assert [m.id for m in ranked] == [best.id, twin.id, collapsed.id]
    assert ranked[0].front == 0 and collapsed.front > twin.front


def test_weighted_selection_ranks_by_the_weighted_utilities():
    a = member(0, 0.50, 12.0, 0.1)   # fools the judges, far from the data
    b = member(1, 0.10, 2.0, 0.7)    # close to the data, judged fake
    cfg_r = EvolveConfig(population=2, selection="weighted", weights="realism=1").validate()
    cfg_p = EvolveConfig(population=2, selection="weighted", weights={"perceptual": 1, "coverage": 1}).validate()
    tb = ga.make_toolbox(cfg_r, SerialExecutor(None))
    assert [m.id for m in ga.select_and_rank(tb, [b, a], cfg_r, FLOORS)] == [a.id, b.id]
    assert [m.id for m in ga.select_and_rank(tb, [a, b], cfg_p, FLOORS)] == [b.id, a.id]
    assert a.front in (0, 1) and b.front == 0  # the rank, for the parents' tournament


# ---- inheritance under crossover (a run's children, trained for 0 steps) ------------------




@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> EvalContext:
    c = EvalContext(train_images=squares(192, 1), holdout_images=squares(64, 2),
                    latents=make_latents(16, seed=3), noise_seed=4, metric_seed=5)
    c.floors = protocol_floors(c, repeats=3, cache_dir=str(tmp_path_factory.mktemp("cache")))
    return c


def test_a_mated_child_inherits_each_block_from_its_parent_and_the_d_from_one(ctx):
    rng = random.Random(4)
    parents = []
    for i in range(2):
        genome = variation.random_genome(rng, 16)
        m = ga.new_member(id=f"g000-i{i:02d}", genome=genome, parents=[], born=0, seed=i, origin="random",
                          inheritance=None)
        parents.append(m)
    states = {m.id: train_briefly(m.genome, ctx.train_images, steps=2, seed=m.seed).state for m in parents}
    cfg = EvolveConfig(population=2, children=6, crossover_rate=1.0, resolution=16, schedule="plus").validate()
    tb = ga.make_toolbox(cfg, SerialExecutor(ctx))
    children = ga.make_children(tb, 1, parents, cfg, random.Random(9))
    checked_d, checked_blocks = set(), set()
    for child in children:
        assert child.origin == "crossover" and len(child.parents) == 2
        inh = child.inheritance
        task = EvalTask(id=child.id, genome=child.genome.to_dict(), seed=child.seed, steps=0,
                        parents=[states[p] for p in child.parents], inheritance=inh.to_dict())
        ev = evaluate(task, ctx)
        assert ev.status == "ok", ev.reason
        got = ev.train_state
        # the discriminator: every tensor from the one parent named, whose D genes it has
        d_parent = child.parents[inh.discriminator]
        assert child.genome.discriminator == next(m for m in parents if m.id == d_parent).genome.discriminator
        for name, t in got["d"].items():
            assert torch.equal(t, states[d_parent]["d"][name]), name
        checked_d.add(inh.discriminator)
        # each generator block from the parent (and block) it came from, where shapes match
        for i, src in enumerate(inh.blocks):
            if src is None:
                continue
            p, j = src
            parent_g = states[child.parents[p]]["g"]
            for name, t in got["g"].items():
                if name.startswith(f"blocks.{i}."):
                    theirs = parent_g.get(f"blocks.{j}." + name.split(".", 2)[2])
                    if theirs is not None and theirs.shape == t.shape:
                        assert torch.equal(t, theirs), (child.id, name, src)
                        checked_blocks.add(p)
        stem_g = states[child.parents[inh.stem]]["g"]
        mine, theirs = got["g"]["stem.weight"], stem_g["stem.weight"]
        if mine.shape == theirs.shape:
            assert torch.equal(mine, theirs), child.id
        else:  # repair narrowed the stem to fit the compute cap: the morphism keeps whole parent channels
            assert mine.shape[1] == theirs.shape[1] and mine.shape[0] < theirs.shape[0]
            rows = {tuple(r.tolist()) for r in theirs}
            assert all(tuple(r.tolist()) in rows for r in mine), child.id
    # both parents gave blocks, and each gave the whole discriminator to some child
    assert checked_d == {0, 1} and checked_blocks == {0, 1}
    assert ev.stats["inherited"]["d"][0] == ev.stats["inherited"]["d"][1]


def test_without_inheritance_a_child_starts_fresh(ctx):
    genome = variation.random_genome(random.Random(5), 16)
    cfg = EvolveConfig(population=2, crossover_rate=1.0, resolution=16, inherit=False, schedule="plus").validate()
    parents = [ga.new_member(id=f"g000-i{i:02d}", genome=genome, parents=[], born=0, seed=i,
                             origin="random", inheritance=None) for i in range(2)]
    children = ga.make_children(ga.make_toolbox(cfg, SerialExecutor(ctx)), 1, parents, cfg, random.Random(1))
    assert all(c.inheritance is None for c in children)


# ---- a whole run in this process ----------------------------------------------------------


def run_once(ctx, **overrides):
    cfg = EvolveConfig(population=3, generations=2, steps=3, resolution=16, samples=16, holdout=64,
                       workers=1, seed=2, **overrides).validate()
    return ga.evolve(cfg, ctx, SerialExecutor(ctx))


@pytest.mark.slow  # two whole runs with their judging passes and critics: 18-27 s
@pytest.mark.parametrize("overrides", [{}, {"selection": "weighted", "weights": "realism=1,coverage=2"}])
def test_a_run_scores_every_member_and_is_reproducible(ctx, overrides, monkeypatch):
    import evoart.fitness

    def redraw(*args, **kwargs):
        raise AssertionError("the judging pass drew samples its workers had drawn already")

    # every individual is judged on the samples its worker drew (an AR model's take seconds)
    monkeypatch.setattr(evoart.fitness, "generate_samples", redraw)
    a = run_once(ctx, **overrides)
    b = run_once(ctx, **overrides)
    assert [(m.id, m.metrics) for m in a.population] == [(m.id, m.metrics) for m in b.population]
    for m in a.population:
        assert {"realism", "perceptual", "coverage", "score", "swd", "rkid", "color"} <= set(m.metrics)
        assert 0 <= m.metrics["score"] <= 100
    assert a.history[-1]["best_score"] == max(m.metrics["score"] for m in a.population)
    # the hall of fame is a Pareto front: nobody in it dominates another member of it
    for x in a.hall_of_fame:
        for y in a.hall_of_fame:
            assert x is y or not x.fitness.dominates(y.fitness)
    if overrides.get("selection") == "weighted":
        scores = [ga.display_score(m.metrics, ctx.floors, a_weights(overrides)) for m in a.population]
        assert scores == sorted(scores, reverse=True)


def a_weights(overrides):
    return config.parse_weights(overrides["weights"])
