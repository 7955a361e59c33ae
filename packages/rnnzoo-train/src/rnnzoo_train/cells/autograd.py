"""Batched autograd Jacobians of any step function ``F(params, h, x)``.

The default of :meth:`rnnzoo_train.cells.base.Cell.jacobian_h` and
:meth:`~rnnzoo_train.cells.base.Cell.jacobian_x`: a cell without closed-form Jacobians (a user's
own step function, an external cell type) is still analysed, at the price of ``S`` reverse
passes per block of points instead of one closed-form assembly.

Every point ``(p, b)`` of a batch is independent (``F[p, b]`` depends on ``h[p, b]`` and
``x[p, b]`` only; true of every recurrent cell). So one vector-Jacobian product with the
cotangent ``e_i`` placed at *every* point gives row ``i`` of all ``P * B`` Jacobians at once;
the ``S`` rows are vectorised with ``torch.func.vmap``. Where the step function cannot be
vmapped (an operation without a batching rule, in-place updates), the rows are computed one
reverse pass at a time instead (same numbers, slower). Points are processed in blocks of at
most :data:`MAX_JACOBIAN_ELEMENTS` Jacobian entries, so memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["MAX_JACOBIAN_ELEMENTS", "autograd_jacobians"]

#: Jacobian entries (of ``dF/dh`` and ``dF/dx`` together) computed in one block: 2**22
#: (32 MiB in float64); the vmapped reverse passes hold about this many activations too
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
    h = h.detach()
    x = x.detach()
    with torch.enable_grad():
        try:
            out, vjp_fn = torch.func.vjp(lambda hh, xx: step(params, hh, xx), h, x)
            S = out.shape[-1]
            basis = _basis(out)
            jh, jx = torch.func.vmap(vjp_fn)(basis)  # (S, P, B, S), (S, P, B, M)
            return jh.movedim(0, -2), jx.movedim(0, -2)
        except (RuntimeError, NotImplementedError, ValueError, TypeError):
            pass  # no batching rule somewhere: one reverse pass per output
        hh = h.clone().requires_grad_(True)
        xx = x.clone().requires_grad_(True)
        out = step(params, hh, xx)
        S = out.shape[-1]
        rows_h, rows_x = [], []
        for i in range(S):
            gh, gx = torch.autograd.grad(
                out[..., i],
                (hh, xx),
                torch.ones_like(out[..., i]),
                retain_graph=i < S - 1,
                allow_unused=True,
            )
            rows_h.append(torch.zeros_like(hh) if gh is None else gh)
            rows_x.append(torch.zeros_like(xx) if gx is None else gx)
        return torch.stack(rows_h, -2).to(out.dtype), torch.stack(rows_x, -2).to(out.dtype)


def _basis(out: Tensor) -> Tensor:
    """Cotangents ``e_i`` at every point, ``(S, *out.shape)``."""
    S = out.shape[-1]
    eye = torch.eye(S, dtype=out.dtype, device=out.device)
    return eye.reshape(S, *([1] * (out.dim() - 1)), S).expand(S, *out.shape)
