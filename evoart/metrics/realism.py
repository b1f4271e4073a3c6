"""Pairwise realism: the scale-free realism used when one individual's discriminator
judges another individual's generator."""

from __future__ import annotations

import torch
from torch import Tensor


def pairwise_realism(fake_scores: Tensor, real_scores: Tensor) -> float:
    """Share of (fake, real) pairs where the fake scores at least as "real" as the real.

    ``mean over all pairs of 1[f >= r]`` (ties count for the fake), computed
    exactly in O((F+R) log R) by sorting the real scores and counting with
    ``searchsorted`` -- no F x R matrix. Why this and not the raw scores:
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
    at_or_below = torch.searchsorted(r_sorted, f, right=True)  # #reals <= each fake
    return int(at_or_below.sum()) / (f.numel() * r.numel())

