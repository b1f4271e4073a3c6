"""What a person types at the pause, parsed into a decision (the terminal itself is the CLI's)."""

from __future__ import annotations

import re

from ..errors import EvoartError

HELP = ("numbers and ranges pick (1 3 5-7), 'none' picks nothing, 'undo' goes back one generation, "
        "'+' / '-' raise or lower the mutation strength, 'quit' stops (resume later)")


class PromptError(EvoartError):
    """An answer the prompt cannot take; the message says what it can take."""


def parse_answer(text: str, pause) -> "Decision":  # noqa: F821 - see session.Decision
    from .session import Decision

    answer = text.strip().lower()
    if not answer:
        raise PromptError(f"type your picks: {HELP}")
    if answer in ("none", "n", "nothing"):
        return Decision("none")
    if answer in ("undo", "u"):
        if not pause.can_undo:
            raise PromptError("nothing to undo: this is generation 0, the first one")
        return Decision("undo")
    if answer in ("quit", "q", "exit"):
        return Decision("quit")
    if answer in ("+", "more", "stronger"):
        return Decision("stronger")
    if answer in ("-", "less", "weaker"):
        return Decision("weaker")
    numbers: list[int] = []
    for token in re.split(r"[\s,]+", answer):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", token)
        if m is None:
            raise PromptError(f"{token!r} is not a number or a range; {HELP}")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if lo > hi:
            raise PromptError(f"the range {token} runs backwards; write {hi}-{lo}")
        numbers.extend(range(lo, hi + 1))
    n = len(pause.entries)
    bad = [k for k in numbers if not 1 <= k <= n]
    if bad:
        raise PromptError(f"there is no individual number {bad[0]}: pick from 1 to {n}")
    chosen = [pause.entries[k - 1] for k in dict.fromkeys(numbers)]
    failed = [e for e in chosen if e.failed]
    if failed:
        raise PromptError(f"number {failed[0].number} ({failed[0].id}) {failed[0].status} and has no images "
                          "to breed from; pick another")
    if len(chosen) > pause.max_picks:
        raise PromptError(f"{len(chosen)} picks, but only {pause.max_picks} individuals survive each "
                          "generation; pick fewer")
    return Decision("pick", [e.id for e in chosen])
