"""docs/FAMILIES.md's figure of generated samples' own scan orders (issue 18): a trained
geodesic pyramid draws samples, and beside each sample its order, scale by scale, as the
sampler computed it from the scales it had drawn (``pyramid.pyramid_picture``: dark blue
first, pale yellow last), with a pyramid/raster model's fixed order for comparison.

    evoart render ar-geodesic --data shapes --steps 1920 --save-as geo-shapes   # train once
    .venv/bin/python benchmarks/geodesic_sample.py --preset geo-shapes --out docs/geodesic-samples.png

A preset with trained weights (a user preset, such as ``--save-as`` writes) is required.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evoart.autoregressive import ARTrainResult  # noqa: E402
from evoart.autoregressive.palette import dequantise  # noqa: E402
from evoart.autoregressive.pyramid import pyramid_picture  # noqa: E402
from evoart.autoregressive.sampling import noise_for, sample_tokens, tokens_to_grid  # noqa: E402
from evoart.imaging import contact_sheet  # noqa: E402
from evoart.presets import load_preset  # noqa: E402
from evoart.presets.loading import load_weights  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", required=True, help="a geodesic pyramid preset with trained weights")
    ap.add_argument("--count", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("docs/geodesic-samples.png"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    preset = load_preset(args.preset)
    state = load_weights(preset)
    if state is None or preset.genome.ar is None or preset.genome.ar.within != "geodesic":
        raise SystemExit(f"{args.preset}: needs a geodesic pyramid preset with trained weights")
    result = ARTrainResult.from_checkpoint(preset.genome.ar, state)
    model = result.model()
    r = model.resolution
    tokens, orders = sample_tokens(model, noise_for(model, args.seed, args.count), palette=result.palette)
    samples = dequantise(tokens_to_grid(tokens, orders, r), result.palette)
    rows = []
    for i in range(args.count):
        picture = pyramid_picture(model.genes, r, orders[i].numpy())
        zoom = 2
        wide = np.asarray(Image.fromarray(picture).resize((picture.shape[1] * zoom, picture.shape[0] * zoom),
                                                          Image.NEAREST))
        sample = np.asarray(Image.fromarray(samples[i]).resize((r * zoom, r * zoom), Image.NEAREST))
        gap = np.full((r * zoom, 4 * zoom, 3), 255, np.uint8)
        rows.append((f"sample {i}: its scales' orders", np.concatenate([sample, gap, wide], axis=1)[None]))
    raster = model.genes.replace(within="raster")
    from evoart.autoregressive.pyramid import pyramid_orders

    fixed = pyramid_picture(raster, r, pyramid_orders(raster, r)[0])
    fixed = np.asarray(Image.fromarray(fixed).resize((fixed.shape[1] * 2, fixed.shape[0] * 2), Image.NEAREST))
    pad = np.full((r * 2, r * 2 + 8, 3), 255, np.uint8)
    rows.append(("pyramid/raster: one order for every sample", np.concatenate([pad, fixed], axis=1)[None]))
    sheet = contact_sheet(rows, per_row=1, scale=2, title=f"{args.preset}: each sample's geodesic scan, "
                                                           "coarsest scale first (dark blue first, pale yellow last)")
    sheet.convert("RGB").save(args.out, optimize=True)
    print(args.out)


if __name__ == "__main__":
    main()
