"""The run ledger as a run and a gallery use it: a folder with a database and files that
are always complete, one writer at a time, readable generation by generation, prunable,
and found by name or path."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from evoart import store as S
from evoart.genome import Block, DiscriminatorGenes, Genome, GeneratorGenes, TrainingGenes, dcgan_genome
from evoart.store import DamagedFile, RunLocked, RunStore, StoreError, individual_dir, list_runs, new_run_dir, resolve_run
from evoart.train import train_briefly

CONFIG = {"population": 4, "generations": 3, "seed": 7, "data": "shapes"}
VERSIONS = {"evoart": "0.1.0", "torch": torch.__version__}
PNG = b"\x89PNG\r\n\x1a\n" + b"not really a png, but bytes are bytes"


@pytest.fixture(scope="module")
def trained():
    genome = Genome(
        generator=GeneratorGenes(latent=8, stem_channels=16, blocks=(Block(8), Block(8))),
        discriminator=DiscriminatorGenes("dcgan", 8, "spectral"),
        training=TrainingGenes(batch_size=16, ema=0.99),
    )
    return genome, train_briefly(genome, torch.rand(8, 3, 16, 16) * 2 - 1, steps=2, seed=0)


@pytest.fixture
def run(tmp_path):
    store = RunStore.create(tmp_path / "run", name="test-run", config=CONFIG, versions=VERSIONS)
    yield store
    store.close()


def child(ind_id: str, parents=(), genome: Genome | None = None, seed: int = 0) -> dict:
    genome = genome or dcgan_genome()
    return {"id": ind_id, "genome": genome.to_dict(), "genome_hash": genome.content_hash(),
            "parents": list(parents), "origin": "mutation" if parents else "random",
            "inheritance": {"blocks": [[0, 0]], "stem": 0, "discriminator": 0} if parents else None,
            "seed": seed}


def commit(store: RunStore, ind_id: str, trained_state=None, metrics=None, status="ok") -> None:
    gen_state = {"w": torch.arange(6.0).reshape(2, 3)}
    store.commit_evaluation(
        ind_id, status=status, reason="" if status == "ok" else "loss exploded",
        metrics=metrics if metrics is not None else {"swd": 1.5, "diversity": 0.25},
        stats={"steps": 10, "curves": {"d_loss": [1.0, 0.5]}}, timings={"train_s": 1.25},
        samples_png=PNG, generator_state=gen_state,
        train_state=trained_state if trained_state is not None else {"g": gen_state, "meta": {"lineage_steps": 10}},
    )


# ---- creating and opening ----------------------------------------------------------------


def test_create_and_open_round_trip(tmp_path):
    folder = tmp_path / "run"
    before = time.time()
    with RunStore.create(folder, name="my-run", config=CONFIG, versions=VERSIONS) as store:
        assert store.name == "my-run" and store.status == "running"
    with RunStore.open(folder) as again:
        assert again.name == "my-run"
        assert again.config == CONFIG and again.versions == VERSIONS
        assert before - 1 <= again.created <= time.time() + 1
        assert again.generations() == [] and again.last_finished_generation() is None
        assert again.individuals() == []
    assert json.loads((folder / "config.json").read_text()) == {"name": "my-run", "config": CONFIG, "versions": VERSIONS}
    assert (folder / "run.db").is_file()
    with pytest.raises(StoreError, match="already holds a run"):
        RunStore.create(folder, name="again", config={}, versions={})


def test_config_updates_and_status(run):
    run.update_config({**CONFIG, "generations": 10})
    run.set_status("finished")
    with S.opened(run.run_dir) as reader:  # a read-only reader, as the gallery uses
        assert reader.config["generations"] == 10 and reader.status == "finished"
    assert json.loads((run.run_dir / "config.json").read_text())["config"]["generations"] == 10


def test_open_refuses_what_is_not_a_run(tmp_path):
    with pytest.raises(StoreError, match="is not a run folder"):
        RunStore.open(tmp_path)
    (tmp_path / "run.db").write_bytes(b"this is not sqlite at all, just some text " * 100)
    with pytest.raises(S.DamagedLedger, match="is damaged .file is not a database."):
        RunStore.open(tmp_path)


def test_a_ledger_from_a_newer_evoart_is_refused(run):
    with run.conn:
        run.conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(S.SCHEMA_VERSION + 1),))
    for readonly in (False, True):
        with pytest.raises(StoreError, match=rf"newer evoart \(ledger schema {S.SCHEMA_VERSION + 1}, this one reads up to {S.SCHEMA_VERSION}\)"):
            RunStore.open(run.run_dir, readonly=readonly)


def empty_sqlite(path: Path) -> None:
    """An SQLite database without tables (a ledger of schema 0), not a zero-byte file:
    evoart refuses those rather than write a fresh ledger over a lost one."""
    with sqlite3.connect(path) as c:
        c.execute("PRAGMA user_version = 1")
    c.close()


def test_an_empty_v0_ledger_is_migrated(tmp_path):
    empty_sqlite(tmp_path / "run.db")
    with pytest.raises(StoreError, match="older ledger schema"):
        RunStore.open(tmp_path, readonly=True)
    with RunStore.open(tmp_path) as store:
        assert RunStore._schema_version(store.conn) == S.SCHEMA_VERSION
        tables = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"meta", "run", "individual", "score", "judge", "member", "generation", "favourite"} <= tables
        with pytest.raises(StoreError, match="holds no run record"):
            store.name  # noqa: B018 -- a ledger without its run row says so instead of crashing
    with RunStore.open(tmp_path, readonly=True) as store:  # opening again does not migrate twice
        assert RunStore._schema_version(store.conn) == S.SCHEMA_VERSION


def test_a_failed_migration_leaves_the_ledger_as_it_was(tmp_path, monkeypatch):
    empty_sqlite(tmp_path / "run.db")
    broken = "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); CREATE TABLE run (oops"
    monkeypatch.setattr(S.ledger, "MIGRATIONS", [broken])
    with pytest.raises(StoreError, match="cannot use the ledger"):  # SQLite's error, as the user's
        RunStore.open(tmp_path)
    monkeypatch.undo()
    with RunStore.open(tmp_path) as store:  # the half-done migration was rolled back: it runs again
        assert RunStore._schema_version(store.conn) == S.SCHEMA_VERSION


# ---- generations -------------------------------------------------------------------------


def test_a_generation_is_recorded_and_read_back(run):
    run.begin_generation(0, [child("g000-i00", seed=1), child("g000-i01", seed=2)], state={"rng": [1, 2, 3]})
    rows = run.individuals(born=0)
    assert [r.id for r in rows] == ["g000-i00", "g000-i01"]
    assert {r.status for r in rows} == {"pending"} and rows[0].stats is None
    assert Genome.from_dict(rows[0].genome) == dcgan_genome()
    assert rows[0].genome_hash == dcgan_genome().content_hash() and rows[1].seed == 2
    assert run.generations()[0]["begin_state"] == {"rng": [1, 2, 3]}
    assert run.generations()[0]["finished"] is None and run.last_finished_generation() is None

    commit(run, "g000-i00", metrics={"swd": 2.0, "diversity": 0.5})
    commit(run, "g000-i01", metrics={"swd": 9.0}, status="diverged")
    first = run.individual("g000-i00")
    assert first.status == "ok" and first.stats["curves"]["d_loss"] == [1.0, 0.5] and first.timings == {"train_s": 1.25}
    assert run.individual("g000-i01").status == "diverged" and run.individual("g000-i01").reason == "loss exploded"
    assert run.scores("g000-i00") == {"swd": 2.0, "diversity": 0.5}

    run.end_generation(
        0, members=[("g000-i01", 1), ("g000-i00", 0)],
        scores={"g000-i00": {"realism": 0.75}, "g000-i01": {"realism": 0.25}},
        judge=[("g000-i01", "g000-i00", 0.75), ("g000-i00", "g000-i01", 0.25)],
        state={"hall_of_fame": ["g000-i00"]}, contact_sheet_png=PNG,
    )
    assert run.members(0) == [("g000-i00", 0), ("g000-i01", 1)]
    assert run.judge_matrix(0) == [("g000-i00", "g000-i01", 0.25), ("g000-i01", "g000-i00", 0.75)]
    assert run.last_finished_generation() == 0
    gen = run.generations()[0]
    assert gen["end_state"] == {"hall_of_fame": ["g000-i00"]} and gen["finished"] >= gen["started"]
    assert (run.run_dir / "gen-000" / "contact.png").read_bytes() == PNG
    assert run.scores("g000-i00") == {"swd": 2.0, "diversity": 0.5, "realism": 0.75}

    # generation 1: the survivor is judged again against a new population
    run.begin_generation(1, [child("g001-i00", parents=["g000-i00"])], state={})
    assert run.last_finished_generation() == 0
    commit(run, "g001-i00", metrics={"swd": 1.0, "diversity": 0.4})
    run.end_generation(1, members=[("g000-i00", 0), ("g001-i00", 1)],
                       scores={"g000-i00": {"realism": 0.5, "swd": 2.5}, "g001-i00": {"realism": 0.6}},
                       judge=[], state={})
    assert run.scores("g000-i00") == {"swd": 2.5, "diversity": 0.5, "realism": 0.5}       # latest
    assert run.scores("g000-i00", generation=0) == {"swd": 2.0, "diversity": 0.5, "realism": 0.75}
    assert run.scores("g001-i00", generation=1) == {"swd": 1.0, "diversity": 0.4, "realism": 0.6}
    assert run.scores("g001-i00", generation=0) == {}
    assert run.judge_matrix(1) == [] and run.last_finished_generation() == 1
    assert [g["generation"] for g in run.generations()] == [0, 1]
    assert [r.id for r in run.individuals()] == ["g000-i00", "g000-i01", "g001-i00"]
    assert [r.id for r in run.individuals(ids=["g001-i00", "g000-i01"])] == ["g001-i00", "g000-i01"]
    assert run.individual("g001-i00").parents == ["g000-i00"]
    assert run.individual("g001-i00").inheritance == {"blocks": [[0, 0]], "stem": 0, "discriminator": 0}
    with pytest.raises(StoreError, match="no individual g009-i09 in run run"):
        run.individual("g009-i09")

    with RunStore.open(run.run_dir, readonly=True) as reader:  # everything is on disk
        assert reader.members(1) == run.members(1) and reader.scores("g000-i00") == run.scores("g000-i00")


def test_a_generation_cannot_begin_twice(run):
    run.begin_generation(0, [child("g000-i00")], state={})
    with pytest.raises((sqlite3.Error, StoreError)):
        run.begin_generation(0, [child("g000-i01")], state={})
    assert [r.id for r in run.individuals()] == ["g000-i00"]  # all or nothing


# ---- files -------------------------------------------------------------------------------


def test_an_evaluation_writes_complete_loadable_files(run, trained):
    genome, result = trained
    run.begin_generation(0, [child("g000-i03", genome=genome)], state={})
    gen_state = {k: v for k, v in result.generator.state_dict().items()}
    run.commit_evaluation("g000-i03", status="ok", metrics={"swd": 1.0}, stats=result.stats.to_dict(),
                          timings={}, samples_png=PNG, generator_state=gen_state, train_state=result.state)
    folder = run.run_dir / "gen-000" / "g000-i03"
    assert individual_dir(run.run_dir, "g000-i03") == folder
    assert sorted(p.name for p in folder.iterdir()) == ["generator.pt", "genome.json", "samples.png", "train_state.pt"]
    assert Genome.from_json((folder / "genome.json").read_text()) == genome
    assert (folder / "samples.png").read_bytes() == PNG == run.samples_path("g000-i03").read_bytes()

    loaded = torch.load(folder / "generator.pt", weights_only=True)
    assert loaded.keys() == gen_state.keys() and all(torch.equal(loaded[k], gen_state[k]) for k in loaded)
    state = torch.load(folder / "train_state.pt", weights_only=True)
    assert state["meta"] == result.state["meta"]
    for part in ("g", "d", "g_ema"):
        assert all(torch.equal(state[part][k], result.state[part][k]) for k in result.state[part])
    assert run.load_train_state("g000-i03")["opt_g"].keys() == result.state["opt_g"].keys()
    assert run.load_generator_state("g000-i03").keys() == gen_state.keys()
    assert not list(run.run_dir.rglob("*.tmp"))


def test_files_come_before_the_row(run, monkeypatch):
    """A run killed while writing never has an evaluated individual with missing files."""
    run.begin_generation(0, [child("g000-i00")], state={})

    def crash(path, obj):
        raise OSError("disk full")

    monkeypatch.setattr(S.ledger, "atomic_torch_save", crash)
    with pytest.raises(OSError, match="disk full"):
        commit(run, "g000-i00")
    assert run.individual("g000-i00").status == "pending"
    assert run.scores("g000-i00") == {}


def test_committing_an_unknown_individual_fails(run):
    with pytest.raises(StoreError, match="unknown individual g000-i05"):
        commit(run, "g000-i05")


def test_prune_removes_training_states_nothing_can_inherit(run):
    run.begin_generation(0, [child(f"g000-i0{i}") for i in range(4)], state={})
    for i in range(4):
        commit(run, f"g000-i0{i}")
    run.end_generation(0, members=[("g000-i00", 0), ("g000-i01", 1)], scores={}, judge=[], state={})
    run.begin_generation(1, [child("g001-i00", ["g000-i00"]), child("g001-i01", ["g000-i00", "g000-i01"])], state={})
    for i in range(2):
        commit(run, f"g001-i0{i}")
    run.end_generation(1, members=[("g000-i00", 0), ("g001-i00", 1)], scores={}, judge=[], state={})
    run.begin_generation(2, [child("g002-i00", ["g001-i00"])], state={})  # still running: not evaluated

    everyone = ["g000-i00", "g000-i01", "g000-i02", "g000-i03", "g001-i00", "g001-i01"]
    assert run.inheritable() == {"g000-i00", "g001-i00", "g002-i00"}
    sizes = {i: (individual_dir(run.run_dir, i) / "train_state.pt").stat().st_size for i in everyone}
    removed, freed = run.prune()
    gone = ["g000-i01", "g000-i02", "g000-i03", "g001-i01"]
    assert removed == 4 and freed == sum(sizes[i] for i in gone)
    for i in everyone:
        assert run.load_generator_state(i) is not None, i  # the pictures' weights stay
        assert (run.load_train_state(i) is None) == (i in gone), i
    assert run.prune() == (0, 0)


def test_judged_samples_are_kept_for_the_next_pool_only(run):
    """An individual's fixed-latent samples, as its worker drew them, come back bit for
    bit (a resumed run judges what an uninterrupted one judged); prune drops those no
    judging pass reads again; a damaged file is named."""
    rng = np.random.default_rng(0)
    drawn = {f"g000-i0{i}": rng.integers(0, 256, (12, 8, 8, 3), dtype=np.uint8) for i in range(3)}
    run.begin_generation(0, [child(i) for i in drawn], state={})
    for i, s in drawn.items():
        run.commit_evaluation(i, status="ok", metrics={}, stats={}, timings={}, samples_png=None,
                              generator_state={"w": torch.zeros(1)}, train_state=None, samples=s)
    for i, s in drawn.items():
        back = run.load_samples(i)
        assert back.dtype == np.uint8 and np.array_equal(back, s), i
    run.end_generation(0, members=[("g000-i00", 0), ("g000-i02", 1)], scores={}, judge=[], state={})
    run.prune()
    assert run.load_samples("g000-i01") is None and run.load_samples("g000-i00") is not None
    (individual_dir(run.run_dir, "g000-i02") / "samples.npy").write_bytes(b"not an array")
    with pytest.raises(DamagedFile, match="samples.npy"):
        run.load_samples("g000-i02")


def test_prune_keeps_the_discriminators_the_judge_panel_still_needs(run):
    """Every trained D is kept apart from the training state (``--no-inherit`` runs judge
    too); prune keeps those of the next pool and of the remembered judges."""
    d_state = {"head.weight": torch.ones(1, 4)}
    run.begin_generation(0, [child(f"g000-i0{i}") for i in range(4)], state={})
    for i in range(4):
        run.commit_evaluation(f"g000-i0{i}", status="ok", metrics={}, stats={}, timings={}, samples_png=None,
                              generator_state={"w": torch.zeros(1)}, train_state=None,
                              discriminator_state=d_state)
    run.end_generation(0, members=[("g000-i00", 0), ("g000-i01", 1)], scores={},
                       judge=[("g000-i01", "g000-i00", 0.5, "peer"), ("critic-g000", "g000-i00", 0.25, "critic")],
                       state={"panel": ["g000-i02"]})
    assert run.judge_cells(0) == [("critic-g000", "g000-i00", 0.25, "critic"), ("g000-i01", "g000-i00", 0.5, "peer")]
    assert run.load_train_state("g000-i00") is None and run.load_discriminator_state("g000-i00") is not None
    removed, _ = run.prune()
    assert removed == 1
    assert [run.load_discriminator_state(f"g000-i0{i}") is not None for i in range(4)] == [True, True, True, False]


def test_prune_keeps_everything_while_generation_0_runs(run):
    run.begin_generation(0, [child("g000-i00"), child("g000-i01")], state={})
    commit(run, "g000-i00")
    assert run.prune() == (0, 0)
    assert run.load_train_state("g000-i00") is not None


# ---- one writer at a time ----------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import sys, time
    from evoart.store import RunStore
    store = RunStore.open(sys.argv[1])
    store.lock()
    print("locked", flush=True)
    time.sleep(120)
""")

TAKER = textwrap.dedent("""
    import sys
    from evoart.store import RunLocked, RunStore
    store = RunStore.open(sys.argv[1])
    try:
        store.lock()
    except RunLocked as exc:
        print("refused:", exc)
    else:
        print("got it")
""")


def test_a_second_writer_is_refused_until_the_first_dies(run):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run.run_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunLocked, match=rf"run run is being written by another evoart \(process {holder.pid}\)"):
            run.lock()
        with pytest.raises(RunLocked):  # and again: a refusal leaves nothing behind
            run.lock()
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
        holder.stdout.close()
    run.lock()  # the lock died with its process
    taker = subprocess.run([sys.executable, "-c", TAKER, str(run.run_dir)], capture_output=True, text=True, timeout=60)
    assert taker.stdout.startswith(f"refused: run run is being written by another evoart (process {os.getpid()})")
    run.unlock()
    taker = subprocess.run([sys.executable, "-c", TAKER, str(run.run_dir)], capture_output=True, text=True, timeout=60)
    assert taker.stdout.strip() == "got it"


def test_readers_need_no_lock(run):
    run.lock()
    with S.opened(run.run_dir) as reader:
        assert reader.name == "test-run"


# ---- finding runs ------------------------------------------------------------------------


def test_resolve_run_by_name_and_by_path(tmp_path, monkeypatch):
    out = tmp_path / "gallery"
    folder = new_run_dir(out, "20261126-1405-shapes-s7")
    RunStore.create(folder, name=folder.name, config={}, versions={}).close()
    monkeypatch.chdir(tmp_path)
    assert resolve_run("20261126-1405-shapes-s7", out) == out / "20261126-1405-shapes-s7"
    assert resolve_run(folder) == folder
    assert resolve_run(str(folder), out) == folder
    assert resolve_run("gallery/20261126-1405-shapes-s7") == Path("gallery/20261126-1405-shapes-s7")
    with pytest.raises(StoreError, match=rf"no run named nope \(looked in {out}\)"):
        resolve_run("nope", out)
    with pytest.raises(StoreError, match="no run named nope: a run is a folder with a run.db"):
        resolve_run("nope")
    (out / "not-a-run").mkdir()
    with pytest.raises(StoreError):
        resolve_run("not-a-run", out)
    assert list_runs(out) == [folder] and list_runs(tmp_path / "missing") == []


def test_new_run_dir_never_reuses_a_folder(tmp_path):
    out = tmp_path / "gallery"
    first = new_run_dir(out, "shapes")
    second = new_run_dir(out, "shapes")
    (out / "shapes-3").write_text("a file in the way")
    third = new_run_dir(out, "shapes")
    assert [p.name for p in (first, second, third)] == ["shapes", "shapes-2", "shapes-4"]
    assert all(p.is_dir() and not any(p.iterdir()) for p in (first, second, third))
    assert (out / "shapes-3").read_text() == "a file in the way"
