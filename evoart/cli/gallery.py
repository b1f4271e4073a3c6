"""`evoart gallery`: browse runs in the terminal, build their pages, serve them."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import console, err_console, main
from .options import runs_root_option
from .tables import print_table

OUT_OPTION = runs_root_option("Folder of the runs (the gallery root).")


def _run_dir(run: str, out: Path) -> Path:
    from ..store import resolve_run

    return resolve_run(run, out).resolve()


def _f(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


@main.group()
def gallery():
    """Look at runs: generation by generation, in the terminal or in a browser.

    \b
    Every run folder holds static pages (rebuilt after each generation while it
    evolves) that open from the file system; `serve` adds favourites and presets.
    \b
      evoart gallery list                  the runs under gallery/
      evoart gallery show RUN              the last generation, best first
      evoart gallery open RUN --browser    the run's page in your browser
      evoart gallery serve                 browse at http://127.0.0.1:8000/, star, save presets
    """


@gallery.command("list")
@OUT_OPTION
def gallery_list(out):
    """The runs under --out, newest first (a run's name starts with its date), with the best
    display score, realism, perceptual distance and coverage of their last generation (what
    selection uses) and how many favourites."""
    from ..gallery import list_summaries

    runs = sorted(list_summaries(out), key=lambda r: r.created, reverse=True)
    if not runs:
        console.print(f"No runs in {out}. Start one with: evoart evolve --out {out}", highlight=False)
        return
    columns = [("run", "left"), ("dataset", "left"), ("status", "left"), ("gens", "right"), ("size", "right"),
               ("score ↑", "right"), ("realism ↑", "right"), ("perceptual ↓", "right"), ("coverage ↑", "right"),
               ("★", "right")]
    rows = []
    for r in runs:
        if r.error:
            rows.append([r.path.name, "unreadable (see below)"] + [""] * (len(columns) - 2))
            continue
        rows.append([r.name, r.dataset, r.status, f"{r.generations}/{r.total_generations}",
                     f"{r.population}×{r.resolution}px", _f(r.best_score, 1), _f(r.best_realism),
                     _f(r.best_perceptual, 2), _f(r.best_coverage, 2), str(r.favourites or "")])
    print_table(f"Runs in {out}", columns, rows)
    for r in runs:
        if r.error:
            err_console.print(f"[yellow]Skipped {r.path.name}:[/] {r.error}", highlight=False)

@gallery.command("show")
@click.argument("run")
@click.option("--generation", "-g", type=int, help="Which generation (default: the last finished one).")
@OUT_OPTION
def gallery_show(run, generation, out):
    """A generation of RUN in rank order: objectives, favourites, where the images are."""
    from ..gallery import RunView
    from ..store import individual_dir, opened

    run_dir = _run_dir(run, out)
    with opened(run_dir) as store:
        view = RunView(store)
    if not view.finished:
        raise click.ClickException(f"run {view.name} has no finished generation yet")
    g = view.last if generation is None else generation
    if g not in view.members:
        raise click.UsageError(f"run {view.name} has generations {view.finished[0]} to {view.finished[-1]}; "
                         f"there is no generation {g}")
    s = view.summary(g)
    columns = [("#", "right"), ("individual", "left"), ("score ↑", "right"), ("realism ↑", "right"),
               ("perceptual ↓", "right"), ("coverage ↑", "right"), ("from", "left"), ("samples", "left")]
    rows = []
    for ind_id, rank in view.members[g]:
        ind = view.inds[ind_id]
        m = view.metrics(ind_id, g)
        samples = individual_dir(run_dir, ind_id) / "samples.png"
        rows.append([str(rank), ind_id + (" ★" if ind.favourite else ""), _f(m.get("score"), 1),
                     _f(m.get("realism")), _f(m.get("perceptual"), 2), _f(m.get("coverage"), 2),
                     "+".join(ind.row.parents) or ind.row.origin,
                     str(samples.relative_to(run_dir)) if samples.is_file() else f"{ind.row.status}: none"])
    print_table(f"{view.name} · generation {g} of {view.finished[-1]}: population in rank order", columns, rows)
    console.print(f"Images under {run_dir}", highlight=False, soft_wrap=True)
    console.print("best " + ", ".join(f"{k} {_f(s[f'best_{k}'], d)} (median {_f(s[f'median_{k}'], d)})"
                                      for k, d in (("score", 1), ("realism", 3), ("perceptual", 2), ("coverage", 2))),
                  highlight=False)
    if view.favourites:
        console.print("Favourites: " + ", ".join(view.favourites), highlight=False)
    console.print(f"Page: {run_dir / f'gen-{g:03d}' / 'index.html'}", highlight=False, soft_wrap=True)


@gallery.command("build")
@click.argument("run", required=False)
@OUT_OPTION
def gallery_build(run, out):
    """Rebuild the pages of RUN (of every run under --out without RUN) and the index."""
    from ..gallery import build, build_index, build_run
    from ..store import StoreError, list_runs

    if run:
        report = build(_run_dir(run, out))
        reports = [report]
    else:
        if not out.is_dir():
            raise click.ClickException(f"no folder {out}: pass --out, or start a run with evoart evolve")
        reports = []
        for p in list_runs(out):
            try:
                reports.append(build_run(p))
            except StoreError as exc:  # one damaged run must not keep the others from being built
                err_console.print(f"[yellow]Skipped {p.name}:[/] {exc}", highlight=False)
        build_index(out)
    for r in reports:
        console.print(f"{r.run_dir.name}: {r.pages} pages ({r.written} changed) in {r.seconds:.2f} s  "
                      f"{r.index}", highlight=False)
    if not reports:
        console.print(f"No runs in {out}; wrote an empty index {out / 'index.html'}", highlight=False)


@gallery.command("open")
@click.argument("run")
@click.option("--browser", is_flag=True, help="Open the page in the web browser instead of printing its path.")
@OUT_OPTION
def gallery_open(run, browser, out):
    """Print the path of RUN's page (building it if needed), or open it in a browser."""
    from ..gallery import INDEX_NAME, build

    run_dir = _run_dir(run, out)
    page = run_dir / INDEX_NAME
    if not page.is_file():
        build(run_dir)
    if browser:
        import webbrowser

        if not webbrowser.open(page.as_uri()):
            raise click.ClickException(f"could not start a web browser; open {page} yourself")
        console.print(f"Opened {page}", highlight=False)
    else:
        click.echo(str(page))


@gallery.command("favourite")
@click.argument("run")
@click.argument("individuals", nargs=-1, required=True)
@click.option("--remove", is_flag=True, help="Unstar instead.")
@OUT_OPTION
def gallery_favourite(run, individuals, remove, out):
    """Star (or --remove the star of) INDIVIDUALS of RUN; safe while RUN is evolving."""
    from ..gallery import build
    from ..store import RunStore

    run_dir = _run_dir(run, out)
    with RunStore.open(run_dir) as store:
        for ind in individuals:
            store.set_favourite(ind, not remove)
    build(run_dir)
    console.print(f"{'Unstarred' if remove else 'Starred'} {', '.join(individuals)} in {run_dir.name}",
                  highlight=False)


@gallery.command("serve")
@click.argument("run", required=False)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on; 0.0.0.0 shares the gallery with your network.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port (0 picks a free one).")
@click.option("--browser", is_flag=True, help="Open the page in the web browser.")
@click.option("--timeout", type=click.FloatRange(0.1, 3600), default=10, show_default=True,
              help="Seconds a connection may send nothing (a request, the rest of a body) before it is closed.")
@OUT_OPTION
def gallery_serve(run, host, port, browser, timeout, out):
    """Serve the gallery on a local web server, with favourite stars and "save as preset".

    Serves the runs under --out (with RUN: the folder that holds RUN) and nothing else:
    pages, images and genome.json, never the ledger, training state or config.json (it
    names local folders). Generator weights are a download only on 127.0.0.1.
    """
    from ..gallery.server import make_server

    run_dir = _run_dir(run, out) if run else None
    root = run_dir.parent if run_dir else out
    if not root.is_dir():
        raise click.ClickException(f"no folder {root}: pass --out, or start a run with evoart evolve")

    def log(msg: str) -> None:
        err_console.print(msg, highlight=False, markup=False)

    server = make_server(root, host, port, log=log, run_dir=run_dir, timeout=timeout)
    url = server.url + (f"{run_dir.name}/" if run_dir else "")
    if host not in ("127.0.0.1", "localhost", "::1"):
        err_console.print(f"[yellow]Warning:[/] listening on {host}: anyone who can reach this machine can "
                          "browse the gallery, star individuals and save presets", highlight=False)
    click.echo(f"Serving {root.resolve()} at {url}")
    click.echo("Press Ctrl-C to stop.")
    sys.stdout.flush()
    if browser:
        import webbrowser

        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("Stopped.")
    finally:
        server.server_close()
