"""Pairwise realism: the scale-free realism used when one individual's discriminator
judges another individual's generator."""

from __future__ import annotations

import torch
from torch import Tensor

# Changes whenever realism values would change: 3 = a batch-norm D judges with each
# batch's own statistics, as it trained (docs/METRICS.md: it ranks generators like the
# held-out evaluation, running statistics do not); 2 = ties count half (the AUC
# convention) and a generator's realism comes from the judge panel (kin excluded,
# remembered judges, a fresh critic); 1 counted ties for the generated image and
# averaged the other Ds.
REALISM_VERSION = 3


def pairwise_realism(fake_scores: Tensor, real_scores: Tensor) -> float:
    """Share of (fake, real) pairs where the fake scores as more "real" than the real,
    a tie counting half (the AUC, or Mann-Whitney U, convention).

    ``mean over all pairs of 1[f > r] + 0.5 * 1[f == r]``, computed exactly in
    O((F+R) log R) by sorting the real scores and counting with ``searchsorted``
    -- no F x R matrix. Ties count half so that a discriminator which cannot
    tell anything apart (a constant output) says 0.5, "indistinguishable", and
    not 1.0 for every generator. Why this and not the raw scores:
    discriminators of different individuals output on arbitrary scales, but
    this rank statistic (an AUC) is scale-free: 0.5 means the discriminator
    cannot tell the generator's images from real ones, 0 means it separates
    them perfectly, 1 means the fakes all look *more* real than the data.

    Inputs are flattened, so (F,) and (F, 1) both work. NaN scores raise
    ``ValueError`` (a diverged discriminator must be handled by the caller,
    not silently ranked); infinities are ordered normally.
    """
    f = torch.as_tensor(fake_scores).detach().reshape(-1).to("cpu", torch.float64)
    r = torch.as_tensor(real_scores).detach().reshape(-1).to("cpu", torch.float64)
    if f.numel() == 0 or r.numel() == 0:
        raise ValueError("pairwise_realism needs at least one fake and one real score")
    if bool(torch.isnan(f).any()) or bool(torch.isnan(r).any()):
        raise ValueError("pairwise_realism got NaN discriminator scores")
    r_sorted = torch.sort(r).values
    below = torch.searchsorted(r_sorted, f, right=False)        # #reals < each fake
    at_or_below = torch.searchsorted(r_sorted, f, right=True)   # #reals <= each fake
    twice = int(below.sum()) + int(at_or_below.sum())           # 2 * (wins + ties / 2)
    return twice / (2 * f.numel() * r.numel())

