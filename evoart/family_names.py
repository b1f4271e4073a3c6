"""The names of the model families, in one torch-free place below the genome and the
configuration (both read them): a genome's ``family`` gene and a run's ``families``."""

from __future__ import annotations

#: Every family the genome schema names: generative adversarial networks, variational
#: autoencoders and autoregressive models over a palette (docs/FAMILIES.md).
FAMILIES = ("gan", "vae", "ar")
DEFAULT_FAMILIES = ("gan",)


def a_family(name: str) -> str:
    """A family's name with its article, for messages: "a gan", "an ar"."""
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"
