"""Geodesic scan (issue 18): how often each scan order crosses an edge, and what the
geodesic order costs to compute.

Crossings: on ``two_region_images`` (two flat colours split by a straight edge at a
random orientation; 100 images at 32 px, seed 0), the mean number of consecutive scan
steps that go from one region to the other, for raster, Hilbert and the geodesic order
of each seed mode at ``DEFAULT_LAMBDA`` (and a sweep of lambda). The geodesic order is
computed as the pyramid model sees it: from the image averaged to 16 px and upsampled
back to 32 by nearest neighbour (``coarse_view``).

Timing: the geodesic orders a pyramid sampler needs for 64 images, at every scale after
the first (2, 4, 8, 16, 32 px; and 64 px for a 64 px run), each from the image's coarser
scale (64 ``shapes`` images), on one core, best of ``--repeats``.

    python benchmarks/geodesic_crossings.py [--out docs/geodesic-crossings.json]
        [--figure docs/geodesic-order.png] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from evoart.autoregressive.geodesic import (DEFAULT_LAMBDA, LAMBDA_RANGE, SEED_MODES, coarse_view, edge_cost,
                                            geodesic_order, region_crossings, seed_points, two_region_images)
from evoart.autoregressive.scans import hilbert_order, order_picture, raster_order
from evoart.data import load_images

SIZE = 32
IMAGES = 100
LAMBDAS = (0.0, 5.0, 20.0, 50.0, 100.0, 200.0, 400.0)


def mean_crossings(orders, regions) -> float:
    return float(np.mean([region_crossings(o, r) for o, r in zip(orders, regions)]))


def crossings(seed: int = 0) -> dict:
    images, regions = two_region_images(IMAGES, SIZE, seed)
    views = [coarse_view(image) for image in images]
    out = {"raster": mean_crossings([raster_order(SIZE)] * IMAGES, regions),
           "hilbert": mean_crossings([hilbert_order(SIZE)] * IMAGES, regions)}
    for mode in SEED_MODES:
        out[f"geodesic-{mode}"] = mean_crossings([geodesic_order(v, DEFAULT_LAMBDA, mode) for v in views], regions)
    sweep = {mode: {str(lam): mean_crossings([geodesic_order(v, lam, mode) for v in views], regions)
                    for lam in LAMBDAS} for mode in SEED_MODES}
    return {"means": out, "lambda_sweep": sweep}


def pyramid_views(images: np.ndarray, top: int) -> dict[int, list[np.ndarray]]:
    """For each scale s = 2, 4, ..., top: each image at s px (area mean of the top scale),
    seen through its coarser scale (``coarse_view``), as the sampler has it."""
    views = {}
    s = 2
    while s <= top:
        f = top // s
        scaled = np.rint(images.astype(np.float64).reshape(len(images), s, f, s, f, 3).mean(axis=(2, 4)))
        views[s] = [coarse_view(im) for im in scaled.astype(np.uint8)]
        s *= 2
    return views


def timing(repeats: int) -> dict:
    out = {}
    for top in (32, 64):
        images = load_images("shapes", top, count=64, seed=0).images
        views = pyramid_views(images, top)
        for mode in SEED_MODES:
            best, per_scale = float("inf"), {}
            for _ in range(repeats):
                start = time.perf_counter()
                scale_times = {}
                for s, batch in views.items():
                    t = time.perf_counter()
                    for v in batch:
                        geodesic_order(v, DEFAULT_LAMBDA, mode)
                    scale_times[str(s)] = round(time.perf_counter() - t, 4)
                total = time.perf_counter() - start
                if total < best:
                    best, per_scale = total, scale_times
            out[f"{top}px-{mode}"] = {"seconds": round(best, 4), "per_scale": per_scale}
    return out


# ---- the figure ----------------------------------------------------------------------------

PANEL = 6  # each 32 px panel drawn at 6x


def _panel(rgb: np.ndarray) -> Image.Image:
    return Image.fromarray(rgb).resize((rgb.shape[1] * PANEL, rgb.shape[0] * PANEL), Image.NEAREST)


def _cost_picture(cost: np.ndarray) -> np.ndarray:
    """Cost on a log scale, white = 1 (flat) to black = the image's highest cost."""
    level = np.log(cost) / max(np.log(cost.max()), 1e-9)
    return np.repeat(np.rint(255 * (1 - level))[..., None], 3, axis=2).astype(np.uint8)


def figure(path: Path) -> None:
    two, regions = two_region_images(1, SIZE, 3)
    shapes = load_images("shapes", SIZE, count=8, seed=0).images[2]
    patterns = load_images("patterns", SIZE, count=8, seed=0).images[1]
    rows = [("two regions", two[0], regions[0]), ("shapes", shapes, None), ("patterns", patterns, None)]
    titles = ["image (32 px)", "coarse: 16 px, upsampled", f"cost, lambda {DEFAULT_LAMBDA:g} (log)",
              "geodesic (extrema)", "raster", "hilbert"]
    w, label_h, gap = SIZE * PANEL, 16, 8
    sheet = Image.new("RGB", (len(titles) * (w + gap) + gap, label_h + len(rows) * (w + label_h + gap) + gap),
                      (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for c, title in enumerate(titles):
        draw.text((gap + c * (w + gap), 2), title, fill=(0, 0, 0))
    for r, (name, image, region) in enumerate(rows):
        view = coarse_view(image)
        orders = [geodesic_order(view, DEFAULT_LAMBDA, "extrema"), raster_order(SIZE), hilbert_order(SIZE)]
        panels = [image, view, _cost_picture(edge_cost(view, DEFAULT_LAMBDA))] + [order_picture(o, SIZE) for o in orders]
        top = label_h + r * (w + label_h + gap)
        for c, panel in enumerate(panels):
            left = gap + c * (w + gap)
            sheet.paste(_panel(panel), (left, top))
            caption = name if c == 0 else ""
            if region is not None and c >= 3:
                caption = f"{region_crossings(orders[c - 3], region)} crossings"
            draw.text((left, top + w + 2), caption, fill=(0, 0, 0))
        # the seeds, as white squares with a black rim on the geodesic order
        left = gap + 3 * (w + gap)
        for p in seed_points(view, "extrema").tolist():
            y, x = divmod(p, SIZE)
            box = (left + x * PANEL - 2, top + y * PANEL - 2, left + (x + 1) * PANEL + 1, top + (y + 1) * PANEL + 1)
            draw.rectangle(box, fill=(255, 255, 255), outline=(0, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs/geodesic-crossings.json")
    ap.add_argument("--figure", default="docs/geodesic-order.png")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": platform.processor() or platform.machine(), "threads": 1,
              "images": IMAGES, "resolution": SIZE, "coarse": SIZE // 2, "default_lambda": DEFAULT_LAMBDA,
              "lambda_range": list(LAMBDA_RANGE)}
    report["crossings"] = crossings()
    for name, value in report["crossings"]["means"].items():
        print(f"{name:>18}: {value:6.2f} crossings per image")
    report["timing_64_images_all_scales"] = timing(args.repeats)
    for name, value in report["timing_64_images_all_scales"].items():
        print(f"{name:>18}: {value['seconds']:.3f} s for 64 images, all scales {value['per_scale']}")
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    if args.figure:
        figure(Path(args.figure))
        print("wrote", args.figure)


if __name__ == "__main__":
    main()
