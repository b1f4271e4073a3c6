"""Helpers for end-to-end tests that run the real ``evoart`` command."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

# Tiny budgets: 16 px, a few steps, small sample counts.
TINY = ["--resolution", "16", "--steps", "12", "--samples", "32", "--population", "4"]


def evoart(*args: str, env: dict | None = None, timeout: float = 240, cwd: Path | None = None):
    """Run the installed ``evoart`` console script; returns CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    exe = Path(sys.executable).with_name("evoart")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout,
                          env=full_env, cwd=cwd)


def start_evoart(*args: str, env: dict | None = None) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("evoart")
    return subprocess.Popen([str(exe), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **(env or {})})


def runs_in(out: Path) -> list[Path]:
    """The run folders under ``out`` whose ledger exists (none while ``out`` does not)."""
    if not out.is_dir():
        return []
    return [p for p in out.iterdir() if (p / "run.db").is_file()]


def only_run(out: Path) -> Path:
    runs = runs_in(out)
    assert len(runs) == 1, runs
    return runs[0]


def ledger(run: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{run / 'run.db'}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def _untimed(state: dict | None) -> dict | None:
    """A generation's checkpoint without its wall-clock timings and memory figures."""
    if not state:
        return state
    out = dict(state)
    if "summary" in out:
        out["summary"] = {k: v for k, v in out["summary"].items() if not k.endswith(("seconds", "_mib"))}
    return out


def snapshot(run: Path) -> dict:
    """What two equivalent runs must agree on: every genome, every parentage, every score,
    every judge cell (and which panel member gave it), every generation's members in rank order, and the whole GA state
    checkpointed after each generation (RNG states, population, hall of fame with its
    metrics, the logbook's summary), timings aside."""
    with ledger(run) as c:
        inds = {r["id"]: (r["genome_hash"], r["parents"], r["status"])
                for r in c.execute("SELECT * FROM individual")}
        members = [tuple(r) for r in c.execute("SELECT generation, individual, rank FROM member ORDER BY 1, 3")]
        scores = {(r[0], r[1], r[2]): r[3] for r in c.execute("SELECT individual, generation, metric, value FROM score")}
        judge = {(r[0], r[1], r[2]): (r[3], r[4]) for r in
                 c.execute("SELECT generation, d_individual, g_individual, value, role FROM judge")}
        states = {r[0]: (json.loads(r[1]), _untimed(json.loads(r[2]) if r[2] else None))
                  for r in c.execute("SELECT generation, begin_state, end_state FROM generation")}
    return {"individuals": inds, "members": members, "scores": scores, "judge": judge, "states": states}


def processes_with_env(tag: str) -> list[int]:
    """PIDs of live processes whose environment holds EVOART_TEST_TAG=tag."""
    needle = f"EVOART_TEST_TAG={tag}".encode()
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            if needle in (p / "environ").read_bytes().split(b"\0"):
                stat = (p / "stat").read_text()
                if ") Z " not in stat:  # zombies are already dead
                    pids.append(int(p.name))
        except OSError:
            continue
    return pids


def wait_until(predicate, timeout: float = 60, interval: float = 0.2) -> bool:
    """Poll ``predicate`` until true or ``timeout``; the test asserts the result."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def committed(run: Path) -> int:
    try:
        with ledger(run) as c:
            return c.execute("SELECT COUNT(*) FROM individual WHERE status != 'pending'").fetchone()[0]
    except sqlite3.Error:
        return 0


def config_of(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())
