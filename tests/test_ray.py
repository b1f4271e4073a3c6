"""The Ray executor (``--executor ray``) as a cluster user relies on it: the serial
executor's results, failures confined to their individual (an evaluation that raises, a
worker killed once and retried, a worker killed every time and failed after the
retries), GPU requests reaching the task, mismatched versions refused, and a whole run
on a two-node cluster that loses a node mid-generation and still ends with the serial
run's ledger.

The tests share one local Ray instance (2 CPUs, one GPU declared, dashboard off), started
once and shut down at the end, on one xdist worker (``xdist_group``, ``--dist loadgroup``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the Ray extra is not installed (pip install 'evoart[ray]')")

from evoart import ray_executor  # noqa: E402
from evoart.config import ConfigError, EvolveConfig  # noqa: E402
from evoart.executors import SerialExecutor  # noqa: E402
from evoart.fitness import EvalContext, EvalTask  # noqa: E402
from evoart.ray_executor import RayExecutor, RayExecutorError  # noqa: E402

from e2e import TINY, evoart, ledger, only_run, snapshot, start_evoart, wait_until  # noqa: E402
from genomes import tiny_context, tiny_genome  # noqa: E402

# Every Ray test is in make test, none in make test-fast: a Ray instance and its workers
# take the machine's two cores for a while, which make test-fast cannot spare.
pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.slow]
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    os.environ.setdefault("HOME", str(home))
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False, logging_level="warning",
             object_store_memory=100 * 1024 * 1024)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> EvalContext:
    return tiny_context(tmp_path_factory.mktemp("cache"))


def tasks(n: int = 3) -> list[EvalTask]:
    return [EvalTask(id=f"g000-i{i:02d}", genome=tiny_genome().to_dict(), seed=i, steps=3) for i in range(n)]


def through(executor, ts):
    try:
        return {ev.id: ev for ev in executor.map(ts)}
    finally:
        executor.close()


def test_ray_gives_the_serial_executors_results_and_reports_progress(local_ray, ctx):
    serial = {ev.id: ev for ev in SerialExecutor(ctx).map(tasks())}
    seen = []
    got = through(RayExecutor(ctx, progress=lambda i, s, t: seen.append((i, s, t))), tasks())
    assert set(got) == set(serial)
    for i, ev in got.items():
        assert ev.status == "ok" and ev.timings["threads"] == 1
        for metric, value in serial[i].metrics.items():
            assert ev.metrics[metric] == pytest.approx(value, rel=1e-4, abs=1e-6), metric
        assert ev.stats["curves"] == serial[i].stats["curves"]
    assert wait_until(lambda: {i for i, _, _ in seen} == set(serial), timeout=10), seen
    assert ("g000-i00", 3, 3) in seen


def test_progress_ends_at_each_individuals_last_step_even_when_the_reports_are_lost(local_ray, ctx):
    # the workers' reports are fire-and-forget: here the actor they go to is gone
    seen = []
    executor = RayExecutor(ctx, progress=lambda i, s, t: seen.append((i, s, t)))
    ray.kill(executor._sink)
    got = through(executor, tasks())
    assert {ev.status for ev in got.values()} == {"ok"}
    assert sorted(seen) == [(f"g000-i{i:02d}", 3, 3) for i in range(3)]


def test_an_evaluation_that_raises_fails_only_its_individual(local_ray, ctx):
    ts = tasks(2) + [EvalTask(id="g000-i02", genome={"generator": "not a generator"}, seed=2, steps=3)]
    got = through(RayExecutor(ctx), ts)
    assert got["g000-i02"].status == "failed" and "GenomeError" in got["g000-i02"].reason
    assert got["g000-i00"].status == got["g000-i01"].status == "ok"


def test_a_worker_killed_once_is_retried_and_every_result_comes_back(local_ray, ctx, tmp_path):
    marker = tmp_path / "crashed"
    env = {"env_vars": {"EVOART_FAULT": f"crash-once:g000-i01@{marker}"}}
    got = through(RayExecutor(ctx, runtime_env=env), tasks())
    assert marker.exists()  # the worker did die once
    assert {ev.status for ev in got.values()} == {"ok"}, {i: ev.reason for i, ev in got.items()}


def test_a_worker_killed_every_time_is_failed_after_the_retries(local_ray, ctx):
    env = {"env_vars": {"EVOART_FAULT": "crash:g000-i01"}}
    t0 = time.monotonic()
    got = through(RayExecutor(ctx, runtime_env=env), tasks())
    assert time.monotonic() - t0 < 30
    assert got["g000-i01"].status == "failed" and "worker died 3 times" in got["g000-i01"].reason
    assert got["g000-i00"].status == got["g000-i02"].status == "ok"


def test_a_fractional_gpu_request_reaches_the_task(local_ray, ctx):
    ex = RayExecutor(ctx, gpus_per_individual=0.5, cpus_per_individual=2)
    try:
        seen = ex.probe()
    finally:
        ex.close()
    assert seen["CUDA_VISIBLE_DEVICES"] == "0" and seen["threads"] == 2


def test_a_node_with_another_evoart_is_refused_with_both_versions(local_ray, ctx, monkeypatch):
    real = ray_executor._versions()
    monkeypatch.setattr(ray_executor, "_versions", lambda: {**real, "evoart": "9.9.9"})  # the driver's only
    with pytest.raises(RayExecutorError, match=rf"runs evoart {real['evoart']} with torch .* this driver runs evoart 9\.9\.9"):
        RayExecutor(ctx)


def test_ray_asked_for_without_ray_is_a_clear_error(monkeypatch, tmp_path):
    from evoart import runner

    monkeypatch.setattr(ray_executor, "ray_available", lambda: False)
    with pytest.raises(ConfigError, match=r"pip install 'evoart\[ray\]'"):
        runner.start_run(EvolveConfig(executor="ray", resolution=16, population=4), tmp_path)
    assert not any(tmp_path.iterdir())  # nothing written
    with pytest.raises(ConfigError, match="go with executor ray"):
        EvolveConfig(gpus_per_individual=0.5).validate()


def test_a_run_that_loses_a_node_mid_generation_ends_with_the_serial_runs_ledger(tmp_path):
    args = ["shapes", *TINY, "--generations", "2", "--seed", "5"]
    serial = evoart("evolve", *args, "--workers", "1", "--out", str(tmp_path / "serial"))
    assert serial.returncode == 0, serial.stderr[-2000:]

    started = tmp_path / "started-on-the-second-node"
    started.mkdir()
    cluster = subprocess.Popen([sys.executable, str(HERE / "ray_cluster.py"), str(started)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        address = cluster.stdout.readline().split()[1]
        worker_node = cluster.stdout.readline().split()[1][:12]
        out = tmp_path / "ray"
        run = start_evoart("evolve", *args, "--executor", "ray", "--ray-address", address, "--out", str(out))
        # mid-generation 0: the second node has just started an individual
        assert wait_until(lambda: any(started.iterdir()), timeout=120), run.stderr.read()[-3000:] if run.poll() else ""
        lost = next(started.iterdir()).name
        cluster.stdin.write("remove\n")
        cluster.stdin.flush()
        assert cluster.stdout.readline().strip() == "removed"
        stdout, stderr = run.communicate(timeout=240)
        assert run.returncode == 0, stderr[-3000:]
    finally:
        if cluster.poll() is None:
            cluster.stdin.write("stop\n")
            cluster.stdin.flush()
            cluster.wait(timeout=60)
    got = only_run(out)
    assert snapshot(got) == snapshot(only_run(tmp_path / "serial"))  # every individual, score and judge cell
    with ledger(got) as c:
        nodes = {r[0]: json.loads(r[1]).get("node") for r in c.execute("SELECT id, timings FROM individual")}
    assert lost.startswith("g000-") and nodes[lost] != worker_node  # its task was rescheduled on the head
    assert set(nodes.values()) == {nodes[lost]}  # the second node finished nothing: it was lost at its first


def test_a_lone_individual_gets_the_idle_cpus_but_never_more_than_a_node_has(local_ray, ctx):
    ex = RayExecutor(ctx)
    try:
        lone, pair = EvalTask(id="a", genome={}, seed=0, steps=1, cohort=1), EvalTask(id="b", genome={}, seed=0, steps=1, cohort=2)
        assert ex.unit_cpus([lone]) == 2 and ex.unit_cpus([pair]) == 1
        assert ex.unit_cpus([EvalTask(id="c", genome={}, seed=0, steps=1)]) == 1  # cohort unknown
    finally:
        ex.close()
