"""Bad input is refused before anything is written: each case checks the exit code, that
no traceback is shown, the message, and a byte-for-byte snapshot of the folders involved
(issue 10: a device this machine lacks, a number where a path belongs, seeds and sizes out
of range, a FIFO among the images, a render too large for the memory)."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_safety import TINY, invoke, snapshot

from evoart.config import MAX_POPULATION, MAX_SEED, ConfigError, EvolveConfig


def refused(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "hit a bug" not in result.output, result.output
    text = " ".join(result.output.split())  # rich wraps long lines
    for needle in needles:
        assert needle in text, (needle, result.output)


@pytest.fixture
def around(tmp_path):
    """The test's folder with a file of the user's: ``check()``, called once the test has
    written its inputs, takes the snapshot that must still hold when the test ends."""
    (tmp_path / "mine.txt").write_text("my notes\n")
    state = {}
    yield Around(tmp_path, lambda: state.setdefault("before", snapshot(tmp_path)))
    assert "before" in state, "the test never took its snapshot"
    assert snapshot(tmp_path) == state["before"]


class Around:
    def __init__(self, path: Path, check):
        self.path, self.check = path, check

    def __truediv__(self, other) -> Path:
        return self.path / other


# ---- configuration -----------------------------------------------------------------------

@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize("device, how", [("cuda:0", "toml"), ("cuda", "toml"), ("cuda", "option")])
def test_a_gpu_this_machine_lacks_is_refused_before_a_run_exists(around, device, how):
    args = ["evolve", *TINY, "--out", around / "gallery"]
    if how == "toml":  # --device takes auto|cpu|cuda|mps; cuda:N comes from a TOML file
        (around / "gpu.toml").write_text(f'device = "{device}"\n')
        args += ["--config", around / "gpu.toml"]
    else:
        args += ["--device", device]
    around.check()
    result = invoke(*args)
    refused(result, f"device {device} was asked for, but torch sees no CUDA device", "--device cpu")
    assert not (around / "gallery").exists(), "no run is left behind, running or not"


@pytest.mark.parametrize("line, says", [
    ("data = 5", "data must be a built-in dataset name"),
    ('device = "gpu"', "device must be auto, cpu, cuda, cuda:N"),
    ('device = "cuda:x"', "device must be auto, cpu, cuda, cuda:N"),
    ("device = 0", "device must be auto, cpu, cuda, cuda:N"),
])
def test_wrong_types_in_a_toml_are_named(around, line, says):
    (around / "bad.toml").write_text(line + "\n")
    around.check()
    result = invoke("evolve", *TINY, "--config", around / "bad.toml", "--out", around / "gallery")
    refused(result, says, "bad.toml")
    assert not (around / "gallery").exists()


@pytest.mark.parametrize("seed", [-5, 10**23, MAX_SEED + 1])
def test_a_seed_out_of_range_states_the_range(around, seed):
    around.check()
    result = invoke("evolve", *TINY, "--seed", seed, "--out", around / "gallery")
    refused(result, f"seed must be a whole number from 0 to {MAX_SEED}, got {seed}")
    assert not (around / "gallery").exists()


def test_the_edges_of_the_seed_range_are_valid():
    assert EvolveConfig(seed=0).validate().seed == 0
    assert EvolveConfig(seed=MAX_SEED).validate().seed == MAX_SEED


@pytest.mark.parametrize("option, value, says", [
    ("--population", 10**9, f"population must be at most {MAX_POPULATION}, got 1000000000"),
    ("--population", MAX_POPULATION + 1, "the judging pass pits every discriminator"),
    ("--children", 10**6, f"children must be at most {MAX_POPULATION}"),
    ("--generations", 10**9, "generations must be at most 10000"),
    ("--steps", 10**12, "steps must be at most 1000000"),
    ("--samples", 10**8, "samples must be at most 4096"),
    ("--workers", 10**5, "workers must be at most 256"),
    ("--population", "1e9", "'1e9' is not a valid integer"),
])
def test_sizes_that_would_never_finish_are_capped_with_the_reason(around, option, value, says):
    around.check()
    result = invoke("evolve", *TINY, option, value, "--out", around / "gallery")
    refused(result, says)
    assert not (around / "gallery").exists()


def test_the_caps_are_in_the_help():
    result = invoke("evolve", "--help")
    text = " ".join(result.output.split())
    assert f"2 to {MAX_POPULATION}" in text and f"0 to {MAX_SEED}" in text


def test_the_largest_population_is_a_valid_configuration():
    assert EvolveConfig(population=MAX_POPULATION).validate().lam == MAX_POPULATION
    with pytest.raises(ConfigError):
        EvolveConfig(population=MAX_POPULATION + 1).validate()


# ---- a FIFO among the images -------------------------------------------------------------

def _folder_with_a_fifo(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(90):  # the largest batch (64) + a fitness holdout of 16 + some to spare
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / f"img{i:03d}.png")
    fifo = folder / "zz.png"
    os.mkfifo(fifo)
    return fifo


def _unblock(fifo: Path) -> None:
    """Opens the FIFO for writing and closes it: a reader stuck in open() gets EOF."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass  # nobody is reading it


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_named_like_an_image_is_skipped_and_named(around, monkeypatch):
    monkeypatch.setenv("EVOART_CACHE", str(around / "cache"))
    fifo = _folder_with_a_fifo(around / "pictures")
    (around / "small.toml").write_text("holdout = 16\neval_holdout = 0\n")
    around.check()  # regular files only: is_file() is False for a FIFO, which is never read
    box = {}
    worker = threading.Thread(target=lambda: box.setdefault("r", invoke(
        "evolve", around / "pictures", *TINY, "--config", around / "small.toml", "--out", around / "gallery")),
        daemon=True)
    worker.start()
    worker.join(120)
    if worker.is_alive():  # the regression: reading the FIFO blocks; free it and fail
        _unblock(fifo)
        worker.join(30)
        pytest.fail("evolve hung on a FIFO in the data folder")
    result = box["r"]
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    assert "skipped 1 unreadable files" in text and "zz.png (a named pipe (FIFO), not a regular file" in text
    assert "90 images" in text
    assert fifo.exists()
    for own in ("gallery", "cache"):  # evoart's own files; the user's are checked by ``around``
        shutil.rmtree(around / own)


# ---- a render larger than the memory -----------------------------------------------------

def test_a_render_too_large_for_the_memory_is_refused_with_the_figures(around, monkeypatch):
    import evoart.render.spatial as spatial

    monkeypatch.setattr(spatial, "available_memory", lambda device="cpu": 2 * 10**9)
    monkeypatch.setenv("EVOART_HOME", str(around / "home"))
    around.check()
    result = invoke("render", "dcgan-classic", "--steps", 1, "--resolution", 16, "--size", 4096,
                    "--samples", 1, "--out", around / "renders")
    refused(result, "--size 4096x4096 needs about", "GB of memory for one image", "2.0 GB is available",
            "px fits; pass a smaller --size")
    assert not (around / "renders").exists() and not (around / "home").exists()


def test_the_size_said_to_fit_fits_and_small_renders_pass():
    import re

    from evoart.nets import build_generator
    from evoart.presets import load_preset
    from evoart.render import RenderError
    from evoart.render.spatial import check_memory, plan_size

    genome = load_preset("dcgan-classic").genome
    G = build_generator(genome, 16).eval()
    have = 2 * 10**9
    with pytest.raises(RenderError) as info:
        check_memory(G, plan_size(genome, 16, (4096, 4096)), available=have)
    need = float(re.search(r"needs about ([\d.]+) GB", str(info.value)).group(1))
    assert need > 2.0  # the figure is the estimate, not the limit
    w, h = (int(v) for v in re.search(r"About (\d+)x(\d+) px fits", str(info.value)).groups())
    assert 16 <= w < 4096 and w == h
    assert check_memory(G, plan_size(genome, 16, (w, h)), available=have) <= 0.75 * have
    assert check_memory(G, plan_size(genome, 16, (512, 512)), available=have) < 10**9
