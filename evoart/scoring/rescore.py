"""Re-scoring a run's individuals with this evoart's metrics and the run's own protocol
(``evoart score --run RUN``). Reads the run, never writes it."""

from __future__ import annotations

from typing import Callable

from .. import metrics
from ..data import load_run_data, recorded_split
from ..fitness import make_context
from .. import families
from .folders import ScoreError, _pick


def rescore_run(run_dir, *, generation: int | None = None, names=None,
                progress: Callable[[int, int], None] | None = None) -> dict:
    """Score a run's individuals again with this evoart's metrics and the run's own
    protocol: its data split, fixed latents, noise seed, metric seed and recorded floors.
    Reads the run (never writes it). ``generation``: only that generation's members;
    default: every individual whose generator weights were saved."""
    from ..config import EvolveConfig, recorded_evolve
    from ..genome import Genome
    from ..store import DamagedFile, opened

    names = _pick(names)
    with opened(run_dir) as store:
        record = store.config
        cfg = EvolveConfig.from_dict(recorded_evolve(record), source=f"run {store.run_dir.name}")
        if generation is None:
            rows = [r for r in store.individuals() if r.status == "ok"]
        else:
            ids = [i for i, _ in store.members(generation)]
            if not ids:
                raise ScoreError(f"run {store.run_dir.name} has no finished generation {generation}")
            rows = store.individuals(ids=ids)
        _, train_u8, holdout_u8 = load_run_data(cfg, recorded=recorded_split(record))
        ctx = make_context(cfg, train_u8, holdout_u8, "cpu", protocol=record.get("metrics"))
        scorer = ctx.scorer("perceptual")
        out = []
        for done, row in enumerate(rows, 1):
            try:
                state = store.load_generator_state(row.id)
            except DamagedFile as exc:
                raise ScoreError(f"{exc} (score --run scores only the individuals whose generator.pt loads: "
                                 f"once the file is restored or deleted, the others are scored; --generation "
                                 f"picks one generation's members)") from None
            entry = {"id": row.id, "born": row.born, "status": row.status,
                     "recorded": store.scores(row.id, generation)}
            if state is not None:
                genome = Genome.from_dict(row.genome)
                # each family draws its own way (a GAN's G and a VAE's decoder alike)
                fake = families.of(genome).sample(genome, state, ctx.latents, resolution=ctx.resolution,
                                                  noise_seed=ctx.noise_seed)
                result = scorer.score_all(fake)
                if "diversity" in names:
                    result["diversity"] = ctx.scorer("diversity").score(fake)["diversity"]
                entry.update({k: float(result[k]) for k in names})
            out.append(entry)
            if progress:
                progress(done, len(rows))
    return {
        "individuals": out,
        "meta": {"run": str(run_dir), "samples": ctx.samples, "reference_images": int(ctx.holdout_images.shape[0]),
                 "resolution": ctx.resolution, "floors": {k: ctx.floors[k] for k in names if k in ctx.floors},
                 "versions": {k: v for k, v in metrics.metric_versions().items() if k in names},
                 "recorded_versions": (record.get("metrics") or {}).get("versions"),
                 "generation": generation},
    }
