"""Compare two runs' ledgers: the same genomes and the same scores?

    python benchmarks/diff_runs.py RUN_A RUN_B      (run folders or their run.db files)

A restructuring that must not change behaviour is checked with it: a default run with the
same seed before and after must agree on every individual (genome hash, parents, status),
every score (individual, generation, metric, value: exactly), every judge cell, every
generation's members in rank order and the GA's checkpointed RNG states. Prints what
differs and exits 1, or prints what was compared and exits 0.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path


def _db(ref: str) -> Path:
    path = Path(ref)
    return path / "run.db" if path.is_dir() else path


def read(ref: str) -> dict:
    conn = sqlite3.connect(_db(ref).absolute().as_uri() + "?mode=ro", uri=True)
    try:
        inds = {r[0]: (r[1], r[2], r[3]) for r in
                conn.execute("SELECT id, genome_hash, parents, status FROM individual")}
        scores = {(r[0], r[1], r[2]): r[3] for r in
                  conn.execute("SELECT individual, generation, metric, value FROM score")}
        judge = {(r[0], r[1], r[2]): r[3] for r in
                 conn.execute("SELECT generation, d_individual, g_individual, value FROM judge")}
        members = [tuple(r) for r in conn.execute("SELECT generation, individual, rank FROM member ORDER BY 1, 3")]
        states = {r[0]: (json.loads(r[1]), json.loads(r[2]) if r[2] else None) for r in
                  conn.execute("SELECT generation, begin_state, end_state FROM generation")}
    finally:
        conn.close()
    return {"individuals": inds, "scores": scores, "judge": judge, "members": members, "states": states}


def _common(x, y):
    """Two checkpoints reduced to the keys both have (a newer evoart checkpoints more)."""
    if not isinstance(x, dict) or not isinstance(y, dict):
        return x, y
    keys = set(x) & set(y)
    return {k: x[k] for k in keys}, {k: y[k] for k in keys}


def added_keys(a: dict, b: dict) -> set[str]:
    out = set()
    for g in set(a["states"]) & set(b["states"]):
        for x, y in zip(a["states"][g], b["states"][g]):
            if isinstance(x, dict) and isinstance(y, dict):
                out |= set(x) ^ set(y)
    return out


def diff(a: dict, b: dict, limit: int = 20) -> list[str]:
    out = []
    sa, sb = {}, {}
    for g in set(a["states"]) | set(b["states"]):
        pairs = [_common(x, y) for x, y in zip(a["states"].get(g, (None, None)), b["states"].get(g, (None, None)))]
        sa[g], sb[g] = tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
    a, b = {**a, "states": sa}, {**b, "states": sb}
    for table in ("individuals", "scores", "judge", "states"):
        x, y = a[table], b[table]
        for key in sorted(set(x) | set(y), key=str):
            if x.get(key) != y.get(key):
                shown = [str(v)[:120] for v in (x.get(key, "missing"), y.get(key, "missing"))]
                out.append(f"{table} {key}: {shown[0]} != {shown[1]}")
    if a["members"] != b["members"]:
        out.append(f"members differ: {len(a['members'])} rows vs {len(b['members'])}, "
                   f"first difference at {next((i for i, (p, q) in enumerate(zip(a['members'], b['members'])) if p != q), None)}")
    return out[:limit] + ([f"... and {len(out) - limit} more"] if len(out) > limit else [])


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip())
        return 2
    a, b = read(argv[0]), read(argv[1])
    extra = added_keys(a, b)
    problems = diff(a, b)
    if problems:
        print("\n".join(problems))
        return 1
    print(f"identical: {len(a['individuals'])} individuals (genome hashes, parents, status), "
          f"{len(a['scores'])} scores, {len(a['judge'])} judge cells, {len(a['members'])} member ranks, "
          f"{len(a['states'])} generations' checkpoints (RNG states, population, hall of fame)"
          + (f"; checkpoint keys in one run only, not compared: {', '.join(sorted(extra))}" if extra else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
