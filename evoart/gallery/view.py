"""The view model: a run read from its ledger once (``RunView``), and the one-line
summaries of the index page and of ``evoart gallery list`` (``RunSummary``).

Which metrics the pages show comes from ``evoart.objectives``: the display score and the
objectives selection uses, with their labels, directions and help text.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EvoartError
from ..genome import Genome, GenomeError
from ..objectives import BETTER, HELP, LABELS, OBJECTIVES
from ..store import IndividualRow, RunStore, StoreError, list_runs, opened

STATIC_DIR = "_static"
STATIC_FILES = ("gallery.css", "gallery.js")
THUMB_NAME = "thumb.png"
INDEX_NAME = "index.html"
LINEAGE_NAME = "lineage.html"

#: What tables, cards and charts show: the display score, then what selection uses.
SHOWN = tuple(LABELS)
#: Two reported metrics the terminal views (``evoart gallery show|list``) and the
#: individual page's detail table still print; selection does not use them.
DETAIL = {"swd": "lower", "diversity": "one"}  # diversity: 1 = as varied as the data
DETAIL_COLUMNS = {"swd": "SWD ↓", "diversity": "diversity"}
ARROWS = {"higher": "↑", "lower": "↓"}


def better(key: str) -> str:
    """"higher" or "lower" (or "one" for diversity); the display score is 0-100, higher
    is better, like the objectives it averages."""
    return BETTER.get(key) or DETAIL.get(key) or "higher"


def column(key: str) -> str:
    """A table heading: the label and its direction ("perceptual ↓")."""
    if key in DETAIL_COLUMNS:
        return DETAIL_COLUMNS[key]
    return f"{LABELS[key]} {ARROWS[better(key)]}"


def help_text(key: str) -> str:
    return HELP.get(key, "")


class GalleryError(EvoartError, ValueError):
    """A gallery that cannot be built; the message is meant for the user."""


@dataclass
class BuildReport:
    run_dir: Path
    pages: int = 0          # pages rendered
    written: int = 0        # files whose bytes changed
    seconds: float = 0.0

    @property
    def index(self) -> Path:
        return self.run_dir / INDEX_NAME


@dataclass
class Individual:
    row: IndividualRow
    genome: Genome | None
    children: list[str] = field(default_factory=list)
    memberships: list[tuple[int, int]] = field(default_factory=list)  # (generation, rank)
    favourite: bool = False
    has_samples: bool = False
    has_thumb: bool = False

    @property
    def id(self) -> str:
        return self.row.id

    @property
    def born(self) -> int:
        return self.row.born


class RunView:
    """Everything the pages need, read from the ledger in a handful of queries."""

    def __init__(self, store: RunStore):
        self.run_dir = Path(store.run_dir)
        self.name = store.name
        self.record = store.config
        from ..interactive.preference import run_summary

        self.interactive = run_summary(store, self.record.get("evolve", {}).get("resolution", 32))
        self.versions = store.versions
        self.created = store.created
        self.status = store.status_now()  # a killed run shows as interrupted
        self.generations = store.generations()
        self.finished = [g["generation"] for g in self.generations if g["finished"] is not None]
        self.members = {g: store.members(g) for g in self.finished}
        self.scores = store.score_table()
        favs = store.favourites()
        self.inds: dict[str, Individual] = {}
        for row in store.individuals():
            try:
                genome = Genome.from_dict(row.genome)
            except GenomeError:
                genome = None
            folder = self.run_dir / f"gen-{row.born:03d}" / row.id
            self.inds[row.id] = Individual(row, genome, favourite=row.id in favs,
                                           has_samples=(folder / "samples.png").is_file())
        for ind in self.inds.values():
            for p in ind.row.parents:
                if p in self.inds:
                    self.inds[p].children.append(ind.id)
        for g, ms in self.members.items():
            for ind_id, rank in ms:
                if ind_id in self.inds:
                    self.inds[ind_id].memberships.append((g, rank))
        self.favourites = [i for i in favs if i in self.inds]

    # -- derived --
    @property
    def evolve(self) -> dict:
        return self.record.get("evolve", {})

    @property
    def dataset(self) -> dict:
        return self.record.get("dataset", {})

    @property
    def floors(self) -> dict:
        """Real-vs-real floors of the metrics, as measured for this run (may be empty)."""
        return (self.record.get("metrics") or {}).get("floors") or {}

    @property
    def total_generations(self) -> int:
        return int(self.evolve.get("generations") or len(self.generations))

    @property
    def last(self) -> int | None:
        return self.finished[-1] if self.finished else None

    def metrics(self, ind_id: str, generation: int | None = None) -> dict[str, float]:
        """As ``RunStore.scores``: metrics at birth overlaid by those of later
        generations up to ``generation``."""
        out: dict[str, float] = {}
        for g in sorted(self.scores.get(ind_id, {})):
            if generation is None or g <= generation:
                out.update(self.scores[ind_id][g])
        return out

    def born_in(self, generation: int) -> list[Individual]:
        return sorted((i for i in self.inds.values() if i.born == generation), key=lambda i: i.id)

    def pool(self, generation: int) -> list[str]:
        """Who competed in ``generation``: the previous population and its children."""
        prev = [i for i, _ in self.members.get(generation - 1, [])]
        return prev + [i.id for i in self.born_in(generation) if i.id not in prev]

    def summary(self, generation: int) -> dict[str, float | None]:
        """Best and median of each shown metric (and of the terminal's detail metrics)
        over the generation's population (individuals that trained; a failed one's
        placeholder scores would flatten every chart)."""
        ok = [i for i, _ in self.members.get(generation, []) if self.inds[i].row.status == "ok"]
        out: dict[str, float | None] = {}
        for key in SHOWN + tuple(DETAIL):
            values = [v for v in (self.metrics(i, generation).get(key) for i in ok) if v is not None]
            if not values:
                out[f"best_{key}"] = out[f"median_{key}"] = None
                continue
            way = better(key)
            if way == "higher":
                best = max(values)
            elif way == "lower":
                best = min(values)
            else:
                best = min(values, key=lambda v: abs(v - 1.0))
            out[f"best_{key}"], out[f"median_{key}"] = best, statistics.median(values)
        return out

    def best_of_last(self) -> Individual | None:
        if self.last is None or not self.members.get(self.last):
            return None
        return self.inds.get(self.members[self.last][0][0])


def non_dominated(points: list[dict[str, float]]) -> list[int]:
    """Indices of the points no other point dominates over all of selection's
    objectives (each in its own direction), as NSGA-II's first front."""
    sign = {k: 1.0 if BETTER[k] == "higher" else -1.0 for k in OBJECTIVES}

    def dominates(a: dict, b: dict) -> bool:
        ge = all(sign[k] * a[k] >= sign[k] * b[k] for k in OBJECTIVES)
        return ge and any(sign[k] * a[k] > sign[k] * b[k] for k in OBJECTIVES)

    return [i for i, p in enumerate(points) if not any(dominates(q, p) for j, q in enumerate(points) if j != i)]


@dataclass
class RunSummary:
    """One line of the top-level index and of ``evoart gallery list``."""

    path: Path
    name: str
    error: str = ""
    dataset: str = ""
    created: float = 0.0
    status: str = ""
    generations: int = 0
    total_generations: int = 0
    population: int = 0
    resolution: int = 0
    best_score: float | None = None
    best_realism: float | None = None
    best_perceptual: float | None = None
    best_coverage: float | None = None
    best_swd: float | None = None
    favourites: int = 0
    best: str | None = None          # id of the best individual of the last generation
    best_born: int = 0

    def best_of(self, key: str) -> float | None:
        return getattr(self, f"best_{key}", None)


def summarize(run_dir: Path) -> RunSummary:
    try:
        with opened(run_dir, readonly=True) as store:
            run = RunView(store)
    except (StoreError, OSError, ValueError, KeyError) as exc:
        return RunSummary(run_dir, run_dir.name, error=str(exc))
    s = run.summary(run.last) if run.last is not None else {}
    best = run.best_of_last()
    return RunSummary(
        run_dir, run.name, dataset=str(run.dataset.get("name", "")), created=run.created, status=run.status,
        generations=len(run.finished), total_generations=run.total_generations,
        population=int(run.evolve.get("population", 0) or 0), resolution=int(run.evolve.get("resolution", 0) or 0),
        best_score=s.get("best_score"), best_realism=s.get("best_realism"),
        best_perceptual=s.get("best_perceptual"), best_coverage=s.get("best_coverage"),
        best_swd=s.get("best_swd"), favourites=len(run.favourites),
        best=best.id if best else None, best_born=best.born if best else 0,
    )


def list_summaries(root: Path) -> list[RunSummary]:
    return [summarize(p) for p in list_runs(Path(root))]
