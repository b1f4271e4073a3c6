"""Which gene values of generation 0 learn? ([engine] item 5.) Not a test.

Reads the ledgers that benchmarks/quality.py and benchmarks/schedules.py leave in their
cache (every ``run.db`` under it), takes each run's generation-0 individuals (trained from
scratch for the run's ``--steps``), ranks them within their run by the run's own SWD (a
diverged or failed individual ranks last), and prints, for each gene value held by at
least 8 individuals, the mean rank percentile of those that hold it: 0 is best, 0.5 is
average. A univariate screen: it cannot tell a gene's effect from whatever else the draw
ties to it (docs/QUALITY.md "Generation 0" says what that cost).

    python benchmarks/gen0_screen.py [--cache /tmp/evoart-quality] [--json out.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
from pathlib import Path

from evoart.store import opened

ADVERSARIAL = ("nonsaturating", "hinge", "leastsquares")


def generation_zero(db: Path) -> list[tuple[dict, float]]:
    """(genome, rank percentile) of each generation-0 individual of one run."""
    with opened(db.parent) as store:
        run = [(row.genome, store.scores(row.id, 0).get("swd", float("inf")) if row.status == "ok" else float("inf"))
               for row in store.individuals(born=0)]
    order = sorted(range(len(run)), key=lambda k: run[k][1])
    n = len(run)
    return [(run[k][0], pos / (n - 1) if n > 1 else 0.5) for pos, k in enumerate(order)]


def features(g: dict) -> dict:
    G, D, L, T = g["generator"], g["discriminator"], g["loss"], g["training"]
    single = [t for t in ADVERSARIAL if L[t] > 0]
    f = {"output": G["output"], "D family": D["family"], "D norm": D["norm"], "D input": D.get("input", "pixels"),
         "batch": T["batch_size"], "D steps": T["d_steps"], "EMA": T["ema"] > 0, "blocks": len(G["blocks"]),
         "R1": L["r1"] > 0, "feature matching": L["feature_matching"] > 0, "mode seeking": L["mode_seeking"] > 0,
         "loss": single[0] if len(single) == 1 else "mix", "beta1": round(T["beta1"] * 2) / 2,
         "any residual": any(b["residual"] for b in G["blocks"]), "any noise": any(b["noise"] for b in G["blocks"])}
    for k in ("upsample", "norm", "activation", "kernel"):
        for v in {b[k] for b in G["blocks"]}:
            f[f"a block's {k} = {v}"] = True
    return f


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/evoart-quality"))
    ap.add_argument("--json", type=Path)
    ap.add_argument("--min", type=int, default=8, help="gene values held by fewer individuals are left out")
    args = ap.parse_args()
    dbs = sorted(args.cache.glob("**/run.db"))
    by = collections.defaultdict(list)
    total = 0
    seen = set()
    for db in dbs:
        for genome, pct in generation_zero(db):
            # the schedules of one cell share its seed, so their generation 0 is the same draw
            key = (db.parent.parent.parent.name, json.dumps(genome, sort_keys=True))
            if key in seen:
                continue
            seen.add(key)
            total += 1
            for k, v in features(genome).items():
                by[f"{k}: {v}" if not isinstance(v, bool) or not k.startswith("a block") else k].append(pct)
    rows = sorted((statistics.mean(p), len(p), name) for name, p in by.items() if len(p) >= args.min)
    print(f"{total} generation-0 individuals from {len(dbs)} runs under {args.cache}")
    print("mean rank percentile (0 = best, 0.5 = average), holders, gene value")
    for mean, n, name in rows:
        print(f"{mean:.3f}  {n:4d}  {name}")
    if args.json:
        args.json.write_text(json.dumps({"individuals": total, "runs": len(dbs),
                                         "rows": [{"gene": g, "mean_percentile": round(m, 3), "n": n}
                                                  for m, n, g in rows]}, indent=1) + "\n")


if __name__ == "__main__":
    main()
