"""Where the wall time of an evolution run goes ([cpu-speed] item 5). Not a test: figures
go in docs/PERFORMANCE.md with the machine named.

Runs one real evolution (by default the default ``evoart evolve``: 8 x 6 x 120 steps,
32 px, 2 workers) in this process, the driver's functions below wrapped in wall-clock
timers (``--profile``: under cProfile instead, as before 2026-12-02; cProfile's per-call
cost slowed the driver's own torch code, the fresh critic's 150 steps 2.6 s a generation
against 1.3 s unprofiled, and overstated its share), and splits its wall time into:

- ``setup``: data, splits, metric floors, until the run reports its folder;
- ``workers``: the evaluation phases, the driver waiting on its worker processes while
  they train and score (split into ``training`` and ``scoring`` by the workers' own
  timings, ``train_s`` and ``score_s`` of every individual);
- ``judging``: the driver drawing every G's fixed-latent samples and the panel judging
  them (the fresh critic included, reported apart as ``critic``);
- ``ga``: breeding children, selection and ranking, the hall of fame, the panel rules;
- ``ledger``: the run's SQLite ledger and tensor files (begin, commit, end of generation);
- ``images``: contact sheets and the gallery's pages;
- ``other``: the rest (process start-up of the pool, progress callbacks, Python).

"Outside training" is everything but ``training``. Only the driver is timed: the workers
run untouched, so their figures are those of a normal run.

    python benchmarks/overhead.py [--out overhead.json] [--profile] [--population 8 ...]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import importlib
import json
import platform
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

# (file suffix, function name) -> category, by cumulative time. The ledger is counted
# at the store's own methods, so the contact sheets and gallery pages that the runner's
# ledger adapter makes around them fall under images alone.
FUNCTIONS = {
    "judging": [("evoart/fitness.py", "judge"), ("evoart/fitness.py", "generate_samples")],
    "critic": [("evoart/fitness.py", "train_critic")],
    "ga": [("evoart/ga.py", "make_children"), ("evoart/ga.py", "initial_members"),
           ("evoart/ga.py", "select_and_rank"), ("evoart/ga.py", "remembered_judges"),
           ("evoart/ga.py", "kin_relations"), ("deap/tools/support.py", "update")],
    "ledger": [("evoart/store/ledger.py", n) for n in (
        "begin_generation", "commit_evaluation", "end_generation",
        "load_train_state", "load_generator_state", "load_discriminator_state")],
    "images": [("evoart/imaging.py", "contact_sheet"), ("evoart/imaging.py", "png_bytes"),
               ("evoart/runner.py", "build_gallery")],
}


def cumulative(stats: pstats.Stats, suffix: str, name: str) -> float:
    return sum(v[3] for (f, _, fn), v in stats.stats.items()
               if fn == name and f.replace("\\", "/").endswith(suffix))


class Timers:
    """Wall-clock time spent in named functions, by (file suffix, name) as ``cumulative``
    reads them from a profile: each function is wrapped where it is defined and where
    evoart's modules imported it, and only its outermost call counts (a recursive or
    nested call is not counted twice)."""

    def __init__(self, wanted: list[tuple[str, str]]):
        self.seconds = {w: 0.0 for w in wanted}
        self._undo: list[tuple[object, str, object]] = []
        import evoart.runner  # noqa: F401  (every module that calls them, imported before they are wrapped)

        for suffix, name in wanted:
            if not suffix.startswith("evoart/") and not suffix.startswith("deap/"):
                continue
            module = importlib.import_module(suffix[:-3].replace("/", "."))
            attr = name if hasattr(module, name) else None
            if attr is None:  # deap's HallOfFame.update: a method
                for cls in vars(module).values():
                    if isinstance(cls, type) and name in vars(cls) and cls.__module__ == module.__name__:
                        self._wrap(cls, name, (suffix, name))
                continue
            original = getattr(module, name)
            wrapped = self._timed(original, (suffix, name))
            for mod in [m for k, m in list(sys.modules.items()) if k.startswith("evoart") and m is not None]:
                for k, v in list(vars(mod).items()):
                    if v is original:
                        self._undo.append((mod, k, v))
                        setattr(mod, k, wrapped)

    def _wrap(self, owner, attr: str, key) -> None:
        original = vars(owner)[attr]
        self._undo.append((owner, attr, original))
        setattr(owner, attr, self._timed(original, key))

    def _timed(self, fn, key):
        depth = [0]

        @functools.wraps(fn)
        def timed(*a, **kw):
            depth[0] += 1
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    self.seconds[key] += time.perf_counter() - t
        return timed

    def get(self, suffix: str, name: str) -> float:
        return self.seconds.get((suffix, name), 0.0)

    def undo(self) -> None:
        for owner, attr, original in reversed(self._undo):
            setattr(owner, attr, original)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("overhead.json"))
    ap.add_argument("--runs", type=Path, default=None, help="where the run folder goes (default: a temporary one)")
    ap.add_argument("--profile", action="store_true", help="time the driver under cProfile (slower, overstates it)")
    for name, kind in (("population", int), ("generations", int), ("steps", int), ("workers", int),
                       ("resolution", int), ("seed", int), ("precision", str), ("data", str)):
        ap.add_argument(f"--{name}", type=kind, default=None)
    args = ap.parse_args()

    import torch

    from evoart.config import EvolveConfig
    from evoart.executors import driver_threads, set_torch_threads
    from evoart.runner import start_run

    overrides = {k: v for k, v in vars(args).items()
                 if k not in ("out", "runs", "profile") and v is not None}
    cfg = EvolveConfig(**overrides)
    set_torch_threads("cpu", driver_threads(cfg.workers))  # the driver's, as `evoart evolve` sets them
    root = args.runs or Path(tempfile.mkdtemp(prefix="evoart-overhead-"))
    events: list[tuple[float, str, int | None]] = []

    def progress(kind: str, info: dict) -> None:
        events.append((time.perf_counter(), kind, info.get("generation") if isinstance(info, dict) else None))
        if kind == "generation_end":
            s = info["summary"]
            print(f"generation {s['generation']}: {s['seconds']:.1f} s", file=sys.stderr)

    wanted = [fn for fns in FUNCTIONS.values() for fn in fns] + [("evoart/runner.py", "commit")]
    if args.profile:
        prof = cProfile.Profile()
        timers = None
    else:
        prof, timers = contextlib.nullcontext(), Timers(wanted)
    t0 = time.perf_counter()
    with prof:
        outcome = start_run(cfg, root, progress=progress)
    wall = time.perf_counter() - t0
    if timers is None:
        stats = pstats.Stats(prof)
        spent = lambda suffix, name: cumulative(stats, suffix, name)  # noqa: E731
    else:
        timers.undo()
        spent = timers.get

    setup = next(t for t, k, _ in events if k == "run") - t0
    # evaluation phases: "evaluating" to "judging" of each generation
    starts = {g: t for t, k, g in events if k == "evaluating"}
    ends = {g: t for t, k, g in events if k == "judging"}
    eval_wall = sum(ends[g] - starts[g] for g in starts)
    parts = {cat: sum(spent(f, n) for f, n in fns) for cat, fns in FUNCTIONS.items()}
    # the driver's commits (ledger rows, tensor files, the samples' PNG) happen inside the
    # evaluation phases; the rest of those phases is waiting on the workers
    workers_wait = eval_wall - spent("evoart/runner.py", "commit")

    import sqlite3  # read-only, after the run: the benchmark is no part of the library

    train_s = score_s = 0.0
    steps = 0
    with sqlite3.connect(outcome.run_dir / "run.db") as c:
        for (t,) in c.execute("SELECT timings FROM individual WHERE timings IS NOT NULL"):
            tm = json.loads(t)
            train_s += tm.get("train_s", 0.0)
            score_s += tm.get("score_s", 0.0)
        for (s,) in c.execute("SELECT stats FROM individual WHERE stats IS NOT NULL"):
            steps += json.loads(s).get("steps", 0)
    training = workers_wait * train_s / (train_s + score_s)
    scoring = workers_wait - training
    split = {"setup": setup, "training": training, "scoring": scoring, "judging": parts["judging"],
             "ga": parts["ga"], "ledger": parts["ledger"], "images": parts["images"]}
    split["other"] = wall - sum(split.values())
    out = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch": torch.__version__, "config": cfg.to_dict(), "wall_s": round(wall, 1),
        "timed_by": "cProfile" if timers is None else "wall-clock timers",
        "steps": steps, "steps_per_s": round(steps / wall, 2),
        "seconds": {k: round(v, 2) for k, v in split.items()},
        "share": {k: round(v / wall, 4) for k, v in split.items()},
        "critic_s": round(parts["critic"], 2),
        "outside_training_share": round(1 - training / wall, 4),
        "worker_seconds": {"train": round(train_s, 1), "score": round(score_s, 1)},
        "run_dir": str(outcome.run_dir),
    }
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: out[k] for k in ("wall_s", "steps_per_s", "share", "critic_s", "outside_training_share")},
                     indent=1))
    if args.runs is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
