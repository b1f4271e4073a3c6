"""Brief training as a run relies on it: reproducible on the CPU, stops on divergence with a
reason, continues from parents' tensors (Lamarckian inheritance), renders the same images
from the same latents, and actually learns."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from evoart import losses, nets
from evoart.genome import Block, DiscriminatorGenes, Genome, GeneratorGenes, LossGenes, TrainingGenes, validate
from evoart.train import EXPLODING_LOSS, Init, generate, resolve_device, train_briefly
from evoart.variation import Inheritance

from genomes import tiny_genome

RES = 16


def busy_genome() -> Genome:
    """Every training path at once: EMA, noise injection, residual and pixel-shuffle blocks,
    mixed losses, lazy R1, feature matching, mode seeking, two D steps, spectral norm."""
    return validate(Genome(
        generator=GeneratorGenes(
            latent=16, stem_channels=32,
            blocks=(Block(16, "pixelshuffle", 3, "group", "lrelu", residual=True, noise=True),
                    Block(8, "transposed", 3, "instance", "sin"),
                    Block(8, "none", 1, "batch", "silu", residual=True, noise=True)),
            output="sigmoid",
        ),
        discriminator=DiscriminatorGenes("resnet", 8, "spectral"),
        loss=LossGenes(nonsaturating=0.5, hinge=0.3, leastsquares=0.2, r1=1.0, feature_matching=0.5, mode_seeking=0.1),
        training=TrainingGenes(lr_g=1e-3, lr_d=1e-3, beta1=0.0, beta2=0.99, d_steps=2, batch_size=16, ema=0.99),
    ))


@pytest.fixture(scope="module")
def squares() -> torch.Tensor:
    """64 images of a solid red square on black, 16 px, in [-1, 1]."""
    x = -torch.ones(64, 3, RES, RES)
    x[:, 0, 4:12, 4:12] = 1.0
    return x


def assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def differs(a: dict, b: dict) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a)


# ---- reproducibility ---------------------------------------------------------------------


def test_training_is_deterministic_on_the_cpu_for_a_seed(squares):
    genome = busy_genome()
    first = train_briefly(genome, squares, steps=8, seed=3)
    second = train_briefly(genome, squares, steps=8, seed=3)
    assert first.stats.status == "ok", first.stats.reason
    assert first.stats.curves == second.stats.curves
    assert len(first.stats.curves["d_loss"]) == len(first.stats.curves["g_loss"]) == 8
    for part in ("g", "d", "g_ema"):
        assert_same_tensors(first.state[part], second.state[part])
    for opt in ("opt_g", "opt_d"):
        assert first.state[opt].keys() == second.state[opt].keys() and first.state[opt]
        for name in first.state[opt]:
            assert torch.equal(first.state[opt][name]["exp_avg"], second.state[opt][name]["exp_avg"])

    other = train_briefly(genome, squares, steps=8, seed=4)
    assert other.stats.curves != first.stats.curves
    assert differs(first.state["g"], other.state["g"])
    assert differs(first.state["d"], other.state["d"])


def test_the_result_reports_what_happened(squares):
    calls = []
    trained = train_briefly(tiny_genome(), squares, steps=120, seed=0, progress=lambda s, n: calls.append((s, n)))
    stats = trained.stats
    assert (stats.status, stats.reason, stats.steps, stats.lineage_steps) == ("ok", "", 120, 120)
    assert stats.seconds > 0 and stats.steps_per_second > 0
    assert len(stats.curves["d_loss"]) == 50  # downsampled to at most 50 points
    assert all(isinstance(v, float) for v in stats.curves["g_loss"])
    assert calls[-1] == (120, 120) and len(calls) <= 61
    assert [s for s, _ in calls] == sorted(s for s, _ in calls)
    json.dumps(stats.to_dict())  # the ledger stores it as JSON
    assert trained.state["meta"]["lineage_steps"] == 120
    assert not trained.generator.training and not trained.discriminator.training


def test_the_ema_generator_is_what_renders(squares):
    with_ema = train_briefly(tiny_genome(ema=0.99), squares, steps=5, seed=0)
    assert_same_tensors(with_ema.generator.state_dict(), with_ema.state["g_ema"])
    assert differs(with_ema.state["g_ema"], with_ema.state["g"])
    without = train_briefly(tiny_genome(ema=0.0), squares, steps=5, seed=0)
    assert without.state["g_ema"] is None
    assert_same_tensors(without.generator.state_dict(), without.state["g"])


def test_a_time_budget_stops_early(squares):
    trained = train_briefly(tiny_genome(), squares, steps=10_000, seed=0, budget_seconds=0.0)
    assert trained.stats.status == "ok" and trained.stats.steps == 1


def test_fewer_images_than_the_batch_size(squares):
    trained = train_briefly(tiny_genome(batch_size=64), squares[:5], steps=2, seed=0)
    assert trained.stats.status == "ok" and trained.stats.steps == 2


# ---- divergence --------------------------------------------------------------------------


def test_a_huge_learning_rate_diverges_with_a_reason(squares):
    genome = tiny_genome()
    # outside the gene range on purpose (validate would refuse it): train what it is given
    genome = genome.replace(training=dataclasses.replace(genome.training, lr_g=1e3, lr_d=1e3))
    trained = train_briefly(genome, squares, steps=50, seed=0)
    assert trained.stats.status == "diverged"
    assert "exploded" in trained.stats.reason or "NaN" in trained.stats.reason or "infinite" in trained.stats.reason
    assert "step" in trained.stats.reason
    assert trained.stats.steps < 50
    assert len(trained.stats.curves["g_loss"]) == trained.stats.steps
    worst = max(abs(v) for v in trained.stats.curves["g_loss"] + trained.stats.curves["d_loss"])
    assert worst > EXPLODING_LOSS or worst != worst


@pytest.mark.parametrize("bad, word", [(float("nan"), "NaN"), (float("inf"), "infinite")])
def test_a_non_finite_loss_stops_training_at_once(squares, monkeypatch, bad, word):
    real = losses.g_adversarial
    monkeypatch.setattr(losses, "g_adversarial", lambda genes, fake: real(genes, fake) * bad)
    trained = train_briefly(tiny_genome(), squares, steps=30, seed=0)
    assert trained.stats.status == "diverged"
    assert trained.stats.reason == f"loss became {word} at step 1"
    assert trained.stats.steps == 1 and trained.stats.lineage_steps == 1


def test_a_loss_that_explodes_later_is_caught_when_it_does(squares, monkeypatch):
    calls = {"n": 0}
    real = losses.d_adversarial

    def exploding(genes, r, f):
        calls["n"] += 1
        return real(genes, r, f) * (1.0 if calls["n"] < 4 else 1e6)

    monkeypatch.setattr(losses, "d_adversarial", exploding)
    trained = train_briefly(tiny_genome(), squares, steps=30, seed=0)
    assert trained.stats.status == "diverged"
    assert trained.stats.reason.startswith("loss exploded at step 4")
    assert trained.stats.steps == 4


# ---- inheritance -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def parent(squares):
    return train_briefly(tiny_genome(ema=0.99), squares, steps=6, seed=1)


def test_an_identical_child_starts_from_its_parent(squares, parent):
    genome = tiny_genome(ema=0.99)
    child = train_briefly(genome, squares, steps=0, seed=99,
                          init=Init([parent.state], Inheritance.identity(genome)))
    assert child.stats.inherited["g"][0] == child.stats.inherited["g"][1] > 0
    assert child.stats.inherited["d"][0] == child.stats.inherited["d"][1] > 0
    for part in ("g", "d", "g_ema"):
        assert_same_tensors(child.state[part], parent.state[part])
    for opt in ("opt_g", "opt_d"):  # Adam's moments continue too
        assert child.state[opt].keys() == parent.state[opt].keys()
        for name, st in parent.state[opt].items():
            assert torch.equal(child.state[opt][name]["exp_avg_sq"], st["exp_avg_sq"])
            assert float(child.state[opt][name]["step"]) == float(st["step"])
    # a fresh network with another seed is something else entirely
    fresh = train_briefly(genome, squares, steps=0, seed=99)
    assert differs(fresh.state["g"], parent.state["g"])


def test_an_inheriting_child_continues_rather_than_restarts(squares, parent):
    genome = tiny_genome(ema=0.99)
    child = train_briefly(genome, squares, steps=1, seed=99,
                          init=Init([parent.state], Inheritance.identity(genome)))
    fresh = train_briefly(genome, squares, steps=1, seed=99)
    # one Adam step moves each weight by about lr: the child stays next to its parent
    weights = ["stem.weight", "blocks.0.conv.weight", "blocks.1.conv.weight", "to_rgb.weight"]
    near = max((child.state["g"][k] - parent.state["g"][k]).abs().mean().item() for k in weights)
    far = min((fresh.state["g"][k] - parent.state["g"][k]).abs().mean().item() for k in weights)
    assert near < 0.01 < far


def test_lineage_steps_accumulate(squares, parent):
    genome = tiny_genome(ema=0.99)
    assert parent.stats.lineage_steps == 6
    child = train_briefly(genome, squares, steps=3, seed=2, init=Init([parent.state], Inheritance.identity(genome)))
    assert (child.stats.steps, child.stats.lineage_steps) == (3, 9)
    grandchild = train_briefly(genome, squares, steps=2, seed=3, init=Init([child.state], Inheritance.identity(genome)))
    assert grandchild.stats.lineage_steps == 11
    assert grandchild.state["meta"]["lineage_steps"] == 11
    assert grandchild.state["meta"]["ema_steps"] == 11


def test_a_child_with_an_inserted_block_inherits_the_other_blocks(squares, parent):
    base = tiny_genome(ema=0.99)
    b0, b1 = base.generator.blocks
    genome = base.replace(generator=dataclasses.replace(
        base.generator, blocks=(b0, Block(16, "none", 3, "none", "lrelu"), b1)))
    inheritance = Inheritance([(0, 0), None, (0, 1)], stem=0, discriminator=0)
    child = train_briefly(genome, squares, steps=0, seed=5, init=Init([parent.state], inheritance))
    got, total = child.stats.inherited["g"]
    assert 0 < got < total
    assert child.stats.inherited["d"][0] == child.stats.inherited["d"][1]
    g, pg = child.state["g"], parent.state["g"]
    assert got == len([k for k in g if not k.startswith("blocks.1.")])
    for name in ("stem.weight", "stem.bias", "to_rgb.weight", "blocks.0.conv.weight", "blocks.0.norm.running_mean"):
        assert torch.equal(g[name], pg[name]), name
    for rest in ("conv.weight", "conv.bias", "norm.weight", "norm.running_var"):
        assert torch.equal(g[f"blocks.2.{rest}"], pg[f"blocks.1.{rest}"]), rest
    assert not any(k.startswith("blocks.1.") and k in pg and g[k].shape == pg[k].shape and torch.equal(g[k], pg[k])
                   for k in g)


def test_only_matching_shapes_are_inherited(squares, parent):
    """By a state that does not name its genome (saved before morphisms, a preset's
    weights): the generator too inherits by name and shape (tests/test_morphisms.py
    covers the rewriting of a state that names it)."""
    base = tiny_genome(ema=0.99)
    b0, b1 = base.generator.blocks
    wider = base.replace(
        generator=dataclasses.replace(base.generator, blocks=(dataclasses.replace(b0, channels=24), b1)),
        discriminator=dataclasses.replace(base.discriminator, width=16),
    )
    old = dict(parent.state, meta={"lineage_steps": 6, "ema_steps": 6})
    child = train_briefly(wider, squares, steps=0, seed=5, init=Init([old], Inheritance.identity(wider)))
    g_got, g_total = child.stats.inherited["g"]
    assert 0 < g_got < g_total
    assert child.stats.inherited["d"][0] < child.stats.inherited["d"][1]
    assert torch.equal(child.state["g"]["stem.weight"], parent.state["g"]["stem.weight"])
    assert child.state["g"]["blocks.0.conv.weight"].shape != parent.state["g"]["blocks.0.conv.weight"].shape
    # and it trains from there without tripping over the parent's Adam state
    assert train_briefly(wider, squares, steps=2, seed=5,
                         init=Init([old], Inheritance.identity(wider))).stats.status == "ok"
    no_parent = train_briefly(base, squares, steps=0, seed=5, init=Init([None], Inheritance.identity(base)))
    assert no_parent.stats.inherited == {"g": [0, no_parent.stats.inherited["g"][1]],
                                         "d": [0, no_parent.stats.inherited["d"][1]]}


def test_a_mated_child_takes_its_discriminator_from_the_named_parent(squares, parent):
    genome = tiny_genome(ema=0.99)
    other = train_briefly(genome, squares, steps=4, seed=7)
    inheritance = Inheritance([(0, 0), (1, 1)], stem=0, discriminator=1)
    child = train_briefly(genome, squares, steps=0, seed=5, init=Init([parent.state, other.state], inheritance))
    assert_same_tensors(child.state["d"], other.state["d"])
    assert torch.equal(child.state["g"]["blocks.0.conv.weight"], parent.state["g"]["blocks.0.conv.weight"])
    assert torch.equal(child.state["g"]["blocks.1.conv.weight"], other.state["g"]["blocks.1.conv.weight"])
    assert torch.equal(child.state["g"]["stem.weight"], parent.state["g"]["stem.weight"])
    assert child.stats.lineage_steps == parent.stats.lineage_steps  # the stem's lineage


def test_a_child_trained_from_a_saved_state(tmp_path, squares, parent):
    """What the ledger stores (torch.save, loaded with weights_only=True) is enough to continue."""
    path = tmp_path / "train_state.pt"
    torch.save(parent.state, path)
    loaded = torch.load(path, weights_only=True)
    genome = tiny_genome(ema=0.99)
    child = train_briefly(genome, squares, steps=0, seed=5, init=Init([loaded], Inheritance.identity(genome)))
    assert_same_tensors(child.state["g_ema"], parent.state["g_ema"])


# ---- rendering ---------------------------------------------------------------------------


def test_generate_is_deterministic_even_with_noise_injection():
    genome = busy_genome()
    gen = nets.build_generator(genome, RES)
    with torch.no_grad():  # the noise scales start at 0; give them weight so noise shows
        for block in gen.blocks:
            if block.noise is not None:
                block.noise.scale.fill_(0.5)
    latents = torch.randn(10, 256, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = generate(gen, latents, noise_seed=7)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's RNG is left alone
    b = generate(gen, latents, noise_seed=7)
    assert a.shape == (10, 3, RES, RES) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert (generate(gen, latents, noise_seed=8) - a).abs().max() > 0.05
    assert (generate(gen, latents.roll(1, 0), noise_seed=7) - a).abs().max() > 0.05
    # a genome with latent 16 reads the first 16 columns of the run's 256
    assert torch.equal(generate(gen, latents[:, :16], noise_seed=7), a)


def test_generated_images_do_not_depend_on_the_batch_size():
    gen = nets.build_generator(tiny_genome(), RES)
    gen.train()  # generate switches to eval: batch norm uses its running statistics
    latents = torch.randn(10, 16, generator=torch.Generator().manual_seed(0))
    whole = generate(gen, latents)
    assert torch.allclose(generate(gen, latents, batch=3), whole, atol=1e-5)
    assert torch.allclose(generate(gen, latents[4:5]), whole[4:5], atol=1e-5)


# ---- learning ----------------------------------------------------------------------------


def test_training_learns_the_colour_and_place_of_red_squares(squares):
    latents = torch.randn(64, 16, generator=torch.Generator().manual_seed(0))
    real_colour = squares.mean((0, 2, 3))
    before = generate(train_briefly(tiny_genome(), squares, steps=0, seed=0).generator, latents)
    after = generate(train_briefly(tiny_genome(), squares, steps=150, seed=0).generator, latents)
    d_before = (before.mean((0, 2, 3)) - real_colour).norm().item()
    d_after = (after.mean((0, 2, 3)) - real_colour).norm().item()
    assert d_before > 1.0
    assert d_after < 0.25 * d_before
    centre_red = after[:, 0, 5:11, 5:11].mean().item()
    border_red = torch.cat([after[:, 0, :3].flatten(), after[:, 0, -3:].flatten()]).mean().item()
    assert centre_red - border_red > 1.0  # a red square in the middle, dark around it


# ---- devices -----------------------------------------------------------------------------


def test_resolve_device():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        assert resolve_device("auto") in ("cpu", "mps")
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")
