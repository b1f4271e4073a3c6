"""Several individuals trained at once in one process, a step of each in turn
(``train.train_interleaved``, the GPU path's way of putting many individuals on one card,
each on its own CUDA stream), checked on the CPU: each trains bit for bit as it does
alone (noise injection included), one that fails leaves the others going, and the
executor packs GANs only and returns every one, each scored as alone."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from evoart import train
from evoart.genome import Block, DiscriminatorGenes, GenomeError, LossGenes, VAEGenes
from evoart.train import Init, train_briefly, train_interleaved
from evoart.variation import Inheritance

from genomes import squares, tiny_genome

STEPS = 6


@pytest.fixture(scope="module")
def data() -> torch.Tensor:
    return squares(48, 2)


def three():
    """Three different architectures and trainings: R1 with two D steps and an EMA,
    feature matching with spectral norm, and the plain tiny genome."""
    g = tiny_genome()
    return [
        g.replace(loss=LossGenes(hinge=1.0, r1=1.0), training=dataclasses.replace(g.training, d_steps=2, ema=0.99)),
        g.replace(discriminator=DiscriminatorGenes("resnet", 8, "spectral"),
                  loss=LossGenes(nonsaturating=0.5, leastsquares=0.5, feature_matching=0.5)),
        g,
    ]


def same(a, b) -> None:
    assert a.stats.steps == b.stats.steps and a.stats.status == b.stats.status
    assert a.stats.curves == b.stats.curves
    for part in ("g", "d", "g_ema", "opt_g", "opt_d"):
        sa, sb = a.state[part], b.state[part]
        if sa is None:
            assert sb is None
            continue
        assert sa.keys() == sb.keys()
        for k in sa:
            if isinstance(sa[k], torch.Tensor):
                assert torch.equal(sa[k], sb[k]), (part, k)
            else:  # Adam's state by name
                for field in sa[k]:
                    assert torch.equal(torch.as_tensor(sa[k][field]), torch.as_tensor(sb[k][field])), (part, k, field)


def test_interleaved_individuals_train_bit_for_bit_as_alone(data):
    genomes, seeds = three(), [5, 6, 7]
    alone = [train_briefly(g, data, steps=STEPS, seed=s) for g, s in zip(genomes, seeds)]
    reports = []
    together = train_interleaved(genomes, data, steps=STEPS, seeds=seeds,
                                 progress=lambda i, s, n: reports.append((i, s, n)))
    for a, b in zip(alone, together):
        same(a, b)
    # one step of each in turn, each reporting its own progress
    assert [r for r in reports if r[1] == 1] == [(0, 1, STEPS), (1, 1, STEPS), (2, 1, STEPS)]
    assert {(i, STEPS, STEPS) for i in range(3)} <= set(reports)


def test_each_reports_its_share_of_the_time(data):
    """Individuals trained at once share the wall clock: their seconds add up to no more
    than it, so a run's steps over its seconds is what a worker trained a second (each
    counting the whole wall would read N times slow)."""
    import time

    t0 = time.perf_counter()
    together = train_interleaved([tiny_genome()] * 3, data, steps=40, seeds=[5, 6, 7])
    wall = time.perf_counter() - t0
    # each trained within the wall clock, beside two others: its share is at most a third
    assert all(t.stats.seconds <= wall / 3 for t in together), ([t.stats.seconds for t in together], wall)
    assert all(t.stats.steps_per_second == pytest.approx(t.stats.steps / t.stats.seconds) for t in together)


def test_an_interleaved_child_continues_its_parent_as_alone(data):
    parent = train_briefly(three()[0], data, steps=4, seed=1)
    init = Init([parent.state], Inheritance.identity(three()[0]))
    genomes = three()[:1] * 2
    alone = [train_briefly(genomes[0], data, steps=STEPS, seed=s, init=init) for s in (2, 3)]
    together = train_interleaved(genomes, data, steps=STEPS, seeds=[2, 3], inits=[init, init])
    for a, b in zip(alone, together):
        same(a, b)
    assert together[0].stats.lineage_steps == 4 + STEPS


def test_one_that_fails_leaves_the_others_going(data, monkeypatch):
    genomes, seeds = three(), [5, 6, 7]
    alone = [train_briefly(g, data, steps=STEPS, seed=s) for g, s in zip(genomes, seeds)]
    step = train.gan_step
    calls = []

    def failing(run, inputs, pattern, amp):
        calls.append(run.genome)
        if run.genome is genomes[1] and sum(c is genomes[1] for c in calls) == 3:
            raise RuntimeError("CUDA out of memory (injected)")
        return step(run, inputs, pattern, amp)

    monkeypatch.setattr(train, "gan_step", failing)
    got = train_interleaved(genomes, data, steps=STEPS, seeds=seeds)
    assert isinstance(got[1], RuntimeError) and "out of memory" in str(got[1])
    same(alone[0], got[0])
    same(alone[2], got[2])


def test_noise_injection_draws_as_alone_and_only_gans_are_interleaved(data):
    """Noise injection draws from torch's global RNG in G's forward pass: each individual
    gets its own state back before each of its steps, so two noisy individuals side by
    side draw what they draw alone (without that, the comparison fails)."""
    genomes = [noisy_genome(), noisy_genome(), tiny_genome()]
    assert not train.own_draws_only(genomes[0])  # what batching cannot take
    alone = [train_briefly(g, data, steps=STEPS, seed=s) for g, s in zip(genomes, (1, 2, 3))]
    for a, b in zip(alone, train_interleaved(genomes, data, steps=STEPS, seeds=[1, 2, 3])):
        same(a, b)
    vae = tiny_genome().replace(family="vae", vae=VAEGenes())
    with pytest.raises(GenomeError, match="are not"):
        train_interleaved([tiny_genome(), vae], data, steps=2, seeds=[0, 1])


def noisy_genome():
    g = tiny_genome()
    return g.replace(generator=dataclasses.replace(
        g.generator, blocks=(Block(16, "nearest", 3, "batch", "relu", noise=True),) + g.generator.blocks[1:]))


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    from genomes import tiny_context

    return tiny_context(tmp_path_factory.mktemp("cache"))


def test_the_executor_packs_what_can_be_interleaved_and_scores_each_as_alone(ctx, monkeypatch):
    from evoart import fitness
    from evoart.executors import SerialExecutor
    from evoart.fitness import EvalTask

    g = tiny_genome()
    other = g.replace(discriminator=dataclasses.replace(g.discriminator, width=16))
    genomes = [g, other, tiny_genome().replace(family="vae", vae=VAEGenes()), noisy_genome()]
    tasks = [EvalTask(id=f"g000-i{i:02d}", genome=x.to_dict(), seed=i, steps=3) for i, x in enumerate(genomes)]
    monkeypatch.setattr(ctx, "batched", False)
    monkeypatch.setattr(ctx, "interleave", 1)
    alone = {ev.id: ev for ev in SerialExecutor(ctx).map(tasks)}
    monkeypatch.setattr(ctx, "interleave", 3)
    units = fitness.group_tasks(tasks, ctx)
    assert [[t.id for t in u] for u in units] == [["g000-i00", "g000-i01", "g000-i03"], ["g000-i02"]]  # a VAE alone
    assert [fitness.unit_kind(u, ctx) for u in units] == ["interleaved", "alone"]
    seen = []
    got = {ev.id: ev for ev in SerialExecutor(ctx, progress=lambda i, s, t: seen.append((i, s))).map(tasks)}
    assert set(got) == set(alone) and {(i, 3) for i in alone} <= set(seen)
    for i, ev in got.items():
        assert ev.status == "ok" and ev.stats["interleaved"] == (1 if i == "g000-i02" else 3)
        # trained bit for bit as alone, so scored the same
        assert ev.metrics == alone[i].metrics
        assert ev.stats["curves"] == alone[i].stats["curves"]


@pytest.mark.parametrize("tasks, workers, sizes", [
    (8, 1, [8]),
    (8, 2, [4, 4]),          # not one pack of 8 and an idle worker
    (20, 2, [8, 8, 4]),      # never more than --interleave
    (3, 4, [1, 1, 1]),
])
def test_packs_are_shared_out_among_the_workers(ctx, monkeypatch, tasks, workers, sizes):
    from evoart import fitness
    from evoart.fitness import EvalTask

    monkeypatch.setattr(ctx, "batched", False)
    monkeypatch.setattr(ctx, "interleave", 8)
    todo = [EvalTask(id=f"g000-i{i:02d}", genome=tiny_genome().to_dict(), seed=i, steps=3) for i in range(tasks)]
    assert [len(u) for u in fitness.group_tasks(todo, ctx, workers=workers)] == sizes


def test_a_member_that_fails_beside_the_others_is_retried_alone(ctx, monkeypatch):
    from evoart import fitness
    from evoart.fitness import EvalTask

    step, failed_once = train.gan_step, []

    def out_of_memory_once(run, inputs, pattern, amp):
        if run.genome.training.lr_g == 1e-3 and not failed_once:  # the second task, beside the others
            failed_once.append(True)
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return step(run, inputs, pattern, amp)

    monkeypatch.setattr(train, "gan_step", out_of_memory_once)
    monkeypatch.setattr(ctx, "batched", False)
    monkeypatch.setattr(ctx, "interleave", 4)
    genomes = [tiny_genome(), tiny_genome(lr_g=1e-3), tiny_genome()]
    tasks = [EvalTask(id=f"g000-i{i:02d}", genome=x.to_dict(), seed=i, steps=3) for i, x in enumerate(genomes)]
    with pytest.warns(RuntimeWarning, match="g000-i01: training beside 2 others failed .*training it alone"):
        got = fitness.evaluate_group(tasks, ctx)
    assert [ev.id for ev in got] == ["g000-i00", "g000-i01", "g000-i02"]
    assert all(ev.status == "ok" for ev in got)
    assert [ev.stats["interleaved"] for ev in got] == [3, 1, 3]


def test_a_failed_member_lets_go_of_its_nets_at_once(data, monkeypatch):
    """Its exception comes back in its place, but without the frames holding its nets and
    optimisers: the caller retries it alone with that memory free, not beside its ghost."""
    import gc
    import weakref

    step, held = train.gan_step, []

    def failing(run, inputs, pattern, amp):
        if run.genome.training.lr_g == 1e-3:
            held.append(weakref.ref(run.G))
            raise RuntimeError("CUDA out of memory (injected)")
        return step(run, inputs, pattern, amp)

    monkeypatch.setattr(train, "gan_step", failing)
    got = train_interleaved([tiny_genome(), tiny_genome(lr_g=1e-3)], data, steps=3, seeds=[0, 1])
    assert isinstance(got[1], RuntimeError)
    gc.collect()
    assert held and held[0]() is None


def test_timed_tasks_are_not_packed(ctx, monkeypatch):
    """A time limit is each individual's own; a pack shares one clock."""
    from evoart import fitness
    from evoart.fitness import EvalTask

    monkeypatch.setattr(ctx, "batched", False)
    monkeypatch.setattr(ctx, "interleave", 8)
    todo = [EvalTask(id=f"g000-i{i:02d}", genome=tiny_genome().to_dict(), seed=i, steps=3,
                     budget_seconds=5.0 if i % 2 else None) for i in range(6)]
    units = fitness.group_tasks(todo, ctx)
    assert sorted(len(u) for u in units) == [1, 1, 1, 3]
    assert all(t.budget_seconds is None for u in units if len(u) > 1 for t in u)


def test_a_ray_cluster_sizes_packs_by_the_units_it_runs_at_once(ctx, monkeypatch):
    from types import SimpleNamespace

    from evoart.ray_executor import RayExecutor

    monkeypatch.setattr(ctx, "interleave", 8)
    cluster = SimpleNamespace(cluster_resources=lambda: {"GPU": 2.0, "CPU": 16.0})
    on_gpus = SimpleNamespace(ctx=ctx, gpus=0.25, cpus=1, _ray=cluster)
    on_cpus = SimpleNamespace(ctx=ctx, gpus=0.0, cpus=4, _ray=cluster)
    assert RayExecutor.slots(on_gpus) == 8 and RayExecutor.slots(on_cpus) == 4
