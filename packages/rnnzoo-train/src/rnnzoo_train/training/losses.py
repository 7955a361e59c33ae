"""The training objective: masked mean squared error of a linear readout, plus L2 on weights.

For network ``p`` with outputs ``y = h W_out + b_out`` on its own batch::

    mse_p = sum(mask * (y - target)**2) / sum(mask)
    objective_p = mse_p + l2_p * (|W_x|^2 + |W_h|^2 + |W_out|^2)     (biases not penalised)

Losses reported in the zoo (training curve, validation, test) are ``mse_p`` alone, so they
are comparable across L2 settings. Each network's objective depends on its own parameters
only, so the population's gradient is the stack of the networks' gradients. The readout
itself is computed by the kernels (:mod:`.kernels`), inside their per-step GEMM.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: parameters with an L2 penalty (weights, not biases)
PENALISED = ("W_x", "W_h", "W_out")


def masked_mse_and_grad(
    outputs: Tensor, targets: Tensor, mask: Tensor, d_outputs: Tensor
) -> Tensor:
    """Per-network masked MSE and its gradient with respect to the outputs.

    Parameters
    ----------
    outputs, targets, mask : Tensor
        ``(P, ...)`` arrays of one layout (the kernels': ``(P, T, K, B)``); ``mask`` is a
        float 0/1 tensor.
    d_outputs : Tensor
        Written with ``dL/dy = 2 mask (y - target) / sum(mask)`` (the kernel's buffer).

    Returns
    -------
    Tensor
        ``(P,)`` masked MSE of each network.
    """
    P = outputs.shape[0]
    err = torch.sub(outputs, targets, out=d_outputs).mul_(mask)
    count = mask.reshape(P, -1).sum(dim=1).clamp_(min=1.0)
    flat = err.reshape(P, 1, -1)
    loss = torch.bmm(flat, flat.transpose(1, 2)).view(P) / count
    err.mul_((2.0 / count).view((P,) + (1,) * (err.dim() - 1)))
    return loss


def add_l2_gradient(grads: dict[str, Tensor], params: dict[str, Tensor], l2: Tensor) -> None:
    """Add ``d/dW l2 |W|^2 = 2 l2 W`` to the gradients of the penalised weights, in place."""
    scale = (2.0 * l2).view(-1, 1, 1)
    for name in PENALISED:
        grads[name].addcmul_(scale, params[name])
