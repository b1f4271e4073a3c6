"""Interactive evolution: after each generation the run pauses for the artist's picks.

    session.py     the pause-pick-apply loop around ``ga.evolve``, undo, quit, the event log
    prompt.py      the answers a person types at the pause (numbers, ranges, none, undo, +, -, quit)
    replay.py      a recorded event log served back as the artist's answers (``--replay``)
    preference.py  the learned preference: features of the fixed-latent samples, a small model

Picks are a hard survival override and preferred parents (``ga`` prefers a higher
``preference`` score in the parents' tournament); the automatic objectives rank the rest.
Everything goes through ``store``: the pause and its decision live in the ledger, where
the gallery page's "breed these" control can decide it too (the first decision stands).
"""

from .prompt import PromptError, parse_answer
from .replay import ReplayChooser, load_log
from .session import Decision, Entry, InteractiveError, Pause, Session

__all__ = ["Decision", "Entry", "InteractiveError", "Pause", "PromptError", "ReplayChooser", "Session",
           "load_log", "parse_answer"]
