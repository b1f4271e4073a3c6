"""The gallery's pages, built from real and synthetic ledgers: every link and image
resolves, nothing comes from outside, the pages say what the ledger says, rebuilding is
cheap, and the terminal views."""

from __future__ import annotations

import re
from html.parser import HTMLParser
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from gallery_run import (
    ledger_rows,
    page_refs,
    private_copy,
    resolve_ref,
    shared_run,
    synthetic_run,
    tree_state,
)
from PIL import Image

from evoart import gallery
from evoart.cli import main
from evoart.store import RunStore, StoreError


# one xdist worker for the whole module (make test runs --dist loadgroup): the module's run fixture (an evoart evolve, 14 s) is built once, not once per xdist worker
pytestmark = pytest.mark.xdist_group("test_gallery")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A private copy of the tiny real run (these tests star individuals and rebuild)."""
    return private_copy(shared_run(tmp_path_factory), tmp_path_factory.mktemp("gal") / "gallery")


def cli(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def pages_of(root: Path) -> list[Path]:
    return sorted(root.rglob("*.html"))


# ---- what `evoart evolve` leaves behind --------------------------------------------------

def test_evolve_writes_the_gallery_as_it_goes(run):
    root = run.parent
    assert (root / "index.html").is_file(), "the top-level index of the output folder"
    assert (run / "index.html").is_file()
    with RunStore.open(run, readonly=True) as s:
        inds = s.individuals()
        gens = [g["generation"] for g in s.generations()]
    for g in gens:
        assert (run / f"gen-{g:03d}" / "index.html").is_file()
    for ind in inds:
        folder = run / f"gen-{ind.born:03d}" / ind.id
        for name in ("index.html", "lineage.html", "thumb.png"):
            assert (folder / name).is_file(), folder / name
    html = (run / "index.html").read_text()
    assert "finished" in html, "rebuilt once more after the run's status changed"


def test_every_link_and_image_resolves_to_a_file(run):
    gallery.build(run)
    pages = pages_of(run.parent)
    individuals = len(ledger_rows(run)["individuals"])
    assert individuals == 6  # 4 in generation 0, the better 2 continued in generation 1 (halving)
    assert len(pages) >= 1 + 1 + 2 + 2 * individuals  # root, run, generations, individual + lineage pages
    images = 0
    for page in pages:
        for tag, attr, value in page_refs(page):
            target = resolve_ref(page, value)
            if target is None:
                continue
            assert target.is_file(), f"{page.relative_to(run.parent)}: {tag} {attr}={value!r} is missing"
            assert run.parent.resolve() in target.parents, f"{page}: {value!r} leaves the gallery"
            if tag == "img":
                images += 1
                with Image.open(target) as im:
                    im.verify()
    # at least: every individual's samples on its page, its thumbnail on its generation's
    # page and itself at the root of its lineage page (ancestors and kin add more)
    assert images >= 3 * individuals, (images, individuals)


def test_nothing_refers_outside_the_gallery(run):
    for path in list(run.parent.rglob("*.html")) + list(run.parent.rglob("_static/*")):
        text = path.read_text(encoding="utf-8")
        assert "://" not in text, f"{path}: an absolute URL"
        assert "@import" not in text and "url(" not in text.replace("url(#", ""), f"{path}: a fetched resource"


def test_run_page_strips_follow_the_ledger(run):
    html = (run / "index.html").read_text()
    with RunStore.open(run, readonly=True) as s:
        for g in range(2):
            members = [i for i, _ in s.members(g)]
            section = html.split(f'id="gen-{g}"', 1)[1].split("</section>", 1)[0]
            assert re.findall(r'<figure class="card[^"]*" data-ind="([^"]+)"', section) == members
        config = s.config["evolve"]
    assert html.count("<svg") >= 4, "three objective charts and the Pareto view"
    for key in ("population", "resolution", "steps"):
        assert f"<th>{key}</th><td>{config[key]}</td>" in html
    assert 'href="gen-001/index.html"' in html


def test_individual_page_shows_genome_family_and_changes(run):
    with RunStore.open(run, readonly=True) as s:
        child = next(r for r in s.individuals(born=1) if r.parents)
        parent = s.individual(child.parents[0])
    page = run / "gen-001" / child.id / "index.html"
    html = page.read_text()
    assert '<img class="samples hero" src="samples.png"' in html
    for b in range(len(child.genome["generator"]["blocks"])):
        assert f"<tr><td>{b}</td>" in html, "one row per generator block"
    assert 'class="bars"' in html and "nonsaturating" in html, "loss weights as bars"
    assert "training losses" in html and "d_loss" in html
    for p in child.parents:
        born = int(p[1:4])
        assert f'href="../../gen-{born:03d}/{p}/index.html"' in html
        assert "changed from <a class=\"parent-link\"" in html
    assert 'href="lineage.html"' in html
    parent_html = (run / f"gen-{parent.born:03d}" / parent.id / "index.html").read_text()
    assert f'href="../../gen-001/{child.id}/index.html"' in parent_html, "a parent links to its children"


def test_lineage_keeps_both_parents_back_to_generation_0(run):
    with RunStore.open(run, readonly=True) as s:
        children = s.individuals(born=1)
    cross = [c for c in children if len(c.parents) == 2] or children
    child = cross[0]
    html = (run / "gen-001" / child.id / "lineage.html").read_text()
    for p in child.parents:
        assert f"/{p}/index.html" in html
    assert "gen 0" in html and f"family tree of {child.id}" in html
    assert html.count('class="node') == 1 + len(set(child.parents))


def test_favourites_go_through_the_store_and_show_everywhere(run):
    ind = "g000-i00"
    with RunStore.open(run) as s:
        assert s.set_favourite(ind, True) is True
        assert s.set_favourite(ind, True) is True, "starring twice is harmless"
        assert list(s.favourites()) == [ind]
        with pytest.raises(StoreError, match="no individual"):
            s.set_favourite("g999-i99", True)
    report = gallery.build(run)
    assert report.written >= 3
    run_html = (run / "index.html").read_text()
    assert "★ favourites" in run_html
    assert f'data-star="{ind}" data-run="{run.name}" aria-pressed="true"' in run_html
    ind_html = (run / "gen-000" / ind / "index.html").read_text()
    assert 'aria-pressed="true"' in ind_html
    assert "★ 1" in (run.parent / "index.html").read_text()
    with RunStore.open(run) as s:
        s.set_favourite(ind, False)
        assert s.favourites() == {}
    gallery.build(run)
    assert "★ favourites" not in (run / "index.html").read_text()


def test_rebuilding_rewrites_only_what_changed(run):
    gallery.build(run)
    before = tree_state(run.parent)
    report = gallery.build(run)
    assert report.written == 0 and report.pages > 10
    assert tree_state(run.parent) == before


# ---- edge cases from synthetic ledgers ---------------------------------------------------

def test_failed_individuals_and_a_generation_in_progress(tmp_path):
    run = synthetic_run(tmp_path, generations=2, population=4, failed={"g001-i01"}, unfinished=True)
    gallery.build(run)
    html = (run / "index.html").read_text()
    assert "being evaluated: 2 of 4 done" in html
    failed_page = (run / "gen-001" / "g001-i01" / "index.html").read_text()
    assert "failed" in failed_page and "samples.png" not in failed_page.split("<main>")[1].split("training losses")[0]
    assert not (run / "gen-002" / "g002-i03").exists(), "pending individuals have no page"
    for page in pages_of(tmp_path):
        for _, _, value in page_refs(page):
            target = resolve_ref(page, value)
            assert target is None or target.is_file(), (page, value)


def test_index_lists_broken_runs_without_linking_them(tmp_path):
    synthetic_run(tmp_path, generations=1, population=3)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "run.db").write_bytes(b"not a database at all" * 10)
    index = gallery.build_index(tmp_path)
    html = index.read_text()
    assert "synthetic/index.html" in html
    assert "broken" in html and "broken/index.html" not in html


@pytest.mark.slow  # make test-fast's slowest on a slower 2-core machine (2026-12-02)
def test_a_10_by_16_run_builds_in_under_5_seconds(tmp_path):
    run = synthetic_run(tmp_path, generations=10, population=16)
    t0 = time.perf_counter()
    report = gallery.build(run)
    seconds = time.perf_counter() - t0
    assert report.pages >= 1 + 10 + 2 * 160
    assert seconds < 5, f"built {report.pages} pages in {seconds:.2f} s"
    t0 = time.perf_counter()
    gallery.build(run)
    assert time.perf_counter() - t0 < seconds + 1


def test_gene_diff_follows_the_inheritance_map():
    block = {"channels": 32, "upsample": "nearest", "kernel": 3, "norm": "batch", "activation": "relu",
             "residual": False, "noise": False}
    parent = {"schema_version": 1, "generator": {"latent": 64, "blocks": [block, dict(block, channels=16)]},
              "training": {"lr_g": 1e-3}}
    child = {"schema_version": 1, "generator": {"latent": 64, "blocks": [dict(block, activation="sin"),
                                                                          dict(block, channels=8)]},
             "training": {"lr_g": 2e-3}}
    inh = {"blocks": [[0, 0], None], "stem": 0, "discriminator": 0}
    rows = gallery.gene_diff(child, parent, 0, inh, ["g000-i00"])
    genes = {r[0]: r for r in rows}
    assert genes["training.lr_g"][1:] == ("1.00e-03", "2.00e-03")
    assert genes["block 0.activation"][1:] == ("relu", "sin")
    assert genes["block 1"][2].startswith("new block")
    assert genes["parent's block 1"][2] == "removed"
    assert "generator.latent" not in genes, "unchanged genes are not listed"
    # from the other parent of a crossover
    rows = gallery.gene_diff(child, parent, 1, {"blocks": [[0, 0], [0, 1]], "stem": 0, "discriminator": 0},
                             ["g000-i00", "g000-i01"])
    assert ("block 0", "–", "from g000-i00's block 0") in rows


# ---- terminal views ----------------------------------------------------------------------

def test_gallery_list_show_build_open(run):
    root = str(run.parent)
    r = cli("gallery", "list", "--out", root)
    assert r.exit_code == 0 and run.name[:12] in r.output and "shapes" in r.output
    r = cli("gallery", "show", run.name, "--out", root)
    assert r.exit_code == 0, r.output
    assert "generation 1 of 1" in r.output and "Images under" in r.output
    assert f"Page: {run.resolve() / 'gen-001' / 'index.html'}" in r.output
    r = cli("gallery", "show", str(run), "--generation", "0")
    assert r.exit_code == 0 and "generation 0" in r.output
    r = CliRunner().invoke(main, ["gallery", "show", run.name, "--out", root, "--generation", "7"])
    assert r.exit_code == 2 and "no generation 7" in r.output
    r = CliRunner().invoke(main, ["gallery", "show", "no-such-run", "--out", root])
    assert r.exit_code == 2 and "no run named no-such-run" in r.output
    r = cli("gallery", "build", run.name, "--out", root)
    assert r.exit_code == 0 and "pages" in r.output
    r = cli("gallery", "open", run.name, "--out", root)
    assert r.exit_code == 0 and r.output.strip() == str((run / "index.html").resolve())


def test_gallery_favourite_command(run):
    root = str(run.parent)
    r = cli("gallery", "favourite", run.name, "g001-i00", "--out", root)
    assert r.exit_code == 0
    with RunStore.open(run, readonly=True) as s:
        assert "g001-i00" in s.favourites()
    r = cli("gallery", "show", run.name, "--out", root, "--generation", "0")
    r = cli("gallery", "favourite", run.name, "g001-i00", "--remove", "--out", root)
    with RunStore.open(run, readonly=True) as s:
        assert s.favourites() == {}
    r = CliRunner().invoke(main, ["gallery", "favourite", run.name, "g042-i00", "--out", root])
    assert r.exit_code == 2 and "no individual g042-i00" in r.output


# ---- escaping: markup from the ledger is text on every page ------------------------------

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>" onmouseover="alert(2)'


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_a_hostile_string_in_the_ledger_is_text_on_every_page(tmp_path):
    run = synthetic_run(tmp_path, generations=2, population=4, failed={"g001-i02"}, name="hostile",
                        hostile=HOSTILE)
    gallery.build(run)
    pages = pages_of(tmp_path)
    assert len(pages) >= 1 + 1 + 2 + 2 * 8
    shown_on = set()
    for page in pages:
        p = _Tags()
        p.feed(page.read_text(encoding="utf-8"))
        scripts = [a.get("src", "") for t, a in p.tags if t == "script"]
        assert all(s.endswith("_static/gallery.js") for s in scripts), (page, scripts)
        assert not [t for t, _ in p.tags if t == "img" and _.get("src") == "x"], page
        for tag, attrs in p.tags:
            assert not any(k.startswith("on") for k in attrs), (page, tag, attrs)
        if HOSTILE in "".join(p.text) or any(HOSTILE in (v or "") for _, a in p.tags for v in a.values()):
            shown_on.add(page)
    # the run's name is in every page of the run (title, crumbs, data-run) and on the index
    assert shown_on == set(pages)
    raw = (run / "gen-000" / "g000-i01" / "index.html").read_text()
    assert "<pre>" in raw and "&lt;script&gt;" in raw, "the broken genome is shown as escaped JSON"
    failed = (run / "gen-001" / "g001-i02" / "index.html").read_text()
    assert "RuntimeError: &lt;script&gt;" in failed


# ---- what selection uses ---------------------------------------------------------------

def _table_rows(html: str) -> list[dict[str, str]]:
    """The generation table: {column heading: cell text} per row."""
    table = html.split('<table class="wide">', 1)[1].split("</table>", 1)[0]
    heads = [re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<th>(.*?)</th>", table)]
    rows = []
    for tr in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>", 1)[1], re.S):
        cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
        rows.append(dict(zip(heads, cells)))
    return rows


def test_pages_show_the_objectives_selection_uses(run):
    from evoart.gallery.view import column
    from evoart.objectives import LABELS, OBJECTIVES

    gallery.build(run)
    with RunStore.open(run, readonly=True) as s:
        members = s.members(1)
        scores = {i: s.scores(i, 1) for i, _ in members}
    assert all(k in scores[i] for i, _ in members for k in OBJECTIVES + ("score",)), "the real run scores them"
    html = (run / "gen-001" / "index.html").read_text()
    rows = _table_rows(html)
    assert [r["individual"] for r in rows] == [i for i, _ in members]
    for r in rows:
        for key in LABELS:
            assert r[column(key)] == gallery.fmt(scores[r["individual"]][key], key), (r, key)
    assert "SWD ↓" not in rows[0] and "diversity" not in rows[0], "selection does not use them"
    for i, _ in members:
        card = html.split(f'data-ind="{i}"', 1)[1].split("</figure>", 1)[0]
        for key in ("perceptual", "coverage"):
            assert gallery.fmt(scores[i][key], key) in card, (i, key)
    run_html = (run / "index.html").read_text()
    index_html = (run.parent / "index.html").read_text()
    for key in LABELS:
        assert f"best {LABELS[key]} " in run_html and f"best {LABELS[key]} " in index_html, key
        assert f"<figcaption>{LABELS[key]} (" in run_html, f"a chart of {key} over generations"
    first = members[0][0]
    ind_html = (run / f"gen-{int(first[1:4]):03d}" / first / "index.html").read_text()
    for key in LABELS:
        assert f"<th>{column(key)}</th>" in ind_html and f"<li><b>{LABELS[key]}</b>:" in ind_html


def test_the_pareto_view_plots_selection_objectives_and_marks_the_front(run):
    from evoart.objectives import BETTER, OBJECTIVES

    html = (run / "gen-001" / "index.html").read_text()
    svg = html.split('<figure class="chart pareto">', 1)[1].split("</figure>", 1)[0]
    assert f'data-axes="{" ".join(OBJECTIVES)}"' in svg
    dots = {m[2]: (m[1], float(m[3]), float(m[4]), float(m[5])) for m in re.finditer(
        r'<circle class="([^"]+)" data-ind="([^"]+)" cx="([^"]+)" cy="([^"]+)" r="([^"]+)">', svg)}
    with RunStore.open(run, readonly=True) as s:
        members = [i for i, _ in s.members(1)]
        previous = [i for i, _ in s.members(0)]
        pool = previous + [r.id for r in s.individuals(born=1) if r.id not in previous]
        m = {i: s.scores(i, 1) for i in pool if s.individual(i).status == "ok"}
    assert set(dots) == set(m), "every individual of the pool that trained"
    x, y, size = OBJECTIVES
    sign = {k: 1 if BETTER[k] == "higher" else -1 for k in OBJECTIVES}
    for a in m:
        for b in m:
            if sign[x] * m[a][x] > sign[x] * m[b][x]:
                assert dots[a][1] > dots[b][1], f"better {x} is further right"
            if sign[y] * m[a][y] > sign[y] * m[b][y]:
                assert dots[a][2] < dots[b][2], f"better {y} is higher up"
            if sign[size] * m[a][size] > sign[size] * m[b][size]:
                assert dots[a][3] >= dots[b][3], f"better {size} is a larger dot"

    def dominated(a):
        return any(all(sign[k] * m[b][k] >= sign[k] * m[a][k] for k in OBJECTIVES)
                   and any(sign[k] * m[b][k] > sign[k] * m[a][k] for k in OBJECTIVES) for b in m if b != a)

    assert {i for i, d in dots.items() if "onfront" in d[0].split()} == {i for i in m if not dominated(i)}
    assert {i for i, d in dots.items() if "culled" in d[0].split()} == set(m) - set(members)


def test_the_judge_panel_shows_the_critic_and_crosses_out_kin(run):
    html = (run / "gen-001" / "index.html").read_text()
    svg = html.split('aria-label="judge matrix"', 1)[1].split("</svg>", 1)[0]
    titles = re.findall(r"<title>([^<]+)</title>", svg)
    with RunStore.open(run, readonly=True) as s:
        cells = s.judge_cells(1)
        rows = {r.id: r for r in s.individuals()}
    judged = {(d, g) for d, g, _, _ in cells}
    assert any(role == "critic" for *_, role in cells)
    assert "critic-g001" in svg and sum(t.startswith("the critic on G of") for t in titles) == len(
        {g for d, g, _, role in cells if role == "critic"})
    crossed = [t for t in titles if t.startswith("not judged")]
    peers = {d for d, _, _, role in cells if role != "critic"}
    gs = {g for _, g, _, _ in cells}
    expected = 0
    for d in peers:
        for g in gs:
            if (d, g) in judged:
                continue
            a, b = rows[d], rows[g]
            kin = d == g or d in b.parents or g in a.parents or (a.born == b.born and set(a.parents) & set(b.parents))
            assert kin, f"{d} did not judge {g} although they are not kin"
            expected += 1
    assert len(crossed) == expected and any("its own D" in t for t in crossed)


def test_the_heat_map_groups_remembered_judges_and_outlines_kin_called_back():
    from evoart.gallery.charts import judge_heatmap

    cells = [("g001-i00", "g001-i01", 0.4, "peer"), ("g001-i01", "g001-i00", 0.6, "fallback"),
             ("g000-i03", "g001-i00", 0.2, "memory"), ("critic-g001", "g001-i00", 0.5, "critic"),
             ("critic-g001", "g001-i01", 0.0, "critic")]
    h = judge_heatmap(cells, {("g001-i00", "g001-i00"): "self", ("g001-i01", "g001-i01"): "self"})
    labels = [r["label"] for r in h["rows"]]
    assert labels == ["g001-i00", "g001-i01", "g000-i03 (remembered)", "critic-g001"]
    assert (h["remembered"], h["critics"], h["fallbacks"], h["excluded"]) == (1, 1, 1, 0)
    fallback = [c for r in h["rows"] for c in r["cells"] if c["fallback"]]
    assert len(fallback) == 1 and "kin called back" in fallback[0]["title"]
    assert len(h["separators"]) == 2  # peers | remembered | critic
    assert judge_heatmap([("a", "b", 0.5)])["rows"][0]["cells"][0]["title"] == "D of a on G of b: 0.50"
