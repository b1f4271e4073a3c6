"""Contact sheet for docs/FAMILIES.md: the shipped VAE preset against a GAN preset at
equal training steps on a built-in dataset, from the same fixed latents, with each
one's held-out scores (perceptual distance, coverage) and the VAE's ELBO.

    .venv/bin/python benchmarks/families_sheet.py --steps 600 --out docs/families-shapes-s0-600.png

Deterministic on the CPU for a seed; one torch thread.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evoart import families, metrics  # noqa: E402
from evoart.data.builtin import _generate_builtin  # noqa: E402
from evoart.imaging import contact_sheet, png_bytes, to_float_tensor, to_uint8  # noqa: E402
from evoart.presets import load_preset  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="shapes")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--presets", default="dcgan-classic,vae-pyramid-l1")
    ap.add_argument("--out", type=Path, default=Path("docs/families-shapes-s0-600.png"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    images = to_float_tensor(_generate_builtin(args.data, 1280, 32, args.seed))
    train, held = images[:1024], images[1024:]
    latents = torch.randn(128, 256, generator=torch.Generator().manual_seed(args.seed + 1))
    scorer = metrics.build_metric("perceptual", held, seed=args.seed + 3, floor_real=train[:512], n=128)
    cover = metrics.build_metric("coverage", held, seed=args.seed + 3)
    rows, record = [("real\n(held out)", to_uint8(held[:16]))], {}
    for name in args.presets.split(","):
        genome = load_preset(name).genome
        family = families.of(genome)
        t0 = time.perf_counter()
        trained = family.train(genome, train, steps=args.steps, seed=args.seed)
        seconds = time.perf_counter() - t0
        fake = family.sample_trained(trained, latents, noise_seed=args.seed + 2)  # each family its own way
        scores = {k: round(float(v), 4) for k, v in scorer.score_all(fake).items() if k in ("perceptual", "swd")}
        scores["coverage"] = round(float(cover.score(fake)["coverage"]), 4)
        scores.update(family.family_metrics(genome, trained, held, seed=args.seed + 3))
        scores["train_seconds"] = round(seconds, 1)
        record[name] = scores
        label = f"{name}\n{family.label}, {args.steps} steps\np {scores['perceptual']:.1f} c {scores['coverage']:.2f}"
        if "elbo" in scores:
            label += f"\nELBO {scores['elbo']:.0f}"
        rows.append((label, to_uint8(fake[:16])))
        print(name, json.dumps(scores), flush=True)
    sheet = contact_sheet(rows, per_row=16, scale=2,
                          title=f"{args.data}, 32 px, seed {args.seed}: equal steps, the same fixed latents")
    args.out.write_bytes(png_bytes(sheet))
    args.out.with_suffix(".json").write_text(json.dumps({"steps": args.steps, "seed": args.seed, "data": args.data,
                                                          "scores": record}, indent=1) + "\n")


if __name__ == "__main__":
    main()
