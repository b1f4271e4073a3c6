"""Tables for the terminal, and the same tables as plain lines for logs and pipes.

rich fits a table into the console's width; without a terminal that width is 80
columns, and rich squeezes columns to nothing to get there. Off a terminal the rows are
printed as plain aligned lines that keep every column, the last one whole.
"""

from __future__ import annotations

from rich import box
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from . import console


def print_table(title: str, columns: list[tuple[str, str]], rows: list[list[str]]) -> None:
    """``columns``: (header, "left" | "right"); ``rows``: plain strings (no markup). The
    last column may be long (a genome, a path): on a terminal it is cut with an ellipsis,
    in plain lines it is printed whole."""
    if console.is_terminal:
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        for i, (head, just) in enumerate(columns):
            last = i == len(columns) - 1
            table.add_column(head, justify=just, no_wrap=True, overflow="ellipsis",
                             min_width=None if last else max(len(head), 3), ratio=1 if last else None)
        for row in rows:
            table.add_row(*(Text(c) for c in row))
        console.print(table)
        return
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, (h, _) in enumerate(columns)]

    def line(cells: list[str]) -> str:
        out = []
        for i, (cell, (_, just), width) in enumerate(zip(cells, columns, widths)):
            last = i == len(columns) - 1
            out.append(cell if last and just == "left" else (f"{cell:>{width}}" if just == "right" else f"{cell:<{width}}"))
        return "  ".join(out).rstrip()

    text = "\n".join([title, line([h for h, _ in columns])] + [line(r) for r in rows])
    console.print(escape(text), highlight=False, soft_wrap=True)
