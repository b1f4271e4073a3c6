"""Population training throughput ([cpu-speed] item 1). Not a test: figures go in
docs/PERFORMANCE.md with the machine named.

A fixed set of genomes (``throughput-genomes.json``: drawn once with
``variation.random_genome`` and a fixed seed, a mix at 32x32 and 64x64) is trained

  (a) ``naive``: one after another, eager fp32, in this process with torch's default
      threads, as pytorch/examples' DCGAN would (``naive-1t``: the same on one thread,
      which is fairer on a busy machine, where two threads collapse);
  (b) ``pool-fp32`` / ``pool-bf16``: through evoart's population evaluation (an
      ``EvalContext`` per resolution and a ``ProcessExecutor`` of ``--workers``
      processes, one torch thread each), training and scoring, in fp32 and in bf16.

Each mode runs in a fresh child process (so peak memory is its own), the modes
interleaved (naive, fp32, bf16, naive, ...) ``--repeats`` times, so that a busy machine
slows each about equally. Reports aggregate training steps/s and multiply-adds/s
(``genome.estimate_step_macs``), wall time, the ratio of every mode to ``naive``, and
peak RSS (the driver and, for pools, the largest worker). Writes JSON.

    python benchmarks/throughput.py [--steps 100] [--repeats 2] [--out throughput.json]
    python benchmarks/throughput.py --quick          # a couple of minutes: a smoke check
    python benchmarks/throughput.py --draw-genomes   # rewrite the genome set (don't, casually)

The population mode ([gpu] item 6) trains a population of ``--population`` individuals
(32 by default) for ``--steps`` steps each (300 by default) in this process on
``--device``, twice over: a realistic mix (``random_genome`` draws at 32 px, seeded) and
one signature (every individual the mix's first batchable genome, each with its own
seed). Each is trained ``naive`` (one eager individual after another, ``train_briefly``)
``graphed`` (the same, each individual's step captured in CUDA graphs, ``evoart.graphs``;
CUDA only) and ``batched`` (the individuals of one ``batched.signature`` in groups of up to
``--max-group``, ``batched.train_group``; the rest alone, graphed where CUDA is) and
``interleaved`` (every individual, in packs of ``--interleave`` trained a step of each in
turn, each on its own CUDA stream, graphed where CUDA is: ``train.train_interleaved``). The naive
loop's steps/s does not depend on how many individuals it trains one after another, so
for one signature it trains only the first ``--naive-sample`` (4). One-time start-up (a short
training of every signature, kernels and allocator warmed) is timed apart and left out.
JSON is rewritten after every measurement, so a run cut short still leaves data:

    python benchmarks/throughput.py --population 32 --device cuda --out gpu.json
    python benchmarks/throughput.py --population 4 --steps 5 --device cpu   # a smoke check
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GENOMES = HERE / "throughput-genomes.json"
MIX = {32: 6, 64: 4}  # genomes per resolution in the set
SEED = 2026
MODES = ("naive", "naive-1t", "pool-fp32", "pool-bf16")


def draw_genomes() -> list[dict]:
    """The set, drawn as a run's generation 0 is (``random_genome``), seeded."""
    from evoart.variation import random_genome

    rng = random.Random(SEED)
    return [{"resolution": r, "genome": random_genome(rng, r).to_dict()} for r, n in MIX.items() for _ in range(n)]


def load_set(quick: bool) -> list[tuple[int, object]]:
    from evoart.genome import Genome

    entries = json.loads(GENOMES.read_text())["genomes"]
    out = [(e["resolution"], Genome.from_dict(e["genome"])) for e in entries]
    if quick:  # the first two of each resolution
        out = [x for r in MIX for x in [y for y in out if y[0] == r][:2]]
    return out


def _images(resolution: int, count: int):
    from evoart.data.loading import load_images

    return load_images("shapes", resolution, count=count).images


def _peak_rss_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # kilobytes on Linux


def run_naive(genomes, steps: int, threads: int | None = None) -> dict:
    import torch

    if threads:
        torch.set_num_threads(threads)
    from evoart.imaging import to_float_tensor
    from evoart.train import train_briefly

    data = {r: to_float_tensor(_images(r, 512)) for r in {r for r, _ in genomes}}
    for r, g in genomes[:1]:
        train_briefly(g, data[r], steps=2, seed=0)  # warm-up: first-call costs are not the loop's
    t0 = time.perf_counter()
    done = []
    for i, (r, g) in enumerate(genomes):
        t = train_briefly(g, data[r], steps=steps, seed=i, precision="fp32")
        done.append(t.stats.steps)
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "train_s": wall, "steps": done, "threads": torch.get_num_threads(),
            "peak_rss_mib": {"driver": _peak_rss_mib(resource.RUSAGE_SELF)}}


def _context(resolution: int, precision: str, cache: str | None):
    from evoart import fitness
    from evoart.fitness import EvalContext, make_latents
    from evoart.imaging import to_float_tensor

    u8 = _images(resolution, 512 + 256)
    ctx = EvalContext(train_images=to_float_tensor(u8[:512]), holdout_images=to_float_tensor(u8[512:]),
                      latents=make_latents(128, seed=1), noise_seed=2, metric_seed=3, precision=precision)
    ctx.floors = fitness.protocol_floors(ctx, cache_dir=cache)  # cached by the "prepare" child
    return ctx


def run_pool(genomes, steps: int, precision: str, workers: int, cache: str) -> dict:
    from evoart.executors import ProcessExecutor, set_torch_threads
    from evoart.fitness import EvalTask

    set_torch_threads("cpu", 1)
    done, train_s, score_s = [], 0.0, 0.0
    wall = 0.0
    for r in sorted({r for r, _ in genomes}):
        ctx = _context(r, precision, cache)
        tasks = [EvalTask(id=f"g000-i{i:02d}", genome=g.to_dict(), seed=i, steps=steps)
                 for i, (gr, g) in enumerate(genomes) if gr == r]
        ex = ProcessExecutor(ctx, workers)
        try:
            # start the workers before the clock, as a run's pool lives across generations
            list(ex.map([EvalTask(id="warm", genome=tasks[0].genome, seed=0, steps=1)] * workers))
            t0 = time.perf_counter()
            for ev in ex.map(tasks):
                if ev.status != "ok":
                    raise RuntimeError(f"{ev.id}: {ev.status} {ev.reason}")
                done.append(ev.stats["steps"])
                train_s += ev.timings["train_s"]
                score_s += ev.timings["score_s"]
            wall += time.perf_counter() - t0
        finally:
            ex.close()
    return {"wall_s": wall, "train_s": train_s, "score_s": score_s, "steps": done, "workers": workers,
            "threads": 1, "peak_rss_mib": {"driver": _peak_rss_mib(resource.RUSAGE_SELF),
                                           "largest_worker": _peak_rss_mib(resource.RUSAGE_CHILDREN)}}


@contextlib.contextmanager
def graphs_on(on: bool):
    """CUDA graphs on or off (``evoart.graphs.ENV_SWITCH``) for what runs inside."""
    from evoart import graphs

    os.environ[graphs.ENV_SWITCH] = "1" if on else "0"
    try:
        yield
    finally:
        os.environ.pop(graphs.ENV_SWITCH, None)


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def population_mode(args) -> None:
    """[gpu]'s benchmark: naive against batched on one device (see the module's doc)."""
    import torch

    from evoart.batched import groups as batched_groups, signature, train_group
    from evoart.genome import describe, estimate_step_macs
    from evoart.imaging import to_float_tensor
    from evoart.train import resolve_precision, train_briefly, train_interleaved
    from evoart.variation import random_genome

    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    res = 32
    rng = random.Random(SEED)
    mix = [random_genome(rng, res) for _ in range(args.population)]
    batchable = next((g for g in mix if signature(g, res) is not None), None)
    populations = {"mix": mix}
    if batchable is not None:
        populations["one-signature"] = [batchable] * args.population
    data = to_float_tensor(_images(res, 512)).to(args.device)
    precision = resolve_precision(args.precision, args.device)
    report = {"device": args.device, "device_name": (torch.cuda.get_device_name(0) if args.device.startswith("cuda")
                                                     else platform.processor() or platform.machine()),
              "torch": torch.__version__, "precision": precision, "population": args.population,
              "steps": args.steps, "max_group": args.max_group, "interleave": args.interleave,
              "results": {}, "startup_s": {}}

    def save() -> None:
        args.out.write_text(json.dumps(report, indent=1) + "\n")

    for name, genomes in populations.items():
        groups = batched_groups([signature(g, res) for g in genomes], args.max_group)
        macs = sum(estimate_step_macs(g, res) for g in genomes) * args.steps
        t0 = time.perf_counter()  # start-up: every architecture once, alone and batched
        seen = set()
        for grp in groups:
            key = describe(genomes[grp[0]])
            if key in seen:
                continue
            seen.add(key)
            train_briefly(genomes[grp[0]], data, steps=2, seed=0, device=args.device, precision=precision)
            if len(grp) > 1:
                train_group([genomes[i] for i in grp], data, steps=2, seeds=list(grp), device=args.device,
                            precision=precision)
        _sync(args.device)
        report["startup_s"][name] = round(time.perf_counter() - t0, 2)
        entry = report["results"].setdefault(name, {"signatures": len({signature(g, res) for g in genomes}),
                                                    "groups": [len(g) for g in groups]})
        cuda = args.device.startswith("cuda")
        for mode in ("naive", "graphed", "batched", "interleaved") if cuda else ("naive", "batched", "interleaved"):
            summaries = []

            def alone(i: int) -> int:  # one individual on the per-individual path: its steps
                st = train_briefly(genomes[i], data, steps=args.steps, seed=i, device=args.device,
                                   precision=precision).stats
                summaries.append(st.graphs)
                return st.steps

            t0 = time.perf_counter()
            steps = 0
            with graphs_on(mode != "naive"):
                if mode == "interleaved":
                    trained_macs = macs
                    for at in range(0, len(genomes), args.interleave):
                        pack = list(range(at, min(at + args.interleave, len(genomes))))
                        done = train_interleaved([genomes[i] for i in pack], data, steps=args.steps, seeds=pack,
                                                 device=args.device, precision=precision)
                        failed = [t for t in done if isinstance(t, Exception)]
                        if failed:
                            raise failed[0]
                        steps += sum(t.stats.steps for t in done)
                        summaries += [t.stats.graphs for t in done]
                elif mode != "batched":
                    who = range(len(genomes) if (mode != "naive" or name == "mix") else min(args.naive_sample, len(genomes)))
                    steps = sum(alone(i) for i in who)
                    trained_macs = sum(estimate_step_macs(genomes[i], res) for i in who) * args.steps
                else:
                    trained_macs = macs
                    for grp in groups:
                        if len(grp) == 1:  # an architecture of its own trains alone, as in a run
                            steps += alone(grp[0])
                            continue
                        trained = train_group([genomes[i] for i in grp], data, steps=args.steps, seeds=list(grp),
                                              device=args.device, precision=precision)
                        steps += sum(t.stats.steps for t in trained)
            _sync(args.device)
            wall = time.perf_counter() - t0
            # estimate_step_macs counts the backward; 2 flops a MAC
            entry[mode] = {"wall_s": round(wall, 2), "steps": steps, "steps_per_s": round(steps / wall, 1),
                           "tflops": round(2 * trained_macs / wall / 1e12, 3)}
            if any(summaries):  # what the graphs did: captures, and why any pattern stayed eager
                entry[mode]["graphs"] = {
                    "individuals_captured": sum(1 for s in summaries if " captured" in s),
                    "eager_because": sorted({s.split("eager: ", 1)[1] for s in summaries if "eager: " in s})}
            if mode != "naive":
                entry[f"{mode}_ratio"] = round(entry[mode]["steps_per_s"] / entry["naive"]["steps_per_s"], 2)
            print(f"{name:<14} {mode:<11} {steps / wall:8.1f} steps/s  wall {wall:6.1f} s", flush=True)
            save()
    print(f"wrote {args.out}")


def child(args) -> None:
    genomes = load_set(args.quick)
    if args.mode == "prepare":  # the metric floors, once, outside every measurement
        for r in sorted({r for r, _ in genomes}):
            _context(r, "fp32", args.cache)
        out = {}
    elif args.mode.startswith("naive"):
        out = run_naive(genomes, args.steps, 1 if args.mode == "naive-1t" else None)
    else:
        out = run_pool(genomes, args.steps, args.mode.split("-")[1], args.workers, args.cache)
    print(json.dumps(out))


def summarise(genomes, steps: int, runs: dict[str, list[dict]]) -> dict:
    from evoart.genome import estimate_step_macs

    macs_per_step = [estimate_step_macs(g, r) for r, g in genomes]
    out = {}
    for mode, rs in runs.items():
        rates, macs = [], []
        for r in rs:
            total_macs = sum(m * s for m, s in zip(macs_per_step, r["steps"]))
            rates.append(sum(r["steps"]) / r["wall_s"])
            macs.append(total_macs / r["wall_s"])
        out[mode] = {
            "steps_per_s": [round(x, 2) for x in rates], "gmacs_per_s": [round(x / 1e9, 2) for x in macs],
            "median_steps_per_s": round(statistics.median(rates), 2),
            # training alone: steps over the summed training seconds, times the processes training at once
            "training_steps_per_s": [round(sum(r["steps"]) / r["train_s"] * r.get("workers", 1), 2) for r in rs],
            "median_gmacs_per_s": round(statistics.median(macs) / 1e9, 2),
            "wall_s": [round(r["wall_s"], 1) for r in rs],
            "train_share": [round(r["train_s"] / r["wall_s"] / r.get("workers", 1), 3) for r in rs],
            "score_s": [round(r.get("score_s", 0.0), 1) for r in rs],
            "peak_rss_mib": max((r["peak_rss_mib"] for r in rs), key=lambda p: p["driver"]),
            "threads": rs[0]["threads"], "workers": rs[0].get("workers", 1),
        }
    base = out["naive"]["median_gmacs_per_s"] if "naive" in out else None
    for mode in out:
        if base:
            out[mode]["ratio_to_naive"] = round(out[mode]["median_gmacs_per_s"] / base, 2)
    if "pool-fp32" in out and "pool-bf16" in out:
        out["pool-bf16"]["ratio_to_pool_fp32"] = round(
            out["pool-bf16"]["median_gmacs_per_s"] / out["pool-fp32"]["median_gmacs_per_s"], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=100, help="training steps per genome")
    ap.add_argument("--repeats", type=int, default=2, help="rounds of the interleaved modes")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    ap.add_argument("--quick", action="store_true", help="2 genomes per resolution, 10 steps, 1 round")
    ap.add_argument("--out", type=Path, default=Path("throughput.json"))
    ap.add_argument("--cache", default=None, help="metric floors cache (default: evoart's)")
    ap.add_argument("--draw-genomes", action="store_true", help=f"rewrite {GENOMES.name}")
    ap.add_argument("--mode", help=argparse.SUPPRESS)  # one mode, in a child process
    ap.add_argument("--population", type=int, help="the population mode: this many individuals on --device")
    ap.add_argument("--device", default="cpu", help="the population mode's device (cuda, cpu)")
    ap.add_argument("--precision", default="auto", help="the population mode's precision (auto, fp32, bf16)")
    ap.add_argument("--threads", type=int, default=1, help="the population mode's torch threads on the CPU")
    ap.add_argument("--max-group", type=int, default=32, help="the population mode's largest batched group")
    ap.add_argument("--interleave", type=int, default=8,
                    help="the population mode: individuals trained at once in the interleaved mode")
    ap.add_argument("--naive-sample", type=int, default=4,
                    help="the population mode: individuals the naive loop trains for one signature")
    args = ap.parse_args()
    if args.population:
        if "--steps" not in sys.argv:
            args.steps = 300
        population_mode(args)
        return
    if args.quick:
        args.steps, args.repeats = min(args.steps, 10), 1
    if args.draw_genomes:
        GENOMES.write_text(json.dumps({"seed": SEED, "mix": MIX, "drawn_with": "evoart.variation.random_genome",
                                       "genomes": draw_genomes()}, indent=1) + "\n")
        print(f"wrote {GENOMES}")
        return
    if args.mode:
        child(args)
        return

    from evoart.genome import describe, estimate_step_macs

    genomes = load_set(args.quick)
    modes = [m for m in args.modes.split(",") if m]
    runs: dict[str, list[dict]] = {m: [] for m in modes}

    def command(mode: str) -> list[str]:
        cmd = [sys.executable, __file__, "--mode", mode, "--steps", str(args.steps), "--workers", str(args.workers)]
        return cmd + ["--quick"] * args.quick + (["--cache", args.cache] if args.cache else [])

    subprocess.run(command("prepare"), check=True, capture_output=True)
    for rnd in range(args.repeats):
        for mode in modes:
            cmd = command(mode)
            t0 = time.perf_counter()
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                sys.exit(f"{mode} failed:\n{res.stderr[-3000:]}")
            runs[mode].append(json.loads(res.stdout.strip().splitlines()[-1]))
            r = runs[mode][-1]
            print(f"round {rnd} {mode:<10} {sum(r['steps']) / r['wall_s']:6.2f} steps/s  "
                  f"wall {r['wall_s']:6.1f} s  ({time.perf_counter() - t0:.0f} s with start-up)", flush=True)
    summary = summarise(genomes, args.steps, runs)
    report = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average_at_end": os.getloadavg()},
        "torch": __import__("torch").__version__,
        "steps_per_genome": args.steps, "repeats": args.repeats, "quick": args.quick,
        "genomes": [{"resolution": r, "step_gmacs": round(estimate_step_macs(g, r) / 1e9, 3), "describe": describe(g)}
                    for r, g in genomes],
        "modes": summary, "runs": runs,
    }
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    for mode, s in summary.items():
        extra = "".join(f"  {k} {s[k]}" for k in ("ratio_to_naive", "ratio_to_pool_fp32") if k in s)
        print(f"{mode:<10} {s['median_steps_per_s']:7.2f} steps/s  {s['median_gmacs_per_s']:7.2f} G multiply-adds/s"
              f"  peak RSS {s['peak_rss_mib']}{extra}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
