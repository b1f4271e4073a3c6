"""Quality benchmark: does evolution beat a plain DCGAN given the same training?

For each built-in dataset: evolve with a stated budget, take the best individual of the
last generation (display score), and train the DCGAN genome (the shipped
``dcgan-classic`` preset, else ``genome.dcgan_genome()``) from scratch

  (a) for as many steps as the best individual's whole lineage received, and
  (b) for as many steps as the whole evolution trained (every individual's steps),

then score all three with the evolution run's own protocol (held-out images, fixed
latents, floors) and judge the DCGANs with the last generation's discriminators (the panel
that judged the best individual). On the first dataset the evolution is repeated with
inheritance off (``--no-inherit``), same seed and budget.

Writes docs/quality.json and docs/quality-<dataset>.png (contact sheets, side by side:
real, best evolved, DCGAN (a), DCGAN (b)); prints a markdown table. Not a test.

    python benchmarks/quality.py [--datasets shapes,landscapes,patterns] [--out /tmp/evoart-quality]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evoart import genome as G  # noqa: E402
from evoart.config import EvolveConfig  # noqa: E402
from evoart.executors import set_torch_threads  # noqa: E402
from evoart.fitness import judge  # noqa: E402
from evoart.imaging import contact_sheet, png_bytes, to_uint8  # noqa: E402
from evoart.objectives import OBJECTIVES, REPORTED as REPORTED_METRICS  # noqa: E402
from evoart.data import load_run_data as load_data  # noqa: E402
from evoart.fitness import make_context  # noqa: E402
from evoart.runner import start_run  # noqa: E402
from evoart.store import opened  # noqa: E402
from evoart.train import generate, train_briefly  # noqa: E402

BUDGET = dict(population=6, generations=4, steps=80, resolution=32, samples=128, workers=2, seed=0)
#: The display score, the objectives evoart score does not report (realism), then every reported metric.
REPORTED = ("score", *(m for m in OBJECTIVES if m not in REPORTED_METRICS), *REPORTED_METRICS)


def dcgan() -> tuple[str, G.Genome]:
    try:
        from evoart.presets import load_preset

        return "preset dcgan-classic", load_preset("dcgan-classic").genome
    except Exception:  # noqa: BLE001 - the preset module or file may not exist
        return "genome.dcgan_genome()", G.dcgan_genome()


def evolve(dataset: str, out: Path, inherit: bool) -> tuple[Path, float]:
    cfg = EvolveConfig(data=dataset, inherit=inherit, **BUDGET)
    t0 = time.perf_counter()
    outcome = start_run(cfg, out, name=f"{dataset}-{'inherit' if inherit else 'no-inherit'}")
    return outcome.run_dir, time.perf_counter() - t0


def run_summary(run_dir: Path) -> dict:
    with opened(run_dir) as store:
        last = store.last_finished_generation()
        ranked = [i for i, _ in store.members(last)]
        best = store.individual(ranked[0])
        every = store.individuals()
        total_steps = sum((r.stats or {}).get("steps", 0) for r in every)
        judges = []
        for ind in store.individuals(ids=ranked):
            ts = store.load_train_state(ind.id)
            if ts is not None:
                judges.append((ind.id, G.Genome.from_dict(ind.genome), ts["d"], None))
        return {
            "best": best.id, "best_genome": best.genome, "metrics": store.scores(best.id, last),
            "lineage_steps": (best.stats or {}).get("lineage_steps", 0), "evolution_steps": total_steps,
            "evaluated": len(every), "judges": judges,
            "generator_state": store.load_generator_state(best.id), "config": store.config,
        }


def score_generator(gen_module, ctx, judges) -> tuple[dict, np.ndarray]:
    fake = generate(gen_module, ctx.latents, noise_seed=ctx.noise_seed)
    result = ctx.scorer("perceptual").score_all(fake)
    result["diversity"] = ctx.scorer("diversity").score(fake)["diversity"]
    samples = to_uint8(fake)
    n = min(64, ctx.samples)
    if judges:
        j = judge(judges + [("candidate", G.dcgan_genome(), None, samples[:n])], ctx.holdout_images, n=n)
        result["realism"] = j.realism["candidate"]
    from evoart.ga import display_score

    result["score"] = display_score(result, ctx.floors)
    return {k: float(result[k]) for k in REPORTED if k in result}, samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default="shapes,landscapes,patterns")
    ap.add_argument("--out", default="/tmp/evoart-quality")
    ap.add_argument("--docs", default=str(ROOT / "docs"))
    ap.add_argument("--existing", metavar="RUN",
                    help="compare the DCGAN with the best of an existing run instead (no evolution, "
                         "no inheritance-off run); writes docs/quality-existing.json and .png")
    args = ap.parse_args()
    if args.existing:
        compare_existing(Path(args.existing), Path(args.docs))
        return
    out, docs = Path(args.out), Path(args.docs)
    out.mkdir(parents=True, exist_ok=True)
    docs.mkdir(parents=True, exist_ok=True)
    baseline_name, baseline = dcgan()
    results = {"budget": BUDGET, "baseline": baseline_name, "datasets": {}}
    t_all = time.perf_counter()
    for k, dataset in enumerate(args.datasets.split(",")):
        entry: dict = {}
        run_dir, secs = evolve(dataset, out, inherit=True)
        summary = run_summary(run_dir)
        entry["evolution_seconds"] = round(secs, 1)
        cfg = EvolveConfig.from_dict(summary["config"]["evolve"])
        _, train_u8, holdout_u8 = load_data(cfg)
        set_torch_threads("cpu", 1)
        ctx = make_context(cfg, train_u8, holdout_u8, "cpu", protocol=summary["config"]["metrics"])

        best_g = best_generator(summary, cfg.resolution)
        best_metrics, best_samples = score_generator(best_g, ctx, [j for j in summary["judges"] if j[0] != summary["best"]])
        best_metrics["realism_in_run"] = summary["metrics"].get("realism")
        entry["evolved"] = {"id": summary["best"], "lineage_steps": summary["lineage_steps"],
                            "evolution_steps": summary["evolution_steps"], "individuals": summary["evaluated"],
                            **best_metrics}
        rows = [("real (held out)", holdout_u8[:8]), (f"evolved {summary['best']}", best_samples[:8])]
        for label, steps in (("a", summary["lineage_steps"]), ("b", summary["evolution_steps"])):
            t0 = time.perf_counter()
            trained = train_briefly(baseline, ctx.train_images, steps=int(steps), seed=cfg.seed + 17)
            m, samples = score_generator(trained.generator, ctx, summary["judges"])
            entry[f"dcgan_{label}"] = {"steps": int(steps), "status": trained.stats.status,
                                       "seconds": round(time.perf_counter() - t0, 1), **m}
            rows.append((f"DCGAN ({label}) {steps} steps", samples[:8]))
        if k == 0:
            run_off, secs_off = evolve(dataset, out, inherit=False)
            s_off = run_summary(run_off)
            g_off = best_generator(s_off, cfg.resolution)
            m_off, samples_off = score_generator(g_off, ctx, summary["judges"])
            entry["evolved_no_inherit"] = {"id": s_off["best"], "lineage_steps": s_off["lineage_steps"],
                                           "evolution_steps": s_off["evolution_steps"],
                                           "seconds": round(secs_off, 1), **m_off}
            rows.append((f"evolved, no inheritance {s_off['best']}", samples_off[:8]))
        sheet = contact_sheet(rows, per_row=8, scale=3, title=f"{dataset}: same fixed latents, {cfg.samples} samples scored")
        (docs / f"quality-{dataset}.png").write_bytes(png_bytes(sheet))
        results["datasets"][dataset] = entry
        print(json.dumps({dataset: entry}, indent=1), flush=True)
    results["seconds"] = round(time.perf_counter() - t_all, 1)
    (docs / "quality.json").write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    print_markdown(results)


def best_generator(summary: dict, resolution: int):
    """The best individual of a run summary as a generator with its trained weights."""
    from evoart.nets import build_generator

    g = build_generator(G.Genome.from_dict(summary["best_genome"]), resolution)
    g.load_state_dict(summary["generator_state"])
    return g


def compare(run_dir: Path) -> tuple[dict, list]:
    """The best of a finished run against the DCGAN trained for its lineage's and the
    whole run's steps, all scored with the run's protocol."""

    _, baseline = dcgan()
    summary = run_summary(run_dir)
    cfg = EvolveConfig.from_dict(summary["config"]["evolve"])
    _, train_u8, holdout_u8 = load_data(cfg)
    set_torch_threads("cpu", 1)
    ctx = make_context(cfg, train_u8, holdout_u8, "cpu", protocol=summary["config"]["metrics"])
    best_g = best_generator(summary, cfg.resolution)
    m, samples = score_generator(best_g, ctx, [j for j in summary["judges"] if j[0] != summary["best"]])
    entry = {"run": str(run_dir), "evolved": {"id": summary["best"], "lineage_steps": summary["lineage_steps"],
                                              "evolution_steps": summary["evolution_steps"],
                                              "individuals": summary["evaluated"], **m}}
    rows = [("real (held out)", holdout_u8[:8]), (f"evolved {summary['best']}", samples[:8])]
    for label, steps in (("a", summary["lineage_steps"]), ("b", summary["evolution_steps"])):
        t0 = time.perf_counter()
        trained = train_briefly(baseline, ctx.train_images, steps=int(steps), seed=cfg.seed + 17)
        m, s = score_generator(trained.generator, ctx, summary["judges"])
        entry[f"dcgan_{label}"] = {"steps": int(steps), "status": trained.stats.status,
                                   "seconds": round(time.perf_counter() - t0, 1), **m}
        rows.append((f"DCGAN ({label}) {steps} steps", s[:8]))
        print(json.dumps({label: entry[f"dcgan_{label}"]}), flush=True)
    return entry, rows


def compare_existing(run_dir: Path, docs: Path) -> None:
    entry, rows = compare(run_dir)
    sheet = contact_sheet(rows, per_row=8, scale=3, title=f"{run_dir.name}: best evolved against the DCGAN")
    (docs / "quality-existing.png").write_bytes(png_bytes(sheet))
    (docs / "quality-existing.json").write_text(json.dumps(entry, indent=1, sort_keys=True) + "\n")
    print_markdown({"datasets": {run_dir.name: entry}})


def print_markdown(results: dict) -> None:
    cols = REPORTED
    print("| dataset | generator | steps | " + " | ".join(cols) + " |")
    print("|---|---|---|" + "---|" * len(cols))
    for ds, e in results["datasets"].items():
        for key, label in (("evolved", "best evolved"), ("evolved_no_inherit", "best evolved, no inheritance"),
                           ("dcgan_a", "DCGAN (a)"), ("dcgan_b", "DCGAN (b)")):
            if key not in e:
                continue
            r = e[key]
            steps = r.get("steps", r.get("lineage_steps"))
            print(f"| {ds} | {label} | {steps} | " + " | ".join(f"{r.get(c, float('nan')):.3g}" for c in cols) + " |")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
