"""The held-out evaluation (evoart.scoring.heldout): a fresh critic on the evaluation split
that degenerate samples cannot fool, the recognisability proxy on shapes, and the rule that
nothing in evolution ever sees the evaluation images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evoart import data
from evoart.imaging import to_float_tensor
from evoart.scoring import Budget, ScoreError, critic_divergence, evaluate_samples

#: Small, as the suite's time allows; every contender below gets the same one.
BUDGET = Budget(critic_steps=150, batch=32, width=16)


@pytest.fixture(scope="module")
def shapes():
    """Evaluation images and, apart from them, other real images (both 16 px shapes)."""
    images = to_float_tensor(data.load_images("shapes", 16, count=512, seed=11).images)
    return images[:256], images[256:]


def divergence(real, fake, seed=0):
    return critic_divergence(real, fake, seed=seed, budget=BUDGET)["critic"]


def test_real_against_real_is_near_the_floor(shapes):
    evaluation, other = shapes
    assert divergence(evaluation, other[:128]) < 0.1


@pytest.mark.parametrize("kind", ["noise", "constant", "collapsed"])
def test_degenerate_samples_are_clearly_separated(shapes, kind):
    evaluation, other = shapes
    gen = torch.Generator().manual_seed(1)
    fake = {
        "noise": torch.rand(128, 3, 16, 16, generator=gen) * 2 - 1,
        "constant": torch.full((128, 3, 16, 16), 0.3),
        "collapsed": other[:1].expand(128, -1, -1, -1).clone(),  # one real image, repeated
    }[kind]
    floor = divergence(evaluation, other[:128])
    value = divergence(evaluation, fake)
    assert value > 0.6 and value > floor + 0.5, (kind, value, floor)


@pytest.mark.slow  # one of make test-fast's slowest (2026-12-02, a slow hour: the suite at 3:18)
def test_the_same_contender_and_seed_give_the_same_number(shapes):
    evaluation, other = shapes
    fake = other[:64].flip(-2)  # upside-down shapes: a contender between the extremes
    first = critic_divergence(evaluation, fake, seed=4, budget=BUDGET)
    assert critic_divergence(evaluation, fake, seed=4, budget=BUDGET) == first


@pytest.mark.slow  # one of make test-fast's slowest (2026-12-02, a slow hour: the suite at 3:18)
def test_evaluate_samples_reports_the_critic_beside_the_registry_metrics(shapes):
    evaluation, other = shapes
    out = evaluate_samples(other[:64], evaluation, seed=0, budget=BUDGET)
    assert {"critic", "critic_auc", "critic_loss", "swd", "rkid", "coverage", "meta"} <= set(out)
    assert "recognisable" not in out  # only for datasets with labels
    assert out["meta"]["samples"] == 64 and out["meta"]["evaluation_images"] == 256
    noise = evaluate_samples(torch.rand(64, 3, 16, 16) * 2 - 1, evaluation, seed=0, budget=BUDGET)
    assert noise["critic"] > out["critic"] and noise["swd"] > out["swd"] and noise["coverage"] < out["coverage"]


def test_too_few_images_for_the_critic_is_a_message():
    with pytest.raises(ScoreError, match="at least 4 real and 4 generated"):
        critic_divergence(torch.zeros(2, 3, 16, 16), torch.zeros(8, 3, 16, 16), seed=0, budget=BUDGET)


@pytest.mark.slow  # trains the shapes classifier once (about a minute on a busy 2-core machine)
def test_recognisability_is_high_for_real_shapes_and_low_for_noise(tmp_path_factory, monkeypatch, shapes):
    from evoart.scoring.heldout import recognisability, shapes_classifier

    monkeypatch.setenv("EVOART_CACHE", str(tmp_path_factory.mktemp("cache")))
    torch.set_num_threads(1)
    classifier = shapes_classifier(16)
    evaluation, _ = shapes
    assert recognisability(evaluation, classifier)["recognisable"] >= 0.8
    noise = torch.rand(256, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert recognisability(noise, classifier)["recognisable"] <= 0.05
    assert recognisability(torch.full((64, 3, 16, 16), -0.5), classifier)["recognisable"] <= 0.05
    cached = shapes_classifier(16)  # read back from the cache: the same classifier
    assert recognisability(evaluation, cached) == recognisability(evaluation, classifier)


def test_the_evaluation_images_never_reach_the_evaluation_context(tmp_path, monkeypatch):
    """What a run hands to fitness (EvalContext: training and fitness-holdout images)
    holds none of the evaluation split."""
    from evoart import runner
    from evoart.config import EvolveConfig

    seen = {}

    class Stop(Exception):
        pass

    def capture(cfg, train_u8, holdout_u8, device, protocol=None):
        seen["train"], seen["holdout"] = train_u8, holdout_u8
        raise Stop

    monkeypatch.setattr(runner, "make_context", capture)
    cfg = EvolveConfig(resolution=16, samples=16, population=2, generations=1, steps=1, workers=1, seed=6)
    with pytest.raises(Stop):
        runner.start_run(cfg, tmp_path)
    images, split = data.load_run_split(cfg)
    evaluation = {img.tobytes() for img in images.images[split.evaluation]}
    given = {img.tobytes() for img in np.concatenate([seen["train"], seen["holdout"]])}
    assert len(evaluation) == 256 and not evaluation & given
    assert len(given) + len(evaluation) == len({img.tobytes() for img in images.images})
