"""Batched autograd Jacobians of any step function ``F(params, h, x)``.

The default of :meth:`rnnzoo_train.cells.base.Cell.jacobian_h` and
:meth:`~rnnzoo_train.cells.base.Cell.jacobian_x`: a cell without closed-form Jacobians (a user's
own step function, an external cell type) is still analysed, at the price of ``S`` reverse
passes per block of points instead of one closed-form assembly.

Every point ``(p, b)`` of a batch is independent (``F[p, b]`` depends on ``h[p, b]`` and
``x[p, b]`` only; true of every recurrent cell). So one reverse pass with the cotangent
``e_i`` placed at *every* point gives row ``i`` of all ``P * B`` Jacobians at once: ``S``
reverse passes through one graph give them all. (Vectorising the ``S`` passes with
``torch.func.vmap`` was measured slower: 6.5 s against 0.11 s for 512 points of a 64-unit
rate network, 2.5 s against 1.1 s for the zoo's LSTM step, 5.5 s against 0.25 s for
``nn.GRUCell``, whose fused kernel has no batching rule.) Points are processed in blocks of
at most :data:`MAX_JACOBIAN_ELEMENTS` Jacobian entries, so memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["MAX_JACOBIAN_ELEMENTS", "autograd_jacobians"]

#: Jacobian entries (of ``dF/dh`` and ``dF/dx`` together) computed in one block: 2**22
#: (32 MiB in float64); the block's graph is kept for its S reverse passes
MAX_JACOBIAN_ELEMENTS = 2**22

Step = Callable[[dict[str, Tensor], Tensor, Tensor], Tensor]


def autograd_jacobians(
    step: Step, params: dict[str, Tensor], h: Tensor, x: Tensor
) -> tuple[Tensor, Tensor]:
    """``dF/dh`` and ``dF/dx`` of ``step(params, h, x)`` at every point, by reverse-mode autograd.

    Parameters
    ----------
    step : callable
        ``step(params, h, x) -> h_next`` with ``h`` ``(P, B, S)``, ``x`` ``(P, B, M)``, output
        ``(P, B, S)``; points must not interact (no batch statistics).
    params : dict of str to Tensor
        Passed through to ``step`` (not differentiated).
    h, x : Tensor
        States ``(P, B, S)`` and inputs ``(P, B, M)``.

    Returns
    -------
    (Tensor, Tensor)
        ``J_h`` ``(P, B, S, S)`` and ``J_x`` ``(P, B, S, M)``, with ``J[..., i, j] = dF_i/dz_j``,
        in the dtype of ``step``'s output.
    """
    P, B, S = h.shape
    M = x.shape[-1]
    per_point = S * (S + M)
    chunk = max(1, MAX_JACOBIAN_ELEMENTS // max(1, P * per_point))
    parts_h, parts_x = [], []
    for b0 in range(0, B, chunk):
        jh, jx = _block(step, params, h[:, b0 : b0 + chunk], x[:, b0 : b0 + chunk])
        parts_h.append(jh)
        parts_x.append(jx)
    if len(parts_h) == 1:
        return parts_h[0], parts_x[0]
    return torch.cat(parts_h, 1), torch.cat(parts_x, 1)


def _block(step: Step, params: dict[str, Tensor], h: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    with torch.enable_grad():
        hh = h.detach().clone().requires_grad_(True)
        xx = x.detach().clone().requires_grad_(True)
        out = step(params, hh, xx)
        S = out.shape[-1]
        jh = out.new_empty(*out.shape[:-1], S, hh.shape[-1])
        jx = out.new_empty(*out.shape[:-1], S, xx.shape[-1])
        seed = torch.ones_like(out[..., 0])
        for i in range(S):
            gh, gx = torch.autograd.grad(
                out[..., i], (hh, xx), seed, retain_graph=i < S - 1, allow_unused=True
            )
            jh[..., i, :] = 0.0 if gh is None else gh
            jx[..., i, :] = 0.0 if gx is None else gx
    return jh, jx
