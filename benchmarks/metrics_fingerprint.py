"""A small fixed fingerprint of every metric value, to prove a refactoring moved no number.

Scores 64 images of the built-in ``shapes`` dataset (32 px) against a held-out part of it
with every registered metric, through each way a caller reaches the metrics: the registry
(``get_metric``), a run's ``EvalContext.scorer`` (with its floors measured by
``protocol_floors``), ``evoart score``'s ``score_image_sets``, plus ``swd_floor``,
``pairwise_realism``, the content digests and a feature extractor saved as TorchScript
and as torch.export. Every value
is printed with ``repr``, so two outputs are equal only if every bit is.

    python benchmarks/metrics_fingerprint.py > before.txt   # ... change the code ...
    python benchmarks/metrics_fingerprint.py > after.txt && diff before.txt after.txt

About a minute on one core.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SEED = 0


def show(label: str, values) -> None:
    if isinstance(values, dict):
        for k in sorted(values):
            show(f"{label}.{k}", values[k])
    else:
        print(f"{label} = {values!r}")


class _TinyExtractor(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 16, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


def main() -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="evoart-fingerprint-") as tmp:
        os.environ["EVOART_CACHE"] = tmp  # floors are measured here, never read from a cache
        fingerprint(tmp)


def fingerprint(tmp: str) -> None:

    from evoart import data, fitness, metrics
    from evoart.imaging import to_float_tensor
    from evoart.scoring import score_image_sets

    images = to_float_tensor(data.load_images("shapes", 32, count=600).images)
    fake, reference, pool = images[:64], images[64:320], images[320:]
    show("digest.fake", metrics.tensor_digest(fake))
    show("digest.reference", metrics.tensor_digest(reference))
    show("versions", metrics.metric_versions())

    # every registered metric, through the registry
    for info in metrics.list_metrics():
        options = {"floor_real": pool, "n": 64} if info.name == "perceptual" else {}
        scorer = metrics.get_metric(info.name)(reference, seed=SEED, **options)
        show(f"registry.{info.name}", scorer.score(fake))
        if info.name == "perceptual":
            show("registry.perceptual.score_all", scorer.score_all(fake))
            show("registry.perceptual.floors", {k: v.to_dict() for k, v in scorer.floors.items()})

    # a run's context: floors from protocol_floors, scorers from EvalContext.scorer
    ctx = fitness.EvalContext(train_images=pool, holdout_images=reference,
                              latents=torch.zeros(64, fitness.LATENT_MAX), noise_seed=1, metric_seed=SEED + 3)
    show("context.floors", fitness.protocol_floors(ctx, repeats=4))
    for info in metrics.list_metrics():
        show(f"context.{info.name}", ctx.scorer(info.name).score(fake))

    # evoart score
    show("score_image_sets", score_image_sets(images[64:], fake, seed=SEED, repeats=4))

    # the other public functions
    show("swd_floor", metrics.swd_floor(images[64:], 32, SEED, repeats=3, n_real=128))
    g = torch.Generator().manual_seed(5)
    show("pairwise_realism", metrics.pairwise_realism(torch.randn(50, generator=g).round(decimals=1),
                                                      torch.randn(70, generator=g).round(decimals=1)))

    # a TorchScript feature extractor
    pt = os.path.join(tmp, "tiny.pt")
    torch.jit.script(_TinyExtractor()).save(pt)
    show("torchscript.rkid", metrics.get_metric("rkid")(reference, seed=SEED, features=pt).score(fake))
    show("torchscript.coverage", metrics.get_metric("coverage")(reference, seed=SEED, features=pt).score(fake))

    # the same extractor as a torch.export program (dynamic batch size)
    pt2 = os.path.join(tmp, "tiny.pt2")
    example = torch.zeros(2, 3, 32, 32)
    torch.export.save(torch.export.export(_TinyExtractor().eval(), (example,),
                                          dynamic_shapes=({0: torch.export.Dim("batch")},)), pt2)
    show("export.rkid", metrics.get_metric("rkid")(reference, seed=SEED, features=pt2).score(fake))
    show("export.coverage", metrics.get_metric("coverage")(reference, seed=SEED, features=pt2).score(fake))


if __name__ == "__main__":
    main()
