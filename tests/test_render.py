"""Rendering: sample grids, growing through the spatial latent, latent walks, training a
genome without weights, reproducibility, and the render command's refusals."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from e2e import evoart
from PIL import Image
from test_presets import SHIPPED, SHIPPED_DIR, make_run, small_genome, snapshot

from evoart import presets
from evoart import render as R
from evoart.cli import main
from evoart.genome import dcgan_genome
from evoart.nets import build_generator


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def home(tmp_path, monkeypatch):
    h = tmp_path / "home"
    monkeypatch.setenv("EVOART_HOME", str(h))
    return h


def generator(genome, resolution=16, seed=0):
    torch.manual_seed(seed)
    return build_generator(genome, resolution).eval()


@pytest.fixture
def weighted(home, tmp_path) -> str:
    """A user preset with (untrained, seeded) weights at 16 px: renders without training."""
    run = make_run(tmp_path / "gallery", [small_genome(), dcgan_genome()])
    presets.save_from_run(run, "g000-i01", "dc16", with_weights=True)
    return "dc16"


# ---- growing through the generator -----------------------------------------------------

@pytest.mark.parametrize("name", SHIPPED)
def test_a_one_cell_spatial_grid_is_exactly_the_generator(name):
    genome = presets.load_preset(SHIPPED_DIR / f"{name}.json").genome
    G = generator(genome, 16)
    z = R.latent_grid(G.latent, 3, 0)
    with torch.no_grad():
        torch.manual_seed(5)
        plain = G(z[:, 0, 0][None])
        torch.manual_seed(5)
        spatial = R.SpatialGenerator(G)(z[None])
    assert spatial.shape == plain.shape
    assert torch.allclose(plain, spatial, atol=1e-5)


def test_a_larger_grid_grows_a_larger_image_that_is_new_detail_not_a_resize():
    G = generator(dcgan_genome(), 16)
    plan = R.plan_size(dcgan_genome(), 16, (64, 48))
    assert plan.method == "spatial" and plan.cells == (3, 4)
    assert "grown through the generator" in plan.message and "4x3 grid of latents" in plan.message
    img = R.render_images(G, 1, seed=0, plan=plan)[0]
    assert img.shape == (48, 64, 3)
    up = R.render_images(G, 1, seed=0, plan=R.plan_size(dcgan_genome(), 16, (64, 48), "upscale"))[0]
    assert up.shape == (48, 64, 3)

    def high_freq(a):  # energy of pixel-to-pixel differences: a resize has little
        a = a.astype(float)
        return np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean()

    assert high_freq(img) > 1.5 * high_freq(up)
    # the grown picture does not repeat one tile: its 16 px areas differ
    assert not np.array_equal(img[:16, :16], img[16:32, 16:32])


def test_the_plan_says_plainly_when_it_only_resizes():
    g = dcgan_genome()
    assert R.plan_size(g, 32, None).method == "native"
    assert R.plan_size(g, 32, (32, 32)).method == "native"
    up = R.plan_size(g, 32, (128, 128), "upscale")
    assert up.method == "upscale" and "only upscaled" in up.message and "no new detail" in up.message
    down = R.plan_size(g, 32, (20, 20))
    assert down.method == "downscale" and "downscaled" in down.message
    crop = R.plan_size(g, 32, (100, 100))
    assert crop.cells == (4, 4) and "centre-cropped from 128x128" in crop.message
    group = presets.load_preset(SHIPPED_DIR / "pixel-shuffle.json").genome
    assert "group norm" in R.plan_size(group, 32, (64, 64)).message
    with pytest.raises(R.RenderError):
        R.plan_size(g, 32, (8192, 8192))


def test_image_i_depends_only_on_the_seed_and_i():
    G = generator(presets.load_preset(SHIPPED_DIR / "pixel-shuffle.json").genome)  # noise injection
    a = R.render_images(G, 3, seed=4)
    b = R.render_images(G, 2, seed=4)
    assert np.array_equal(a[:2], b)
    assert not np.array_equal(a, R.render_images(G, 3, seed=5))
    assert not np.array_equal(a[0], a[1])


# ---- latent walks ----------------------------------------------------------------------

def test_slerp_keeps_to_the_shell_and_hits_its_ends():
    a, b = torch.randn(64), torch.randn(64)
    assert torch.allclose(R.slerp(a, b, 0.0), a, atol=1e-5)
    assert torch.allclose(R.slerp(a, b, 1.0), b, atol=1e-5)
    mid = R.slerp(a, b, 0.5)
    assert mid.norm() > 0.9 * min(a.norm(), b.norm())  # a straight line would dip to ~0.7
    assert torch.allclose(R.slerp(a, a, 0.3), a, atol=1e-5)


def test_the_walk_loops_seamlessly_through_its_keyframes():
    grids = R.walk_latents(16, frames=12, keyframes=3, seed=0)
    keys = [R.latent_grid(16, 0, k, kind="walk") for k in range(3)]
    assert len(grids) == 12
    assert torch.allclose(grids[0], keys[0]) and torch.allclose(grids[4], keys[1]) and torch.allclose(grids[8], keys[2])
    step = [float((grids[(i + 1) % 12] - grids[i]).norm()) for i in range(12)]
    assert max(step) < 3 * min(step)  # no jump at the loop's seam
    with pytest.raises(R.RenderError):
        R.walk_latents(16, frames=2, keyframes=3, seed=0)


def test_walk_files_are_looping_gif_and_webp():
    G = generator(dcgan_genome())
    walk = R.latent_walk(G, frames=8, keyframes=2, seed=1)
    assert walk.shape == (8, 16, 16, 3) and walk.dtype == np.uint8
    assert np.array_equal(walk, R.latent_walk(G, frames=8, keyframes=2, seed=1))
    # an untrained generator barely moves, and WebP merges identical frames: encode a
    # picture that visibly changes from frame to frame
    yy, xx = np.mgrid[0:16, 0:16]
    frames = np.stack([np.stack([((xx // 4) * 64 + 64 * t) % 256, (yy // 4) * 64, np.full_like(xx, 32 * t)], -1)
                       for t in range(8)]).astype(np.uint8)  # 128 colours: the GIF palette holds them all
    gif = Image.open(io.BytesIO(R.gif_bytes(frames, fps=10, scale=4)))
    assert (gif.n_frames, gif.size, gif.info["loop"], gif.info["duration"]) == (8, (64, 64), 0, 100)
    webp = Image.open(io.BytesIO(R.webp_bytes(frames, fps=10, scale=4)))
    assert (webp.n_frames, webp.size) == (8, (64, 64))
    gif.seek(3)
    assert np.array_equal(np.asarray(gif.convert("RGB")), frames[3].repeat(4, 0).repeat(4, 1))


# ---- the render command ----------------------------------------------------------------

def test_render_writes_grid_large_images_walk_and_exports(weighted, tmp_path):
    out = tmp_path / "renders"
    r = cli("render", weighted, "--out", out, "--size", "48", "--walk", "--frames", "6", "--keyframes", "2",
            "--samples", "3")
    assert r.exit_code == 0, r.output
    assert "grown through the generator from a 3x3 grid of latents" in r.output
    grid = Image.open(out / "dc16-s0-48x48-grid.png")
    assert grid.size == (2 * 48 * 2 + 3 * 2,) * 2  # 2 rows x 2 cols at 2x zoom, 2 px gaps
    assert Image.open(out / "dc16-s0-48x48-walk.gif").n_frames == 6
    assert Image.open(out / "dc16-s0-48x48-walk.webp").format == "WEBP"  # (still frames merge in WebP)


def test_rendering_a_preset_with_weights_is_byte_identical(weighted, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert cli("render", weighted, "--out", out, "--samples", "9", "--seed", "11").exit_code == 0
        assert cli("render", weighted, "--out", out, "--samples", "2", "--seed", "11", "--size", "40").exit_code == 0
    assert snapshot(a) == snapshot(b) and len(snapshot(a)) == 2
    r = cli("render", weighted, "--out", tmp_path / "c", "--samples", "9", "--seed", "12")
    assert r.exit_code == 0
    assert (tmp_path / "c" / "dc16-s12-grid.png").read_bytes() != (a / "dc16-s11-grid.png").read_bytes()


@pytest.mark.slow
def test_rendering_is_byte_identical_across_processes(weighted, home, tmp_path):
    outs = []
    for k in range(2):
        out = tmp_path / f"p{k}"
        proc = evoart("render", weighted, "--out", str(out), "--samples", "16", "--seed", "3",
                      env={"EVOART_HOME": str(home)})
        assert proc.returncode == 0, proc.stderr
        outs.append((out / "dc16-s3-grid.png").read_bytes())
    assert outs[0] == outs[1]
    # and the same bytes as rendering in this process
    assert cli("render", weighted, "--out", tmp_path / "here", "--samples", "16", "--seed", "3").exit_code == 0
    assert (tmp_path / "here" / "dc16-s3-grid.png").read_bytes() == outs[0]


def test_a_preset_without_weights_is_trained_first_and_can_be_kept(home, tmp_path):
    out = tmp_path / "r"
    r = cli("render", "cppn-like", "--out", out, "--steps", "4", "--resolution", "16", "--samples", "4",
            "--save-as", "my-cppn")
    assert r.exit_code == 0, r.output
    assert "no trained weights: training on shapes at 16 px for 4 steps" in r.output
    assert (out / "cppn-like-s0-grid.png").is_file()
    kept = presets.load_preset("my-cppn")
    assert kept.weights.resolution == 16 and kept.genome == presets.load_preset("cppn-like").genome
    assert kept.provenance["derived_from"] == "cppn-like" and kept.provenance["steps"] == 4
    assert presets.load_weights(kept) is not None
    # the kept preset renders without training, to the same picture
    r = cli("render", "my-cppn", "--out", tmp_path / "again", "--samples", "4")
    assert r.exit_code == 0 and "training on" not in r.output
    assert (tmp_path / "again" / "my-cppn-s0-grid.png").read_bytes() == (out / "cppn-like-s0-grid.png").read_bytes()


def test_render_an_individual_of_a_run(home, tmp_path):
    make_run(tmp_path / "gallery", [small_genome(), dcgan_genome()], name="run-b")
    r = cli("render", "run-b:g000-i00", "--runs", tmp_path / "gallery", "--out", tmp_path / "r", "--samples", "4")
    assert r.exit_code == 0, r.output
    assert "g000-i00 of run run-b" in r.output
    assert (tmp_path / "r" / "run-b-g000-i00-s0-grid.png").is_file()
    r = cli("render", f"{tmp_path / 'gallery' / 'run-b'}:g000-i01", "--out", tmp_path / "r", "--samples", "1")
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("args, says", [
    (("nope",), "no preset named 'nope'"),
    (("run-x:g000-i00",), "no run named run-x"),
    (("run-b:g007-i07",), "no individual 'g007-i07'"),
    (("dc16", "--size", "big"), "give pixels"),
    (("dc16", "--size", "9000"), "1 to 4096"),
    (("dc16", "--walk", "--frames", "3", "--keyframes", "4"), "at least as many frames"),
    (("dc16", "--save-as", "a/b"), "path separator"),
    (("dc16", "--save-as", "lsgan"), "shipped with evoart"),
])
def test_render_refuses_bad_input_with_exit_code_2(weighted, tmp_path, args, says):
    make_run(tmp_path / "gallery", [small_genome()], name="run-b")
    r = cli("render", *args, "--runs", tmp_path / "gallery", "--out", tmp_path / "r")
    assert r.exit_code == 2, r.output
    assert says in r.output


def test_render_never_overwrites_without_force(weighted, tmp_path):
    out = tmp_path / "r"
    assert cli("render", weighted, "--out", out, "--samples", "2").exit_code == 0
    before = snapshot(out)
    r = cli("render", weighted, "--out", out, "--samples", "5", "--walk", "--frames", "4", "--keyframes", "2")
    # a RenderError from the library, so exit code 2 like every other refusal
    assert r.exit_code == 2 and "exists" in r.output and "--force" in r.output
    assert snapshot(out) == before  # not even the walk, which did not exist, was written
    assert cli("render", weighted, "--out", out, "--samples", "5", "--force").exit_code == 0
    assert snapshot(out) != before


def test_weights_and_training_options_together_say_which_wins(weighted, tmp_path):
    r = cli("render", weighted, "--out", tmp_path / "r", "--samples", "1", "--steps", "5")
    assert r.exit_code == 0
    assert "ignoring --steps" in r.output and "--retrain" in r.output


# ---- the library call (no CLI) ---------------------------------------------------------

def test_render_is_one_library_call_that_lists_every_file_it_wrote(weighted, tmp_path):
    seen, said, noted = [], [], []
    result = R.render(weighted, out=tmp_path / "lib", samples=3, size=(32, 32), walk=True, frames=4, keyframes=2,
                      exports=["pt2"], steps=5, device="cpu",
                      progress=lambda stage, done, total: seen.append((stage, done, total)),
                      message=said.append, note=noted.append)
    assert [f.kind for f in result.files] == ["grid", "gif", "webp", "pt2"]
    for f in result.files:
        assert f.path.is_file() and f.path.stat().st_size == f.bytes > 0
    assert sorted(p.name for p in (tmp_path / "lib").iterdir()) == sorted(f.path.name for f in result.files)
    grid = result.file("grid")
    assert grid.path.name == "dc16-s0-32x32-grid.png" and grid.facts["samples"] == 3
    assert result.file("gif").facts["frames"] == 4 and result.file("pt2").path.name == "dc16.pt2"
    assert result.file("pt2").facts["checked"].startswith("max difference to torch")
    assert result.plan.method == "spatial" and result.training is None and result.preset is None
    assert ("rendering", 3, 3) in seen and ("walk", 4, 4) in seen
    assert said[0] == "Rendering preset dc16 (your presets)"
    assert any(s.startswith(f"Wrote {grid.path} (3 samples") for s in said)
    assert noted == result.notes and len(noted) == 1 and "ignoring --steps" in noted[0]
    # the command line writes the very same grid
    assert cli("render", weighted, "--out", tmp_path / "cli", "--samples", "3", "--size", "32").exit_code == 0
    assert (tmp_path / "cli" / grid.path.name).read_bytes() == grid.path.read_bytes()
    # and the same call again refuses before any work, with an error meant for the user
    with pytest.raises(R.RenderError, match="exists.*--force"):
        R.render(weighted, out=tmp_path / "lib", samples=3, size=(32, 32), device="cpu")


def test_the_library_call_trains_and_keeps_a_preset(home, tmp_path):
    result = R.render("cppn-like", out=tmp_path / "r", samples=2, steps=2, resolution=16, save_as="lib-cppn",
                      device="cpu")
    assert [f.kind for f in result.files] == ["preset", "preset-weights", "grid"]
    assert all(f.path.is_file() and f.path.stat().st_size == f.bytes for f in result.files)
    assert result.training.steps == 2 and result.training.resolution == 16
    assert result.preset == home / "presets" / "lib-cppn.json"
    assert presets.load_preset("lib-cppn").provenance["derived_from"] == "cppn-like"


@pytest.mark.parametrize("options, says", [
    ({"samples": 0}, "--samples 0"),
    ({"size": (0, 8)}, "outside 1 to 4096x4096"),
    ({"size": "big"}, "not (width, height)"),
    ({"grow": "stretch"}, "--grow 'stretch'"),
    ({"exports": ["tflite"]}, "unknown export 'tflite'"),
    ({"exports": "onnx"}, "list of kinds"),
    ({"walk": True, "frames": 3, "keyframes": 4}, "at least as many frames"),
    ({"steps": 0}, "--steps 0"),
    ({"resolution": 24}, "--resolution 24"),
    ({"device": "tpu"}, "unknown device"),
])
def test_the_library_call_refuses_bad_options_before_any_work(weighted, tmp_path, options, says):
    from evoart.errors import EvoartError

    with pytest.raises(EvoartError) as exc:
        R.render(weighted, out=tmp_path / "r", **options)
    assert says in str(exc.value)
    assert not (tmp_path / "r").exists()


def test_an_out_that_is_a_file_is_refused(weighted, tmp_path):
    (tmp_path / "taken").write_text("not a folder")
    with pytest.raises(R.RenderError, match="is a file"):
        R.render(weighted, out=tmp_path / "taken", samples=1, device="cpu")
