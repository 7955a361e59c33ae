"""Fused forward and hand-written backpropagation through time, batched over a population.

One kernel per architecture evaluates the cell of :mod:`rnnzoo_train.cells` for a whole
sequence and returns exact gradients of the loss with respect to the recurrent parameters,
without autograd. It is the same function as iterating ``Cell.step`` (the tests compare
gradients with autograd through ``Cell.step`` for all eight cells), organised for speed on
one CPU core (DESIGN.md section 5):

- the input projection ``u = [x, 1] @ [W_x; b]`` of every step is one batched GEMM;
- per step there is exactly one recurrent GEMM forward (``h @ W_h``) and one backward
  (``dA @ W_h^T``), batched over the population with ``torch.baddbmm``;
- weight gradients ``dW_h = sum_t h_{t-1}^T dA_t`` and ``dW_x`` are one large GEMM each over
  all ``T * B`` rows at the end, which runs near the machine's GEMM rate;
- activations live in preallocated time-major buffers ``(P, T, B, .)`` (each network's
  ``T * B`` rows contiguous), element-wise work uses in-place and fused aten kernels
  (``sigmoid_backward``, ``tanh_backward``, ``threshold_backward``, ``lerp``, ``addcmul``).

Every network's arithmetic is independent of the others in the population (batched GEMMs
and element-wise operations only), so a network trained alone and in a population performs
the same floating-point work.

Shapes: ``xa`` is ``(P, T, B, M + 1)`` (inputs with a trailing column of ones, so the gate
bias rides in the input GEMM), states ``H`` are ``(P, T + 1, B, N)`` with ``H[:, 0] = h_0 = 0``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from rnnzoo_train.cells.base import Params

_sigmoid_bw = torch.ops.aten.sigmoid_backward.grad_input
_tanh_bw = torch.ops.aten.tanh_backward.grad_input
_threshold_bw = torch.ops.aten.threshold_backward.grad_input


def _act_(x: Tensor, activation: str) -> Tensor:
    """Apply the non-gate nonlinearity in place."""
    return x.tanh_() if activation == "tanh" else x.relu_()


def _act_into(x: Tensor, out: Tensor, activation: str) -> Tensor:
    return torch.tanh(x, out=out) if activation == "tanh" else torch.clamp(x, min=0.0, out=out)


def _act_backward(grad: Tensor, y: Tensor, out: Tensor, activation: str) -> Tensor:
    """``out = grad * act'(a)`` written in terms of the output ``y = act(a)``."""
    if activation == "tanh":
        return _tanh_bw(grad, y, grad_input=out)
    return _threshold_bw(grad, y, 0.0, grad_input=out)


class SequenceKernel:
    """Forward over a sequence and exact BPTT for one cell type, population and batch size.

    Parameters
    ----------
    cell : PackedCell
        The cell (its architecture must match the kernel's).
    n_networks, batch, n_steps : int
        Population size ``P``, trials ``B`` per network and sequence length ``T``.
    dtype : torch.dtype
        Float type of all buffers (float32 for training, float64 for gradient checks).
    """

    arch: ClassVar[str]
    #: number of (P, T, B, N) buffers beyond the gate buffers, for memory estimates
    extra_state_buffers: ClassVar[int] = 0

    def __init__(
        self, cell, n_networks: int, batch: int, n_steps: int, dtype: torch.dtype = torch.float32
    ):
        if cell.arch != self.arch:
            raise ValueError(f"{type(self).__name__} needs a {self.arch} cell, got {cell.arch}")
        self.cell = cell
        self.activation = cell.activation
        self.P, self.B, self.T = int(n_networks), int(batch), int(n_steps)
        self.N = cell.n_units
        self.G = cell.n_gates
        self.dtype = dtype
        P, B, T, N, GN = self.P, self.B, self.T, self.N, self.G * self.N
        self.U = torch.empty(P, T, B, GN, dtype=dtype)  # input projection -> gate values
        self.H = torch.zeros(P, T + 1, B, N, dtype=dtype)  # h_0 .. h_T
        self.dA = torch.empty(P, T, B, GN, dtype=dtype)  # gradients of gate pre-activations
        self.dH = torch.empty(P, T * B, N, dtype=dtype)  # dL/dh_t, reused every iteration
        self._ones = torch.ones(P, 1, T * B, dtype=dtype)
        self._xa: Tensor | None = None
        self._alloc()

    @classmethod
    def bytes_per_network(cls, n_units: int, n_gates: int, batch: int, n_steps: int) -> int:
        """Approximate buffer memory of one network of the population, in bytes (float32)."""
        per_step = batch * n_units * (2 * n_gates + 2 + cls.extra_state_buffers)
        return 4 * n_steps * per_step

    def _alloc(self) -> None:
        """Allocate architecture-specific buffers."""

    # -- helpers ---------------------------------------------------------------------------
    def hidden(self) -> Tensor:
        """Readout-facing states ``h_1..h_T`` of the last forward, ``(P, T*B, N)`` (a view)."""
        return self.H[:, 1:].reshape(self.P, self.T * self.B, self.N)

    def _project(self, params: Params, xa: Tensor) -> None:
        w = torch.cat([params["W_x"], params["b"].unsqueeze(1)], dim=1)  # (P, M+1, GN)
        P, T, B = self.P, self.T, self.B
        torch.bmm(xa.reshape(P, T * B, -1), w, out=self.U.view(P, T * B, -1))
        self._xa = xa

    def _input_grads(self, d_u: Tensor) -> dict[str, Tensor]:
        """``dW_x`` and ``db`` from the gradient ``d_u`` ``(P, T*B, GN)`` of the projection."""
        assert self._xa is not None
        P, T, B = self.P, self.T, self.B
        xa = self._xa.reshape(P, T * B, -1)
        dw = torch.bmm(xa.transpose(1, 2), d_u)
        return {"W_x": dw[:, :-1], "b": dw[:, -1]}

    def _recurrent_grad(self, d_v: Tensor) -> Tensor:
        """``dW_h = sum_t h_{t-1}^T dV_t`` as one GEMM over all ``T*B`` rows."""
        P, T, B, N = self.P, self.T, self.B, self.N
        h_prev = self.H[:, :T].reshape(P, T * B, N)
        return torch.bmm(h_prev.transpose(1, 2), d_v)

    def _column_sum(self, x: Tensor) -> Tensor:
        """Sum of ``x`` ``(P, T*B, D)`` over rows, as a GEMM with ones, ``(P, D)``."""
        return torch.bmm(self._ones, x).squeeze(1)

    # -- the interface ---------------------------------------------------------------------
    def forward(self, params: Params, xa: Tensor) -> Tensor:
        """Run the sequence; returns ``h_1..h_T`` as ``(P, T*B, N)`` and keeps what BPTT needs.

        Parameters
        ----------
        params : dict of str to Tensor
            Population parameters ``(P, ...)`` in the cell's naming.
        xa : Tensor
            ``(P, T, B, M + 1)`` inputs with a trailing column of ones.
        """
        self._project(params, xa)
        self.H[:, 0].zero_()
        self._forward_steps(params)
        return self.hidden()

    def backward(self, params: Params, d_hidden: Tensor) -> dict[str, Tensor]:
        """Gradients of the recurrent parameters from ``dL/dh_t`` ``(P, T*B, N)``.

        ``d_hidden`` is overwritten (it accumulates the carried gradient in place).
        """
        dh = d_hidden.view(self.P, self.T, self.B, self.N)
        return self._backward_steps(params, dh)

    def _forward_steps(self, params: Params) -> None:
        raise NotImplementedError

    def _backward_steps(self, params: Params, dh: Tensor) -> dict[str, Tensor]:
        raise NotImplementedError


class VanillaKernel(SequenceKernel):
    """``h' = act(u + h W_h)``."""

    arch = "vanilla"

    def _forward_steps(self, params: Params) -> None:
        W_h, U, H, act = params["W_h"], self.U, self.H, self.activation
        for t in range(self.T):
            a = U[:, t].baddbmm_(H[:, t], W_h)
            _act_into(a, H[:, t + 1], act)

    def _backward_steps(self, params: Params, dh: Tensor) -> dict[str, Tensor]:
        W_hT = params["W_h"].transpose(1, 2)
        H, dA, act = self.H, self.dA, self.activation
        for t in range(self.T - 1, -1, -1):
            _act_backward(dh[:, t], H[:, t + 1], dA[:, t], act)
            if t:
                dh[:, t - 1].baddbmm_(dA[:, t], W_hT)
        P, TB = self.P, self.T * self.B
        d = dA.view(P, TB, -1)
        grads = self._input_grads(d)
        grads["W_h"] = self._recurrent_grad(d)
        return grads


class UGRNNKernel(SequenceKernel):
    """``g = σ(a_g)``, ``c = act(a_c)``, ``h' = g h + (1 - g) c`` (gates: update, candidate)."""

    arch = "ugrnn"

    def _alloc(self) -> None:
        self._t1 = torch.empty(self.P, self.B, self.N, dtype=self.dtype)
        self._t2 = torch.empty_like(self._t1)

    def _forward_steps(self, params: Params) -> None:
        W_h, U, H, act, N = params["W_h"], self.U, self.H, self.activation, self.N
        for t in range(self.T):
            a = U[:, t].baddbmm_(H[:, t], W_h)
            g = a[..., :N].sigmoid_()
            c = _act_(a[..., N:], act)
            torch.lerp(c, H[:, t], g, out=H[:, t + 1])

    def _backward_steps(self, params: Params, dh: Tensor) -> dict[str, Tensor]:
        W_hT = params["W_h"].transpose(1, 2)
        U, H, dA, act, N = self.U, self.H, self.dA, self.activation, self.N
        t1, t2 = self._t1, self._t2
        for t in range(self.T - 1, -1, -1):
            gh = dh[:, t]
            g, c = U[:, t, :, :N], U[:, t, :, N:]
            torch.sub(H[:, t], c, out=t2)
            t2.mul_(gh)
            _sigmoid_bw(t2, g, grad_input=dA[:, t, :, :N])
            torch.mul(gh, g, out=t1)
            torch.sub(gh, t1, out=t2)
            _act_backward(t2, c, dA[:, t, :, N:], act)
            if t:
                dh[:, t - 1].add_(t1).baddbmm_(dA[:, t], W_hT)
        d = dA.view(self.P, self.T * self.B, -1)
        grads = self._input_grads(d)
        grads["W_h"] = self._recurrent_grad(d)
        return grads


class GRUKernel(SequenceKernel):
    """GRU in PyTorch's convention (reset after the recurrent matmul; gates r, z, n)."""

    arch = "gru"
    extra_state_buffers = 2  # m = h W_hn + b_hn, and dA_n (input-side candidate gradient)

    def _alloc(self) -> None:
        P, T, B, N, dt = self.P, self.T, self.B, self.N, self.dtype
        self.V = torch.empty(P, B, 3 * N, dtype=dt)
        self.M = torch.empty(P, T, B, N, dtype=dt)
        self.dUn = torch.empty(P, T, B, N, dtype=dt)
        self._t1 = torch.empty(P, B, N, dtype=dt)
        self._t2 = torch.empty_like(self._t1)

    def _forward_steps(self, params: Params) -> None:
        W_h, U, H, V, M = params["W_h"], self.U, self.H, self.V, self.M
        act, N = self.activation, self.N
        b_hn = params["b_hn"].unsqueeze(1)
        for t in range(self.T):
            h = H[:, t]
            torch.bmm(h, W_h, out=V)
            rz = U[:, t, :, : 2 * N].add_(V[..., : 2 * N]).sigmoid_()
            m = torch.add(V[..., 2 * N :], b_hn, out=M[:, t])
            n = U[:, t, :, 2 * N :].addcmul_(rz[..., :N], m)
            _act_(n, act)
            torch.lerp(n, h, rz[..., N:], out=H[:, t + 1])

    def _backward_steps(self, params: Params, dh: Tensor) -> dict[str, Tensor]:
        W_hT = params["W_h"].transpose(1, 2)
        U, H, M, dA, dUn = self.U, self.H, self.M, self.dA, self.dUn
        act, N = self.activation, self.N
        t1, t2 = self._t1, self._t2
        for t in range(self.T - 1, -1, -1):
            gh = dh[:, t]
            r, z, n = U[:, t, :, :N], U[:, t, :, N : 2 * N], U[:, t, :, 2 * N :]
            dv = dA[:, t]
            # candidate: dA_n = gh (1 - z) act'(n)
            torch.mul(gh, z, out=t1)
            torch.sub(gh, t1, out=t2)
            dan = _act_backward(t2, n, dUn[:, t], act)
            # update gate: gh (h - n) z (1 - z)
            torch.sub(H[:, t], n, out=t2)
            t2.mul_(gh)
            _sigmoid_bw(t2, z, grad_input=dv[..., N : 2 * N])
            # reset gate: dA_n m r (1 - r); recurrent candidate: dA_n r
            torch.mul(dan, M[:, t], out=t2)
            _sigmoid_bw(t2, r, grad_input=dv[..., :N])
            torch.mul(dan, r, out=dv[..., 2 * N :])
            if t:
                dh[:, t - 1].add_(t1).baddbmm_(dv, W_hT)
        P, TB = self.P, self.T * self.B
        d_v = dA.view(P, TB, 3 * N)
        d_un = dUn.view(P, TB, N)
        assert self._xa is not None
        xa = self._xa.reshape(P, TB, -1).transpose(1, 2)
        dw = torch.cat([torch.bmm(xa, d_v[..., : 2 * N]), torch.bmm(xa, d_un)], dim=2)
        return {
            "W_x": dw[:, :-1],
            "b": dw[:, -1],
            "W_h": self._recurrent_grad(d_v),
            "b_hn": self._column_sum(d_v[..., 2 * N :]),
        }


class LSTMKernel(SequenceKernel):
    """LSTM (gates i, f, g, o); the state is ``[h, c]``, the readout sees ``h``.

    The forward pass also stores, while they are hot in cache, the five factors the backward
    pass multiplies by (``Ko = y o(1-o)``, ``Kc = o act'(y)``, ``Ki = g i(1-i)``,
    ``Kf = c_prev f(1-f)``, ``Kg = i act'(g)``, with ``y = act(c)``), so BPTT does six
    element-wise products per step instead of twelve.
    """

    arch = "lstm"
    extra_state_buffers = 4  # c_t, Kc, Kf, Kg

    def _alloc(self) -> None:
        P, T, B, N, dt = self.P, self.T, self.B, self.N, self.dtype
        self.C = torch.zeros(P, T + 1, B, N, dtype=dt)
        self.Kc = torch.empty(P, T, B, N, dtype=dt)
        self.Kf = torch.empty(P, T, B, N, dtype=dt)
        self.Kg = torch.empty(P, T, B, N, dtype=dt)
        self._y = torch.empty(P, B, N, dtype=dt)
        self._gc = torch.empty(P, B, N, dtype=dt)

    def forward(self, params: Params, xa: Tensor) -> Tensor:
        self.C[:, 0].zero_()
        return super().forward(params, xa)

    def _forward_steps(self, params: Params) -> None:
        W_h, U, H, C = params["W_h"], self.U, self.H, self.C
        act, N, y = self.activation, self.N, self._y
        for t in range(self.T):
            a = U[:, t].baddbmm_(H[:, t], W_h)
            i_f = a[..., : 2 * N].sigmoid_()
            i, f = i_f[..., :N], i_f[..., N:]
            g = _act_(a[..., 2 * N : 3 * N], act)
            o = a[..., 3 * N :].sigmoid_()
            c = torch.mul(f, C[:, t], out=C[:, t + 1])
            c.addcmul_(i, g)
            _act_into(c, y, act)
            torch.mul(o, y, out=H[:, t + 1])
            # backward factors (overwriting i with Ki and o with Ko last)
            _sigmoid_bw(C[:, t], f, grad_input=self.Kf[:, t])
            _act_backward(o, y, self.Kc[:, t], act)
            _act_backward(i, g, self.Kg[:, t], act)
            _sigmoid_bw(g, i, grad_input=i)
            _sigmoid_bw(y, o, grad_input=o)

    def _backward_steps(self, params: Params, dh: Tensor) -> dict[str, Tensor]:
        W_hT = params["W_h"].transpose(1, 2)
        U, dA, N, gc = self.U, self.dA, self.N, self._gc
        gc.zero_()
        for t in range(self.T - 1, -1, -1):
            gh = dh[:, t]
            k = U[:, t]
            da = dA[:, t]
            torch.mul(gh, k[..., 3 * N :], out=da[..., 3 * N :])  # output gate: gh Ko
            gc.addcmul_(gh, self.Kc[:, t])  # total gradient of c_t
            torch.mul(gc, k[..., :N], out=da[..., :N])  # input gate: gc Ki
            torch.mul(gc, self.Kf[:, t], out=da[..., N : 2 * N])  # forget gate: gc Kf
            torch.mul(gc, self.Kg[:, t], out=da[..., 2 * N : 3 * N])  # cell input: gc Kg
            gc.mul_(k[..., N : 2 * N])  # carried to c_{t-1} through f
            if t:
                dh[:, t - 1].baddbmm_(da, W_hT)
        d = dA.view(self.P, self.T * self.B, -1)
        grads = self._input_grads(d)
        grads["W_h"] = self._recurrent_grad(d)
        return grads


KERNELS: dict[str, type[SequenceKernel]] = {
    k.arch: k for k in (VanillaKernel, UGRNNKernel, GRUKernel, LSTMKernel)
}


def make_kernel(
    cell, n_networks: int, batch: int, n_steps: int, dtype: torch.dtype = torch.float32
) -> SequenceKernel:
    """The fused BPTT kernel for ``cell``'s architecture."""
    try:
        kernel = KERNELS[cell.arch]
    except KeyError:
        raise ValueError(
            f"no training kernel for architecture {cell.arch!r}; "
            f"available: {', '.join(sorted(KERNELS))}"
        ) from None
    return kernel(cell, n_networks, batch, n_steps, dtype)
