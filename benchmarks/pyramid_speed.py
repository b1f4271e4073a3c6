"""Sampling speed of the pyramid scans (issue 18): 64 samples at 32 px on one core, for
the shipped ar-pyramid and ar-geodesic presets and for the costliest pyramid designs the
sampling cap lets evolution reach. Goals: pyramid at most 10 s, geodesic at most 30 s.

    .venv/bin/python benchmarks/pyramid_speed.py --out docs/pyramid-speed.json

Each model is trained for a few steps on shapes first (the geodesic order's seeds depend
on what the model draws, and an untrained model draws noise); the median of --repeats
timings is reported, with the share spent computing geodesic orders.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evoart.ar_genes import ARGenes, describe_ar, estimate_ar_sample_cost, repair_ar  # noqa: E402
from evoart.autoregressive import geodesic, train_ar  # noqa: E402
from evoart.autoregressive.sampling import noise_for, sample_ar  # noqa: E402
from evoart.data import load_images  # noqa: E402
from evoart.presets import load_preset  # noqa: E402


def designs() -> dict[str, ARGenes]:
    big = repair_ar(ARGenes(scan="pyramid", within="raster", width=128, layers=6, heads=8, mlp_ratio=4,
                            context=1024, batch_size=1))
    return {"ar-pyramid": load_preset("ar-pyramid").genome.ar, "ar-geodesic": load_preset("ar-geodesic").genome.ar,
            "a large design, repaired under the cap": big,
            "the same, geodesic": big.replace(within="geodesic")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    images = load_images("shapes", 32, count=128, seed=0).images
    rows = {}
    for name, genes in designs().items():
        result = train_ar(genes, images, steps=30, seed=0, evaluate=False)
        model = result.model()
        seconds, in_orders = [], []
        for r in range(args.repeats):
            spent = [0.0]
            inner = geodesic.geodesic_order

            def timed(*a, **k):
                t = time.perf_counter()
                try:
                    return inner(*a, **k)
                finally:
                    spent[0] += time.perf_counter() - t
            geodesic.geodesic_order = timed
            try:
                t0 = time.perf_counter()
                sample_ar(result, noise_for(model, r, 64))
                seconds.append(time.perf_counter() - t0)
            finally:
                geodesic.geodesic_order = inner
            in_orders.append(spent[0])
        rows[name] = {"genes": describe_ar(genes), "sample_cost_g": round(estimate_ar_sample_cost(genes, 32) / 1e9, 3),
                      "seconds_64": round(statistics.median(seconds), 2),
                      "geodesic_order_seconds": round(statistics.median(in_orders), 2),
                      "all_seconds": [round(s, 2) for s in seconds]}
        print(name, json.dumps(rows[name]), flush=True)
    out = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, one torch thread",
           "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "rows": rows}
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
