"""Shared test setup. Keep it small: the CI machine has 2 cores shared by everyone."""

from __future__ import annotations

import torch

torch.set_num_threads(1)
