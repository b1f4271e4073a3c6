"""`evoart score`: the metrics between two image folders, or a run's individuals again."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from . import console, main
from .options import runs_root_option

SCORE_HELP = """Score generated images against real ones with evoart's metrics.

\b
  evoart score REAL FAKE            two image folders (or a built-in dataset name for REAL)
  evoart score --run RUN            a run's individuals again, with the run's own protocol
  evoart score --heldout RUN        the held-out evaluation: the best of generation 0 and of
                                    the last generation on the run's evaluation split

The real images are split in two halves (seeded): the reference every metric compares
with, and a pool that measures each metric's real-vs-real floor at the same sample count,
printed beside the value: a value within a few spreads of its floor is, by that metric,
indistinguishable from real images. Metrics (docs/METRICS.md):

\b
  perceptual  the fitness distance: swd, rkid and color against their floors   (lower)
  swd         multi-scale sliced Wasserstein distance, Laplacian patches x1e3  (lower)
  rkid        kernel distance (KID x1e3) in a fixed random-CNN embedding       (lower)
  color       colour statistics distance, in 8-bit grey levels                 (lower)
  coverage    share of real images with a generated one among 5 neighbours     (higher)
  density     generated images per real neighbourhood, / 5 (~1 for real)       (higher)
  diversity   spread of the images relative to the real ones (1 = as varied)

With --heldout, on images no individual and no fitness term saw:

\b
  critic      a fresh critic's Jensen-Shannon divergence estimate, bits: 0 = it cannot
              tell the samples from real images, 1 = it always can              (lower)
  auc         that critic's AUC on its test halves (0.5 = chance)               (lower)
  swd, rkid, coverage   as above, against the evaluation split
  recog.      shapes only: share of samples a classifier trained on the
              generator's labels names with confidence >= 0.9                   (higher)
"""


def _fmt(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.3e}"


@main.command(help=SCORE_HELP)
@click.argument("real", required=False)
@click.argument("fake", required=False)
@click.option("--run", "run", metavar="RUN", help="Re-score a run's individuals (a name under --out or a path).")
@runs_root_option("Where --run and --heldout look for runs by name.")
@click.option("--heldout", "heldout", metavar="RUN",
              help="The held-out evaluation of a run (a name under --out or a path).")
@click.option("--generation", type=int, multiple=True,
              help="With --run: only this generation's members. With --heldout: the best of this "
                   "generation (repeatable; default 0 and the last).")
@click.option("--individual", "individuals", multiple=True, metavar="ID",
              help="With --heldout: also evaluate this individual (repeatable).")
@click.option("--critic-steps", type=int, help="With --heldout: the evaluation critic's training steps "
              "(default 400; use the same for everything you compare).")
@click.option("--metric", "names", multiple=True, metavar="NAME",
              help="Report only these metrics (repeatable); default all.")
@click.option("--samples", type=int, help="Generated images scored (default: all, at most a quarter of REAL).")
@click.option("--resolution", type=int, default=32, show_default=True, help="Images are decoded at this size.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds the real split and the metrics (with --heldout: the critic).")
@click.option("--features", type=click.Path(dir_okay=False),
              help="A local torch.export feature extractor (.pt2; TorchScript .pt is deprecated) "
                   "instead of the random CNN embedding.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option("--save", is_flag=True, help="With --run: also write the scores to RUN/rescore.json.")
def score(real, fake, run, heldout, out, generation, individuals, critic_steps, names, samples, resolution, seed,
          features, as_json, save):
    from ..scoring import rescore_run, score_folders

    if heldout:
        if real or fake or run:
            raise click.UsageError("give --heldout RUN alone, without REAL and FAKE or --run")
        _heldout(heldout, out, list(generation), list(individuals), critic_steps, seed, as_json)
        return
    if individuals or critic_steps is not None:
        raise click.UsageError("--individual and --critic-steps are for --heldout RUN")
    if len(generation) > 1:
        raise click.UsageError("--run takes one --generation")
    generation = generation[0] if generation else None
    if run:
        if real or fake:
            raise click.UsageError("give either REAL and FAKE folders or --run RUN, not both")
        from ..files import atomic_write_text
        from ..store import resolve_run

        run_dir = resolve_run(run, out)
        result = rescore_run(run_dir, generation=generation, names=list(names) or None)
        if save:
            atomic_write_text(run_dir / "rescore.json", json.dumps(result, indent=1, sort_keys=True) + "\n")
        if as_json:
            click.echo(json.dumps(result, sort_keys=True))
        else:
            _print_run(result, save, run_dir)
        return
    if not (real and fake):
        raise click.UsageError("give two image folders, REAL and FAKE (or --run RUN)")
    if samples is not None and samples < 2:
        raise click.BadParameter("must be at least 2", param_hint="--samples")
    if resolution < 16:
        raise click.BadParameter("must be at least 16", param_hint="--resolution")
    result = score_folders(real, fake, resolution=resolution, samples=samples, seed=seed,
                           features=features, names=list(names) or None)
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
        return
    meta = result["meta"]
    table = Table(title=f"{meta['fake']}  vs  {meta['real']}", title_justify="left")
    for col, just in (("metric", "left"), ("value", "right"), ("real vs real", "right"), ("better", "left"),
                      ("version", "right")):
        table.add_column(col, justify=just, no_wrap=True)
    from ..metrics import get_metric_info

    for name, value in result.items():
        if name == "meta":
            continue
        floor = meta["floors"].get(name)
        spread = f"{_fmt(floor['mean'])} ± {_fmt(floor['std'])}" if floor else ""
        try:
            info = get_metric_info(name)
            better, version = info.direction, str(info.version)
        except KeyError:  # density: a part of coverage
            better, version = "higher", ""
        table.add_row(name, _fmt(value), spread, better, version)
    console.print(table)
    console.print(f"{meta['samples']} generated images of {meta['fake_images']}; reference: "
                  f"{meta['reference_images']} real images, floors from {meta['floor_pool_images']} others "
                  f"({meta['resolution']} px, embedding {meta['embedding']}, seed {meta['seed']})", highlight=False)


def _print_run(result: dict, saved: bool, run_dir: Path) -> None:
    meta = result["meta"]
    rows = result["individuals"]
    # the main five fit a terminal; density and diversity are in --json
    shown = [k for k in ("perceptual", "swd", "rkid", "color", "coverage") if any(k in r for r in rows)]
    table = Table(title=f"{run_dir.name}: individuals re-scored ({meta['samples']} samples, "
                        f"{meta['resolution']} px)", title_justify="left")
    short = {"perceptual": "perceptual", "coverage": "cover.", "density": "dens.", "diversity": "divers."}
    table.add_column("individual", no_wrap=True, min_width=10)
    for k in shown:
        table.add_column(short.get(k, k), justify="right", no_wrap=True, min_width=len(short.get(k, k)))
    table.add_column("recorded", justify="right", no_wrap=True, min_width=8)  # perceptual, as the run scored it

    def f3(v: float) -> str:
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"

    for r in rows:
        recorded = r["recorded"].get("perceptual")
        table.add_row(r["id"], *[f3(r[k]) if k in r else "-" for k in shown],
                      f3(recorded) if recorded is not None else "-")
    console.print(table)
    floors = ", ".join(f"{k} {_fmt(v['mean'])} ± {_fmt(v['std'])}" for k, v in meta["floors"].items())
    console.print(f"real vs real: {floors}", highlight=False)
    before = meta.get("recorded_versions") or {}
    changed = [k for k, v in meta["versions"].items() if k in before and before[k] != v]
    if changed:
        console.print(f"Note: the run was scored with other versions of {', '.join(changed)}; the recorded "
                      "column is not comparable for those.", highlight=False)
    if saved:
        console.print(f"Wrote {run_dir / 'rescore.json'}", highlight=False)


def _heldout(ref, out, generations, individuals, critic_steps, seed, as_json) -> None:
    from ..scoring import Budget, evaluate_run
    from ..store import resolve_run

    if critic_steps is not None and critic_steps < 1:
        raise click.BadParameter("must be at least 1", param_hint="--critic-steps")
    budget = Budget(critic_steps=critic_steps) if critic_steps else Budget()
    run_dir = resolve_run(ref, out)
    if as_json:
        result = evaluate_run(run_dir, generations=generations or None, individuals=individuals, seed=seed,
                              budget=budget)
        click.echo(json.dumps(result, sort_keys=True))
        return
    with console.status("held-out evaluation: training a critic per contender ...") as status:
        def progress(ind_id, done, total):
            status.update(f"held-out evaluation: {done}/{total} contenders done ({ind_id})")

        result = evaluate_run(run_dir, generations=generations or None, individuals=individuals, seed=seed,
                              budget=budget, progress=progress)
    meta = result["meta"]
    from .tables import print_table

    columns = [("contender", "left"), ("id", "left"), ("critic", "right"), ("auc", "right"), ("swd", "right"),
               ("rkid", "right"), ("cover.", "right")]
    if meta["recognisability"]:
        columns.append(("recog.", "right"))

    def f3(v: float) -> str:
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"

    rows = []
    for c in result["contenders"]:
        cells = [c["label"], c["id"], f"{c['critic']:.3f}", f"{c['critic_auc']:.3f}", f3(c["swd"]), f3(c["rkid"]),
                 f"{c['coverage']:.3f}"]
        if meta["recognisability"]:
            cells.append(f"{c['recognisable']:.2f}")
        rows.append(cells)
    print_table(f"{run_dir.name}: held-out evaluation ({meta['samples']} samples against "
                f"{meta['evaluation_images']} evaluation images, {meta['resolution']} px)", columns, rows)
    b = meta["budget"]
    console.print("critic: a fresh critic's JS divergence estimate in bits (0 = cannot tell them from the "
                  "evaluation images, 1 = always can; lower is better), trained on half of each set and tested "
                  f"on the other half; {b['critic_steps']} steps, batch {b['batch']}, width {b['width']}, seed "
                  f"{meta['seed']}. The real row is the floor: training images the evaluation never saw either.",
                  highlight=False)
