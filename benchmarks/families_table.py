"""docs/FAMILIES.md's table of families and scan orders (issue 18): each family's and each
AR scan order's representative, trained at [judging]'s benchmark budget (1,920 steps) on
a built-in dataset, scored with [judging]'s held-out evaluation (the critic, SWD,
coverage; nothing selection optimised), with bits per pixel where it applies, and one
contact sheet per dataset.

    .venv/bin/python benchmarks/families_table.py --data shapes --docs docs
    .venv/bin/python benchmarks/families_table.py --data patterns --docs docs

Rows. GAN: the best individual of the default evolution (halving) at 1,920 steps and the
dcgan-classic preset at the same steps, both from benchmarks/quality.py's cache of the
cell (its split, its evaluation; run quality.py first). VAE and AR: the shipped preset of
each (vae-pyramid-l1; ar-raster, ar-hilbert, ar-pyramid, ar-geodesic), trained here for
1,920 steps on the cell's training split with the family's own training, seeded by the
cell's seed. Samples come from the evaluation's fixed latents (GAN, VAE) or from sampling
noise of the same seed (AR): 256 per row. Each row is cached under the cell's folder, so
a killed run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import quality  # noqa: E402
from evoart import families  # noqa: E402
from evoart.ar_genes import scan_label  # noqa: E402
from evoart.imaging import contact_sheet, to_float_tensor, to_uint8  # noqa: E402
from evoart.presets import load_preset  # noqa: E402
from evoart.seeds import derive_seed  # noqa: E402

STEPS = 1920
TRAINED = ("vae-pyramid-l1", "ar-raster", "ar-hilbert", "ar-pyramid", "ar-geodesic")
SHOWN = 16


def train_row(cell: quality.Cell, preset: str) -> tuple[dict, np.ndarray]:
    genome = load_preset(preset).genome
    family = families.of(genome)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    trained = family.train(genome, to_float_tensor(cell.train_u8), steps=STEPS,
                           seed=derive_seed(cell.seed, "quality", preset))
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    fake = family.sample_trained(trained, quality.eval_latents(cell.seed),
                                 noise_seed=derive_seed(cell.seed, "quality-eval-noise"))
    sample_s = time.perf_counter() - t0
    held = to_float_tensor(cell.eval_u8)
    own = family.family_metrics(genome, trained, held, seed=cell.seed)
    label = f"{family.label}" + (f" {scan_label(genome.ar)}" if genome.ar is not None else "")
    info = {"preset": preset, "family": label, "steps": trained.stats.steps, "status": trained.stats.status,
            "train_seconds": round(train_s, 1), "sample_seconds": round(sample_s, 1),
            **{k: round(float(v), 4) for k, v in own.items()}}
    return info, to_uint8(fake)


def row(cell: quality.Cell, name: str) -> dict:
    path = cell.dir / f"families-{name}.json"
    if path.exists():
        return json.loads(path.read_text())
    quality.log(cell.cell, name, "...")
    if name in ("evolve-halving", "dcgan-classic"):
        cached = cell.cached("schedule-halving" if name == "evolve-halving" else "dcgan")
        if cached is None:
            raise SystemExit(f"{cell.cell}: run benchmarks/quality.py (and schedules.py) first for the GAN rows")
        samples = np.load(cell.dir / ("schedule-halving-samples.npy" if name == "evolve-halving" else "dcgan-samples.npy"))
        info = {"preset": name, "family": "GAN", "steps": cached.get("steps", STEPS),
                "evaluation": cached["evaluation"]}
    else:
        info, samples = train_row(cell, name)
        info["evaluation"] = cell.evaluate(samples)
    np.save(cell.dir / f"families-{name}-samples.npy", samples[:SHOWN])
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
    quality.log(cell.cell, name, {k: v for k, v in info["evaluation"].items() if k in ("critic", "swd", "coverage")},
                info.get("bits_per_pixel"))
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="shapes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/evoart-quality"))
    ap.add_argument("--docs", type=Path, help="write families-<data>-1920.json and .png here")
    ap.add_argument("--only", help="comma-separated rows to run (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cell = quality.Cell(args.cache, f"{args.data}-s{args.seed}-{STEPS}")
    names = ["evolve-halving", "dcgan-classic", *TRAINED]
    if args.only:
        names = [n for n in names if n in args.only.split(",")]
    real = cell.real_reference()
    rows = {"real": {"evaluation": real["evaluation"]}}
    sheet = [("training images", np.load(cell.dir / "real-samples.npy")[:SHOWN])]
    for name in names:
        info = row(cell, name)
        rows[name] = info
        ev = info["evaluation"]
        label = f"{name} ({info['family']})\ncritic {ev['critic']:.2f}  SWD {ev['swd']:.0f}  cov {ev['coverage']:.2f}"
        if "bits_per_pixel" in info:
            label += f"\n{info['bits_per_pixel']:.2f} bits/px"
        sheet.append((label, np.load(cell.dir / f"families-{name}-samples.npy")))
    out = {"cell": cell.cell, "steps": STEPS, "rows": rows}
    print(json.dumps(out, indent=1))
    if args.docs:
        (args.docs / f"families-{args.data}-{STEPS}.json").write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
        img = contact_sheet(sheet, per_row=SHOWN, scale=2,
                            title=f"{args.data}, {STEPS} steps each: held-out evaluation samples")
        img.convert("RGB").quantize(256).save(args.docs / f"families-{args.data}-{STEPS}.png", optimize=True)


if __name__ == "__main__":
    main()
