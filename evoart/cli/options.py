"""Options that several commands share, declared once (sqlite-utils style decorators)."""

from __future__ import annotations

from pathlib import Path

import click

DEVICES = ("auto", "cpu", "cuda", "mps")


def runs_root_option(help: str = "Folder of the runs: RUN names are looked up here.", *, name: str = "--out"):
    """The gallery root that holds one folder per run (``--out``, default ``gallery/``)."""
    return click.option(name, "out" if name == "--out" else name.lstrip("-").replace("-", "_"),
                        type=click.Path(file_okay=False, path_type=Path), default=Path("gallery"),
                        show_default=True, help=help)


def device_option(default: str | None = "auto", help: str = "Where to train and render."):
    """``--device auto|cpu|cuda|mps``; ``default=None`` leaves it to the configuration."""
    if default is None:
        return click.option("--device", type=click.Choice(DEVICES), help=f"{help}  [default: auto]")
    return click.option("--device", type=click.Choice(DEVICES), default=default, show_default=True, help=help)
