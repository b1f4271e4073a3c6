"""The GPU session's script (benchmarks/gpu_check.py) runs on what the device machine has.

A session gets about 15 minutes of a lent GPU, and not every session gets one, so the
script must not fail there on something this machine could have caught. The device's
image has torch, numpy and pillow but not deap or platformdirs (the device tool's
KINDS.md lists its packages): the script is run here at its CPU smoke size with those
two made unimportable, in its own process and in the processes it spawns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MISSING_ON_THE_DEVICE = ("deap", "platformdirs")

BLOCKER = f'''
import importlib.abc, sys

class _Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {MISSING_ON_THE_DEVICE!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (not on the device machine)")
        return None

sys.meta_path.insert(0, _Missing())
'''


def _blocked(tmp_path: Path, *command: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python COMMAND`` from ``tmp_path`` with the blocker as its sitecustomize (so every
    interpreter it spawns has it too) and the checkout on its path."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), "EVOART_CACHE": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, *command], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return _blocked(tmp_path, str(ROOT / "benchmarks" / "gpu_check.py"), *args)


def test_the_blocker_really_hides_the_missing_packages(tmp_path):
    got = _blocked(tmp_path, "-c", "import deap", timeout=60)
    assert got.returncode != 0 and "not on the device machine" in got.stderr


@pytest.mark.slow
def test_every_check_passes_at_the_smoke_size_without_the_packages_the_device_lacks(tmp_path):
    got = _run(tmp_path, "--out", str(tmp_path / "check.json"))
    assert got.returncode == 0, got.stdout[-3000:] + got.stderr[-3000:]
    report = json.loads((tmp_path / "check.json").read_text())
    failed = {name: c.get("error") for name, c in report["checks"].items() if not c["ok"]}
    assert not failed, failed
    assert set(report["checks"]) == {"batched_equals_alone", "interleaved_equals_alone", "divergence_caught",
                                     "graphs_equal_eager", "graph_speed_32px_b64", "metrics_on_device",
                                     "interleave_sweep", "processes_per_card"}
    # the population benchmark came back, both mixes measured naive and batched
    results = report["population"]["results"]
    assert set(results) == {"mix", "one-signature"}
    assert all(results[m][mode]["steps_per_s"] > 0 for m in results for mode in ("naive", "batched", "interleaved"))


def test_a_rerun_runs_only_the_checks_it_names_and_refuses_an_unknown_one(tmp_path):
    got = _run(tmp_path, "--out", str(tmp_path / "rerun.json"), "--only", "divergence_caught")
    assert got.returncode == 0, got.stderr[-3000:]
    report = json.loads((tmp_path / "rerun.json").read_text())
    assert list(report["checks"]) == ["divergence_caught"] and report["checks"]["divergence_caught"]["ok"]
    assert "population" not in report

    bad = _run(tmp_path, "--out", str(tmp_path / "bad.json"), "--only", "graph_sped")
    assert bad.returncode == 2 and "no check named graph_sped" in bad.stderr
    assert not (tmp_path / "bad.json").exists()
