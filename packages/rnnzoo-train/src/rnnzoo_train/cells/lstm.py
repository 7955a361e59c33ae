"""The LSTM cell (Hochreiter and Schmidhuber 1997) with state ``concat[h, c]``."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from .activations import sigmoid_derivative
from .base import Params
from .packed import PackedCell, point_chunks, transposed_blocks, write_gate_jacobian


class LSTMCell(PackedCell):
    r"""LSTM cell; the state is ``s = concat[h, c]`` (``S = 2N``), the readout sees ``h``.

    .. math::

        i, f, o &= \sigma(x W_{x,\cdot} + h W_{h,\cdot} + b_\cdot) \\
        g &= \mathrm{act}(x W_{x,g} + h W_{h,g} + b_g) \\
        c' &= f \odot c + i \odot g \\
        h' &= o \odot \mathrm{act}(c')

    ``act`` (tanh or relu) is used for both non-gate nonlinearities. Gate blocks in packed
    order ``("input", "forget", "cell", "output")`` (torch's ``i, f, g, o``): ``W_x``
    ``(M, 4N)``, ``W_h`` ``(N, 4N)``, ``b`` ``(4N,)``. Equal to ``torch.nn.LSTMCell`` (tanh)
    with ``W_x = weight_ih.T``, ``W_h = weight_hh.T``, ``b = bias_ih + bias_hh``.

    Jacobian of ``F(s, x) = [h', c']`` with ``y = act(c')``::

        dc'/dz = diag(g i(1-i)) W_{z,i}^T + diag(c f(1-f)) W_{z,f}^T + diag(i act'(a_g)) W_{z,g}^T
        dh'/dz = diag(o act'(c')) dc'/dz + diag(y o(1-o)) W_{z,o}^T        (z = h or x)
        dc'/dc = diag(f),   dh'/dc = diag(o act'(c') f)

    Initialisation, tanh: forget-gate bias ``+1`` (Gers et al. 2000; Jozefowicz et al. 2015),
    other biases 0, orthogonal ``W_h`` blocks with gain 1.

    relu: forget-gate bias ``+2``, input-gate bias ``-3``, gain 0.25 on *every* block. With
    ``c_0 = 0`` and ``g = relu(.) >= 0`` the cell state never goes negative: it integrates
    ``i g`` with leak ``1 - f``, and nothing saturates. A sustained input (sine's static
    cue) then drives ``c`` up until a large ``h`` opens forget and input gates together and
    the state runs away: with the earlier scheme (forget bias ``+1``, gain 0.5) 33 of 100
    32-unit networks exploded (``|h| > 1e3``, up to overflow) over sine's 500 steps at
    initialisation. A nearly closed input gate (``sigmoid(-3) = 0.05``) and weak recurrent
    gate paths keep the loop ``c -> h -> (i, f, g) -> c`` far from instability
    (``i o gain / (1 - f) = 0.05``, was 0.46) while the forget bias keeps a memory of
    ``1 / (1 - sigmoid(2)) = 8`` steps, which flip-flop training needs: 3 of 100 exploded
    at initialisation, and with the ``demo`` settings 0 of 32 diverged on flip-flop (was 4 of
    32) with every network solving sine and cdi (``docs/cells-and-tasks.md``).
    """

    arch: ClassVar[str] = "lstm"
    gates: ClassVar[tuple[str, ...]] = ("input", "forget", "cell", "output")
    recurrent_gain: ClassVar[dict[str, dict[str, float]]] = {
        "tanh": {"input": 1.0, "forget": 1.0, "cell": 1.0, "output": 1.0},
        "relu": {"input": 0.25, "forget": 0.25, "cell": 0.25, "output": 0.25},
    }
    gate_bias: ClassVar[dict[str, dict[str, float]]] = {
        "tanh": {"forget": 1.0},
        "relu": {"forget": 2.0, "input": -3.0},
    }

    @property
    def state_size(self) -> int:
        return 2 * self.n_units

    def _parts(self, params: Params, s: Tensor, u: Tensor):
        c = s[..., self.n_units :]
        a_i, a_f, a_g, a_o = self._blocks(u + self.recurrent_projection(params, s))
        i, f, o = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.sigmoid(a_o)
        g = self._act(a_g)
        c_next = f * c + i * g
        y = self._act(c_next)
        return c, i, f, g, o, c_next, y

    def step_projected(self, params: Params, h: Tensor, u: Tensor) -> Tensor:
        *_, o, c_next, y = self._parts(params, h, u)
        return torch.cat([o * y, c_next], dim=-1)

    def _coefficients(self, params: Params, s: Tensor, x: Tensor):
        c, i, f, g, o, c_next, y = self._parts(params, s, self.project_input(params, x))
        zero = torch.zeros_like(i)
        coef_c = torch.stack(
            [g * sigmoid_derivative(i), c * sigmoid_derivative(f), i * self._act_prime(g), zero], 2
        )
        dy = o * self._act_prime(y)  # dh'/dc'
        coef_h = coef_c * dy.unsqueeze(2)
        coef_h[:, :, 3] = y * sigmoid_derivative(o)
        return coef_c, coef_h, f, dy

    def jacobian_h(self, params: Params, h: Tensor, x: Tensor) -> Tensor:
        coef_c, coef_h, f, dy = self._coefficients(params, h, x)
        n = self.n_units
        P, B = coef_h.shape[:2]
        w_t = transposed_blocks(params["W_h"], n, (0, 1, 2, 3))
        jac = coef_h.new_empty(P, B, 2 * n, 2 * n)
        for ps, bs in point_chunks(P, B, 4 * n * n):  # all four blocks of a chunk in cache
            j = jac[ps, bs]
            write_gate_jacobian(j[:, :, :n, :n], coef_h[ps, bs], w_t[ps])  # dh'/dh
            write_gate_jacobian(j[:, :, n:, :n], coef_c[ps, bs, :3], w_t[ps, :3])  # dc'/dh
            j[:, :, :, n:].zero_()
            j[:, :, :n, n:].diagonal(dim1=-2, dim2=-1).copy_(dy[ps, bs] * f[ps, bs])  # dh'/dc
            j[:, :, n:, n:].diagonal(dim1=-2, dim2=-1).copy_(f[ps, bs])  # dc'/dc
        return jac

    def jacobian_x(self, params: Params, h: Tensor, x: Tensor) -> Tensor:
        coef_c, coef_h, _, _ = self._coefficients(params, h, x)
        n = self.n_units
        P, B = coef_h.shape[:2]
        w_t = transposed_blocks(params["W_x"], n, (0, 1, 2, 3))
        jac = coef_h.new_empty(P, B, 2 * n, self.n_inputs)
        for ps, bs in point_chunks(P, B, 2 * n * self.n_inputs):
            j = jac[ps, bs]
            write_gate_jacobian(j[:, :, :n], coef_h[ps, bs], w_t[ps])
            write_gate_jacobian(j[:, :, n:], coef_c[ps, bs, :3], w_t[ps, :3])
        return jac
