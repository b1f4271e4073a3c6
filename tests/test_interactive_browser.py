"""An interactive run paused for picks, answered on the served gallery page: Playwright
driving Debian's Chromium (see test_browser.py; skipped where it is missing unless
EVOART_REQUIRE_BROWSER=1). The run has no terminal: the gallery server is what lets it
start, and the page's "breed these" is what it waits for."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_browser import browser  # noqa: F401 - the fixture

from e2e import only_run, runs_in

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TINY = ["--resolution", "16", "--steps", "4", "--samples", "16", "--population", "2", "--workers", "1"]


def _wait(what, predicate, timeout=180, proc=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"evolve ended while waiting for {what}: {proc.stdout.read()}{proc.stderr.read()}")
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def _paused_at(out: Path, generation: int):
    runs = runs_in(out)
    if not runs:
        return None
    page = runs[0] / f"gen-{generation:03d}" / "index.html"
    try:
        with sqlite3.connect(f"file:{runs[0] / 'run.db'}?mode=ro", uri=True) as c:
            row = c.execute("SELECT decision FROM pause WHERE generation = ?", (generation,)).fetchone()
    except sqlite3.Error:
        return None
    if row is None or row[0] is not None or not page.is_file() or 'id="breed"' not in page.read_text():
        return None
    return runs[0]


@pytest.mark.slow
def test_picks_on_the_served_page_breed_the_next_generation(tmp_path, browser):  # noqa: F811
    out = tmp_path / "gallery"
    out.mkdir()
    exe = Path(sys.executable).with_name("evoart")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EVOART_HOME": str(tmp_path / "home")}
    server = subprocess.Popen([str(exe), "gallery", "serve", "--out", str(out), "--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    run_proc = None
    try:
        line = server.stdout.readline()
        assert line.startswith("Serving "), line + server.stderr.read()
        url = line.split(" at ", 1)[1].strip()
        url = url[: url.index("/", len("http://")) + 1]
        run_proc = subprocess.Popen([str(exe), "evolve", "--interactive", "--out", str(out), *TINY,
                                     "--generations", "2"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, env=env)
        run = _wait("the pause of generation 0", lambda: _paused_at(out, 0), proc=run_proc)
        from playwright.sync_api import expect

        page = browser.new_page()
        page.goto(f"{url}{run.name}/gen-000/index.html")
        page.wait_for_selector("#breed-form", state="visible", timeout=15000)
        page.check('input[name=pick][value="g000-i01"]')
        ARTIFACTS.mkdir(exist_ok=True)
        page.locator("#breed").screenshot(path=str(ARTIFACTS / "breed-these.png"))
        page.click("#breed-submit")
        expect(page.locator("#breed-status")).to_contain_text("chosen: picked g000-i01", timeout=15000)
        _wait("the pause of generation 1", lambda: _paused_at(out, 1), proc=run_proc)
        page.goto(f"{url}{run.name}/gen-001/index.html")
        page.wait_for_selector("#breed-form", state="visible", timeout=15000)
        page.click("#breed-none")
        expect(page.locator("#breed-status")).to_contain_text("chosen: no picks", timeout=15000)
        page.close()
        stdout, stderr = run_proc.communicate(timeout=120)
        assert run_proc.returncode == 0, stdout + stderr
        assert "waiting for picks on" in stdout
    finally:
        for p in (run_proc, server):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGINT)
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
    run = only_run(out)
    with sqlite3.connect(f"file:{run / 'run.db'}?mode=ro", uri=True) as c:
        pauses = {g: (json.loads(d), s) for g, d, s in c.execute("SELECT generation, decision, source FROM pause")}
        parents = [json.loads(r[0]) for r in c.execute("SELECT parents FROM individual WHERE born = 1")]
    assert pauses[0] == ({"kind": "pick", "picks": ["g000-i01"]}, "browser")
    assert pauses[1][0]["kind"] == "none"
    assert parents and all("g000-i01" in p for p in parents)   # the run went on with the page's picks
    log = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
    assert [(e["generation"], e["kind"], e["source"]) for e in log] == [(0, "pick", "browser"), (1, "none", "browser")]
    assert not (out / ".evoart-serve.json").exists()   # the server took its marker away
