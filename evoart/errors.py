"""The one base class of the errors whose message is meant for the user.

Every error that says "you asked for something evoart cannot do" derives from
``EvoartError``: a bad option, an unreadable folder, a preset that does not parse, a run
folder in use. The command line shows such a message and exits with code 2. Anything
else that escapes is a bug in evoart: the command line says so, writes the traceback to
a file and exits with code 1.
"""

from __future__ import annotations


class EvoartError(Exception):
    """A problem with what the user asked for; the message says what to do."""
