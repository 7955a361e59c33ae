"""The update-gate RNN (UGRNN) of Collins, Sohl-Dickstein and Sussillo (2017)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from .activations import sigmoid_derivative
from .base import Params
from .packed import PackedCell


class UGRNNCell(PackedCell):
    r"""Update-gate RNN cell (Collins et al. 2017).

    .. math::

        g &= \sigma(x W_{x,g} + h W_{h,g} + b_g) \\
        c &= \mathrm{act}(x W_{x,c} + h W_{h,c} + b_c) \\
        h' &= g \odot h + (1 - g) \odot c

    Gate blocks in packed order: ``("update", "candidate")``, so ``W_x`` is ``(M, 2N)``,
    ``W_h`` is ``(N, 2N)``, ``b`` is ``(2N,)``. PyTorch has no native UGRNN.

    Jacobians (``a`` the pre-activations)::

        dF/dh = diag(g) + diag((h - c) g (1 - g)) W_{h,g}^T + diag((1 - g) act'(a_c)) W_{h,c}^T
        dF/dx =           diag((h - c) g (1 - g)) W_{x,g}^T + diag((1 - g) act'(a_c)) W_{x,c}^T

    Initialisation: update-gate bias ``+1`` (the gate starts 73% closed, carrying the state,
    which eases learning long memories, like the LSTM forget bias); orthogonal ``W_h`` blocks,
    gain 1 (tanh) or 0.5 (relu candidate, keeping the relu branch contracting).
    """

    arch: ClassVar[str] = "ugrnn"
    gates: ClassVar[tuple[str, ...]] = ("update", "candidate")
    recurrent_gain: ClassVar[dict[str, dict[str, float]]] = {
        "tanh": {"update": 1.0, "candidate": 1.0},
        "relu": {"update": 1.0, "candidate": 0.5},
    }
    gate_bias: ClassVar[dict[str, dict[str, float]]] = {
        "tanh": {"update": 1.0},
        "relu": {"update": 1.0},
    }

    def _parts(self, params: Params, h: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
        a_g, a_c = self._blocks(u + self.recurrent_projection(params, h))
        return torch.sigmoid(a_g), self._act(a_c)

    def step_projected(self, params: Params, h: Tensor, u: Tensor) -> Tensor:
        g, c = self._parts(params, h, u)
        return c + g * (h - c)

    def _coefficients(self, params: Params, h: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        g, c = self._parts(params, h, self.project_input(params, x))
        coef = torch.stack([(h - c) * sigmoid_derivative(g), (1.0 - g) * self._act_prime(c)], 2)
        return coef, g

    def jacobian_h(self, params: Params, h: Tensor, x: Tensor) -> Tensor:
        coef, g = self._coefficients(params, h, x)
        return self._assemble(coef, params["W_h"], diagonal=g)

    def jacobian_x(self, params: Params, h: Tensor, x: Tensor) -> Tensor:
        coef, _ = self._coefficients(params, h, x)
        return self._assemble(coef, params["W_x"])
