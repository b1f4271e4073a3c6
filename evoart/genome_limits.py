"""What every family's genes share, below the genome: the error a bad gene raises and
the compute cap of one training step. A family's own gene module (``ar_genes``) needs
both and sits under ``genome``, which imports its dataclass; ``genome`` re-exports them."""

from __future__ import annotations

from .errors import EvoartError


class GenomeError(EvoartError, ValueError):
    """A genome that does not satisfy the schema. The message names the field."""


# Compute cap of a whole training step of any family at 32 px (for a GAN: G and D,
# forward and backward, all D steps, the batch): at most about 150 ms on one core of this
# project's 2-core CI machine, so that brief training of a population fits minutes.
MAX_STEP_MACS_32 = 3.0e9
