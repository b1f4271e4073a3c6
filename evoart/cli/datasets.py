"""`evoart datasets`: the built-in procedural datasets."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from . import console, main


# ---- datasets ----------------------------------------------------------------------------

@main.group()
def datasets():
    """The built-in procedural datasets (generated on the fly, nothing downloaded)."""


@datasets.command("list")
def datasets_list():
    """List the built-in datasets."""
    from ..data import DEFAULT_DATASET, list_datasets

    table = Table(title="Built-in datasets")
    table.add_column("name")
    table.add_column("description")
    for d in list_datasets():
        table.add_row(d.name + (" (default)" if d.name == DEFAULT_DATASET else ""), d.description)
    console.print(table)


@datasets.command("preview")
@click.argument("name")
@click.option("--resolution", type=int, default=32, show_default=True)
@click.option("--count", type=int, default=64, show_default=True, help="Images in the grid.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="PNG file to write (never overwritten without --force).")
@click.option("--force", is_flag=True, help="Overwrite OUTPUT if it exists.")
def datasets_preview(name, resolution, count, output, force):
    """Write a grid of a dataset's images (built-in name or folder) to a PNG."""
    from ..data import preview

    if output.exists() and not force:
        raise click.ClickException(f"{output} exists; pass --force to overwrite it")
    img = preview(name, resolution, n=count)
    output.parent.mkdir(parents=True, exist_ok=True)
    img.save(output)
    console.print(f"Wrote {output}", highlight=False)


