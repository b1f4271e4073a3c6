"""Is quality unchanged in bf16? ([cpu-speed], "Quality is unchanged".) Not a test.

On ``shapes`` at 1,920 total steps, for seeds 0, 1 and 2 and each precision, two
contenders of benchmarks/quality.py are trained and scored by [judging]'s held-out
evaluation (the critic's divergence and SWD against the evaluation split, which nothing
in evolution sees):

- ``evolve``: ``evoart evolve`` (6 x 4 generations x 80 steps) with ``--precision P``;
- ``dcgan``: ``dcgan-classic`` trained for 1,920 steps in precision P (the same genome,
  seed and batches in both precisions: only the arithmetic differs).

The bf16 mean must lie within the fp32 seeds' spread (min to max). Cached per precision
under ``--cache`` (resumes after a kill); prints a markdown table and writes JSON.

    python benchmarks/precision.py [--seeds 0,1,2] [--cache /tmp/evoart-precision]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality  # noqa: E402  (sets up torch threads and evoart's imports)

PRECISIONS = ("fp32", "bf16")
CONTENDERS = ("evolve", "dcgan")
METRICS = ("critic", "swd")


def measure(cache: Path, seeds: list[int]) -> dict:
    out: dict = {}
    for precision in PRECISIONS:
        quality.COMMON["precision"] = precision
        quality.TRAIN_PRECISION = precision
        root = cache / precision
        root.mkdir(parents=True, exist_ok=True)
        os.environ["EVOART_HOME"] = str(cache / "home")
        for seed in seeds:
            cell = quality.Cell(root, f"shapes-s{seed}-1920")
            for c in CONTENDERS:
                r = cell.contender(c, None)
                out.setdefault(c, {}).setdefault(precision, {})[seed] = {m: r["evaluation"][m] for m in METRICS}
    return out


def table(results: dict, seeds: list[int]) -> tuple[str, bool]:
    lines = ["| contender | metric | fp32 seeds | fp32 mean [min, max] | bf16 seeds | bf16 mean | bf16 mean within fp32 spread |",
             "|---|---|---|---|---|---|---|"]
    verdicts = []
    for c in CONTENDERS:
        for m in METRICS:
            f = [results[c]["fp32"][s][m] for s in seeds]
            b = [results[c]["bf16"][s][m] for s in seeds]
            inside = min(f) <= statistics.mean(b) <= max(f)
            verdicts.append(inside)
            lines.append(f"| {c} | {m} | {', '.join(f'{x:.3f}' for x in f)} | {statistics.mean(f):.3f} "
                         f"[{min(f):.3f}, {max(f):.3f}] | {', '.join(f'{x:.3f}' for x in b)} | "
                         f"{statistics.mean(b):.3f} | {'yes' if inside else 'no'} |")
    return "\n".join(lines) + "\n", all(verdicts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/evoart-precision"))
    ap.add_argument("--out", type=Path, default=Path("precision-quality.json"))
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    results = measure(args.cache, seeds)
    md, ok = table(results, seeds)
    args.out.write_text(json.dumps({"seeds": seeds, "results": results, "all_within_spread": ok}, indent=1) + "\n")
    print(md)
    print("every bf16 mean within the fp32 spread:", ok)


if __name__ == "__main__":
    main()
