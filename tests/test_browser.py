"""The gallery in a real browser: Playwright driving Debian's Chromium (headless; Playwright
cannot download a browser here). Skipped where Chromium or Playwright is missing, unless
EVOART_REQUIRE_BROWSER=1 (set by .ci/run), which turns that into a failure.

One walk an artist takes: the top-level index, the run, generation 1, an individual
(its images really loaded), a parent, back; star it and save it as a preset through
``evoart gallery serve``; then the star in the ledger and the preset on disk. The run
page's screenshot is kept in test-artifacts/run-page.png."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gallery_run import private_copy, shared_run

from evoart.store import RunStore

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
REQUIRED = os.environ.get("EVOART_REQUIRE_BROWSER") == "1"


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _need(reason: str):
    if REQUIRED:
        pytest.fail(f"{reason} (EVOART_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


# a real browser and a served run: one of make test-fast's slowest (about 26 s, 2026-12-02)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - depends on the machine
        _need("playwright is not installed (pip install -e '.[test]')")
    exe = _chromium()
    if exe is None:
        _need("no Chromium here (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """`evoart gallery serve` on a copy of the tiny run; yields (url, run, presets home)."""
    base = tmp_path_factory.mktemp("browser")
    run = private_copy(shared_run(tmp_path_factory), base / "gallery")
    home = base / "home"
    exe = Path(sys.executable).with_name("evoart")
    proc = subprocess.Popen([str(exe), "gallery", "serve", "--out", str(run.parent), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "EVOART_HOME": str(home)})
    line = proc.stdout.readline()
    if not line.startswith("Serving "):
        proc.kill()
        pytest.fail(f"gallery serve did not start: {line}{proc.stderr.read()}")
    url = line.split(" at ", 1)[1].strip()
    yield url, run, home
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err, err


def images_loaded(page) -> list[str]:
    """Every <img> of the page, waited for; returns those that did not load. (Polled
    from here: the served pages' Content-Security-Policy forbids the string evaluation
    that ``wait_for_function`` uses, as it should.)"""
    deadline = time.monotonic() + 15
    while not page.evaluate("() => Array.from(document.images).every(i => i.complete)"):
        assert time.monotonic() < deadline, "images still loading after 15 s"
        time.sleep(0.05)
    return page.evaluate("() => Array.from(document.images).filter(i => !(i.naturalWidth > 0)).map(i => i.src)")


def settle(page) -> None:
    """Loaded, and the page's own fetch of the ledger's stars finished (a navigation
    while it runs would abort it)."""
    page.wait_for_load_state("networkidle")


def test_browse_star_and_save_a_preset(browser, served):
    from playwright.sync_api import expect

    url, run, home = served
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    outside: list[str] = []
    failed: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(url.rsplit("/", 1)[0]) else outside.append(r.url))
    page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # the top-level index lists the run; open it
    page.goto(url)
    settle(page)
    assert page.title() == "evoart gallery"
    assert images_loaded(page) == []
    page.click(f'a[href="{run.name}/index.html"] >> nth=0')
    settle(page)
    assert page.locator("h1").inner_text() == run.name
    assert images_loaded(page) == []
    assert page.locator("svg.plot").count() >= 4, "objective charts and the Pareto view"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "run-page.png"), full_page=True)

    # generation 1, then one of its new individuals with a parent
    page.click('section#gen-1 h2 a[href="gen-001/index.html"]')
    settle(page)
    assert page.locator("h1").inner_text().startswith("generation 1")
    assert images_loaded(page) == []
    with RunStore.open(run, readonly=True) as s:
        child = next(r for r in s.individuals(born=1) if r.parents)
    page.click(f'.card[data-ind="{child.id}"] figcaption a')
    settle(page)
    assert child.id in page.locator("h1").inner_text()
    assert page.locator("img.samples.hero").evaluate("i => i.naturalWidth") > 0
    assert images_loaded(page) == []
    assert page.locator("table.genes tbody tr").count() == len(child.genome["generator"]["blocks"])

    # a parent, and back
    page.click("a.parent-link >> nth=0")
    settle(page)
    assert child.parents[0] in page.locator("h1").inner_text()
    assert images_loaded(page) == []
    page.go_back()
    settle(page)
    assert child.id in page.locator("h1").inner_text()

    # star it (the page is served: the star is a button that writes the ledger)
    star = page.locator("h1 .star")
    assert star.get_attribute("aria-pressed") == "false"
    star.click()
    expect(star).to_have_attribute("aria-pressed", "true")

    # save it as a preset, then try the same name again
    form = page.locator("#preset-form")
    assert form.is_visible()
    form.locator('input[name="name"]').fill("browser-pick")
    form.locator('input[name="notes"]').fill("chosen in Chromium")
    form.locator('button[type="submit"]').click()
    result = page.locator("#preset-result")
    expect(result).to_have_class("ok")
    expect(result).to_contain_text("saved preset browser-pick")
    form.locator('button[type="submit"]').click()
    expect(result).to_have_class("err")
    expect(result).to_contain_text("already exists")

    # the star is in the ledger, the preset on disk, and the star shows after a reload
    with RunStore.open(run, readonly=True) as s:
        assert child.id in s.favourites()
    preset = home / "presets" / "browser-pick.json"
    assert preset.is_file()
    data = json.loads(preset.read_text())
    assert data["provenance"]["individual"] == child.id and data["notes"] == "chosen in Chromium"
    page.reload()
    settle(page)
    expect(page.locator("h1 .star")).to_have_attribute("aria-pressed", "true")

    assert outside == [], "nothing is fetched from anywhere else"
    assert failed == [] and errors == [], (failed, errors)
    page.close()


def test_pages_work_from_the_file_system(browser, served):
    """No server: the static pages, their stylesheet, script and images from file://."""
    _, run, _ = served
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto((run.parent / "index.html").as_uri())
    assert images_loaded(page) == []
    page.click(f'a[href="{run.name}/index.html"] >> nth=0')
    page.wait_for_load_state("load")
    assert images_loaded(page) == []
    # the stylesheet applied: a dark background
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(20, 20, 20)"
    assert not page.locator("#preset-form").count() or not page.locator("#preset-form").is_visible()
    page.goto((run / "gen-001" / "g001-i00" / "lineage.html").as_uri())
    assert images_loaded(page) == []
    assert page.locator(".node").count() >= 2
    assert errors == []
    assert all(u.startswith("file://") for u in requests), [u for u in requests if not u.startswith("file://")]
    page.close()
