"""The interactive run: evolve one generation, pause for the artist's picks, apply them.

``Session.drive`` wraps ``ga.evolve`` (which it calls one generation at a time, each call
resuming from the ledger, so a decision always starts from what is committed): after a
generation is finished it opens a pause in the ledger, asks its ``chooser`` (the
terminal, a replayed log, the gallery page through the ledger), logs the decision in the
run's event log and applies it. A killed or quit run resumes at the open pause.

- pick: the picks survive (a hard override: they go first, the GA's ranking fills the
  rest) and are preferred as parents (their ``preference`` score is 1, the rest 0).
- none: the GA's own survivors; no preference.
- undo: the generation moves into a branch (``RunStore.undo_generation``) and the one
  before pauses again. Refused at generation 0.
- stronger / weaker: the mutation strength of the generations that follow, x or / 1.5.
- quit: stop; ``evoart evolve --resume`` pauses here again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import EvoartError
from ..imaging import contact_sheet, png_bytes

STRENGTH_STEP = 1.5
STRENGTH_RANGE = (0.1, 5.0)   # EvolveConfig.mutation_strength's range, (0, 5]


class InteractiveError(EvoartError):
    """An interactive run that cannot go on as asked (a log out of step, a bad pick)."""


@dataclass
class Decision:
    kind: str                      # pick | none | undo | quit | stronger | weaker
    picks: list[str] = field(default_factory=list)
    source: str = "terminal"       # terminal | replay | browser | auto

    def event(self, generation: int) -> dict:
        e = {"generation": generation, "kind": self.kind, "source": self.source, "time": round(time.time(), 3)}
        if self.kind == "pick":
            e["picks"] = list(self.picks)
        return e


@dataclass
class Entry:
    """One numbered row of the pause: an individual of the generation's pool."""

    number: int
    id: str
    survives: bool                 # the GA's own selection keeps it
    metrics: dict
    parents: list[str]
    origin: str
    genome: dict
    status: str
    samples: Path
    predicted: float | None = None  # the learned preference's probability of a pick

    @property
    def failed(self) -> bool:
        return self.status != "ok"


@dataclass
class Pause:
    generation: int
    generations: int
    entries: list[Entry]
    contact_sheet: Path
    gallery_page: Path
    strength: float
    can_undo: bool
    max_picks: int
    run_dir: Path
    poll: Callable[[], "Decision | None"] = lambda: None   # a decision made elsewhere (the gallery page)

    def by_id(self) -> dict[str, Entry]:
        return {e.id: e for e in self.entries}


Chooser = Callable[[Pause], Decision]


def strength_after(base: float, events: list[dict]) -> float:
    """The mutation strength once ``events`` (the log so far) have been applied."""
    s = base
    for e in events:
        if e.get("kind") == "stronger":
            s = min(STRENGTH_RANGE[1], s * STRENGTH_STEP)
        elif e.get("kind") == "weaker":
            s = max(STRENGTH_RANGE[0], s / STRENGTH_STEP)
    return round(s, 6)


def sample_tiles(png: Path, resolution: int, count: int | None = None):
    """The fixed-latent samples cut back out of an individual's samples.png (an 8-wide
    grid at scale 2 with 1 px between tiles, as ``Evaluation.samples_png`` writes it)."""
    import numpy as np
    from PIL import Image

    grid = np.asarray(Image.open(png).convert("RGB"))
    tile = resolution * 2
    rows, cols = (grid.shape[0] - 1) // (tile + 1), (grid.shape[1] - 1) // (tile + 1)
    out = []
    for r in range(rows):
        for c in range(cols):
            top, left = 1 + r * (tile + 1), 1 + c * (tile + 1)
            t = grid[top: top + tile: 2, left: left + tile: 2]
            if t.shape[:2] == (resolution, resolution) and not (t == grid[0, 0]).all():
                out.append(t)  # an unused cell of the last row is all background
    if count is not None:
        out = out[:count]
    return np.stack(out) if out else np.zeros((0, resolution, resolution, 3), np.uint8)


class Session:
    """One interactive run over an open, locked ``RunStore``."""

    def __init__(self, store, cfg, chooser: Chooser, *, auto_between: int = 0, progress=None,
                 refresh: Callable[[], None] | None = None):
        self.store = store
        self.cfg = cfg
        self.chooser = chooser
        self.auto_between = auto_between
        self.emit = progress or (lambda kind, info: None)
        self.refresh = refresh or (lambda: None)
        store.ensure_interactive()

    # ---- state read back from the ledger and the log -------------------------------------
    def strength(self) -> float:
        return strength_after(self.cfg.mutation_strength, self.store.events())

    def is_interactive_round(self, generation: int) -> bool:
        return generation % (self.auto_between + 1) == 0

    def entries(self, generation: int) -> list[Entry]:
        end = self.store.generations()[generation]["end_state"]
        ranked = list(end["population"])
        pool = self.store.pool(generation)
        rows = {r.id: r for r in self.store.individuals(ids=pool)}
        scores = {i: self.store.scores(i, generation) for i in pool}
        culled = sorted((i for i in pool if i not in ranked), key=lambda i: (-scores[i].get("score", 0.0), i))
        out = []
        from ..store import individual_dir

        for n, i in enumerate(ranked + culled, 1):
            r = rows[i]
            out.append(Entry(number=n, id=i, survives=i in ranked, metrics=scores[i], parents=r.parents,
                             origin=r.origin, genome=r.genome, status=r.status,
                             samples=individual_dir(self.store.run_dir, i) / "samples.png"))
        return out

    def _pause(self, generation: int) -> Pause:
        from ..store import generation_dir

        entries = self.entries(generation)
        self._predict(generation, entries)
        rows = []
        for e in entries:
            tiles = sample_tiles(e.samples, self.cfg.resolution, 8) if e.samples.is_file() else None
            if tiles is not None and len(tiles):
                label = f"{e.number}  {e.id}{'' if e.survives else ' (culled)'}\nscore {e.metrics.get('score', 0):.0f}"
                rows.append((label, tiles))
        sheet = generation_dir(self.store.run_dir, generation) / "picks.png"
        if rows:
            self.store.write_generation_file(generation, "picks.png", png_bytes(contact_sheet(
                rows, per_row=8, scale=2, title=f"generation {generation}: pick by number")))

        def poll() -> Decision | None:
            p = self.store.pauses().get(generation)
            if p and p["decision"] is not None:
                return Decision(p["decision"]["kind"], list(p["decision"].get("picks", [])), source=p["source"])
            return None

        return Pause(generation=generation, generations=self.cfg.generations, entries=entries,
                     contact_sheet=sheet, gallery_page=generation_dir(self.store.run_dir, generation) / "index.html",
                     strength=self.strength(), can_undo=generation > 0, max_picks=self.cfg.population,
                     run_dir=self.store.run_dir, poll=poll)

    def _stars(self, generation: int, entries: list[Entry], opened: float) -> list[str]:
        """Individuals of the pool starred in the gallery while the run waited: they count as picks."""
        ids = {e.id for e in entries if not e.failed}
        return [i for i, t in self.store.favourites().items() if i in ids and t >= opened]

    def _predict(self, generation: int, entries: list[Entry]) -> None:
        """The learned preference's prediction for each entry, when there is one."""
        from .preference import predict_pool

        predict_pool(self, generation, entries)

    # ---- deciding ------------------------------------------------------------------------
    def _check(self, decision: Decision, pause: Pause) -> None:
        if decision.kind not in ("pick", "none", "undo", "quit", "stronger", "weaker"):
            raise InteractiveError(f"unknown decision {decision.kind!r}")
        if decision.kind == "undo" and not pause.can_undo:
            raise InteractiveError("nothing to undo at generation 0")
        if decision.kind == "pick":
            known = pause.by_id()
            for p in decision.picks:
                if p not in known:
                    raise InteractiveError(f"{p} is not an individual of generation {pause.generation}'s pool "
                                           f"({', '.join(known)})")
                if known[p].failed:
                    raise InteractiveError(f"{p} {known[p].status} and has no images to breed from")
            if not decision.picks or len(decision.picks) > pause.max_picks:
                raise InteractiveError(f"pick 1 to {pause.max_picks} individuals (the population size)")

    def decide(self, generation: int) -> Decision:
        """Ask until a decision ends the pause; strength changes are logged on the way."""
        self.store.open_pause(generation)
        self.refresh()  # the gallery page shows the pause (and its "breed these" control)
        pause = self._pause(generation)
        self.emit("pause", {"pause": pause})
        while True:
            stored = self.store.pauses()[generation]
            if stored["decision"] is not None:  # decided before a kill, or on the gallery page
                d = stored["decision"]
                decision = Decision(d["kind"], list(d.get("picks", [])), source=stored["source"] or "browser")
                break
            decision = self.chooser(pause)
            self._check(decision, pause)
            if decision.kind in ("stronger", "weaker"):
                self.store.append_event(decision.event(generation))
                pause.strength = self.strength()
                self.emit("strength", {"strength": pause.strength, "generation": generation})
                continue
            if decision.kind == "quit":
                break
            if not self.store.submit_decision(generation, {"kind": decision.kind, "picks": decision.picks},
                                              decision.source):
                continue  # the gallery page was first: take its decision (read back above)
            break
        if decision.kind in ("pick", "none"):
            # stars given in the gallery during the pause, on this generation's pool, count as picks
            stars = self._stars(generation, pause.entries, self.store.pauses()[generation]["opened"])
            merged = list(dict.fromkeys([*decision.picks, *stars]))[: pause.max_picks]
            if merged != decision.picks:
                decision = Decision("pick", merged, source=decision.source)
        last = self.store.events()[-1:] if self.store.events() else []
        if not last or _key(last[0]) != _key(decision.event(generation)):
            self.store.append_event(decision.event(generation))
        self.emit("decided", {"generation": generation, "decision": decision})
        return decision

    def apply(self, generation: int, decision: Decision) -> None:
        end = self.store.generations()[generation]["end_state"]
        ranked = list(end["population"])
        pool = self.store.pool(generation)
        picks = [i for i in [*ranked, *sorted(pool)] if i in set(decision.picks)]
        picks = list(dict.fromkeys(picks))
        members = (picks + [i for i in ranked if i not in picks])[: self.cfg.population]
        # every individual of the pool gets this round's preference, so an earlier round's
        # pick that is still about is not preferred again unless it is picked again
        preference = {i: (1.0 if i in picks else 0.0) for i in pool}
        self.store.apply_decision(generation, members, preference)

    # ---- the loop ------------------------------------------------------------------------
    def drive(self, evolve_to: Callable[[int, float], object]):
        """Evolve and pause until the run is done or the artist quits. ``evolve_to(n,
        strength)`` runs ``ga.evolve`` up to ``n`` generations in all. Returns (the last
        ``EvolveResult`` or None, whether the artist quit)."""
        result = None
        while True:
            last = self.store.last_finished_generation()
            unfinished = last is None or len(self.store.generations()) > last + 1
            if unfinished:
                result = evolve_to((0 if last is None else last + 1) + 1, self.strength())
                continue
            pause = self.store.pauses().get(last)
            if pause is None or not pause["applied"]:
                if self.is_interactive_round(last):
                    decision = self.decide(last)
                else:
                    decision = self.auto_decision(last)
                if decision.kind == "quit":
                    return result, True
                if decision.kind == "undo":
                    info = self.store.undo_generation(last)
                    self.refresh()
                    self.emit("undone", info)
                    continue
                if decision.kind != "auto":
                    self.apply(last, decision)
                self.refresh()
            if last + 1 >= self.cfg.generations:
                return result, False
            result = evolve_to(last + 2, self.strength())

    def auto_decision(self, generation: int) -> Decision:
        """A generation between the artist's rounds (``--auto-between``): the learned
        preference's prediction joins the objectives (see ``preference.auto_select``)."""
        from .preference import auto_select

        self.store.open_pause(generation)
        members, predicted = auto_select(self, generation)
        self.store.submit_decision(generation, {"kind": "auto", "picks": []}, "auto")
        self.store.apply_decision(generation, members, predicted)
        self.emit("auto", {"generation": generation, "predicted": predicted})
        return Decision("auto", source="auto")


def _key(event: dict) -> tuple:
    return (event.get("generation"), event.get("kind"), tuple(event.get("picks") or ()))
