"""Charts as numbers: every coordinate, tick and label of the inline SVG charts, computed
here and drawn by ``templates/charts.html``. Line charts (objectives over generations,
training curves), the Pareto view of a generation and the judge heat map."""

from __future__ import annotations

import math

from .. import ornaments, runaway
from ..objectives import BETTER, LABELS, OBJECTIVES
from .text import fmt, ind_href, num, short
from .view import RunView, non_dominated

SERIES_CLASSES = ["s0", "s1", "s2", "s3", "s4", "s5"]  # a chart's series colours (gallery.css)

NO_DATA = {"empty": True}


def ticks(lo: float, hi: float, n: int = 4) -> list[float]:
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
               reference: float | None = None, note: str = "", xlabel: str = "generation",
               w: int = 360, h: int = 200) -> dict:
    """A small line chart: one polyline per series (label, values, css class), x = generation."""
    left, right, top, bottom = 46, 10, 26, 28
    vals = [v for _, ys, _ in series for v in ys if v is not None and math.isfinite(v)]
    if reference is not None:
        vals.append(reference)
    head = {"title": title, "legend": [{"cls": cls, "label": label} for label, _, cls in series], "note": note}
    if not vals or not xs:
        return {**head, "empty": True}
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

    step = max(1, math.ceil(len(xs) / 10))
    lines = []
    for label, ys, cls in series:
        pts = [(X(x), Y(y), x, y) for x, y in zip(xs, ys) if y is not None and math.isfinite(y)]
        lines.append({
            "cls": cls,
            "points": " ".join(f"{a:.1f},{b:.1f}" for a, b, _, _ in pts) if len(pts) > 1 else "",
            "dots": [{"cx": num(a), "cy": num(b), "title": f"{label}, generation {x}: {short(y)}"}
                     for a, b, x, y in pts],
        })
    return {
        **head, "empty": False, "w": w, "h": h, "x1": left, "x2": w - right,
        "yticks": [{"y": num(Y(t)), "ty": num(Y(t) + 3), "tx": left - 5, "label": short(t)} for t in ticks(lo, hi)],
        "xticks": [{"x": num(X(x)), "y": h - bottom + 14, "label": str(x)} for x in xs[::step]],
        "xlabel": {"x": f"{(left + w - right) / 2:.0f}", "y": h - 2, "text": xlabel},
        "reference": num(Y(reference)) if reference is not None else None,
        "lines": lines,
    }


def curves_chart(curves: dict[str, list[float]], steps: int, w: int = 520, h: int = 220,
                 title: str = "training losses") -> dict:
    """Training losses of one individual (downsampled curves from ``train``)."""
    curves = {k: v for k, v in curves.items() if v}
    if not curves:
        return NO_DATA
    n = max(len(v) for v in curves.values())
    classes = SERIES_CLASSES
    series = [(k, [float(x) if x is not None else None for x in v] + [None] * (n - len(v)), classes[i % 6])
              for i, (k, v) in enumerate(sorted(curves.items()))]
    return line_chart(title, list(range(n)), series, w=w, h=h,
                      xlabel=f"training ({steps} steps, averaged in {n} points)")


def _direction(key: str) -> str:
    return "→ better" if BETTER[key] == "higher" else "↓ better"


def pareto_chart(run: RunView, generation: int, up: str, w: int = 360, h: int = 260) -> dict:
    """The generation's pool on selection's objectives: the first objective across, the
    second up (drawn so that better is right and up), the third as the point's size.
    Points on the non-dominated front over all three objectives are ringed; survivors
    filled, culled children hollow. Each point links to its individual."""
    left, right, top, bottom = 46, 10, 26, 30
    kx, ky, kr = OBJECTIVES
    members = {i for i, _ in run.members.get(generation, [])}
    pts = []
    for ind_id in run.pool(generation):
        ind = run.inds.get(ind_id)
        if ind is None or ind.row.status != "ok":
            continue
        m = run.metrics(ind_id, generation)
        if all(k in m for k in OBJECTIVES):
            pts.append((ind, {k: m[k] for k in OBJECTIVES}))
    title = (f"objectives of generation {generation}: {LABELS[kx]} {_direction(kx)}, "
             f"{LABELS[ky]} {_direction(ky)}, dot size = {LABELS[kr]}")
    head = {"title": title, "axes": [kx, ky, kr]}
    if not pts:
        return {**head, "empty": True}
    front = set(non_dominated([p for _, p in pts]))

    def span(key: str, pad_if_flat: float) -> tuple[float, float]:
        vs = [p[key] for _, p in pts]
        lo, hi = min(vs), max(vs)
        if hi - lo < 1e-9:
            lo, hi = lo - pad_if_flat, hi + pad_if_flat
        pad = (hi - lo) * 0.08
        return lo - pad, hi + pad

    xlo, xhi = span(kx, 0.05)
    ylo, yhi = span(ky, 1.0)
    rlo, rhi = min(p[kr] for _, p in pts), max(p[kr] for _, p in pts)

    def X(x: float) -> float:
        frac = (x - xlo) / (xhi - xlo)
        return left + (w - left - right) * (frac if BETTER[kx] == "higher" else 1 - frac)

    def Y(y: float) -> float:  # better drawn at the top
        frac = (y - ylo) / (yhi - ylo)
        return top + (h - top - bottom) * (1 - frac if BETTER[ky] == "higher" else frac)

    def R(v: float) -> float:  # 3 to 8 px, better larger
        frac = 0.5 if rhi - rlo < 1e-12 else (v - rlo) / (rhi - rlo)
        return 3 + 5 * (frac if BETTER[kr] == "higher" else 1 - frac)

    dots = []
    for k, (ind, p) in enumerate(pts):
        member = ind.id in members
        cls = ("member" if member else "culled") + (" onfront" if k in front else "") + (" fav" if ind.favourite else "")
        values = ", ".join(f"{LABELS[o]} {fmt(p[o])}" for o in OBJECTIVES)
        dots.append({"href": ind_href(up, ind.id, ind.born), "cls": cls, "cx": num(X(p[kx])), "cy": num(Y(p[ky])),
                     "r": num(R(p[kr])), "id": ind.id,
                     "title": f"{ind.id}: {values}{' (on the front)' if k in front else ''}"
                              f"{'' if member else ' (culled)'}"})
    # the members first, then the culled on top: hollow circles stay visible
    dots.sort(key=lambda d: d["cls"].startswith("culled"))
    mid = (top + h - bottom) / 2
    return {
        **head, "empty": False, "w": w, "h": h,
        "yticks": [{"y": num(Y(t)), "ty": num(Y(t) + 3), "x1": left, "x2": w - right, "tx": left - 5,
                    "label": short(t)} for t in ticks(ylo, yhi)],
        "xticks": [{"x": num(X(t)), "y1": top, "y2": h - bottom, "ty": h - bottom + 13, "label": short(t)}
                   for t in ticks(xlo, xhi)],
        "xlabel": {"x": f"{(left + w - right) / 2:.0f}", "y": h - 3,
                   "text": f"{LABELS[kx]} →" if BETTER[kx] == "higher" else f"← {LABELS[kx]}"},
        # rotated to read upwards: the arrow points the way the values grow
        "ylabel": {"x": 10, "y": f"{mid:.0f}",
                   "text": f"{LABELS[ky]} →" if BETTER[ky] == "higher" else f"← {LABELS[ky]}"},
        "dots": dots, "front": len(front), "count": len(pts), "over": ", ".join(LABELS[k] for k in OBJECTIVES),
    }


#: The order of a judge's row groups in the heat map, and how each is labelled.
JUDGE_GROUPS = (("peer", ""), ("memory", " (remembered)"), ("critic", ""))
#: A kin relation as the heat map's tooltips say it (D's individual relative to G's).
KIN_WORDS = {"self": "its own D", "parent": "its parent's D", "child": "its child's D",
             "sibling": "its sibling's D"}


def judge_heatmap(cells: list[tuple], kin: dict[tuple[str, str], str] | None = None) -> dict:
    """The judge panel of a generation: each judge (row: the population's Ds, then the
    remembered Ds, then the fresh critic) against each generator (column), a cell being
    the share of (generated, real) pairs where G's image scored as more real (ties
    half). ``cells``: (D, G, value[, role]) with role peer|memory|fallback|critic
    (old runs: no role, all peers). ``kin``: (D, G) -> relation for the pairs the panel
    left out because D is G's kin; shown as crossed cells. A "fallback" cell is kin
    called back because G had too few other judges; it is outlined."""
    if not cells:
        return NO_DATA
    kin = kin or {}
    cells = [(c[0], c[1], c[2], c[3] if len(c) > 3 else "peer") for c in cells]
    group = {}
    for d, _, _, role in cells:
        r = "peer" if role == "fallback" else role
        group[d] = r if group.get(d) in (None, "peer") else group[d]
    gs = sorted({g for _, g, _, _ in cells})
    order = [name for name, _ in JUDGE_GROUPS]
    ds = sorted(group, key=lambda d: (order.index(group[d]) if group[d] in order else len(order), d))
    suffix = dict(JUDGE_GROUPS)
    labels = {d: d + suffix.get(group[d], "") for d in ds}
    val = {(d, g): (v, role) for d, g, v, role in cells}
    cell, th = 22, 70
    lw = 12 + 6 * max(len(t) for t in labels.values())
    w, h = lw + cell * len(gs) + 34, th + cell * len(ds) + 4  # room for the last rotated label
    rows, fallbacks, excluded = [], 0, 0
    for i, d in enumerate(ds):
        y = th + i * cell
        row_cells, crosses = [], []
        for j, g in enumerate(gs):
            x = lw + j * cell
            if (d, g) in val:
                v, role = val[(d, g)]
                light = 12 + 70 * max(0.0, min(1.0, v))
                who = {"critic": "the critic", "memory": f"remembered D of {d}"}.get(role, f"D of {d}")
                note = f" (kin called back: {g} had too few other judges)" if role == "fallback" else ""
                fallbacks += role == "fallback"
                row_cells.append({"x": x, "fill": f"hsl(38 80% {light:.0f}%)", "fallback": role == "fallback",
                                  "title": f"{who} on G of {g}: {v:.2f}{note}"})
            elif (d, g) in kin:
                excluded += kin[(d, g)] != "self"
                crosses.append({"x": x, "x2": x + cell - 1, "y2": y + cell - 1,
                                "title": f"not judged: {KIN_WORDS.get(kin[(d, g)], kin[(d, g)])} (kin do not judge kin)"})
        rows.append({"label": labels[d], "lx": lw - 4, "ly": f"{y + cell * 0.7:.0f}", "y": y, "cells": row_cells,
                     "crosses": crosses, "group": group[d]})
    seps = [{"y": th + i * cell - 1.5, "x1": 4, "x2": w - 2} for i in range(1, len(ds)) if group[ds[i]] != group[ds[i - 1]]]
    counts = {name: sum(1 for d in ds if group[d] == name) for name, _ in JUDGE_GROUPS}
    return {"empty": False, "w": w, "h": h, "size": cell - 1,
            "columns": [{"label": g, "transform": f"translate({lw + j * cell + cell / 2 + 3:.0f},{th - 4}) rotate(-60)"}
                        for j, g in enumerate(gs)],
            "rows": rows, "separators": seps, "peers": counts["peer"], "remembered": counts["memory"],
            "critics": counts["critic"], "fallbacks": fallbacks, "excluded": excluded}


# ---- mate choice: the peacock's tail (evoart.runaway, docs/RUNAWAY.md) --------------------

def runaway_stats(run: RunView) -> list[tuple[int, dict]]:
    """``runaway.generation_stats`` of each finished generation's population (its members'
    mate genes and ornaments, as the ledger holds them); empty for a run without ornaments."""
    out = []
    for g in run.finished:
        rows = []
        for ind_id, _ in run.members.get(g, []):
            ind = run.inds.get(ind_id)
            if ind is None or ind.genome is None or ind.row.status != "ok":
                continue
            rows.append((ind.genome.mate, ornaments.of(run.metrics(ind_id, g))))
        if any(o is not None for _, o in rows):
            out.append((g, runaway.generation_stats(rows)))
    return out


def runaway_charts(run: RunView) -> dict | None:
    """Each ornament's population mean and spread per generation (the tail growing) and,
    where the genomes carry mate genes, each preference's mean, the correlation across
    individuals between a preference and its ornament (which Fisher's process builds up)
    and the preferences' spread (against ``runaway.PREFERENCE_FLOOR``, below which they
    count as collapsed)."""
    floor = runaway.PREFERENCE_FLOOR
    stats = runaway_stats(run)
    if not stats:
        return None
    xs = [g for g, _ in stats]
    classes = SERIES_CLASSES
    tails = []
    for o in ornaments.registry():
        mean = [s["ornaments"][o.name]["mean"] for _, s in stats]
        sd = [s["ornaments"][o.name]["spread"] for _, s in stats]
        rng = f"{short(o.low)}–{short(o.high)}{o.unit}"

        def side(sign: float) -> list[float | None]:
            # a circular ornament's spread is an angle either side: drawn where it stays on the scale
            vals = [m + sign * d if m is not None and d is not None else None for m, d in zip(mean, sd)]
            return [v if v is None or not o.circular or o.low <= v <= o.high else None for v in vals]

        tails.append(line_chart(
            f"{o.name} ({rng}{', circular' if o.circular else ''})", xs,
            [("mean", mean, "best"), ("mean ± spread", side(1.0), "median"), ("", side(-1.0), "median")],
            note=o.description, w=300, h=170))
    for c in tails:
        c["legend"] = [k for k in c["legend"] if k["label"]]
    choosing = any(s["preference_spread"] > 0 or any(v["preference"] for v in s["ornaments"].values())
                   for _, s in stats)
    out = {"tails": tails, "preferences": None, "correlation": None, "spread": None}
    if choosing:
        names = [o.name for o in ornaments.registry()]
        out["preferences"] = line_chart(
            "mean preference for each ornament (> 0: more of it)", xs,
            [(n, [s["ornaments"][n]["preference"] for _, s in stats], classes[i]) for i, n in enumerate(names)],
            reference=0.0, note="each genome's taste, -1 to 1, averaged over the population")
        out["correlation"] = line_chart(
            "correlation of preference and ornament across individuals", xs,
            [(n, [s["ornaments"][n]["correlation"] for _, s in stats], classes[i]) for i, n in enumerate(names)],
            reference=0.0, note="Fisher's process: choosy parents' children carry both the taste and the "
                                "ornament, so this builds up above 0")
        out["spread"] = line_chart(
            "spread of the preferences across the population", xs,
            [("preference spread", [s["preference_spread"] for _, s in stats], "best")],
            reference=floor, note="mean over ornaments of the preferences' standard deviation"
                                  + ("; dashed: the floor below which tastes have collapsed" if floor else ""))
    return out
