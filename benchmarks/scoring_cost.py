"""What scoring costs next to training, in a run.

Per individual: ``timings.score_s`` (its own metrics, in the worker) against
``timings.train_s``. Per generation: the judging pass (every D against every other G,
in the driver, while the workers wait), as ``judge_seconds`` of the GA's generation
summary; its share per individual is judge seconds / new individuals of that generation.
Ledger-only mode estimates judging as the gap between a generation's last commit and its
end, which also counts writing the contact sheet and the gallery pages.

    python benchmarks/scoring_cost.py RUN [RUN ...]     # from existing ledgers
    python benchmarks/scoring_cost.py --fresh [--out DIR] [evolve options as key=value]
        # runs `evoart evolve` (defaults) in this process and records the judge time too
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path


def cost(run: Path, judge_seconds: list[float] | None = None) -> dict:
    c = sqlite3.connect(f"file:{run / 'run.db'}?mode=ro", uri=True)
    rows = c.execute("SELECT id, born, timings, evaluated FROM individual WHERE timings IS NOT NULL").fetchall()
    gens = c.execute("SELECT generation, started, finished FROM generation ORDER BY generation").fetchall()
    train = sum(json.loads(t)["train_s"] for _, _, t, _ in rows)
    score = sum(json.loads(t)["score_s"] for _, _, t, _ in rows)
    gap = 0.0
    for g, started, finished in gens:
        last = max((e for _, born, _, e in rows if born == g and e is not None), default=None)
        if finished is not None and last is not None:
            gap += finished - last
    judge = sum(judge_seconds) if judge_seconds is not None else gap
    wall = (gens[-1][2] or gens[-1][1]) - gens[0][1] if gens else 0.0
    n = max(1, len(rows))
    return {
        "individuals": len(rows), "train_s": round(train, 1), "score_s": round(score, 1),
        "judge_s": round(judge, 1), "judge_source": "GA summary" if judge_seconds is not None else "ledger gap",
        "end_of_generation_gap_s": round(gap, 1),
        "score_share_of_training": round(score / train, 3),
        "judge_share_of_training": round(judge / train, 3),
        "scoring_share_of_training": round((score + judge) / train, 3),
        "score_s_per_individual": round(score / n, 3), "judge_s_per_individual": round(judge / n, 3),
        "train_s_per_individual": round(train / n, 2), "wall_s": round(wall, 1),
    }


def fresh(out: Path, options: dict) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from evoart.config import EvolveConfig
    from evoart.runner import start_run

    judge_seconds: list[float] = []

    def progress(kind: str, info: dict) -> None:
        if kind == "generation_end":
            judge_seconds.append(info["summary"]["judge_seconds"])
            print(f"generation {info['generation']}: {json.dumps(info['summary'])}", flush=True)

    t0 = time.perf_counter()
    outcome = start_run(EvolveConfig.from_dict(options), out, progress=progress)
    print(json.dumps({"run": str(outcome.run_dir), "seconds": round(time.perf_counter() - t0, 1),
                      **cost(outcome.run_dir, judge_seconds)}, indent=1))


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0] == "--fresh":
        out = Path("/tmp/evoart-cost")
        opts = {}
        rest = args[1:]
        if rest[:1] == ["--out"]:
            out, rest = Path(rest[1]), rest[2:]
        for kv in rest:
            k, v = kv.split("=", 1)
            opts[k] = json.loads(v) if v[:1] in "0123456789[{tf-" else v
        fresh(out, opts)
    else:
        for arg in args:
            print(arg, json.dumps(cost(Path(arg)), indent=1))
