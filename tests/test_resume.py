"""Resume: a run killed mid-generation and resumed ends exactly where an uninterrupted
run with the same seed ends; Ctrl-C stops cleanly; two writers are refused; a finished
run can be extended."""

from __future__ import annotations

import signal
import uuid

import pytest

from e2e import (
    TINY,
    committed,
    evoart,
    ledger,
    only_run,
    processes_with_env,
    runs_in,
    snapshot,
    start_evoart,
    wait_until,
)

pytestmark = pytest.mark.slow

ARGS = [*TINY, "--generations", "3", "--seed", "11"]


def test_killed_and_resumed_run_equals_an_uninterrupted_one(tmp_path):
    straight = tmp_path / "straight"
    proc = evoart("evolve", *ARGS, "--out", str(straight))
    assert proc.returncode == 0, proc.stderr

    killed = tmp_path / "killed"
    tag = uuid.uuid4().hex
    # The driver SIGKILLs itself after committing 6 individuals: in the middle of
    # generation 1, with workers busy (an env hook, since polling from here would race).
    proc = evoart("evolve", *ARGS, "--out", str(killed),
                  env={"EVOART_FAULT": "kill-after:6", "EVOART_TEST_TAG": tag})
    assert proc.returncode == -signal.SIGKILL
    run = only_run(killed)
    assert committed(run) == 6
    # No orphaned workers survive the kill of the main process.
    assert wait_until(lambda: not processes_with_env(tag), timeout=20), processes_with_env(tag)

    proc = evoart("evolve", "--resume", str(run))
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert snapshot(run) == snapshot(only_run(straight))
    with ledger(run) as c:
        assert c.execute("SELECT status FROM run").fetchone()[0] == "finished"


def test_ctrl_c_stops_cleanly_prints_the_resume_command_and_resume_finishes(tmp_path):
    out = tmp_path / "g"
    # long enough that the run is still going when the signal comes, on a loaded machine too
    # (after the first individual is committed, three more of 100 steps and two of 200 are
    # left); the resume finishes it
    proc = start_evoart("evolve", *TINY, "--generations", "2", "--steps", "100", "--out", str(out))
    try:
        # (the run folder exists a moment before its ledger: wait for the ledger, never assert on the way)
        assert wait_until(lambda: len(runs_in(out)) == 1 and committed(runs_in(out)[0]) >= 1, 120)
        run = only_run(out)

        # A second writer on the same run is refused while the first one runs.
        second = evoart("evolve", "--resume", str(run))
        assert second.returncode == 2
        assert "being written by another evoart" in second.stderr

        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert f"evoart evolve --resume {run}" in stderr.replace("\n", "")
    with ledger(run) as c:
        assert c.execute("SELECT status FROM run").fetchone()[0] == "interrupted"

    done = evoart("evolve", "--resume", str(run))
    assert done.returncode == 0, done.stderr
    with ledger(run) as c:
        assert c.execute("SELECT MAX(generation) FROM generation WHERE finished IS NOT NULL").fetchone()[0] == 1


def test_resume_extends_a_finished_run(tmp_path):
    out = tmp_path / "g"
    assert evoart("evolve", *TINY, "--generations", "1", "--out", str(out)).returncode == 0
    run = only_run(out)
    same = evoart("evolve", "--resume", str(run), "--generations", "1")
    assert same.returncode == 2 and "pass --generations above 1" in same.stderr
    more = evoart("evolve", "--resume", run.name, "--out", str(out), "--generations", "2")
    assert more.returncode == 0, more.stderr
    with ledger(run) as c:
        gens = [r[0] for r in c.execute("SELECT generation FROM generation WHERE finished IS NOT NULL")]
        children = c.execute("SELECT COUNT(*) FROM individual WHERE born = 1").fetchone()[0]
        config = c.execute("SELECT config FROM run").fetchone()[0]
    assert gens == [0, 1] and children == 2  # halving: the better half of 4 continued
    assert '"generations": 2' in config
    changed = evoart("evolve", "--resume", str(run), "--steps", "5")
    assert changed.returncode == 2 and "cannot change when resuming" in changed.stderr
