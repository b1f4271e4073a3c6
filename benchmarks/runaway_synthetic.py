"""The figures of docs/RUNAWAY.md: the synthetic ornament under runaway and random mate
choice, and the preferences' spread with and without mutation. Not a test.

Breeds through the GA exactly as tests/test_runaway.py does (its ``breed``: real
``ga.make_children`` and ``ga.select_and_rank``, no training; the named ornament is a
number of the genome's learning-rate genes, the objectives neutral), on more seeds than
the test, and writes docs/runaway.json.

    python benchmarks/runaway_synthetic.py [--seeds 6]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import test_runaway as T  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=6)
    args = ap.parse_args()
    drift = {}
    for seed in range(args.seeds):
        taste = 0.6 if seed % 2 == 0 else -0.6
        r, c = T.breed(seed, "runaway", taste=taste), T.breed(seed, "random", taste=taste)
        tr, tc = T._tail(r), T._tail(c)
        b, way = T._blocks(tr), math.copysign(1, taste)
        corr = lambda h: statistics.mean(x["ornaments"][T.NAMED]["correlation"] or 0.0 for x in h[-5:])  # noqa: E731
        drift[seed] = {"taste": taste, "runaway_moved": round(tr[-1] - tr[0], 4), "random_moved": round(tc[-1] - tc[0], 4),
                       "monotone_blocks": all(way * (y - x) > 0 for x, y in zip(b, b[1:])),
                       "correlation_last5": {"runaway": round(corr(r), 3), "random": round(corr(c), 3)},
                       "tail": {"runaway": [round(v, 4) for v in tr], "random": [round(v, 4) for v in tc]}}
        print(seed, {k: v for k, v in drift[seed].items() if k != "tail"})
    spread = {}
    for seed in range(max(2, args.seeds - 2)):
        kept = T.breed(seed, "runaway", taste=0.6, crossover_rate=0.3, population=24)
        gone = T.breed(seed, "runaway", taste=0.6, crossover_rate=1.0, population=24)
        spread[seed] = {"default_min": round(min(h["preference_spread"] for h in kept), 4),
                        "crossover_only_last": round(gone[-1]["preference_spread"], 4)}
        print(seed, spread[seed])
    out = ROOT / "docs" / "runaway.json"
    out.write_text(json.dumps({"drift": drift, "spread": spread, "floor": T.runaway.PREFERENCE_FLOOR},
                              indent=1) + "\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
