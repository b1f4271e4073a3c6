"""Captured training steps (evoart.graphs) as the GPU's per-individual path uses them.

On the CPU the capture is a stand-in that behaves as a CUDA graph does where it
matters: capturing runs nothing, and each replay runs the step on the static buffers and
writes into the outputs the capture returned. Through it, an individual trained on the
captured path takes the same steps as the eager loop: the buffers carry each step's new
batch and latents, every R1 pattern gets its own capture, the losses a caller keeps are
its own (not the graph's outputs, overwritten by the next replay), and a capture that
fails leaves that pattern eager without changing the training. The real CUDA graphs are
checked where CUDA is present."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from evoart import batched, graphs
from evoart.batched import train_group
from evoart.genome import LossGenes, validate
from evoart.graphs import StepGraphs
from evoart.train import train_briefly

from genomes import squares
from test_batched import busy, members

STEPS = 14


class ReplayByCalling:
    """A CUDA graph's semantics on the CPU: ``capture`` runs nothing and returns outputs
    that only a replay fills; ``replay`` runs the step again (on whatever the static
    buffers hold then) and writes its results into those same outputs."""

    def __init__(self, device=None, outputs: int = 2, captures_before_failing: int | None = None):
        self.outputs, self.captures_before_failing = outputs, captures_before_failing
        self.captures = self.eager_calls = 0

    def eager(self, fn):
        self.eager_calls += 1
        return fn()

    def capture(self, fn):
        if self.captures == self.captures_before_failing:
            raise RuntimeError("operation not permitted when stream is capturing")
        self.captures += 1
        outputs = tuple(torch.zeros(()) for _ in range(self.outputs))

        def replay():
            for out, value in zip(outputs, fn()):  # the same tensors every replay, as a graph's
                out.resize_as_(value).copy_(value.detach())

        return replay, outputs

    def recover(self):
        pass


@pytest.fixture
def on_graph_path(monkeypatch):
    """Train through ``StepGraphs`` on the CPU with the stand-in backend; yields the
    backends made, so a test can look at what was captured."""
    made = []

    def backend(device):
        made.append(ReplayByCalling(device))
        return made[-1]

    monkeypatch.setattr(graphs, "graphs_wanted", lambda device: True)
    monkeypatch.setattr(graphs, "CudaGraphBackend", backend)
    return made


def curves(trained) -> list[list[float]]:
    return [trained.stats.curves["d_loss"], trained.stats.curves["g_loss"]]


def weights(trained) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in trained.generator.parameters()])


@pytest.fixture(scope="module")
def data() -> torch.Tensor:
    return squares(64, 1)


def test_a_captured_individual_trains_as_the_eager_loop_does(data, on_graph_path):
    g = busy()  # EMA, two D steps, lazy R1 (two patterns), feature matching, mode seeking
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(graphs, "graphs_wanted", lambda device: False)
        eager_run = train_briefly(g, data, steps=STEPS, seed=3)
    captured = train_briefly(g, data, steps=STEPS, seed=3)
    assert captured.stats.curves["d_loss"] == eager_run.stats.curves["d_loss"]
    assert captured.stats.curves["g_loss"] == eager_run.stats.curves["g_loss"]
    assert torch.equal(weights(captured), weights(eager_run))
    assert eager_run.stats.graphs == ""
    # two D steps a G step, R1 every 4th D step: patterns (F, F) and (F, T) alternate
    assert captured.stats.graphs == f"2 captured, {STEPS - graphs.GRAPH_WARMUP} replays"
    assert on_graph_path[0].eager_calls == graphs.GRAPH_WARMUP


def test_a_failed_capture_runs_that_pattern_eagerly_and_says_why(data, on_graph_path, monkeypatch):
    # the second pattern (R1's) will not capture
    monkeypatch.setattr(graphs, "CudaGraphBackend", lambda device: ReplayByCalling(device, captures_before_failing=1))
    g = busy()
    captured = train_briefly(g, data, steps=STEPS, seed=1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(graphs, "graphs_wanted", lambda device: False)
        eager_run = train_briefly(g, data, steps=STEPS, seed=1)
    assert curves(captured) == curves(eager_run)
    assert captured.stats.status == "ok"
    assert captured.stats.graphs.startswith("1 captured, ")
    assert "eager: RuntimeError: operation not permitted when stream is capturing" in captured.stats.graphs


def test_a_captured_batched_group_trains_as_the_eager_group_does(data, on_graph_path):
    """The batched step (mixed R1, so two patterns, and mixed feature matching, batch norm
    in D) through the capture path: the same numbers as the eager group, bit for bit."""
    genomes = members("batch", "dcgan")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(graphs, "graphs_wanted", lambda device: False)
        eager_group = train_group(genomes, data, steps=STEPS, seeds=[3, 4, 5])
    captured = train_group(genomes, data, steps=STEPS, seeds=[3, 4, 5])
    assert len(on_graph_path) == 1 and on_graph_path[0].eager_calls == graphs.GRAPH_WARMUP
    for a, b in zip(eager_group, captured):
        assert curves(a) == curves(b)
        assert torch.equal(weights(a), weights(b))
        assert b.stats.graphs == f"2 captured, {STEPS - graphs.GRAPH_WARMUP} replays" and a.stats.graphs == ""


def test_a_member_leaving_a_captured_group_has_the_rest_captured_afresh(data, on_graph_path, monkeypatch):
    """A diverged member leaves: the group's tensors are re-stacked, so its graphs are
    stale; the smaller group warms up and captures again, and trains as it does eagerly."""
    genomes = members("spectral", "dcgan")
    update, calls = batched._Adam.update, []

    def poisoning(self, params, grads, *args, **kwargs):
        update(self, params, grads, *args, **kwargs)
        if "head.parametrizations.weight.original" in params:
            calls.append(1)
            if len(calls) == 2 * 5:  # member 1's D at step 5
                with torch.no_grad():
                    next(iter(params.values()))[1].fill_(float("nan"))

    monkeypatch.setattr(batched._Adam, "update", poisoning)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(graphs, "graphs_wanted", lambda device: False)
        eager_group = train_group(genomes, data, steps=STEPS, seeds=[3, 4, 5], check_every=2)
    calls.clear()
    captured = train_group(genomes, data, steps=STEPS, seeds=[3, 4, 5], check_every=2)
    assert captured[1].stats.status == "diverged" and "NaN" in captured[1].stats.reason
    assert len(on_graph_path) == 2  # the first group's graphs, then the smaller group's
    for a, b in zip(eager_group, captured):  # bit for bit, the diverged member's NaN included
        torch.testing.assert_close(torch.tensor(curves(a)), torch.tensor(curves(b)), rtol=0, atol=0, equal_nan=True)
    assert captured[0].stats.status == "ok" and captured[0].stats.graphs.startswith("2 captured")


def test_the_losses_a_caller_keeps_are_not_overwritten_by_the_next_replay():
    w = torch.zeros(())
    steps = StepGraphs(lambda inputs, pattern: (inputs[0].sum() + w,), "cpu",
                       backend=ReplayByCalling(outputs=1), warmup=1)
    kept = [steps([torch.full((3,), float(i))])[0] for i in range(5)]
    assert [float(k) for k in kept] == [0.0, 3.0, 6.0, 9.0, 12.0]
    assert steps.summary() == "1 captured, 4 replays"


class Recording(ReplayByCalling):
    """The stand-in, noting which pattern each eager step, capture and replay was."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.log: list[str] = []

    def eager(self, fn):
        self.log.append(f"eager {self.pattern}")
        return super().eager(fn)

    def capture(self, fn):
        self.log.append(f"capture {self.pattern}")
        replay, outputs = super().capture(fn)

        def noted(pattern=self.pattern):
            self.log.append(f"replay {pattern}")
            replay()
        return noted, outputs


def stepped(backend, patterns, warmup=3):
    steps = StepGraphs(lambda inputs, pattern: (inputs[0].sum(),), "cpu", backend=backend, warmup=warmup)
    for i, p in enumerate(patterns):
        backend.pattern = p
        steps([torch.full((2,), float(i))], p)
    return steps


def test_a_pattern_first_met_after_the_warm_up_runs_eagerly_before_it_is_captured():
    """One D step with R1 every 4th: the R1 pattern first comes at step 4, after the
    three warm-up steps. Its first step runs eagerly (R1's double backward has lazy
    set-up that must not happen inside a capture); it is captured at its second."""
    rec = Recording(outputs=1)
    steps = stepped(rec, ["a", "a", "a", "r1", "a", "a", "a", "r1", "a"])
    assert rec.log == ["eager a"] * 3 + ["eager r1", "capture a", "replay a", "replay a", "replay a",
                                          "capture r1", "replay r1", "replay a"]
    assert steps.summary() == "2 captured, 5 replays"


def test_after_a_failed_capture_every_pattern_of_the_step_runs_eagerly():
    """A's graph was registered with the RNG state the failure replaced: replaying it beside
    eager steps drawing from a copy of that state would repeat their random numbers."""
    rec = Recording(outputs=1, captures_before_failing=1)  # the second capture (r1's) fails
    steps = stepped(rec, ["a", "r1", "a", "r1", "a", "r1", "a"], warmup=2)
    assert rec.log == ["eager a", "eager r1", "capture a", "replay a", "capture r1"]  # then all eager
    assert steps.summary() == "1 captured, 1 replays; eager: RuntimeError: operation not permitted when stream is capturing"


def test_a_step_whose_inputs_change_in_number_is_refused():
    steps = StepGraphs(lambda inputs, pattern: (inputs[0].sum(),), "cpu", backend=ReplayByCalling(outputs=1))
    steps([torch.ones(2)])
    with pytest.raises(ValueError, match="from 1 tensors to 2"):
        steps([torch.ones(2), torch.ones(2)])


def test_too_short_a_training_to_capture_says_so():
    steps = StepGraphs(lambda inputs, pattern: (inputs[0].sum(),), "cpu", backend=ReplayByCalling(outputs=1))
    steps([torch.ones(2)])
    assert steps.summary() == "eager: too few steps to capture"


def test_graphs_are_for_cuda_and_can_be_switched_off(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv(graphs.ENV_SWITCH, raising=False)
    assert graphs.graphs_wanted("cuda") and graphs.graphs_wanted("cuda:1")
    assert not graphs.graphs_wanted("cpu")
    monkeypatch.setenv(graphs.ENV_SWITCH, "0")
    assert not graphs.graphs_wanted("cuda")


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")


@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_real_cuda_graphs_train_as_the_eager_loop_does(data, precision, monkeypatch):
    g = busy()
    captured = train_briefly(g, data, steps=40, seed=0, device="cuda", precision=precision)
    monkeypatch.setenv(graphs.ENV_SWITCH, "0")
    eager_run = train_briefly(g, data, steps=40, seed=0, device="cuda", precision=precision)
    assert captured.stats.graphs.startswith("2 captured"), captured.stats.graphs
    assert captured.stats.status == eager_run.stats.status == "ok"
    a, b = torch.tensor(curves(captured)), torch.tensor(curves(eager_run))
    # the same steps: equal before noise and kernel choice drift apart
    assert torch.allclose(a[:, :graphs.GRAPH_WARMUP], b[:, :graphs.GRAPH_WARMUP], atol=1e-3, rtol=1e-3)
    assert len(set(a[0].tolist())) > 10  # each step's own loss, not one replay's output repeated
    assert (a - b).abs().mean() < 0.1


@needs_cuda
def test_a_nan_in_a_captured_individual_is_caught(data, monkeypatch):
    g = validate(dataclasses.replace(busy(), loss=LossGenes(hinge=1.0),
                                     training=dataclasses.replace(busy().training, lr_d=1e9, lr_g=1e9)))
    trained = train_briefly(g, data, steps=200, seed=0, device="cuda")
    assert trained.stats.status == "diverged"
    assert trained.stats.steps < 200


@needs_cuda
def test_a_real_captured_batched_group_trains_as_the_eager_group_does(data, monkeypatch):
    genomes = members("batch", "dcgan")
    captured = train_group(genomes, data, steps=30, seeds=[3, 4, 5], device="cuda")
    monkeypatch.setenv(graphs.ENV_SWITCH, "0")
    eager_group = train_group(genomes, data, steps=30, seeds=[3, 4, 5], device="cuda")
    for a, b in zip(captured, eager_group):
        assert a.stats.graphs.startswith("2 captured"), a.stats.graphs
        x, y = torch.tensor(curves(a)), torch.tensor(curves(b))
        assert torch.allclose(x[:, :graphs.GRAPH_WARMUP], y[:, :graphs.GRAPH_WARMUP], atol=1e-3, rtol=1e-3)
        assert len(set(x[0].tolist())) > 10
        assert (x - y).abs().mean() < 0.1


def test_after_a_failed_capture_a_process_tries_no_more(monkeypatch):
    """A failed capture can leave torch's capture bookkeeping behind: later individuals in
    the same process train eagerly."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv(graphs.ENV_SWITCH, raising=False)
    assert graphs.graphs_wanted("cuda")
    monkeypatch.setattr(graphs.CudaGraphBackend, "failed", "an earlier capture in this process failed")
    assert not graphs.graphs_wanted("cuda")
