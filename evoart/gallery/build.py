"""Building: every page of a run rendered from its ledger and written where it changed,
and the top-level index of the folder that holds the runs."""

from __future__ import annotations

import time
from pathlib import Path

from ..fitness import noise_seed_of
from ..store import RunStore, StoreError, generation_dir, list_runs, opened
from .root import claim_root
from .pages import SCAN_PICTURE_NAME, family_of, generation_page, index_page, individual_page, lineage_page, run_page
from .thumbs import ensure_scan_picture, ensure_thumb
from .view import INDEX_NAME, LINEAGE_NAME, THUMB_NAME, BuildReport, RunSummary, RunView, summarize
from .writer import Writer, write_static


def build_run(run_dir: Path, *, store: RunStore | None = None) -> BuildReport:
    """Write (or refresh) every page of one run. ``store``: an open ledger to read from
    (the evolving process passes its own); otherwise the run is opened read-only."""
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    if store is None:
        with opened(run_dir, readonly=True) as s:
            return build_run(run_dir, store=s)
    run = RunView(store)
    w = Writer()
    write_static(w, run_dir)
    for ind in run.inds.values():
        folder = run_dir / f"gen-{ind.born:03d}" / ind.id
        if ind.has_samples:
            ind.has_thumb = ensure_thumb(folder / "samples.png", folder / THUMB_NAME)
        if family_of(ind) == "ar" and ind.genome is not None and folder.is_dir():
            ensure_scan_picture(ind.genome.ar, int(run.evolve.get("resolution", 32)), folder / SCAN_PICTURE_NAME,
                                weights=folder / "generator.pt", noise_seed=noise_seed_of(run.evolve.get("seed", 0)))
    w.write(run_dir / INDEX_NAME, run_page(run))
    for g in (x["generation"] for x in run.generations):
        judge = store.judge_cells(g) if g in run.members else []
        w.write(generation_dir(run_dir, g) / INDEX_NAME, generation_page(run, g, judge))
    for g in sorted({i.born for i in run.inds.values()}):
        siblings = [s for s in run.born_in(g) if s.row.status != "pending"]  # pending: no page yet
        for ind in siblings:
            folder = run_dir / f"gen-{ind.born:03d}" / ind.id
            if not folder.is_dir():
                continue
            w.write(folder / INDEX_NAME, individual_page(run, ind, siblings))
            w.write(folder / LINEAGE_NAME, lineage_page(run, ind))
    return BuildReport(run_dir, w.pages, w.written, time.perf_counter() - t0)


def build_index(root: Path, *, build_missing: bool = True) -> Path:
    """Write ``root/index.html`` listing every run; runs whose pages were never built
    (older runs, runs copied in) are built first so that every link resolves."""
    root = Path(root)
    claim_root(root)  # before anything is written: never over a file evoart did not write
    runs = list_runs(root)
    if build_missing:
        for p in runs:
            if not (p / INDEX_NAME).is_file():
                try:
                    build_run(p)
                except (StoreError, OSError, ValueError):
                    pass  # listed below with its error, without a link
    summaries = [summarize(p) for p in runs]
    summaries = [s if s.error or (s.path / INDEX_NAME).is_file() else
                 RunSummary(s.path, s.name, error="its gallery pages could not be built") for s in summaries]
    w = Writer()
    write_static(w, root)
    w.write(root / INDEX_NAME, index_page(root, summaries))
    return root / INDEX_NAME


def build(run_dir: Path, *, store: RunStore | None = None) -> BuildReport:
    """A run's pages and the index of the folder it lives in."""
    report = build_run(run_dir, store=store)
    t0 = time.perf_counter()
    build_index(Path(run_dir).parent)
    report.seconds += time.perf_counter() - t0
    return report
