"""The held-out evaluation: how good a contender's samples are, measured apart from fitness.

Fitness optimises SWD, a random-CNN KID and the population's discriminators; a number that
selection pushed on cannot also be the proof of quality (Kynkäänniemi et al. 2023). This
evaluation uses the run's **evaluation holdout** (``evoart.data.splits``), which no
individual and no fitness term ever saw, and a judge trained after the run:

* **critic** (the neural-network divergence of Gulrajani et al. 2019): a small CNN,
  trained from scratch with the same budget and seed for every contender, learns to tell
  the evaluation images from the contender's samples (logistic loss, class-balanced
  batches). It trains on one half of each set and is tested on the other half, so it
  cannot win by memorising. Its best balanced test loss ``L`` over the training (tested
  every :data:`CRITIC_TEST_EVERY` steps: early stopping, the same for every contender) gives a Jensen-Shannon
  divergence estimate ``critic = max(0, 1 - L / ln 2)`` in bits: 0 when the critic does
  no better than chance (indistinguishable), 1 when it separates the sets with full
  confidence. Higher = separates them more easily = worse. (``log 2 - L`` is the lower
  bound on the JS divergence that the GAN objective gives; the critic's AUC on the test
  halves is reported beside it.)
* **swd**, **rkid**, **coverage**: the metric registry's metrics, against the evaluation
  split (never the fitness holdout).
* **recognisable** (``shapes`` only): the share of samples that a classifier trained on
  the procedural generator's own labels (:data:`CLASSES`: the kind of a single shape, or
  how many shapes) classifies with confidence >= 0.9 (:data:`RECOGNISED`). It has a "no shapes" class,
  trained on structure-free images (each training image's own pixels shuffled, and its
  mean colour), so that an image without shapes is not forced into a shape class.

:func:`evaluate_samples` scores any contender (a benchmark's baseline too);
:func:`evaluate_run` scores a run's best individuals (and any others) from its fixed latents.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import metrics
from ..seeds import derive_seed, json_digest
from .folders import ScoreError

#: Bump when the critic, the classifier or what is reported changes numbers.
HELDOUT_VERSION = 1
#: A sample counts as recognisable when the classifier's joint confidence reaches this.
RECOGNISED = 0.9
#: The metrics of the registry reported beside the critic, all on the evaluation split.
REGISTRY_METRICS = ("swd", "rkid", "coverage")
#: The critic is tested every this many steps; the best test loss counts (early stopping:
#: with a few hundred images a side it starts to memorise them long before the last step).
CRITIC_TEST_EVERY = 25
#: The datasets with labels for the recognisability proxy.
LABELLED = ("shapes",)


@dataclass(frozen=True)
class Budget:
    """What the evaluation critic and the recognisability classifier may spend. The same
    budget (and seed) must be used for every contender that is compared."""

    critic_steps: int = 400        # Adam steps of the evaluation critic
    batch: int = 64                # critic batch: half evaluation images, half samples
    width: int = 32                # critic channels in its first layer (doubling, at most x4)
    lr: float = 2e-4
    classifier_steps: int = 4000   # shapes classifier (trained once per resolution, then cached)
    classifier_images: int = 8192

    def __post_init__(self):
        for name in ("critic_steps", "batch", "width", "classifier_steps", "classifier_images"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ScoreError(f"budget: {name} must be a positive whole number, got {value!r}")
        if self.batch < 2:
            raise ScoreError("budget: batch must be at least 2 (one real and one generated image)")


class _one_thread:
    """Run small CPU models on one torch thread (and restore the count after): on a busy
    machine two threads on tiny convolutions are many times slower (docs/PERFORMANCE.md)."""

    def __enter__(self):
        self.before = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.before)


def _as_tensor(images, what: str) -> Tensor:
    """(N,3,R,R) float in [-1,1] from that or from uint8 (N,R,R,3)."""
    from ..imaging import to_float_tensor

    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ScoreError(f"{what}: expected uint8 (N, R, R, 3), got {images.dtype} {images.shape}")
        return to_float_tensor(images)
    if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 3:
        raise ScoreError(f"{what}: expected a (N, 3, R, R) tensor in [-1, 1] or uint8 (N, R, R, 3)")
    return images.detach().float().cpu()


# ---- the evaluation critic ---------------------------------------------------------------

def _conv_stack(resolution: int, width: int, outputs: int, *, pool: bool) -> nn.Sequential:
    """3x3 conv, then halve the map (strided conv, or conv + max-pool) down to 4x4, then a
    linear layer. No normalisation: train and eval modes compute the same function."""
    layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.LeakyReLU(0.2)]
    channels, size = width, resolution
    while size > 4:
        out = min(2 * channels, 4 * width)
        if pool:
            layers += [nn.Conv2d(channels, out, 3, padding=1), nn.LeakyReLU(0.2), nn.MaxPool2d(2)]
        else:
            layers += [nn.Conv2d(channels, out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        channels, size = out, size // 2
    layers += [nn.Flatten(), nn.Linear(channels * size * size, outputs)]
    return nn.Sequential(*layers)


def _halves(n: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    perm = torch.randperm(n, generator=gen)
    return perm[: n // 2], perm[n // 2:]


def _auc(real_scores: Tensor, fake_scores: Tensor) -> float:
    """P(a real image scores above a generated one), ties half (Mann-Whitney)."""
    diff = real_scores[:, None] - fake_scores[None, :]
    return float((diff > 0).double().mean() + 0.5 * (diff == 0).double().mean())


def critic_divergence(real: Tensor, fake: Tensor, *, seed: int, budget: Budget = Budget()) -> dict[str, float]:
    """Train a fresh critic on half of ``real`` and half of ``fake`` and test it on the
    other halves. Returns ``critic`` (JS divergence estimate in bits, 0 = indistinguishable,
    1 = fully separated: higher is worse), ``critic_auc`` and ``critic_loss`` (the
    class-balanced test loss, nats; ln 2 = chance)."""
    if real.shape[0] < 4 or fake.shape[0] < 4:
        raise ScoreError(f"the evaluation critic needs at least 4 real and 4 generated images "
                         f"(half train it, half test it), got {real.shape[0]} and {fake.shape[0]}")
    if tuple(real.shape[1:]) != tuple(fake.shape[1:]):
        raise ScoreError(f"real images are {tuple(real.shape[1:])} but generated ones {tuple(fake.shape[1:])}")
    gen = torch.Generator().manual_seed(derive_seed(seed, "heldout-critic-data", algorithm="blake2b"))
    r_train, r_test = _halves(real.shape[0], gen)
    f_train, f_test = _halves(fake.shape[0], gen)
    torch.manual_seed(derive_seed(seed, "heldout-critic-init", algorithm="blake2b"))
    critic = _conv_stack(real.shape[-1], budget.width, 1, pool=False)
    opt = torch.optim.Adam(critic.parameters(), lr=budget.lr, betas=(0.5, 0.999))
    half = max(1, budget.batch // 2)
    labels = torch.cat([torch.ones(half), torch.zeros(half)])
    test_real, test_fake = real[r_test], fake[f_test]

    @torch.no_grad()
    def test() -> tuple[float, Tensor, Tensor]:
        real_logits, fake_logits = critic(test_real).squeeze(1), critic(test_fake).squeeze(1)
        # class-balanced: each side weighs half whatever its size, so chance is exactly ln 2
        return 0.5 * float(F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()), real_logits, fake_logits

    best = (math.log(2.0), None, None)
    for step in range(1, budget.critic_steps + 1):
        ri = r_train[torch.randint(len(r_train), (half,), generator=gen)]
        fi = f_train[torch.randint(len(f_train), (half,), generator=gen)]
        batch = torch.cat([real[ri], fake[fi]])
        flip = torch.rand(len(batch), generator=gen) < 0.5  # mirrored images: harder to memorise
        batch = torch.where(flip[:, None, None, None], batch.flip(-1), batch)
        loss = F.binary_cross_entropy_with_logits(critic(batch).squeeze(1), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % CRITIC_TEST_EVERY == 0 or step == budget.critic_steps:
            tested = test()
            if best[1] is None or tested[0] < best[0]:
                best = tested
    test_loss, real_logits, fake_logits = best
    return {"critic": max(0.0, 1.0 - test_loss / math.log(2.0)),
            "critic_auc": _auc(real_logits, fake_logits), "critic_loss": test_loss}


# ---- the recognisability proxy (shapes) --------------------------------------------------

#: The classifier's classes: what a shapes image shows, as the generator drew it. One
#: shape: its kind (kind is well defined only then: two shapes of near-equal size have no
#: clear "largest", and a kind per shape is not learnable at 16 px in a few seconds);
#: more shapes: how many. And "no shapes", for structure-free images.
CLASSES = ("no shapes", "one circle", "one square", "one triangle", "two shapes", "three shapes")
_CLASSIFIER_SEED = 90210   # its training images: a shapes seed no run's dataset uses


def shape_classes(labels: dict) -> Tensor:
    """Class numbers (into :data:`CLASSES`) from ``shapes_with_labels``' labels."""
    count = torch.as_tensor(labels["count"])
    kind = torch.as_tensor(labels["kind"])
    return torch.where(count == 1, 1 + kind, count + 2)


def _structure_free(images: Tensor, gen: torch.Generator) -> Tensor:
    """Images with no shapes in them, as many as ``images``: a quarter each image's own
    pixels shuffled, a quarter its mean colour, and half coloured noise at a random scale
    (1 to 8 px, bilinear, at a random saturation), alone or blended at least half into
    the image. Noise
    of every scale is needed: with only the first two kinds, a 12-step generator's
    blotchy colour noise was classified as shapes every time."""
    n, _, size, _ = images.shape
    q = n // 4
    flat = images[:q].flatten(2)
    perm = torch.argsort(torch.rand(q, flat.shape[2], generator=gen), dim=1)
    shuffled = torch.gather(flat, 2, perm[:, None, :].expand(-1, 3, -1)).view(q, 3, size, size)
    mean = images[q:2 * q].mean((2, 3), keepdim=True).expand(-1, -1, size, size)
    rest = images[2 * q:]
    noise = []
    for image in rest:
        scale = int(2 ** torch.randint(0, 4, (1,), generator=gen))
        small = torch.rand(1, 3, max(1, size // scale), max(1, size // scale), generator=gen) * 2 - 1
        grey = small.mean(1, keepdim=True)
        small = grey + float(torch.rand(1, generator=gen)) * (small - grey)
        field = F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)[0]
        # blended at least half-and-half: a lighter veil of noise leaves the shapes recognisable
        alpha = 0.5 + 0.5 * float(torch.rand(1, generator=gen)) if torch.rand(1, generator=gen) < 0.5 else 1.0
        noise.append(alpha * field + (1 - alpha) * image if alpha < 1.0 else field)
    return torch.cat([shuffled, mean, torch.stack(noise)])


def _classifier_path(resolution: int, budget: Budget) -> str:
    from ..paths import cache_dir

    key = json_digest({"v": HELDOUT_VERSION, "r": resolution, "steps": budget.classifier_steps,
                       "images": budget.classifier_images, "width": CLASSIFIER_WIDTH, "lr": CLASSIFIER_LR,
                       "px": CLASSIFIER_PX, "layout": "channels_last",
                       "torch": torch.__version__.split("+")[0]}, length=16)
    return str(cache_dir() / "heldout" / f"shapes-classifier-{resolution}px-{key}.pt")


CLASSIFIER_WIDTH = 16
CLASSIFIER_LR = 2e-3
#: The classifier looks at images area-averaged down to this size: shapes are recognisable
#: there (0.86-0.88 of real images), and training at 32 px cost 7x as long on this machine.
CLASSIFIER_PX = 16


def _classifier_view(images: Tensor) -> Tensor:
    factor = images.shape[-1] // CLASSIFIER_PX
    return F.avg_pool2d(images, factor) if factor > 1 else images


def shapes_classifier(resolution: int, budget: Budget = Budget()) -> nn.Module:
    """The recognisability classifier for ``shapes`` at ``resolution``: trained on the
    generator's own labels (:data:`CLASSES`) for images drawn at ``resolution`` and
    area-averaged to :data:`CLASSIFIER_PX`, then cached under the evoart cache folder
    (weights only, ``torch.load(weights_only=True)``)."""
    from ..data.shapes import shapes_with_labels
    from ..files import atomic_write_bytes
    from ..imaging import to_float_tensor

    # channels_last: torch's CPU max pool is vectorised only in that layout (0.55 ms against
    # 5.6 ms a call here), and a training step took 23 ms against 35 ms
    model = _conv_stack(CLASSIFIER_PX, CLASSIFIER_WIDTH, len(CLASSES), pool=True).to(memory_format=torch.channels_last)
    path = _classifier_path(resolution, budget)
    try:
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()
    except (OSError, RuntimeError, ValueError, KeyError, EOFError):
        pass
    images, labels = shapes_with_labels(budget.classifier_images, resolution, seed=_CLASSIFIER_SEED)
    x = _classifier_view(to_float_tensor(images))  # drawn at the run's size, seen as the samples are
    gen = torch.Generator().manual_seed(_CLASSIFIER_SEED)
    negatives = _structure_free(x[: len(x) // 2], gen)
    x = torch.cat([x, negatives])
    y = torch.cat([shape_classes(labels), torch.zeros(len(negatives), dtype=torch.long)])
    torch.manual_seed(_CLASSIFIER_SEED)
    opt = torch.optim.Adam(model.parameters(), lr=CLASSIFIER_LR)
    for _ in range(budget.classifier_steps):
        i = torch.randint(len(x), (64,), generator=gen)
        batch = x[i]
        flip = torch.rand(len(i), generator=gen) < 0.5  # a mirror changes no label
        batch = torch.where(flip[:, None, None, None], batch.flip(-1), batch)
        loss = F.cross_entropy(model(batch.contiguous(memory_format=torch.channels_last)), y[i])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    try:
        import io

        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        atomic_write_bytes(path, buf.getvalue(), durable=False)
    except OSError:
        pass  # a cache that cannot be written is only a miss next time
    return model


@torch.no_grad()
def recognisability(images: Tensor, classifier: nn.Module) -> dict[str, float]:
    """``recognisable``: the share of ``images`` the classifier puts in a shape class
    (anything but "no shapes") with probability >= :data:`RECOGNISED`."""
    p = classifier(_classifier_view(images).contiguous(memory_format=torch.channels_last)).softmax(1)
    top, cls = p.max(1)
    confidence = torch.where(cls > 0, top, torch.zeros_like(top))
    return {"recognisable": float((confidence >= RECOGNISED).double().mean()),
            "recognisable_confidence": float(confidence.mean())}


# ---- one contender -----------------------------------------------------------------------

def evaluate_samples(samples, split, *, seed: int = 0, budget: Budget = Budget(),
                     dataset: str | None = None, features: str | None = None) -> dict:
    """The held-out evaluation of one contender's ``samples`` against ``split``, the
    evaluation holdout (each a (N,3,R,R) tensor in [-1,1] or uint8 (N,R,R,3)).

    Returns ``critic`` (higher = worse), ``critic_auc``, ``critic_loss``, ``swd``,
    ``rkid``, ``coverage`` and, for ``dataset="shapes"``, ``recognisable``, plus
    ``meta``. The same samples, split, seed and budget give the same numbers."""
    real = _as_tensor(split, "evaluation images")
    fake = _as_tensor(samples, "samples")
    if not torch.isfinite(fake).all():
        raise ScoreError("the samples contain NaN or infinity")
    t0 = time.perf_counter()
    with _one_thread():
        out: dict = dict(critic_divergence(real, fake, seed=seed, budget=budget))
    t1 = time.perf_counter()
    for name in REGISTRY_METRICS:
        scored = metrics.build_metric(name, real, seed=seed, features=features).score(fake)
        out[name] = float(scored[name])
    t2 = time.perf_counter()
    if dataset in LABELLED:
        with _one_thread():
            out.update(recognisability(fake, shapes_classifier(real.shape[-1], budget)))
    out["meta"] = {"samples": int(fake.shape[0]), "evaluation_images": int(real.shape[0]),
                   "resolution": int(real.shape[-1]), "seed": seed, "budget": asdict(budget),
                   "version": HELDOUT_VERSION,
                   "versions": {k: v for k, v in metrics.metric_versions().items() if k in REGISTRY_METRICS},
                   "seconds": {"critic": round(t1 - t0, 3), "metrics": round(t2 - t1, 3),
                               "total": round(time.perf_counter() - t0, 3)}}
    return out


# ---- a run -------------------------------------------------------------------------------

def evaluation_split(store):
    """The run's config, images and split (``data.Split``), rebuilt exactly from the run's
    record; the evaluation holdout is ``images.images[split.evaluation]``. ScoreError for
    a run without one."""
    from ..config import EvolveConfig, recorded_evolve
    from ..data import load_run_split, recorded_split

    record = store.config
    name = store.run_dir.name
    cfg = EvolveConfig.from_dict(recorded_evolve(record), source=f"run {name}")
    splits = recorded_split(record)
    if int(splits.get("version", 1)) < 2:
        raise ScoreError(
            f"run {name} was recorded before evoart kept an evaluation split: its images were split only into "
            "training and the fitness holdout, so every real image it has was seen by training or by fitness. "
            "The held-out evaluation needs images nothing in the run saw; start a new run (evoart evolve) and "
            "score that, or compare image folders with: evoart score REAL FAKE")
    if not splits.get("sizes", {}).get("evaluation"):
        raise ScoreError(f"run {name} has no evaluation split (eval_holdout = 0). Start a run with "
                         "eval_holdout = 256 (the default) to evaluate it held out.")
    images, split = load_run_split(cfg, recorded=splits)
    if images.fingerprint != record["dataset"]["fingerprint"]:
        raise ScoreError(f"the images of {cfg.data} changed since run {name} was made; its evaluation split "
                         "cannot be rebuilt. Restore them.")
    return cfg, images, split


def evaluate_run(run_dir, *, generations: list[int] | None = None, individuals: list[str] | tuple = (),
                 seed: int = 0, budget: Budget = Budget(),
                 progress: Callable[[str, int, int], None] | None = None) -> dict:
    """The held-out evaluation of a run: its best individual of each of ``generations``
    (default: generation 0 and the last finished one), any ``individuals`` by id, and a
    draw of training images as the real-vs-real reference, each from the run's fixed
    latents and scored by :func:`evaluate_samples` with one seed and budget. Reads the
    run, never writes it."""
    from ..fitness import generate_samples, make_context
    from ..genome import Genome
    from ..store import opened

    with opened(run_dir) as store:
        cfg, images, split = evaluation_split(store)
        eval_u8, train_u8 = images.images[split.evaluation], images.images[split.train]
        record = store.config
        last = store.last_finished_generation()
        if last is None:
            raise ScoreError(f"run {store.run_dir.name} has no finished generation to evaluate yet")
        wanted = sorted(set(generations)) if generations else sorted({0, last})
        for g in wanted:
            if not store.members(g):
                raise ScoreError(f"run {store.run_dir.name} has no finished generation {g} "
                                 f"(finished: 0 to {last})")
        # the run's fixed latents and noise seed, exactly as its evaluation used them
        ctx = make_context(cfg, train_u8, images.images[split.fitness], "cpu", protocol=record.get("metrics"))
        contenders: list[dict] = []
        pick = np.random.default_rng(derive_seed(seed, "heldout-real", algorithm="blake2b"))
        real_draw = train_u8[np.sort(pick.choice(len(train_u8), size=min(cfg.samples, len(train_u8)),
                                                 replace=False))]
        contenders.append({"id": "real", "label": "real (training images)", "generation": None,
                           "samples": real_draw})
        chosen = [(g, store.members(g)[0][0]) for g in wanted]  # rank 1 of each generation
        chosen += [(None, i) for i in individuals]
        rows = {r.id: r for r in store.individuals(ids=[i for _, i in chosen])}
        for g, ind in chosen:
            row = rows.get(ind)
            if row is None:
                raise ScoreError(f"run {store.run_dir.name} has no individual {ind}")
            state = store.load_generator_state(ind)
            if state is None:
                raise ScoreError(f"individual {ind} of run {store.run_dir.name} has no saved generator "
                                 "(it failed, or its weights were pruned)")
            label = f"best of generation {g}" if g is not None else f"individual (born {row.born})"
            contenders.append({"id": ind, "label": label, "generation": g,
                               "samples": generate_samples(Genome.from_dict(row.genome), state, ctx)})
    dataset = record["dataset"]["name"] if record["dataset"]["kind"] == "builtin" else None
    results = []
    for done, c in enumerate(contenders, 1):
        scored = evaluate_samples(c["samples"], eval_u8, seed=seed, budget=budget, dataset=dataset,
                                  features=cfg.features)
        meta = scored.pop("meta")
        results.append({"id": c["id"], "label": c["label"], "generation": c["generation"], **scored,
                        "seconds": meta["seconds"]["total"]})
        if progress:
            progress(c["id"], done, len(contenders))
    return {"contenders": results,
            "meta": {"run": str(run_dir), **{k: v for k, v in meta.items() if k != "seconds"},
                     "dataset": record["dataset"]["name"], "split": record["splits"],
                     "recognisability": dataset in LABELLED}}
