"""Machinery shared by the four cells: packed gate weights, initialisation, Jacobian blocks.

Every cell computes all its gate pre-activations with one GEMM on the input and one on the
state (row-vector convention of :mod:`rnnzoo_train.cells.base`)::

    u = x @ W_x + b          # (P, B, G*N): the input projection (precomputable over time)
    v = h @ W_h              # (P, B, G*N): the recurrent projection
    a = u + v                # gate pre-activations, block g is a[..., g*N:(g+1)*N]

Gate blocks are stored in the order of the concrete cell's :attr:`PackedCell.gates`.
Training code may call :meth:`PackedCell.project_input` once for a whole sequence and then
:meth:`PackedCell.step_projected` per step; :meth:`PackedCell.step` is the composition.

Initialisation (one scheme for all cells; gains and biases per cell and activation)
-----------------------------------------------------------------------------------
Drawn in float64 from the given ``torch.Generator`` only, in this order, then cast:

1. ``W_x`` ~ N(0, 1/M) entry-wise (unit-variance pre-activations for unit-size inputs);
2. ``W_h``: each ``N x N`` gate block an independent random orthogonal matrix (QR of a
   Gaussian, signs fixed so the draw is Haar-distributed) times the cell's per-gate gain —
   a gain < 1 bounds the spectral radius of the linear part, which is what keeps the relu
   cells from exploding at initialisation;
3. ``W_out`` ~ N(0, 1/N) entry-wise; all biases are zero except the gate biases that the
   cell documents (``b_out = 0``).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import ClassVar

import torch
from torch import Tensor

from .activations import activation as activation_function
from .activations import activation_derivative
from .base import Cell, Params


def random_orthogonal(n: int, generator: torch.Generator) -> Tensor:
    """A Haar-random ``n x n`` orthogonal matrix in float64, drawn from ``generator`` only."""
    a = torch.randn(n, n, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    return q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, 1.0)


#: number of Jacobian entries assembled at once (1 MiB in float64): small enough that the
#: multiply-adds of all gate blocks run in cache, so the result is written to memory once
CHUNK_ELEMENTS = 2**17


def transposed_blocks(weight: Tensor, n_units: int, gates: tuple[int, ...]) -> Tensor:
    """The transposed gate blocks ``W_g^T`` of a packed weight, ``(P, len(gates), N, D)``.

    ``weight`` is ``(P, D, G*N)`` (``W_h`` or ``W_x``); the result is contiguous so that each
    row ``i`` of every block is read sequentially.
    """
    P, D, _ = weight.shape
    blocks = weight.reshape(P, D, -1, n_units)[:, :, list(gates)]
    return blocks.permute(0, 2, 3, 1).contiguous()


def point_chunks(n_networks: int, n_points: int, entries_per_point: int):
    """``(network slice, point slice)`` pairs covering ``(P, B)`` in cache-sized pieces."""
    per_chunk = max(1, CHUNK_ELEMENTS // max(1, entries_per_point))
    if n_points <= per_chunk:  # whole networks at once
        step = max(1, per_chunk // n_points)
        for p in range(0, n_networks, step):
            yield slice(p, p + step), slice(None)
    else:
        for p in range(n_networks):
            for b in range(0, n_points, per_chunk):
                yield slice(p, p + 1), slice(b, b + per_chunk)


def write_gate_jacobian(
    out: Tensor, coef: Tensor, w_t: Tensor, diagonal: Tensor | None = None
) -> Tensor:
    """``out[p, b, i, j] = sum_k coef[p, b, k, i] * w_t[p, k, i, j] (+ diagonal[p, b, i] δ_ij)``.

    This is the Jacobian of ``sum_k c_k ⊙ (z @ W_k)`` with respect to ``z`` for fixed
    coefficients ``c_k``: every gate block of a row-vector weight, transposed and scaled
    row-wise. It is evaluated with broadcasting multiply-adds written into ``out`` (which may
    be a strided view, e.g. one block of the LSTM's Jacobian), so nothing larger than
    ``out`` is ever built (no ``(P*B*N)^2`` block-diagonal matrix).

    Parameters
    ----------
    out : Tensor
        ``(P, B, N, D)``, overwritten.
    coef : Tensor
        ``(P, B, k, N)`` per-block, per-unit coefficients.
    w_t : Tensor
        ``(P, k, N, D)`` transposed blocks (:func:`transposed_blocks`).
    diagonal : Tensor, optional
        ``(P, B, N)`` added to the diagonal (requires ``D == N``).

    Returns
    -------
    Tensor
        ``out``.
    """
    torch.mul(coef[:, :, 0].unsqueeze(-1), w_t[:, 0].unsqueeze(1), out=out)
    for k in range(1, w_t.shape[1]):
        out.addcmul_(coef[:, :, k].unsqueeze(-1), w_t[:, k].unsqueeze(1))
    if diagonal is not None:
        out.diagonal(dim1=-2, dim2=-1).add_(diagonal)
    return out


class PackedCell(Cell):
    """A cell whose gates come from packed weights ``W_x (M, G*N)``, ``W_h (N, G*N)``, ``b``.

    Subclasses set :attr:`gates`, :attr:`recurrent_gain` and :attr:`gate_bias`, and
    implement :meth:`step_projected`, :meth:`jacobian_h` and :meth:`jacobian_x`.
    """

    #: names of the gate blocks, in packed order
    gates: ClassVar[tuple[str, ...]]
    #: gain of the orthogonal init of each gate block of ``W_h``, per activation
    recurrent_gain: ClassVar[dict[str, dict[str, float]]]
    #: initial bias of each gate block (missing gates start at 0), per activation
    gate_bias: ClassVar[dict[str, dict[str, float]]] = {"tanh": {}, "relu": {}}

    def __init__(self, n_units: int, n_inputs: int, n_outputs: int, activation: str = "tanh"):
        super().__init__(n_units, n_inputs, n_outputs, activation)
        for name, value in (("n_units", n_units), ("n_inputs", n_inputs), ("n_outputs", n_outputs)):
            if int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self._act = activation_function(self.activation)
        self._act_prime = activation_derivative(self.activation)

    # -- sizes and parameters -------------------------------------------------------------
    @property
    def n_gates(self) -> int:
        """Number ``G`` of packed gate blocks."""
        return len(self.gates)

    def gate_slice(self, gate: str) -> slice:
        """Columns of ``W_x``, ``W_h`` and ``b`` that belong to ``gate``."""
        g = self.gates.index(gate)
        return slice(g * self.n_units, (g + 1) * self.n_units)

    def extra_param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameters beyond ``W_x, W_h, b, W_out, b_out`` (e.g. the GRU's ``b_hn``)."""
        return {}

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        gn = self.n_gates * self.n_units
        shapes = {
            "W_x": (self.n_inputs, gn),
            "W_h": (self.n_units, gn),
            "b": (gn,),
        }
        shapes.update(self.extra_param_shapes())
        shapes["W_out"] = (self.n_units, self.n_outputs)
        shapes["b_out"] = (self.n_outputs,)
        return shapes

    def init_params(self, generator: torch.Generator, dtype: torch.dtype = torch.float32) -> Params:
        """Initial parameters of one network; the scheme is in :mod:`.packed` and the cell.

        Draws happen in float64 in a fixed order from ``generator`` only and are then cast to
        ``dtype``, so float32 and float64 initialisations of one seed agree to float32
        rounding.
        """
        n, m, k = self.n_units, self.n_inputs, self.n_outputs
        f64 = torch.float64
        w_x = torch.randn(m, self.n_gates * n, generator=generator, dtype=f64) / math.sqrt(m)
        gains = self.recurrent_gain[self.activation]
        w_h = torch.cat([gains[g] * random_orthogonal(n, generator) for g in self.gates], dim=1)
        w_out = torch.randn(n, k, generator=generator, dtype=f64) / math.sqrt(n)
        b = torch.zeros(self.n_gates * n, dtype=f64)
        for gate, value in self.gate_bias[self.activation].items():
            b[self.gate_slice(gate)] = value
        params = {"W_x": w_x, "W_h": w_h, "b": b}
        for name, shape in self.extra_param_shapes().items():
            params[name] = torch.zeros(shape, dtype=f64)
        params["W_out"] = w_out
        params["b_out"] = torch.zeros(k, dtype=f64)
        return {name: p.to(dtype) for name, p in params.items()}

    # -- the dynamics ---------------------------------------------------------------------
    def project_input(self, params: Params, x: Tensor) -> Tensor:
        """The input part ``u = x @ W_x + b`` of every gate, for ``x`` ``(P, ..., M)``.

        Returns ``(P, ..., G*N)``. Any number of middle axes (trials, time) is allowed, so a
        whole sequence ``(P, B, T, M)`` is projected with one GEMM.
        """
        P = x.shape[0]
        flat = x.reshape(P, -1, self.n_inputs)
        u = torch.baddbmm(params["b"].unsqueeze(1), flat, params["W_x"])
        return u.reshape(*x.shape[:-1], u.shape[-1])

    def recurrent_projection(self, params: Params, h: Tensor) -> Tensor:
        """``v = h[..., :N] @ W_h``, ``(P, B, G*N)`` (the one recurrent GEMM per step)."""
        return torch.bmm(self.readout_state(h), params["W_h"])

    @abstractmethod
    def step_projected(self, params: Params, h: Tensor, u: Tensor) -> Tensor:
        """``F`` given the input projection ``u = project_input(params, x)``; ``(P, B, S)``."""

    def step(self, params: Params, h: Tensor, x: Tensor) -> Tensor:
        return self.step_projected(params, h, self.project_input(params, x))

    def _blocks(self, a: Tensor) -> tuple[Tensor, ...]:
        """Split ``(..., G*N)`` into the ``G`` gate blocks ``(..., N)``."""
        return a.split(self.n_units, dim=-1)

    def _assemble(self, coef: Tensor, weight: Tensor, diagonal: Tensor | None = None) -> Tensor:
        """``sum_g diag(coef_g) W_g^T (+ diag(diagonal))`` over all gates, ``(P, B, N, D)``.

        Assembled in cache-sized chunks of points (:data:`CHUNK_ELEMENTS`).
        """
        P, B = coef.shape[:2]
        w_t = transposed_blocks(weight, self.n_units, tuple(range(coef.shape[2])))
        out = coef.new_empty(P, B, self.n_units, weight.shape[1])
        for ps, bs in point_chunks(P, B, self.n_units * weight.shape[1]):
            diag = None if diagonal is None else diagonal[ps, bs]
            write_gate_jacobian(out[ps, bs], coef[ps, bs], w_t[ps], diag)
        return out
