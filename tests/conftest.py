"""Shared test setup. Keep it small: the CI machine has 2 cores shared by everyone."""

from __future__ import annotations

import os
import signal

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Every test starts on one torch thread, as evoart's workers train: an in-process
    `evoart evolve` (CliRunner) sets the driver's threads at its entry, and a test after it
    in the same process would otherwise sum its convolutions in another order."""
    torch.set_num_threads(1)
    yield


@pytest.fixture(autouse=True)
def _ctrl_c_reaches_child_processes():
    """Every test starts with Python's own Ctrl-C handler installed, which also resets the
    process's SIGINT disposition. In the full suite, something a test ran in-process left
    SIGINT ignored at the OS level (children inherit an ignored signal, and Python then
    installs no KeyboardInterrupt handler), so the tests that stop a child `evoart` with
    SIGINT saw it run on: found in CI, not yet traced to the test that did it."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if os.environ.get("EVOART_TRACE_SIGINT") and _sigint_ignored():  # to find the culprit: name it
        with open(os.environ["EVOART_TRACE_SIGINT"], "a") as f:
            f.write(f"{os.environ.get('PYTEST_CURRENT_TEST', '?')}\n")


def _sigint_ignored() -> bool:
    """Whether this process ignores SIGINT at the OS level (its SigIgn mask), whatever
    Python's own handler table says."""
    try:
        with open("/proc/self/status") as f:
            mask = next(int(line.split()[1], 16) for line in f if line.startswith("SigIgn:"))
    except (OSError, StopIteration, ValueError):
        return False
    return bool(mask & (1 << (signal.SIGINT - 1)))
