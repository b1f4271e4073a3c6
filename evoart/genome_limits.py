"""What every family's genes share, below the genome: the error a bad gene raises, the
parser and checks that name the field, and the compute cap of one training step. A
family's own gene module (``ar_genes``) needs them and sits under ``genome``, which
imports its dataclass; ``genome`` re-exports them."""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

from .errors import EvoartError


class GenomeError(EvoartError, ValueError):
    """A genome that does not satisfy the schema. The message names the field."""


# Compute cap of a whole training step of any family at 32 px (for a GAN: G and D,
# forward and backward, all D steps, the batch): at most about 150 ms on one core of this
# project's 2-core CI machine, so that brief training of a population fits minutes.
MAX_STEP_MACS_32 = 3.0e9


def build_part(cls, data: Any, where: str, nested: dict[str, type] | None = None):
    """A frozen gene dataclass from parsed JSON, each value type-checked against the
    field's default (a missing field takes the default); ``nested`` names list fields
    of further dataclasses. Raises GenomeError naming the field; ranges are checked by
    the caller's validation."""
    nested = nested or {}
    if not isinstance(data, dict):
        raise GenomeError(f"{where}: expected an object, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise GenomeError(f"{where}.{unknown[0]}: unknown field")
    defaults = cls()
    kwargs = {}
    for name in known:
        if name not in data:
            continue  # the dataclass default applies
        value = data[name]
        path = f"{where}.{name}"
        default = getattr(defaults, name)
        if name in nested:
            if not isinstance(value, list):
                raise GenomeError(f"{path}: expected a list of blocks")
            value = tuple(build_part(nested[name], b, f"{path}[{i}]") for i, b in enumerate(value))
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise GenomeError(f"{path}: expected true or false, got {value!r}")
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise GenomeError(f"{path}: expected an integer, got {value!r}")
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise GenomeError(f"{path}: expected a number, got {value!r}")
            value = float(value)
        elif isinstance(default, str):
            if not isinstance(value, str):
                raise GenomeError(f"{path}: expected a string, got {value!r}")
        kwargs[name] = value
    return cls(**kwargs)


def check_range(path: str, value: float, lo: float, hi: float) -> None:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and lo <= value <= hi):
        raise GenomeError(f"{path}: {value!r} is outside [{lo:g}, {hi:g}]")


def check_choice(path: str, value: Any, choices: tuple) -> None:
    # True == 1 in Python: a bool is a choice only among booleans, and 1 is not True,
    # or a genome could validate and then fail to load from its own JSON.
    if value not in choices or isinstance(value, bool) != isinstance(choices[0], bool):
        options = ", ".join(str(c) for c in choices)
        raise GenomeError(f"{path}: {value!r} is not one of {options}")
