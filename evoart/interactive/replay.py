"""A recorded event log served back as the artist's answers (``evoart evolve --replay LOG``).

Each pause takes its events in order (mutation strength changes, then one decision). A
``quit`` with more events after it marks where the recorded run was resumed, so the
replay goes on past it; a ``quit`` at the end stops the run, resumable, as it did then.
"""

from __future__ import annotations

import json
from pathlib import Path

from .session import Decision, InteractiveError

KINDS = ("pick", "none", "undo", "quit", "stronger", "weaker")


def event_key(event: dict) -> tuple:
    """What makes two events the same decision (timestamps and sources aside)."""
    return (event.get("generation"), event.get("kind"), tuple(event.get("picks") or ()))


def load_log(path: Path) -> list[dict]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InteractiveError(f"cannot read the event log {path}: {exc.strerror or exc}") from None
    events = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            e = json.loads(line)
        except json.JSONDecodeError:
            raise InteractiveError(f"{path}, line {n}: not a JSON event (an event log has one JSON object "
                                   "per line, as a run's events.jsonl)") from None
        if not isinstance(e, dict) or e.get("kind") not in KINDS or not isinstance(e.get("generation"), int):
            raise InteractiveError(f"{path}, line {n}: an event needs a 'generation' (a number) and a 'kind' "
                                   f"({', '.join(KINDS)})")
        if e["kind"] == "pick" and not (isinstance(e.get("picks"), list) and e["picks"]
                                        and all(isinstance(p, str) for p in e["picks"])):
            raise InteractiveError(f"{path}, line {n}: a pick event needs 'picks', a list of individual ids")
        events.append(e)
    return events


class ReplayChooser:
    """Answers pauses from ``events``; ``then`` answers once they run out (None: stop
    there, resumable). ``skip``: a prefix of events the run already took (a resume)."""

    def __init__(self, events: list[dict], *, then=None, skip: list[dict] = ()):
        self.events = list(events)
        self.then = then
        done = [event_key(e) for e in skip]
        if done and [event_key(e) for e in self.events[: len(done)]] == done:
            self.events = self.events[len(done):]

    def __call__(self, pause) -> Decision:
        while self.events:
            e = self.events.pop(0)
            if e["kind"] == "quit" and self.events:
                continue  # the recorded run was resumed here
            if e["generation"] != pause.generation:
                raise InteractiveError(
                    f"the replayed event log is out of step with this run: its next event ({e['kind']}) is for "
                    f"generation {e['generation']}, but the run is paused at generation {pause.generation}. "
                    "Replay a log with the run's own seed and options.")
            return Decision(e["kind"], list(e.get("picks") or []), source="replay")
        if self.then is not None:
            return self.then(pause)
        return Decision("quit", source="replay")  # the log ran out: stop here, resumable
