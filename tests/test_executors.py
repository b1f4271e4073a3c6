"""Executors as the driver relies on them: one ``Evaluation`` per task, yielded as each
finishes; training progress reaches the caller's callback; a worker that dies fails only
its own individual and the rest still finish; ``close()`` leaves no worker behind; and the
driver's torch threads follow the number of workers."""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os

import pytest

from evoart import executors, fitness
from evoart.executors import (ProcessExecutor, SerialExecutor, costliest_first, driver_threads, make_executor,
                              task_threads)
from evoart.faults import ENV as FAULT_ENV
from evoart.fitness import EvalContext, EvalTask, Evaluation, evaluate

from genomes import tiny_context, tiny_genome

RES = 16
STEPS = 3




@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> EvalContext:
    return tiny_context(tmp_path_factory.mktemp("cache"))


def task(i: int, steps: int = STEPS) -> EvalTask:
    return EvalTask(id=f"g000-i{i:02d}", genome=tiny_genome().to_dict(), seed=i, steps=steps)


def run_pool(ctx: EvalContext, tasks: list[EvalTask], workers: int = 2):
    """Map ``tasks`` through a fresh pool and close it. Returns the evaluations in the
    order they came, the progress calls, the worker processes seen while it ran, and the
    processes it started that are still alive after ``close()``."""
    steps: list[tuple[str, int, int]] = []
    seen: dict[int, mp.Process] = {}

    def progress(i, s, t):  # called while a worker trains: note which processes are up
        steps.append((i, s, t))
        seen.update({p.pid: p for p in mp.active_children()})

    before = {p.pid for p in mp.active_children()}
    pool = ProcessExecutor(ctx, workers, progress=progress)
    got: list[Evaluation] = []
    try:
        for ev in pool.map(tasks):
            got.append(ev)
    finally:
        pool.close()
    left = [p.pid for p in mp.active_children() if p.pid not in before]
    return got, steps, list(seen.values()), left


def assert_no_worker_alive(workers: list[mp.Process], left: list[int]) -> None:
    assert workers, "the pool should have started worker processes"
    assert not [p.pid for p in workers if p.is_alive()]
    assert left == []  # nor any other process the pool started


# ---- in this process ---------------------------------------------------------------------


def test_the_serial_executor_yields_one_evaluation_per_task_in_order_with_progress(ctx):
    steps = []
    tasks = [task(i) for i in range(3)]
    got = list(SerialExecutor(ctx, progress=lambda i, s, t: steps.append((i, s, t))).map(tasks))
    assert [ev.id for ev in got] == [t.id for t in tasks]
    assert all(isinstance(ev, Evaluation) and ev.status == "ok" for ev in got), [ev.reason for ev in got]
    assert [(i, s) for i, s, _ in steps] == [(t.id, s) for t in tasks for s in range(1, STEPS + 1)]
    assert {t for _, _, t in steps} == {STEPS}
    # the same individual as evaluating it directly
    assert got[1].metrics == evaluate(tasks[1], ctx).metrics


def test_the_serial_executor_runs_without_a_progress_callback(ctx):
    assert [ev.status for ev in SerialExecutor(ctx).map([task(0, steps=1)])] == ["ok"]


def test_one_worker_means_this_process_and_more_mean_a_pool(ctx):
    assert isinstance(make_executor(ctx, 1), SerialExecutor)
    pool = make_executor(ctx, 2)
    try:
        assert isinstance(pool, ProcessExecutor) and pool.workers == 2
    finally:
        pool.close()


# ---- the process pool --------------------------------------------------------------------


@pytest.mark.slow  # one of make test-fast's slowest (2026-12-02, a slow hour: the suite at 3:18)
def test_the_pool_yields_every_result_with_progress_and_leaves_no_worker_behind(ctx):
    # (which comes back first is up to the scheduler: not asserted, a loaded machine decides)
    slow, quick = task(0, steps=60), [task(1), task(2)]
    got, steps, workers, left = run_pool(ctx, [slow, *quick])
    assert sorted(ev.id for ev in got) == [slow.id] + [t.id for t in quick]
    assert all(ev.status == "ok" for ev in got), [ev.reason for ev in got]
    # every individual's progress reaches the callback, up to its last step
    for t in (slow, *quick):
        mine = [(s, total) for i, s, total in steps if i == t.id]
        assert mine and mine[-1] == (t.steps, t.steps), t.id
        assert [s for s, _ in mine] == sorted(s for s, _ in mine)
    # a worker scores an individual as the driver itself would (one torch thread each)
    direct = evaluate(quick[0], ctx)  # (conftest starts every test on one thread)
    assert next(ev for ev in got if ev.id == quick[0].id).metrics == pytest.approx(direct.metrics, rel=1e-6)
    assert {ev.timings["threads"] for ev in got} == {1}  # three individuals for two workers: one thread each
    assert_no_worker_alive(workers, left)


def test_a_generation_smaller_than_the_pool_shares_out_the_idle_workers_threads():
    """Halving's last generations train one individual: it gets both workers' threads,
    decided by the generation's size (a resumed generation with one individual left of
    three keeps one thread, as it had); never on a GPU, never past the machine's cores."""
    def t(cohort):
        return EvalTask(id="g005-i00", genome={}, seed=0, steps=1, cohort=cohort)

    cores = os.cpu_count() or 1
    assert task_threads(t(1), 2, 1, "cpu") == min(2, cores)
    assert task_threads(t(1), 4, 1, "cpu") == min(4, cores)
    assert task_threads(t(2), 4, 1, "cpu") == min(2, cores)
    assert task_threads(t(3), 2, 1, "cpu") == 1   # as many or more individuals than workers
    assert task_threads(t(0), 2, 1, "cpu") == 1   # a task that does not say
    assert task_threads(t(1), 2, 1, "cuda") == 1


def test_the_pool_starts_the_costliest_individuals_first(ctx, monkeypatch):
    """A generation's longest evaluations go to the workers first, so that none starts
    last and keeps the rest waiting: more steps cost more, an AR individual pays for its
    samples too, and a genome that cannot be read goes last (it fails at once)."""
    from evoart.presets import load_preset

    ar = load_preset("ar-geodesic").genome.to_dict()
    gan = tiny_genome().to_dict()
    tasks = [EvalTask(id="short", genome=gan, seed=0, steps=10),
             EvalTask(id="broken", genome={"nonsense": 1}, seed=0, steps=1000),
             EvalTask(id="long", genome=gan, seed=0, steps=100),
             EvalTask(id="ar", genome=ar, seed=0, steps=100),
             EvalTask(id="short-too", genome=gan, seed=0, steps=10)]
    assert [t.id for t in costliest_first(tasks, ctx)] == ["ar", "long", "short", "short-too", "broken"]
    # the pool submits in that order (the workers take the queue's head first)
    submitted = []
    monkeypatch.setattr(ProcessExecutor, "_pool_or_new", lambda self: _Recorder(submitted))
    pool = ProcessExecutor(ctx, 2)
    try:
        got = list(pool.map(tasks))
    finally:
        pool.close()
    assert submitted == ["ar", "long", "short", "short-too", "broken"] and len(got) == 5


class _Recorder:
    """A stand-in pool that records what is submitted, in order, and answers at once."""

    def __init__(self, log):
        self.log = log

    def submit(self, fn, unit, threads):  # unit: a work unit, the tasks of one group
        import concurrent.futures as cf

        self.log.extend(t.id for t in unit)
        fut = cf.Future()
        fut.set_result([Evaluation(id=t.id, status="ok") for t in unit])
        return fut


@pytest.mark.slow  # one of make test-fast's slowest (12-25 s here)
def test_a_dead_worker_fails_only_its_individual(ctx, monkeypatch):
    # workers are spawned, so they read the fault from the environment they start with
    monkeypatch.setenv(FAULT_ENV, "crash:g000-i01")
    tasks = [task(i) for i in range(3)]
    got, _, workers, left = run_pool(ctx, tasks)
    assert sorted(ev.id for ev in got) == [t.id for t in tasks]  # each exactly once
    by_id = {ev.id: ev for ev in got}
    dead = by_id.pop("g000-i01")
    assert dead.status == "failed" and "worker process died" in dead.reason
    assert dead.metrics == fitness.WORST
    assert {ev.status for ev in by_id.values()} == {"ok"}, {i: ev.reason for i, ev in by_id.items()}
    assert_no_worker_alive(workers, left)


# ---- torch threads -----------------------------------------------------------------------


@pytest.mark.parametrize("cores, workers, threads", [
    (8, 1, 1),     # the driver trains itself: one thread, like a worker
    (8, 0, 1),
    (8, 2, 2),     # workers train; the driver judges between generations with up to two
    (8, 6, 2),
    (1, 2, 1),     # never more threads than cores
    (None, 2, 1),  # core count unknown
])
def test_driver_threads(monkeypatch, cores, workers, threads):
    monkeypatch.setattr(executors.os, "cpu_count", lambda: cores)
    assert driver_threads(workers) == threads


@pytest.mark.parametrize("device, cores, workers, threads", [
    ("cpu", 16, 2, 1),     # on the CPU one thread a worker: training is the CPU's work
    ("cuda", 16, 2, 8),    # on a GPU the cores are shared out: scoring runs on them
    ("cuda:1", 16, 4, 4),
    ("cuda", 2, 4, 1),     # never fewer than one
    ("cuda", None, 2, 1),  # core count unknown
])
def test_a_gpu_pool_shares_the_machines_cores_among_its_workers(ctx, monkeypatch, device, cores, workers, threads):
    monkeypatch.setattr(executors.os, "cpu_count", lambda: cores)
    assert executors.worker_threads(device, workers) == threads
    pool = executors.ProcessExecutor(dataclasses.replace(ctx, device=device), workers)
    try:
        assert pool.threads == threads
        if device != "cpu":  # what each task of the pool is given: all of the worker's share
            task = EvalTask(id="g000-i00", genome=tiny_genome().to_dict(), seed=0, steps=1, cohort=1)
            assert executors.task_threads(task, workers, pool.threads, device) == threads
    finally:
        pool.close()


def test_a_pool_on_several_gpus_gives_each_worker_its_own_card(ctx, monkeypatch):
    """With --device cuda and several GPUs, the pool's workers take the cards in turn
    (one per GPU, more workers sharing them evenly, a rebuilt pool going on round the
    cards); cuda:N pins every worker to that card, and one GPU is every worker's."""
    import torch

    from evoart.executors import _worker_init, worker_device

    assert [worker_device("cuda", i, 3) for i in range(5)] == ["cuda:0", "cuda:1", "cuda:2", "cuda:0", "cuda:1"]
    assert worker_device("cuda:1", 0, 3) == worker_device("cuda:1", 2, 3) == "cuda:1"
    assert worker_device("cuda", 1, 1) == "cuda"
    assert worker_device("cpu", 1, 4) == "cpu"

    picked = []
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", picked.append)
    monkeypatch.setattr(executors.signal, "signal", lambda *a: None)  # not this test process's Ctrl-C
    monkeypatch.setattr(executors, "_die_with_parent", lambda: None)
    monkeypatch.setattr(executors, "_WORKER_CTX", None)
    slots = mp.get_context("spawn").Value("i", 0)
    on_gpu = dataclasses.replace(ctx, device="cuda")
    devices = []
    for _ in range(3):  # three workers started, as a pool and its rebuild would
        _worker_init(on_gpu, None, 1, slots)
        devices.append(executors._WORKER_CTX.device)
    assert devices == ["cuda:0", "cuda:1", "cuda:0"] == picked
    assert on_gpu.device == "cuda"  # the driver's own context is untouched


def test_a_run_on_several_gpus_defaults_to_one_worker_each(monkeypatch):
    import torch

    from evoart.executors import default_workers

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert default_workers("cuda") == default_workers("auto") == 4
    assert default_workers("cuda:2") is None  # one card asked for: the configuration's default
    assert default_workers("cpu") is None
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert default_workers("cuda") is None
