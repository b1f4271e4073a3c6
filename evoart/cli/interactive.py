"""The terminal side of ``evoart evolve --interactive``: the pause's table and prompt."""

from __future__ import annotations

import select
import sys

from . import console, err_console
from .tables import print_table

COLUMNS = [("#", "right"), ("individual", "left"), ("GA keeps", "left"), ("score ↑", "right"),
           ("realism ↑", "right"), ("perceptual ↓", "right"), ("coverage ↑", "right"),
           ("taste", "right"), ("born of", "left")]


def show_pause(pause) -> None:
    rows = []
    for e in pause.entries:
        o = e.metrics
        rows.append([str(e.number), e.id, "yes" if e.survives else "culled", f"{o.get('score', 0):.1f}",
                     f"{o.get('realism', 0):.3f}", f"{o.get('perceptual', 0):.2f}", f"{o.get('coverage', 0):.2f}",
                     "" if e.predicted is None else f"{e.predicted:.2f}",
                     ("+".join(e.parents) or e.origin) + ("" if e.status == "ok" else f" ({e.status})")])
    print_table(f"Generation {pause.generation}: pick the ones to breed", COLUMNS, rows)
    console.print(f"Contact sheet: {pause.contact_sheet}", highlight=False)
    console.print(f"Gallery page:  {pause.gallery_page}", highlight=False)
    console.print(f"Mutation strength {pause.strength:.2f}.  Type numbers or ranges (1 3 5-7), none, "
                  + ("undo, " if pause.can_undo else "") + "+ / -, or quit.", highlight=False)


def terminal_chooser(pause):
    """Ask on the terminal; meanwhile the gallery page may decide the pause (polled)."""
    from ..interactive import PromptError, parse_answer

    if not getattr(pause, "_shown", False):
        show_pause(pause)
        pause._shown = True
    while True:
        console.print(f"generation {pause.generation} picks> ", end="", highlight=False)
        sys.stdout.flush()
        while True:
            elsewhere = pause.poll()
            if elsewhere is not None:
                console.print(f"\nDecided on the gallery page: {elsewhere.kind} {' '.join(elsewhere.picks)}",
                              highlight=False)
                return elsewhere
            ready, _, _ = select.select([sys.stdin], [], [], 0.5)
            if ready:
                break
        line = sys.stdin.readline()
        if line == "":  # end of input: stop, resumable
            return parse_answer("quit", pause)
        try:
            return parse_answer(line, pause)
        except PromptError as exc:
            err_console.print(f"[yellow]{exc}[/]", highlight=False)


def browser_chooser(url: str):
    """Wait for the gallery page's "breed these" (no terminal to ask): the ledger is polled."""
    import time

    def choose(pause):
        page = f"{url}{pause.run_dir.name}/gen-{pause.generation:03d}/index.html"
        console.print(f"Generation {pause.generation}: waiting for picks on {page}", highlight=False)
        console.print(f"Contact sheet: {pause.contact_sheet}", highlight=False)
        while True:
            decided = pause.poll()
            if decided is not None:
                return decided
            time.sleep(0.5)

    return choose


def on_pause_events(view):
    """Progress events of the session, shown by the evolve view."""

    def on_strength(info):
        console.print(f"Mutation strength now {info['strength']:.2f}", highlight=False)

    def on_decided(info):
        d = info["decision"]
        text = {"pick": f"picked {', '.join(d.picks)}", "none": "no picks: the GA's own survivors",
                "undo": "undo: back to the generation before", "quit": "quit"}.get(d.kind, d.kind)
        console.print(f"Generation {info['generation']}: {text} ({d.source})", highlight=False)

    def on_undone(info):
        console.print(f"Generation {info['generation']} kept as a branch in {info['folder']}", highlight=False)

    def on_auto(info):
        console.print(f"Generation {info['generation']}: automatic, the learned preference joined the objectives",
                      highlight=False)

    view.on_strength, view.on_decided, view.on_undone, view.on_auto = on_strength, on_decided, on_undone, on_auto
