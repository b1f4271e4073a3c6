"""The table behind ``--precision auto`` ([cpu-speed] item 2). Not a test.

For each instruction-set level oneDNN can be held to (``ONEDNN_MAX_CPU_ISA``), a fresh
child process trains four genomes of benchmarks/throughput-genomes.json (two at 32 px, two
at 64 px) for a few steps in fp32 and in bf16 autocast, interleaved, on one thread, and
reports the bf16 / fp32 ratio of steps per second. Holding oneDNN below this CPU's best
level stands in for a CPU without those units: ``avx512_core`` is an AVX-512 CPU without
its bf16 instructions, ``avx2`` an older one. Levels above the CPU's own are skipped.

The figures go into ``evoart.train.BF16_MEASURED`` (by hand, with the date and machine).

    python benchmarks/precision_table.py [--steps 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: row of the table -> (oneDNN's level, the CPU flag that level needs)
LEVELS = {"avx2": ("AVX2", "avx2"), "avx512_core": ("AVX512_CORE", "avx512f"),
          "avx512_bf16": ("AVX512_CORE_BF16", "avx512_bf16"), "amx_bf16": ("AVX512_CORE_AMX", "amx_bf16")}


def child(steps: int) -> dict:
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(HERE))
    from throughput import _images, load_set

    from evoart.imaging import to_float_tensor
    from evoart.train import train_briefly

    genomes = [x for r in (32, 64) for x in [y for y in load_set(False) if y[0] == r][:2]]
    data = {r: to_float_tensor(_images(r, 256)) for r in (32, 64)}
    rates: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for r, g in genomes:
        for precision in ("fp32", "bf16"):  # warm-up: first-call costs (oneDNN's kernel choice)
            train_briefly(g, data[r], steps=2, seed=0, precision=precision)
        for precision in ("fp32", "bf16", "bf16", "fp32"):
            t0 = time.perf_counter()
            train_briefly(g, data[r], steps=steps, seed=1, precision=precision)
            rates[precision].append(steps / (time.perf_counter() - t0))
    ratios = [b / f for f, b in zip(rates["fp32"], rates["bf16"])]
    return {"ratio": round(statistics.median(ratios), 3), "ratios": [round(x, 3) for x in ratios],
            "fp32_steps_per_s": [round(x, 2) for x in rates["fp32"]],
            "bf16_steps_per_s": [round(x, 2) for x in rates["bf16"]],
            "isa": torch.backends.cpu.get_cpu_capability()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=15)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=Path("precision-table.json"))
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.steps)))
        return
    from evoart.train import cpu_flags

    flags = cpu_flags()
    table = {}
    for flag, (isa, needs) in LEVELS.items():
        if needs not in flags:
            print(f"{flag}: not on this CPU, skipped", file=sys.stderr)
            continue
        env = {**os.environ, "ONEDNN_MAX_CPU_ISA": isa, "OMP_NUM_THREADS": "1"}
        proc = subprocess.run([sys.executable, __file__, "--child", "--steps", str(args.steps)],
                              capture_output=True, text=True, env=env, check=True)
        table[flag] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(flag, table[flag], file=sys.stderr)
    args.out.write_text(json.dumps(table, indent=1) + "\n")
    print(json.dumps({k: v["ratio"] for k, v in table.items()}))


if __name__ == "__main__":
    main()
