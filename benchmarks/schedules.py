"""Where should a run's steps go? ([engine] item 1.) Not a test.

For each cell of benchmarks/quality.py (default: shapes and patterns, seeds 0 and 1, 1,920
total steps), ``evoart evolve`` runs once per schedule (``--schedule plus|comma|pbt|halving``,
evoart.schedule) at the same total steps and seed. Each run's rank-1 individual draws 256
samples from latents of its own, scored by [judging]'s held-out evaluation against the
run's evaluation split, beside the cell's cached baselines (``dcgan``, ``preset``,
``random``: run benchmarks/quality.py first). Reports the best lineage's share of the
steps, and baseline / evolved ratios on the critic's divergence and SWD (>= 1.25 is the
goal). Cached per cell and schedule (resumes after a kill).

    python benchmarks/schedules.py [--cells shapes-s0-1920,...] [--schedules plus,comma,pbt,halving]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality  # noqa: E402

from evoart import genome as G  # noqa: E402
from evoart.config import EvolveConfig  # noqa: E402
from evoart.runner import start_run  # noqa: E402
from evoart.store import opened  # noqa: E402

from evoart.schedule import SCHEDULES  # noqa: E402
BASELINES = ("dcgan", "preset", "random")
CELLS = ("shapes-s0-1920", "shapes-s1-1920", "patterns-s0-1920", "patterns-s1-1920")


def run_schedule(cell: quality.Cell, schedule: str) -> dict:
    path = cell.dir / f"schedule-{schedule}.json"
    if path.exists():
        return json.loads(path.read_text())
    root = cell.dir / f"run-schedule-{schedule}"
    done = quality.finished_run(root) if root.exists() else None
    if done is None:
        if root.exists():
            shutil.rmtree(root)
        cfg = EvolveConfig(data=quality.data_arg(cell.name, cell.cache), seed=cell.seed, schedule=schedule,
                           **quality.COMMON, **quality.BUDGETS[cell.total])
        quality.log(cell.cell, schedule, "evolving")
        done = start_run(cfg, root, name=f"{cell.cell}-{schedule}").run_dir
    best, genome, state, total = quality.run_best(done)
    with opened(done) as store:
        last = store.generations()[-1]["end_state"]["summary"]
    samples = quality.draw(G.Genome.from_dict(genome), state, cell.cfg.resolution, cell.seed)
    result = {"schedule": schedule, "best": best, "steps": total, "genome": genome,
              "best_lineage_steps": last.get("best_lineage_steps"), "best_lineage_share": last.get("best_lineage_share"),
              "evaluation": cell.evaluate(samples), "run": str(done)}
    quality.log(cell.cell, schedule, {k: round(result["evaluation"][k], 3) for k in ("critic", "swd", "coverage")},
                "lineage", result["best_lineage_share"])
    cell.store_result(f"schedule-{schedule}", result, samples)
    return result


def report(rows: dict, cells: list[str], schedules: list[str]) -> str:
    out = ["| schedule | best lineage's share | " + " | ".join(f"{c}: critic / SWD" for c in cells) + " |",
           "|---|---|" + "---|" * len(cells)]
    for s in schedules:
        shares = [rows[c][s]["best_lineage_share"] for c in cells if s in rows[c]]
        vals = [f"{rows[c][s]['evaluation']['critic']:.3f} / {rows[c][s]['evaluation']['swd']:.1f}" if s in rows[c]
                else "-" for c in cells]
        out.append(f"| {s} | {statistics.mean(shares):.0%} | " + " | ".join(vals) + " |")
    for b in BASELINES:
        vals = [f"{rows[c][b]['evaluation']['critic']:.3f} / {rows[c][b]['evaluation']['swd']:.1f}" if b in rows[c]
                else "-" for c in cells]
        out.append(f"| {quality.LABELS[b]} | - | " + " | ".join(vals) + " |")
    out += ["", "Ratios baseline / evolved (critic ; SWD), the goal >= 1.25:", "",
            "| schedule | " + " | ".join(f"vs {b}" for b in BASELINES) + " |", "|---|" + "---|" * len(BASELINES)]
    for s in schedules:
        cellsv = []
        for b in BASELINES:
            parts = []
            for c in cells:
                if s in rows[c] and b in rows[c]:
                    e, base = rows[c][s]["evaluation"], rows[c][b]["evaluation"]
                    parts.append(f"{base['critic'] / max(e['critic'], 1e-9):.2f};{base['swd'] / e['swd']:.2f}")
            cellsv.append(" ".join(parts))
        out.append(f"| {s} | " + " | ".join(cellsv) + " |")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", default=",".join(CELLS))
    ap.add_argument("--schedules", default=",".join(SCHEDULES))
    ap.add_argument("--cache", type=Path, default=Path("/tmp/evoart-quality"))
    ap.add_argument("--out", type=Path, default=Path("schedules.json"))
    args = ap.parse_args()
    import os

    os.environ["EVOART_HOME"] = str(args.cache / "home")
    cells, schedules = args.cells.split(","), args.schedules.split(",")
    rows: dict = {}
    for name in cells:
        cell = quality.Cell(args.cache, name)
        cached = {b: cell.cached(b) for b in BASELINES}
        rows[name] = {b: v for b, v in cached.items() if v}
        for s in schedules:
            rows[name][s] = run_schedule(cell, s)
        args.out.write_text(json.dumps(rows, indent=1, default=str) + "\n")
    print(report(rows, cells, schedules))


if __name__ == "__main__":
    main()
