"""A ``map`` over a Ray cluster (``--executor ray``): a generation's work units (an
individual, or a batched group of one architecture: ``executors.work_units``) as Ray
tasks, on as many machines and GPUs as the cluster has.

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
- Training progress reaches the driver's callback through a Ray queue.
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
from .executors import StepProgress, set_torch_threads, work_units
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


def _context(box: list, device: str) -> EvalContext:
    """The run's context, fetched from the object store once per worker process."""
    ray = import_ray()
    ref = box[0]
    key = (ref.hex(), device)
    if key not in _CONTEXTS:
        ctx = ray.get(ref)
        if device != ctx.device:
            ctx.device = device
        _CONTEXTS[key] = ctx
    return _CONTEXTS[key]


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


def _evaluate_unit(tasks: list[EvalTask], box: list, queue, threads: int, gpus: float,
                   ctx_device: str) -> list[Evaluation]:
    """A Ray task: evaluate one work unit in this worker (``fitness.evaluate_group``)."""
    import torch

    device = _worker_device(ctx_device, gpus)
    set_torch_threads(device if device == "cpu" else "cuda", threads)
    ctx = _context(box, device)
    for task in tasks:
        fault_point("evaluate", individual=task.id)

    def report(task_id: str, step: int, total: int) -> None:
        try:
            queue.put_nowait(("step", task_id, step, total))
        except Exception:
            pass  # a full or lost queue must never stop training

    evs = evaluate_group(tasks, ctx, report)
    for ev in evs:
        ev.timings["threads"] = torch.get_num_threads()
        ev.timings["node"] = import_ray().get_runtime_context().get_node_id()[:12]  # which Ray node
        if len(tasks) > 1:
            ev.timings["group"] = len(tasks)
    if device.startswith("cuda"):
        torch.cuda.empty_cache()  # the next task may be another architecture
    return evs


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
                    ray.init(address=address, log_to_driver=False, logging_level="warning")
                else:
                    ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                             logging_level="warning")
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
            self._box = [ray.put(ctx)]  # once: every task gets the reference, not the tensors
            from ray.util.queue import Queue

            self._queue = Queue(actor_options={"num_cpus": 0})
        except BaseException:
            self._shutdown()
            raise
        self._outstanding: set = set()
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read_progress, daemon=True)
        self._reader.start()

    def _read_progress(self) -> None:
        from ray.util.queue import Empty

        while not self._stop.is_set():
            try:
                msgs = [self._queue.get(block=True, timeout=0.2)]
                msgs += self._queue.get_nowait_batch(self._queue.qsize())
            except Empty:
                continue
            except Exception:
                if self._stop.is_set():
                    return
                continue
            for msg in msgs:
                if msg[0] == "step" and self.progress is not None:
                    try:
                        self.progress(msg[1], msg[2], msg[3])
                    except Exception:
                        pass  # a display problem must never stop evaluation

    def _submit(self, unit: list[EvalTask]):
        return self._remote.remote(unit, self._box, self._queue, self.cpus, self.gpus, self.ctx.device)

    def map(self, tasks: Iterable[EvalTask]) -> Iterator[Evaluation]:
        """Yield results as they complete, in completion order."""
        ray = self._ray
        refs = {self._submit(unit): unit for unit in work_units(list(tasks), self.ctx)}
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
        try:
            self._queue.shutdown()
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
