"""Page rendering: each page's small view model, computed here from a ``RunView``, and
drawn by the Jinja2 templates under ``templates/`` (autoescape on: every name, note and
genome field from the ledger is escaped by default). No markup is assembled here."""

from __future__ import annotations

import time
from pathlib import Path

import jinja2

from ..ar_genes import scan_label
from ..genome import describe
from ..objectives import LABELS
from ..store import generation_dir
from . import charts, lineage
from .genes import gene_diff, genome_view, kv
from .text import fmt, gen_href, ind_href
from .view import (
    DETAIL,
    INDEX_NAME,
    LINEAGE_NAME,
    SHOWN,
    STATIC_DIR,
    THUMB_NAME,
    Individual,
    RunSummary,
    RunView,
    better,
    column,
    help_text,
)

ENV = jinja2.Environment(loader=jinja2.PackageLoader("evoart.gallery"),
                         autoescape=jinja2.select_autoescape(["html", "svg"], default_for_string=True),
                         trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                         undefined=jinja2.StrictUndefined)
ENV.globals.update(STATIC_DIR=STATIC_DIR, INDEX_NAME=INDEX_NAME, LINEAGE_NAME=LINEAGE_NAME)

ORIGINS = {"crossover": "crossover of two parents", "mutation": "mutation of one parent",
           "random": "a random genome of generation 0",
           "switch": "a family switch: a fresh random genome of another family, trained from scratch"}
#: How cards and pages name each model family (docs/FAMILIES.md).
FAMILY_LABELS = {"gan": "GAN", "vae": "VAE", "ar": "AR"}


def family_of(ind: Individual) -> str:
    """The family of an individual's genome (a genome recorded before the gene: a GAN)."""
    return ind.genome.family if ind.genome is not None else (ind.row.genome or {}).get("family", "gan")


def family_badge(ind: Individual, metrics: dict[str, float]) -> dict:
    """The family chip of a card and its family's own measure (a VAE's ELBO, which no
    selection uses), shown beside it."""
    fam = family_of(ind)
    label = FAMILY_LABELS.get(fam, fam)
    if fam == "ar":  # the chip names the scan order; the note is the bits per pixel
        scan = scan_label(ind.genome.ar) if ind.genome is not None and ind.genome.ar is not None else \
            ((ind.row.genome or {}).get("ar") or {}).get("scan", "?")
        bpp = metrics.get("bits_per_pixel")
        note = f"{bpp:.2f} bits/px" if bpp is not None and bpp == bpp else ""
        return {"key": fam, "label": f"AR {scan}", "note": note,
                "help": (f"an autoregressive model over a palette, generating pixel by pixel in {scan} order"
                         if scan in ("raster", "hilbert") else
                         f"an autoregressive model over a palette, generating token maps coarsest first ({scan} "
                         "scan)")
                        + ("; bits per pixel: the negative log-likelihood of the held-out images' palette "
                           "tokens (log2 K knows nothing, 0 is perfect; not 8-bit bits/dim), recorded, "
                           "never selected on" if note else "")}
    note = f"ELBO {metrics['elbo']:.0f} nats" if "elbo" in metrics else ""
    return {"key": fam, "label": label, "note": note,
            "help": f"a {label}" + (
                "; ELBO: the evidence lower bound of the held-out images per image (Gaussian decoder, "
                "its variance the mean squared error), recorded, never selected on" if note else "")}


#: The scan-order picture an AR individual's page shows, beside its samples.
SCAN_PICTURE_NAME = "scan-order.png"


def ar_view(ind: Individual, metrics: dict[str, float], folder) -> dict | None:
    """What an AR individual's page says of its family: the scan order (as a picture when
    the build drew one), the bits per pixel of the held-out images and log2 K."""
    if family_of(ind) != "ar" or ind.genome is None or ind.genome.ar is None:
        return None
    a = ind.genome.ar
    return {"scan": scan_label(a), "palette": a.palette, "bits_per_pixel": metrics.get("bits_per_pixel"),
            "uniform_bits": metrics.get("uniform_bits"),
            "picture": SCAN_PICTURE_NAME if (folder / SCAN_PICTURE_NAME).is_file() else None}


def render(template: str, **context) -> str:
    return ENV.get_template(template).render(**context)


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


# ---- pieces shared by several pages ------------------------------------------------------

def shown(m: dict[str, float]) -> list[dict]:
    """The display score and selection's objectives of one individual, for a card or a
    table row: key, label, short label, value, help."""
    return [{"key": k, "label": LABELS[k], "short": LABELS[k] if k == "score" else LABELS[k][0],
             "value": fmt(m.get(k), k), "help": f"{LABELS[k]}: {help_text(k)}"} for k in SHOWN]


def bests(s: dict[str, float | None], median: bool = False) -> list[dict]:
    """"best score 44.5 (median 40.1)" for each shown metric of a generation summary."""
    return [{"label": LABELS[k], "help": help_text(k), "best": fmt(s.get(f"best_{k}"), k),
             "median": fmt(s.get(f"median_{k}"), k) if median else None} for k in SHOWN]


def star(run: RunView, ind: Individual) -> dict:
    return {"id": ind.id, "run": run.name, "on": ind.favourite}


def thumb(ind: Individual, up: str, cls: str = "thumb") -> dict:
    if ind.has_thumb:
        return {"cls": cls, "src": ind_href(up, ind.id, ind.born, THUMB_NAME), "alt": f"samples of {ind.id}"}
    return {"cls": cls, "src": None, "status": ind.row.status}


def card(run: RunView, ind: Individual, up: str, *, generation: int | None = None,
         rank: int | None = None, extra: str = "", big: bool = False) -> dict:
    if big and ind.has_samples:
        img = {"cls": "samples", "src": ind_href(up, ind.id, ind.born, "samples.png"), "alt": f"samples of {ind.id}"}
    else:
        img = thumb(ind, up)
    return {"id": ind.id, "fav": ind.favourite, "href": ind_href(up, ind.id, ind.born), "img": img, "rank": rank,
            "new": generation is not None and ind.born == generation,
            "status": "" if ind.row.status == "ok" else ind.row.status, "star": star(run, ind),
            "metrics": shown(run.metrics(ind.id, generation)), "extra": extra,
            "family": family_badge(ind, run.metrics(ind.id, generation))}


def gen_nav(run: RunView, up: str, current: int | None = None) -> list[dict]:
    chips = [{"label": str(g), "href": gen_href(up, g), "cls": "on" if g == current else None, "title": None}
             for g in run.finished]
    running = [g["generation"] for g in run.generations if g["finished"] is None]
    if running:
        chips.append({"label": f"{running[0]}…", "href": gen_href(up, running[0]), "title": "being evaluated",
                      "cls": "chip-run on" if running[0] == current else "chip-run"})
    return chips


def status_line(run: RunView) -> dict:
    return {"status": run.status, "done": len(run.finished), "total": run.total_generations,
            "dataset": run.dataset.get("name", "?"), "resolution": run.evolve.get("resolution", "?"),
            "population": run.evolve.get("population", "?"), "steps": run.evolve.get("steps", "?"),
            # runs recorded before precisions trained in fp32
            "precision": run.evolve.get("precision", "fp32"), "speed": training_speed(run),
            "started": _when(run.created)}


def training_speed(run: RunView) -> str | None:
    """Training steps per second of one worker, over every trained individual of the run
    (all steps over all training seconds), or None before any has trained."""
    steps = seconds = 0.0
    for ind in run.inds.values():
        st = ind.row.stats or {}
        if st.get("steps") and st.get("seconds"):
            steps += st["steps"]
            seconds += st["seconds"]
    return f"{steps / seconds:.1f}" if seconds > 0 else None


def page(title: str, up: str, crumbs: list[tuple[str, str | None]], data: dict[str, str]) -> dict:
    return {"title": title, "up": up, "crumbs": crumbs, "data": data}


# ---- the pages ---------------------------------------------------------------------------

def objective_charts(run: RunView) -> list[dict]:
    """Best and median of the display score and of each objective, per generation; a
    dashed line where real images against real images land (the run's floors)."""
    xs = run.finished
    sums = [run.summary(g) for g in xs]
    out = []
    for key in SHOWN:
        floor = (run.floors.get(key) or {}).get("mean")
        out.append(charts.line_chart(
            f"{LABELS[key]} ({'↑' if better(key) == 'higher' else '↓'} better)", xs,
            [("best", [s[f"best_{key}"] for s in sums], "best"),
             ("median", [s[f"median_{key}"] for s in sums], "median")],
            reference=floor, note="dashed: real images against real ones" if floor is not None else ""))
    return out


def run_page(run: RunView) -> str:
    up = ""
    strips = []
    for g in run.finished:
        born = run.born_in(g)
        strips.append({"generation": g, "href": gen_href(up, g), "bests": bests(run.summary(g)), "new": len(born),
                       "bad": sum(1 for i in born if i.row.status != "ok"),
                       "cards": [card(run, run.inds[i], up, generation=g, rank=r)
                                 for i, r in run.members[g] if i in run.inds]})
    pending = None
    unfinished = [g for g in run.generations if g["finished"] is None]
    if unfinished:
        g = unfinished[0]["generation"]
        done = [i for i in run.born_in(g) if i.row.status != "pending"]
        pending = {"generation": g, "href": gen_href(up, g), "done": len(done), "of": len(run.born_in(g)),
                   "cards": [card(run, i, up) for i in done]}
    return render(
        "run.html", page=page(f"{run.name} · evoart", up, [("all runs", f"../{INDEX_NAME}"), (run.name, None)],
                              {"run": run.name, "page": "run"}),
        name=run.name, status=status_line(run), chips=gen_nav(run, up),
        favourites=[card(run, run.inds[i], up) for i in run.favourites],
        charts=objective_charts(run), runaway=charts.runaway_charts(run), pareto=charts.pareto_chart(run, run.last, up) if run.last is not None else None,
        strips=strips, pending=pending, interactive=interactive_section(run),
        evolution=kv(sorted(run.evolve.items())),
        data=kv(sorted(run.dataset.items()) + [("device", run.record.get("device"))]),
        versions=kv(sorted(run.versions.items())))


def interactive_section(run: RunView) -> list[dict] | None:
    """An interactive run's picks (the preference objective), undone branches, the
    learned preference's leave-one-round-out AUC, and the run it was branched from:
    rows of (key, value, link or None)."""
    rows = []
    source = run.record.get("from")
    if source:
        src = branch_source(run, f"from:{source['run']}:{source['individual']}")
        rows.append({"key": "started from", "value": f"{source['individual']} of run {source['run']} "
                     f"(weights {source['weights']})", "href": src["href"][len("../../"):] if src and src["href"] else None})
    info = run.interactive
    if info is None:
        return rows or None
    for g in sorted(info["decisions"]):
        kind = info["decisions"][g]
        value = ("picked " + ", ".join(info["picks"][g]) if kind == "pick" else
                 "automatic: the learned preference joined the objectives" if kind == "auto" else kind or "waiting for picks")
        rows.append({"key": f"generation {g}", "value": value, "href": gen_href("", g)})
    for g, folder in info["branches"]:
        page = run.run_dir / folder / INDEX_NAME
        rows.append({"key": f"undone generation {g}", "value": f"kept as a branch in {folder}",
                     "href": f"{folder}/{INDEX_NAME}" if page.is_file() else None})
    auc = info["auc"]
    rows.append({"key": "learned preference, leave-one-round-out AUC", "href": None,
                 "value": f"{auc:.2f} over {info['rounds']} rounds" if auc is not None else
                 f"not yet ({info['rounds']} {'round' if info['rounds'] == 1 else 'rounds'} with picks; it needs two)"})
    return rows


def _gen_crumbs(run: RunView, g: int) -> list:
    return [("all runs", f"../../{INDEX_NAME}"), (run.name, f"../{INDEX_NAME}"), (f"generation {g}", None)]


def judge_kin(run: RunView, cells: list[tuple]) -> dict[tuple[str, str], str]:
    """The (D, G) pairs of a generation's panel left out because D is G's kin: every
    discriminator that judged someone (the population's and the remembered ones), against
    every judged G it has no cell for."""
    from ..ga import kin_relation  # the panel's own rule (deap only when a page shows a panel)

    judged = {(c[0], c[1]) for c in cells}
    peers = sorted({c[0] for c in cells if (c[3] if len(c) > 3 else "peer") != "critic"})
    gs = sorted({c[1] for c in cells})

    def who(i):
        ind = run.inds.get(i)
        return (i, tuple(ind.row.parents), ind.born) if ind is not None else None

    out = {}
    for d in peers:
        for g in gs:
            if (d, g) in judged or who(d) is None or who(g) is None:
                continue
            relation = kin_relation(who(d), who(g))
            if relation is not None:
                out[(d, g)] = relation
    return out


def generation_page(run: RunView, g: int, judge: list[tuple]) -> str:
    up = "../"
    head = page(f"generation {g} · {run.name}", up, _gen_crumbs(run, g), {"run": run.name, "page": "generation"})
    if g not in run.members:
        return _pending_generation_page(run, g, head)
    members = [(run.inds[i], r) for i, r in run.members[g] if i in run.inds]
    rows = [{"rank": r, "star": star(run, ind), "id": ind.id, "href": ind_href(up, ind.id, ind.born),
             "metrics": shown(run.metrics(ind.id, g)), "born": ind.born,
             "origin": " + ".join(ind.row.parents) or ind.row.origin,
             "genome": describe(ind.genome) if ind.genome else ""} for ind, r in members]
    member_ids = {i for i, _ in run.members[g]}
    gen = next((x for x in run.generations if x["generation"] == g), None)
    return render(
        "generation.html", page=head, generation=g, bests=bests(run.summary(g), median=True),
        took=f"{gen['finished'] - gen['started']:.0f} s" if gen and gen["finished"] else None,
        prev=gen_href(up, g - 1) if g - 1 in run.members else None,
        next=gen_href(up, g + 1) if g + 1 in run.members else None,
        chips=gen_nav(run, up, g), cards=[card(run, ind, up, generation=g, rank=r, big=True) for ind, r in members],
        columns=[column(k) for k in SHOWN], rows=rows,
        culled=[card(run, i, up, generation=g) for i in run.born_in(g) if i.id not in member_ids],
        pareto=charts.pareto_chart(run, g, up), judge=charts.judge_heatmap(judge, judge_kin(run, judge)),
        contact=(generation_dir(run.run_dir, g) / "contact.png").is_file(),
        breed=breed_control(run, g, up))


def breed_control(run: RunView, g: int, up: str) -> dict | None:
    """The "breed these" control of an interactive run's pause: every individual of the
    generation's pool, with a box to tick; the script shows it while the run waits (and
    the chosen ones once decided, here or at the terminal)."""
    info = run.interactive
    if info is None or g not in info["pools"]:
        return None
    kind = info["decisions"].get(g)
    chosen = ("picked " + ", ".join(info["picks"][g]) if kind == "pick" else
              "no picks: the GA's own survivors" if kind == "none" else kind)
    return {"generation": g, "decided": chosen,
            "pool": [{"id": i, "href": ind_href(up, i, run.inds[i].born), "img": thumb(run.inds[i], up)}
                     for i in info["pools"][g] if i in run.inds and run.inds[i].row.status == "ok"]}


def _pending_generation_page(run: RunView, g: int, head: dict) -> str:
    """A generation still being evaluated: its finished individuals so far."""
    up = "../"
    born = run.born_in(g)
    done = [i for i in born if i.row.status != "pending"]
    return render("generation_pending.html", page=head, generation=g, done=len(done), of=len(born),
                  prev=gen_href(up, g - 1) if g - 1 in run.members else None, chips=gen_nav(run, up, g),
                  cards=[card(run, i, up, big=True) for i in done])


def individual_page(run: RunView, ind: Individual, siblings: list[Individual]) -> str:
    up = "../../"
    row = ind.row
    resolution = int(run.evolve.get("resolution", 32))
    history_keys = SHOWN + tuple(DETAIL)
    history = []
    for g, r in ind.memberships:
        m = run.metrics(ind.id, g)
        history.append({"generation": g, "href": gen_href(up, g), "rank": f"#{r}",
                        "values": [fmt(m.get(k), k) for k in history_keys]})
    if not ind.memberships:
        m = run.metrics(ind.id)
        history.append({"generation": ind.born, "href": None,
                        "rank": "culled" if ind.born in run.members else "being judged",
                        "values": [fmt(m.get(k), k) for k in history_keys]})
    birth = run.scores.get(ind.id, {}).get(ind.born, {})
    stats = row.stats or {}
    inherited = stats.get("inherited") or {}
    st_items = [("status", row.status + (f": {row.reason}" if row.reason else "")),
                ("steps (now)", stats.get("steps")), ("steps (with ancestors)", stats.get("lineage_steps")),
                ("training time", f'{stats.get("seconds", 0):.1f} s' if stats else None),
                ("steps per second", stats.get("steps_per_second")),
                ("precision", stats.get("precision", "fp32") if stats else None),
                ("seed", row.seed), ("genome hash", row.genome_hash)]
    for part, (got, total) in ((k, v) for k, v in inherited.items() if isinstance(v, list) and len(v) == 2):
        st_items.append((f"inherited {part}", f"{got} of {total} tensors"))
    for k, v in (row.timings or {}).items():
        st_items.append((k.replace("_s", " (s)"), v))
    for k, v in sorted(birth.items()):
        if k not in history_keys:
            st_items.append((k, v))

    parents = []
    for slot, pid in enumerate(row.parents):
        p = run.inds.get(pid)
        if p is None:
            continue
        parents.append({"id": pid, "href": ind_href(up, p.id, p.born),
                        "card": card(run, p, up, extra=f"parent {slot + 1}"),
                        "diff": gene_diff(row.genome, p.row.genome, slot, row.inheritance, row.parents)})
    kids = sorted(c for c in ind.children if run.inds[c].row.status != "pending")  # no page yet
    idx = next((k for k, s in enumerate(siblings) if s.id == ind.id), 0)
    folder = run.run_dir / f"gen-{ind.born:03d}" / ind.id
    return render(
        "individual.html",
        page=page(f"{ind.id} · {run.name}", up,
                  [("all runs", f"../../../{INDEX_NAME}"), (run.name, f"../../{INDEX_NAME}"),
                   (f"generation {ind.born}", f"../{INDEX_NAME}"), (ind.id, None)],
                  {"run": run.name, "individual": ind.id, "page": "individual"}),
        ind=ind, run_name=run.name, star=star(run, ind), origin=ORIGINS.get(row.origin, row.origin),
        prev=siblings[idx - 1].id if idx > 0 else None,
        next=siblings[idx + 1].id if idx + 1 < len(siblings) else None,
        resolution=resolution, weights=(folder / "generator.pt").is_file(),
        history_columns=[column(k) for k in history_keys],
        history=history, helps=[(LABELS[k], help_text(k)) for k in SHOWN],
        training=kv(st_items), family=family_badge(ind, run.metrics(ind.id, ind.born)),
        ar=ar_view(ind, run.metrics(ind.id, ind.born), folder),
        curves=charts.curves_chart({(k.replace("_", " ") + " (training windows)" if k == "bits_per_pixel" else k): v
                                    for k, v in (stats.get("curves") or {}).items() if k != "elbo"},
                                   stats.get("steps") or 0),
        elbo_curve=charts.curves_chart({"ELBO (nats per image, batch)": (stats.get("curves") or {})["elbo"]},
                                       stats.get("steps") or 0, title="ELBO over training")
        if (stats.get("curves") or {}).get("elbo") else None,
        genome=genome_view(ind.genome, row.genome, resolution), born_href=gen_href(up, ind.born),
        parents=parents, children=[card(run, run.inds[c], up) for c in kids], source=branch_source(run, row.origin))


def branch_source(run: RunView, origin: str) -> dict | None:
    """Where a run started with ``--from RUN:INDIVIDUAL`` came from: the source run and
    individual, with a link to its page when that run lives beside this one."""
    if not origin.startswith("from:"):
        return None
    src_run, _, src_ind = origin[len("from:"):].rpartition(":")
    href = None
    if src_ind[:1] == "g" and src_ind[1:4].isdigit():
        target = run.run_dir.parent / src_run / f"gen-{int(src_ind[1:4]):03d}" / src_ind / INDEX_NAME
        if target.is_file():
            href = f"../../../{src_run}/gen-{int(src_ind[1:4]):03d}/{src_ind}/{INDEX_NAME}"
    return {"run": src_run, "individual": src_ind, "href": href}


def lineage_sources(run: RunView, ids: list[str]) -> list[dict]:
    """The other runs' individuals a family tree's generation 0 started from (``--from``)."""
    out: list[dict] = []
    for i in ids:
        src = branch_source(run, run.inds[i].row.origin)
        if src is not None and src not in out:
            out.append(src)
    return out


def lineage_page(run: RunView, ind: Individual) -> str:
    up = "../../"
    tree = lineage.layout({i: n.row.parents for i, n in run.inds.items()},
                          {i: n.born for i, n in run.inds.items()}, ind.id)
    nodes = []
    for i, left, top in tree.nodes:
        n = run.inds[i]
        nodes.append({"id": i, "me": i == ind.id, "fav": n.favourite, "left": f"{left:.0f}", "top": f"{top:.0f}",
                      "href": ind_href(up, i, n.born), "origin": n.row.origin, "thumb": thumb(n, up)})
    return render(
        "lineage.html",
        page=page(f"lineage of {ind.id} · {run.name}", up,
                  [("all runs", f"../../../{INDEX_NAME}"), (run.name, f"../../{INDEX_NAME}"),
                   (f"generation {ind.born}", f"../{INDEX_NAME}"), (ind.id, INDEX_NAME), ("lineage", None)],
                  {"run": run.name, "individual": ind.id, "page": "lineage"}),
        ind=ind, tree=tree, nodes=nodes, first=tree.generations[0][0],
        sources=lineage_sources(run, [i for i, _, _ in tree.nodes]),
        labels=[(g, f"{y:.0f}") for g, y in tree.generations])


def index_page(root: Path, runs: list[RunSummary]) -> str:
    cards = []
    for r in sorted(runs, key=lambda r: r.created, reverse=True):
        rel = r.path.name
        if r.error:
            cards.append({"rel": rel, "error": r.error})
            continue
        img = None
        if r.best and (r.path / f"gen-{r.best_born:03d}" / r.best / THUMB_NAME).is_file():
            img = {"src": f"{rel}/gen-{r.best_born:03d}/{r.best}/{THUMB_NAME}", "alt": f"best of {rel}"}
        cards.append({"rel": rel, "error": "", "href": f"{rel}/{INDEX_NAME}", "img": img, "name": r.name,
                      "status": r.status, "dataset": r.dataset, "resolution": r.resolution,
                      "generations": r.generations, "total": r.total_generations, "population": r.population,
                      "created": _when(r.created), "favourites": r.favourites,
                      "bests": [{"label": LABELS[k], "help": help_text(k), "best": fmt(r.best_of(k), k), "median": None}
                                for k in SHOWN]})
    return render("index.html", page=page("evoart gallery", "", [("all runs", None)], {"page": "index"}),
                  runs=cards, count=len(runs), root=str(root.resolve()))
