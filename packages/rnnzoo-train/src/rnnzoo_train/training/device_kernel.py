"""Training kernel for any torch device (GPUs): the cell's own step, differentiated by autograd.

The fused kernels of :mod:`.kernels` and :mod:`.native` are organised for one CPU core (cache-
sized chunks, huge pages, C steps). On a GPU the opposite holds: a population's per-step GEMMs
are large enough to fill the device only when they are issued as a few big batched operations,
and hand-written BPTT buys nothing over autograd. :class:`AutogradKernel` therefore runs the
cell's pure update of :mod:`rnnzoo_train.cells` (``project_input`` once for the whole sequence,
then ``step_projected`` per step, batched over the population with ``torch.bmm``) and gets
gradients from ``torch.autograd.grad``. It has the interface of
:class:`~.kernels.SequenceKernel` (``forward``, ``d_outputs``, ``backward``, ``hidden``), so
:func:`~.engine.train_population` uses it unchanged; it computes the same function and the
same gradients as the CPU kernels (the tests compare them in float64 on the CPU, where this
kernel also runs: backend ``"autograd"``).

Layouts are the CPU kernels': inputs ``xa`` ``(P, T, M + 1, B)`` (a last row of ones),
outputs and ``d_outputs`` ``(P, T, K_out, B)``, :meth:`AutogradKernel.hidden` ``(P, T, N, B)``.
Inputs may live on the CPU; they are copied to the kernel's device.

On a CUDA device, :meth:`AutogradKernel.train_step` (forward, masked MSE and BPTT of one
training iteration) is captured once into a CUDA graph and replayed: a population's step is
bound by kernel launches (T steps x tens of small operations), and a replay launches them all
at once (measured 2.3-7.7x on an H200, ``docs/benchmarks.md``). The replay runs the same
kernels on the same memory, so it gives the numbers of the uncaptured step; a capture that
fails falls back to the uncaptured step with a warning, and ``RNNZOO_CUDA_GRAPHS=0`` turns
capture off.
"""

from __future__ import annotations

import logging
import os

import torch
from torch import Tensor

from rnnzoo_train.cells.base import Params

from .losses import masked_mse_and_grad

log = logging.getLogger(__name__)

#: "0" turns off CUDA-graph capture of the training step
GRAPHS_ENV = "RNNZOO_CUDA_GRAPHS"


def parse_device(device: str | torch.device | None) -> torch.device:
    """The torch device named by ``device`` (None: the CPU); a one-line error if malformed."""
    try:
        return torch.device(device if device is not None else "cpu")
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r} ({err}); use 'cpu' or 'cuda[:N]'") from None


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Like :func:`parse_device`, and a one-line error if this process cannot use it."""
    dev = parse_device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} asked for, but this torch ({torch.__version__}) sees no CUDA "
                "GPU; use --device cpu or install a CUDA build of torch"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r} does not exist: {torch.cuda.device_count()} CUDA device(s)"
            )
    return dev


class AutogradKernel:
    """Forward over a sequence and autograd BPTT for one cell, population and batch size.

    Parameters
    ----------
    cell : Cell
        The cell (any architecture of :mod:`rnnzoo_train.cells`, a plugin's included: a
        :class:`~rnnzoo_train.cells.packed.PackedCell` projects the whole input sequence in
        one GEMM, any other cell runs its ``step``).
    n_networks, batch, n_steps : int
        Population size ``P``, trials ``B`` per network and sequence length ``T``.
    dtype : torch.dtype
        Float type of the computation.
    chunk : int, optional
        Ignored (accepted for the interface of :func:`~.selection.make_kernel`).
    device : str or torch.device
        Where the computation runs (``"cuda"``, ``"cuda:1"``, ``"cpu"``).
    """

    backend = "autograd"

    def __init__(
        self,
        cell,
        n_networks: int,
        batch: int,
        n_steps: int,
        dtype: torch.dtype = torch.float32,
        chunk: int | None = None,
        device: str | torch.device = "cpu",
    ):
        self.cell = cell
        self.arch = cell.arch
        self.activation = cell.activation
        self.P, self.B, self.T = int(n_networks), int(batch), int(n_steps)
        self.N, self.M, self.K_out = cell.n_units, cell.n_inputs, cell.n_outputs
        self.dtype = dtype
        self.device = resolve_device(device)
        self.chunk = 1
        self.d_outputs = torch.zeros(
            self.P, self.T, self.K_out, self.B, dtype=dtype, device=self.device
        )
        self._xa = torch.empty(self.P, self.T, self.M + 1, self.B, dtype=dtype, device=self.device)
        self._leaves: Params | None = None
        self._y: Tensor | None = None
        self._states: Tensor | None = None
        #: CUDA-graph capture of train_step (None: not captured yet)
        self.use_graphs = (
            self.device.type == "cuda" and os.environ.get(GRAPHS_ENV, "1").strip() != "0"
        )
        self._graph = None
        self._graph_key: tuple = ()
        self._graph_out: tuple[Tensor, dict[str, Tensor]] | None = None
        self._stage: Tensor | None = None

    @classmethod
    def bytes_per_network(
        cls, n_units: int, n_gates: int, batch: int, n_steps: int, n_io: int = 8
    ) -> int:
        """Approximate memory autograd keeps for one network of the population (float32).

        Per step: the projected input and pre-activations of every gate block, their
        activations and the state (``3 G + 2`` rows of ``N``), plus inputs and outputs. An
        estimate for sizing work units, like :meth:`.kernels.SequenceKernel.bytes_per_network`.
        """
        rows = (3 * int(n_gates) + 2) * int(n_units) + 3 * n_io
        return 4 * (int(n_steps) + 1) * int(batch) * rows

    def forward(self, params: Params, xa: Tensor) -> Tensor:
        """Outputs ``(P, T, K_out, B)`` of every network on inputs ``xa``; keeps the graph.

        Under ``torch.no_grad()`` no graph is kept (evaluation).
        """
        self._xa.copy_(xa, non_blocking=True)
        x = self._xa[:, :, :-1, :].permute(0, 3, 1, 2)  # (P, B, T, M)
        track = torch.is_grad_enabled()
        leaves = params
        if track:
            leaves = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        cell = self.cell
        packed = hasattr(cell, "project_input") and hasattr(cell, "step_projected")
        if packed:  # (P, B, T, G*N): one GEMM for the whole sequence
            u, step = cell.project_input(leaves, x), cell.step_projected
        else:  # any other Cell (a plugin's): its step on the raw input
            u, step = x, cell.step
        h = torch.zeros(self.P, self.B, cell.state_size, dtype=self.dtype, device=self.device)
        states = []
        # unbind, not u[:, :, t]: the backward of T selects would write T full-size gradients
        # of u (O(T^2) memory traffic); unbind's backward stacks the T slices once
        for u_t in u.unbind(2):
            h = step(leaves, h, u_t)
            states.append(h)
        hs = torch.stack(states, dim=2)  # (P, B, T, S)
        flat = hs.reshape(self.P, self.B * self.T, -1)
        y = cell.readout(leaves, flat).reshape(self.P, self.B, self.T, self.K_out)
        self._states = hs.detach()
        self._leaves, self._y = (leaves, y) if track else (None, None)
        return y.detach().permute(0, 2, 3, 1)

    def backward(self, params: Params, d_outputs: Tensor | None = None) -> dict[str, Tensor]:
        """Gradients of ``sum(d_outputs * outputs)`` for every parameter, ``(P, ...)`` each.

        ``d_outputs`` defaults to the kernel's buffer, which
        :func:`~.losses.masked_mse_and_grad` fills. Frees the graph of the last forward.
        """
        if self._y is None or self._leaves is None:
            raise RuntimeError("backward() needs a forward() with gradients enabled first")
        grad_y = (self.d_outputs if d_outputs is None else d_outputs).permute(0, 3, 1, 2)
        names = list(self._leaves)
        grads = torch.autograd.grad(
            self._y, [self._leaves[k] for k in names], grad_outputs=grad_y.to(self._y.dtype)
        )
        self._y = self._leaves = None
        return dict(zip(names, grads, strict=True))

    def train_step(
        self, params: Params, xa: Tensor, targets: Tensor, mask: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """One training iteration's forward, masked MSE and BPTT: ``(loss (P,), gradients)``.

        ``targets`` and ``mask`` are ``(P, T, K_out, B)`` on the kernel's device. On CUDA the
        step is captured into a CUDA graph on first use and replayed after (module
        docstring); ``params``, ``targets`` and ``mask`` must then be the same tensors at
        every call (updated in place), and the returned tensors are overwritten by the next
        call.
        """
        if not self.use_graphs:
            return self._step(params, xa, targets, mask)
        if self._stage is None:
            self._stage = torch.empty_like(self._xa)
        self._stage.copy_(xa)
        key = (*(v.data_ptr() for v in params.values()), targets.data_ptr(), mask.data_ptr())
        if self._graph is None or key != self._graph_key:
            try:
                self._capture(params, targets, mask)
            except RuntimeError as err:  # e.g. an operation that cannot be captured
                log.warning("CUDA-graph capture failed (%s); training without graphs", err)
                self.use_graphs, self._graph = False, None
                return self._step(params, self._stage, targets, mask)
            self._graph_key = key
        self._graph.replay()
        return self._graph_out

    def _step(self, params: Params, xa: Tensor, targets: Tensor, mask: Tensor):
        outputs = self.forward(params, xa)
        loss = masked_mse_and_grad(outputs, targets, mask, self.d_outputs)
        return loss, self.backward(params)

    def _capture(self, params: Params, targets: Tensor, mask: Tensor) -> None:
        """Warm up on a side stream (as CUDA graphs require), then capture :meth:`_step`."""
        main = torch.cuda.current_stream(self.device)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(main)
        with torch.cuda.stream(side):
            for _ in range(3):
                self._step(params, self._stage, targets, mask)
        main.wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = self._step(params, self._stage, targets, mask)
        self._graph, self._graph_out = graph, out

    def hidden(self) -> Tensor:
        """States ``h_1 .. h_T`` (readout part) of the last forward, ``(P, T, N, B)``."""
        if self._states is None:
            raise RuntimeError("hidden() needs a forward() first")
        return self.cell.readout_state(self._states).permute(0, 2, 3, 1)

    def outputs(self) -> Tensor:
        """Outputs of the last forward with gradients, ``(P, T, K_out, B)``."""
        if self._y is None:
            raise RuntimeError("outputs() needs a forward() with gradients enabled first")
        return self._y.detach().permute(0, 2, 3, 1)
