"""Exports run without evoart: each exported file (ONNX, torch.export .pt2) is loaded in
a fresh Python process in which evoart cannot be imported, and must produce images of the
right shape and range (and, without noise injection, the generator's own images). The
deprecated ``--export torchscript`` writes the .pt2 file and says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from test_presets import SHIPPED_DIR, make_run, small_genome

from evoart import presets
from evoart import render as R
from evoart.cli import main
from evoart.genome import dcgan_genome
from evoart.nets import build_generator

try:
    import onnx  # noqa: F401
    import onnxruntime  # noqa: F401
    import onnxscript  # noqa: F401
    HAVE_ONNX = True
except ImportError:  # the optional extra; the test extra installs it, so CI runs these
    HAVE_ONNX = False
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="the onnx extra (onnx, onnxscript, onnxruntime) is not installed")

# Runs in the child: site-packages without its .pth files (so no editable evoart), no
# current directory on the path, and a finder that refuses evoart in case it is installed.
CHILD = r'''
import json, sys
sys.path.append(sys.argv[1])

class NoEvoart:
    def find_spec(self, name, path=None, target=None):
        if name == "evoart" or name.startswith("evoart."):
            raise ModuleNotFoundError("evoart is not available here")
        return None

sys.meta_path.insert(0, NoEvoart())
try:
    import evoart  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("evoart is importable in the child")

import numpy as np
kind, model, z_file, out_file = sys.argv[2:6]
z = np.load(z_file)
meta = {}
if kind == "onnx":
    import onnxruntime as ort
    s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    (inp,), (outp,) = s.get_inputs(), s.get_outputs()
    assert (inp.name, outp.name) == ("z", "images"), (inp.name, outp.name)
    images = s.run(["images"], {"z": z})[0]
    again = s.run(["images"], {"z": z})[0]
    meta = dict(s.get_modelmeta().custom_metadata_map)
else:
    import torch
    extra = {"evoart.json": ""}
    m = torch.export.load(model, extra_files=extra).module()
    with torch.no_grad():
        images = m(torch.from_numpy(z)).numpy()
        again = m(torch.from_numpy(z)).numpy()
    meta = json.loads(extra["evoart.json"])
np.save(out_file, images)
print(json.dumps({"shape": list(images.shape), "dtype": str(images.dtype), "min": float(images.min()),
                  "max": float(images.max()), "std": float(images.std()),
                  "repeat_diff": float(np.abs(images - again).max()), "meta": meta}))
'''


def run_without_evoart(kind: str, model: Path, z: np.ndarray, tmp_path: Path) -> tuple[dict, np.ndarray]:
    np.save(tmp_path / "z.npy", z.astype(np.float32))
    site = sysconfig.get_paths()["purelib"]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # as the machine sets them; see the env notes
        if key in os.environ:
            env[key] = os.environ[key]
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", CHILD, site, kind, str(model),
                           str(tmp_path / "z.npy"), str(tmp_path / "out.npy")],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), np.load(tmp_path / "out.npy")


def shipped(name):
    return presets.load_preset(SHIPPED_DIR / f"{name}.json").genome


def check(facts: dict, images: np.ndarray, G, genome, n: int, z: np.ndarray):
    r = G.resolution
    assert facts["shape"] == [n, 3, r, r] and facts["dtype"] == "float32"
    assert 0.0 <= facts["min"] and facts["max"] <= 1.0 and facts["std"] > 1e-4
    noise = any(b.noise for b in genome.generator.blocks)
    if not noise:  # without noise the file computes the generator's images, up to float rounding
        # Not bitwise: the first layer is a matrix product (MKL sgemm), whose summation
        # order, and so its last bits, follows the thread count and the input's alignment.
        assert facts["repeat_diff"] < 1e-5
        with torch.no_grad():
            want = R.ExportedGenerator(G)(torch.from_numpy(z)).numpy()
        assert np.abs(images - want).max() < 1e-4


@pytest.mark.parametrize("kind", [pytest.param("onnx", marks=needs_onnx), pytest.param("pt2", marks=pytest.mark.slow)])
@pytest.mark.parametrize("name", ["dcgan-classic",  # the others are slow (make test-fast's slowest, 2026-12-02)
                                  pytest.param("pixel-shuffle", marks=pytest.mark.slow),
                                  pytest.param("cppn-like", marks=pytest.mark.slow)])
def test_an_exported_generator_runs_without_evoart(kind, name, tmp_path):
    genome = shipped(name)
    torch.manual_seed(0)
    G = build_generator(genome, 16).eval()
    suffix, export = R.EXPORTERS[kind]
    path = tmp_path / f"{name}{suffix}"
    facts = export(G, genome, path, name=name)
    assert path.stat().st_size == facts["bytes"] > 10_000
    z = np.random.default_rng(1).standard_normal((5, genome.generator.latent)).astype(np.float32)
    got, images = run_without_evoart(kind, path, z, tmp_path)
    check(got, images, G, genome, 5, z)
    meta = got["meta"]
    assert meta["evoart.name"] == name and meta["evoart.resolution"] == "16"
    assert json.loads(meta["evoart.genome"]) == genome.to_dict()
    assert "[0, 1]" in meta["evoart.output"]


@needs_onnx
@pytest.mark.slow  # make test-fast's slowest on a slower 2-core machine (2026-12-02)
def test_render_export_writes_both_files_for_a_preset(tmp_path, monkeypatch):
    monkeypatch.setenv("EVOART_HOME", str(tmp_path / "home"))
    run = make_run(tmp_path / "gallery", [small_genome(), dcgan_genome()])
    presets.save_from_run(run, "g000-i01", "dc16", with_weights=True)
    out = tmp_path / "exports"
    r = CliRunner().invoke(main, ["render", "dc16", "--out", str(out), "--samples", "1",
                                  "--export", "onnx", "--export", "pt2"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert r.output.count("max difference to torch") == 2 and "RGB in [0, 1]" in r.output
    assert "deprecated" not in r.output
    G = R.load_generator(R.resolve_source("dc16"))
    z = np.random.default_rng(2).standard_normal((3, 100)).astype(np.float32)
    for kind, file in (("onnx", "dc16.onnx"), ("pt2", "dc16.pt2")):
        got, images = run_without_evoart(kind, out / file, z, tmp_path)
        check(got, images, G, dcgan_genome(), 3, z)


@pytest.mark.slow  # make test-fast's slowest on a slower 2-core machine (2026-12-02)
def test_export_torchscript_is_a_deprecated_alias_that_writes_pt2(tmp_path, monkeypatch):
    monkeypatch.setenv("EVOART_HOME", str(tmp_path / "home"))
    run = make_run(tmp_path / "gallery", [dcgan_genome()])
    presets.save_from_run(run, "g000-i00", "dc16", with_weights=True)
    out = tmp_path / "exports"
    r = CliRunner().invoke(main, ["render", "dc16", "--out", str(out), "--samples", "1",
                                  "--export", "torchscript", "--export", "pt2"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    flat = " ".join(r.output.split())  # rich wraps long lines
    assert "Note:" in flat and "TorchScript is deprecated in torch" in flat
    assert "use --export pt2" in flat and "torch.export.load(path).module()" in flat
    assert sorted(p.name for p in out.iterdir()) == ["dc16-s0-grid.png", "dc16.pt2"]  # one file for both
    assert flat.count("max difference to torch") == 1
    z = np.random.default_rng(3).standard_normal((2, 100)).astype(np.float32)
    got, images = run_without_evoart("pt2", out / "dc16.pt2", z, tmp_path)
    check(got, images, R.load_generator(R.resolve_source("dc16")), dcgan_genome(), 2, z)


def test_a_pt2_export_that_fails_its_check_is_not_left_behind(tmp_path, monkeypatch):
    from evoart.render import export

    monkeypatch.setattr(export, "CHECK_TOLERANCE", -1.0)  # nothing passes
    G = build_generator(dcgan_genome(), 16).eval()
    path = tmp_path / "x.pt2"
    with pytest.raises(R.RenderError, match="differs from the generator"):
        R.export_pt2(G, dcgan_genome(), path, name="x")
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_a_pt2_export_takes_any_batch_size_and_carries_its_description(tmp_path):
    genome = dcgan_genome()
    G = build_generator(genome, 16).eval()
    facts = R.export_pt2(G, genome, tmp_path / "dc.pt2", name="dc")
    assert facts["checked"].startswith("max difference to torch")
    assert facts["load"] == "torch.export.load(path).module()"
    extra = {R.PT2_METADATA: ""}
    module = torch.export.load(tmp_path / "dc.pt2", extra_files=extra).module()
    meta = json.loads(extra[R.PT2_METADATA])
    assert meta["evoart.latent"] == "100" and meta["evoart.noise"] == "none"
    for n in (1, 7):
        z = torch.randn(n, 100)
        with torch.no_grad():
            got, want = module(z), R.ExportedGenerator(G)(z)
        assert got.shape == (n, 3, 16, 16) and float((got - want).abs().max()) < 1e-4


def test_onnx_export_without_the_extra_says_how_to_get_it(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name in ("onnx", "onnxscript"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    with pytest.raises(R.RenderError, match=r"pip install 'evoart\[onnx\]'"):
        R.export_onnx(build_generator(dcgan_genome(), 16), dcgan_genome(), tmp_path / "x.onnx", name="x")
    assert not (tmp_path / "x.onnx").exists()
