"""Batched training (evoart.batched) as the GPU path relies on it, checked on the CPU:
members of a group train as they would alone (same losses within float tolerance, from
scratch and from a parent's state), a NaN in one member is caught within the check
interval and leaves the others untouched, and the executor forms groups only of one
architecture and returns every individual."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from evoart import batched, fitness
from evoart.batched import signature, train_group
from evoart.executors import SerialExecutor
from evoart.fitness import EvalContext, EvalTask
from evoart.genome import Block, DiscriminatorGenes, Genome, GeneratorGenes, GenomeError, LossGenes, TrainingGenes, validate
from evoart.train import Init, train_briefly
from evoart.variation import Inheritance

from genomes import squares, tiny_context, tiny_genome

RES = 16
STEPS = 10


def busy(norm: str = "spectral", family: str = "resnet", **training) -> Genome:
    """Every batchable path at once: EMA, residual and pixel-shuffle blocks, group,
    instance and batch norm in G, mixed losses, lazy R1, feature matching, mode seeking,
    two D steps."""
    return validate(Genome(
        generator=GeneratorGenes(
            latent=16, stem_channels=32,
            blocks=(Block(16, "pixelshuffle", 3, "group", "lrelu", residual=True),
                    Block(8, "transposed", 3, "instance", "sin"),
                    Block(8, "none", 1, "batch", "silu", residual=True)),
            output="sigmoid"),
        discriminator=DiscriminatorGenes(family, 8, norm),
        loss=LossGenes(nonsaturating=0.5, hinge=0.3, leastsquares=0.2, r1=1.0, feature_matching=0.5, mode_seeking=0.1),
        training=TrainingGenes(**{"lr_g": 1e-3, "lr_d": 1e-3, "beta1": 0.0, "beta2": 0.99, "d_steps": 2,
                                  "batch_size": 16, "ema": 0.99, **training}),
    ))


def members(norm: str, family: str) -> list[Genome]:
    """Three genomes of one architecture that differ in everything a group holds per member."""
    g = busy(norm, family)
    return [g,
            dataclasses.replace(g, loss=LossGenes(hinge=1.0), training=dataclasses.replace(g.training, lr_g=3e-4, beta1=0.5)),
            dataclasses.replace(g, loss=LossGenes(leastsquares=1.0, r1=4.0, mode_seeking=1.0),
                                training=dataclasses.replace(g.training, lr_d=4e-4, beta2=0.9, ema=0.9))]


@pytest.fixture(scope="module")
def data() -> torch.Tensor:
    return squares(64, 1)


def curves(trained) -> torch.Tensor:
    return torch.tensor([trained.stats.curves["d_loss"], trained.stats.curves["g_loss"]])


@pytest.mark.parametrize("norm,family", [pytest.param("spectral", "resnet", marks=pytest.mark.slow),
                                         ("batch", "dcgan"), ("layer", "dcgan")])
def test_a_batched_member_trains_as_it_would_alone(data, norm, family):
    genomes = members(norm, family)
    seeds = [3, 4, 5]
    alone = [train_briefly(g, data, steps=STEPS, seed=s) for g, s in zip(genomes, seeds)]
    group = train_group(genomes, data, steps=STEPS, seeds=seeds)
    assert len({signature(g, RES) for g in genomes}) == 1
    for a, b in zip(alone, group):
        assert b.stats.status == "ok" and b.stats.steps == STEPS and b.stats.group == 3
        # the first step's losses are the same numbers; later ones drift by float rounding only
        assert torch.allclose(curves(a)[:, 0], curves(b)[:, 0], atol=2e-5)
        assert torch.allclose(curves(a), curves(b), atol=2e-2), (curves(a) - curves(b)).abs().max()
        assert set(a.state) == set(b.state) and set(a.state["opt_d"]) == set(b.state["opt_d"])
        for part in ("g", "d", "g_ema"):
            for name, t in a.state[part].items():
                assert t.shape == b.state[part][name].shape
                if t.is_floating_point():
                    assert torch.allclose(t, b.state[part][name], atol=5e-2), (part, name)
        assert a.state["opt_g"]["stem.weight"]["step"] == b.state["opt_g"]["stem.weight"]["step"]
        assert torch.allclose(a.state["opt_g"]["stem.weight"]["exp_avg_sq"],
                              b.state["opt_g"]["stem.weight"]["exp_avg_sq"], atol=1e-4, rtol=0.05)


@pytest.mark.slow
def test_a_batched_child_continues_its_parent_as_it_would_alone(data):
    """A child of a trained parent carries on its parent's Adam state and step counts,
    next to a member that starts fresh (so one group holds different step counts)."""
    genomes = members("spectral", "dcgan")
    parent = train_briefly(genomes[0], data, steps=4, seed=1)
    init = Init([parent.state], Inheritance.identity(genomes[0]))
    alone = [train_briefly(genomes[0], data, steps=STEPS, seed=2, init=init),
             train_briefly(genomes[1], data, steps=STEPS, seed=3)]
    group = train_group(genomes[:2], data, steps=STEPS, seeds=[2, 3], inits=[init, None])
    for a, b in zip(alone, group):
        assert torch.allclose(curves(a)[:, 0], curves(b)[:, 0], atol=2e-5)
        assert torch.allclose(curves(a), curves(b), atol=2e-2)
    assert group[0].stats.lineage_steps == 4 + STEPS and group[1].stats.lineage_steps == STEPS
    assert group[0].state["opt_d"]["head.parametrizations.weight.original"]["step"] == 2 * (4 + STEPS)  # two D steps a step
    assert group[1].state["opt_d"]["head.parametrizations.weight.original"]["step"] == 2 * STEPS


@pytest.mark.slow  # one of make test-fast's slowest (2026-12-02, a slow hour: the suite at 3:18)
def test_a_nan_in_one_member_is_caught_within_the_check_interval(data, monkeypatch):
    genomes = members("spectral", "resnet")
    clean = train_group(genomes, data, steps=STEPS, seeds=[3, 4, 5], check_every=4)
    poisoned_at, rows = 3, []
    update = batched._Adam.update

    def poisoning(self, params, grads, *args, **kwargs):
        update(self, params, grads, *args, **kwargs)
        if "head.parametrizations.weight.original" in params:  # D's Adam: one call per D step
            rows.append(next(iter(params.values())).shape[0])
            if len(rows) == 2 * poisoned_at:                     # two D steps per step
                with torch.no_grad():
                    next(iter(params.values()))[1].fill_(float("nan"))

    monkeypatch.setattr(batched._Adam, "update", poisoning)
    got = train_group(genomes, data, steps=STEPS, seeds=[3, 4, 5], check_every=4)
    assert got[1].stats.status == "diverged" and "NaN" in got[1].stats.reason
    assert f"step {poisoned_at}" in got[1].stats.reason
    # the member left the group at the first check after the NaN: within 4 steps
    left = rows.index(2) // 2 + 1
    assert poisoned_at < left <= poisoned_at + 4, rows
    for k in (0, 2):  # the others never saw it: the same numbers while the group was whole,
        # then the smaller group's rounding
        assert got[k].stats.status == "ok" and got[k].stats.steps == STEPS
        assert torch.equal(curves(got[k])[:, :left], curves(clean[k])[:, :left])
        assert torch.allclose(curves(got[k]), curves(clean[k]), atol=2e-2)


def test_only_one_architecture_trains_as_a_group(data):
    g = busy()
    noisy = dataclasses.replace(g, generator=dataclasses.replace(
        g.generator, blocks=(dataclasses.replace(g.generator.blocks[0], noise=True),) + g.generator.blocks[1:]))
    wider = dataclasses.replace(g, discriminator=dataclasses.replace(g.discriminator, width=16))
    assert signature(noisy, RES) is None  # noise is drawn inside G's forward: it trains alone
    assert signature(wider, RES) != signature(g, RES)
    assert signature(dataclasses.replace(g, training=dataclasses.replace(g.training, lr_g=1e-4)), RES) == signature(g, RES)
    with pytest.raises(GenomeError, match="one batchable architecture"):
        train_group([g, wider], data, steps=1, seeds=[0, 1])


@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> EvalContext:
    return tiny_context(tmp_path_factory.mktemp("cache"))


@pytest.mark.slow  # scores every individual twice
def test_the_executor_batches_same_architecture_individuals_and_returns_every_one(ctx):
    ctx.batched = False
    same = tiny_genome()
    other = dataclasses.replace(same, discriminator=dataclasses.replace(same.discriminator, width=16))
    tasks = [EvalTask(id=f"g000-i{i:02d}", genome=g.to_dict(), seed=i, steps=3)
             for i, g in enumerate([same, other, same, same])]
    alone = {ev.id: ev for ev in SerialExecutor(ctx).map(tasks)}
    ctx.batched = True
    assert sorted(len(g) for g in fitness.group_tasks(tasks, ctx)) == [1, 3]
    seen = []
    got = {ev.id: ev for ev in SerialExecutor(ctx, progress=lambda i, s, t: seen.append(i)).map(tasks)}
    assert set(got) == set(alone) and set(seen) == set(alone)
    for i, ev in got.items():
        assert ev.status == "ok" and ev.samples is not None and ev.train_state is not None
        assert ev.stats["group"] == (1 if i == "g000-i01" else 3)
        assert ev.metrics["perceptual"] == pytest.approx(alone[i].metrics["perceptual"], rel=0.05)


@pytest.mark.slow
def test_a_group_whose_batched_training_fails_is_trained_one_at_a_time(ctx, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(batched, "train_group", out_of_memory)
    monkeypatch.setattr(ctx, "batched", True)
    tasks = [EvalTask(id=f"g000-i{i:02d}", genome=tiny_genome().to_dict(), seed=i, steps=3) for i in range(2)]
    with pytest.warns(RuntimeWarning, match="training each alone"):
        got = fitness.evaluate_group(tasks, ctx)
    assert [ev.id for ev in got] == ["g000-i00", "g000-i01"]
    assert all(ev.status == "ok" and ev.stats["group"] == 1 for ev in got)


class _HostReads:
    """Counts reads of tensor values on the host (on a GPU, each one waits for the card)."""

    NAMES = ("__bool__", "__float__", "__int__", "item", "tolist")

    def __init__(self, monkeypatch):
        self.count = 0
        for name in self.NAMES:
            monkeypatch.setattr(torch.Tensor, name, self._counting(getattr(torch.Tensor, name)))

    def _counting(self, read):
        def counted(tensor, *args, **kwargs):
            self.count += 1
            return read(tensor, *args, **kwargs)
        return counted


@pytest.mark.parametrize("how", ["group", "alone"])
def test_training_reads_the_device_at_its_checks_not_every_step(data, monkeypatch, how):
    """The GPU path's "no host sync per step": with the divergence check put off to the
    end, training 12 steps reads tensor values on the host no more often than training 4
    (the reads left are setting up, the one check and finishing). A mixed group (R1 and
    feature matching in some members only, batch norm in D) used to ask the device which
    members use which loss, about 15 times a step."""
    import evoart.train as train_mod

    monkeypatch.setattr(train_mod, "divergence_check_every", lambda device: 1000)
    genomes = members("batch", "dcgan")
    reads = _HostReads(monkeypatch)
    counts = []
    for steps in (4, 12):
        reads.count = 0
        if how == "group":
            out = train_group(genomes, data, steps=steps, seeds=[3, 4, 5], check_every=1000)
        else:
            out = [train_briefly(genomes[0], data, steps=steps, seed=3)]
        assert all(t.stats.steps == steps for t in out)
        counts.append(reads.count)
    assert counts[1] == counts[0], counts


def test_a_groups_members_report_their_share_of_its_time(data):
    """As interleaved individuals do: the members' seconds add up to no more than the
    group's wall time, so the gallery's training speed is what the worker trained."""
    import time

    t0 = time.perf_counter()
    group = train_group(members("layer", "dcgan"), data, steps=3, seeds=[3, 4, 5])
    wall = time.perf_counter() - t0
    assert all(t.stats.seconds <= wall / 3 for t in group), ([t.stats.seconds for t in group], wall)
    assert all(t.stats.steps_per_second == pytest.approx(3 / t.stats.seconds) for t in group)
