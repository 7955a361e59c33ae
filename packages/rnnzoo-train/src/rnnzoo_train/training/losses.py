"""The training objective: masked mean squared error of a linear readout, plus L2 on weights.

For network ``p`` with outputs ``y = h W_out + b_out`` on its own batch::

    mse_p = sum(mask * (y - target)**2) / sum(mask)
    objective_p = mse_p + l2_p * (|W_x|^2 + |W_h|^2 + |W_out|^2)     (biases not penalised)

Losses reported in the zoo (training curve, validation, test) are ``mse_p`` alone, so they
are comparable across L2 settings. Each network's objective depends on its own parameters
only, so the population's gradient is the stack of the networks' gradients.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: parameters with an L2 penalty (weights, not biases)
PENALISED = ("W_x", "W_h", "W_out")


def readout(hidden: Tensor, W_out: Tensor, b_out: Tensor) -> Tensor:
    """Outputs ``(P, R, K)`` of states ``hidden`` ``(P, R, N)``."""
    return torch.bmm(hidden, W_out).add_(b_out.unsqueeze(1))


def mse(outputs: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """Per-network masked mean squared error, ``(P,)``; ``mask`` is a float 0/1 tensor."""
    err = (outputs - targets).mul_(mask)
    count = mask.sum(dim=(1, 2)).clamp_(min=1.0)
    return err.square_().sum(dim=(1, 2)) / count


def readout_mse_and_grad(
    hidden: Tensor,
    W_out: Tensor,
    b_out: Tensor,
    targets: Tensor,
    mask: Tensor,
    d_hidden_out: Tensor | None = None,
) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """Loss and gradients of the readout MSE.

    Parameters
    ----------
    hidden : Tensor
        ``(P, R, N)`` states (``R = T * B`` rows).
    W_out, b_out : Tensor
        ``(P, N, K)`` and ``(P, K)``.
    targets, mask : Tensor
        ``(P, R, K)``; mask is float 0/1.
    d_hidden_out : Tensor, optional
        Preallocated ``(P, R, N)`` buffer for ``d_hidden`` (avoids touching fresh memory
        every iteration, which is slow for these large arrays).

    Returns
    -------
    loss : Tensor
        ``(P,)`` masked MSE of each network.
    d_hidden : Tensor
        ``(P, R, N)`` gradient with respect to ``hidden``.
    grads : dict
        ``W_out`` and ``b_out`` gradients.
    """
    out = readout(hidden, W_out, b_out)
    err = out.sub_(targets).mul_(mask)
    count = mask.sum(dim=(1, 2)).clamp_(min=1.0)
    loss = (err * err).sum(dim=(1, 2)) / count
    d_out = err.mul_((2.0 / count).view(-1, 1, 1))
    grads = {"W_out": torch.bmm(hidden.transpose(1, 2), d_out), "b_out": d_out.sum(dim=1)}
    d_hidden = torch.bmm(d_out, W_out.transpose(1, 2), out=d_hidden_out)
    return loss, d_hidden, grads


def add_l2_gradient(grads: dict[str, Tensor], params: dict[str, Tensor], l2: Tensor) -> None:
    """Add ``d/dW l2 |W|^2 = 2 l2 W`` to the gradients of the penalised weights, in place."""
    scale = (2.0 * l2).view(-1, 1, 1)
    for name in PENALISED:
        grads[name].addcmul_(scale, params[name])
