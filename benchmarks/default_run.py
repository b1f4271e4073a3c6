"""The default run, as a user gets it ([engine] item 6). Not a test.

Runs ``evoart evolve DATA --seed SEED`` with every other setting at its default,
timed from the outside (the wall time a user waits, start-up included), then measures
with [judging]'s held-out evaluation (``evoart.scoring.heldout``, which selection never
saw) the rank-1 individual of generation 0 and of the last generation, beside the
training images themselves. On ``shapes`` that includes the recognisability proxy: the
issue asks that the best individual's figure be at least half the real images'.

Writes ``OUT/default-run.json`` and a contact sheet (real images, generation 0's best,
the last generation's best: 12 evaluation samples each); ``--docs DIR`` copies both
there. Resumes a killed run (``--resume``) rather than starting over; a finished run is
measured again without retraining (its timing is then the first run's).

    python benchmarks/default_run.py [--data shapes] [--seed 0] [--out /tmp/evoart-default] [--docs docs]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import quality  # noqa: E402

from evoart import genome as G  # noqa: E402
from evoart.imaging import contact_sheet  # noqa: E402
from evoart.scoring.heldout import evaluate_samples, evaluation_split  # noqa: E402
from evoart.seeds import derive_seed  # noqa: E402
from evoart.store import opened  # noqa: E402

SHOWN = 12


def evoart_command() -> list[str]:
    exe = Path(sys.executable).with_name("evoart")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "evoart"]


def run_default(out: Path, data: str, seed: int) -> tuple[Path, float | None]:
    """The finished default run under ``out`` (made, or resumed, here) and the wall
    seconds it took in this call (None when it was already finished)."""
    done = quality.finished_run(out) if out.exists() else None
    if done is not None:
        return done, None
    runs = sorted(p.parent for p in out.glob("*/run.db")) if out.exists() else []
    cmd = evoart_command() + (["evolve", "--resume", str(runs[-1])] if runs else
                              ["evolve", data, "--seed", str(seed), "--out", str(out)])
    quality.log("default run:", " ".join(cmd[1:]))
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    return quality.finished_run(out), (None if runs else wall)


def best_of(store, generation: int) -> tuple[str, G.Genome, dict]:
    ind = store.members(generation)[0][0]
    return ind, G.Genome.from_dict(store.individual(ind).genome), store.load_generator_state(ind)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="shapes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("/tmp/evoart-default"))
    ap.add_argument("--docs", type=Path, help="copy the JSON and the contact sheet into this folder")
    ap.add_argument("--fresh", action="store_true", help="delete a previous run under --out first")
    args = ap.parse_args()
    if args.fresh and args.out.exists():
        shutil.rmtree(args.out)
    run, wall = run_default(args.out, args.data, args.seed)
    previous = args.out / "default-run.json"
    if wall is None and previous.exists():
        wall = json.loads(previous.read_text()).get("wall_seconds")

    with opened(run) as store:
        cfg, images, split = evaluation_split(store)
        last = store.last_finished_generation()
        summary = store.generations()[-1]["end_state"]["summary"]
        firsts = best_of(store, 0)
        lasts = best_of(store, last)
    eval_u8 = images.images[split.evaluation]
    train_u8 = images.images[split.train]
    dataset = args.data if args.data in quality.BUILTINS else None

    def measure(samples: np.ndarray) -> dict:
        out = evaluate_samples(samples, eval_u8, seed=args.seed, budget=quality.EVAL_BUDGET, dataset=dataset)
        out.pop("meta")
        return {k: round(float(v), 4) for k, v in out.items() if isinstance(v, (int, float))}

    pick = np.random.default_rng(derive_seed(args.seed, "quality-real"))
    real = train_u8[np.sort(pick.choice(len(train_u8), size=min(quality.EVAL_SAMPLES, len(train_u8)), replace=False))]
    rows = {"real": measure(real)}
    sheet_rows = [("training images", real[pick.permutation(len(real))][:SHOWN])]
    for label, (ind, genome, state) in (("generation 0", firsts), (f"generation {last}", lasts)):
        samples = quality.draw(genome, state, cfg.resolution, args.seed)
        rows[label] = {"individual": ind, **measure(samples)}
        sheet_rows.append((f"{label}: {ind}", samples[:SHOWN]))
        quality.log(label, ind, rows[label])
    result = {
        "command": f"evoart evolve {args.data} --seed {args.seed}",
        "config": {k: cfg.to_dict()[k] for k in ("schedule", "population", "generations", "steps", "resolution",
                                                 "budget_steps", "precision", "workers")},
        "wall_seconds": None if wall is None else round(wall, 1),
        "total_steps": summary.get("total_steps"),
        "best_lineage_share": summary.get("best_lineage_share"),
        "evaluation": rows,
    }
    if "recognisable" in rows["real"]:
        result["recognisable_vs_real"] = round(rows[f"generation {last}"]["recognisable"] / rows["real"]["recognisable"], 3)
    args.out.mkdir(parents=True, exist_ok=True)
    previous.write_text(json.dumps(result, indent=1) + "\n")
    sheet = contact_sheet(sheet_rows, per_row=SHOWN, scale=2,
                          title=f"evoart evolve {args.data}: held-out evaluation samples")
    sheet_path = args.out / f"default-run-{args.data}.png"
    sheet.convert("RGB").quantize(256).save(sheet_path, optimize=True)
    if args.docs:
        shutil.copy(previous, args.docs / f"default-run-{args.data}.json")
        shutil.copy(sheet_path, args.docs / sheet_path.name)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
