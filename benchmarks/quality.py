"""The equal-compute quality benchmark: does evolution beat simple baselines given the same
total training steps, measured by the held-out evaluation (``evoart.scoring.heldout``)?

Every cell (a dataset, a seed, a total of N generator training steps) has five contenders:

  (a) ``evolve``   evoart evolve, with a budget whose steps add up to N;
  (b) ``dcgan``    the shipped ``dcgan-classic`` preset trained from scratch for N steps;
  (c) ``preset``   the best other shipped preset (picked once by a screen: every shipped
                   preset but dcgan-classic trained for 1,920 steps on shapes, seed 0, best
                   held-out critic divergence wins) trained for N steps;
  (d) ``random``   random search: as many random genomes as evolution trained, each for the
                   same steps, judged and ranked by the same fitness, with no selection
                   between generations and no variation (one generation of that size);
  (e) ``retrain``  the best genome of (a) trained again from scratch for N steps
                   (evolution as a hyperparameter search).

Each contender draws 256 samples from latents of its own (not the run's fitness latents) and
is scored against the run's evaluation split, which no individual and no fitness term saw,
with one seed and budget (critic divergence, AUC, SWD, random-CNN KID, coverage, and on
shapes the recognisability proxy). A second measurement, ``agreement``, re-judges the last
generation of (a) and ranks its individuals by each candidate fitness signal (the
discriminator median under each batch-norm mode, the critic alone, their minimum, the
display score) against the held-out critic: Spearman's rho.

Results are cached per contender under ``--cache`` (one JSON per contender and cell), so an
interrupted benchmark resumes where it stopped, and two processes can share the work
(``--cells``). ``--report`` writes docs/quality.json, docs/quality-<cell>.png and prints the
markdown tables of docs/QUALITY.md. Not a test.

    python benchmarks/quality.py                       # everything (hours on 2 cores)
    python benchmarks/quality.py --cells shapes-s0-1920,patterns-s1-1920
    python benchmarks/quality.py --report
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evoart import genome as G  # noqa: E402
from evoart import metrics  # noqa: E402
from evoart.config import EvolveConfig  # noqa: E402
from evoart.fitness import build_discriminator, make_latents  # noqa: E402
from evoart.imaging import contact_sheet, to_float_tensor, to_uint8  # noqa: E402
from evoart.nets import build_generator  # noqa: E402
from evoart.presets import list_presets, load_preset  # noqa: E402
from evoart.runner import start_run  # noqa: E402
from evoart.scoring.heldout import Budget, evaluate_samples, evaluation_split  # noqa: E402
from evoart.seeds import derive_seed  # noqa: E402
from evoart.store import opened  # noqa: E402
from evoart.train import generate, train_briefly  # noqa: E402

BUILTINS = ("shapes", "landscapes", "patterns")
PHOTOS = "photos"
#: Evolution budgets by total steps: population x generations x steps = the total.
BUDGETS = {1920: dict(population=6, generations=4, steps=80), 5760: dict(population=8, generations=6, steps=120)}
COMMON = dict(resolution=32, samples=128, workers=2)
#: The precision of the contenders trained here; evolution runs use the run's ("auto"
#: unless COMMON says otherwise). benchmarks/precision.py sets both.
TRAIN_PRECISION = "fp32"
CONTENDERS = ("evolve", "dcgan", "preset", "random", "retrain")
LABELS = {"evolve": "(a) evoart evolve", "dcgan": "(b) dcgan-classic", "preset": "(c) best other preset",
          "random": "(d) random search", "retrain": "(e) evolved genome retrained", "real": "training images"}
EVAL_SAMPLES = 256
EVAL_BUDGET = Budget()
SCREEN_STEPS = 1920
SCREEN_CELL = "shapes-s0-1920"
#: The skimage photographs the photo folder is cropped from (the motorcycle stereo pair is one source).
PHOTO_SOURCES = {"astronaut": ["astronaut.png"], "brick": ["brick.png"], "camera": ["camera.png"],
                 "chelsea": ["chelsea.png"], "coffee": ["coffee.png"], "coins": ["coins.png"],
                 "grass": ["grass.png"], "gravel": ["gravel.png"], "hubble": ["hubble_deep_field.jpg"],
                 "ihc": ["ihc.png"], "moon": ["moon.png"],
                 "motorcycle": ["motorcycle_left.png", "motorcycle_right.png"],
                 "retina": ["retina.jpg"], "rocket": ["rocket.jpg"]}
CROPS_PER_SOURCE = 72


def log(*parts) -> None:
    print(time.strftime("%H:%M:%S"), *parts, flush=True)


# ---- cells and data ----------------------------------------------------------------------

def all_cells(datasets, seeds) -> list[str]:
    cells = [f"{d}-s{s}-1920" for d in datasets for s in seeds]
    if "shapes" in datasets:
        cells.append("shapes-s0-5760")
    return cells


def parse_cell(cell: str) -> tuple[str, int, int]:
    name, seed, steps = cell.rsplit("-", 2)
    return name, int(seed[1:]), int(steps)


def photo_folder(cache: Path) -> Path:
    """A folder of crops of the photographs scikit-image ships inside its wheel (read from
    the installed package's files; nothing is downloaded), named ``<source>@<k>.png`` so
    that evoart splits them by source photograph."""
    import importlib.util

    from PIL import Image

    folder = cache / "photos"
    if (folder / ".complete").exists():
        return folder
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the photo folder is cropped from scikit-image's bundled photographs: "
                 "pip install 'scikit-image==0.26.0' (or pass --datasets without photos)")
    data = Path(spec.submodule_search_locations[0]) / "data"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20261201)
    for source, files in PHOTO_SOURCES.items():
        images = [Image.open(data / f).convert("RGB") for f in files]
        for k in range(CROPS_PER_SOURCE):
            im = images[k % len(images)]
            w, h = im.size
            side = int(rng.uniform(0.2, 0.5) * min(w, h))
            x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
            crop = im.crop((x, y, x + side, y + side)).resize((64, 64), Image.LANCZOS)
            crop.save(folder / f"{source}@{k:03d}.png")
    (folder / ".complete").write_text("ok\n")
    return folder


def data_arg(name: str, cache: Path) -> str:
    return str(photo_folder(cache)) if name == PHOTOS else name


# ---- contenders --------------------------------------------------------------------------

def cell_dir(cache: Path, cell: str) -> Path:
    d = cache / cell
    d.mkdir(parents=True, exist_ok=True)
    return d


def finished_run(root: Path) -> Path | None:
    for run in sorted(root.glob("*/run.db")):
        with opened(run.parent) as store:
            if store.status == "finished":
                return run.parent
    return None


def run_evolution(cache: Path, cell: str, kind: str) -> Path:
    """The cell's evolution (``evolve``) or random-search (``random``) run, made once."""
    name, seed, total = parse_cell(cell)
    root = cell_dir(cache, cell) / f"run-{kind}"
    done = finished_run(root) if root.exists() else None
    if done is not None:
        return done
    if root.exists():  # an interrupted run: start it again (the cache unit is a contender)
        import shutil

        shutil.rmtree(root)
    budget = dict(BUDGETS[total])
    if kind == "random":  # every individual in generation 0: no selection, no variation
        budget = dict(population=budget["population"] * budget["generations"], generations=1,
                      steps=budget["steps"])
    cfg = EvolveConfig(data=data_arg(name, cache), seed=seed, **COMMON, **budget)
    log(cell, kind, "evolving", budget)
    outcome = start_run(cfg, root, name=f"{cell}-{kind}")
    return outcome.run_dir


def run_best(run_dir: Path) -> tuple[str, dict, dict, int]:
    """The rank-1 individual of a run's last generation: id, genome dict, generator state,
    and the total steps the run trained."""
    with opened(run_dir) as store:
        last = store.last_finished_generation()
        best = store.members(last)[0][0]
        row = store.individual(best)
        total = sum((r.stats or {}).get("steps", 0) for r in store.individuals())
        return best, row.genome, store.load_generator_state(best), int(total)


def eval_latents(seed: int) -> torch.Tensor:
    return make_latents(EVAL_SAMPLES, derive_seed(seed, "quality-eval-latents"))


def draw(genome: G.Genome, state: dict, resolution: int, seed: int) -> np.ndarray:
    g = build_generator(genome, resolution)
    g.load_state_dict(state)
    return to_uint8(generate(g, eval_latents(seed), noise_seed=derive_seed(seed, "quality-eval-noise")))


class Cell:
    """One cell's data split (rebuilt from its evolution run's record) and cache."""

    def __init__(self, cache: Path, cell: str):
        self.cache, self.cell = cache, cell
        self.name, self.seed, self.total = parse_cell(cell)
        self.dir = cell_dir(cache, cell)
        self.run = run_evolution(cache, cell, "evolve")
        with opened(self.run) as store:
            self.cfg, images, split = evaluation_split(store)
        self.eval_u8 = images.images[split.evaluation]
        self.train_u8 = images.images[split.train]
        self.split_digest = images.fingerprint

    def evaluate(self, samples: np.ndarray) -> dict:
        out = evaluate_samples(samples, self.eval_u8, seed=self.seed, budget=EVAL_BUDGET,
                               dataset=self.name if self.name in BUILTINS else None)
        out["seconds"] = out.pop("meta")["seconds"]["total"]
        return out

    def path(self, contender: str) -> Path:
        return self.dir / f"{contender}.json"

    def cached(self, contender: str) -> dict | None:
        p = self.path(contender)
        return json.loads(p.read_text()) if p.exists() else None

    def save(self, name: str, result: dict) -> dict:
        """Cache ``result`` as ``<name>.json`` (atomically: a killed benchmark leaves no half file)."""
        tmp = self.path(name).with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
        tmp.replace(self.path(name))
        return result

    def store_result(self, contender: str, result: dict, samples: np.ndarray) -> dict:
        np.save(self.dir / f"{contender}-samples.npy", samples[:16])
        return self.save(contender, result)

    def train_genome(self, genome: G.Genome, steps: int, salt: str) -> tuple[np.ndarray, dict]:
        torch.set_num_threads(1)
        t0 = time.perf_counter()
        trained = train_briefly(genome, to_float_tensor(self.train_u8), steps=steps,
                                seed=derive_seed(self.seed, "quality", salt), precision=TRAIN_PRECISION)
        secs = time.perf_counter() - t0
        samples = draw(genome, trained.generator.state_dict(), self.cfg.resolution, self.seed)
        return samples, {"steps": steps, "status": trained.stats.status, "train_seconds": round(secs, 1)}

    def contender(self, name: str, preset_name: str | None) -> dict:
        have = self.cached(name)
        if have is not None:
            return have
        log(self.cell, name, "...")
        if name in ("evolve", "random"):
            run = self.run if name == "evolve" else run_evolution(self.cache, self.cell, "random")
            best, genome, state, total = run_best(run)
            samples = draw(G.Genome.from_dict(genome), state, self.cfg.resolution, self.seed)
            info = {"steps": total, "best": best, "genome": genome, "run": str(run)}
        elif name == "retrain":
            best, genome, _, total = run_best(self.run)
            samples, info = self.train_genome(G.Genome.from_dict(genome), total, "retrain")
            info.update(best=best, genome=genome)
        else:
            preset = "dcgan-classic" if name == "dcgan" else preset_name
            total = run_best(self.run)[3]
            screened = self.cache / f"screen-{preset}.json"
            if (name == "preset" and self.cell == SCREEN_CELL and total == SCREEN_STEPS and screened.exists()
                    and (self.cache / f"screen-{preset}-samples.npy").exists()):
                # the screen already trained this preset on this cell: same genome, steps, seed and split
                result = {"contender": name, **json.loads(screened.read_text()), "preset": preset}
                return self.store_result(name, result, np.load(self.cache / f"screen-{preset}-samples.npy"))
            samples, info = self.train_genome(load_preset(preset).genome, total, preset)
            info["preset"] = preset
        result = {"contender": name, **info, "evaluation": self.evaluate(samples)}
        log(self.cell, name, {k: round(v, 4) for k, v in result["evaluation"].items() if isinstance(v, float)})
        return self.store_result(name, result, samples)

    def real_reference(self) -> dict:
        """Training images against the evaluation split: what a perfect copy of the
        training data scores (the floor every contender is measured against)."""
        have = self.cached("real")
        if have is not None:
            return have
        pick = np.random.default_rng(derive_seed(self.seed, "quality-real"))
        idx = np.sort(pick.choice(len(self.train_u8), size=min(EVAL_SAMPLES, len(self.train_u8)), replace=False))
        samples = self.train_u8[idx]
        shown = samples[pick.permutation(len(samples))]  # the contact sheet: a spread, not the first sources
        return self.store_result("real", {"contender": "real", "evaluation": self.evaluate(samples)}, shown)


# ---- the preset screen -------------------------------------------------------------------

def screen_presets(cache: Path) -> dict:
    """Every shipped preset but dcgan-classic, trained for SCREEN_STEPS on shapes (seed 0)
    and scored held out; the lowest critic divergence is (c) everywhere."""
    path = cache / "preset-screen.json"
    if path.exists():
        return json.loads(path.read_text())
    cell = Cell(cache, SCREEN_CELL)
    rows = {}
    for preset in sorted(p.name for p in list_presets() if p.origin == "shipped" and p.name != "dcgan-classic"):
        part = cache / f"screen-{preset}.json"
        if part.exists():
            rows[preset] = json.loads(part.read_text())
            continue
        log("screen", preset)
        samples, info = cell.train_genome(load_preset(preset).genome, SCREEN_STEPS, preset)
        rows[preset] = {**info, "evaluation": cell.evaluate(samples)}
        np.save(cache / f"screen-{preset}-samples.npy", samples[:16])
        part.write_text(json.dumps(rows[preset], indent=1, sort_keys=True) + "\n")
        log("screen", preset, rows[preset]["evaluation"]["critic"])
    best = min(rows, key=lambda p: rows[p]["evaluation"]["critic"])
    out = {"best": best, "steps": SCREEN_STEPS, "cell": SCREEN_CELL, "presets": rows}
    path.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    return out


# ---- agreement: which fitness signal ranks like the held-out evaluation ------------------

@torch.no_grad()
def d_scores(D, real: torch.Tensor, fake: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """D's scores of real and fake images in a batch-norm mode: "eval" (running
    statistics), "batch" (each set's own batch statistics, as D trained), "mixed" (one
    batch of both, the statistics of the mixture)."""
    if mode == "eval":
        D.eval()
        return D(real).float(), D(fake).float()
    D.train()
    if mode == "batch":
        return D(real).float(), D(fake).float()
    both = D(torch.cat([real, fake])).float()
    return both[: real.shape[0]], both[real.shape[0]:]


def median_verdict(judges: list[tuple[G.Genome, dict]], real: torch.Tensor, fake: torch.Tensor, mode: str,
                   resolution: int) -> float | None:
    """The median cell (metrics.pairwise_realism) of ``judges`` (genome, D state) on
    ``fake`` against ``real`` in a batch-norm ``mode``; None without a usable judge."""
    vals = []
    for genome, state in judges:
        D = build_discriminator(genome, resolution)
        D.load_state_dict(state)
        r, f = d_scores(D, real, fake, mode)
        if torch.isfinite(r).all():
            vals.append(metrics.pairwise_realism(torch.nan_to_num(f.flatten(), nan=-float("inf")), r.flatten()))
    return float(np.median(vals)) if vals else None


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    rho = spearmanr(a, b).statistic
    return float(rho) if np.isfinite(rho) else 0.0


def agreement(cell: Cell) -> dict:
    """The last generation's pool of (a), each individual scored held out, and each fitness
    signal's rank agreement with the held-out critic (lower divergence = better)."""
    have = cell.cached("agreement")
    if have is not None:
        return have
    from evoart.fitness import generate_samples, make_context

    with opened(cell.run) as store:
        last = store.last_finished_generation()
        cells = store.judge_cells(last)
        pool = sorted({g for _, g, _, _ in cells})
        rows = {r.id: r for r in store.individuals(ids=pool)}
        gens = {i: store.load_generator_state(i) for i in pool}
        ds = {i: store.load_discriminator_state(i) for i in pool}
        scores = {i: store.scores(i, last) for i in pool}
        cfg, images, split = evaluation_split(store)
        ctx = make_context(cfg, images.images[split.train], images.images[split.fitness], "cpu",
                           protocol=store.config.get("metrics"))
    n = cfg.judge_samples or min(64, cfg.samples)
    real = ctx.holdout_images[:n]
    fixed = {i: to_float_tensor(generate_samples(G.Genome.from_dict(rows[i].genome), gens[i], ctx)[:n])
             for i in pool if gens[i] is not None}
    ids = sorted(fixed)
    per: dict[str, dict] = {i: {"in_run": scores[i]} for i in ids}
    for g_id in ids:
        judges = [(G.Genome.from_dict(rows[d].genome), ds[d]) for d in ids if d != g_id and ds.get(d) is not None]
        for mode in ("eval", "batch", "mixed"):
            per[g_id][f"d_median_{mode}"] = median_verdict(judges, real, fixed[g_id], mode, cfg.resolution) or 0.0
    critic_cells = {g: v for d, g, v, role in cells if role == "critic"}
    for g_id in ids:
        per[g_id]["critic"] = critic_cells.get(g_id)
        log(cell.cell, "agreement", g_id)
        samples = draw(G.Genome.from_dict(rows[g_id].genome), gens[g_id], cfg.resolution, cell.seed)
        per[g_id]["heldout"] = cell.evaluate(samples)
    target = [-per[i]["heldout"]["critic"] for i in ids]
    target_swd = [-per[i]["heldout"]["swd"] for i in ids]
    signals = {
        "realism (in run: min(critic, D median), eval mode)": [per[i]["in_run"].get("realism", 0.0) for i in ids],
        "critic alone": [per[i]["critic"] if per[i]["critic"] is not None else 0.0 for i in ids],
        **{f"D median, {m} mode": [per[i][f"d_median_{m}"] for i in ids] for m in ("eval", "batch", "mixed")},
        **{f"min(critic, D median {m})": [min(per[i]["critic"] or 0.0, per[i][f"d_median_{m}"]) for i in ids]
           for m in ("eval", "batch", "mixed")},
        "display score": [per[i]["in_run"].get("score", 0.0) for i in ids],
        "-swd (fitness holdout)": [-per[i]["in_run"].get("swd", 0.0) for i in ids],
    }
    out = {"cell": cell.cell, "generation": last, "individuals": per,
           "spearman_vs_heldout_critic": {k: spearman(v, target) for k, v in signals.items()},
           "spearman_vs_heldout_swd": {k: spearman(v, target_swd) for k, v in signals.items()}}
    return cell.save("agreement", out)


def bn_study(cell: Cell, limit: int = 16) -> dict:
    """The batch-norm mode while judging, measured where it can matter: the random-search
    run's generation (random genomes, about a quarter with a batch-norm D). Each of the
    first ``limit`` generators is judged by the median of the batch-norm Ds (not its own)
    in each mode, and scored held out; Spearman's rho of each mode with the held-out critic."""
    have = cell.cached("bn-study")
    if have is not None:
        return have
    from evoart.fitness import generate_samples, make_context

    run = run_evolution(cell.cache, cell.cell, "random")
    with opened(run) as store:
        rows = [r for r in store.individuals(born=0) if r.status == "ok"]
        gens = {r.id: store.load_generator_state(r.id) for r in rows}
        ds = {r.id: store.load_discriminator_state(r.id) for r in rows}
        cfg, images, split = evaluation_split(store)
        ctx = make_context(cfg, images.images[split.train], images.images[split.fitness], "cpu",
                           protocol=store.config.get("metrics"))
    genome = {r.id: G.Genome.from_dict(r.genome) for r in rows}
    bn = [i for i in sorted(genome) if genome[i].discriminator.norm == "batch" and ds[i] is not None]
    judged = sorted(i for i in genome if gens[i] is not None)[:limit]
    n = cfg.judge_samples or min(64, cfg.samples)
    real = ctx.holdout_images[:n]
    per: dict[str, dict] = {}
    for g_id in judged:
        fake = to_float_tensor(generate_samples(genome[g_id], gens[g_id], ctx)[:n])
        judges = [(genome[d], ds[d]) for d in bn if d != g_id]
        entry = {mode: median_verdict(judges, real, fake, mode, cfg.resolution) for mode in ("eval", "batch", "mixed")}
        log(cell.cell, "bn-study", g_id, entry)
        samples = draw(genome[g_id], gens[g_id], cfg.resolution, cell.seed)
        entry["heldout"] = cell.evaluate(samples)
        per[g_id] = entry
    target = [-per[i]["heldout"]["critic"] for i in judged]
    target_swd = [-per[i]["heldout"]["swd"] for i in judged]
    out = {"cell": cell.cell, "run": str(run), "batch_norm_judges": bn, "individuals": per,
           "spearman_vs_heldout_critic": {m: spearman([per[i][m] or 0.0 for i in judged], target)
                                          for m in ("eval", "batch", "mixed")},
           "spearman_vs_heldout_swd": {m: spearman([per[i][m] or 0.0 for i in judged], target_swd)
                                       for m in ("eval", "batch", "mixed")}}
    return cell.save("bn-study", out)


# ---- the report --------------------------------------------------------------------------

SHOWN = ("critic", "critic_auc", "swd", "rkid", "coverage", "recognisable")
RATIO = ("critic", "swd")


def report(cache: Path, docs: Path, cells: list[str]) -> None:
    results: dict = {"cells": {}, "budgets": BUDGETS, "common": COMMON, "eval_samples": EVAL_SAMPLES,
                     "budget": EVAL_BUDGET.__dict__}
    screen = cache / "preset-screen.json"
    if screen.exists():
        results["preset_screen"] = json.loads(screen.read_text())
    for cell in cells:
        d = cache / cell
        entry = {}
        for c in (*CONTENDERS, "real", "agreement", "bn-study"):
            p = d / f"{c}.json"
            if p.exists():
                entry[c] = json.loads(p.read_text())
        if not entry:
            continue
        results["cells"][cell] = entry
        rows = []
        for c in ("real", *CONTENDERS):
            p = d / f"{c}-samples.npy"
            if p.exists():
                label = LABELS[c] + (f" ({entry['preset']['preset']})" if c == "preset" and "preset" in entry else "")
                rows.append((label, np.load(p)[:12]))
        if rows and parse_cell(cell)[1] == 0:  # one seed's sheets are enough to look at
            sheet = contact_sheet(rows, per_row=12, scale=2, title=f"{cell}: held-out evaluation samples")
            sheet.convert("RGB").quantize(256).save(docs / f"quality-{cell}.png", optimize=True)
    (docs / "quality.json").write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    print_tables(results)
    print()
    print(markdown(results))


def fmt(v) -> str:
    return "-" if v is None else f"{v:.3g}"


def print_tables(results: dict) -> None:
    print("| cell | contender | steps | " + " | ".join(SHOWN) + " |")
    print("|---|---|---|" + "---|" * len(SHOWN))
    for cell, e in results["cells"].items():
        for c in ("real", *CONTENDERS):
            if c in e:
                ev = e[c]["evaluation"]
                label = LABELS[c] + (f" ({e[c]['preset']})" if c == "preset" else "")
                print(f"| {cell} | {label} | {e[c].get('steps', '-')} | "
                      + " | ".join(fmt(ev.get(k)) for k in SHOWN) + " |")
    print()
    print("Ratios baseline / evolved (distances and divergences: above 1 = evolution won)")
    print("| cell | " + " | ".join(f"{c} {k}" for c in CONTENDERS[1:] for k in RATIO) + " |")
    print("|---|" + "---|" * (len(CONTENDERS) - 1) * len(RATIO))
    for cell, e in results["cells"].items():
        if "evolve" not in e:
            continue
        a = e["evolve"]["evaluation"]
        vals = []
        for c in CONTENDERS[1:]:
            for k in RATIO:
                vals.append(fmt(e[c]["evaluation"][k] / a[k]) if c in e and a[k] > 0 else "-")
        print(f"| {cell} | " + " | ".join(vals) + " |")
    print()
    sig = None
    for cell, e in results["cells"].items():
        if "agreement" in e:
            sig = sig or {k: [] for k in e["agreement"]["spearman_vs_heldout_critic"]}
            for k, v in e["agreement"]["spearman_vs_heldout_critic"].items():
                sig[k].append(v)
    if sig:
        print("Spearman rho of each fitness signal with the held-out critic, per cell, and the mean")
        for k, v in sig.items():
            print(f"| {k} | " + " | ".join(f"{x:.2f}" for x in v) + f" | {np.mean(v):.2f} |")


def markdown(results: dict) -> str:
    """docs/QUALITY.md's tables: one per dataset and budget, a contender per row, each
    figure for seed 0 / seed 1; then the ratios baseline / evolved, per seed."""
    out = []
    groups: dict[tuple[str, int], dict[int, dict]] = {}
    for cell, e in results["cells"].items():
        name, seed, total = parse_cell(cell)
        groups.setdefault((name, total), {})[seed] = e
    for (name, total), by_seed in groups.items():
        seeds = sorted(by_seed)
        keys = [k for k in SHOWN if any(k in by_seed[s].get(c, {}).get("evaluation", {})
                                        for s in seeds for c in by_seed[s])]
        head = " / ".join(f"seed {s}" for s in seeds)
        out.append(f"**{name}, {total:,} steps** ({head})\n")
        out.append("| contender | " + " | ".join(keys) + " |")
        out.append("|---|" + "---|" * len(keys))
        for c in ("real", *CONTENDERS):
            if not any(c in by_seed[s] for s in seeds):
                continue
            label = LABELS[c]
            if c == "preset":
                label += f" ({next(by_seed[s][c]['preset'] for s in seeds if c in by_seed[s])})"
            vals = []
            for k in keys:
                vals.append(" / ".join(fmt(by_seed[s][c]["evaluation"].get(k)) if c in by_seed[s] else "-"
                                       for s in seeds))
            out.append(f"| {label} | " + " | ".join(vals) + " |")
        out.append("")
        out.append("| baseline / evolved | " + " | ".join(f"{k}" for k in (*RATIO, "coverage (evolved / baseline)")) + " |")
        out.append("|---|---|---|---|")
        for c in CONTENDERS[1:]:
            vals = []
            for k in (*RATIO, "coverage"):
                parts = []
                for s in seeds:
                    e = by_seed[s]
                    if c not in e or "evolve" not in e:
                        parts.append("-")
                        continue
                    a, b = e["evolve"]["evaluation"][k], e[c]["evaluation"][k]
                    if k == "coverage":
                        parts.append(fmt(a / b) if b > 0 else ("inf" if a > 0 else "-"))
                    else:
                        parts.append(fmt(b / a) if a > 0 else "-")
                vals.append(" / ".join(parts))
            out.append(f"| {LABELS[c]} | " + " | ".join(vals) + " |")
        out.append("")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default=",".join((*BUILTINS, PHOTOS)))
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--cells", help="comma-separated cells to run (default: every cell)")
    ap.add_argument("--contenders", default=",".join(CONTENDERS))
    ap.add_argument("--agreement", default="shapes-s0-1920,photos-s0-1920",
                    help="the cells whose last generation is re-judged for the fitness-signal agreement "
                         "('' for none)")
    ap.add_argument("--bn-study", default="shapes-s0-1920",
                    help="the cells whose random-search generation measures the batch-norm mode ('' for none)")
    ap.add_argument("--cache", default="/tmp/evoart-quality")
    ap.add_argument("--docs", default=str(ROOT / "docs"))
    ap.add_argument("--report", action="store_true", help="only write the docs from the cache")
    ap.add_argument("--smoke", action="store_true",
                    help="check the pipeline in minutes: every budget cut to a few steps (numbers meaningless)")
    args = ap.parse_args()
    if args.smoke:
        global EVAL_BUDGET, SCREEN_STEPS
        for k in BUDGETS:
            BUDGETS[k] = dict(population=2, generations=2, steps=3)
        COMMON.update(samples=32)
        EVAL_BUDGET = Budget(critic_steps=20, classifier_steps=40, classifier_images=256)
        SCREEN_STEPS = 4
    cache, docs = Path(args.cache), Path(args.docs)
    cache.mkdir(parents=True, exist_ok=True)
    # the user's own presets (which could shadow a shipped name) and caches stay out of it
    os.environ["EVOART_HOME"] = str(cache / "home")
    cells = args.cells.split(",") if args.cells else all_cells(args.datasets.split(","),
                                                               [int(s) for s in args.seeds.split(",")])
    if args.report:
        report(cache, docs, all_cells(args.datasets.split(","), [int(s) for s in args.seeds.split(",")]))
        return
    torch.set_num_threads(1)
    wanted = args.contenders.split(",")
    preset = screen_presets(cache)["best"] if "preset" in wanted else None
    for name in cells:
        cell = Cell(cache, name)
        cell.real_reference()
        for c in wanted:
            cell.contender(c, preset)
        if name in args.agreement.split(","):
            agreement(cell)
        if name in args.bn_study.split(",") and "random" in wanted:
            bn_study(cell)
    report(cache, docs, all_cells(args.datasets.split(","), [int(s) for s in args.seeds.split(",")]))


if __name__ == "__main__":
    main()
