"""The learning-rate schedule: exponential decay over the whole training run.

``lr(k) = lr0 * decay ** (k / iterations)`` for iteration ``k = 0 .. iterations - 1``: the rate
falls smoothly by the factor ``decay`` over the run (paper section 2.1 searches the initial
rate in 1e-5-0.1 and the decay rate in 0.1-0.9; the paper does not state the decay interval,
so we tie it to the run length, which also makes short search trials and long runs use the
same shape of schedule).
"""

from __future__ import annotations

import torch
from torch import Tensor


def exponential_decay(lr0: Tensor, decay: Tensor, iteration: int, iterations: int) -> Tensor:
    """Learning rates ``(P,)`` at ``iteration`` for initial rates ``lr0`` and decays ``decay``."""
    frac = float(iteration) / float(max(iterations, 1))
    return lr0 * torch.pow(decay, frac)
