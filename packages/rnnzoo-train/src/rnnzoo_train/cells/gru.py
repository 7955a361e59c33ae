"""The gated recurrent unit (GRU) in PyTorch's convention (reset after the recurrent matmul)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from .activations import sigmoid_derivative
from .base import Params
from .packed import PackedCell


class GRUCell(PackedCell):
    r"""GRU cell (Cho et al. 2014) in PyTorch's convention.

    .. math::

        r &= \sigma(x W_{x,r} + h W_{h,r} + b_r) \\
        z &= \sigma(x W_{x,z} + h W_{h,z} + b_z) \\
        n &= \mathrm{act}(x W_{x,n} + b_n + r \odot (h W_{h,n} + b_{hn})) \\
        h' &= (1 - z) \odot n + z \odot h

    The reset gate multiplies the candidate's recurrent term *after* the recurrent matmul
    (``r ⊙ (h W_hn + b_hn)``, as ``torch.nn.GRUCell`` and cuDNN do, not ``(r ⊙ h) W_hn``).
    It therefore needs its own recurrent candidate bias ``b_hn`` ``(N,)``, separate from
    the input-side ``b_n``; for ``r`` and ``z`` one bias each suffices. Gate blocks in packed
    order ``("reset", "update", "candidate")`` (torch's ``r, z, n``): ``W_x`` ``(M, 3N)``,
    ``W_h`` ``(N, 3N)``, ``b`` ``(3N,)``, ``b_hn`` ``(N,)``. Equal to ``torch.nn.GRUCell``
    (tanh) with ``W_x = weight_ih.T``, ``W_h = weight_hh.T``,
    ``b = bias_ih + [bias_hh_r, bias_hh_z, 0]``, ``b_hn = bias_hh_n``.

    Jacobians, with ``m = h W_{h,n} + b_hn`` and ``a_n`` the candidate pre-activation::

        dF/dh = diag(z) + diag((1-z) act'(a_n) m r(1-r)) W_{h,r}^T
                        + diag((h-n) z(1-z)) W_{h,z}^T + diag((1-z) act'(a_n) r) W_{h,n}^T
        dF/dx = same first two terms with W_x, + diag((1-z) act'(a_n)) W_{x,n}^T

    Initialisation: update-gate bias ``+1`` (start carrying the state), reset bias 0;
    orthogonal ``W_h`` blocks with gain 1 (tanh) or 0.5 for the relu candidate block.
    """

    arch: ClassVar[str] = "gru"
    gates: ClassVar[tuple[str, ...]] = ("reset", "update", "candidate")
    recurrent_gain: ClassVar[dict[str, dict[str, float]]] = {
        "tanh": {"reset": 1.0, "update": 1.0, "candidate": 1.0},
        "relu": {"reset": 1.0, "update": 1.0, "candidate": 0.5},
    }
    gate_bias: ClassVar[dict[str, dict[str, float]]] = {
        "tanh": {"update": 1.0},
        "relu": {"update": 1.0},
    }

    def extra_param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"b_hn": (self.n_units,)}

    def _parts(self, params: Params, h: Tensor, u: Tensor):
        u_r, u_z, u_n = self._blocks(u)
        v_r, v_z, v_n = self._blocks(self.recurrent_projection(params, h))
        r = torch.sigmoid(u_r + v_r)
        z = torch.sigmoid(u_z + v_z)
        m = v_n + params["b_hn"].unsqueeze(1)
        n = self._act(u_n + r * m)
        return r, z, m, n

    def step_projected(self, params: Params, h: Tensor, u: Tensor) -> Tensor:
        _, z, _, n = self._parts(params, h, u)
        return n + z * (h - n)

    def _coefficients(self, params: Params, h: Tensor, x: Tensor):
        r, z, m, n = self._parts(params, h, self.project_input(params, x))
        dn = (1.0 - z) * self._act_prime(n)  # dh'/da_n
        return r, z, dn, torch.stack([dn * m * sigmoid_derivative(r), (h - n) * z * (1 - z)], 2)

    def jacobian_h(self, params: Params, h: Tensor, x: Tensor) -> Tensor:
        r, z, dn, coef = self._coefficients(params, h, x)
        coef = torch.cat([coef, (dn * r).unsqueeze(2)], 2)
        return self._assemble(coef, params["W_h"], diagonal=z)

    def jacobian_x(self, params: Params, h: Tensor, x: Tensor) -> Tensor:
        _, _, dn, coef = self._coefficients(params, h, x)
        coef = torch.cat([coef, dn.unsqueeze(2)], 2)
        return self._assemble(coef, params["W_x"])
