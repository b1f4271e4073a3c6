"""`evoart score`, as a user runs it: two folders (a readable table, or one flat JSON
object), a run's individuals again with the run's own protocol (the same numbers it
recorded), a local TorchScript feature extractor, and clear errors with exit code 2."""

from __future__ import annotations

import json
import sqlite3

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from evoart import data
from evoart.cli import main
from evoart.config import EvolveConfig
from evoart.runner import start_run

METRICS = {"perceptual", "swd", "rkid", "color", "coverage", "density", "diversity"}


def write_folder(path, images) -> None:
    path.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(images):
        Image.fromarray(a).save(path / f"{i:04d}.png")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("score")
    write_folder(root / "real", data.load_images("shapes", 16, count=96, seed=1).images)
    write_folder(root / "fake", data.load_images("landscapes", 16, count=40, seed=2).images)
    (root / "empty").mkdir()
    return root


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_two_folders_give_a_table_with_floors(folders):
    result = invoke("score", folders / "real", folders / "fake", "--resolution", 16)
    assert result.exit_code == 0, result.output
    for name in ("perceptual", "swd", "rkid", "color", "coverage", "real vs real"):
        assert name in result.output
    assert "24 generated images of 40" in result.output  # a quarter of the 96 real images


def test_json_is_flat_with_one_number_per_metric_and_a_meta(folders):
    result = invoke("score", folders / "real", folders / "fake", "--resolution", 16, "--samples", 16, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert set(out) == METRICS | {"meta"}
    assert all(isinstance(out[k], float) for k in METRICS)
    meta = out["meta"]
    assert meta["samples"] == 16 and meta["resolution"] == 16 and meta["real_images"] == 96
    assert meta["reference_images"] == 48 and meta["floor_pool_images"] == 48
    assert set(meta["floors"]) == METRICS and meta["floors"]["swd"]["n"] == 16
    assert meta["versions"]["perceptual"] >= 1 and meta["embedding"] == "random-cnn-v1"
    # landscapes scored against shapes: far outside the real-vs-real spread
    assert out["perceptual"] > meta["floors"]["perceptual"]["mean"] + 3 * meta["floors"]["perceptual"]["std"]


def test_metric_selection_and_the_same_numbers_as_the_full_run(folders):
    every = json.loads(invoke("score", folders / "real", folders / "fake", "--resolution", 16, "--json").output)
    some = json.loads(invoke("score", folders / "real", folders / "fake", "--resolution", 16, "--json",
                             "--metric", "swd", "--metric", "coverage").output)
    assert set(some) == {"swd", "coverage", "meta"}
    assert some["swd"] == every["swd"] and some["coverage"] == every["coverage"]


@pytest.mark.parametrize("args, message", [
    (("real", "empty"), "No images found"),
    (("real", "missing"), "does not exist"),
    (("real", "fake", "--metric", "fid"), "unknown metric 'fid'"),
])
def test_bad_input_exits_2_with_a_clear_message(folders, args, message):
    result = CliRunner().invoke(main, ["score", *[str(folders / a) if i < 2 else a for i, a in enumerate(args)],
                                       "--resolution", "16"])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_image_sets_the_metrics_cannot_use_raise_a_message_for_the_user():
    from evoart.errors import EvoartError
    from evoart.scoring import score_image_sets

    real, fake = torch.rand(40, 3, 16, 16) * 2 - 1, torch.rand(8, 3, 32, 32) * 2 - 1
    with pytest.raises(EvoartError, match="real images are"):
        score_image_sets(real, fake)


def test_too_few_real_images_or_no_arguments(folders, tmp_path):
    write_folder(tmp_path / "few", data.load_images("shapes", 16, count=10, seed=1).images)
    result = CliRunner().invoke(main, ["score", str(tmp_path / "few"), str(folders / "fake"), "--resolution", "16"])
    assert result.exit_code == 2 and "at least 32 real images" in result.output
    result = CliRunner().invoke(main, ["score"])
    assert result.exit_code == 2 and "REAL and FAKE" in result.output


class Extractor(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.conv = torch.nn.Conv2d(3, 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean(dim=(2, 3))


@pytest.mark.filterwarnings("ignore:.*TorchScript feature extractors are deprecated:FutureWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's own note on torch.jit.script
@pytest.mark.parametrize("suffix, name", [(".pt2", "export:"), (".pt", "torchscript:")])
def test_a_local_feature_extractor(folders, tmp_path, suffix, name):
    path = tmp_path / f"extractor{suffix}"
    if suffix == ".pt2":
        ep = torch.export.export(Extractor().eval(), (torch.zeros(2, 3, 16, 16),),
                                 dynamic_shapes=({0: torch.export.Dim("batch")},))
        torch.export.save(ep, str(path))
    else:
        torch.jit.script(Extractor()).save(str(path))
    out = json.loads(invoke("score", folders / "real", folders / "fake", "--resolution", 16, "--json",
                            "--features", path).output)
    assert out["meta"]["embedding"].startswith(name)
    assert out["meta"]["floors"]["rkid"]["n"] == out["meta"]["samples"]


# ---- a run's individuals again -------------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    cfg = EvolveConfig(resolution=16, steps=2, samples=24, population=2, generations=2, workers=1, seed=3)
    return start_run(cfg, tmp_path_factory.mktemp("runs")).run_dir


def score_rows(run_dir):
    with sqlite3.connect(f"file:{run_dir / 'run.db'}?mode=ro", uri=True) as c:
        return sorted(c.execute("SELECT * FROM score").fetchall())


def test_rescoring_a_run_reproduces_what_it_recorded_and_writes_nothing(run_dir):
    before = score_rows(run_dir)
    result = invoke("score", "--run", run_dir, "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["meta"]["samples"] == 24 and out["meta"]["resolution"] == 16
    assert len(out["individuals"]) == 3  # 2 in generation 0, the better one continued in generation 1
    for row in out["individuals"]:
        for k in ("perceptual", "swd", "rkid", "color", "coverage", "diversity"):
            assert row[k] == pytest.approx(row["recorded"][k], rel=1e-9, abs=1e-12), (row["id"], k)
    assert score_rows(run_dir) == before
    assert not (run_dir / "rescore.json").exists()


def test_rescoring_one_generation_prints_a_table_and_can_save(run_dir):
    result = invoke("score", "--run", run_dir, "--generation", 1, "--save")
    assert result.exit_code == 0, result.output
    assert "re-scored" in result.output and "recorded" in result.output
    saved = json.loads((run_dir / "rescore.json").read_text())
    assert saved["meta"]["generation"] == 1 and len(saved["individuals"]) == 1
    bad = CliRunner().invoke(main, ["score", "--run", str(run_dir), "--generation", "9"])
    assert bad.exit_code == 2 and "no finished generation 9" in bad.output
    missing = CliRunner().invoke(main, ["score", "--run", str(run_dir.parent / "nope")])
    assert missing.exit_code == 2 and "no run named" in missing.output


# ---- the held-out evaluation ---------------------------------------------------------------


@pytest.fixture(autouse=False)
def small_classifier(monkeypatch, tmp_path_factory):
    """The shapes classifier on a small budget (the full one is tested in test_heldout)."""
    from evoart.scoring import heldout

    monkeypatch.setenv("EVOART_CACHE", str(tmp_path_factory.getbasetemp() / "heldout-cache"))
    full = heldout.shapes_classifier
    monkeypatch.setattr(heldout, "shapes_classifier",
                        lambda resolution, budget=None: full(resolution, heldout.Budget(classifier_steps=100)))


@pytest.mark.slow  # one of make test-fast's slowest (12-25 s here)
def test_heldout_evaluation_of_a_run_prints_a_table(run_dir, small_classifier):
    before = score_rows(run_dir)
    result = invoke("score", "--heldout", run_dir, "--critic-steps", 40)
    assert result.exit_code == 0, result.output
    for text in ("held-out evaluation", "real (training images)", "best of generation 0",
                 "best of generation 1", "critic", "auc", "swd", "rkid", "cover.", "recog."):
        assert text in result.output, text
    assert score_rows(run_dir) == before  # reads the run, writes nothing


@pytest.mark.slow  # make test-fast's slowest on a slower 2-core machine (2026-12-02)
def test_heldout_json_has_every_contender_on_the_recorded_evaluation_split(run_dir, small_classifier):
    out = json.loads(invoke("score", "--heldout", run_dir, "--critic-steps", 40, "--json",
                            "--generation", 1).output)
    assert [c["id"] for c in out["contenders"]][0] == "real"
    assert [c["generation"] for c in out["contenders"]] == [None, 1]
    assert out["meta"]["evaluation_images"] == 256 and out["meta"]["samples"] == 24
    assert out["meta"]["split"]["version"] == 2 and out["meta"]["budget"]["critic_steps"] == 40
    for c in out["contenders"]:
        assert 0.0 <= c["critic"] <= 1.0 and 0.0 <= c["recognisable"] <= 1.0


@pytest.mark.slow  # make test-fast's slowest on a slower 2-core machine (2026-12-02)
def test_heldout_on_a_run_recorded_before_evaluation_splits_says_what_to_do(run_dir, tmp_path):
    import shutil

    from evoart.store import RunStore

    old = tmp_path / run_dir.name
    shutil.copytree(run_dir, old)
    store = RunStore.open(old)
    try:
        record = dict(store.config)
        record.pop("splits")
        record["evolve"] = {k: v for k, v in record["evolve"].items() if k != "eval_holdout"}
        store.update_config(record)
    finally:
        store.close()
    result = CliRunner().invoke(main, ["score", "--heldout", str(old)])
    assert result.exit_code == 2, result.output
    assert "recorded before evoart kept an evaluation split" in result.output
    assert "start a new run" in result.output
    # and it still rescores, on its old two-way split
    rescored = CliRunner().invoke(main, ["score", "--run", str(old), "--json"])
    assert rescored.exit_code == 0, rescored.output
    # and it resumes on its old two-way split, which its record now names
    from evoart.runner import resume_run

    resume_run(old, overrides={"generations": 3})
    store = RunStore.open(old, readonly=True)
    try:
        record = store.config
    finally:
        store.close()
    assert record["splits"]["version"] == 1 and record["evolve"]["eval_holdout"] == 0
    images = data.load_images("shapes", 16)
    train, held = data.holdout_split(len(images), 256, seed=3)
    from evoart.seeds import array_digest

    assert record["splits"]["digests"]["fitness"] == array_digest(held)
    assert record["splits"]["digests"]["train"] == array_digest(train)
