"""AR family: sampling speed and bits per pixel of the shipped AR presets.

For each built-in dataset and each AR preset (one scan order each): train the preset for
``--steps`` steps at 32 px on one thread, measure bits per pixel over palette tokens on
64 held-out images, then time sampling 64 images at 32 px from fixed noise (one thread;
wall and CPU seconds, best of ``--repeats``). Also times sampling for the most expensive
designs the genes' caps allow (``repair_ar`` of the largest genes), so the 10 s target
holds across the gene space, not only for the presets; and a 64 px continued raster
render. Writes JSON, and contact sheets (samples, the scan order as a picture) as PNG.

    python benchmarks/ar_sampling.py [--steps 600] [--datasets shapes,patterns]
        [--out docs/ar-sampling.json] [--sheets /tmp/ar-sheets] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from evoart.data import load_images
from evoart.autoregressive import ARGenes, ARModel, order_picture, sample_tokens, sampling_noise, train_ar
from evoart.ar_genes import estimate_ar_sample_cost, estimate_ar_step_macs, repair_ar
from evoart.autoregressive.palette import dequantise
from evoart.presets import load_preset
from evoart.autoregressive.render import render_ar
from evoart.autoregressive.sampling import tokens_to_grid

AR_PRESET_NAMES = ("ar-raster", "ar-hilbert")  # the shipped AR presets (evoart/presets/shipped)


def _timed(fn, repeats: int) -> tuple[object, float, float]:
    best_wall, best_cpu, out = math.inf, math.inf, None
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        best_wall = min(best_wall, time.perf_counter() - w)
        best_cpu = min(best_cpu, time.process_time() - c)
    return out, best_wall, best_cpu


def _sheet(images: np.ndarray, columns: int = 8, scale: int = 3) -> Image.Image:
    rows = [np.concatenate(list(images[i:i + columns]), axis=1) for i in range(0, len(images), columns)]
    grid = np.concatenate(rows, axis=0)
    return Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--datasets", default="shapes,patterns")
    ap.add_argument("--out", default="docs/ar-sampling.json")
    ap.add_argument("--sheets", default="/tmp/ar-sheets")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--train-images", type=int, default=512)
    args = ap.parse_args()
    torch.set_num_threads(1)
    sheets = Path(args.sheets)
    sheets.mkdir(parents=True, exist_ok=True)
    noise = sampling_noise(0, 64, 32)
    report: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "torch": torch.__version__,
                    "machine": platform.processor() or platform.machine(), "threads": 1, "steps": args.steps,
                    "resolution": 32, "samples": 64, "presets": {}, "designs": []}
    for dataset in args.datasets.split(","):
        images = load_images(dataset, 32, count=args.train_images + 64, seed=0).images
        train, held = images[:args.train_images], images[args.train_images:]
        for name in AR_PRESET_NAMES:
            genes = load_preset(name).genome.ar
            result, wall, _ = _timed(lambda: train_ar(genes, train, steps=args.steps, seed=0, eval_images=held), 1)
            model = result.model()
            (tokens, orders), s_wall, s_cpu = _timed(lambda: sample_tokens(model, noise), args.repeats)
            samples = dequantise(tokens_to_grid(tokens, orders, 32), result.palette)
            _sheet(samples).save(sheets / f"{dataset}-{name}-{args.steps}.png")
            Image.fromarray(order_picture(np.asarray(orders)[0], 32)).resize((128, 128), Image.NEAREST).save(
                sheets / f"order-{name}.png")
            entry = {"dataset": dataset, "preset": name, "scan": genes.scan, "palette": genes.palette,
                     "uniform_bits": math.log2(genes.palette), "bits_per_pixel": round(result.bits_per_pixel, 3),
                     "train_loss_last50": round(float(np.mean(result.curve[-50:])), 3),
                     "train_seconds": round(wall, 1), "status": result.status,
                     "sample64_wall_s": round(s_wall, 2), "sample64_cpu_s": round(s_cpu, 2)}
            if genes.scan == "raster":
                big, r_wall, _ = _timed(lambda: render_ar(result, 64, seed=0), 1)
                _sheet(big[0], columns=1, scale=4).save(sheets / f"{dataset}-{name}-continued-64.png")
                entry["continue_64px_wall_s"] = round(r_wall, 2)
            report["presets"][f"{dataset}/{name}"] = entry
            print(json.dumps(entry), flush=True)
    # the most expensive designs the caps allow: sampling speed across the gene space
    largest = [ARGenes(width=256, layers=6, heads=8, mlp_ratio=4, context=64, batch_size=1, palette=256),
               ARGenes(width=64, layers=6, heads=4, mlp_ratio=1, context=1024, batch_size=1, palette=256),
               ARGenes(width=176, layers=2, heads=4, mlp_ratio=4, context=1024, batch_size=1, palette=256)]
    for big in largest:
        genes = repair_ar(big)
        model = ARModel(genes, 32).eval()
        _, s_wall, s_cpu = _timed(lambda: sample_tokens(model, noise), args.repeats)
        entry = {"genes": genes.to_dict(), "sample_cost_G": round(estimate_ar_sample_cost(genes) / 1e9, 2),
                 "step_macs_G": round(estimate_ar_step_macs(genes) / 1e9, 2),
                 "sample64_wall_s": round(s_wall, 2), "sample64_cpu_s": round(s_cpu, 2)}
        report["designs"].append(entry)
        print(json.dumps(entry), flush=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
