"""The process's memory as the operating system counts it.

``resident_mib`` is the resident set size now (Linux's ``/proc/self/statm``); where that
file does not exist it falls back to the peak so far (``getrusage``), which can only grow,
so a leak still shows. The GA records the driver's figure at the end of every generation
(``summary["driver_rss_mib"]``): a run's memory can be read off its ledger, and
tests/test_memory.py checks that it stays flat.
"""

from __future__ import annotations

import os


def resident_mib() -> float:
    """The resident memory of this process in MiB."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # Windows: no figure to give
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if os.uname().sysname == "Darwin" else peak / 1024  # bytes on macOS, KiB on Linux
