"""Numbers as the pages print them, and the relative links between pages. Plain text
only: the templates escape and mark it up."""

from __future__ import annotations

from typing import Any

from .view import INDEX_NAME


def fmt(value: Any, key: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if key == "score":  # 0-100
            return f"{value:.1f}"
        if key.startswith("lr") or (value != 0 and abs(value) < 1e-3):
            return f"{value:.2e}"
        if key == "swd" or abs(value) >= 100:
            return f"{value:.1f}"
        return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.0f}"
    return str(value)


def short(v: float) -> str:
    """A tick label: as few digits as tell the ticks apart."""
    a = abs(v)
    if a >= 1000:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}".rstrip("0").rstrip(".")
    if a >= 0.01 or v == 0:
        return f"{v:.3f}".rstrip("0").rstrip(".")
    return f"{v:.1e}"


def ind_href(up: str, ind_id: str, born: int, page: str = INDEX_NAME) -> str:
    return f"{up}gen-{born:03d}/{ind_id}/{page}"


def gen_href(up: str, generation: int) -> str:
    return f"{up}gen-{generation:03d}/{INDEX_NAME}"


def num(value: float) -> str:
    """A coordinate in an SVG attribute."""
    return f"{value:.1f}"
