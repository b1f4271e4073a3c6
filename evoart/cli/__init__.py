"""The ``evoart`` command: a thin layer of click and rich over the library.

It parses options, calls the library, renders progress from the library's callbacks,
and maps evoart's own errors (``evoart.errors.EvoartError``) to a message and exit code
2; anything else is a bug, reported in one line with the traceback saved to a file, exit
code 1. One module per command group; each registers itself on ``main``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.console import Console

from .. import __version__

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # messages stay greppable

EXIT_BUG = 1         # an exception evoart did not expect
EXIT_USAGE = 2       # evoart's own errors: the user asked for something it cannot do
EXIT_INTERRUPTED = 130


def _report_bug(exc: BaseException) -> None:
    """An exception evoart did not expect: one line saying so, the traceback in a file."""
    import tempfile
    import time
    import traceback

    from ..paths import cache_dir

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    name = f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    where = None
    for folder in (cache_dir() / "crashes", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(f"evoart {__version__}: {' '.join(sys.argv)}\n\n{text}")
            where = folder / name
            break
        except OSError:
            continue
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    saved = f"the traceback is in {where}" if where else "the traceback could not be saved:\n" + text
    err_console.print(f"[bold red]evoart hit a bug[/] ({type(exc).__name__}{': ' + first if first else ''}); "
                      f"{saved}. Please report it with that file.", highlight=False)


def _environment_errnos() -> frozenset[int]:
    import errno

    names = ("EACCES", "EPERM", "EROFS", "ENOSPC", "EDQUOT")
    return frozenset(getattr(errno, n) for n in names if hasattr(errno, n))


_ENVIRONMENT_ERRNOS = _environment_errnos()


class EvoartGroup(click.Group):
    """Maps what escapes a command to an exit code: evoart's own errors (meant for the
    user) to a message and 2, Ctrl-C to 130, anything else to a one-line bug report and 1."""

    def invoke(self, ctx):
        from ..errors import EvoartError

        try:
            return super().invoke(ctx)
        except EvoartError as exc:
            err_console.print(f"[bold red]Error:[/] {exc}", highlight=False)
            ctx.exit(EXIT_USAGE)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            err_console.print("\n[yellow]Interrupted.[/]", highlight=False)
            ctx.exit(EXIT_INTERRUPTED)
        except OSError as exc:
            if exc.errno not in _ENVIRONMENT_ERRNOS:
                _report_bug(exc)
                ctx.exit(EXIT_BUG)
            # no permission, a read-only or full disk: the machine's state, not a bug in evoart
            where = f" {exc.filename}" if exc.filename else ""
            err_console.print(f"[bold red]Error:[/] cannot use{where}: {exc.strerror or exc}. Check the "
                              "folder's permissions and free space, or choose another folder "
                              "(--out, EVOART_HOME, EVOART_CACHE).", highlight=False)
            ctx.exit(EXIT_USAGE)
        except Exception as exc:  # noqa: BLE001 - a bug: reported, not shown as a user error
            _report_bug(exc)
            ctx.exit(EXIT_BUG)


@click.group(cls=EvoartGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="evoart")
def main():
    """evoart: evolve GAN genomes with a genetic algorithm and look at what they make.

    \b
    Start here:
      evoart evolve                 evolve on the built-in 'shapes' set (a few minutes on a CPU)
      evoart datasets list          the built-in datasets
      evoart evolve ~/Pictures/ink  evolve on your own image folder
    """



# Register the command groups (imported for their side effect on ``main``).
from . import datasets as _datasets  # noqa: E402,F401
from . import evolve as _evolve  # noqa: E402,F401
from . import gallery as _gallery  # noqa: E402,F401
from . import preset as _preset  # noqa: E402,F401
from . import render as _render  # noqa: E402,F401
from . import score as _score  # noqa: E402,F401
