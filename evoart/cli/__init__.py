"""The ``evoart`` command: a thin layer of click and rich over the library.

It parses options, calls the library, renders progress from the library's callbacks,
and maps library errors to a message and exit code 2. One module per command group;
each registers itself on ``main``.
"""

from __future__ import annotations


import click
from rich.console import Console

from .. import __version__

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # messages stay greppable

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _user_errors():
    """Library errors whose message is meant for the user: shown without a traceback."""
    from ..config import ConfigError
    from ..data import DataError
    from ..genome import GenomeError
    from ..presets import PresetError
    from ..store import StoreError

    user = (ConfigError, DataError, GenomeError, PresetError, StoreError, ValueError)
    try:  # render imports torch; a missing torch must not hide the other messages
        from ..render import RenderError
    except ImportError:  # pragma: no cover
        return user
    return user + (RenderError,)


class EvoartGroup(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except _user_errors() as exc:
            err_console.print(f"[bold red]Error:[/] {exc}", highlight=False)
            ctx.exit(EXIT_USAGE)


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
