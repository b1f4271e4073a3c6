"""A ``map`` over a Ray cluster (``--executor ray``): a generation's work units (an
individual, a batched group of one architecture, or an interleaved pack:
``executors.work_units``) as Ray tasks, on as many machines and GPUs as the cluster has.

- The evaluation context (the dataset tensors, the fixed latents, the floors) is put in
  Ray's object store once (``ray.put``) and fetched once per worker process, not shipped
  with every task.
- Workers are reused across tasks (``max_calls=0``: Ray would otherwise start a fresh
  process for every GPU task) and set their torch threads to their CPU allotment.
- Results (objectives, metrics, samples, weights) come back to the driver, which stays
  the only writer of the ledger.
- A worker or node that dies is retried by Ray (``max_retries``); an evaluation that kills
  its worker every time is marked failed after the retries (a group's members are then
  tried once more one at a time, so one bad member cannot fail the others), and the
  generation goes on. An evaluation that raises is failed by ``fitness.evaluate`` itself.
- Training progress reaches the driver's callback through a small Ray actor.
- No task waits on Ray inside (no ``ray.get``): a blocked task gives its CPU back and
  Ray would start another on the same core.
- At start every node is asked for its evoart and torch versions; a node that differs
  from the driver is refused with both versions named.

Ray is an optional dependency (``pip install 'evoart[ray]'``); nothing imports it until
an executor is made.
"""

from __future__ import annotations

import os
import platform
import threading
from typing import Iterable, Iterator

from .errors import EvoartError
from .executors import StepProgress, set_torch_threads, warm_driver_imports, work_units
from .faults import fault_point
from .fitness import EvalContext, EvalTask, Evaluation, evaluate_group, failed

#: Ray retries a task whose worker or node died this many times before it is failed.
MAX_RETRIES = 2
VERSION_TIMEOUT_S = 60


class RayExecutorError(EvoartError, RuntimeError):
    """Ray is missing, unreachable, or its nodes run another evoart or torch."""


def import_ray():
    try:
        import ray
    except ImportError:
        raise RayExecutorError("--executor ray needs Ray, which is not installed here: "
                               "pip install 'evoart[ray]' (or use --executor local)") from None
    return ray


def ray_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None


# ---- in the worker -------------------------------------------------------------------------

_CONTEXTS: dict[tuple[str, str], EvalContext] = {}


def _context(ctx: EvalContext, key: str, device: str) -> EvalContext:
    """The run's context as this worker process first received it, so the scorers it
    built (lazily, on the first individual) serve every later task of the run."""
    cached = _CONTEXTS.get((key, device))
    if cached is None:
        if device != ctx.device:
            ctx.device = device
        cached = _CONTEXTS[(key, device)] = ctx
    return cached


def _worker_device(ctx_device: str, gpus: float) -> str:
    """Where a task trains: the GPU Ray gave it (``CUDA_VISIBLE_DEVICES``), when it asked
    for one and torch sees it; else the driver's device, or the CPU if that is a GPU
    this node does not have."""
    import torch

    if gpus > 0 and torch.cuda.is_available():
        return "cuda"
    if str(ctx_device).startswith("cuda") and not torch.cuda.is_available():
        return "cpu"
    return ctx_device


def _evaluate_unit(tasks: list[EvalTask], ctx: EvalContext, key: str, sink, threads: int, gpus: float,
                   ctx_device: str) -> list[Evaluation]:
    """A Ray task: evaluate one work unit in this worker (``fitness.evaluate_group``).

    Nothing here waits on Ray (no ``ray.get``): a task blocked in ``ray.get`` hands its
    CPU back, Ray starts another task on it, and two trainings then share one core
    (measured: a default run 35% slower). The context comes as a resolved argument;
    progress goes out fire-and-forget."""
    import torch

    device = _worker_device(ctx_device, gpus)
    set_torch_threads(device if device == "cpu" else "cuda", threads)
    ctx = _context(ctx, key, device)
    for task in tasks:
        fault_point("evaluate", individual=task.id)

    def report(task_id: str, step: int, total: int) -> None:
        try:
            sink.put.remote(task_id, step, total)
        except Exception:
            pass  # a lost progress actor must never stop training

    evs = evaluate_group(tasks, ctx, report)
    for ev in evs:
        ev.timings["threads"] = torch.get_num_threads()
        ev.timings["node"] = import_ray().get_runtime_context().get_node_id()[:12]  # which Ray node
        if len(tasks) > 1:
            ev.timings["group"] = len(tasks)
    return evs  # the driver reports each result's last step itself (RayExecutor._report_done)


class _ProgressSink:
    """A Ray actor that collects workers' progress reports for the driver to drain."""

    def __init__(self):
        self.items: list[tuple[str, int, int]] = []

    def put(self, task_id: str, step: int, total: int) -> None:
        self.items.append((task_id, step, total))

    def drain(self) -> list[tuple[str, int, int]]:
        items, self.items = self.items, []
        return items


def _versions() -> dict:
    import torch

    from . import __version__

    return {"evoart": __version__, "torch": torch.__version__, "host": platform.node(), "pid": os.getpid()}


def _node_versions() -> dict:
    """A Ray task: the versions on the node it runs on."""
    return _versions()


def _probe() -> dict:
    """What a task of this executor sees: its GPUs and threads (for tests and ``doctor``)."""
    import torch

    return {"CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"), "threads": torch.get_num_threads(),
            "pid": os.getpid()}


# ---- in the driver -------------------------------------------------------------------------

class RayExecutor:
    """``map`` over Ray. Connects to ``address`` (``auto``, ``ray://HOST:PORT`` or
    ``HOST:PORT``), or starts a local Ray instance when there is none and no address
    (shut down again by ``close``); an instance the caller already started is used as it is."""

    def __init__(self, ctx: EvalContext, *, address: str | None = None, cpus_per_individual: int = 1,
                 gpus_per_individual: float = 0.0, progress: StepProgress | None = None,
                 max_retries: int = MAX_RETRIES, runtime_env: dict | None = None):
        ray = import_ray()
        self.ctx = ctx
        self.progress = progress
        self.cpus = max(1, int(cpus_per_individual))
        self.gpus = float(gpus_per_individual or 0.0)
        self._owns = False
        if not ray.is_initialized():
            try:
                if address:
                    ray.init(address=address, log_to_driver=False, logging_level="error")
                else:
                    ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                             logging_level="error")
                    self._owns = True
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise RayExecutorError(f"could not connect to the Ray cluster at {address or 'a new local instance'}: "
                                       f"{exc}. Start one with `ray start --head`, or drop --ray-address to "
                                       "run a local instance") from None
        self._ray = ray
        try:
            check_versions(ray)
            options = {"num_cpus": self.cpus, "num_gpus": self.gpus, "max_retries": max_retries, "max_calls": 0}
            if runtime_env:
                options["runtime_env"] = runtime_env
            # max_calls goes with the function (Ray refuses it in .options())
            self._remote = ray.remote(**options)(_evaluate_unit)
            self._probe_remote = ray.remote(**options)(_probe)
            self._ctx_ref = ray.put(ctx)  # once: every task gets the reference, not the tensors
            self._sink = ray.remote(num_cpus=0)(_ProgressSink).remote()
        except BaseException:
            self._shutdown()
            raise
        self._outstanding: set = set()
        self._reported: dict[str, int] = {}  # id -> the last step passed on
        warm_driver_imports()  # as a process pool's driver does: its first critic's optimiser needs it
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read_progress, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        try:
            items = self._ray.get(self._sink.drain.remote(), timeout=10)
        except Exception:
            return
        for task_id, step, total in items:
            self._report(task_id, step, total)

    def _report(self, task_id: str, step: int, total: int) -> None:
        """Pass one report on, unless a later step of that individual already went: the
        reader thread's reports and the one made when a result arrives may cross."""
        if self.progress is None:
            return
        with self._lock:
            if step <= self._reported.get(task_id, 0):
                return
            self._reported[task_id] = step
            try:
                self.progress(task_id, step, total)
            except Exception:
                pass  # a display problem must never stop evaluation

    def _report_done(self, unit: list[EvalTask], evs: list[Evaluation]) -> None:
        """A result's last step, reported when the result arrives. The workers' reports
        are fire-and-forget, and on a busy machine the last of them can still be on its
        way to the progress actor (or lost with it) when the result is here; the display
        must not be left short of a finished individual."""
        steps = {t.id: t.steps for t in unit}  # every family reports (step, the task's steps)
        for ev in evs:
            done = int((ev.stats or {}).get("steps") or 0)
            if done > 0 and ev.id in steps:
                self._report(ev.id, done, steps[ev.id])

    def _read_progress(self) -> None:
        while not self._stop.wait(0.25):
            self._drain()

    def slots(self) -> int:
        """How many work units the cluster runs at once (its GPUs over
        ``gpus_per_individual``, else its CPUs over ``cpus_per_individual``): interleaved
        packs are sized so that each gets one (``fitness.group_tasks``)."""
        if self.ctx.interleave <= 1:
            return 1  # no packs to size
        res = self._ray.cluster_resources()
        if self.gpus > 0:
            return max(1, int(res.get("GPU", 0) / self.gpus))
        return max(1, int(res.get("CPU", 1) // self.cpus))

    def unit_cpus(self, unit: list[EvalTask]) -> int:
        """CPUs (and torch threads) for ``unit``: ``cpus_per_individual``, or on the CPU,
        for a generation of fewer individuals than the cluster has CPUs for (halving's
        last ones train one or two), a share of the idle ones, as the process pool gives
        (``executors.task_threads``), never more than the largest node has. Decided by
        the generation's size and the cluster, not by what is still pending."""
        cohort = unit[0].cohort
        if self.gpus > 0 or cohort <= 0 or str(self.ctx.device).startswith("cuda"):
            return self.cpus
        alive = [n["Resources"].get("CPU", 0) for n in self._ray.nodes() if n.get("Alive")]
        if not alive:
            return self.cpus
        share = int(sum(alive) // cohort)
        return max(self.cpus, min(share, int(max(alive))))

    def _submit(self, unit: list[EvalTask]):
        cpus = self.unit_cpus(unit)
        remote = self._remote if cpus == self.cpus else self._remote.options(num_cpus=cpus)
        return remote.remote(unit, self._ctx_ref, self._ctx_ref.hex(), self._sink, cpus, self.gpus, self.ctx.device)

    def map(self, tasks: Iterable[EvalTask]) -> Iterator[Evaluation]:
        """Yield results as they complete, in completion order."""
        ray = self._ray
        with self._lock:
            self._reported = {}  # a later call may train an id again (a resumed rung), from step 1
        refs = {self._submit(unit): unit for unit in work_units(list(tasks), self.ctx, self.slots())}
        self._outstanding = set(refs)
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            for ref in done:
                unit = refs.pop(ref)
                self._outstanding.discard(ref)
                try:
                    evs = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    if len(unit) > 1:  # one member may be what kills it: each alone, once more
                        for task in unit:
                            again = self._submit([task])
                            refs[again] = [task]
                            self._outstanding.add(again)
                        continue
                    evs = [failed(unit[0].id, f"its Ray worker died {1 + MAX_RETRIES} times "
                                              f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")]
                self._report_done(unit, evs)
                yield from evs

    def probe(self) -> dict:
        """Run one task with this executor's resources; returns what it saw."""
        return self._ray.get(self._probe_remote.remote())

    def terminate(self) -> None:
        """Stop now (Ctrl-C): cancel every outstanding task."""
        for ref in list(self._outstanding):
            try:
                self._ray.cancel(ref, force=True)
            except Exception:
                pass
        self._outstanding.clear()

    def _shutdown(self) -> None:
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
            self._owns = False

    def close(self) -> None:
        self._stop.set()
        self._reader.join(timeout=2)
        self._drain()  # the last reports, sent before the tasks' results came back
        try:
            self._ray.kill(self._sink)
        except Exception:
            pass
        self._shutdown()


def check_versions(ray) -> None:
    """Refuse a cluster whose nodes run another evoart or torch than this driver."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    mine = _versions()
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    remote = ray.remote(_node_versions)
    refs = {n["NodeManagerAddress"] + " (" + n["NodeID"][:8] + ")": remote.options(
        num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote()
        for n in nodes}
    try:
        got = dict(zip(refs, ray.get(list(refs.values()), timeout=VERSION_TIMEOUT_S)))
    except ray.exceptions.GetTimeoutError:
        raise RayExecutorError(f"the Ray cluster's nodes did not answer within {VERSION_TIMEOUT_S} s "
                               "(are their workers able to import evoart?)") from None
    except ray.exceptions.RayError as exc:
        raise RayExecutorError(f"a Ray node could not run evoart: {str(exc).splitlines()[0][:300]}. Install the "
                               "same evoart and torch on every node") from None
    for where, theirs in got.items():
        if (theirs["evoart"], theirs["torch"]) != (mine["evoart"], mine["torch"]):
            raise RayExecutorError(
                f"Ray node {where} runs evoart {theirs['evoart']} with torch {theirs['torch']}, but this driver "
                f"runs evoart {mine['evoart']} with torch {mine['torch']}: install the same versions on every node")
