"""Fused forward and hand-written backpropagation through time, batched over a population.

One kernel per architecture evaluates the cell of :mod:`rnnzoo_train.cells` and its linear
readout for a whole sequence, and returns exact gradients of the loss with respect to every
parameter (readout included), without autograd. It is the same function as iterating
``Cell.step`` (the tests compare gradients with autograd through ``Cell.step`` for all eight
cells). It is organised for one CPU core, where a population's stored activations do not fit
the caches and memory traffic, not arithmetic, decides the speed (DESIGN.md section 5):

- **trial-minor layout.** Every per-step array of a network is ``(rows, B)``: states
  ``h_t^T`` are ``(N, B)``, gate blocks are row blocks of ``(N, B)``. Each gate of each
  network is then one contiguous ``N * B`` block, so every element-wise pass streams
  contiguous memory (the earlier ``(B, G*N)`` layout read quarter rows of cold buffers).
- **one GEMM per step forward, two backward, nothing else.** The input, the bias and the
  readout ride in the recurrent GEMM: ``Z_t = [h_t; x_{t+1}; 1]`` (``K = N + M + 1`` rows)
  and ``A_t = Wf^T Z_t`` gives the gate pre-activations of step ``t + 1`` *and* the outputs
  ``y_t = W_out^T h_t + b_out``. Backward, ``D_t = [dA_{t+1}; dy_t]`` gives
  ``dh_t = Wf[:N] D_t`` (recurrent and readout gradient at once) and all weight gradients
  accumulate as ``dWf^T += D_t Z_t^T``. No ``(T, B, N)`` gradient buffer, no separate
  readout pass over the stored states.
- **store once, read once.** The forward pass writes each step's activated gates (and the
  LSTM's cell state) once; the backward pass reads them once and recomputes what is
  cheaper to recompute than to fetch (``act(c_t)``). Scratch arrays of the backward pass
  stay in cache.
- **cache-sized sub-populations.** Each step works on a chunk of ``chunk`` networks, so its
  scratch arrays stay in L2; buffers use transparent huge pages (:mod:`.buffers`).
- **no allocation and little Python per step:** all views are created once, every
  operation writes into preallocated memory (``out=``, in place).

Every network's arithmetic is independent of the others in the population (batched GEMMs
and element-wise operations only), so a network trained alone and in a population performs
the same floating-point work.

Layouts (``P`` networks, ``T`` steps, ``B`` trials, ``N`` units, ``M`` inputs, ``K_out``
outputs): inputs ``xa`` are ``(P, T, M + 1, B)`` with a last row of ones;
:meth:`SequenceKernel.outputs` and ``d_outputs`` are ``(P, T, K_out, B)``;
:meth:`SequenceKernel.hidden` is ``(P, T, N, B)`` (``h_1 .. h_T``).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from rnnzoo_train.cells.base import Params

from . import buffers

_sigmoid_bw = torch.ops.aten.sigmoid_backward.grad_input
_tanh_bw = torch.ops.aten.tanh_backward.grad_input
_threshold_bw = torch.ops.aten.threshold_backward.grad_input

#: networks per chunk of the per-step work (measured: 4-16 are within noise at 64 units)
DEFAULT_CHUNK = 8


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
    chunk : int, optional
        Networks per chunk of the per-step work (default: the class's ``default_chunk``,
        :data:`DEFAULT_CHUNK` unless a kernel measured better); changes speed only.

    Notes
    -----
    The rows of the combined weight ``Wf`` (and of the stored ``A_t``) are *segments* of
    ``N`` rows (``K_out`` for the readout): ``("gate", k)`` holds packed gate ``k``'s input,
    recurrent and bias weights, ``("h", k)`` only its recurrent part and ``b_hn`` (GRU),
    ``("x", k)`` only its input part and bias (GRU), ``("out", 0)`` the readout. Segments
    before and including ``"out"`` are the ones the recurrent backward GEMM needs.
    """

    arch: ClassVar[str]
    segments: ClassVar[tuple[tuple[str, int], ...]]
    #: whether the activated gate rows of every step are kept for BPTT
    stores_gates: ClassVar[bool] = True
    #: number of (T + 1, N, B) buffers beyond Z and A (the LSTM's cell state)
    extra_state_buffers: ClassVar[int] = 0
    #: "eager" (torch operations) or "native" (fused C steps, :mod:`.native`)
    backend: ClassVar[str] = "eager"
    #: networks per chunk when the caller does not choose (speed only)
    default_chunk: ClassVar[int] = DEFAULT_CHUNK

    def __init__(
        self,
        cell,
        n_networks: int,
        batch: int,
        n_steps: int,
        dtype: torch.dtype = torch.float32,
        chunk: int | None = None,
    ):
        if cell.arch != self.arch:
            raise ValueError(f"{type(self).__name__} needs a {self.arch} cell, got {cell.arch}")
        self.cell = cell
        self.activation = cell.activation
        self.P, self.B, self.T = int(n_networks), int(batch), int(n_steps)
        self.N, self.M, self.K_out = cell.n_units, cell.n_inputs, cell.n_outputs
        self.dtype = dtype
        P, B, T, N = self.P, self.B, self.T, self.N
        self.K = K = N + self.M + 1
        self.rows: dict[tuple[str, int], slice] = {}
        r = 0
        for seg in self.segments:
            size = self.K_out if seg[0] == "out" else N
            self.rows[seg] = slice(r, r + size)
            r += size
        self.W = W = r
        self.out_rows = self.rows[("out", 0)]
        self.recurrent_rows = self.out_rows.stop
        self.chunk = max(1, min(int(chunk or self.default_chunk), P))
        Pc = self.chunk

        # Z_t = [h_t; x_{t+1}; 1]; h_0 = 0 and the last step's input stays 0
        self.Z = buffers.zeros(P, T + 1, K, B, dtype=dtype)
        self.Z[:, T, K - 1] = 1.0
        if self.stores_gates:
            self.A = buffers.empty(P, T, W, B, dtype=dtype)
        self.Y = buffers.empty(P, T, self.K_out, B, dtype=dtype)
        self.d_outputs = buffers.zeros(P, T, self.K_out, B, dtype=dtype)
        self.Wf = torch.zeros(P, K, W, dtype=dtype)  # rows: h, x, 1; columns: segments
        self.WfT = torch.empty(P, W, K, dtype=dtype)
        self.dWfT = torch.zeros(P, W, K, dtype=dtype)
        self.S = torch.empty(Pc, W, B, dtype=dtype)  # a step's GEMM output (if not stored)
        self.D = torch.empty(Pc, W, B, dtype=dtype)  # [dA; dy] of one step
        self.gh = torch.empty(Pc, N, B, dtype=dtype)  # dL/dh_t
        self.chunks = [(c, min(c + Pc, P)) for c in range(0, P, Pc)]
        self._alloc()
        self._views: list[dict] | None = None

    @classmethod
    def bytes_per_network(
        cls, n_units: int, n_gates: int, batch: int, n_steps: int, n_io: int = 8
    ) -> int:
        """Approximate buffer memory of one network of the population, in bytes (float32).

        ``n_io`` stands for inputs + outputs + 2 rows (bias, readout), which the callers
        that size work units do not know exactly.
        """
        rows_z = n_units + n_io
        rows_a = (len(cls.segments) - 1) * n_units + n_io if cls.stores_gates else 0
        rows = rows_z + rows_a + cls.extra_state_buffers * n_units + 2 * n_io
        return 4 * (n_steps + 1) * batch * rows

    def _alloc(self) -> None:
        """Allocate architecture-specific buffers."""

    # -- views ---------------------------------------------------------------------------
    def _chunk_views(self, c0: int, c1: int) -> dict:
        """Per-step views of one chunk (created once: slicing costs more than the work)."""
        N = self.N
        Z = self.Z[c0:c1]
        v = {
            "Z": Z.unbind(1),
            "Zt": Z.transpose(2, 3).unbind(1),
            "H": Z[:, :, :N].unbind(1),
            "Y": self.Y[c0:c1].unbind(1),
            "dY": self.d_outputs[c0:c1].unbind(1),
        }
        if self.stores_gates:
            A = self.A[c0:c1]
            v["A"] = A.unbind(1)
            v["A_out"] = A[:, :, self.out_rows].unbind(1)
            for name, rows in self._named_rows().items():
                v[name] = A[:, :, rows].unbind(1)
        n = c1 - c0
        v.update(
            WfT=self.WfT[c0:c1],
            WfT_out=self.WfT[c0:c1, self.out_rows],
            WbT=self.Wf[c0:c1, :N, : self.recurrent_rows],
            W_out=self.Wf[c0:c1, :N, self.out_rows],
            dWfT=self.dWfT[c0:c1],
            dWfT_out=self.dWfT[c0:c1, self.out_rows],
            S=self.S[:n],
            S_out=self.S[:n, self.out_rows],
            D=self.D[:n],
            D_rec=self.D[:n, : self.recurrent_rows],
            D_out=self.D[:n, self.out_rows],
            gh=self.gh[:n],
        )
        v.update(self._scratch_views(n))
        return v

    def _named_rows(self) -> dict[str, slice]:
        """Names of stored row blocks used by the element-wise code."""
        return {}

    def _scratch_views(self, n: int) -> dict:
        return {}

    def views(self) -> list[dict]:
        if self._views is None:
            self._views = [self._chunk_views(c0, c1) for c0, c1 in self.chunks]
        return self._views

    # -- weights -------------------------------------------------------------------------
    def _assemble_weights(self, params: Params) -> None:
        """Write ``Wf`` (``K x W``: rows h, x, 1) and its transpose from the parameters."""
        N, M = self.N, self.M
        Wf = self.Wf
        for (kind, k), rows in self.rows.items():
            if kind == "out":
                Wf[:, :N, rows].copy_(params["W_out"])
                Wf[:, -1, rows].copy_(params["b_out"])
                continue
            cols = slice(k * N, (k + 1) * N)
            if kind in ("gate", "h"):
                Wf[:, :N, rows].copy_(params["W_h"][:, :, cols])
            if kind in ("gate", "x"):
                Wf[:, N : N + M, rows].copy_(params["W_x"][:, :, cols])
                Wf[:, -1, rows].copy_(params["b"][:, cols])
            if kind == "h":
                Wf[:, -1, rows].copy_(params["b_hn"])
        self.WfT.copy_(Wf.transpose(1, 2))

    def _gradients(self, params: Params) -> dict[str, Tensor]:
        """Split ``dWf^T`` into the gradient of every parameter."""
        N, M = self.N, self.M
        g = {name: torch.empty_like(p) for name, p in params.items()}
        for (kind, k), rows in self.rows.items():
            d = self.dWfT[:, rows]
            if kind == "out":
                g["W_out"].copy_(d[:, :, :N].transpose(1, 2))
                g["b_out"].copy_(d[:, :, -1])
                continue
            cols = slice(k * N, (k + 1) * N)
            if kind in ("gate", "h"):
                g["W_h"][:, :, cols].copy_(d[:, :, :N].transpose(1, 2))
            if kind in ("gate", "x"):
                g["W_x"][:, :, cols].copy_(d[:, :, N : N + M].transpose(1, 2))
                g["b"][:, cols].copy_(d[:, :, -1])
            if kind == "h":
                g["b_hn"].copy_(d[:, :, -1])
        return g

    # -- the interface ---------------------------------------------------------------------
    def hidden(self) -> Tensor:
        """States ``h_1..h_T`` of the last forward pass, ``(P, T, N, B)`` (a view)."""
        return self.Z[:, 1:, : self.N]

    def outputs(self) -> Tensor:
        """Readout ``y_1..y_T`` of the last forward pass, ``(P, T, K_out, B)``."""
        return self.Y

    def forward(self, params: Params, xa: Tensor) -> Tensor:
        """Run the sequence; returns :meth:`outputs` and keeps what BPTT needs.

        Parameters
        ----------
        params : dict of str to Tensor
            Population parameters ``(P, ...)`` in the cell's naming.
        xa : Tensor
            ``(P, T, M + 1, B)`` inputs with a last row of ones.
        """
        self.Z[:, : self.T, self.N :].copy_(xa)
        self._assemble_weights(params)
        for v in self.views():
            self._forward_chunk(v)
        return self.Y

    def backward(self, params: Params, d_outputs: Tensor | None = None) -> dict[str, Tensor]:
        """Gradients of every parameter from ``dL/dy`` ``(P, T, K_out, B)``.

        ``d_outputs`` defaults to :attr:`d_outputs`, where :func:`.losses.masked_mse_and_grad`
        writes; ``params`` must be those of the last :meth:`forward`.
        """
        if d_outputs is not None and d_outputs.data_ptr() != self.d_outputs.data_ptr():
            self.d_outputs.copy_(d_outputs)
        self.dWfT.zero_()
        T = self.T
        for v in self.views():
            # the readout of the last step starts the recursion: dh_T = W_out dy_T
            torch.bmm(v["W_out"], v["dY"][T - 1], out=v["gh"])
            v["dWfT_out"].baddbmm_(v["dY"][T - 1], v["Zt"][T])
            self._backward_chunk(v)
        return self._gradients(params)

    def _step_tail(self, v: dict, s: int) -> None:
        """After ``dA_s`` is in ``D``: add ``dy_{s-1}``, accumulate ``dWf``, carry ``dh``."""
        if s > 1:
            v["D_out"].copy_(v["dY"][s - 2])
        else:
            v["D_out"].zero_()
        v["dWfT"].baddbmm_(v["D"], v["Zt"][s - 1])
        if s > 1:
            torch.bmm(v["WbT"], v["D_rec"], out=v["gh"])

    def _forward_chunk(self, v: dict) -> None:
        raise NotImplementedError

    def _backward_chunk(self, v: dict) -> None:
        raise NotImplementedError


class VanillaKernel(SequenceKernel):
    """``h' = act(W_x^T x + W_h^T h + b)``; stores only ``h`` (``act'`` comes from ``h``)."""

    arch = "vanilla"
    segments = (("gate", 0), ("out", 0))
    stores_gates = False

    def _forward_chunk(self, v: dict) -> None:
        act, N = self.activation, self.N
        Z, H, Y, WfT, S, S_out = v["Z"], v["H"], v["Y"], v["WfT"], v["S"], v["S_out"]
        S_a = S[:, :N]
        for s in range(self.T):
            torch.bmm(WfT, Z[s], out=S)
            _act_into(S_a, H[s + 1], act)
            if s:
                Y[s - 1].copy_(S_out)
        torch.bmm(v["WfT_out"], Z[self.T], out=S_out)
        Y[self.T - 1].copy_(S_out)

    def _backward_chunk(self, v: dict) -> None:
        act, N = self.activation, self.N
        H, gh, D_a = v["H"], v["gh"], v["D"][:, :N]
        for s in range(self.T, 0, -1):
            _act_backward(gh, H[s], D_a, act)
            self._step_tail(v, s)


class _StoredGatesKernel(SequenceKernel):
    """Shared forward bookkeeping of the kernels that store their gates."""

    def _forward_chunk(self, v: dict) -> None:
        Z, A, A_out, Y, WfT = v["Z"], v["A"], v["A_out"], v["Y"], v["WfT"]
        for s in range(self.T):
            torch.bmm(WfT, Z[s], out=A[s])
            if s:
                Y[s - 1].copy_(A_out[s])
            self._activate(v, s)
        S_out = v["S_out"]
        torch.bmm(v["WfT_out"], Z[self.T], out=S_out)
        Y[self.T - 1].copy_(S_out)

    def _activate(self, v: dict, s: int) -> None:
        """Gates of step ``s + 1`` from the pre-activations in ``A[s]``; writes ``h_{s+1}``."""
        raise NotImplementedError


class UGRNNKernel(_StoredGatesKernel):
    """``g = σ(a_g)``, ``c = act(a_c)``, ``h' = c + g (h - c)`` (gates: update, candidate)."""

    arch = "ugrnn"
    segments = (("gate", 0), ("gate", 1), ("out", 0))

    def _named_rows(self) -> dict[str, slice]:
        N = self.N
        return {"u": slice(0, N), "c": slice(N, 2 * N)}

    def _scratch_views(self, n: int) -> dict:
        return {"t1": self._t1[:n], "t2": self._t2[:n]}

    def _alloc(self) -> None:
        self._t1 = torch.empty(self.chunk, self.N, self.B, dtype=self.dtype)
        self._t2 = torch.empty_like(self._t1)

    def _activate(self, v: dict, s: int) -> None:
        g = v["u"][s].sigmoid_()
        c = _act_(v["c"][s], self.activation)
        h, h_next = v["H"][s], v["H"][s + 1]
        torch.sub(h, c, out=h_next)
        h_next.mul_(g).add_(c)

    def _backward_chunk(self, v: dict) -> None:
        act = self.activation
        H, u_, c_, gh, t1, t2 = v["H"], v["u"], v["c"], v["gh"], v["t1"], v["t2"]
        D_g, D_c = v["D"][:, : self.N], v["D"][:, self.N : 2 * self.N]
        for s in range(self.T, 0, -1):
            g, c = u_[s - 1], c_[s - 1]
            torch.sub(H[s - 1], c, out=t1)
            t1.mul_(gh)
            _sigmoid_bw(t1, g, grad_input=D_g)  # gh (h - c) g (1 - g)
            torch.mul(gh, g, out=t1)  # carried directly to h_{s-1}
            torch.sub(gh, t1, out=t2)
            _act_backward(t2, c, D_c, act)  # gh (1 - g) act'
            self._step_tail(v, s)
            if s > 1:
                v["gh"].add_(t1)


class GRUKernel(_StoredGatesKernel):
    """GRU in PyTorch's convention (reset after the recurrent matmul; gates r, z, n).

    ``n = act(W_xn^T x + b_n + r (W_hn^T h + b_hn))``, ``h' = n + z (h - n)``. The recurrent
    and input parts of the candidate are separate segments (``m = W_hn^T h + b_hn`` is kept
    for the reset gate's gradient); stored rows: ``r, z, m, y, n``.
    """

    arch = "gru"
    segments = (("gate", 0), ("gate", 1), ("h", 2), ("out", 0), ("x", 2))

    def _named_rows(self) -> dict[str, slice]:
        N = self.N
        return {
            "rz": slice(0, 2 * N),
            "r": slice(0, N),
            "z": slice(N, 2 * N),
            "m": slice(2 * N, 3 * N),
            "n": self.rows[("x", 2)],
        }

    def _scratch_views(self, n: int) -> dict:
        return {"t1": self._t1[:n], "t2": self._t2[:n]}

    def _alloc(self) -> None:
        self._t1 = torch.empty(self.chunk, self.N, self.B, dtype=self.dtype)
        self._t2 = torch.empty_like(self._t1)

    def _activate(self, v: dict, s: int) -> None:
        v["rz"][s].sigmoid_()
        n = v["n"][s].addcmul_(v["r"][s], v["m"][s])
        _act_(n, self.activation)
        h, h_next = v["H"][s], v["H"][s + 1]
        torch.sub(h, n, out=h_next)
        h_next.mul_(v["z"][s]).add_(n)

    def _backward_chunk(self, v: dict) -> None:
        act, N = self.activation, self.N
        H, r_, z_, m_, n_ = v["H"], v["r"], v["z"], v["m"], v["n"]
        gh, t1, t2, D = v["gh"], v["t1"], v["t2"], v["D"]
        D_r, D_z, D_m = D[:, :N], D[:, N : 2 * N], D[:, 2 * N : 3 * N]
        D_n = D[:, self.rows[("x", 2)]]
        for s in range(self.T, 0, -1):
            r, z, m, n = r_[s - 1], z_[s - 1], m_[s - 1], n_[s - 1]
            torch.mul(gh, z, out=t1)  # carried directly to h_{s-1}
            torch.sub(gh, t1, out=t2)
            _act_backward(t2, n, D_n, act)  # dA_n = gh (1 - z) act'
            torch.sub(H[s - 1], n, out=t2)
            t2.mul_(gh)
            _sigmoid_bw(t2, z, grad_input=D_z)  # gh (h - n) z (1 - z)
            torch.mul(D_n, m, out=t2)
            _sigmoid_bw(t2, r, grad_input=D_r)  # dA_n m r (1 - r)
            torch.mul(D_n, r, out=D_m)  # recurrent candidate: dA_n r
            self._step_tail(v, s)
            if s > 1:
                gh.add_(t1)


class LSTMKernel(_StoredGatesKernel):
    """LSTM (packed gates i, f, g, o); the state is ``[h, c]``, the readout sees ``h``.

    Stored rows ``i, f, o, g, y`` (the three sigmoid gates adjacent, activated by one call)
    and the cell states ``c_0 .. c_T``; ``act(c_t)`` is recomputed in the backward pass
    (cheaper than storing and re-reading it).
    """

    arch = "lstm"
    segments = (("gate", 0), ("gate", 1), ("gate", 3), ("gate", 2), ("out", 0))
    extra_state_buffers = 1

    def _named_rows(self) -> dict[str, slice]:
        N = self.N
        return {
            "sig": slice(0, 3 * N),
            "i": slice(0, N),
            "f": slice(N, 2 * N),
            "o": slice(2 * N, 3 * N),
            "g": slice(3 * N, 4 * N),
        }

    def _alloc(self) -> None:
        P, T, B, N, Pc, dt = self.P, self.T, self.B, self.N, self.chunk, self.dtype
        self.C = buffers.zeros(P, T + 1, N, B, dtype=dt)
        self._y = torch.empty(Pc, N, B, dtype=dt)
        self._gc = torch.empty(Pc, N, B, dtype=dt)
        self._t1 = torch.empty(Pc, N, B, dtype=dt)
        self._q = torch.empty(Pc, 3 * N, B, dtype=dt)

    def _chunk_views(self, c0: int, c1: int) -> dict:
        v = super()._chunk_views(c0, c1)
        v["Cs"] = self.C[c0:c1].unbind(1)
        return v

    def _scratch_views(self, n: int) -> dict:
        return {"y": self._y[:n], "gc": self._gc[:n], "t1": self._t1[:n], "q": self._q[:n]}

    def _activate(self, v: dict, s: int) -> None:
        act = self.activation
        v["sig"][s].sigmoid_()
        g = _act_(v["g"][s], act)
        Cs, y = v["Cs"], v["y"]
        c = torch.mul(v["f"][s], Cs[s], out=Cs[s + 1])
        c.addcmul_(v["i"][s], g)
        _act_into(c, y, act)
        torch.mul(v["o"][s], y, out=v["H"][s + 1])

    def _backward_chunk(self, v: dict) -> None:
        act, N = self.activation, self.N
        sig, i_, f_, o_, g_, Cs = v["sig"], v["i"], v["f"], v["o"], v["g"], v["Cs"]
        gh, y, gc, t1, q = v["gh"], v["y"], v["gc"], v["t1"], v["q"]
        q_i, q_f, q_o = q[:, :N], q[:, N : 2 * N], q[:, 2 * N :]
        D_sig, D_g = v["D"][:, : 3 * N], v["D"][:, 3 * N : 4 * N]
        gc.zero_()
        for s in range(self.T, 0, -1):
            _act_into(Cs[s], y, act)
            torch.mul(gh, o_[s - 1], out=t1)
            _act_backward(t1, y, t1, act)
            gc.add_(t1)  # total gradient of c_s
            torch.mul(gc, g_[s - 1], out=q_i)
            torch.mul(gc, Cs[s - 1], out=q_f)
            torch.mul(gh, y, out=q_o)
            _sigmoid_bw(q, sig[s - 1], grad_input=D_sig)  # i, f, o gates at once
            torch.mul(gc, i_[s - 1], out=t1)
            _act_backward(t1, g_[s - 1], D_g, act)  # cell input
            gc.mul_(f_[s - 1])  # carried to c_{s-1} through f
            self._step_tail(v, s)
