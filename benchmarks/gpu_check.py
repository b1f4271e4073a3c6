"""One short GPU session's checks and measurements ([gpu]), JSON written as it goes.

Meant for the lent GPU machine, whose time is scarce: run it once with a timeout that
leaves room for a rerun, then read the JSON (a run cut short still leaves what it had).

  1. correctness on the device: a batched group of three (its step in CUDA graphs) trains
     as its members do alone: first-step losses equal within 1e-4 in fp32, and all ten
     steps' within 2e-5 in float64 (fp32's later steps drift apart by rounding alone);
  2. the divergence check: a NaN put into one member is caught within the check interval
     and the others finish; three individuals interleaved on their own streams (two with
     noise injection) train as they do alone;
  3. CUDA graphs (``evoart.graphs``): a captured individual trains as the eager loop does
     (both patterns captured, the warm-up steps equal within 1e-3), and the speed of one
     32x32 ``dcgan-classic`` individual at batch 64, eager against graphed (the anchor:
     107 against 714 steps/s on an H100);
  4. the scorers on the card (swd and the embedding) against the CPU's: equal to float
     tolerance, and their time per individual on each;
  5. the population benchmark (``throughput.py --population``): naive against graphed
     and batched, 32 individuals x 300 steps, a realistic mix and one signature;
  6. interleaved training (``train.train_interleaved``): the realistic mix in packs of
     1, 4, 8 and 16 individuals, each on its own stream, 100 steps each: what
     ``--interleave``'s default should be;
  7. several processes on one card, each training graphed individuals (1, 2 and 4), with
     a time limit: aggregate steps/s, or which count hung (the unexplained multi-process
     CUDA-graph hang in ANCHORS); last, since a hang costs 60 s (larger counts are then skipped).

    python benchmarks/gpu_check.py --out gpu-check.json [--device cuda] [--steps 300]
    python benchmarks/gpu_check.py --out rerun.json --only graphs_equal_eager,population

On a machine without CUDA it runs the same on the CPU at a smoke size (about 30 s on one
thread here; tests/test_gpu_check.py runs it so).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from throughput import _sync, graphs_on  # noqa: E402


CHECKS = ("batched_equals_alone", "interleaved_equals_alone", "divergence_caught", "graphs_equal_eager",
          "graph_speed_32px_b64", "metrics_on_device", "population", "interleave_sweep", "processes_per_card")


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("gpu-check.json"))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--population", type=int, default=None)
    ap.add_argument("--only", default="", metavar="NAME,...",
                    help="run only these checks (a rerun of those that failed; 'population' is the "
                         f"population benchmark): {', '.join(CHECKS)}")
    args = ap.parse_args()
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    if only - set(CHECKS):
        ap.error(f"no check named {', '.join(sorted(only - set(CHECKS)))}; the checks are {', '.join(CHECKS)}")

    def wanted(name: str) -> bool:
        return not only or name in only
    cpu = args.device == "cpu"
    if cpu:
        torch.set_num_threads(1)  # the smoke beside other work: default threads collapse on 2 cores
    report: dict = {"device": args.device, "torch": torch.__version__, "checks": {}, "started": time.time()}

    def save() -> None:
        args.out.write_text(json.dumps(report, indent=1) + "\n")

    def check(name, fn, exact: bool = False) -> None:
        if not wanted(name):
            return
        t0 = time.perf_counter()
        try:
            with _exact(args.device) if exact else contextlib.nullcontext():
                report["checks"][name] = {"ok": True, **fn()}
        except Exception as exc:
            report["checks"][name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                                      "trace": traceback.format_exc()[-2000:]}
        report["checks"][name]["seconds"] = round(time.perf_counter() - t0, 2)
        print(name, report["checks"][name].get("ok"), flush=True)
        save()

    from evoart.batched import train_group
    from evoart.genome import Block, DiscriminatorGenes, Genome, GeneratorGenes, LossGenes, TrainingGenes, validate
    from evoart.train import train_briefly

    g = validate(Genome(
        generator=GeneratorGenes(latent=32, stem_channels=32,
                                 blocks=(Block(16, "transposed", 3, "batch", "relu"),
                                         Block(8, "pixelshuffle", 3, "group", "lrelu", residual=True),
                                         Block(8, "nearest", 3, "instance", "silu"))),
        discriminator=DiscriminatorGenes("resnet", 8, "spectral"),
        loss=LossGenes(nonsaturating=0.7, hinge=0.3, r1=1.0, feature_matching=0.5),
        training=TrainingGenes(lr_g=1e-3, lr_d=1e-3, beta1=0.5, beta2=0.99, d_steps=1, batch_size=32, ema=0.99)))
    import dataclasses

    members = [g, dataclasses.replace(g, training=dataclasses.replace(g.training, lr_g=3e-4)),
               dataclasses.replace(g, loss=LossGenes(leastsquares=1.0))]
    data = torch.rand(256, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1

    compared = 5 if cpu else 10  # steps; the smoke's are fewer, the check interval still falls inside

    def curve_diffs(dtype):
        """Each member's largest loss difference, lone against grouped: at the first step
        and over all ``compared`` steps (the curves keep 5 decimals)."""
        before = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            d = data.to(dtype)
            alone = [train_briefly(m, d, steps=compared, seed=i, device=args.device) for i, m in enumerate(members)]
            group = train_group(members, d, steps=compared, seeds=[0, 1, 2], device=args.device, check_every=5)
        finally:
            torch.set_default_dtype(before)
        diffs = []
        for a, b in zip(alone, group):
            ca = torch.tensor([a.stats.curves["d_loss"], a.stats.curves["g_loss"]])
            cb = torch.tensor([b.stats.curves["d_loss"], b.stats.curves["g_loss"]])
            diffs.append({"first": float((ca[:, 0] - cb[:, 0]).abs().max()), "all": float((ca - cb).abs().max())})
        return diffs, [b.stats.graphs for b in group]

    def same_losses():
        # fp32: equal at the first step; after it, rounding (a grouped convolution adds in
        # another order, and so does every thread count) grows a few-fold a step in these
        # GANs, to 0.2 by step ten for one member on this CPU's two threads, so the later
        # steps are only recorded. float64 takes rounding out: there the ten steps agree.
        fp32, graphed = curve_diffs(torch.float32)
        fp64, _ = curve_diffs(torch.float64)
        if any(d["first"] > 1e-4 for d in fp32) or any(d["all"] > 2e-5 for d in fp64):
            raise AssertionError(f"batched losses differ from the lone runs': fp32 {fp32}, float64 {fp64}")
        # on CUDA the group's step is captured too: what was, and why any pattern was not
        return {"diffs": fp32, "diffs_float64": fp64, "graphs": graphed}

    def nan_caught():
        poisoned = [dataclasses.replace(members[1], training=dataclasses.replace(members[1].training, lr_d=1e30))]
        got = train_group(members[:1] + poisoned + members[2:], data, steps=12, seeds=[0, 1, 2],
                          device=args.device, check_every=4)
        status = [t.stats.status for t in got]
        if status[1] != "diverged" or status[0] != "ok" or status[2] != "ok":
            raise AssertionError(f"statuses {status}")
        return {"status": status, "reason": got[1].stats.reason, "curve_length": len(got[1].stats.curves["d_loss"]),
                "graphs_after_it_left": got[0].stats.graphs}

    from evoart import graphs

    def graphs_equal_eager():
        runs = {}
        for label in ("graphed", "eager"):
            with graphs_on(label == "graphed"):
                t0 = time.perf_counter()
                tr = train_briefly(g, data, steps=12 if cpu else 40, seed=0, device=args.device)
                runs[label] = (tr, time.perf_counter() - t0)
        (a, _), (b, _) = runs["graphed"], runs["eager"]
        ca = torch.tensor([a.stats.curves["d_loss"], a.stats.curves["g_loss"]])
        cb = torch.tensor([b.stats.curves["d_loss"], b.stats.curves["g_loss"]])
        w = graphs.GRAPH_WARMUP
        out = {"summary": a.stats.graphs, "warmup_diff": float((ca[:, :w] - cb[:, :w]).abs().max()),
               "mean_diff": float((ca - cb).abs().mean()), "distinct_d_losses": len(set(ca[0].tolist())),
               "seconds": {k: round(v[1], 2) for k, v in runs.items()}}
        if not cpu and (not a.stats.graphs.startswith("2 captured") or out["warmup_diff"] > 1e-3
                        or out["distinct_d_losses"] < 30):
            raise AssertionError(f"graphed training differs from eager: {out}")
        return out

    def graph_speed():
        one = _dcgan_b64()
        steps = 10 if cpu else 300
        out = {}
        for label in ("eager", "graphed"):
            with graphs_on(label == "graphed"):
                train_briefly(one, data, steps=5, seed=0, device=args.device)  # kernels and allocator warm
                _sync(args.device)
                t0 = time.perf_counter()
                tr = train_briefly(one, data, steps=steps, seed=0, device=args.device)
                _sync(args.device)
            out[label] = {"steps_per_s": round(tr.stats.steps / (time.perf_counter() - t0), 1),
                          "graphs": tr.stats.graphs}
        out["ratio"] = round(out["graphed"]["steps_per_s"] / out["eager"]["steps_per_s"], 2)
        return out

    def interleaved_equals_alone():
        """Three individuals side by side on their own streams, two with noise injection
        (each with its own RNG state and graphs): each as it trains alone."""
        noisy = dataclasses.replace(g, generator=dataclasses.replace(
            g.generator, blocks=tuple(dataclasses.replace(b, noise=True) for b in g.generator.blocks)))
        trio = [noisy, noisy, members[2]]
        from evoart.train import train_interleaved

        steps = 12 if cpu else 40
        alone = [train_briefly(m, data, steps=steps, seed=i, device=args.device) for i, m in enumerate(trio)]
        together = train_interleaved(trio, data, steps=steps, seeds=[0, 1, 2], device=args.device)
        failed = [t for t in together if isinstance(t, Exception)]
        if failed:
            raise failed[0]
        diffs = []
        for a, b in zip(alone, together):
            ca = torch.tensor([a.stats.curves["d_loss"], a.stats.curves["g_loss"]])
            cb = torch.tensor([b.stats.curves["d_loss"], b.stats.curves["g_loss"]])
            diffs.append({"first_3": float((ca[:, :3] - cb[:, :3]).abs().max()), "mean": float((ca - cb).abs().mean()),
                          "graphs": b.stats.graphs})
        if any(d["first_3"] > 1e-3 or d["mean"] > 0.1 for d in diffs):
            raise AssertionError(f"interleaved training differs from alone: {diffs}")
        return {"diffs": diffs}

    def metrics_on_device():
        """The fitness scorers (swd and the random-CNN embedding on the card, as a CUDA
        run builds them) against the same scorers on the CPU: equal to float tolerance,
        and the time each takes per individual (128 fakes against 256 held-out images)."""
        from evoart import metrics

        gen = torch.Generator().manual_seed(1)
        real, pool = data, torch.rand(512, 3, 32, 32, generator=gen) * 2 - 1
        fakes = [torch.rand(128, 3, 32, 32, generator=gen) * 2 - 1 for _ in range(4)]
        on_cpu = metrics.build_metric("perceptual", real, seed=3, floor_real=pool, n=128, repeats=3)
        out, values = {}, {}
        for where in ("cpu", args.device):
            sc = on_cpu if where == "cpu" else metrics.build_metric("perceptual", real, seed=3, floors=on_cpu.floors,
                                                                    device=where)
            sc.score_all(fakes[0])  # kernels and plans warm
            _sync(args.device)
            t0 = time.perf_counter()
            values[where] = [sc.score_all(f) for f in fakes]
            _sync(args.device)
            out[f"ms_per_individual_{where}"] = round((time.perf_counter() - t0) / len(fakes) * 1e3, 1)
        worst = {}
        for key in ("perceptual", "swd", "rkid", "coverage", "density", "color"):
            a = torch.tensor([v[key] for v in values["cpu"]], dtype=torch.float64)
            b = torch.tensor([v[key] for v in values[args.device]], dtype=torch.float64)
            worst[key] = float(((a - b).abs() / a.abs().clamp_min(1e-6)).max())
        out["max_relative_diff"] = worst
        out["cpu_threads"] = torch.get_num_threads()
        if worst["swd"] > 1e-4 or worst["rkid"] > 1e-3 or worst["perceptual"] > 1e-3:
            raise AssertionError(f"scores on {args.device} differ from the CPU's: {out}")
        return out

    # the comparisons run in full fp32 with cuDNN's deterministic kernels: TF32 (cuDNN's
    # default for convolutions) rounds to 1e-3, and so would hide a real difference at the
    # first step, and a run-to-run kernel difference grows chaotically over the later ones
    check("batched_equals_alone", same_losses, exact=True)
    check("interleaved_equals_alone", interleaved_equals_alone, exact=True)
    check("divergence_caught", nan_caught)
    check("graphs_equal_eager", graphs_equal_eager, exact=True)
    check("graph_speed_32px_b64", graph_speed)
    check("metrics_on_device", metrics_on_device)
    save()

    import throughput

    bench = argparse.Namespace(population=args.population or (4 if cpu else 32), steps=args.steps or (5 if cpu else 300),
                               device=args.device, precision="auto", threads=1, max_group=32, naive_sample=4,
                               interleave=8, out=args.out.with_name(args.out.stem + "-population.json"))
    if wanted("population"):
        report["population_json"] = str(bench.out)
        save()
        throughput.population_mode(bench)
        report["population"] = json.loads(bench.out.read_text())
        save()

    def processes_per_card():
        out = {}
        for k in (1, 2) if cpu else (1, 2, 4):
            ctx = mp.get_context("spawn")
            with ctx.Pool(k) as pool:
                t0 = time.perf_counter()
                pending = pool.map_async(_graphed_worker, [(args.device, i, 10 if cpu else 300) for i in range(k)])
                try:
                    done = pending.get(timeout=60)
                except mp.TimeoutError:
                    pool.terminate()
                    out[str(k)] = {"hung": True, "after_s": round(time.perf_counter() - t0, 1)}
                    report["checks"]["processes_per_card"] = {"ok": False, **out}
                    save()
                    break  # more processes would hang too: the script keeps its 5 minutes
            wall = time.perf_counter() - t0
            out[str(k)] = {"steps_per_s_total": round(sum(d["steps"] for d in done) / wall, 1), "wall_s": round(wall, 1),
                           "each": done}
            report["checks"]["processes_per_card"] = {"ok": True, **out}
            save()
        if any(v.get("hung") for v in out.values()):
            raise AssertionError(f"a pool hung: {out}")
        return out

    def interleave_sweep():
        """The realistic mix trained in packs of 1, 4, 8 and 16 (graphed, each on its own
        stream): what --interleave's default should be on this card."""
        from evoart.train import resolve_precision, train_interleaved
        from evoart.variation import random_genome
        import random

        rng = random.Random(throughput.SEED)
        mix = [random_genome(rng, 32) for _ in range(4 if cpu else 32)]
        steps = 5 if cpu else 100
        precision = resolve_precision("auto", args.device)
        out = {}
        for k in (1, 2) if cpu else (1, 4, 8, 16):
            t0 = time.perf_counter()
            total = 0
            for at in range(0, len(mix), k):
                done = train_interleaved(mix[at:at + k], data, steps=steps, seeds=list(range(at, at + len(mix[at:at + k]))),
                                         device=args.device, precision=precision)
                failed = [t for t in done if isinstance(t, Exception)]
                if failed:
                    raise failed[0]
                total += sum(t.stats.steps for t in done)
            _sync(args.device)
            wall = time.perf_counter() - t0
            out[str(k)] = {"steps_per_s": round(total / wall, 1), "wall_s": round(wall, 2)}
            report["checks"]["interleave_sweep"] = {"ok": True, **out}
            save()
        return out

    check("interleave_sweep", interleave_sweep)
    check("processes_per_card", processes_per_card)
    report["seconds"] = round(time.time() - report["started"], 1)
    save()
    print(f"wrote {args.out}")


@contextlib.contextmanager
def _exact(device: str):
    """Full fp32 on a card (the scorers' ``full_fp32``: no TF32) and cuDNN's deterministic
    kernels; the settings are given back afterwards. Nothing changes on the CPU."""
    import torch

    from evoart.metrics._common import full_fp32

    saved = torch.backends.cudnn.deterministic
    torch.backends.cudnn.deterministic = True
    try:
        with full_fp32(device):
            yield
    finally:
        torch.backends.cudnn.deterministic = saved


def _dcgan_b64():
    """The anchor's individual: ``dcgan-classic`` at 32 px, batch 64."""
    import dataclasses

    from evoart.presets import load_preset, shipped_dir

    # by its shipped file, not its name: a name looks in the user's folder first, through
    # platformdirs, which the device machine's image lacks
    one = load_preset(Path(str(shipped_dir() / "dcgan-classic.json"))).genome
    return dataclasses.replace(one, training=dataclasses.replace(one.training, batch_size=64))


def _graphed_worker(job) -> dict:
    """One process of ``processes_per_card``: two ``dcgan-classic`` individuals at batch
    64, their steps in CUDA graphs; returns its steps and timings (start-up apart)."""
    import torch

    from evoart.train import train_briefly

    device, index, steps = job
    if device == "cpu":
        torch.set_num_threads(1)  # the CPU smoke: two processes on default threads collapse
    t0 = time.perf_counter()
    one = _dcgan_b64()
    data = torch.rand(256, 3, 32, 32, generator=torch.Generator().manual_seed(index)) * 2 - 1
    train_briefly(one, data, steps=5, seed=index, device=device)
    _sync(device)
    t1 = time.perf_counter()
    total, summaries = 0, []
    for seed in (index, index + 100):
        tr = train_briefly(one, data, steps=steps, seed=seed, device=device)
        total += tr.stats.steps
        summaries.append(tr.stats.graphs)
    _sync(device)
    t2 = time.perf_counter()
    return {"steps": total, "startup_s": round(t1 - t0, 2), "train_s": round(t2 - t1, 2),
            "steps_per_s": round(total / (t2 - t1), 1), "graphs": summaries}


if __name__ == "__main__":
    main()
