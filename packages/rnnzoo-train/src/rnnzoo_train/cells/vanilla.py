"""The vanilla RNN: ``h' = act(x W_x + h W_h + b)``."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from .base import Params
from .packed import PackedCell


class VanillaCell(PackedCell):
    r"""Vanilla RNN cell, ``h_t = act(x_t W_x + h_{t-1} W_h + b)``.

    One gate block (``"candidate"``), so ``W_x`` is ``(M, N)``, ``W_h`` is ``(N, N)``, ``b``
    is ``(N,)``. Equal to ``torch.nn.RNNCell(nonlinearity=act)`` with
    ``W_x = weight_ih.T``, ``W_h = weight_hh.T``, ``b = bias_ih + bias_hh``.

    Jacobians: ``dF/dh = diag(act'(a)) W_h^T`` and ``dF/dx = diag(act'(a)) W_x^T``.

    Initialisation: ``W_h`` orthogonal with gain 1 for tanh (spectral radius 1, the
    saturating tanh keeps activity bounded) and gain 0.5 for relu (spectral radius 0.5 < 1,
    so the non-saturating relu network cannot explode at initialisation; compare Le et al.
    2015, who use a scaled identity); ``b = 0``.
    """

    arch: ClassVar[str] = "vanilla"
    gates: ClassVar[tuple[str, ...]] = ("candidate",)
    recurrent_gain: ClassVar[dict[str, dict[str, float]]] = {
        "tanh": {"candidate": 1.0},
        "relu": {"candidate": 0.5},
    }

    def step_projected(self, params: Params, h: Tensor, u: Tensor) -> Tensor:
        return self._act(u + self.recurrent_projection(params, h))

    def _gain(self, params: Params, h: Tensor, x: Tensor) -> Tensor:
        """``act'(a)`` as ``(P, B, 1, N)`` coefficients."""
        return self._act_prime(self.step(params, h, x)).unsqueeze(2)

    def jacobian_h(self, params: Params, h: Tensor, x: Tensor) -> Tensor:
        return self._assemble(self._gain(params, h, x), params["W_h"])

    def jacobian_x(self, params: Params, h: Tensor, x: Tensor) -> Tensor:
        return self._assemble(self._gain(params, h, x), params["W_x"])
