"""Running evolution into a run folder: data, evaluation context, executor, ledger.

``start_run`` and ``resume_run`` are what ``evoart evolve`` calls; a notebook can call
them too. The GA (``ga.evolve``) stays free of files: ``RunLedger`` adapts the run
folder (``store``) to the GA's ledger protocol and is the only writer.
"""

from __future__ import annotations

import platform
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import __version__, data, ga, ornaments
from .ar_genes import scan_label
from .data import load_run_split, recorded_split
from .config import ConfigError, EvolveConfig, recorded_evolve, resolve_batched
from .family_names import a_family
from .executors import make_executor
from .faults import fault_point
from .fitness import EvalContext, Evaluation, make_context, protocol_record
from .genome import Genome
from .schedule import generation_budget
from .imaging import contact_sheet, png_bytes
from .store import DamagedFile, RunStore, StoreError, check_writable, new_run_dir, resolve_run
from .train import PrecisionError, resolve_device, resolve_precision
from .variation import Inheritance


class RunInterrupted(Exception):
    """Ctrl-C: the run stopped cleanly and can be resumed."""

    def __init__(self, run_dir: Path):
        super().__init__(f"interrupted; resume with: evoart evolve --resume {run_dir}")
        self.run_dir = run_dir


@dataclass
class RunOutcome:
    run_dir: Path
    result: ga.EvolveResult
    seconds: float
    quit: bool = False   # an interactive run the artist stopped at a pause (resumable)


def versions() -> dict[str, str]:
    """The versions a run records (deap's read from its metadata: only ``ga`` imports it)."""
    from importlib.metadata import PackageNotFoundError, version

    import torch

    try:
        deap_version = version("deap")
    except PackageNotFoundError:  # pragma: no cover - deap is a dependency
        deap_version = "unknown"
    return {"evoart": __version__, "torch": torch.__version__, "deap": deap_version,
            "numpy": np.__version__, "python": platform.python_version()}


# ---- the ledger adapter ------------------------------------------------------------------

class RunLedger:
    """The GA's ledger, written to a run folder through ``RunStore``."""

    def __init__(self, store: RunStore, cfg: EvolveConfig, progress=None):
        self.store = store
        self.cfg = cfg
        self.commits = 0
        self.progress = progress  # the run's progress callback: warnings go out through it

    def warn(self, text: str) -> None:
        if self.progress is not None:
            self.progress("warning", {"text": text})
        else:
            warnings.warn(text, RuntimeWarning, stacklevel=3)

    def _member(self, row, generation: int | None) -> ga.Member:
        m = ga.new_member(
            id=row.id, genome=Genome.from_dict(row.genome), parents=row.parents, born=row.born,
            seed=row.seed, origin=row.origin,
            inheritance=Inheritance.from_dict(row.inheritance) if row.inheritance else None,
        )
        m.status, m.reason = row.status, row.reason
        m.metrics = self.store.scores(row.id, generation)
        m.lineage_steps = int((row.stats or {}).get("lineage_steps", 0))
        m.trained_steps = int((row.stats or {}).get("steps", 0))
        return m

    def resume_point(self, cfg: EvolveConfig) -> ga.ResumePoint | None:
        gens = self.store.generations()
        if not gens:
            return None
        last = self.store.last_finished_generation()
        hof: list[ga.Member] = []
        if last is None:
            population, end, nxt = [], gens[0]["begin_state"], 0
        else:
            end = gens[last]["end_state"]
            ids = [i for i, _ in self.store.members(last)]
            population = [self._member(r, last) for r in self.store.individuals(ids=ids)]
            nxt = last + 1
            hof = self._hall_of_fame(end, last)
        begun = begun_state = None
        if nxt < len(gens) and gens[nxt]["generation"] == nxt:
            begun_state = gens[nxt]["begin_state"]
            begun = [self._member(r, nxt) for r in self.store.individuals(born=nxt)]
        history = [g["end_state"]["summary"] for g in gens
                   if g["finished"] is not None and g["end_state"] and "summary" in g["end_state"]]
        panel = [self._member(r, last) for r in self.store.individuals(ids=end.get("panel", []))] if last is not None else []
        return ga.ResumePoint(nxt, population, end["rng"], end["global_rng"], hof, begun, begun_state, history,
                              panel, end.get("panel_culled", {}) if last is not None else {})

    def _hall_of_fame(self, end: dict, generation: int) -> list[ga.Member]:
        """The checkpointed Pareto front, with each member's metrics as the front holds
        them (those of the generation it entered). Runs checkpointed before the metrics
        were saved get the members' latest scores."""
        saved = end.get("hall_of_fame_metrics") or {}
        ids = end.get("hall_of_fame", [])
        members = []
        for row in self.store.individuals(ids=ids):
            m = self._member(row, generation)
            if row.id in saved:
                m.metrics = dict(saved[row.id])
            members.append(m)
        return members

    def begin_generation(self, generation: int, children: list[ga.Member], state: dict) -> None:
        self.store.begin_generation(generation, [c.row() for c in children], state)

    def commit(self, member: ga.Member, ev: Evaluation) -> None:
        self.store.commit_evaluation(
            member.id, status=ev.status, reason=ev.reason, metrics=ev.metrics, stats=ev.stats,
            timings=ev.timings, samples_png=ev.samples_png(),
            # a diverged individual's tensors may hold NaN: never offer them to a child
            generator_state=ev.generator_state if ev.status == "ok" else None,
            samples=ev.samples if ev.status == "ok" else None,
            train_state=ev.train_state if self.cfg.inherit and ev.status == "ok" else None,
            # every trained D judges, inheriting or not: kept apart from the training state
            discriminator_state=ev.train_state["d"] if ev.status == "ok" and ev.train_state else None,
        )
        self.commits += 1
        fault_point("committed", commits=self.commits)

    def end_generation(self, generation, ranked, pool, judged, state, samples) -> None:
        rows = []
        for rank, m in enumerate(ranked, 1):
            o = m.metrics
            label = (f"#{rank} {m.id}  score {o.get('score', 0):.0f}  realism {o.get('realism', 0):.2f}  "
                     f"perceptual {o.get('perceptual', 0):.1f}")
            if len(self.cfg.families) > 1:  # a mixed run: say which family each row is
                label = f"{label}  {m.genome.family.upper()}" + (f" ELBO {o['elbo']:.0f}" if "elbo" in o else "")
                if m.genome.ar is not None:  # an AR row names its scan and its bits per pixel
                    label += f" {scan_label(m.genome.ar)}" + (f" {o['bits_per_pixel']:.2f} bits/px" if "bits_per_pixel" in o else "")
            if m.id in samples:
                rows.append((label, samples[m.id][:8]))
        sheet = None
        if rows:
            sheet = png_bytes(contact_sheet(rows, per_row=8, scale=2,
                                            title=f"generation {generation}: population in rank order"))
        self.store.end_generation(
            generation,
            members=[(m.id, r) for r, m in enumerate(ranked, 1)],
            scores={m.id: dict(m.metrics) for m in pool},
            judge=[(d, g, v, judged.roles.get((d, g), "peer")) for (d, g), v in judged.matrix.items()],
            state=state,
            contact_sheet_png=sheet,
        )
        self.build_gallery()

    def build_gallery(self) -> None:
        """Refresh the run's gallery pages and the index of the folder beside it, where an
        artist watches the run. A page that cannot be written must not stop evolution."""
        from . import gallery

        try:
            gallery.build(self.store.run_dir, store=self.store)
        except Exception as exc:  # noqa: BLE001 - reported, the run goes on
            warnings.warn(f"the gallery pages of {self.store.run_dir.name} could not be rebuilt: {exc}",
                          RuntimeWarning, stacklevel=2)

    # A saved tensor file that cannot be loaded (truncated, replaced) must not stop a
    # resume: the run goes on without it, as if it had never been saved, and says so.
    def _load_or_warn(self, load, ind_id: str, without: str) -> dict | None:
        try:
            return load(ind_id)
        except DamagedFile as exc:
            self.warn(f"{exc} The run goes on: {without}.")
            return None

    def load_train_state(self, ind_id: str) -> dict | None:
        return self._load_or_warn(self.store.load_train_state, ind_id,
                                  f"the children of {ind_id} train from scratch instead of inheriting")

    def load_generator_state(self, ind_id: str) -> dict | None:
        return self._load_or_warn(self.store.load_generator_state, ind_id,
                                  f"{ind_id} is judged without samples (realism 0)")

    def load_samples(self, ind_id: str):
        return self._load_or_warn(self.store.load_samples, ind_id, f"{ind_id}'s samples are drawn again")

    def load_discriminator_state(self, ind_id: str) -> dict | None:
        return self._load_or_warn(self.store.load_discriminator_state, ind_id,
                                  f"{ind_id}'s discriminator does not judge")


# ---- start and resume --------------------------------------------------------------------

def run_name(cfg: EvolveConfig, images: data.ImageSet) -> str:
    stamp = time.strftime("%Y%m%d-%H%M")
    base = "".join(c if c.isalnum() or c in "-_" else "-" for c in images.name.lower())[:32] or "images"
    return f"{stamp}-{base}-s{cfg.seed}"


def preset_seeds(cfg: EvolveConfig) -> tuple[list[tuple[str, Genome]], dict[str, dict], list[dict]]:
    """The genomes of ``cfg.from_presets`` for generation 0, the training states of those
    whose weights were trained at the run's resolution (unless the run does not inherit),
    and a record of what was used."""
    from .presets import load_preset, seed_state

    names = list(dict.fromkeys(cfg.from_presets))
    if len(names) > cfg.lam:
        raise ConfigError(f"{len(names)} presets given with --from-preset, but generation 0 has only "
                          f"{cfg.lam} individuals; raise --population (or --children)")
    seeds, states, record = [], {}, []
    for name in names:
        p = load_preset(name)
        state = seed_state(p, cfg.resolution) if cfg.inherit else None
        if state is not None:
            states[p.name] = state
            weights = "used"
        elif p.weights is None:
            weights = "none"
        elif not cfg.inherit:
            weights = "not used (--no-inherit)"
        else:
            weights = f"not used (trained at {p.weights.resolution} px, the run is {cfg.resolution} px)"
        seeds.append((p.name, p.genome))
        record.append({"name": p.name, "origin": p.origin, "genome_hash": p.genome.content_hash(),
                       "weights": weights, "weights_sha256": p.weights.sha256 if state is not None else None})
    return seeds, states, record


def _executor(cfg: EvolveConfig, ctx: EvalContext, step_progress):
    """The run's executor: this machine's (``executors.make_executor``) or Ray's."""
    if cfg.executor == "ray":
        from .ray_executor import RayExecutor, RayExecutorError

        try:
            return RayExecutor(ctx, address=cfg.ray_address, cpus_per_individual=cfg.cpus_per_individual,
                               gpus_per_individual=cfg.gpus_per_individual, progress=step_progress)
        except RayExecutorError as exc:
            raise ConfigError(str(exc)) from None
    return make_executor(ctx, cfg.workers, step_progress)


def _check_executor(cfg: EvolveConfig) -> None:
    """Refuse ``--executor ray`` without Ray before anything is loaded or written."""
    if cfg.executor == "ray":
        from .ray_executor import ray_available

        if not ray_available():
            raise ConfigError("--executor ray needs Ray, which is not installed here: pip install 'evoart[ray]' "
                              "(or use --executor local)")


def _evolve_into(store: RunStore, cfg: EvolveConfig, ctx: EvalContext, *, progress, step_progress,
                 seed_genomes=(), seed_states=None, interactive=None) -> RunOutcome:
    t0 = time.perf_counter()
    executor = _executor(cfg, ctx, step_progress)
    ledger = RunLedger(store, cfg, progress)
    quit = False
    try:
        store.set_status("running")
        ledger.build_gallery()
        if interactive is None:
            result = ga.evolve(cfg, ctx, executor, ledger=ledger, progress=progress,
                               seed_genomes=seed_genomes, seed_states=seed_states, judge_device=ctx.device)
        else:
            # the session pauses after each generation: it calls the GA one generation at a
            # time, each call resuming from what the ledger holds (picks applied)
            def evolve_to(generations: int, strength: float) -> ga.EvolveResult:
                return ga.evolve(replace(cfg, generations=generations, mutation_strength=strength), ctx, executor,
                                 ledger=ledger, progress=progress, seed_genomes=seed_genomes,
                                 seed_states=seed_states, judge_device=ctx.device)

            session = interactive(store, cfg, progress=progress, refresh=ledger.build_gallery)
            result, quit = session.drive(evolve_to)
            if result is None:
                result = ga.EvolveResult(cfg.generations, [], [], 0)
        store.set_status("interrupted" if quit else "finished")
        ledger.build_gallery()
    except KeyboardInterrupt:
        if hasattr(executor, "terminate"):
            executor.terminate()
        store.set_status("interrupted")
        ledger.build_gallery()
        raise RunInterrupted(store.run_dir) from None
    except (OSError, StoreError) as exc:
        # a full disk, a folder made read-only, a ledger that cannot be written: what was
        # committed stays, the run is marked interrupted (best effort: the disk may refuse
        # that too, and readers then see a "running" run without a writer as interrupted)
        if hasattr(executor, "terminate"):
            executor.terminate()
        try:
            store.set_status("interrupted")
        except StoreError:
            pass
        if isinstance(exc, StoreError):
            raise
        raise write_error(exc, store.run_dir, started=True) from None
    finally:
        executor.close()
    return RunOutcome(store.run_dir, result, time.perf_counter() - t0, quit=quit)


def write_error(exc: OSError, run_dir: Path, *, started: bool) -> StoreError:
    """The user's message for a file of run ``run_dir`` that could not be written: which
    file, why, and what to do next (a full disk first of all)."""
    import errno

    target = exc.filename or run_dir
    resume = f"evoart evolve --resume {run_dir}" if started else "run the command again"
    kept = (f" Nothing half-written was left behind; run {run_dir.name} is marked interrupted and keeps "
            "every individual committed so far." if started else "")
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return StoreError(
            f"the disk holding {run_dir} is full: {target} could not be written ({exc.strerror or exc})."
            f"{kept} Free some space on it (evoart prune {run_dir} removes training states nothing needs any "
            f"more; df -h shows what is left), then {'resume with: ' if started else ''}{resume}")
    return StoreError(f"cannot write {target}: {exc.strerror or exc}.{kept} Fix that, then "
                      f"{'resume with: ' if started else ''}{resume}")


def start_run(cfg: EvolveConfig, out_root: Path, *, progress=None, step_progress=None,
              data_progress=None, name: str | None = None, seed_genomes=(), interactive=None,
              branch_from: str | None = None) -> RunOutcome:
    """``interactive``: a session factory (``evoart.interactive.Session``'s signature) that
    pauses the run for picks after each generation; its settings go into the record.
    ``branch_from``: "RUN:INDIVIDUAL", an individual of any run that generation 0 starts
    from, with its weights (``--from``)."""
    cfg.validate()
    _check_executor(cfg)
    device = resolve_device(cfg.device)
    asked = cfg.precision
    cfg.precision = resolve_precision(asked, device)  # once: the record keeps it, a resume reuses it
    cfg.batched = resolve_batched(cfg.batched, device)  # the same: groups train in another order of sums
    seed_states = None
    preset_record = []
    branch_record = None
    if branch_from is not None:
        from .interactive.branching import branch_seed

        seed_genomes, seed_states, branch_record = branch_seed(branch_from, cfg, Path(out_root))
    elif not seed_genomes and cfg.from_presets:
        seed_genomes, seed_states, preset_record = preset_seeds(cfg)
    for seed_name, seed_genome in seed_genomes:
        if seed_genome.family not in cfg.families:
            raise ConfigError(f"{seed_name.removeprefix('from:')} is {a_family(seed_genome.family)}, but the run allows "
                              f"only {', '.join(cfg.families)}: add --families {','.join([*cfg.families, seed_genome.family])}")
    from .gallery import check_root

    check_root(Path(out_root))  # refuse before anything is written into the user's folder
    check_writable(Path(out_root))  # ... and before the data is loaded, where --out cannot be written
    images, split = load_run_split(cfg, data_progress)
    # the evaluation split stays out of the context: no individual and no fitness term sees it
    train_u8, holdout_u8 = images.images[split.train], images.images[split.fitness]
    if progress:
        progress("data", {"name": images.name, "kind": images.kind, "count": len(images.images),
                          "skipped": images.skipped, "train": len(train_u8), "holdout": len(holdout_u8),
                          "evaluation": len(split.evaluation)})
    ctx = make_context(cfg, train_u8, holdout_u8, device)
    try:
        run_dir = new_run_dir(Path(out_root), name or run_name(cfg, images))
    except OSError as exc:
        raise write_error(exc, Path(out_root), started=False) from None
    record = {
        "evolve": cfg.to_dict(),
        "precision": {"asked": asked, "used": cfg.precision},
        "dataset": {"name": images.name, "kind": images.kind, "source": images.source,
                    "fingerprint": images.fingerprint, "images": len(images.images),
                    "skipped": len(images.skipped)},
        "device": device,
        "metrics": protocol_record(ctx),
        "splits": split.record(),
        "ornaments": ornaments.record(),  # what mate choice looks at (evoart.ornaments)
    }
    if preset_record:
        record["presets"] = preset_record
    if branch_record:
        record["from"] = branch_record
    if interactive is not None:
        record["interactive"] = getattr(interactive, "record", {"auto_between": 0})
    try:
        store = RunStore.create(run_dir, name=run_dir.name, config=record, versions=versions())
    except OSError as exc:
        raise write_error(exc, run_dir, started=False) from None
    try:
        store.lock()
        if progress:
            progress("run", {"run_dir": run_dir, "device": device, "config": cfg})
            if preset_record:
                progress("presets", {"presets": preset_record})
        return _evolve_into(store, cfg, ctx, progress=progress, step_progress=step_progress,
                            seed_genomes=seed_genomes, seed_states=seed_states, interactive=interactive)
    finally:
        store.close()


RESUME_OVERRIDABLE = ("generations", "workers", "device", "executor", "ray_address", "cpus_per_individual",
                      "gpus_per_individual")  # and budget_steps, which sets the generations


def resume_run(ref: str | Path, out_root: Path | None = None, *, overrides: dict | None = None,
               progress=None, step_progress=None, data_progress=None, interactive=None) -> RunOutcome:
    """Continue a killed or interrupted run from its last committed individual, or extend a
    finished one (``overrides={"generations": N}``)."""
    run_dir = resolve_run(ref, out_root)
    store = RunStore.open(run_dir)
    try:
        store.lock()
        store.remove_stale_temporaries()  # left by a writer that was killed in mid-write
        record = store.config
        cfg_dict = recorded_evolve(record)
        overrides = dict(overrides or {})
        if overrides.get("budget_steps") is not None:
            overrides["generations"] = _generations_for_budget(cfg_dict, overrides, run_dir.name)
        for key, value in overrides.items():
            if key == "budget_steps":
                continue
            if key not in RESUME_OVERRIDABLE:
                raise ConfigError(f"--{key} cannot change when resuming (only "
                                  f"{', '.join('--' + k for k in RESUME_OVERRIDABLE)} can)")
            if value is not None:
                cfg_dict[key] = value
        if cfg_dict.get("budget_steps") is not None:  # extended or not: the budget is what it will train
            cfg_dict["budget_steps"] = _steps_per_generation(cfg_dict) * cfg_dict["generations"]
        if cfg_dict.get("executor", "local") != "ray":  # back to this machine: the cluster settings go too
            for key in ("ray_address", "cpus_per_individual", "gpus_per_individual"):
                cfg_dict.pop(key, None)
        cfg = EvolveConfig.from_dict(cfg_dict, source=f"run {run_dir.name}")
        _check_executor(cfg)
        last = store.last_finished_generation()
        begun = len(store.generations())  # generations begun, the last one maybe half done
        note = None
        if begun > (0 if last is None else last + 1) and cfg.generations < begun:
            # a run killed in the middle of a generation: that generation is finished first,
            # or the run would be marked finished with half a generation evaluated
            note = (f"run {run_dir.name} was stopped in the middle of generation {begun - 1}: finishing it "
                    f"first, so the run has {begun} generations (not {cfg.generations})")
            cfg_dict["generations"] = begun
            cfg = EvolveConfig.from_dict(cfg_dict, source=f"run {run_dir.name}")
        if last is not None and cfg.generations <= last + 1 and len(store.generations()) == last + 1:
            if overrides and overrides.get("generations") is not None:
                raise ConfigError(
                    f"run {run_dir.name} already has {last + 1} generations; pass --generations "
                    f"above {last + 1} to extend it")
        device = resolve_device(cfg.device)
        try:
            resolve_precision(cfg.precision, device)
        except PrecisionError:
            raise ConfigError(f"run {run_dir.name} trains in {cfg.precision} (recorded when it started, so that "
                              f"the run stays reproducible), but {device} here has no bf16 units; resume it on "
                              "a machine that has them") from None
        images, split = load_run_split(cfg, data_progress, recorded=recorded_split(record))
        train_u8, holdout_u8 = images.images[split.train], images.images[split.fitness]
        if images.fingerprint != record["dataset"]["fingerprint"]:
            raise StoreError(
                f"the images of {cfg.data} changed since run {run_dir.name} started; resuming would "
                "train on different data. Restore them, or start a new run.")
        if cfg.to_dict() != record["evolve"]:
            store.update_config({**record, "evolve": cfg.to_dict(), "device": device})
        if "splits" not in record:  # say so in the record: this run's split is the two-way one
            store.update_config({**store.config, "splits": split.record()})
        if progress:
            progress("data", {"name": images.name, "kind": images.kind, "count": len(images.images),
                              "skipped": images.skipped, "train": len(train_u8), "holdout": len(holdout_u8),
                              "evaluation": len(split.evaluation)})
            progress("run", {"run_dir": run_dir, "device": device, "config": cfg, "resumed": True})
            if note:
                progress("note", {"text": note})
        seeds, seed_states = _resume_seeds(cfg, store, record)
        if "from" in record and store.last_finished_generation() is None:  # --from: generation 0 again
            from .interactive.branching import branch_seed

            seeds, seed_states, _ = branch_seed(record["from"]["ref"], cfg, run_dir.parent)
        ctx = make_context(cfg, train_u8, holdout_u8, device, protocol=record.get("metrics"))
        if "metrics" not in record:  # a run begun before runs recorded their scoring protocol
            store.update_config({**store.config, "metrics": protocol_record(ctx)})
        if "interactive" in record and interactive is None:
            raise ConfigError(f"run {run_dir.name} is an interactive run: it resumes at its pause, with "
                              "a terminal, --replay LOG or the gallery server")
        return _evolve_into(store, cfg, ctx, progress=progress, step_progress=step_progress,
                            seed_genomes=seeds, seed_states=seed_states,
                            interactive=interactive if "interactive" in record else None)
    finally:
        store.close()


def _steps_per_generation(cfg_dict: dict) -> int:
    """A recorded run's training steps per generation (``schedule.generation_budget``)."""
    return generation_budget(EvolveConfig(**cfg_dict))


def _generations_for_budget(cfg_dict: dict, overrides: dict, name: str) -> int:
    """The generations that bring a resumed run to ``--budget-steps`` in all: every
    generation trains children x steps, so the total must be a multiple of that."""
    budget = overrides["budget_steps"]
    if overrides.get("generations") is not None:
        raise ConfigError("with --resume, give --budget-steps or --generations, not both")
    per = _steps_per_generation(cfg_dict)
    if not isinstance(budget, int) or budget < per or budget % per:
        near = max(per, round(budget / per) * per) if isinstance(budget, int) else per
        raise ConfigError(f"run {name} trains {per} steps a generation, so --budget-steps must be a multiple of "
                          f"{per} (say {near}), got {budget}")
    return budget // per


def _resume_seeds(cfg: EvolveConfig, store: RunStore, record: dict):
    """A run seeded from presets needs them again while generation 0 is unfinished: the
    same genomes and weights, or resuming would not continue the same run."""
    if not cfg.from_presets or store.last_finished_generation() is not None:
        return (), None
    from .presets import PresetError

    try:
        seeds, states, now = preset_seeds(cfg)
    except PresetError as exc:
        raise ConfigError(f"run {store.run_dir.name} was seeded from presets and generation 0 is unfinished, "
                          f"but: {exc}. Restore the preset to resume.") from None
    before = {p["name"]: p for p in record.get("presets", [])}
    for p in now:
        b = before.get(p["name"])
        if b is not None and (b["genome_hash"], b.get("weights_sha256")) != (p["genome_hash"], p["weights_sha256"]):
            raise ConfigError(f"preset {p['name']} changed since run {store.run_dir.name} started; resuming "
                              "would seed generation 0 differently. Restore it, or start a new run.")
    return seeds, states


def prune_run(ref: str | Path, out_root: Path | None = None) -> tuple[int, int]:
    run_dir = resolve_run(ref, out_root)
    store = RunStore.open(run_dir)
    try:
        store.lock()
        return store.prune()
    finally:
        store.close()
