"""The validation table of docs/METRICS.md: every metric on the FID paper's disturbances
(``evoart.scoring.validation``), per built-in dataset, at N = 512 images per set.

The test suite (tests/test_metrics_validation.py) computes the same table for ``shapes``
and asserts on it; this script prints it as markdown for all three datasets and writes
the raw figures to docs/metrics-validation.json. About two minutes per dataset here.

    python benchmarks/metrics_table.py [--datasets shapes:landscapes,landscapes:patterns,patterns:shapes]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evoart.scoring.validation import LEVELS, TABLE_METRICS, validation_table  # noqa: E402

LABEL = {"noise": "Gaussian noise", "blur": "Gaussian blur", "rectangles": "black rectangles",
         "swirl": "swirl", "salt_pepper": "salt and pepper", "contamination": "contamination",
         "collapse": "collapse (k x repeated)", "color_shift": "colour shift"}


def fmt(v: float) -> str:
    if abs(v) >= 1000:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3f}" if abs(v) < 1 else f"{v:.2f}"


def markdown(t: dict) -> str:
    lines = [f"### {t['dataset']} (contaminated with {t['other']}), {t['resolution']} px, N = {t['n']}", ""]
    f = t["floors"]
    lines.append("Real vs real (mean ± std over " + str(t["floor_repeats"]) + " draws): "
                 + ", ".join(f"{m} {fmt(f[m]['mean'])} ± {fmt(f[m]['std'])}" for m in TABLE_METRICS if m in f))
    k = t["kid_halves"]
    lines.append(f"; KID between two halves of the real set: {k['mean']:.2f} ± {k['se']:.2f} (SE, "
                 f"{k['splits']} splits, x1e3).")
    lines += ["", "| disturbance | level | " + " | ".join(TABLE_METRICS) + " |",
              "|---|---|" + "---|" * len(TABLE_METRICS)]
    for kind, rows in t["table"].items():
        for level, row in enumerate(rows):
            if level == 0 and kind != "noise":
                continue
            name = "clean" if level == 0 else LABEL[kind]
            lv = "0" if level == 0 else f"{LEVELS[kind][level - 1]:g}"
            cells = [fmt(row[m]) if m in row else "–" for m in TABLE_METRICS]
            lines.append(f"| {name} | {lv} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"(seconds: {t['seconds']})")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="shapes:landscapes,landscapes:patterns,patterns:shapes")
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--json", default=str(ROOT / "docs" / "metrics-validation.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    tables = []
    for pair in args.datasets.split(","):
        dataset, other = pair.split(":")
        t = validation_table(dataset, other, n=args.n, floor_repeats=5)
        tables.append(t)
        print(markdown(t), flush=True)
        print(flush=True)
    Path(args.json).write_text(json.dumps(tables, indent=1) + "\n")


if __name__ == "__main__":
    main()
