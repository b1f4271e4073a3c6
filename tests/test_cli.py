"""The ``evoart`` command as a user meets it: real runs on tiny budgets, and bad input
answered with a clear message and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from e2e import TINY, evoart, ledger, only_run, snapshot

from evoart.cli import main


def run_cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def make_folder(path: Path, n: int, size: int = 24) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        img = np.zeros((size, size, 3), np.uint8)
        img[:] = rng.integers(0, 80, 3)
        x, y = rng.integers(0, size // 2, 2)
        img[y: y + size // 2, x: x + size // 2] = rng.integers(120, 255, 3)
        Image.fromarray(img).save(path / f"img{i:03d}.png")
    return path


def listing(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


# ---- a real run ----------------------------------------------------------------------

@pytest.mark.slow
def test_evolve_end_to_end_leaves_a_complete_run_folder(tmp_path):
    out = tmp_path / "gallery"
    proc = evoart("evolve", *TINY, "--generations", "2", "--out", str(out), "--seed", "5")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    run = only_run(out)
    assert str(run) in proc.stdout.replace("\n", "")  # it ends by saying where the run is
    assert "Generation 1" in proc.stdout  # a leaderboard per generation
    # Not a terminal: the leaderboard keeps every column, numbers in each (stdout is a pipe)
    lines = proc.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("Generation 1"))
    assert all(col in lines[head + 1] for col in ("score", "realism", "perceptual", "coverage", "swd", "genome"))
    first = lines[head + 2].split()
    assert first[0] == "1" and first[1].startswith("g00")
    assert all(float(v) >= 0 for v in first[3:8])  # score, realism, perceptual, coverage, swd

    with ledger(run) as c:
        inds = c.execute("SELECT id, status, parents, born FROM individual ORDER BY id").fetchall()
        # the default schedule, halving: the better 2 of generation 0's 4 continue in generation 1
        assert [r["id"] for r in inds] == [f"g000-i0{i}" for i in range(4)] + [f"g001-i0{i}" for i in range(2)]
        assert all(r["status"] in ("ok", "diverged") for r in inds)
        assert all(json.loads(r["parents"]) for r in inds if r["born"] == 1)  # lineage recorded
        for gen, members in ((0, 4), (1, 2)):
            assert len(c.execute("SELECT * FROM member WHERE generation = ?", (gen,)).fetchall()) == members
            metrics = {r[0] for r in c.execute("SELECT metric FROM score WHERE generation = ?", (gen,))}
            assert {"realism", "swd"} <= metrics
            assert c.execute("SELECT COUNT(*) FROM judge WHERE generation = ?", (gen,)).fetchone()[0] > 0
        ok = [r["id"] for r in inds if r["status"] == "ok"]

    for gen, members in ((0, 4), (1, 2)):
        sheet = Image.open(run / f"gen-00{gen}" / "contact.png")
        assert sheet.width > 100 and sheet.height > 40 * members  # a row per member
    for ind in ok:
        folder = run / f"gen-00{ind[3]}" / ind
        grid = Image.open(folder / "samples.png")
        assert grid.width > 16 * 8
        json.loads((folder / "genome.json").read_text())
        state = torch.load(folder / "generator.pt", weights_only=True)
        assert any(k.startswith("to_rgb") for k in state)
    config = json.loads((run / "config.json").read_text())
    assert config["config"]["evolve"]["population"] == 4
    assert config["config"]["dataset"]["name"] == "shapes"


@pytest.mark.slow
def test_a_dead_worker_marks_its_individual_failed_and_the_run_goes_on(tmp_path):
    out = tmp_path / "g"
    proc = evoart("evolve", *TINY, "--generations", "1", "--out", str(out),
                  env={"EVOART_FAULT": "crash:g000-i01"})
    assert proc.returncode == 0, proc.stderr + proc.stdout
    run = only_run(out)
    with ledger(run) as c:
        status = dict(c.execute("SELECT id, status FROM individual").fetchall())
        reason = c.execute("SELECT reason FROM individual WHERE id = 'g000-i01'").fetchone()[0]
    assert status.pop("g000-i01") == "failed"
    assert "worker process died" in reason
    assert set(status.values()) <= {"ok", "diverged"} and len(status) == 3


@pytest.mark.slow
def test_image_folder_with_broken_files_is_used_and_left_untouched(tmp_path):
    folder = make_folder(tmp_path / "photos", 90)
    (folder / "notes.jpg").write_text("not an image")
    good = (folder / "img000.png").read_bytes()
    (folder / "cut.png").write_bytes(good[: len(good) // 2])
    before = listing(folder)
    cfg = tmp_path / "small.toml"
    # 90 images: too few for the default evaluation holdout (256) on top
    cfg.write_text("holdout = 16\neval_holdout = 0\njudge_samples = 8\nsamples = 16\nworkers = 1\n")
    out = tmp_path / "g"
    proc = evoart("evolve", str(folder), "--config", str(cfg), "--population", "2", "--generations", "1",
                  "--steps", "3", "--resolution", "16", "--out", str(out))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "skipped 2 unreadable files" in proc.stderr
    assert "notes.jpg" in proc.stderr and "cut.png" in proc.stderr
    assert listing(folder) == before  # nothing written into the user's folder
    assert only_run(out).exists()


@pytest.mark.slow
def test_prune_drops_training_state_nothing_can_inherit(tmp_path):
    out = tmp_path / "g"
    assert evoart("evolve", *TINY, "--generations", "2", "--out", str(out)).returncode == 0
    run = only_run(out)
    with ledger(run) as c:
        members = {r[0] for r in c.execute("SELECT individual FROM member WHERE generation = 1")}
        everyone = {r[0] for r in c.execute("SELECT id FROM individual WHERE status = 'ok'")}
    states_before = {p.parent.name for p in run.glob("gen-*/*/train_state.pt")}
    assert states_before == everyone
    proc = evoart("prune", str(run))
    assert proc.returncode == 0, proc.stderr
    assert "Removed" in proc.stdout
    assert {p.parent.name for p in run.glob("gen-*/*/train_state.pt")} == members & everyone
    assert {p.parent.name for p in run.glob("gen-*/*/generator.pt")} == everyone


# ---- in-process: help, dry run, datasets ----------------------------------------------

def test_help_has_examples():
    result = run_cli("evolve", "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.output and "--resume" in result.output


def test_dry_run_prints_the_resolved_configuration_and_writes_nothing(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("population = 16\nsteps = 50\n")
    result = run_cli("evolve", "landscapes", "--config", str(cfg), "--steps", "70", "--dry-run",
                     "--out", str(tmp_path / "g"))
    assert result.exit_code == 0, result.output
    resolved = json.loads(result.output)
    assert resolved["population"] == 16  # from the file
    assert resolved["steps"] == 70        # the command line wins over the file
    assert resolved["data"] == "landscapes"
    assert not (tmp_path / "g").exists()


@pytest.mark.slow  # two tiny runs, about 10 s
def test_interleaved_training_gives_the_run_it_gives_one_at_a_time(tmp_path):
    """--interleave N trains a worker's GANs a step of each in turn (on a GPU, side by side
    on the card): on the CPU the run it leaves is the same run, score for score. (One
    generation: with the two default workers, halving's second generation of two makes
    packs of one.)"""
    runs = {}
    for n in ("1", "3"):
        out = tmp_path / f"i{n}"
        proc = evoart("evolve", *TINY, "--generations", "1", "--interleave", n, "--out", str(out), "--seed", "4")
        assert proc.returncode == 0, proc.stderr + proc.stdout
        runs[n] = only_run(out)
    assert "up to 3 GANs at once per worker" in " ".join(proc.stdout.split())
    assert snapshot(runs["1"]) == snapshot(runs["3"])
    with ledger(runs["3"]) as c:
        packed = [json.loads(r[0])["interleaved"] for r in c.execute("SELECT stats FROM individual")]
    assert max(packed) > 1, packed  # some did train side by side


def test_a_run_on_several_gpus_gets_a_worker_for_each_unless_it_chose(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    out = str(tmp_path / "g")
    chosen = json.loads(run_cli("evolve", "shapes", "--device", "cuda", "--dry-run", "--out", out).output)
    assert chosen["workers"] == 3
    assert json.loads(run_cli("evolve", "shapes", "--device", "cuda", "--workers", "1", "--dry-run",
                              "--out", out).output)["workers"] == 1
    assert json.loads(run_cli("evolve", "shapes", "--device", "cpu", "--dry-run", "--out", out).output)["workers"] == 2


def test_datasets_list_names_the_builtins():
    result = run_cli("datasets", "list")
    assert result.exit_code == 0
    for name in ("shapes", "landscapes", "patterns"):
        assert name in result.output


# ---- bad input: a clear message, exit code 2, nothing written ---------------------------

@pytest.mark.parametrize(
    "args, message",
    [
        (["/definitely/not/here"], "does not exist"),
        (["--population", "1"], "population must be at least 2"),
        (["--resolution", "48"], "resolution must be 16, 32, 64 or 128"),
        (["--steps", "0"], "steps must be at least 1"),
        (["--resume", "no-such-run"], "no run named no-such-run"),
        (["--interleave", "0"], "--interleave"),
    ],
)
def test_bad_options_exit_2_with_a_message(tmp_path, args, message):
    out = tmp_path / "g"
    result = CliRunner().invoke(main, ["evolve", *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())


def test_empty_folder_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, ["evolve", str(tmp_path / "empty"), "--out", str(tmp_path / "g")])
    assert result.exit_code == 2
    assert "No images found" in result.output
    assert not (tmp_path / "g").exists()


def test_too_few_images_is_refused_with_what_is_needed(tmp_path):
    folder = make_folder(tmp_path / "few", 12)
    result = CliRunner().invoke(main, ["evolve", str(folder), "--out", str(tmp_path / "g")])
    assert result.exit_code == 2
    assert "Only 12 usable images" in result.output
    assert ("the largest batch (64) plus the fitness holdout (256) plus the evaluation holdout (256)"
            in result.output)
    assert not (tmp_path / "g").exists()


def test_a_file_instead_of_a_folder_is_refused(tmp_path):
    f = tmp_path / "pic.png"
    Image.new("RGB", (8, 8)).save(f)
    result = CliRunner().invoke(main, ["evolve", str(f), "--out", str(tmp_path / "g")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "text, message",
    [
        ("population = 4\ncolour = 'red'\n", "unknown option 'colour'"),
        ("population = [\n", "is not valid TOML"),
        ("population = 'many'\n", "population must be an integer"),
    ],
)
def test_bad_config_files_are_refused(tmp_path, text, message):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    result = CliRunner().invoke(main, ["evolve", "--config", str(cfg), "--out", str(tmp_path / "g")])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "g").exists()


def test_missing_config_file_is_refused(tmp_path):
    result = CliRunner().invoke(main, ["evolve", "--config", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_resume_refuses_new_data_or_config(tmp_path):
    result = CliRunner().invoke(main, ["evolve", "landscapes", "--resume", "x", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "drop DATA" in result.output


def test_the_command_never_shows_a_traceback_for_a_broken_ledger(tmp_path):
    run = tmp_path / "g" / "broken"
    run.mkdir(parents=True)
    (run / "run.db").write_bytes(b"this is not sqlite" * 100)
    result = CliRunner().invoke(main, ["evolve", "--resume", str(run)])
    assert result.exit_code == 2, result.output
    assert "run broken: its ledger" in result.output and "is damaged (file is not a database)" in result.output



def test_an_internal_bug_is_reported_as_one_and_exits_1_with_the_traceback_saved(tmp_path, monkeypatch):
    """A ValueError from deep inside is not the user's mistake: exit 1, not 2."""
    import evoart.data

    def broken():
        raise ValueError("index out of range in the dataset registry")

    monkeypatch.setattr(evoart.data, "list_datasets", broken)
    monkeypatch.setenv("EVOART_CACHE", str(tmp_path / "cache"))
    result = CliRunner().invoke(main, ["datasets", "list"])
    assert result.exit_code == 1
    assert "evoart hit a bug (ValueError: index out of range" in result.output
    assert not result.output.startswith("Error:")
    (crash,) = (tmp_path / "cache" / "crashes").iterdir()
    saved = crash.read_text()
    assert "Traceback" in saved and "def broken" not in saved and "broken" in saved
    assert str(crash) in result.output.replace("\n", "")


def test_evoart_errors_exit_2_and_show_their_message(tmp_path):
    result = CliRunner().invoke(main, ["evolve", str(tmp_path / "nope"), "--steps", "1"])
    assert result.exit_code == 2 and "Error:" in result.output and "does not exist" in result.output


def test_python_dash_m_evoart_is_the_evoart_command(tmp_path):
    """A checkout on PYTHONPATH without the console script (a lent GPU machine) runs the
    same command as ``python -m evoart``, under its own name."""
    import subprocess
    import sys

    got = subprocess.run([sys.executable, "-m", "evoart", "datasets", "list"], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    assert "shapes" in got.stdout
    bad = subprocess.run([sys.executable, "-m", "evoart", "evolve", "--no-such-option"], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert bad.returncode == 2 and "Usage: evoart evolve" in bad.stderr
