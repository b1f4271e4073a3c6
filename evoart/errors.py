"""The one base class of the errors whose message is meant for the user.

Every error that says "you asked for something evoart cannot do" derives from
``EvoartError``: a bad option, an unreadable folder, a preset that does not parse, a run
folder in use. The command line shows such a message and exits with code 2. Anything
else that escapes is a bug in evoart: the command line says so, writes the traceback to
a file and exits with code 1.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


class EvoartError(Exception):
    """A problem with what the user asked for; the message says what to do."""


@contextmanager
def os_errors(doing: str, path: object = None, *, error: type[EvoartError] = EvoartError) -> Iterator[None]:
    """An OSError inside (a folder that cannot be read, a full disk, no permission)
    becomes ``error`` with a message that says what could not be done, and to which file:
    ``path``, else the one the OSError names."""
    try:
        yield
    except OSError as exc:
        target = path if path is not None else exc.filename
        where = f" {target}" if target else ""
        raise error(f"cannot {doing}{where}: {exc.strerror or exc}") from None
