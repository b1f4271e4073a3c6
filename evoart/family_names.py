"""The names of the model families, in one torch-free place below the genome and the
configuration (both read them): a genome's ``family`` gene and a run's ``families``."""

from __future__ import annotations

#: Every family the genome schema names: generative adversarial networks, variational
#: autoencoders and autoregressive models over a palette (docs/FAMILIES.md).
FAMILIES = ("gan", "vae", "ar")
DEFAULT_FAMILIES = ("gan",)
