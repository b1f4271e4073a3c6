"""The judging pass on a real run: a heat map of its all-vs-all matrix, and two checks.

1. Heat map (docs/judge-heatmap.png): for one generation, each row is a discriminator,
   each column a generator (with its first samples on top), each cell the share of
   (generated, held-out real) pairs in which that D scored the generated image at least
   as real. Read from the ledger's ``judge`` table, as the run stored it.
2. Realism as training proceeds: the DCGAN genome (or ``--genome`` from the run) trained
   from scratch on the run's data, judged after 0, 30, 60, 120, 240, 480 steps by the last
   generation's discriminators, with its perceptual distance and coverage beside.
3. A deliberately collapsed generator: the run's best generator fed one latent vector
   for every sample (one image, repeated), against the same generator on the fixed latents.

    python benchmarks/judge_checks.py RUN [--generation G] [--png docs/judge-heatmap.png]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evoart import genome as G  # noqa: E402
from evoart.config import EvolveConfig  # noqa: E402
from evoart.executors import set_torch_threads  # noqa: E402
from evoart.fitness import judge  # noqa: E402
from evoart.imaging import image_grid, to_uint8  # noqa: E402
from evoart.nets import build_generator  # noqa: E402
from evoart.objectives import REPORTED  # noqa: E402
from evoart.data import load_run_data as load_data  # noqa: E402
from evoart.fitness import make_context  # noqa: E402
from evoart.store import opened  # noqa: E402
from evoart.train import Init, generate, train_briefly  # noqa: E402
from evoart.variation import Inheritance  # noqa: E402

CELL = 44


def colour(v: float) -> tuple[int, int, int]:
    """0 -> deep blue (always caught), 0.5 -> pale (cannot tell), 1 -> red (more real than real)."""
    if v <= 0.5:
        t = v / 0.5
        return (int(30 + 200 * t), int(60 + 170 * t), int(140 + 90 * t))
    t = (v - 0.5) / 0.5
    return (int(230 - 10 * t), int(230 - 170 * t), int(230 - 190 * t))


def short(ind_id: str) -> str:
    """g005-i06 -> 5:06"""
    return f"{int(ind_id[1:4])}:{ind_id[-2:]}"


def heatmap(run: Path, generation: int | None, png: Path) -> dict:
    with opened(run) as store:
        g = store.last_finished_generation() if generation is None else generation
        matrix = store.judge_matrix(g)
        ranked = [i for i, _ in store.members(g)]
        ids = sorted({d for d, _, _ in matrix} | {x for _, x, _ in matrix},
                     key=lambda i: (ranked.index(i) if i in ranked else 99, i))
        thumbs = {}
        for i in ids:
            p = store.samples_path(i)
            if p.is_file():
                thumbs[i] = Image.open(p).convert("RGB")
        scores = {i: store.scores(i, g) for i in ids}
    values = {(d, x): v for d, x, v in matrix}
    n = len(ids)
    left, top = 110, 40 + CELL * 2
    img = Image.new("RGB", (left + n * CELL + 150, top + n * CELL + 40), (24, 24, 24))
    draw = ImageDraw.Draw(img)
    draw.text((8, 8), f"{run.name}, generation {g}: row D judges column G "
                      "(share of pairs where G's image scored at least as real as a held-out real one)",
              fill=(220, 220, 220))
    for c, i in enumerate(ids):
        x = left + c * CELL
        if i in thumbs:  # the first 2x2 samples of its grid
            t = thumbs[i]
            tile = (t.width - 1) // 8
            img.paste(t.crop((1, 1, 1 + 2 * tile, 1 + 2 * tile)).resize((CELL - 4, CELL - 4)), (x + 2, 34))
        draw.text((x + 2, 34 + CELL), short(i), fill=(200, 200, 200))
    for r, d in enumerate(ids):
        y = top + r * CELL
        member = " *" if d in ranked else ""
        draw.text((8, y + CELL // 2 - 6), f"D  {d}{member}", fill=(200, 200, 200))
        for c, x_id in enumerate(ids):
            x = left + c * CELL
            if (d, x_id) in values:
                v = values[(d, x_id)]
                draw.rectangle((x, y, x + CELL - 2, y + CELL - 2), fill=colour(v))
                draw.text((x + 8, y + CELL // 2 - 6), f"{v:.2f}", fill=(0, 0, 0))
            else:
                draw.rectangle((x, y, x + CELL - 2, y + CELL - 2), outline=(70, 70, 70))
    xr = left + n * CELL + 10
    draw.text((xr, top - 16), "realism (mean of column)", fill=(200, 200, 200))
    for c, i in enumerate(ids):
        col = [values[(d, i)] for d in ids if (d, i) in values]
        draw.text((xr, top + c * 14), f"{i}: {np.mean(col):.2f}" if col else f"{i}: -", fill=(200, 200, 200))
    draw.text((8, top + n * CELL + 14), "* = survived into the next population; column g:ii = individual "
                                         "g00g-i0ii. Blue: the D catches G; pale: cannot tell (0.5); "
                                         "red: G looks more real than real.", fill=(200, 200, 200))
    png.parent.mkdir(parents=True, exist_ok=True)
    img.save(png)
    realism = {i: scores[i].get("realism") for i in ids}
    return {"generation": g, "individuals": ids, "realism": realism, "png": str(png),
            "row_means": {d: float(np.mean([values[(d, x)] for x in ids if (d, x) in values]))
                          for d in ids if any((d, x) in values for x in ids)}}


def checks(run: Path, generation: int | None, genome_from: str | None) -> dict:
    set_torch_threads("cpu", 1)
    with opened(run) as store:
        record = store.config
        g = store.last_finished_generation() if generation is None else generation
        ranked = [i for i, _ in store.members(g)]
        judges = []
        for row in store.individuals(ids=ranked):
            ts = store.load_train_state(row.id)
            if ts is not None:
                judges.append((row.id, G.Genome.from_dict(row.genome), ts["d"], None))
        best = store.individual(ranked[0])
        best_state = store.load_generator_state(best.id)
        genome = G.Genome.from_dict(store.individual(genome_from).genome) if genome_from else None
    cfg = EvolveConfig.from_dict(record["evolve"])
    _, train_u8, holdout_u8 = load_data(cfg)
    ctx = make_context(cfg, train_u8, holdout_u8, "cpu", protocol=record.get("metrics"))
    scorer = ctx.scorer("perceptual")
    n = min(64, ctx.samples)

    def assess(samples_u8: np.ndarray, fake: torch.Tensor, exclude: str | None = None) -> dict:
        panel = [j for j in judges if j[0] != exclude]  # a generator is never judged by its own D
        j = judge(panel + [("candidate", G.dcgan_genome(), None, samples_u8[:n])], ctx.holdout_images, n=n)
        s = scorer.score_all(fake)
        return {"realism": round(j.realism["candidate"], 4), **{m: round(s[m], 3) for m in REPORTED if m in s}}

    if genome is None:
        try:
            from evoart.presets import load_preset

            genome, name = load_preset("dcgan-classic").genome, "dcgan-classic"
        except Exception:  # noqa: BLE001
            genome, name = G.dcgan_genome(), "dcgan_genome()"
    else:
        name = genome_from
    curve = []
    state, done = None, 0
    for steps in (0, 30, 60, 120, 240, 480):
        init = Init([state], Inheritance.identity(genome)) if state is not None else None
        trained = train_briefly(genome, ctx.train_images, steps=steps - done, seed=cfg.seed + steps, init=init)
        state, done = trained.state, steps
        fake = generate(trained.generator, ctx.latents, noise_seed=ctx.noise_seed)
        curve.append({"steps": steps, **assess(to_uint8(fake), fake)})
        print(json.dumps(curve[-1]), flush=True)

    G_best = build_generator(G.Genome.from_dict(best.genome), cfg.resolution)
    G_best.load_state_dict(best_state)
    fake = generate(G_best, ctx.latents, noise_seed=ctx.noise_seed)
    varied = assess(to_uint8(fake), fake, exclude=best.id)
    collapsed = {}
    for k in range(3):  # three different single latents
        one = ctx.latents[k : k + 1].expand(ctx.samples, -1).contiguous()
        fake_c = generate(G_best, one, noise_seed=ctx.noise_seed)
        collapsed[f"latent {k}"] = assess(to_uint8(fake_c), fake_c, exclude=best.id)
    grid = image_grid(np.concatenate([to_uint8(fake)[:8]] + [to_uint8(generate(
        G_best, ctx.latents[k:k + 1].expand(8, -1).contiguous(), noise_seed=ctx.noise_seed)) for k in range(3)]),
        cols=8, pad=1, scale=2)
    return {"judges": [j[0] for j in judges], "genome": name, "training_curve": curve,
            "best": best.id, "best_varied": varied, "best_collapsed": collapsed, "collapse_grid": grid}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run")
    ap.add_argument("--generation", type=int)
    ap.add_argument("--genome", help="an individual of the run whose genome to train (default: DCGAN)")
    ap.add_argument("--png", default=str(ROOT / "docs" / "judge-heatmap.png"))
    ap.add_argument("--json", default=str(ROOT / "docs" / "judge-checks.json"))
    args = ap.parse_args()
    run = Path(args.run)
    out = {"heatmap": heatmap(run, args.generation, Path(args.png))}
    print(json.dumps(out["heatmap"], indent=1), flush=True)
    c = checks(run, args.generation, args.genome)
    grid = c.pop("collapse_grid")
    grid.save(Path(args.png).with_name("judge-collapse.png"))
    out["checks"] = c
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(c, indent=1))


if __name__ == "__main__":
    main()
