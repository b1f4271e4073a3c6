"""``evoart evolve --from RUN:INDIVIDUAL``: a new run whose generation 0 starts from any
individual of any run, with its trained weights (Picbreeder's "continue from someone
else's image"). Its generation-0 seed carries the origin ``from:RUN:INDIVIDUAL`` and the
run's record names the source run and individual, so the lineage leads back to them."""

from __future__ import annotations

from pathlib import Path

from ..config import ConfigError
from ..genome import Genome
from ..store import StoreError, opened, resolve_run


def parse_ref(ref: str) -> tuple[str, str]:
    run, sep, ind = str(ref).rpartition(":")
    if not sep or not run or not ind:
        raise ConfigError(f"--from takes RUN:INDIVIDUAL, e.g. 20261126-1405-shapes-s7:g003-i02 (got {ref!r})")
    return run, ind


def branch_seed(ref: str, cfg, out_root: Path) -> tuple[list[tuple[str, Genome]], dict[str, dict], dict]:
    """The seed genome of ``ref``, its training state (its generator, as G and EMA; the
    discriminator starts fresh), and what the run records about its source."""
    run_ref, ind_id = parse_ref(ref)
    try:
        run_dir = resolve_run(run_ref, out_root)
    except StoreError as exc:
        raise ConfigError(f"--from {ref}: {exc}") from None
    with opened(run_dir, readonly=True) as src:
        try:
            row = src.individual(ind_id)
        except StoreError:
            raise ConfigError(f"--from {ref}: run {run_dir.name} has no individual {ind_id}") from None
        if row.status != "ok":
            raise ConfigError(f"--from {ref}: {ind_id} {row.status} in run {run_dir.name}; it has no weights to start from")
        resolution = src.config.get("evolve", {}).get("resolution")
        weights = src.load_generator_state(ind_id) if cfg.inherit else None
        name = src.name
    if cfg.inherit and resolution != cfg.resolution:
        raise ConfigError(f"--from {ref}: that run trained at {resolution} px and this one at {cfg.resolution} px, "
                          f"so its weights do not fit; pass --resolution {resolution}")
    seed_name = f"from:{name}:{ind_id}"
    genome = Genome.from_dict(row.genome)
    states = {}
    if weights is not None:
        states[seed_name] = {"g": weights, "g_ema": weights, "d": {}, "opt_g": {}, "opt_d": {}, "meta": {}}
    record = {"ref": f"{run_dir}:{ind_id}", "run": name, "run_dir": str(Path(run_dir).resolve()),
              "individual": ind_id, "genome_hash": row.genome_hash,
              "weights": "used" if weights is not None else ("not used (--no-inherit)" if not cfg.inherit else "none")}
    return [(seed_name, genome)], states, record
