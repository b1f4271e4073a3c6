"""Training steps captured once and replayed: CUDA graphs for the per-individual path.

A brief GAN training on a GPU is launch-bound: a 32x32 individual's step is a few hundred
small kernels, and the host spends longer issuing them than the card spends running
them (``../shared/ANCHORS.md``: 107 steps/s eager, 714 with the step in a CUDA graph, on
one H100). ``StepGraphs`` runs a step function through static input buffers: its first
``warmup`` calls run eagerly (on a side stream on CUDA, as capture needs), then each
distinct *pattern* of the step (for a GAN, which of its discriminator steps carry the
lazy R1 penalty) is captured once and replayed from then on.

What a captured step may and may not do:

- its inputs are the tensors handed to ``__call__`` each step (batch indices, latents),
  copied into buffers that stay where the graph reads them; everything else it reads
  is a module's parameters and buffers, updated in place;
- it must not read a tensor on the host (no ``float(loss)``): the losses it returns are
  the graph's own outputs, cloned after each replay so that a caller can keep them;
- Python numbers it uses are frozen at capture: an EMA decay that ramps in, or a
  learning-rate schedule, stays outside it;
- optimisers must be capturable (``make_capturable``) and autocast's weight cache off.

A capture that fails (an op that syncs, an unsupported kernel) is not fatal: the step
runs eagerly from then on, every pattern of it, through the same buffers, and
``failures`` says why.
The backend is a parameter so that the logic (buffers, warm-up, patterns, cloning,
fallback) is tested on the CPU with a stand-in that replays by calling the function
again and writing into the captured outputs, as a graph does.

Torch only: no evoart imports (a layer of its own, below ``train``).
"""

from __future__ import annotations

import contextlib
import os
from typing import Callable, Hashable, Sequence

import torch

#: Eager steps before the first capture: lazy initialisation (optimiser state, cuDNN's
#: algorithm choice, autograd's streams) must be done before a graph records the step.
#: PyTorch's whole-network capture recipe uses 3.
GRAPH_WARMUP = 3

#: ``EVOART_CUDA_GRAPHS=0`` turns capture off (every step eager) without changing a run;
#: the results are the same training either way, to float tolerance.
ENV_SWITCH = "EVOART_CUDA_GRAPHS"

StepFn = Callable[[Sequence[torch.Tensor], Hashable], tuple[torch.Tensor, ...]]


def graphs_wanted(device: str) -> bool:
    """Whether the per-individual path captures its steps on ``device``: on CUDA, unless
    ``EVOART_CUDA_GRAPHS=0``. The CPU gains nothing from a graph (no launch cost to save)."""
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "off", "no", "false"):
        return False
    if CudaGraphBackend.failed is not None:
        return False
    return torch.device(device).type == "cuda" and torch.cuda.is_available()


def make_capturable(*optimizers: torch.optim.Optimizer) -> None:
    """Let ``optimizers`` step inside a capture: their step counts live on the device
    (fused Adam keeps them there already) and torch's capture check passes. The update
    is the same; only where its bookkeeping lives changes."""
    for opt in optimizers:
        for group in opt.param_groups:
            group["capturable"] = True


class CudaGraphBackend:
    """Warm-up and capture on a side stream, replay on the current stream, with
    ``device`` the current device (``train_briefly`` makes it so). Each pattern's graph
    has its own memory pool: patterns replay in any order, and a shared pool is only
    safe for graphs replayed in the order they were captured."""

    #: Once a capture has failed in this process, why; no more are tried here. A failed
    #: capture can leave torch's capture bookkeeping behind (the allocator's, and before
    #: torch 2.13 the RNG's "capture underway" flag), so later captures are not trusted.
    failed: str | None = None

    def __init__(self, device: str | torch.device):
        self.device = torch.device(device)
        self.side = torch.cuda.Stream(self.device)

    def eager(self, fn: Callable[[], tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
        here = torch.cuda.current_stream(self.device)
        self.side.wait_stream(here)
        try:
            with torch.cuda.stream(self.side):
                return fn()
        finally:  # a step that raised still leaves no side-stream work behind its freed memory
            here.wait_stream(self.side)

    def capture(self, fn: Callable[[], tuple[torch.Tensor, ...]]):
        # Not the torch.cuda.graph context: before each capture it synchronises the whole
        # card and empties the allocator's cache, which would stall every other individual
        # training on the card (train.train_interleaved) and make them allocate afresh.
        # The capture needs only to come after this stream's work, as the eager steps do.
        # On this backend's own stream: torch's default capture stream is made once a
        # process, on whichever device was current then. thread_local: another thread's
        # CUDA call (a progress reader, an import) must not invalidate this capture.
        if CudaGraphBackend.failed is not None:
            raise RuntimeError(f"not captured: {CudaGraphBackend.failed}")
        graph = torch.cuda.CUDAGraph()
        here = torch.cuda.current_stream(self.device)
        self.side.wait_stream(here)
        with torch.cuda.stream(self.side):
            graph.capture_begin(capture_error_mode="thread_local")
            try:
                outputs = fn()
            except BaseException:
                with contextlib.suppress(Exception):  # the step's own error is the one to report
                    graph.capture_end()
                raise
            graph.capture_end()
        here.wait_stream(self.side)
        return graph.replay, outputs

    def recover(self) -> None:
        """After a failed capture: let the stream's pending work settle, try no more
        captures in this process, and give the RNG a fresh state (the failed capture's
        may still say a capture is under way, and refuse every random op after it)."""
        torch.cuda.synchronize(self.device)
        CudaGraphBackend.failed = CudaGraphBackend.failed or "an earlier capture in this process failed"
        gen = torch.cuda.default_generators[self.device.index if self.device.index is not None
                                            else torch.cuda.current_device()]
        if hasattr(gen, "graphsafe_set_state") and hasattr(gen, "clone_state"):
            gen.graphsafe_set_state(gen.clone_state())


class StepGraphs:
    """A step function run through static buffers, captured per pattern after a warm-up.

    ``step(inputs, pattern)`` takes the buffers (in the order given to ``__call__``) and
    returns 0-d loss tensors; ``before_capture()`` runs just before each capture (a GAN
    sets its gradients to None there, so that the graph allocates them in its pool).
    ``__call__(inputs, pattern)`` returns the step's losses as tensors the caller owns."""

    def __init__(self, step: StepFn, device: str | torch.device, *, backend=None,
                 warmup: int = GRAPH_WARMUP, before_capture: Callable[[], None] | None = None):
        self.step = step
        self.device = torch.device(device)
        self.backend = backend if backend is not None else CudaGraphBackend(self.device)
        self.warmup = max(0, int(warmup))
        self.before_capture = before_capture
        self.static: list[torch.Tensor] | None = None
        self.graphs: dict[Hashable, tuple | None] = {}  # pattern -> (replay, outputs), None: eager
        self.failures: dict[Hashable, str] = {}
        self.warmed: set[Hashable] = set()  # patterns that have run eagerly
        self.calls = self.replays = 0

    def _load(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if self.static is None:
            self.static = [x.to(self.device, copy=True) for x in inputs]
        else:
            if len(inputs) != len(self.static):
                raise ValueError(f"a step's inputs changed from {len(self.static)} tensors to {len(inputs)}")
            for buf, x in zip(self.static, inputs):
                buf.copy_(x, non_blocking=True)
        return self.static

    def __call__(self, inputs: Sequence[torch.Tensor], pattern: Hashable = None) -> tuple[torch.Tensor, ...]:
        static = self._load(inputs)
        self.calls += 1
        # Warm-up, and a pattern's first step: every pattern runs eagerly before its capture
        # (one with R1 every 4th D step is first met after the warm-up, and R1's double
        # backward has lazy set-up of its own that must not happen inside a capture).
        if self.calls <= self.warmup or pattern not in self.warmed:
            self.warmed.add(pattern)
            return self.backend.eager(lambda: self.step(static, pattern))
        if pattern not in self.graphs and not self.failures:
            self.graphs[pattern] = self._capture(static, pattern)
        if self.failures:  # after a failed capture every pattern runs eagerly (see _capture)
            return self.step(static, pattern)
        replay, outputs = self.graphs[pattern]
        replay()
        self.replays += 1
        return tuple(o.clone() for o in outputs)

    def _capture(self, static: list[torch.Tensor], pattern: Hashable):
        """A pattern's graph, or None when its capture failed. After a failure every
        pattern of this step runs eagerly: the backend gives the RNG a fresh state, copied
        from the one the graphs captured before were registered with, so their replays and
        the eager steps would walk over the same random numbers (noise injection)."""
        try:
            if self.before_capture is not None:
                self.before_capture()
            return self.backend.capture(lambda: self.step(static, pattern))
        except Exception as exc:  # noqa: BLE001 - any capture failure means: run this pattern eagerly
            self.failures[pattern] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]
            try:
                self.backend.recover()
            except Exception:  # noqa: BLE001 - the eager step that follows will say what is wrong
                pass
            return None

    def summary(self) -> str:
        """What a trained individual records: how many patterns were captured and what
        did not capture, e.g. ``"2 captured, 380 replays"`` or ``"eager: RuntimeError: ..."``."""
        captured = sum(1 for g in self.graphs.values() if g is not None)
        if not self.graphs:
            return "eager: too few steps to capture"
        text = f"{captured} captured, {self.replays} replays"
        if self.failures:
            reasons = "; ".join(sorted(set(self.failures.values())))
            text = (text + "; " if captured else "") + f"eager: {reasons}"
        return text
