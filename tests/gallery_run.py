"""Runs for the gallery tests: one tiny real run made by the real ``evoart evolve`` (shared
by the gallery, server and browser tests, and by both xdist workers, so it is trained
once per test session), and synthetic ledgers written through ``store`` for the sizes
and edge cases a tiny run does not reach (a 10 x 16 run, failed individuals, a
generation still being evaluated)."""

from __future__ import annotations

import fcntl
import io
import json
import os
import random
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
from e2e import evoart, only_run
from PIL import Image

from evoart import variation
from evoart.objectives import WORST
from evoart.store import RunStore

TINY_GALLERY = ["--resolution", "16", "--steps", "3", "--samples", "16", "--population", "4",
                "--generations", "2", "--workers", "1"]


def shared_run(tmp_path_factory) -> Path:
    """The tiny run, made once per session (a file lock across xdist workers). Read it,
    never write it: tests that write take a ``private_copy``."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers of this session
    out = base / "gallery-shared-run"
    with open(base / "gallery-shared-run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "DONE").is_file():
            shutil.rmtree(out, ignore_errors=True)
            r = evoart("evolve", *TINY_GALLERY, "--out", str(out), timeout=300)
            assert r.returncode == 0, r.stdout + r.stderr
            (out / "DONE").write_text("ok")
    return only_run(out)


def private_copy(run: Path, dest: Path) -> Path:
    """A copy of the gallery root holding ``run``; returns the copied run folder."""
    shutil.copytree(run.parent, dest, ignore=shutil.ignore_patterns("DONE", "*.lock"))
    return dest / run.name


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and mtime: to show nothing was written."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file() and p.name not in ("run.db-shm", "run.db-wal")}


def ledger_rows(run: Path) -> dict:
    """The ledger's content (not its bytes: a reader may touch the WAL files)."""
    with RunStore.open(run, readonly=True) as s:
        return {"favourites": s.favourites(), "individuals": [r.id for r in s.individuals()],
                "status": s.status}


# ---- links -------------------------------------------------------------------------------

class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []  # (tag, attribute, value)

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("href", "src") and v is not None:
                self.refs.append((tag, k, v))


def page_refs(page: Path) -> list[tuple[str, str, str]]:
    p = _Refs()
    p.feed(page.read_text(encoding="utf-8"))
    return p.refs


def resolve_ref(page: Path, value: str) -> Path | None:
    """The file a relative link of ``page`` points to (None for in-page anchors)."""
    parts = urlsplit(value)
    assert not parts.scheme and not parts.netloc, f"{page}: external reference {value!r}"
    if not parts.path:
        return None
    return (page.parent / unquote(parts.path)).resolve()


# ---- synthetic ledgers -------------------------------------------------------------------

def _samples_png(rng: np.random.Generator, resolution: int, count: int) -> bytes:
    """A sample grid laid out like fitness draws it: 8 columns, 1 px padding, scale 2."""
    tile = resolution * 2
    rows = -(-count // 8)
    img = np.full((rows * tile + rows + 1, 8 * tile + 9, 3), 24, np.uint8)
    for k in range(count):
        r, c = divmod(k, 8)
        small = rng.integers(0, 256, (resolution, resolution, 3), dtype=np.uint8)
        img[1 + r * (tile + 1):1 + r * (tile + 1) + tile, 1 + c * (tile + 1):1 + c * (tile + 1) + tile] = \
            small.repeat(2, 0).repeat(2, 1)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def synthetic_run(out: Path, *, generations: int, population: int, resolution: int = 16, samples: int = 32,
                  failed: set[str] = frozenset(), unfinished: bool = False, seed: int = 0,
                  name: str = "synthetic", hostile: str | None = None) -> Path:
    """A run ledger with the shape of a real one (genomes from ``variation``, parents,
    inheritance maps, scores, judge matrices, members, sample grids), written through
    ``RunStore`` in a second, without training anything. ``hostile``: a string (markup,
    quotes) put wherever the ledger holds text the pages show: the run's name, the
    dataset's name, a configuration value, a failure's reason and a genome field of
    generation 0's second individual."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    cfg = {"evolve": {"generations": generations, "population": population, "resolution": resolution,
                      "samples": samples, "steps": 5, "seed": seed, "data": hostile or "shapes"},
           "dataset": {"name": hostile or "shapes", "kind": "builtin", "fingerprint": "0" * 16, "images": 2048},
           "device": "cpu"}
    store = RunStore.create(out / name, name=hostile or name, config=cfg, versions={"evoart": "test"})
    population_ids: list[str] = []
    genomes: dict[str, dict] = {}
    try:
        total = generations + (1 if unfinished else 0)
        for g in range(total):
            children = []
            for k in range(population):
                cid = f"g{g:03d}-i{k:02d}"
                if g == 0:
                    genome, parents, origin, inh = variation.random_genome(rng, resolution), [], "random", None
                elif rng.random() < 0.3 and len(population_ids) >= 2:
                    a, b = rng.sample(population_ids, 2)
                    from evoart.genome import Genome

                    genome, inh = variation.crossover(Genome.from_dict(genomes[a]), Genome.from_dict(genomes[b]), rng)
                    parents, origin = [a, b], "crossover"
                else:
                    from evoart.genome import Genome

                    a = rng.choice(population_ids)
                    genome, inh = variation.mutate(Genome.from_dict(genomes[a]), rng)
                    parents, origin = [a], "mutation"
                genomes[cid] = genome.to_dict()
                shown = genome.to_dict()
                if hostile and cid == "g000-i01":
                    shown["generator"]["output"] = hostile  # no longer a valid genome: shown raw
                children.append({"id": cid, "genome": shown, "genome_hash": genome.content_hash(),
                                 "parents": parents, "origin": origin,
                                 "inheritance": inh.to_dict() if inh else None, "seed": rng.randrange(2**31)})
            store.begin_generation(g, children, {"rng": []})
            if unfinished and g == total - 1:
                # half of the last generation evaluated, the rest still pending
                for c in children[: population // 2]:
                    _commit(store, c["id"], nrng, resolution, samples, failed, hostile)
                break
            for c in children:
                _commit(store, c["id"], nrng, resolution, samples, failed, hostile)
            pool = population_ids + [c["id"] for c in children]
            scores = {i: {"realism": rng.random(), "perceptual": rng.uniform(1, 15), "coverage": rng.uniform(0, 0.9),
                          "score": rng.uniform(20, 80), "swd": rng.uniform(100, 300), "diversity": rng.uniform(0.2, 1.2)}
                      for i in pool}
            for i in failed & set(pool):
                scores[i] = {**WORST, "score": 0.0}
            ranked = sorted(pool, key=lambda i: (-scores[i]["realism"], i))[:population]
            judge = [(d, x, rng.random()) for d in pool for x in pool if d != x]
            store.end_generation(g, members=[(i, r) for r, i in enumerate(ranked, 1)], scores=scores,
                                 judge=judge, state={"population": ranked})
            population_ids = ranked
        store.set_status("running" if unfinished else "finished")
    finally:
        store.close()
    return out / name


def _commit(store: RunStore, ind_id: str, nrng, resolution: int, samples: int, failed,
            hostile: str | None = None) -> None:
    bad = ind_id in failed
    curves = {"d_loss": [float(x) for x in nrng.uniform(0.5, 1.5, 20)],
              "g_loss": [float(x) for x in nrng.uniform(0.5, 2.5, 20)]}
    store.commit_evaluation(
        ind_id, status="failed" if bad else "ok", reason=(f"RuntimeError: {hostile or 'test'}") if bad else "",
        metrics={"perceptual": 1e3 if bad else float(nrng.uniform(1, 15)), "coverage": float(nrng.uniform(0, 0.9)),
                 "swd": 1e4 if bad else float(nrng.uniform(100, 300)), "diversity": float(nrng.uniform(0, 1))},
        stats={} if bad else {"status": "ok", "steps": 5, "lineage_steps": 5, "seconds": 0.1,
                              "steps_per_second": 50.0, "curves": curves, "inherited": {"g": [3, 4]}},
        timings={"train_s": 0.1, "score_s": 0.01, "total_s": 0.11},
        samples_png=None if bad else _samples_png(nrng, resolution, samples),
        generator_state=None, train_state=None,
    )


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())
