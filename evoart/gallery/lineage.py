"""The family tree's layout, pure geometry: generation 0 at the top, the individual at
the bottom, every parent of every crossover kept.

A small layered layout: an edge that skips generations gets a waypoint in each row it
crosses, and rows are ordered from the bottom up by the mean position of what each item
leads down to (barycentres), so edges stay short and run between the thumbnails rather
than behind them. ``templates/lineage.html`` draws the result."""

from __future__ import annotations

from dataclasses import dataclass

SLOT_W, WAY_W, ROW_H, THUMB_W, GUTTER = 104, 34, 150, 80, 64


@dataclass
class Tree:
    width: float
    height: float
    generations: list[tuple[int, float]]        # (generation, label top)
    nodes: list[tuple[str, float, float]]       # (id, left, top) of each thumbnail
    edges: list[tuple[str, str, str, str]]      # (parent, child, "cross" | "mut", SVG path)


def family(parents_of: dict[str, list[str]], born: dict[str, int], start: str) -> list[str]:
    """``start`` and every ancestor of it that ``born`` knows."""
    seen: dict[str, None] = {}
    todo = [start]
    while todo:
        i = todo.pop()
        if i in seen or i not in born:
            continue
        seen[i] = None
        todo.extend(parents_of.get(i, []))
    return list(seen)


def layout(parents_of: dict[str, list[str]], born: dict[str, int], start: str) -> Tree:
    """Where each ancestor of ``start`` goes, and the path of each parent-child edge."""
    nodes = family(parents_of, born, start)
    order = sorted({born[n] for n in nodes})  # generation 0 first (top)
    ypos = {g: k for k, g in enumerate(order)}
    # items: ("n", id) for an individual, ("w", edge number, row) for a waypoint
    rows: dict[int, list[tuple]] = {k: [("n", i) for i in nodes if ypos[born[i]] == k] for k in range(len(order))}
    below: dict[tuple, list[tuple]] = {}
    chains = []
    for i in nodes:
        ps = parents_of.get(i, [])
        for p in ps:
            if p not in born or p not in nodes:
                continue
            k = len(chains)
            rc, rp = ypos[born[i]], ypos[born[p]]
            chain = [("n", p)] + [("w", k, r) for r in range(rp + 1, rc)] + [("n", i)]
            for r in range(rp + 1, rc):
                rows[r].append(("w", k, r))
            for a, b in zip(chain, chain[1:]):
                below.setdefault(a, []).append(b)
            chains.append((p, i, "cross" if len(ps) > 1 else "mut", chain))
    xpos: dict[tuple, float] = {}

    def width_of(item: tuple) -> float:
        return SLOT_W if item[0] == "n" else WAY_W

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
    width = span + 20 + GUTTER
    height = len(order) * ROW_H + 10
    center = GUTTER + (width - GUTTER) / 2

    def X(item: tuple) -> float:
        return center + xpos[item]

    def top(r: int) -> float:
        return 10 + r * ROW_H

    edges = []
    for p, i, cls, chain in chains:
        bottom = top(ypos[born[p]]) + THUMB_W + 26
        x0 = X(chain[0])
        d = [f"M{x0:.0f},{bottom:.0f}"]
        for item in chain[1:]:
            x1 = X(item)
            y1 = top(item[2]) if item[0] == "w" else top(ypos[born[item[1]]])
            mid = (bottom + y1) / 2
            d.append(f"C{x0:.0f},{mid:.0f} {x1:.0f},{mid:.0f} {x1:.0f},{y1:.0f}")
            if item[0] == "w":  # straight down through the row it crosses
                bottom = y1 + THUMB_W + 26
                d.append(f"L{x1:.0f},{bottom:.0f}")
            x0 = x1
        edges.append((p, i, cls, " ".join(d)))
    boxes = [(i, X(("n", i)) - SLOT_W / 2 + 6, top(ypos[born[i]])) for i in nodes]
    return Tree(width, height, [(g, top(ypos[g]) + THUMB_W / 2) for g in order], boxes, edges)
