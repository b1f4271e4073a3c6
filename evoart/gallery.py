"""The gallery: static HTML pages of a run, written from its ledger into its folder.

Pages open from the file system (``file://``) with no server and nothing from the
internet: small CSS and JavaScript shipped in this package are copied beside them, charts
are inline SVG, and every link and image is a relative path to a file that exists.

    <root>/index.html                      every run: thumbnail, dataset, date, best scores
    <run>/index.html                       one strip per generation, charts, configuration
    <run>/gen-003/index.html               a generation: samples large, table, judge matrix
    <run>/gen-003/g003-i07/index.html      an individual: samples, genome, curves, family
    <run>/gen-003/g003-i07/lineage.html    its family tree back to generation 0
    <run>/gen-003/g003-i07/thumb.png       2 x 2 samples cut from samples.png

Everything is read through ``store`` (no SQL here) and rebuilt as a whole: a build
renders every page and rewrites only the files whose bytes changed, so rebuilding after
each generation of a running evolution is cheap. ``gallery_server`` serves the same
pages and adds the favourite star and "save as preset".
"""

from __future__ import annotations

import html
import json
import math
import os
import statistics
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import EvoartError
from .genome import Genome, GenomeError, describe, layout
from .store import (
    IndividualRow,
    RunStore,
    StoreError,
    generation_dir,
    list_runs,
    opened,
)

STATIC_DIR = "_static"
STATIC_FILES = ("gallery.css", "gallery.js")
THUMB_NAME = "thumb.png"
INDEX_NAME = "index.html"
LINEAGE_NAME = "lineage.html"

# Objectives and metrics as the gallery shows them: (key, label, better).
METRICS = (
    ("realism", "realism", "higher"),   # share of the population's Ds fooled
    ("swd", "SWD", "lower"),            # sliced Wasserstein distance to the real images
    ("diversity", "diversity", "one"),  # spread of the samples / spread of the real images
)
METRIC_HELP = {
    "realism": "how often the other individuals' discriminators took its images for real (higher is better)",
    "swd": "sliced Wasserstein distance to the real images, multi-scale (lower is better)",
    "diversity": "spread of its samples relative to the real images (1 = as varied as the data)",
}


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


# ---- reading a run once ------------------------------------------------------------------

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
        self.versions = store.versions
        self.created = store.created
        self.status = store.status
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
        """Best and median of each metric over the generation's population (individuals
        that trained; a failed one's placeholder scores would flatten every chart)."""
        ok = [i for i, _ in self.members.get(generation, []) if self.inds[i].row.status == "ok"]
        out: dict[str, float | None] = {}
        for key, _, better in METRICS:
            values = [v for v in (self.metrics(i, generation).get(key) for i in ok) if v is not None]
            if not values:
                out[f"best_{key}"] = out[f"median_{key}"] = None
                continue
            if better == "higher":
                best = max(values)
            elif better == "lower":
                best = min(values)
            else:
                best = min(values, key=lambda v: abs(v - 1.0))
            out[f"best_{key}"], out[f"median_{key}"] = best, statistics.median(values)
        return out

    def best_of_last(self) -> Individual | None:
        if self.last is None or not self.members.get(self.last):
            return None
        return self.inds.get(self.members[self.last][0][0])


# ---- small HTML helpers ------------------------------------------------------------------

def e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: Any, key: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if key.startswith("lr") or (value != 0 and abs(value) < 1e-3):
            return f"{value:.2e}"
        if key == "swd" or abs(value) >= 100:
            return f"{value:.1f}"
        return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.0f}"
    return str(value)


def ind_href(up: str, ind_id: str, born: int, page: str = INDEX_NAME) -> str:
    return f"{up}gen-{born:03d}/{ind_id}/{page}"


def gen_href(up: str, generation: int) -> str:
    return f"{up}gen-{generation:03d}/{INDEX_NAME}"


def star(ind: Individual, run_name: str) -> str:
    on = "true" if ind.favourite else "false"
    return (f'<button type="button" class="star" data-star="{e(ind.id)}" data-run="{e(run_name)}" '
            f'aria-pressed="{on}" title="favourite">★</button>')


def thumb(ind: Individual, up: str, cls: str = "thumb") -> str:
    if ind.has_thumb:
        return (f'<img class="{cls}" src="{ind_href(up, ind.id, ind.born, THUMB_NAME)}" '
                f'alt="samples of {e(ind.id)}">')
    return f'<div class="{cls} noimg" title="{e(ind.row.status)}">{e(ind.row.status)}</div>'


def card(run: RunView, ind: Individual, up: str, *, generation: int | None = None,
         rank: int | None = None, extra: str = "", big: bool = False) -> str:
    m = run.metrics(ind.id, generation)
    born = ' <span class="badge new">new</span>' if generation is not None and ind.born == generation else ""
    status = "" if ind.row.status == "ok" else f' <span class="badge bad">{e(ind.row.status)}</span>'
    rank_s = f'<span class="rank">#{rank}</span> ' if rank is not None else ""
    if big and ind.has_samples:
        img = (f'<img class="samples" src="{ind_href(up, ind.id, ind.born, "samples.png")}" '
               f'alt="samples of {e(ind.id)}">')
    else:
        img = thumb(ind, up)
    return (
        f'<figure class="card{" fav" if ind.favourite else ""}" data-ind="{e(ind.id)}">'
        f'<a href="{ind_href(up, ind.id, ind.born)}">{img}</a>'
        f'<figcaption>{rank_s}<a href="{ind_href(up, ind.id, ind.born)}">{e(ind.id)}</a>{born}{status}'
        f'{star(ind, run.name)}<br><span class="num">r {fmt(m.get("realism"))} · swd {fmt(m.get("swd"), "swd")}'
        f'</span>{extra}</figcaption></figure>'
    )


def page(title: str, body: str, *, up: str, crumbs: list[tuple[str, str | None]],
         data: dict[str, str] | None = None) -> str:
    attrs = "".join(f' data-{k}="{e(v)}"' for k, v in (data or {}).items())
    nav = " <span>›</span> ".join(f'<a href="{e(h)}">{e(t)}</a>' if h else f"<b>{e(t)}</b>" for t, h in crumbs)
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{e(title)}</title>"
        f'<link rel="stylesheet" href="{up}{STATIC_DIR}/gallery.css">'
        f'<script src="{up}{STATIC_DIR}/gallery.js" defer></script></head>'
        f"<body{attrs}><nav class=\"crumbs\">{nav}</nav>"
        f"<main>{body}</main>"
        "<footer>evoart gallery · static pages; run <code>evoart gallery serve</code> to star favourites "
        "and save presets</footer></body></html>\n"
    )


def table(head: list[str], rows: Iterable[list[str]], cls: str = "") -> str:
    h = "".join(f"<th>{c}</th>" for c in head)
    b = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{h}</tr></thead><tbody>{b}</tbody></table>'


def kv_table(items: Iterable[tuple[str, Any]], cls: str = "kv") -> str:
    rows = "".join(f"<tr><th>{e(k)}</th><td>{v if isinstance(v, Raw) else e(fmt(v, k))}</td></tr>"
                   for k, v in items)
    return f'<table class="{cls}"><tbody>{rows}</tbody></table>'


class Raw(str):
    """HTML that ``kv_table`` must not escape."""


# ---- charts (inline SVG) -----------------------------------------------------------------

def _ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw), default=raw)
    start = math.ceil(lo / step) * step
    out, v = [], start
    while v <= hi + 1e-9 * abs(hi) and len(out) < 12:
        out.append(round(v, 10))
        v += step
    return out


def line_chart(title: str, xs: list[int], series: list[tuple[str, list[float | None], str]], *,
               reference: float | None = None, note: str = "", w: int = 360, h: int = 200) -> str:
    """A small line chart: one polyline per series (label, values, css class), x = generation."""
    left, right, top, bottom = 46, 10, 26, 28
    vals = [v for _, ys, _ in series for v in ys if v is not None and math.isfinite(v)]
    if reference is not None:
        vals.append(reference)
    if not vals or not xs:
        return f'<figure class="chart"><figcaption>{e(title)}</figcaption><p class="muted">no data yet</p></figure>'
    lo, hi = min(vals), max(vals)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5 if lo else -0.5, hi + 0.5 if hi else 0.5
    pad = (hi - lo) * 0.08
    lo, hi = lo - pad, hi + pad
    x0, x1 = min(xs), max(xs)

    def X(x: float) -> float:
        return left + (w - left - right) * ((x - x0) / (x1 - x0) if x1 > x0 else 0.5)

    def Y(y: float) -> float:
        return top + (h - top - bottom) * (1 - (y - lo) / (hi - lo))

    parts = [f'<svg class="plot" viewBox="0 0 {w} {h}" role="img" aria-label="{e(title)}">']
    for t in _ticks(lo, hi):
        parts.append(f'<line class="grid" x1="{left}" x2="{w - right}" y1="{Y(t):.1f}" y2="{Y(t):.1f}"/>'
                     f'<text class="tick" x="{left - 5}" y="{Y(t) + 3:.1f}" text-anchor="end">{e(_short(t))}</text>')
    step = max(1, math.ceil(len(xs) / 10))
    for x in xs[::step]:
        parts.append(f'<text class="tick" x="{X(x):.1f}" y="{h - bottom + 14}" text-anchor="middle">{x}</text>')
    parts.append(f'<text class="axis" x="{(left + w - right) / 2:.0f}" y="{h - 2}" text-anchor="middle">generation</text>')
    if reference is not None:
        parts.append(f'<line class="ref" x1="{left}" x2="{w - right}" y1="{Y(reference):.1f}" y2="{Y(reference):.1f}"/>')
    for label, ys, cls in series:
        pts = [(X(x), Y(y), x, y) for x, y in zip(xs, ys) if y is not None and math.isfinite(y)]
        if len(pts) > 1:
            parts.append(f'<polyline class="{cls}" points="{" ".join(f"{a:.1f},{b:.1f}" for a, b, _, _ in pts)}"/>')
        for a, b, x, y in pts:
            parts.append(f'<circle class="{cls}" cx="{a:.1f}" cy="{b:.1f}" r="2.6"><title>{e(label)}, '
                         f'generation {x}: {e(_short(y))}</title></circle>')
    legend = "".join(f'<span class="key {cls}">{e(label)}</span>' for label, _, cls in series)
    parts.append("</svg>")
    return (f'<figure class="chart"><figcaption>{e(title)} {legend}</figcaption>{"".join(parts)}'
            f'{f"<p class=muted>{e(note)}</p>" if note else ""}</figure>')


def _short(v: float) -> str:
    a = abs(v)
    if a >= 1000:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}".rstrip("0").rstrip(".")
    if a >= 0.01 or v == 0:
        return f"{v:.3f}".rstrip("0").rstrip(".")
    return f"{v:.1e}"


def curves_chart(curves: dict[str, list[float]], steps: int, w: int = 520, h: int = 220) -> str:
    """Training losses of one individual (downsampled curves from ``train``)."""
    curves = {k: v for k, v in curves.items() if v}
    if not curves:
        return '<p class="muted">no training curves recorded</p>'
    n = max(len(v) for v in curves.values())
    xs = list(range(n))
    classes = ["s0", "s1", "s2", "s3", "s4", "s5"]
    series = [(k, [float(x) if x is not None else None for x in v] + [None] * (n - len(v)), classes[i % 6])
              for i, (k, v) in enumerate(sorted(curves.items()))]
    chart = line_chart("training losses", xs, series, w=w, h=h)
    return chart.replace(">generation</text>", f">training ({steps} steps, averaged in {n} points)</text>")


def pareto_chart(run: RunView, generation: int, up: str, w: int = 360, h: int = 260) -> str:
    """The generation's pool, realism against SWD; the non-dominated set joined by a line,
    survivors filled, culled children hollow. Each point links to its individual."""
    left, right, top, bottom = 46, 10, 26, 30
    members = {i for i, _ in run.members.get(generation, [])}
    pts = []
    for ind_id in run.pool(generation):
        ind = run.inds.get(ind_id)
        if ind is None or ind.row.status != "ok":
            continue
        m = run.metrics(ind_id, generation)
        if "realism" in m and "swd" in m:
            pts.append((ind, m["realism"], m["swd"]))
    title = f"objectives of generation {generation}: realism → better, SWD ↓ better"
    if not pts:
        return f'<figure class="chart"><figcaption>{e(title)}</figcaption><p class="muted">no data yet</p></figure>'
    front = [p for p in pts if not any((q[1] >= p[1] and q[2] <= p[2]) and (q[1] > p[1] or q[2] < p[2]) for q in pts)]
    rx = [p[1] for p in pts]
    sy = [p[2] for p in pts]
    xlo, xhi = min(rx), max(rx)
    ylo, yhi = min(sy), max(sy)
    if xhi - xlo < 1e-9:
        xlo, xhi = xlo - 0.05, xhi + 0.05
    if yhi - ylo < 1e-9:
        ylo, yhi = ylo - 1, yhi + 1
    px, py = (xhi - xlo) * 0.08, (yhi - ylo) * 0.08
    xlo, xhi, ylo, yhi = xlo - px, xhi + px, ylo - py, yhi + py

    def X(x: float) -> float:
        return left + (w - left - right) * (x - xlo) / (xhi - xlo)

    def Y(y: float) -> float:  # SWD: lower is better, drawn at the top
        return top + (h - top - bottom) * (y - ylo) / (yhi - ylo)

    parts = [f'<svg class="plot" viewBox="0 0 {w} {h}" role="img" aria-label="{e(title)}">']
    for t in _ticks(ylo, yhi):
        parts.append(f'<line class="grid" x1="{left}" x2="{w - right}" y1="{Y(t):.1f}" y2="{Y(t):.1f}"/>'
                     f'<text class="tick" x="{left - 5}" y="{Y(t) + 3:.1f}" text-anchor="end">{e(_short(t))}</text>')
    for t in _ticks(xlo, xhi):
        parts.append(f'<line class="grid" y1="{top}" y2="{h - bottom}" x1="{X(t):.1f}" x2="{X(t):.1f}"/>'
                     f'<text class="tick" x="{X(t):.1f}" y="{h - bottom + 13}" text-anchor="middle">{e(_short(t))}</text>')
    parts.append(f'<text class="axis" x="{(left + w - right) / 2:.0f}" y="{h - 3}" text-anchor="middle">realism →</text>'
                 f'<text class="axis" x="10" y="{(top + h - bottom) / 2:.0f}" text-anchor="middle" '
                 f'transform="rotate(-90 10 {(top + h - bottom) / 2:.0f})">← SWD</text>')
    front_sorted = sorted(front, key=lambda p: p[1])
    if len(front_sorted) > 1:
        parts.append(f'<polyline class="front" points="{" ".join(f"{X(p[1]):.1f},{Y(p[2]):.1f}" for p in front_sorted)}"/>')
    for ind, r, s in pts:
        cls = ("member" if ind.id in members else "culled") + (" onfront" if (ind, r, s) in front else "") + \
              (" fav" if ind.favourite else "")
        parts.append(f'<a href="{ind_href(up, ind.id, ind.born)}"><circle class="{cls}" cx="{X(r):.1f}" cy="{Y(s):.1f}" '
                     f'r="{5 if ind.id in members else 4}"><title>{e(ind.id)}: realism {fmt(r)}, SWD {fmt(s, "swd")}'
                     f'{" (culled)" if ind.id not in members else ""}</title></circle></a>')
    parts.append("</svg>")
    legend = '<span class="key member">survived</span><span class="key culled">culled</span><span class="key front">front</span>'
    return f'<figure class="chart"><figcaption>{e(title)} {legend}</figcaption>{"".join(parts)}</figure>'


def judge_heatmap(run: RunView, matrix: list[tuple[str, str, float]], up: str) -> str:
    """Each D (row) against each other G (column): the share of pairs where G's image
    scored at least as real as a held-out real one."""
    if not matrix:
        return '<p class="muted">no judge matrix recorded</p>'
    ds = sorted({d for d, _, _ in matrix})
    gs = sorted({g for _, g, _ in matrix})
    val = {(d, g): v for d, g, v in matrix}
    cell, lw, th = 22, 70, 70
    w, h = lw + cell * len(gs) + 4, th + cell * len(ds) + 4
    parts = [f'<svg class="heat" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="judge matrix">']
    for j, g in enumerate(gs):
        x = lw + j * cell + cell / 2
        parts.append(f'<text class="tick" transform="translate({x + 3:.0f},{th - 4}) rotate(-60)">{e(g)}</text>')
    for i, d in enumerate(ds):
        y = th + i * cell
        parts.append(f'<text class="tick" x="{lw - 4}" y="{y + cell * 0.7:.0f}" text-anchor="end">{e(d)}</text>')
        for j, g in enumerate(gs):
            v = val.get((d, g))
            if v is None:
                continue
            light = 12 + 70 * max(0.0, min(1.0, v))
            parts.append(f'<rect x="{lw + j * cell}" y="{y}" width="{cell - 1}" height="{cell - 1}" '
                         f'fill="hsl(38 80% {light:.0f}%)"><title>D of {e(d)} on G of {e(g)}: {v:.2f}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


# ---- genome views ------------------------------------------------------------------------

GENE_RANGES = {  # for the loss-weight bars: (lo, hi) from the genome's schema
    "nonsaturating": (0.0, 1.0), "hinge": (0.0, 1.0), "leastsquares": (0.0, 1.0),
    "r1": (0.0, 100.0), "feature_matching": (0.0, 10.0), "mode_seeking": (0.0, 1.0),
}


def genome_section(genome: Genome | None, raw: dict, resolution: int) -> str:
    if genome is None:
        return f"<pre>{e(json.dumps(raw, indent=2, sort_keys=True))}</pre>"
    g, d, lo, t = genome.generator, genome.discriminator, genome.loss, genome.training
    try:
        stem, lay = layout(genome, resolution)
    except GenomeError:
        stem, lay = None, []
    sizes = {bl.index: bl for bl in lay}
    rows = []
    for i, b in enumerate(g.blocks):
        bl = sizes.get(i)
        size = f"{bl.in_size}→{bl.out_size}" if bl else "–"
        used = bl.upsample if bl else b.upsample
        up_s = e(b.upsample) + (f' <span class="muted">(acts as {e(used)})</span>' if used != b.upsample else "")
        rows.append([str(i), str(b.channels), up_s, f"{b.kernel}×{b.kernel}", e(b.norm), e(b.activation),
                     "✓" if b.residual else "", "✓" if b.noise else "", size])
    blocks = table(["#", "channels", "upsample", "kernel", "norm", "activation", "residual", "noise",
                    f"map at {resolution} px"], rows, "genes")
    gen_kv = kv_table([("latent", g.latent), ("stem channels", f"{g.stem_channels} at 4×4"
                                                                + (f", upsampled to {stem}×{stem}" if stem and stem > 4 else "")),
                       ("output", g.output)])
    disc = kv_table([("family", d.family), ("width", d.width), ("norm", d.norm)])
    bars = []
    adv = lo.adversarial()
    for name, (a, b) in GENE_RANGES.items():
        v = getattr(lo, name)
        frac = 0 if b == a else max(0.0, min(1.0, (v - a) / (b - a)))
        share = f' <span class="muted">· {adv[name] * 100:.0f}% of adversarial</span>' if name in adv else ""
        bars.append(f'<div class="bar"><span class="bl">{e(name.replace("_", " "))}</span>'
                    f'<span class="bt"><span class="bf" style="width:{frac * 100:.1f}%"></span></span>'
                    f'<span class="bv">{fmt(v)} <span class="muted">of {fmt(b)}</span>{share}</span></div>')
    train = kv_table([("lr G", t.lr_g), ("lr D", t.lr_d), ("Adam β1", t.beta1), ("Adam β2", t.beta2),
                      ("D steps per G step", t.d_steps), ("batch size", t.batch_size),
                      ("EMA of G", t.ema if t.ema else Raw('<span class="muted">off</span>'))])
    return (
        f'<p class="describe"><code>{e(describe(genome))}</code></p>'
        f'<div class="cols"><div><h3>generator</h3>{gen_kv}{blocks}</div></div>'
        f'<div class="cols three"><div><h3>discriminator</h3>{disc}</div>'
        f'<div><h3>loss weights</h3><div class="bars">{"".join(bars)}</div></div>'
        f'<div><h3>training</h3>{train}</div></div>'
    )


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            if k == "schema_version" or k == "blocks":
                continue
            out.update(_flat(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = d
    return out


def gene_diff(child: dict, parent: dict, slot: int, inheritance: dict | None,
              parent_ids: list[str]) -> list[tuple[str, str, str]]:
    """What changed from ``parent`` (the child's parent number ``slot``) to ``child``,
    gene by gene: (gene, parent's value, child's value). Blocks are matched through the
    inheritance map (a child's block may come from either parent, or be new); without one,
    by position."""
    rows = []
    fc, fp = _flat(child), _flat(parent)
    for k in sorted(set(fc) | set(fp)):
        if fc.get(k) != fp.get(k):
            rows.append((k, fmt(fp.get(k), k.rsplit(".", 1)[-1]), fmt(fc.get(k), k.rsplit(".", 1)[-1])))
    cb = child.get("generator", {}).get("blocks", [])
    pb = parent.get("generator", {}).get("blocks", [])
    if inheritance and len(inheritance.get("blocks", [])) == len(cb):
        sources = inheritance["blocks"]
    else:
        sources = [[slot, i] if i < len(pb) else None for i in range(len(cb))]
    used = set()
    for i, src in enumerate(sources):
        name = f"block {i}"
        if src is None:
            rows.append((name, "–", "new block: " + _block_text(cb[i])))
            continue
        p, j = src
        if p != slot:
            other = parent_ids[p] if p < len(parent_ids) else f"parent {p + 1}"
            rows.append((name, "–", f"from {other}'s block {j}"))
            continue
        used.add(j)
        if j >= len(pb):
            continue
        moved = f" (was block {j})" if j != i else ""
        changed = [k for k in cb[i] if cb[i].get(k) != pb[j].get(k)]
        for k in changed:
            rows.append((f"{name}.{k}{moved}", fmt(pb[j][k]), fmt(cb[i][k])))
        if moved and not changed:
            rows.append((name, f"block {j}", "moved, unchanged"))
    if len(parent_ids) == 1 or not inheritance:
        for j in range(len(pb)):
            if j not in used:
                rows.append((f"parent's block {j}", _block_text(pb[j]), "removed"))
    if inheritance:
        for part, label in (("stem", "latent projection"), ("discriminator", "discriminator weights")):
            if inheritance.get(part) == slot:
                rows.append((label, "trained", "continued from this parent"))
    return rows


def _block_text(b: dict) -> str:
    extras = [x for x in ("residual", "noise") if b.get(x)]
    return (f"{b.get('channels')} ch, {b.get('upsample')}, {b.get('kernel')}×{b.get('kernel')}, "
            f"{b.get('norm')}, {b.get('activation')}" + (", " + ", ".join(extras) if extras else ""))


# ---- thumbnails --------------------------------------------------------------------------

def ensure_thumb(samples: Path, out: Path) -> bool:
    """Cut the first 2 x 2 samples out of an individual's 8-column sample grid (1 px
    padding, as ``fitness`` draws it); kept until samples.png changes."""
    if not samples.is_file():
        return False
    try:
        if out.is_file() and out.stat().st_mtime >= samples.stat().st_mtime:
            return True
        from PIL import Image

        with Image.open(samples) as img:
            img.load()
            w, h = img.size
            tile = (w - 9) / 8
            if tile >= 1 and tile == int(tile) and h >= 2 * tile + 3:
                side = int(2 * tile + 3)
                small = img.crop((0, 0, side, side))
            else:  # an unexpected layout: the whole grid, scaled down
                small = img.copy()
                small.thumbnail((192, 192), Image.NEAREST)
            tmp = out.with_name(f".{out.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            small.convert("RGB").save(tmp, format="PNG")
            os.replace(tmp, out)
        return True
    except OSError:
        return False


# ---- writing -----------------------------------------------------------------------------

class _Writer:
    """Writes a file only when its bytes change (tmp + rename: a browser or a second
    builder never sees half a page)."""

    def __init__(self):
        self.pages = 0
        self.written = 0

    def write(self, path: Path, text: str | bytes) -> None:
        data = text.encode("utf-8") if isinstance(text, str) else text
        self.pages += 1
        try:
            if path.stat().st_size == len(data) and path.read_bytes() == data:
                return
        except OSError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        self.written += 1


def static_text(name: str) -> str:
    return resources.files("evoart").joinpath("gallery_static", name).read_text(encoding="utf-8")


def _write_static(w: _Writer, folder: Path) -> None:
    for name in STATIC_FILES:
        w.write(folder / STATIC_DIR / name, static_text(name))


# ---- the pages of a run ------------------------------------------------------------------

def _gen_nav(run: RunView, up: str, current: int | None = None) -> str:
    chips = []
    for g in run.finished:
        cls = ' class="on"' if g == current else ""
        chips.append(f'<a{cls} href="{gen_href(up, g)}">{g}</a>')
    running = [g["generation"] for g in run.generations if g["finished"] is None]
    if running:
        cls = "chip-run on" if running[0] == current else "chip-run"
        chips.append(f'<a class="{cls}" title="being evaluated" href="{gen_href(up, running[0])}">{running[0]}…</a>')
    return f'<div class="chips"><span class="muted">generations</span>{"".join(chips)}</div>'


def _status_line(run: RunView) -> str:
    done = len(run.finished)
    total = run.total_generations
    label = {"running": "running", "finished": "finished", "interrupted": "interrupted"}.get(run.status, run.status)
    return (f'<span class="badge st-{e(run.status)}">{e(label)}</span> {done} of {total} generations · '
            f'{e(run.dataset.get("name", "?"))} · {e(run.evolve.get("resolution", "?"))} px · population '
            f'{e(run.evolve.get("population", "?"))} · {e(run.evolve.get("steps", "?"))} steps · started '
            f'{time.strftime("%Y-%m-%d %H:%M", time.localtime(run.created))}')


def run_page(run: RunView) -> str:
    up = ""
    xs = run.finished
    sums = [run.summary(g) for g in xs]
    charts = []
    for key, label, better in METRICS:
        arrow = {"higher": "↑ better", "lower": "↓ better", "one": "1 = like the data"}[better]
        charts.append(line_chart(
            f"{label} ({arrow})", xs,
            [("best", [s[f"best_{key}"] for s in sums], "best"),
             ("median", [s[f"median_{key}"] for s in sums], "median")],
            reference=1.0 if better == "one" else None))
    if run.last is not None:
        charts.append(pareto_chart(run, run.last, up))
    favs = ""
    if run.favourites:
        cards = "".join(card(run, run.inds[i], up) for i in run.favourites)
        favs = f'<section><h2>★ favourites</h2><div class="strip">{cards}</div></section>'
    strips = []
    for g in xs:
        s = run.summary(g)
        born = run.born_in(g)
        bad = sum(1 for i in born if i.row.status != "ok")
        cards = "".join(card(run, run.inds[i], up, generation=g, rank=r) for i, r in run.members[g] if i in run.inds)
        strips.append(
            f'<section class="gen" id="gen-{g}"><h2><a href="{gen_href(up, g)}">generation {g}</a> '
            f'<span class="muted">best realism {fmt(s["best_realism"])} · best SWD {fmt(s["best_swd"], "swd")} · '
            f'{len(born)} new{f", {bad} failed or diverged" if bad else ""}</span></h2>'
            f'<div class="strip">{cards}</div></section>')
    pending = [g for g in run.generations if g["finished"] is None]
    if pending:
        g = pending[0]["generation"]
        done = [i for i in run.born_in(g) if i.row.status != "pending"]
        cards = "".join(card(run, i, up) for i in done)
        strips.append(f'<section class="gen pending"><h2><a href="{gen_href(up, g)}">generation {g}</a> '
                      f'<span class="muted">being evaluated: '
                      f'{len(done)} of {len(run.born_in(g))} done</span></h2><div class="strip">{cards}</div></section>')
    config = kv_table(sorted(run.evolve.items()))
    data = kv_table(sorted((k, v) for k, v in run.dataset.items()) + [("device", run.record.get("device"))])
    versions = kv_table(sorted(run.versions.items()))
    body = (
        f'<header class="head"><h1>{e(run.name)}</h1><p>{_status_line(run)}</p>{_gen_nav(run, up)}</header>'
        f'{favs}<section><h2>objectives over generations</h2><div class="charts">{"".join(charts)}</div></section>'
        f'{"".join(strips) or "<p class=muted>no generation finished yet</p>"}'
        f'<section><h2>configuration</h2><div class="cols three"><div><h3>evolution</h3>{config}</div>'
        f'<div><h3>data</h3>{data}</div><div><h3>versions</h3>{versions}'
        f'<p><a href="config.json">config.json</a></p></div></div></section>'
    )
    return page(f"{run.name} · evoart", body, up=up, crumbs=[("all runs", f"../{INDEX_NAME}"), (run.name, None)],
                data={"run": run.name, "page": "run"})


def generation_page(run: RunView, g: int, judge: list[tuple[str, str, float]]) -> str:
    up = "../"
    if g not in run.members:
        return _pending_generation_page(run, g)
    s = run.summary(g)
    members = [(run.inds[i], r) for i, r in run.members[g] if i in run.inds]
    cards = "".join(card(run, ind, up, generation=g, rank=r, big=True) for ind, r in members)
    rows = []
    for ind, r in members:
        m = run.metrics(ind.id, g)
        rows.append([str(r), star(ind, run.name), f'<a href="{ind_href(up, ind.id, ind.born)}">{e(ind.id)}</a>',
                     fmt(m.get("realism")), fmt(m.get("swd"), "swd"), fmt(m.get("diversity")), str(ind.born),
                     e(" + ".join(ind.row.parents) or ind.row.origin),
                     f'<code>{e(describe(ind.genome)) if ind.genome else ""}</code>'])
    member_ids = {i for i, _ in run.members[g]}
    culled = [i for i in run.born_in(g) if i.id not in member_ids]
    culled_html = ""
    if culled:
        culled_html = (f'<section><h2>culled <span class="muted">born in generation {g}, not selected</span></h2>'
                       f'<div class="strip dim">{"".join(card(run, i, up, generation=g) for i in culled)}</div></section>')
    gen = next((x for x in run.generations if x["generation"] == g), None)
    took = f" · took {gen['finished'] - gen['started']:.0f} s" if gen and gen["finished"] else ""
    prev_next = ""
    if g - 1 in run.members:
        prev_next += f'<a rel="prev" href="{gen_href(up, g - 1)}">← generation {g - 1}</a> '
    if g + 1 in run.members:
        prev_next += f'<a rel="next" href="{gen_href(up, g + 1)}">generation {g + 1} →</a>'
    contact = ('<p><a href="contact.png">contact sheet</a></p>'
               if (generation_dir(run.run_dir, g) / "contact.png").is_file() else "")
    body = (
        f'<header class="head"><h1>generation {g}</h1><p class="muted">best realism {fmt(s["best_realism"])} · '
        f'median {fmt(s["median_realism"])} · best SWD {fmt(s["best_swd"], "swd")} · median '
        f'{fmt(s["median_swd"], "swd")}{took}</p><p class="pn">{prev_next}</p>{_gen_nav(run, up, g)}</header>'
        f'<section><h2>population in rank order</h2><div class="grid big">{cards}</div></section>'
        f'<section><h2>table</h2>{table(["#", "★", "individual", "realism ↑", "SWD ↓", "diversity", "born", "from", "genome"], rows, "wide")}</section>'
        f'{culled_html}'
        f'<section><div class="cols"><div>{pareto_chart(run, g, up)}</div>'
        f'<div><h3>judge matrix</h3><p class="muted">each row is a discriminator, each column another '
        f'individual\'s generator: the share of its images judged at least as real as a real one</p>'
        f'{judge_heatmap(run, judge, up)}</div></div>{contact}</section>'
    )
    return page(f"generation {g} · {run.name}", body, up=up,
                crumbs=_gen_crumbs(run, g), data={"run": run.name, "page": "generation"})


def _gen_crumbs(run: RunView, g: int) -> list:
    return [("all runs", f"../../{INDEX_NAME}"), (run.name, f"../{INDEX_NAME}"), (f"generation {g}", None)]


def _pending_generation_page(run: RunView, g: int) -> str:
    """A generation still being evaluated: its finished individuals so far."""
    up = "../"
    born = run.born_in(g)
    done = [i for i in born if i.row.status != "pending"]
    cards = "".join(card(run, i, up, big=True) for i in done)
    prev = f'<a rel="prev" href="{gen_href(up, g - 1)}">← generation {g - 1}</a>' if g - 1 in run.members else ""
    body = (
        f'<header class="head"><h1>generation {g} <span class="badge st-running">being evaluated</span></h1>'
        f'<p class="muted">{len(done)} of {len(born)} new individuals trained so far; ranks, the Pareto view and '
        f'the judge matrix appear when the generation ends</p><p class="pn">{prev}</p>{_gen_nav(run, up, g)}</header>'
        f'<section><h2>trained so far</h2><div class="grid big">{cards or "<p class=muted>none yet</p>"}</div></section>'
    )
    return page(f"generation {g} · {run.name}", body, up=up,
                crumbs=_gen_crumbs(run, g), data={"run": run.name, "page": "generation"})


def individual_page(run: RunView, ind: Individual, siblings: list[Individual]) -> str:
    up = "../../"
    row = ind.row
    resolution = int(run.evolve.get("resolution", 32))
    samples = (f'<img class="samples hero" src="samples.png" alt="samples of {e(ind.id)}">' if ind.has_samples
               else f'<div class="samples hero noimg">{e(row.status)}: no samples</div>')
    hist_rows = []
    birth = run.scores.get(ind.id, {}).get(ind.born, {})
    for g, r in ind.memberships:
        m = run.metrics(ind.id, g)
        hist_rows.append([f'<a href="{gen_href(up, g)}">{g}</a>', f"#{r}", fmt(m.get("realism")),
                          fmt(m.get("swd"), "swd"), fmt(m.get("diversity"))])
    if not ind.memberships:
        m = run.metrics(ind.id)
        judged = ind.born in run.members
        hist_rows.append([str(ind.born), "culled" if judged else "being judged",
                          fmt(m.get("realism")), fmt(m.get("swd"), "swd"), fmt(m.get("diversity"))])
    history = table(["generation", "rank", "realism ↑", "SWD ↓", "diversity"], hist_rows)
    extra = {k: v for k, v in birth.items() if k not in {m for m, _, _ in METRICS}}
    metric_help = "".join(f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in METRIC_HELP.items())
    stats = row.stats or {}
    inherited = stats.get("inherited") or {}
    st_items = [("status", row.status + (f": {row.reason}" if row.reason else "")),
                ("steps (now)", stats.get("steps")), ("steps (with ancestors)", stats.get("lineage_steps")),
                ("training time", f'{stats.get("seconds", 0):.1f} s' if stats else None),
                ("steps per second", stats.get("steps_per_second")),
                ("seed", row.seed), ("genome hash", row.genome_hash)]
    for part, (got, total) in ((k, v) for k, v in inherited.items() if isinstance(v, list) and len(v) == 2):
        st_items.append((f"inherited {part}", f"{got} of {total} tensors"))
    for k, v in (row.timings or {}).items():
        st_items.append((k.replace("_s", " (s)"), v))
    for k, v in sorted(extra.items()):
        st_items.append((k, v))

    # family
    parents = []
    for slot, pid in enumerate(row.parents):
        p = run.inds.get(pid)
        if p is None:
            continue
        diff = gene_diff(row.genome, p.row.genome, slot, row.inheritance, row.parents)
        diff_t = table(["gene", f"in {e(pid)}", f"in {e(ind.id)}"], [[e(a), e(b), e(c)] for a, b, c in diff], "diff") \
            if diff else '<p class="muted">identical genes</p>'
        parents.append(f'<div class="parent"><div class="strip">{card(run, p, up, extra=" <span class=muted>parent " f"{slot + 1}</span>")}</div>'
                       f'<h4>changed from <a class="parent-link" href="{ind_href(up, p.id, p.born)}">{e(pid)}</a></h4>{diff_t}</div>')
    origin = {"crossover": "crossover of two parents", "mutation": "mutation of one parent",
              "random": "a random genome of generation 0"}.get(row.origin, row.origin)
    kids = sorted(c for c in ind.children if run.inds[c].row.status != "pending")  # no page yet
    children = "".join(card(run, run.inds[c], up) for c in kids)
    fam = (f'<p>born in <a href="{gen_href(up, ind.born)}">generation {ind.born}</a> by {e(origin)} · '
           f'<a href="{LINEAGE_NAME}">family tree back to generation 0 →</a></p>'
           f'<div class="parents">{"".join(parents)}</div>'
           f'<h3>children ({len(kids)})</h3>'
           f'{f"<div class=strip>{children}</div>" if children else "<p class=muted>none yet</p>"}')

    idx = next((k for k, s in enumerate(siblings) if s.id == ind.id), 0)
    pn = ""
    if idx > 0:
        pn += f'<a rel="prev" href="../{siblings[idx - 1].id}/{INDEX_NAME}">← {e(siblings[idx - 1].id)}</a> '
    if idx + 1 < len(siblings):
        pn += f'<a rel="next" href="../{siblings[idx + 1].id}/{INDEX_NAME}">{e(siblings[idx + 1].id)} →</a>'
    files = ['<a href="genome.json">genome.json</a>']
    folder = run.run_dir / f"gen-{ind.born:03d}" / ind.id
    if (folder / "generator.pt").is_file():
        files.append('<a href="generator.pt">generator.pt</a>')
    preset_form = (
        f'<form class="preset served-only" id="preset-form" data-run="{e(run.name)}" data-ind="{e(ind.id)}">'
        f'<h3>save as preset</h3><label>name <input name="name" required pattern="[a-z0-9][a-z0-9._\\-]{{0,63}}" '
        f'title="1 to 64 characters: a-z, 0-9, dot, underscore, hyphen" '
        f'placeholder="my-{e(ind.id)}"></label> <label>notes <input name="notes"></label> '
        f'<label><input type="checkbox" name="with_weights"> with weights</label> '
        f'<button type="submit">save</button><output id="preset-result"></output></form>')
    body = (
        f'<header class="head"><h1>{e(ind.id)} {star(ind, run.name)}</h1>'
        f'<p class="muted">{e(row.status)} · born in generation {ind.born} · {e(origin)}'
        f'{" · from " + e(" + ".join(row.parents)) if row.parents else ""}</p><p class="pn">{pn}</p></header>'
        f'<div class="cols hero-row"><div>{samples}<p class="muted">{resolution} px samples from the run\'s fixed '
        f'latent vectors: every individual draws the same ones, so grids compare like for like · '
        f'{" · ".join(files)}</p></div>'
        f'<div><h2>objectives</h2>{history}<details><summary>what these mean</summary><ul>{metric_help}</ul>'
        f'</details><h2>training</h2>{kv_table(st_items)}{preset_form}</div></div>'
        f'<section class="narrow"><h2>training losses</h2>{curves_chart(stats.get("curves") or {}, stats.get("steps") or 0)}</section>'
        f'<section><h2>genome</h2>{genome_section(ind.genome, row.genome, resolution)}</section>'
        f'<section><h2>family</h2>{fam}</section>'
    )
    return page(f"{ind.id} · {run.name}", body, up=up,
                crumbs=[("all runs", f"../../../{INDEX_NAME}"), (run.name, f"../../{INDEX_NAME}"),
                        (f"generation {ind.born}", f"../{INDEX_NAME}"), (ind.id, None)],
                data={"run": run.name, "individual": ind.id, "page": "individual"})


def lineage_page(run: RunView, ind: Individual) -> str:
    """The family tree: generation 0 at the top, the individual at the bottom, every
    parent of every crossover kept. A small layered layout: an edge that skips
    generations gets a waypoint in each row it crosses, and rows are ordered from the
    bottom up by the mean position of what each item leads down to (barycentres), so
    edges stay short and run between the thumbnails rather than behind them."""
    up = "../../"
    nodes: dict[str, Individual] = {}
    todo = [ind.id]
    while todo:
        i = todo.pop()
        if i in nodes or i not in run.inds:
            continue
        nodes[i] = run.inds[i]
        todo.extend(run.inds[i].row.parents)
    order = sorted({n.born for n in nodes.values()})  # generation 0 first (top)
    ypos = {g: k for k, g in enumerate(order)}
    slot_w, way_w, row_h, tw, gutter = 104, 34, 150, 80, 64
    # items: ("n", id) for an individual, ("w", edge number, row) for a waypoint
    rows: dict[int, list[tuple]] = {k: [("n", i) for i, n in nodes.items() if ypos[n.born] == k]
                                    for k in range(len(order))}
    below: dict[tuple, list[tuple]] = {}
    chains = []
    for i, n in nodes.items():
        for p in n.row.parents:
            if p not in nodes:
                continue
            k = len(chains)
            rc, rp = ypos[n.born], ypos[nodes[p].born]
            chain = [("n", p)] + [("w", k, r) for r in range(rp + 1, rc)] + [("n", i)]
            for r in range(rp + 1, rc):
                rows[r].append(("w", k, r))
            for a, b in zip(chain, chain[1:]):
                below.setdefault(a, []).append(b)
            chains.append((p, i, "cross" if len(n.row.parents) > 1 else "mut", chain))
    xpos: dict[tuple, float] = {}

    def width_of(item: tuple) -> float:
        return slot_w if item[0] == "n" else way_w

    for r in sorted(rows, reverse=True):
        def bary(item: tuple) -> float:
            xs = [xpos[b] for b in below.get(item, []) if b in xpos]
            return sum(xs) / len(xs) if xs else 0.0

        items = sorted(rows[r], key=lambda it: (bary(it), str(it)))
        rows[r] = items
        x = -sum(width_of(it) for it in items) / 2
        for it in items:
            xpos[it] = x + width_of(it) / 2
            x += width_of(it)
    span = max(sum(width_of(it) for it in items) for items in rows.values())
    width = span + 20 + gutter
    height = len(order) * row_h + 10
    center = gutter + (width - gutter) / 2

    def X(item: tuple) -> float:
        return center + xpos[item]

    def top(r: int) -> float:
        return 10 + r * row_h

    def at(i: str) -> tuple[float, float]:
        return X(("n", i)), top(ypos[nodes[i].born])

    edges = []
    for p, i, cls, chain in chains:
        bottom = top(ypos[nodes[p].born]) + tw + 26
        x0 = X(chain[0])
        d = [f"M{x0:.0f},{bottom:.0f}"]
        for item in chain[1:]:
            x1 = X(item)
            y1 = top(item[2]) if item[0] == "w" else top(ypos[nodes[item[1]].born])
            mid = (bottom + y1) / 2
            d.append(f"C{x0:.0f},{mid:.0f} {x1:.0f},{mid:.0f} {x1:.0f},{y1:.0f}")
            if item[0] == "w":  # straight down through the row it crosses
                bottom = y1 + tw + 26
                d.append(f"L{x1:.0f},{bottom:.0f}")
            x0 = x1
        edges.append(f'<path class="{cls}" d="{" ".join(d)}"><title>{e(p)} → {e(i)}</title></path>')
    boxes = []
    for i, n in nodes.items():
        x, y = at(i)
        me = " me" if i == ind.id else ""
        fav = " fav" if n.favourite else ""
        boxes.append(f'<a class="node{me}{fav}" style="left:{x - slot_w / 2 + 6:.0f}px;top:{y:.0f}px" '
                     f'href="{ind_href(up, i, n.born)}" title="{e(i)}: {e(n.row.origin)}">{thumb(n, up)}'
                     f'<span>{e(i)}{" ★" if n.favourite else ""}</span></a>')
    labels = "".join(f'<div class="genlabel" style="top:{top(ypos[g]) + tw / 2:.0f}px">gen {g}</div>' for g in order)
    body = (
        f'<header class="head"><h1>family tree of {e(ind.id)}</h1><p class="muted">{len(nodes)} individuals back to '
        f'generation {order[0]}; <span class="key mut">mutation</span> <span class="key cross">crossover</span> · '
        f'<a href="{INDEX_NAME}">back to {e(ind.id)}</a></p></header>'
        f'<div class="tree-wrap"><div class="tree" style="width:{width}px;height:{height}px">{labels}'
        f'<svg class="edges" width="{width}" height="{height}">{"".join(edges)}</svg>{"".join(boxes)}</div></div>'
    )
    return page(f"lineage of {ind.id} · {run.name}", body, up=up,
                crumbs=[("all runs", f"../../../{INDEX_NAME}"), (run.name, f"../../{INDEX_NAME}"),
                        (f"generation {ind.born}", f"../{INDEX_NAME}"), (ind.id, INDEX_NAME), ("lineage", None)],
                data={"run": run.name, "individual": ind.id, "page": "lineage"})


# ---- building ----------------------------------------------------------------------------

def build_run(run_dir: Path, *, store: RunStore | None = None) -> BuildReport:
    """Write (or refresh) every page of one run. ``store``: an open ledger to read from
    (the evolving process passes its own); otherwise the run is opened read-only."""
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    if store is None:
        with opened(run_dir, readonly=True) as s:
            return build_run(run_dir, store=s)
    run = RunView(store)
    w = _Writer()
    _write_static(w, run_dir)
    for ind in run.inds.values():
        folder = run_dir / f"gen-{ind.born:03d}" / ind.id
        if ind.has_samples:
            ind.has_thumb = ensure_thumb(folder / "samples.png", folder / THUMB_NAME)
    w.write(run_dir / INDEX_NAME, run_page(run))
    for g in (x["generation"] for x in run.generations):
        judge = store.judge_matrix(g) if g in run.members else []
        w.write(generation_dir(run_dir, g) / INDEX_NAME, generation_page(run, g, judge))
    for g in sorted({i.born for i in run.inds.values()}):
        siblings = run.born_in(g)
        for ind in siblings:
            if ind.row.status == "pending":
                continue
            folder = run_dir / f"gen-{ind.born:03d}" / ind.id
            if not folder.is_dir():
                continue
            w.write(folder / INDEX_NAME, individual_page(run, ind, [s for s in siblings if s.row.status != "pending"]))
            w.write(folder / LINEAGE_NAME, lineage_page(run, ind))
    return BuildReport(run_dir, w.pages, w.written, time.perf_counter() - t0)


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
    best_realism: float | None = None
    best_swd: float | None = None
    favourites: int = 0
    best: str | None = None          # id of the best individual of the last generation
    best_born: int = 0


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
        best_realism=s.get("best_realism"), best_swd=s.get("best_swd"), favourites=len(run.favourites),
        best=best.id if best else None, best_born=best.born if best else 0,
    )


def list_summaries(root: Path) -> list[RunSummary]:
    return [summarize(p) for p in list_runs(Path(root))]


def index_page(root: Path, runs: list[RunSummary]) -> str:
    cards = []
    for r in sorted(runs, key=lambda r: r.created, reverse=True):
        rel = r.path.name
        if r.error:
            cards.append(f'<figure class="runcard broken"><div class="thumb noimg">?</div><figcaption><b>{e(rel)}</b>'
                         f'<br><span class="muted">{e(r.error)}</span></figcaption></figure>')
            continue
        img = '<div class="thumb noimg">no images yet</div>'
        if r.best:
            t = r.path / f"gen-{r.best_born:03d}" / r.best / THUMB_NAME
            if t.is_file():
                img = f'<img class="thumb" src="{e(rel)}/gen-{r.best_born:03d}/{e(r.best)}/{THUMB_NAME}" alt="best of {e(rel)}">'
        link = f"{e(rel)}/{INDEX_NAME}"
        cards.append(
            f'<figure class="runcard"><a href="{link}">{img}</a><figcaption><a href="{link}"><b>{e(r.name)}</b></a>'
            f'<br><span class="badge st-{e(r.status)}">{e(r.status)}</span> {e(r.dataset)} · {r.resolution} px · '
            f'{r.generations}/{r.total_generations} generations · population {r.population}'
            f'<br><span class="muted">{time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created))}</span>'
            f'<br><span class="num">best realism {fmt(r.best_realism)} · best SWD {fmt(r.best_swd, "swd")}</span>'
            f'{f" · ★ {r.favourites}" if r.favourites else ""}</figcaption></figure>')
    body = (f'<header class="head"><h1>evoart gallery</h1><p class="muted">{len(runs)} run{"s" if len(runs) != 1 else ""} in {e(root.resolve())}</p></header>'
            f'<div class="runs">{"".join(cards) or "<p class=muted>no runs yet: try <code>evoart evolve</code></p>"}</div>')
    return page("evoart gallery", body, up="", crumbs=[("all runs", None)], data={"page": "index"})


def build_index(root: Path, *, build_missing: bool = True) -> Path:
    """Write ``root/index.html`` listing every run; runs whose pages were never built
    (older runs, runs copied in) are built first so that every link resolves."""
    root = Path(root)
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
    w = _Writer()
    _write_static(w, root)
    w.write(root / INDEX_NAME, index_page(root, summaries))
    return root / INDEX_NAME


def build(run_dir: Path, *, store: RunStore | None = None) -> BuildReport:
    """A run's pages and the index of the folder it lives in."""
    report = build_run(run_dir, store=store)
    t0 = time.perf_counter()
    build_index(Path(run_dir).parent)
    report.seconds += time.perf_counter() - t0
    return report
