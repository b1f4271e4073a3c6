"""`evoart evolve` and `evoart prune`: run, resume and tidy evolution runs."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..config import INTERLEAVE_GPU, MAX_INTERLEAVE, MAX_POPULATION, MAX_SEED, MAX_STEPS, resolve_interleave
from . import EXIT_INTERRUPTED, console, err_console, main
from .options import device_option, runs_root_option
from .tables import print_table


# ---- evolve ------------------------------------------------------------------------------

EVOLVE_HELP = """Evolve GAN genomes on DATA: an image folder or a built-in dataset
(default: shapes).

Each generation, every new individual is trained briefly as a GAN (starting from its
parents' weights), scored by a perceptual distance (SWD, a random-CNN kernel distance and
colour statistics) and by coverage of the real data, and judged by the other
individuals' discriminators; the best survive and breed (NSGA-II). Everything lands in a run
folder under --out: a SQLite ledger, sample grids, a contact sheet per generation.

\b
Examples:
  evoart evolve                                  # defaults: 32 px, ~5 minutes on 2 CPU cores
  evoart evolve landscapes --generations 12 --population 12
  evoart evolve ~/Pictures/moths --resolution 64 --steps 300 --device cuda
  evoart evolve --config big.toml                # same names as the options: population = 16
  evoart evolve patterns --mate-choice runaway --crossover-rate 0.6 --generations 12
  evoart evolve --resume gallery/20261126-1405-shapes-s0 --generations 10
"""


def _explicit(ctx: click.Context, name: str) -> bool:
    src = ctx.get_parameter_source(name)
    return src is not None and src.name not in ("DEFAULT", "DEFAULT_MAP")


@main.command(help=EVOLVE_HELP)
@click.argument("data", required=False)
@click.option("--population", type=int, help=f"Individuals kept each generation, 2 to {MAX_POPULATION} (the judging pass grows with its "
                   "square).  [default: 8]")
@click.option("--children", type=int, help=f"New individuals each generation, at most {MAX_POPULATION}; under halving, the genomes "
                   "generation 0 tries.  [default: population]")
@click.option("--generations", type=int, help="Generations in all; with --resume, the new total.  [default: 6]")
@click.option("--steps", type=int, help=f"Training steps per new individual, at most {MAX_STEPS}.  [default: 120]")
@click.option("--schedule", type=click.Choice(["halving", "plus", "comma", "pbt"]),
              help="How each generation's training steps are spent: halving (successive halving: generation 0 "
                   "trains --children genomes, each later generation continues the better half of the one "
                   "before, trained twice as long, so the compute goes into depth; it won at equal steps, "
                   "docs/QUALITY.md), plus (mu + lambda: mutated children compete with parents), comma "
                   "(children replace the parents), pbt (the better half keeps training, the worse half is "
                   "replaced by copies with perturbed training genes).  [default: halving]")
@click.option("--budget-steps", type=int,
              help="The run's total training steps. Every generation trains children x steps, so with "
                   "--generations the steps follow, otherwise the generations follow (from --steps or its "
                   "default); all three must agree. With --resume: extend the run to this total.")
@click.option("--families", metavar="LIST",
              help="Model families the run may hold, comma-separated: gan, vae (variational autoencoders), ar "
                   "(autoregressive over a palette). "
                   "Mutation and crossover stay within a family; a rare family switch seeds a fresh genome "
                   "of another; one fitness judges all (docs/FAMILIES.md).  [default: gan]")
@click.option("--resolution", type=int, help="Image size in pixels: 16, 32, 64 or 128.  [default: 32]")
@click.option("--samples", type=int, help="Generated images scored per individual.  [default: 128]")
@device_option(None, "Where to train.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]),
              help="Training precision: bf16 autocast (parameters and losses stay fp32) or fp32; auto picks "
                   "bf16 where the CPU has AVX-512 BF16 or AMX (or the GPU supports bf16). A run records "
                   "what it used and a resume reuses it.  [default: auto]")
@click.option("--workers", type=int, help="Parallel evaluations (processes); on several GPUs, spread over "
              "them (--device cuda).  [default: 2, or one per GPU when there are several]")
@click.option("--executor", type=click.Choice(["local", "ray"]),
              help="Where individuals are evaluated: this machine (--workers processes) or a Ray cluster "
                   "(pip install 'evoart[ray]'; README: Running on a cluster).  [default: local]")
@click.option("--ray-address", metavar="auto|ray://HOST:PORT",
              help="With --executor ray: the cluster to join (auto: the one `ray start` runs here). Without "
                   "it, a local Ray instance is started for the run.")
@click.option("--cpus-per-individual", type=int,
              help="With --executor ray: CPUs (torch threads) each evaluation asks Ray for.  [default: 1]")
@click.option("--gpus-per-individual", type=float,
              help="With --executor ray: GPUs each evaluation asks for; 0.25 packs four on a GPU.  [default: 0]")
@click.option("--batched", type=click.Choice(["auto", "on", "off"]),
              help="Train GAN individuals of one architecture together, in one batched pass (torch.func.vmap): "
                   "pays on a GPU; on a small CPU it was slower than one at a time. auto: on for a GPU. A run "
                   "records what it used and a resume reuses it.  [default: auto]")
@click.option("--interleave", type=click.IntRange(1, MAX_INTERLEAVE), metavar="N",
              help="GAN individuals a worker trains at once, a step of each in turn, each on its own CUDA stream: "
                   "small individuals leave a GPU mostly idle alone. Each trains as it would alone.  "
                   f"[default: {INTERLEAVE_GPU} on a GPU, 1 elsewhere]")
@click.option("--seed", type=int, help=f"Makes a run reproducible on the CPU: 0 to {MAX_SEED}.  [default: 0]")
@click.option("--budget-seconds", type=float,
              help="Stop each individual's training after this many seconds (not reproducible).")
@click.option("--no-inherit", is_flag=True, default=None,
              help="Children train from scratch (implies --schedule plus unless a schedule is given).")
@click.option("--selection", type=click.Choice(["nsga2", "weighted"]),
              help="nsga2: Pareto fronts over realism, perceptual distance and coverage; weighted: "
                   "a weighted sum of the three (see --weights).  [default: nsga2]")
@click.option("--weights", metavar="W",
              help="With --selection weighted: e.g. realism=1,perceptual=2,coverage=1 (unnamed = 0).")
@click.option("--mate-choice", type=click.Choice(["random", "runaway"]),
              help="How a crossover child's second parent is found: random (the usual tournament) or runaway "
                   "(the first parent picks among a few candidates by its evolved taste for ornaments such as "
                   "saturation, contrast or symmetry: Fisherian runaway, exaggerating a style beyond the "
                   "data; see docs/RUNAWAY.md; implies --schedule plus unless one is given).  [default: random]")
@click.option("--runaway-strength", type=click.FloatRange(0.0, 1.0),
              help="Share of the survivors chosen by attractiveness to the population's tastes instead of "
                   "the objectives: 0 = mate choice only, 1 = the objectives no longer decide.  [default: 0]")
@click.option("--crossover-rate", type=click.FloatRange(0.0, 1.0),
              help="Share of the children made by crossover of two parents (the rest mutate one); under "
                   "--mate-choice runaway, the share that chooses a mate.  [default: 0.3]")
@click.option("--features", type=click.Path(dir_okay=False),
              help="A local torch.export feature extractor (.pt2) to use instead of the random CNN "
                   "embedding for rkid and coverage; TorchScript (.pt) still works but is deprecated.")
@runs_root_option("Output root: one folder per run.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="A TOML file with the same names as these options.")
@click.option("--resume", "resume", metavar="RUN", help="Continue or extend a run (a name under --out or a path).")
@click.option("--from-preset", "from_presets", metavar="NAME", multiple=True,
              help="Seed generation 0 with a preset and its mutants (repeatable); its weights too "
                   "when they were trained at this resolution.")
@click.option("--interactive", is_flag=True,
              help="Pause after each generation for your picks (numbers, ranges, none, undo, +/-, quit); "
                   "picks always survive and breed first.")
@click.option("--auto-between", type=click.IntRange(0, 100), default=None,
              help="With --interactive: automatic generations between your rounds, steered by a preference "
                   "model learned from your picks.  [default: 0]")
@click.option("--replay", type=click.Path(dir_okay=False, path_type=Path), metavar="LOG",
              help="With --interactive: answer the pauses from an event log (a run's events.jsonl).")
@click.option("--from", "branch_from", metavar="RUN:INDIVIDUAL",
              help="Start a new run from an individual of any run, with its weights.")
@click.option("--dry-run", is_flag=True, help="Print the resolved configuration and exit.")
@click.pass_context
def evolve(ctx, data, config_file, resume, dry_run, out, no_inherit, from_presets, interactive, auto_between,
           replay, branch_from, **options):
    from ..config import ConfigError, EvolveConfig, load_toml
    from ..runner import RunInterrupted, resume_run, start_run

    given = {k: v for k, v in options.items() if v is not None and _explicit(ctx, k)}
    if (auto_between is not None or replay is not None) and not interactive and not resume:
        raise ConfigError("--auto-between and --replay go with --interactive")
    if branch_from and (resume or from_presets):
        raise ConfigError("--from starts a new run from one individual; drop --resume and --from-preset")
    if from_presets:
        if resume:
            raise ConfigError("--from-preset seeds a new run; a resumed run keeps its own generation 0")
        from ..presets import load_preset

        for name in from_presets:
            load_preset(name)  # a typo is reported now, not after the data is loaded
        given["from_presets"] = list(from_presets)
    if no_inherit:
        given["inherit"] = False
    if data is not None:
        given["data"] = data

    if resume:
        if config_file or data is not None:
            raise ConfigError("--resume continues a run with its own data and configuration; "
                              "drop DATA and --config")
        from ..store import opened, resolve_run

        with opened(resolve_run(resume, out)) as store:
            recorded = store.config
        if dry_run:
            console.print_json(json.dumps(recorded))
            return
        stored = recorded.get("evolve", {})
        _driver_threads(given.get("device", stored.get("device", "auto")), given.get("workers", stored.get("workers", 1)))
        view = EvolveView(resumed=True)
        session = None
        if (interactive or replay is not None) and "interactive" not in recorded:
            raise ConfigError(f"run {resume} was not started with --interactive; it resumes as it began "
                              "(start an interactive run from one of its individuals with --from RUN:INDIVIDUAL)")
        if "interactive" in recorded:
            run_dir = resolve_run(resume, out)
            session = _session_factory(recorded["interactive"].get("auto_between", 0), replay,
                                       resume_dir=run_dir, view=view, root=run_dir.parent)
        try:
            with view:
                outcome = resume_run(resume, out, overrides=given, progress=view.event,
                                     step_progress=view.step, data_progress=view.data_step, interactive=session)
        except RunInterrupted as exc:
            _interrupted(exc)
        view.finish(outcome)
        return

    settings = load_toml(config_file) if config_file else {}
    settings.update(given)
    if "workers" not in settings:  # one worker per GPU where there are several
        from ..executors import default_workers

        gpus = default_workers(str(settings.get("device", "auto")))
        if gpus is not None:
            settings["workers"] = gpus
    named = "schedule" in {k.replace("-", "_") for k in settings}
    if interactive and not named:
        settings["schedule"] = "plus"  # halving, the default, breeds nothing to pick from
    cfg = EvolveConfig.from_dict(settings, source=str(config_file) if config_file else "options")
    if dry_run:
        console.print_json(json.dumps(cfg.to_dict()))
        return
    if not named and cfg.schedule == "plus":  # not the default halving (schedule.default_schedule)
        why = ("--interactive breeds children from your picks" if interactive else
               "--no-inherit starts children fresh" if cfg.inherit is False else "--mate-choice runaway chooses mates")
        console.print(f"[dim]schedule plus: {why} (the default, halving, breeds no children)[/dim]", highlight=False)
    _driver_threads(cfg.device, cfg.workers)
    view = EvolveView(resumed=False)
    session = _session_factory(auto_between or 0, replay, view=view, root=Path(out)) if interactive else None
    try:
        with view:
            outcome = start_run(cfg, out, progress=view.event, step_progress=view.step,
                                data_progress=view.data_step, interactive=session, branch_from=branch_from)
    except RunInterrupted as exc:
        _interrupted(exc)
    view.finish(outcome)


def _session_factory(auto_between: int, replay: Path | None, *, view, root: Path,
                     resume_dir: Path | None = None):
    """What runs the pauses: a replayed log, else the terminal (which the gallery page can
    beat to it), else the gallery page alone. Refused with no terminal on stdin, no log to
    answer from and no `evoart gallery serve` serving the runs' folder."""
    from ..gallery.server import running_server
    from ..interactive import ReplayChooser, Session, load_log
    from .interactive import browser_chooser, on_pause_events, terminal_chooser

    tty = sys.stdin.isatty()
    server = running_server(root)
    if replay is None and not tty and server is None:
        from ..config import ConfigError

        raise ConfigError(f"--interactive pauses for your picks, but stdin is not a terminal and no gallery server "
                          f"serves {root}: run it in a terminal, start `evoart gallery serve --out {root}` first "
                          "and pick on the generation's page, or answer from an event log with --replay LOG")
    person = terminal_chooser if tty else browser_chooser(server)
    if replay is not None:
        events = load_log(replay)
        done = []
        if resume_dir is not None:
            from ..store import opened

            with opened(resume_dir) as s:
                done = s.events()
        chooser = ReplayChooser(events, then=person if tty or server else None, skip=done)
    else:
        chooser = person
    on_pause_events(view)
    view.live = False  # plain lines: a live progress display and a prompt do not mix

    def make(store, cfg, *, progress, refresh):
        return Session(store, cfg, chooser, auto_between=auto_between, progress=progress, refresh=refresh)

    make.record = {"auto_between": auto_between}
    return make


def _driver_threads(device: str, workers: int) -> None:
    """This process's torch threads, set once here at the command's entry (the library
    never changes them): see ``executors.driver_threads``."""
    from ..executors import driver_threads, set_torch_threads
    from ..train import resolve_device

    if isinstance(workers, int) and workers >= 1 and device in ("auto", "cpu", "cuda", "mps"):
        set_torch_threads(resolve_device(device), driver_threads(workers))


def _interrupted(exc) -> None:
    err_console.print(f"\n[yellow]Stopped.[/] Everything evaluated so far is saved in {exc.run_dir}")
    err_console.print(f"Resume with:  evoart evolve --resume {exc.run_dir}", highlight=False)
    sys.exit(EXIT_INTERRUPTED)


class EvolveView:
    """Renders the library's progress events: rich bars on a terminal, plain lines
    otherwise (logs, CI, pipes)."""

    def __init__(self, resumed: bool):
        self.live = console.is_terminal
        self.resumed = resumed
        self.progress = None
        self.gen_task = self.ind_task = None
        self.train_tasks: dict[str, int] = {}
        self.t0 = time.perf_counter()
        self.last_plain: dict[str, float] = {}
        self.cfg = None
        self.gen_t0 = time.perf_counter()
        self.gen_steps = 0

    def __enter__(self):
        if self.live:
            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TaskProgressColumn(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                console=console, transient=False,
            )
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()

    def print(self, *args, **kw):
        console.print(*args, **kw)

    # -- callbacks from the library (may come from a worker-reader thread) --
    def data_step(self, done: int, total: int) -> None:
        if not self.live and done == total:
            self.print(f"decoded {total} images")

    def step(self, ind_id: str, step: int, total: int) -> None:
        if self.progress is None:
            return
        task = self.train_tasks.get(ind_id)
        if task is None:
            task = self.progress.add_task(f"  training {ind_id}", total=total)
            self.train_tasks[ind_id] = task
        self.progress.update(task, completed=step)

    def event(self, kind: str, info: dict) -> None:
        getattr(self, f"on_{kind}", lambda info: None)(info)

    def on_data(self, info):
        skipped = info["skipped"]
        self.print(f"Data: {info['name']} ({info['kind']}), {info['count']} images: "
                   f"{info['train']} to train on, {info['holdout']} held out for judging"
                   + (f", {info['evaluation']} for the held-out evaluation" if info.get("evaluation") else ""),
                   highlight=False)
        if skipped:
            shown = "; ".join(f"{p} ({r})" for p, r in skipped[:10])
            more = f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
            err_console.print(f"[yellow]Warning:[/] skipped {len(skipped)} unreadable files: {shown}{more}",
                              highlight=False)

    def on_run(self, info):
        from ..schedule import planned_steps

        self.cfg = info["config"]
        c = self.cfg
        verb = "Resuming" if info.get("resumed") else "Run"
        where = (f"Ray at {c.ray_address or 'a local instance'}, {c.cpus_per_individual} CPU"
                 + (f" and {c.gpus_per_individual:g} GPU" if c.gpus_per_individual else "") + " per individual"
                 if c.executor == "ray" else f"{c.workers} workers")
        if c.batched == "on":
            where += ", same-architecture GANs batched"
        interleave = resolve_interleave(c.interleave, str(info["device"]))
        if interleave > 1:
            where += f", up to {interleave} GANs at once per worker"
        self.print(f"{verb}: {info['run_dir']}  (device {info['device']}, precision {c.precision}, {where}, "
                   f"population {c.population}, {c.generations} generations, {c.steps} steps, "
                   f"{c.resolution} px, schedule {c.schedule}: {planned_steps(c):,} training steps)", highlight=False)
        if c.mate_choice == "runaway" or c.runaway_strength:
            self.print(f"Mate choice {c.mate_choice} (crossover rate {c.crossover_rate:g}, runaway strength "
                       f"{c.runaway_strength:g}): the gallery page plots the ornaments and tastes", highlight=False)

    def on_warning(self, info):
        err_console.print(f"[yellow]Warning:[/] {info['text']}", highlight=False)

    def on_note(self, info):
        err_console.print(f"[yellow]Note:[/] {info['text']}", highlight=False)

    def on_presets(self, info):
        for p in info["presets"]:
            self.print(f"Seeding generation 0 with preset {p['name']} ({p['origin']}) and a mutant; "
                       f"weights: {p['weights']}", highlight=False)

    def on_generation_start(self, info):
        gen, total = info["generation"], info["generations"]
        self.gen_t0, self.gen_steps = time.perf_counter(), 0
        if self.progress is not None:
            if self.gen_task is None:
                self.gen_task = self.progress.add_task("generations", total=total, completed=gen)
            self.progress.update(self.gen_task, total=total, completed=gen)
            if self.ind_task is not None:
                self.progress.remove_task(self.ind_task)
            self.ind_task = self.progress.add_task(f"generation {gen}", total=info["children"])
        else:
            self.print(f"generation {gen}/{total - 1}: evaluating {info['children']} new individuals")

    def on_evaluating(self, info):
        if self.progress is not None and self.ind_task is not None:
            self.progress.update(self.ind_task, completed=info["done"])

    def on_evaluated(self, info):
        m, ev = info["member"], info["evaluation"]
        if self.progress is not None:
            self.progress.advance(self.ind_task)
            task = self.train_tasks.pop(m.id, None)
            if task is not None:
                self.progress.remove_task(task)
        st = ev.stats or {}
        extra = f"  ({ev.reason})" if ev.reason else ""
        self.gen_steps += int(st.get("steps") or 0)
        swd, perc = ev.metrics.get("swd", 0.0), ev.metrics.get("perceptual", 0.0)
        self.print(f"  {m.id} {ev.status:<8} perceptual {perc:5.2f}  swd {swd:7.1f}  "
                   f"coverage {ev.metrics.get('coverage', 0.0):4.2f}  {st.get('steps_per_second', 0):5.1f} steps/s  "
                   f"{ev.timings.get('total_s', 0):5.1f} s  from {'+'.join(m.parents) or m.origin}{extra}",
                   highlight=False)

    def on_judging(self, info):
        if self.progress is None:
            self.print("  judging: every discriminator against every other generator")

    LEADERBOARD = [("#", "right"), ("individual", "left"), ("front", "right"), ("score ↑", "right"),
                   ("realism ↑", "right"), ("perceptual ↓", "right"), ("coverage ↑", "right"),
                   ("swd ↓", "right"), ("born of", "left"), ("genome", "left")]

    def on_generation_end(self, info):
        from ..genome import describe

        gen, ranked, s = info["generation"], info["ranked"], info["summary"]
        if self.progress is not None:
            self.progress.update(self.gen_task, completed=gen + 1)
        rows = []
        for rank, m in enumerate(ranked, 1):
            o = m.metrics
            rows.append([str(rank), m.id, str(m.front), f"{o.get('score', 0):.1f}", f"{o.get('realism', 0):.3f}",
                         f"{o.get('perceptual', 0):.2f}", f"{o.get('coverage', 0):.2f}", f"{o.get('swd', 0):.1f}",
                         "+".join(m.parents) or m.origin, describe(m.genome)])
        print_table(f"Generation {gen}: population in rank order", self.LEADERBOARD, rows)
        self.print(f"  best score {s['best_score']:.1f} (median {s['median_score']:.1f}), "
                   f"best realism {s['best_realism']:.3f} (median {s['median_realism']:.3f}), "
                   f"best perceptual {s['best_perceptual']:.2f} (median {s['median_perceptual']:.2f}), "
                   f"best coverage {s['best_coverage']:.2f}, best swd {s['best_swd']:.1f}"
                   + (f", {s['diverged']} diverged" if s["diverged"] else "")
                   + (f", {s['failed']} failed" if s["failed"] else ""), highlight=False)
        took = time.perf_counter() - self.gen_t0
        if self.gen_steps and took > 0:
            self.print(f"  {self.gen_steps} training steps in {took:.0f} s: {self.gen_steps / took:.1f} steps/s "
                       f"for the generation, judging included ({self.cfg.precision if self.cfg else '?'})",
                       highlight=False)

    def finish(self, outcome) -> None:
        r = outcome.result
        if outcome.quit:
            self.print(f"\nPaused. Everything so far is saved in {outcome.run_dir}", highlight=False)
            self.print(f"Resume with:  evoart evolve --resume {outcome.run_dir}", highlight=False)
            return
        best = r.population[0] if r.population else None
        self.print(f"\nDone in {outcome.seconds:.0f} s: {r.evaluated} individuals trained.", highlight=False)
        if r.history:
            first, last = r.history[0], r.history[-1]
            if last.get("total_steps"):
                self.print(f"Training steps: {last['total_steps']:,} in all; the best individual's lineage trained "
                           f"{last['best_lineage_steps']:,} of them ({last['best_lineage_share']:.0%})"
                           f"{' with schedule ' + self.cfg.schedule if self.cfg else ''}.", highlight=False)
            self.print(f"Best score {first['best_score']:.1f} -> {last['best_score']:.1f}, best perceptual "
                       f"{first['best_perceptual']:.2f} -> {last['best_perceptual']:.2f}, "
                       f"best swd {first['best_swd']:.1f} -> {last['best_swd']:.1f}, best realism "
                       f"{first['best_realism']:.3f} -> {last['best_realism']:.3f} "
                       f"(generation {first['generation']} -> {last['generation']})", highlight=False)
        self.print(f"Run folder: {outcome.run_dir}", highlight=False)
        self.print(f"Gallery: {outcome.run_dir / 'index.html'}  (evoart gallery serve: star favourites, "
                   "save presets)", highlight=False)
        if best is not None:
            from ..store import generation_dir, individual_dir

            self.print(f"Best of the last generation: {best.id}  "
                       f"{individual_dir(outcome.run_dir, best.id) / 'samples.png'}", highlight=False)
            self.print(f"Contact sheets: {generation_dir(outcome.run_dir, 0) / 'contact.png'} ... "
                       f"{generation_dir(outcome.run_dir, r.generations - 1) / 'contact.png'}", highlight=False)


# ---- prune -------------------------------------------------------------------------------

@main.command()
@click.argument("run")
@runs_root_option()
def prune(run, out):
    """Delete training state that no child can inherit any more (keeps generator weights,
    samples and the ledger)."""
    from ..runner import prune_run

    removed, freed = prune_run(run, out)
    console.print(f"Removed {removed} training-state files, freed {freed / 1e6:.1f} MB.", highlight=False)


