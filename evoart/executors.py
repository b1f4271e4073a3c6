"""``map`` implementations for evaluating a generation: in this process, or in a pool of
worker processes (one torch thread each on the CPU).

What an executor hands out is a *work unit* (``work_units``, ``fitness.group_tasks``):
one individual; with ``--batched on``, a group of GAN individuals of one architecture
that train together in one batched pass (``evoart.batched``); or, with ``--interleave N``,
a pack of up to N GAN individuals that train at once, a step of each in turn, each on
its own CUDA stream (``train.train_interleaved``). A unit is the smallest thing that runs
in one worker; each of its individuals still yields its own ``Evaluation``, scored on its
own. ``evoart.ray_executor`` hands out the same units as
Ray tasks.

An executor's ``map(tasks)`` yields ``Evaluation`` results as they finish, so the driver
can commit each individual the moment it is done. A worker that dies (out of memory, a
segfault) marks its individual failed; the pool is rebuilt and the rest go on. Workers
die with the driver: nothing is left running after a kill.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
from typing import Callable, Iterable, Iterator

from .ar_genes import estimate_ar_sample_cost
from .faults import fault_point
from .genome import Genome, GenomeError, estimate_step_macs
from .fitness import EvalContext, EvalTask, Evaluation, evaluate, evaluate_group, failed, group_tasks

# progress(individual id, step, total steps)
StepProgress = Callable[[str, int, int], None]



def set_torch_threads(device: str, threads: int = 1) -> None:
    """On these small CPUs torch's default of one thread per core collapses as soon as a
    second process is busy (measured 5-30x slower), so each worker uses one thread.

    Process-wide: called at worker start-up and by the command line's entry, never by
    the library on its caller's behalf (a notebook keeps the threads it chose)."""
    import torch

    if device == "cpu" or device == "auto":
        torch.set_num_threads(threads)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass  # already set in this process


#: Rough speeds for ordering a generation's work (``estimated_seconds``), fitted to a
#: mixed default-size run's generations 0-1 on a 2-core Xeon (2026-12-02): a GAN trains at
#: about 13 G multiply-adds/s on one thread, an AR model at about 7 (overhead-bound, scans
#: included), and AR sampling runs about 7 G of ``estimate_ar_sample_cost`` a second.
GAN_MACS_PER_S = 13e9
AR_MACS_PER_S = 7e9
AR_SAMPLE_COST_PER_S = 7e9


def estimated_seconds(task: EvalTask, ctx: EvalContext) -> float:
    """A rough estimate of what evaluating ``task`` costs, for dispatch order only
    (nothing selects on it): its training steps, and an AR individual's samples. A
    genome that cannot be read costs 0 (its evaluation fails fast anyway)."""
    try:
        genome = Genome.from_dict(task.genome)
    except GenomeError:
        return 0.0
    macs = task.steps * estimate_step_macs(genome, ctx.resolution)
    if genome.family != "ar":
        return macs / GAN_MACS_PER_S
    return macs / AR_MACS_PER_S + ctx.samples * estimate_ar_sample_cost(genome.ar, ctx.resolution) / AR_SAMPLE_COST_PER_S


def costliest_first(tasks: list[EvalTask], ctx: EvalContext) -> list[EvalTask]:
    """The tasks with the longest estimated first (ties in their own order): a pool that
    starts the long ones first does not end a generation waiting on one that started last
    (longest-processing-time scheduling). Results do not depend on the order: each
    individual's seed and inputs are its own."""
    return sorted(tasks, key=lambda t: -estimated_seconds(t, ctx))


def work_units(tasks: list[EvalTask], ctx: EvalContext, workers: int = 1) -> list[list[EvalTask]]:
    """What the executor hands out: the generation's tasks in groups (``fitness.group_tasks``:
    one individual each, a batched group of one architecture, or an interleaved pack, packs
    small enough that ``workers`` all get one), costliest first."""
    groups = group_tasks(costliest_first(list(tasks), ctx), ctx, workers=workers)
    return sorted(groups, key=lambda g: -sum(estimated_seconds(t, ctx) for t in g))


def worker_threads(device: str, workers: int, threads: int = 1) -> int:
    """A pool worker's torch threads. On the CPU, ``threads`` (one: training is the CPU's
    work, and busy processes on default threads collapse). On a GPU, the machine's cores
    shared out among the workers: training runs on the card, and what still runs on the
    CPU (on CUDA, scoring's cheap rest: the ornaments and colour measures, 50 ms an
    individual on one thread; on MPS all of scoring, 0.37 s) would otherwise use one core
    of the many a GPU machine has."""
    if str(device).startswith(("cuda", "mps")):
        return max(threads, (os.cpu_count() or 1) // max(1, workers))
    return threads


def driver_threads(workers: int) -> int:
    """Torch threads for the driver process: one when it trains itself (one worker), else
    up to two, for the judging pass it runs between generations while workers wait."""
    return 1 if workers <= 1 else max(1, min(2, os.cpu_count() or 1))


class SerialExecutor:
    """Evaluates in this process, in order, with the caller's torch threads. Simple and
    debuggable; the default on GPUs with one worker."""

    def __init__(self, ctx: EvalContext, progress: StepProgress | None = None):
        self.ctx = ctx
        self.progress = progress

    def map(self, tasks: Iterable[EvalTask]) -> Iterator[Evaluation]:
        tasks = list(tasks)
        if not self.ctx.batched and self.ctx.interleave <= 1:  # in the order given
            for task in tasks:
                cb = (lambda s, t, _id=task.id: self.progress(_id, s, t)) if self.progress else None
                yield evaluate(task, self.ctx, cb)
            return
        for group in work_units(tasks, self.ctx):
            yield from evaluate_group(group, self.ctx, self.progress)

    def close(self) -> None:
        pass


# ---- process pool ------------------------------------------------------------------------

_WORKER_CTX: EvalContext | None = None
_WORKER_QUEUE = None


def _die_with_parent() -> None:
    """Linux: ask the kernel to SIGKILL this worker when the driver dies. Elsewhere, a
    watchdog thread notices the parent is gone."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except OSError:
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch():
        import time

        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(1.0)

    threading.Thread(target=watch, daemon=True).start()


def worker_device(device: str, slot: int, gpus: int) -> str:
    """The device a pool's ``slot``-th worker trains on: with ``cuda`` (no index) and
    several GPUs, worker i takes ``cuda:{i mod gpus}``, so a pool of one worker per GPU
    uses every card and more workers share them evenly; any other device (``cuda:N``
    included, which pins the run to one card) is every worker's."""
    if device == "cuda" and gpus > 1:
        return f"cuda:{slot % gpus}"
    return device


def default_workers(device: str) -> int | None:
    """Workers for a run that did not choose: one per GPU where ``device`` is ``cuda``
    (or ``auto`` resolving to it) and torch sees several, else None (the configuration's
    own default)."""
    import torch

    if device not in ("cuda", "auto") or not torch.cuda.is_available():
        return None
    gpus = torch.cuda.device_count()
    return gpus if gpus > 1 else None


def _worker_init(ctx: EvalContext, progress_queue, threads: int, slots=None) -> None:
    global _WORKER_CTX, _WORKER_QUEUE
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    _die_with_parent()
    if slots is not None and ctx.device == "cuda":
        import torch

        with slots.get_lock():
            slot, slots.value = slots.value, slots.value + 1
        device = worker_device(ctx.device, slot, torch.cuda.device_count())
        if device != ctx.device:
            torch.cuda.set_device(device)
            ctx = dataclasses.replace(ctx, device=device)
    set_torch_threads(ctx.device, threads)
    _WORKER_CTX = ctx
    _WORKER_QUEUE = progress_queue


def task_threads(task: EvalTask, workers: int, threads: int, device: str) -> int:
    """Torch threads for ``task`` in a pool of ``workers`` with ``threads`` each: on the
    CPU, a generation of fewer individuals than workers (halving's last ones train one
    or two) shares out the idle workers' threads, so a lone individual is not left on
    one core while the other waits. Decided by the generation's size, never by what is
    still pending, so a resumed generation trains with the threads it had."""
    if device not in ("cpu", "auto") or task.cohort <= 0 or task.cohort >= workers:
        return threads
    return max(threads, min(threads * (workers // task.cohort), os.cpu_count() or 1))


def _worker_evaluate(tasks: list[EvalTask], threads: int = 1) -> list[Evaluation]:
    """Evaluate one work unit (an individual, a batched group or an interleaved pack) in a worker."""
    q = _WORKER_QUEUE
    for task in tasks:
        if q is not None:
            q.put(("start", task.id, os.getpid()))
        fault_point("evaluate", individual=task.id)

    def report(task_id: str, step: int, total: int) -> None:
        if q is not None:
            q.put(("step", task_id, step, total))

    import torch

    before = torch.get_num_threads()
    if threads != before:
        torch.set_num_threads(threads)
    try:
        evs = evaluate_group(tasks, _WORKER_CTX, report)
    finally:
        if threads != before:
            torch.set_num_threads(before)
    for ev in evs:
        ev.timings["threads"] = threads
        if len(tasks) > 1:
            ev.timings["group"] = len(tasks)
    return evs


class ProcessExecutor:
    """A pool of ``workers`` processes, each with its own copy of the context."""

    def __init__(self, ctx: EvalContext, workers: int, progress: StepProgress | None = None, threads: int = 1):
        self.ctx = ctx
        self.workers = workers
        self.threads = worker_threads(ctx.device, workers, threads)
        self.progress = progress
        self._mp = mp.get_context("spawn")
        self._queue = self._mp.Queue()
        self._slots = self._mp.Value("i", 0)  # workers started, each takes the next GPU (worker_device)
        self._started: dict[str, int] = {}
        self._pool: cf.ProcessPoolExecutor | None = None
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read_progress, daemon=True)
        self._reader.start()

    def _read_progress(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self._queue.get(timeout=0.2)
            except (queue.Empty, OSError, EOFError, ValueError):
                continue
            if msg[0] == "start":
                self._started[msg[1]] = msg[2]
            elif msg[0] == "step" and self.progress is not None:
                try:
                    self.progress(msg[1], msg[2], msg[3])
                except Exception:
                    pass  # a display problem must never stop evaluation

    def _new_pool(self, workers: int) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(
            max_workers=workers, mp_context=self._mp,
            initializer=_worker_init, initargs=(self.ctx, self._queue, self.threads, self._slots),
        )

    def _pool_or_new(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = self._new_pool(self.workers)
            warm_driver_imports()
        return self._pool

    def map(self, tasks: Iterable[EvalTask]) -> Iterator[Evaluation]:
        """Yield results as they complete. When a worker dies, the individuals that were
        running are retried one at a time in a fresh pool; one that kills its worker again
        is marked failed (so an innocent neighbour is never blamed)."""
        pending = work_units(list(tasks), self.ctx, self.workers)
        suspects: list[EvalTask] = []
        breaks: dict[str, int] = {}
        while pending:
            pool = self._pool_or_new()
            self._started.clear()
            futures = {pool.submit(_worker_evaluate, g, task_threads(g[0], self.workers, self.threads, self.ctx.device)): g
                       for g in pending}
            pending = []
            broken = False
            for fut in cf.as_completed(futures):
                group = futures[fut]
                try:
                    yield from fut.result()
                except cf.process.BrokenProcessPool:
                    broken = True
                    # a group that died is retried one individual at a time
                    for task in group:
                        breaks[task.id] = breaks.get(task.id, 0) + 1
                        if task.id in self._started or breaks[task.id] >= 2:
                            suspects.append(task)
                        else:
                            pending.append([task])
            if broken:
                self._shutdown_pool()
                for task in suspects:
                    yield self._run_alone(task)
                suspects = []

    def _run_alone(self, task: EvalTask) -> Evaluation:
        pool = self._new_pool(1)
        try:
            return pool.submit(_worker_evaluate, [task], self.threads).result()[0]
        except cf.process.BrokenProcessPool:
            return failed(task.id, "its worker process died (out of memory or a crash) twice")
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _shutdown_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def terminate(self) -> None:
        """Stop now (Ctrl-C): kill the workers rather than wait for their individuals."""
        if self._pool is not None:
            for p in list(getattr(self._pool, "_processes", {}).values()):
                try:
                    p.kill()
                except Exception:
                    pass
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        self._shutdown_pool()
        self._stop.set()
        self._reader.join(timeout=2)
        self._queue.close()


_WARMING: threading.Thread | None = None


def warm_driver_imports() -> None:
    """Import, in a background thread, what the driver's first optimiser needs while the
    workers train: constructing a torch optimiser imports ``torch._dynamo`` (0.9 s on
    this project's CPU), and a pool's driver builds its first one for the fresh critic,
    after the generation's last individual, while every worker waits. Once a process;
    not a daemon, so an interpreter never exits halfway through an import."""
    global _WARMING
    if _WARMING is not None or "torch._dynamo" in sys.modules:
        return

    def warm() -> None:
        try:
            import torch._dynamo  # noqa: F401
        except Exception:  # noqa: BLE001 - the optimiser would import it again, and say why
            pass

    _WARMING = threading.Thread(target=warm, name="evoart-warm-imports")
    _WARMING.start()


def make_executor(ctx: EvalContext, workers: int, progress: StepProgress | None = None):
    if workers <= 1:
        return SerialExecutor(ctx, progress)
    return ProcessExecutor(ctx, workers, progress)
