"""Fault injection for tests: crashes placed at chosen points of a real run.

Set ``EVOART_FAULT`` to one or more comma-separated faults before starting ``evoart``:

``kill-after:N``
    The driver SIGKILLs itself right after committing its N-th evaluated individual
    (a crash in the middle of a generation, with workers busy).
``crash:IND``
    The worker process that starts evaluating individual IND (``g001-i02``) SIGKILLs
    itself (a worker dying of out-of-memory or a segfault).
``crash-once:IND@MARKER``
    As ``crash``, but only while the file MARKER does not exist: the worker creates it,
    then dies, so a retry of IND finds it and goes on (a worker lost once, as to a
    preempted machine).
``started:DIR``
    A worker that starts evaluating IND creates the empty file DIR/IND (no crash): a test
    sees which machine of a cluster is busy with what.
``leak:MIB``
    The driver keeps MIB MiB of memory alive for good after each commit (a leak that
    grows with the run, for the memory test to catch).
``enospc:NAME``
    Every atomic write (``evoart.files``) of a file whose path ends with NAME
    (``train_state.pt``, ``g000-i01/generator.pt``) fails half way with ENOSPC, as on a
    full disk: part of the temporary file is written, then the write raises.
``enospc-after:N``
    Atomic writes in this process fail with ENOSPC once N bytes have been written
    through them in all (the disk fills up during the run).

Production code calls ``fault_point(name, ...)`` at those points; with the variable
unset it does nothing. Nothing else in evoart reads the variable.
"""

from __future__ import annotations

import os
import signal

ENV = "EVOART_FAULT"

_written = 0  # bytes written through the atomic writers in this process (for enospc-after)
_leaked: list[bytearray] = []  # what leak:MIB holds on to


def _faults() -> list[tuple[str, str]]:
    spec = os.environ.get(ENV, "")
    out = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kind, _, arg = part.partition(":")
        out.append((kind, arg))
    return out


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def fault_point(point: str, *, commits: int | None = None, individual: str | None = None) -> None:
    """Crash here if ``EVOART_FAULT`` asks for it (see the module docstring).

    ``point`` is ``"committed"`` (the driver, after a commit; ``commits`` so far) or
    ``"evaluate"`` (a worker, starting on ``individual``)."""
    for kind, arg in _faults():
        if point == "committed" and kind == "kill-after" and commits is not None and commits >= int(arg):
            _die()
        if point == "committed" and kind == "leak":
            _leaked.append(bytearray(b"\x01") * (int(float(arg) * 2**20)))  # touched: resident, not just reserved
        if point == "evaluate" and kind == "crash" and individual is not None and arg == individual:
            _die()
        if point == "evaluate" and kind == "started" and individual is not None and arg:
            with open(os.path.join(arg, individual), "w"):
                pass
        if point == "evaluate" and kind == "crash-once" and individual is not None:
            target, _, marker = arg.partition("@")
            if target == individual and marker and not os.path.exists(marker):
                with open(marker, "w"):
                    pass
                _die()


def disk_space(path: os.PathLike | str, size: int) -> int | None:
    """How many of the ``size`` bytes about to be written to ``path`` fit before the disk
    is "full" (``enospc`` faults), or None when they all do. Counts what was written."""
    global _written
    faults = _faults()
    allowed: int | None = None
    target = str(path).replace(os.sep, "/")
    for kind, arg in faults:
        if kind == "enospc" and arg and target.endswith(arg):
            allowed = size // 2
        elif kind == "enospc-after" and _written + size > int(arg):
            room = max(0, int(arg) - _written)
            allowed = room if allowed is None else min(allowed, room)
    _written += size if allowed is None else allowed
    return allowed
