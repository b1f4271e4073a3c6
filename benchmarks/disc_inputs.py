"""Which discriminator input representation wins on which dataset?

One generator genome (a shipped preset, ``dcgan-classic`` by default), its discriminator
given each input representation in turn (``pixels``, ``pyramid``, ``random-features``;
every other gene unchanged), trained from scratch for ``--steps`` steps on each dataset
and seed, then scored by the held-out evaluation (``evoart.scoring.heldout``) exactly as
benchmarks/quality.py scores its contenders: the same data split (seed, resolution 32),
the same training seed, 256 samples from the same evaluation latents, the same
evaluation budget. So the ``pixels`` row of a cell is quality.py's ``dcgan`` contender of
that cell, trained again.

Results are cached per run under ``--cache`` (one JSON each), so an interrupted benchmark
resumes; ``--report`` prints the markdown table of docs/QUALITY.md and writes a contact
sheet per cell to docs/. Not a test. One torch thread.

    python benchmarks/disc_inputs.py --datasets shapes,patterns --seeds 0 --steps 1920
    python benchmarks/disc_inputs.py --datasets shapes,patterns --seeds 0 --steps 1920 --report
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evoart import genome as G  # noqa: E402
from evoart.config import EvolveConfig  # noqa: E402
from evoart.data import load_run_split  # noqa: E402
from evoart.fitness import make_latents  # noqa: E402
from evoart.imaging import contact_sheet, png_bytes, to_float_tensor, to_uint8  # noqa: E402
from evoart.nets import build_discriminator, count_parameters  # noqa: E402
from evoart.presets import load_preset  # noqa: E402
from evoart.scoring.heldout import Budget, evaluate_samples  # noqa: E402
from evoart.seeds import derive_seed  # noqa: E402
from evoart.train import generate, train_briefly  # noqa: E402

EVAL_SAMPLES = 256
RESOLUTION = 32
#: Earlier versions of a representation, whose results were moved into a subfolder of the
#: cache when the code changed: subfolder -> (input, label in the table).
VARIANTS = {"pyramid-v0": ("pyramid", "`pyramid`, first version (low-pass entering at 4x4)")}
COLUMNS = ("critic", "critic_auc", "swd", "rkid", "coverage", "recognisable")


def log(*parts) -> None:
    print(time.strftime("%H:%M:%S"), *parts, flush=True)


def split_of(dataset: str, seed: int):
    """Training and evaluation images as quality.py's cell of this dataset and seed has them."""
    cfg = EvolveConfig(data=dataset, seed=seed, resolution=RESOLUTION)
    images, split = load_run_split(cfg)
    return images.images[split.train], images.images[split.evaluation]


def run_one(cache: Path, preset: str, dataset: str, seed: int, steps: int, kind: str) -> dict:
    path = cache / f"{preset}-{dataset}-s{seed}-{steps}-{kind}.json"
    if path.exists():
        return json.loads(path.read_text())
    torch.set_num_threads(1)
    base = load_preset(preset).genome
    genome = G.validate(base.replace(discriminator=dataclasses.replace(base.discriminator, input=kind)))
    train_u8, eval_u8 = split_of(dataset, seed)
    log(preset, dataset, seed, steps, kind, "training")
    t0 = time.perf_counter()
    trained = train_briefly(genome, to_float_tensor(train_u8), steps=steps,
                            seed=derive_seed(seed, "quality", preset))  # quality.py's seed for this preset
    secs = time.perf_counter() - t0
    latents = make_latents(EVAL_SAMPLES, derive_seed(seed, "quality-eval-latents"))
    samples = to_uint8(generate(trained.generator, latents, noise_seed=derive_seed(seed, "quality-eval-noise")))
    ev = evaluate_samples(samples, eval_u8, seed=seed, budget=Budget(),
                          dataset=dataset if dataset == "shapes" else None)
    ev["seconds"] = ev.pop("meta")["seconds"]["total"]
    D = build_discriminator(genome, RESOLUTION)
    result = {"preset": preset, "dataset": dataset, "seed": seed, "steps": steps, "input": kind,
              "status": trained.stats.status, "train_seconds": round(secs, 1),
              "steps_per_second": round(trained.stats.steps_per_second, 2),
              "d_params": count_parameters(D), "step_gmacs": round(G.estimate_step_macs(genome, RESOLUTION) / 1e9, 3),
              "evaluation": ev, "genome": genome.to_dict()}
    np.save(path.with_suffix(".npy"), samples[:16])
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
    log(preset, dataset, seed, kind, {k: round(v, 4) for k, v in ev.items() if isinstance(v, float)},
        f"train {secs:.0f} s")
    return result


def fmt(v) -> str:
    if v is None:
        return "–"
    return f"{v:.3g}"


def report(cache: Path, preset: str, datasets, seeds, steps: int, docs: Path | None) -> str:
    lines = ["| dataset | D input | critic ↓ | critic AUC ↓ | SWD ↓ | rKID ↓ | coverage ↑ | recognisable ↑ "
             "| D params | step G MACs | train s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for ds in datasets:
        rows = []
        for kind, where, label in [(k, cache, f"`{k}`") for k in G.D_INPUTS] + [
                (k, cache / sub, text) for sub, (k, text) in VARIANTS.items()]:
            rs = [json.loads(p.read_text()) for s in seeds
                  if (p := where / f"{preset}-{ds}-s{s}-{steps}-{kind}.json").exists()]
            if not rs:
                continue
            cells = []
            for col in COLUMNS:
                vals = [r["evaluation"].get(col) for r in rs]
                cells.append(" / ".join(fmt(v) for v in vals))
            secs = " / ".join(f"{r['train_seconds']:.0f}" for r in rs)
            lines.append(f"| {ds} | {label} | " + " | ".join(cells)
                         + f" | {rs[0]['d_params']:,} | {rs[0]['step_gmacs']:.2f} | {secs} |")
            if where == cache:
                rows.append((kind, rs))
        if docs is not None and rows:
            for s in seeds:
                sheet_rows = [(kind, np.load(cache / f"{preset}-{ds}-s{s}-{steps}-{kind}.npy"))
                              for kind, _ in rows if (cache / f"{preset}-{ds}-s{s}-{steps}-{kind}.npy").exists()]
                if sheet_rows:
                    _, eval_u8 = split_of(ds, s)
                    sheet = contact_sheet([("evaluation images", eval_u8[:8])] + sheet_rows, per_row=8, scale=2,
                                          title=f"{preset}, {ds}, seed {s}, {steps} steps: D input")
                    (docs / f"disc-inputs-{ds}-s{s}-{steps}.png").write_bytes(png_bytes(sheet))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="shapes,patterns")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--steps", type=int, default=1920)
    ap.add_argument("--preset", default="dcgan-classic")
    ap.add_argument("--inputs", default=",".join(G.D_INPUTS))
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "evoart-disc-inputs")
    ap.add_argument("--report", action="store_true", help="print the table and write the contact sheets")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs")
    a = ap.parse_args()
    a.cache.mkdir(parents=True, exist_ok=True)
    datasets = a.datasets.split(",")
    seeds = [int(s) for s in a.seeds.split(",")]
    if a.report:
        print(report(a.cache, a.preset, datasets, seeds, a.steps, a.docs))
        return
    for seed in seeds:
        for ds in datasets:
            for kind in a.inputs.split(","):
                run_one(a.cache, a.preset, ds, seed, a.steps, kind)


if __name__ == "__main__":
    main()
