"""How much of a trained parent's quality a mutated child keeps, before any training.

For each parent (random generation-0 genomes of the GA, trained ``--steps`` steps on the
built-in ``shapes`` set at 32 px) this draws mutations with the GA's own operator and
rates (``variation.mutate`` at strength 1.0), sorts them by what they changed in the
generator, and scores, on held-out real images with the held-out SWD:

* ``d_parent``: the trained parent;
* ``d_child``: the child as a run starts it, right after the mutation (inherited
  tensors, zero training steps: ``train_briefly(..., steps=0, init=...)``), which is
  what the run's code does, whatever that code is;
* ``d_random``: the same child genome from random initialisation.

The share kept is (d_random - d_child) / (d_random - d_parent): 100% when the child
computes the parent's function, 0% when it is no better than a fresh network.

Each kind is measured on children whose generator changed in that way only (found by
drawing mutations until enough turn up; their loss and training genes may differ, which
does not change the function), so one kind is not blamed for another; "any mutation" is
the first children drawn, whatever they changed. The GA's frequency of each kind (share
of children that contain it) is reported beside it.

    .venv/bin/python benchmarks/preservation.py --out docs/preservation.json --md docs/preservation.md

Run it on an older checkout to get that code's figures (the script only uses APIs that
have not changed). About 5-10 minutes on one core.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

KINDS = ("add", "duplicate", "remove", "retype", "widen", "narrow", "stem", "latent",
         "upsample", "kernel", "norm", "activation", "residual", "noise", "output")
# Kinds whose change cannot keep the function in general (a new nonlinearity or layout)
APPROXIMATE = {"remove", "retype", "upsample", "activation", "residual", "noise", "norm", "narrow"}


def structural_op(genome, rng_state) -> tuple[str | None, int]:
    """Replay the first draws of ``variation.mutate``: which structural operator it chose
    (or None) and at which block. Must follow the order of draws in ``mutate``."""
    from evoart import genome as G
    r = random.Random()
    r.setstate(rng_state)
    n = len(genome.generator.blocks)
    if r.random() < min(0.6, 0.25 * 1.0):
        op = r.choice(["add", "remove", "duplicate", "retype"])
        i = r.randrange(n)
        if op in ("add", "duplicate") and n >= G.BLOCKS[1]:
            return None, -1
        if op == "remove" and n <= G.BLOCKS[0]:
            return None, -1
        return op, i
    return None, -1


def kinds_of(parent, child, op: str | None, i: int) -> set[str]:
    """What changed in the generator, by kind."""
    pb, cb = list(parent.generator.blocks), list(child.generator.blocks)
    kinds = set()
    aligned = list(range(len(pb)))  # child position -> parent position (None: new)
    if op in ("add", "duplicate"):
        aligned.insert(i + 1, None)
        kinds.add(op)
    elif op == "remove":
        del aligned[i]
        kinds.add(op)
    elif op == "retype":
        aligned[i] = None
        kinds.add(op)
    if len(cb) < len(aligned):
        kinds.add("remove")  # repair dropped trailing blocks to meet the compute cap
    aligned = aligned[: len(cb)]
    for j, src in enumerate(aligned):
        if src is None or j >= len(cb):
            continue
        a, b = pb[src], cb[j]
        if b.channels > a.channels:
            kinds.add("widen")
        if b.channels < a.channels:
            kinds.add("narrow")
        for gene in ("upsample", "kernel", "norm", "activation", "residual", "noise"):
            if getattr(a, gene) != getattr(b, gene):
                kinds.add(gene)
    g, h = parent.generator, child.generator
    if g.stem_channels != h.stem_channels:
        kinds.add("stem")
    if g.latent != h.latent:
        kinds.add("latent")
    if g.output != h.output:
        kinds.add("output")
    return kinds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parents", type=int, default=3)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--per-kind", type=int, default=4, help="children per kind and parent")
    ap.add_argument("--any", type=int, default=8, help="unfiltered children per parent")
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--label", default=None, help="name of the code measured (default: git HEAD)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--md", type=Path, default=None)
    ap.add_argument("--before", type=Path, default=None,
                    help="a JSON this script wrote on older code: the markdown shows it beside")
    ap.add_argument("--table-only", action="store_true", help="re-render --out (and --before) without measuring")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.table_only:
        result = json.loads(args.out.read_text())
        write_markdown(result, args)
        return

    from evoart import data, metrics, variation
    from evoart.imaging import to_float_tensor
    from evoart.train import Init, generate, train_briefly

    root = Path(__file__).resolve().parents[1]
    label = args.label or subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                                         capture_output=True, text=True).stdout.strip() or str(root)
    images = to_float_tensor(data.load_images("shapes", 32, count=1024 + args.samples, seed=args.seed).images)
    train, held = images[:1024], images[1024:]
    swd = metrics.build_metric("swd", held, seed=args.seed)
    latents = torch.randn(args.samples, 256, generator=torch.Generator().manual_seed(args.seed + 1))

    def distance(gen) -> float:
        fake = generate(gen, latents, noise_seed=0)
        if not torch.isfinite(fake).all():
            return float("nan")
        return float(swd.score(fake)["swd"])

    rng = random.Random(args.seed)
    rows = []
    t0 = time.perf_counter()
    for pi in range(args.parents):
        parent = variation.random_genome(rng, 32)
        trained = train_briefly(parent, train, steps=args.steps, seed=100 + pi)
        if trained.stats.status != "ok":
            print(f"parent {pi} diverged: {trained.stats.reason}", file=sys.stderr)
            continue
        d_parent = distance(trained.generator)
        print(f"parent {pi}: trained {args.steps} steps in {trained.stats.seconds:.0f}s, SWD {d_parent:.1f} "
              f"({time.perf_counter() - t0:.0f}s)", file=sys.stderr, flush=True)
        need = {k: args.per_kind for k in KINDS}
        n_any, draws = 0, 0
        mrng = random.Random(1000 + pi)
        while (n_any < args.any or any(need.values())) and draws < 20000:
            draws += 1
            state = mrng.getstate()
            op, i = structural_op(parent, state)
            child, inh = variation.mutate(parent, mrng)
            kinds = kinds_of(parent, child, op, i)
            groups = []
            if n_any < args.any:
                groups.append("any mutation")
                n_any += 1
            if len(kinds) == 1 and need.get(next(iter(kinds)), 0) > 0:
                k = next(iter(kinds))
                need[k] -= 1
                groups.append(k)
            if not groups:
                continue
            seed = 5000 + draws
            kid = train_briefly(child, train, steps=0, seed=seed,
                                init=Init([copy.deepcopy(trained.state)], inh))
            fresh = train_briefly(child, train, steps=0, seed=seed)
            d_child, d_random = distance(kid.generator), distance(fresh.generator)
            share = (d_random - d_child) / (d_random - d_parent) if d_random != d_parent else float("nan")
            for gname in groups:
                rows.append({"parent": pi, "kind": gname, "kinds": sorted(kinds), "d_parent": d_parent,
                             "d_child": d_child, "d_random": d_random, "share": share})
        print(f"  {draws} mutations drawn, {len(rows)} children scored ({time.perf_counter() - t0:.0f}s)",
              file=sys.stderr, flush=True)

    # how often the GA makes each kind of change (over many draws from the first parent's genome class)
    freq_rng = random.Random(args.seed + 7)
    counts = {k: 0 for k in KINDS}
    n_freq = 2000
    for _ in range(n_freq):
        g = variation.random_genome(freq_rng, 32)
        op, i = structural_op(g, freq_rng.getstate())
        child, _ = variation.mutate(g, freq_rng)
        for k in kinds_of(g, child, op, i):
            counts[k] += 1

    table = []
    for k in ("any mutation",) + KINDS:
        shares = [r["share"] for r in rows if r["kind"] == k and r["share"] == r["share"]]
        if not shares:
            continue
        table.append({
            "kind": k, "n": len(shares),
            "median_share": statistics.median(shares),
            "mean_share": statistics.fmean(shares),
            "min_share": min(shares),
            "ga_frequency": counts[k] / n_freq if k in counts else 1.0,
            "can_preserve": k not in APPROXIMATE and k != "any mutation",
        })
    result = {"label": label, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "args": {k: str(v) for k, v in vars(args).items()}, "seconds": round(time.perf_counter() - t0),
              "table": table, "rows": rows}
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    write_markdown(result, args)


def write_markdown(result: dict, args) -> None:
    before = {t["kind"]: t for t in json.loads(args.before.read_text())["table"]} if args.before else {}
    head = "| kind | GA frequency | can keep the function | n |"
    rule = "|---|---|---|---|"
    if before:
        head += f" before: median kept | before: mean |"
        rule += "---|---|"
    head += " median kept | mean kept | worst |"
    rule += "---|---|---|"
    md = [f"Share of the parent's held-out SWD improvement over random init kept right after the mutation; "
          f"`{result['label']}` measured {result['date']} in {result['seconds']} s"
          + (f", before: `{json.loads(args.before.read_text())['label']}`" if before else ""), "", head, rule]
    for t in result["table"]:
        row = f"| {t['kind']} | {t['ga_frequency']:.1%} | {'yes' if t['can_preserve'] else 'partly' if t['kind'] != 'any mutation' else ''} | {t['n']} |"
        if before:
            bt = before.get(t["kind"])
            row += f" {bt['median_share']:.0%} | {bt['mean_share']:.0%} |" if bt else " | |"
        row += f" {t['median_share']:.0%} | {t['mean_share']:.0%} | {t['min_share']:.0%} |"
        md.append(row)
    text = "\n".join(md)
    print(text)
    if args.md:
        args.md.write_text(text + "\n")


if __name__ == "__main__":
    main()
