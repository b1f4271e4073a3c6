"""Compute into depth ([engine] items 1-2): the schedules that decide who trains how long,
and --budget-steps, the run's total training steps as a first-class number."""

from __future__ import annotations

import json

import pytest

from e2e import evoart, ledger, only_run, snapshot
from evoart.config import ConfigError, EvolveConfig
from evoart.schedule import plan, planned_steps

TINY = ["--resolution", "16", "--samples", "16", "--population", "4"]


def summaries(run) -> list[dict]:
    with ledger(run) as c:
        return [json.loads(s)["summary"] for (s,) in c.execute("SELECT end_state FROM generation ORDER BY generation")]


def individuals(run) -> dict[str, tuple]:
    with ledger(run) as c:
        return {r["id"]: (r["origin"], json.loads(r["parents"]), json.loads(r["stats"])["steps"],
                          json.loads(r["stats"])["lineage_steps"], r["genome_hash"])
                for r in c.execute("SELECT * FROM individual")}


# ---- plans -------------------------------------------------------------------------------

def test_every_schedule_spends_the_same_steps_a_generation():
    for kind in ("plus", "comma", "pbt", "halving"):
        cfg = EvolveConfig(population=8, generations=6, steps=120, schedule=kind)
        assert planned_steps(cfg) == 5760, kind
    halving = [plan(EvolveConfig(population=8, steps=120, schedule="halving"), g, 8) for g in (1, 2, 3)]
    assert [len(p.continuations) for p in halving] == [4, 2, 1]
    assert [p.continuation_steps for p in halving] == [240, 480, 960]


def test_budget_steps_sets_the_generations_or_the_steps_and_refuses_a_contradiction():
    assert EvolveConfig.from_dict({"budget_steps": 5760}).generations == 6        # 8 x 120 a generation
    c = EvolveConfig.from_dict({"budget_steps": 1920, "generations": 4, "population": 6})
    assert (c.steps, c.generations) == (80, 4)
    c = EvolveConfig.from_dict({"budget_steps": 3000, "steps": 100, "population": 6})
    assert c.generations == 5 and c.steps == 100 and c.budget_steps == 3000
    with pytest.raises(ConfigError, match="contradicts"):
        EvolveConfig.from_dict({"budget_steps": 1000, "steps": 100, "generations": 6})
    with pytest.raises(ConfigError, match="less than one step"):
        EvolveConfig.from_dict({"budget_steps": 3, "generations": 6})


def test_schedules_that_continue_training_refuse_what_they_cannot_do():
    with pytest.raises(ConfigError, match="needs inheritance"):
        EvolveConfig.from_dict({"schedule": "halving", "inherit": False})
    with pytest.raises(ConfigError, match="children must equal population"):
        EvolveConfig.from_dict({"schedule": "pbt", "children": 3, "population": 4})
    with pytest.raises(ConfigError, match="at least population"):
        EvolveConfig.from_dict({"schedule": "comma", "children": 3, "population": 4})


# ---- tiny runs ---------------------------------------------------------------------------

@pytest.mark.slow
def test_halving_puts_most_of_the_run_into_the_best_lineage(tmp_path):
    out = tmp_path / "h"
    proc = evoart("evolve", *TINY, "--schedule", "halving", "--budget-steps", "96", "--generations", "3",
                  "--out", str(out))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    run = only_run(out)
    inds = individuals(run)
    assert sorted(i for i in inds if i.startswith("g001")) == ["g001-i00", "g001-i01"]
    assert list(i for i in inds if i.startswith("g002")) == ["g002-i00"]
    origin, parents, steps, lineage, genome = inds["g002-i00"]
    assert origin == "continuation" and steps == 32                     # 4 x 8, then 2 x 16, then 1 x 32
    assert genome == inds[parents[0]][4]                                 # the same genome, trained on
    assert lineage == 8 + 16 + 32
    s = summaries(run)
    assert [x["total_steps"] for x in s] == [32, 64, 96]
    assert s[-1]["best_lineage_share"] == pytest.approx(56 / 96, abs=1e-3)
    assert "56 of them (58%)" in " ".join(proc.stdout.split())          # the summary says so


@pytest.mark.slow
def test_pbt_keeps_the_better_half_and_explores_copies_of_it(tmp_path):
    out = tmp_path / "p"
    proc = evoart("evolve", *TINY, "--steps", "6", "--generations", "2", "--schedule", "pbt", "--out", str(out))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    run = only_run(out)
    inds = individuals(run)
    g1 = {k: v for k, v in inds.items() if k.startswith("g001")}
    assert sorted(v[0] for v in g1.values()) == ["continuation", "continuation", "exploit", "exploit"]
    with ledger(run) as c:
        ranked0 = [r[0] for r in c.execute("SELECT individual FROM member WHERE generation = 0 ORDER BY rank")]
        population1 = {r[0] for r in c.execute("SELECT individual FROM member WHERE generation = 1")}
    assert {v[1][0] for v in g1.values()} == set(ranked0[:2])           # the better half's descendants
    assert population1 == set(g1)                                        # and they replace the population
    for origin, parents, steps, lineage, _ in g1.values():
        assert lineage == 12                                            # every weight kept: 6 + 6


@pytest.mark.slow
def test_resume_with_budget_steps_extends_a_run_to_that_total(tmp_path):
    out = tmp_path / "r"
    proc = evoart("evolve", *TINY, "--steps", "4", "--generations", "2", "--seed", "3", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    run = only_run(out)
    bad = evoart("evolve", "--resume", str(run), "--budget-steps", "50")
    assert bad.returncode != 0 and "multiple of 16" in bad.stderr + bad.stdout and "Traceback" not in bad.stderr
    proc = evoart("evolve", "--resume", str(run), "--budget-steps", "48")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert [s["total_steps"] for s in summaries(run)] == [16, 32, 48]
    straight = tmp_path / "s"
    proc = evoart("evolve", *TINY, "--steps", "4", "--generations", "3", "--seed", "3", "--out", str(straight))
    assert proc.returncode == 0, proc.stderr
    a, b = snapshot(run), snapshot(only_run(straight))
    assert a["individuals"] == b["individuals"] and a["scores"] == b["scores"]


# ---- halving is the default ------------------------------------------------------------------

@pytest.mark.slow  # one of make test-fast's slowest (12-25 s here)
def test_the_default_schedule_is_halving_and_breeding_runs_fall_back_to_plus():
    assert EvolveConfig().validate().schedule == "halving"
    # --children is generation 0's breadth under halving: 12 genomes, then 6, 3, 2, 1 continued
    wide = EvolveConfig(population=8, children=12, generations=5).validate()
    assert [plan(wide, g, 8).size for g in range(1, 5)] == [6, 3, 2, 1]
    plain = json.loads(evoart("evolve", "--dry-run").stdout)
    assert plain["schedule"] == "halving"
    # halving breeds nothing: --no-inherit and --interactive runs breed as mu + lambda unless told
    fresh = json.loads(evoart("evolve", "--no-inherit", "--dry-run").stdout)
    assert fresh["schedule"] == "plus" and fresh["inherit"] is False
    mating = json.loads(evoart("evolve", "--mate-choice", "runaway", "--dry-run").stdout)
    assert mating["schedule"] == "plus"
    told = evoart("evolve", "--no-inherit", "--schedule", "halving", "--dry-run")
    assert told.returncode == 2 and "choose --schedule plus or comma" in told.stderr
    picking = json.loads(evoart("evolve", "--interactive", "--dry-run").stdout)
    assert picking["schedule"] == "plus"
    # the rule is the configuration's: a Python caller or a config file (either spelling) gets it too
    assert EvolveConfig.from_dict({"inherit": False}).schedule == "plus"
    assert EvolveConfig.from_dict({"mate-choice": "runaway"}).schedule == "plus"
    with pytest.raises(ConfigError, match="needs inheritance"):
        EvolveConfig(inherit=False, schedule="halving").validate()


def test_a_run_recorded_before_schedules_resumes_and_scores_as_mu_plus_lambda():
    from evoart.config import recorded_evolve

    old = EvolveConfig(inherit=False).validate().to_dict()
    del old["schedule"]  # what a run recorded before --schedule holds
    cfg = EvolveConfig.from_dict(recorded_evolve({"evolve": old, "splits": {}}), source="run old")
    assert cfg.schedule == "plus" and cfg.inherit is False  # not today's default, which would refuse it
