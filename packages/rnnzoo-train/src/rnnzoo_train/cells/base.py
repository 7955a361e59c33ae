"""The cell interface: one pure update function ``F(params, h, x) -> h_next`` per architecture.

This interface is shared by training, by the zoo reader (a ready-to-run cell for any stored
network) and by the dynamics package (fixed points, closed-form Jacobians). It is a contract
between packages: change it only additively.

Shapes (torch tensors, any floating dtype; float64 is used by the dynamics analyses)
---------------------------------------------------------------------------------------
A *population* of ``P`` networks of one cell type and width is evaluated at once:

- ``params``: ``dict[str, Tensor]``, every leaf of shape ``(P, *param_shape)``;
- ``h``: ``(P, B, S)`` with ``S = state_size`` (``2 * n_units`` for the LSTM, whose state is
  ``concat[h, c]``), ``B`` trials (or fixed-point candidates) per network;
- ``x``: ``(P, B, n_inputs)``.

A single network is the population ``P = 1`` (use :func:`unsqueeze_params` /
``tensor[None]``). Row-vector convention: pre-activations are ``x @ W_x + h @ W_h + b``, so
``W_x`` is ``(n_inputs, G * n_units)`` and ``W_h`` is ``(n_units, G * n_units)`` with ``G``
gate blocks in the order the concrete cell documents. The readout is
``y = readout_state(h) @ W_out + b_out`` with ``W_out`` ``(n_units, n_outputs)``; readout
parameters live in the same ``params`` dict as the recurrent ones.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import Tensor

from .catalog import ACTIVATIONS, ARCHITECTURES, DISPLAY_NAMES

__all__ = ["ACTIVATIONS", "ARCHITECTURES", "DISPLAY_NAMES", "Cell", "Params"]

Params = dict[str, Tensor]


class Cell(ABC):
    """A recurrent cell of fixed architecture, activation and sizes.

    Parameters
    ----------
    n_units : int
        Number of units ``N`` (the readout sees ``N`` values).
    n_inputs : int
        Input size ``M``.
    n_outputs : int
        Readout size ``K``.
    activation : {"tanh", "relu"}
        The non-gate point-wise nonlinearity; gates are always sigmoid.
    """

    arch: ClassVar[str]

    def __init__(self, n_units: int, n_inputs: int, n_outputs: int, activation: str = "tanh"):
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}"
            )
        self.n_units = int(n_units)
        self.n_inputs = int(n_inputs)
        self.n_outputs = int(n_outputs)
        self.activation = activation

    # -- sizes and parameters -------------------------------------------------------------
    @property
    def state_size(self) -> int:
        """Size ``S`` of the state vector (``n_units``; ``2 * n_units`` for the LSTM)."""
        return self.n_units

    @abstractmethod
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of every parameter of one network (recurrent and readout), by name."""

    @abstractmethod
    def init_params(self, generator: torch.Generator, dtype: torch.dtype = torch.float32) -> Params:
        """Initial parameters of ONE network (no population axis).

        Drawn from ``generator`` only, so a network's initial weights depend on its seed alone.
        """

    # -- the dynamics ---------------------------------------------------------------------
    @abstractmethod
    def step(self, params: Params, h: Tensor, x: Tensor) -> Tensor:
        """``F(params, h, x)``: the next state, ``(P, B, S)``."""

    def jacobian_h(self, params: Params, h: Tensor, x: Tensor) -> Tensor:
        """``dF/dh``, ``(P, B, S, S)`` with ``J[..., i, j] = dF_i / dh_j``.

        The zoo's cells override this with closed forms. The default differentiates
        :meth:`step` by batched autograd (:func:`rnnzoo_train.cells.autograd.autograd_jacobians`),
        so a cell without closed forms (a user's step function, an external cell) still works.
        """
        from .autograd import autograd_jacobians

        return autograd_jacobians(self.step, params, h, x)[0]

    def jacobian_x(self, params: Params, h: Tensor, x: Tensor) -> Tensor:
        """``dF/dx``, ``(P, B, S, n_inputs)``; autograd by default, as :meth:`jacobian_h`."""
        from .autograd import autograd_jacobians

        return autograd_jacobians(self.step, params, h, x)[1]

    def readout_state(self, h: Tensor) -> Tensor:
        """The part of the state the readout sees, ``(..., n_units)``."""
        return h[..., : self.n_units]

    def readout(self, params: Params, h: Tensor) -> Tensor:
        """Network output ``(P, B, n_outputs)`` for states ``h`` ``(P, B, S)``."""
        return torch.baddbmm(params["b_out"].unsqueeze(-2), self.readout_state(h), params["W_out"])

    def initial_state(
        self, n_networks: int, batch: int, dtype: torch.dtype = torch.float32
    ) -> Tensor:
        """The state ``h_0`` every trial starts from (zeros), ``(P, B, S)``."""
        return torch.zeros(n_networks, batch, self.state_size, dtype=dtype)

    def run(self, params: Params, inputs: Tensor, h0: Tensor | None = None) -> Tensor:
        """Iterate ``F`` over ``inputs`` ``(P, B, T, n_inputs)``; states ``(P, B, T, S)``.

        States are ``h_1..h_T`` (``h_0`` is not included). A plain loop: training uses its
        own fused kernels, this is the reference they are tested against.
        """
        P, B, T, _ = inputs.shape
        h = self.initial_state(P, B, inputs.dtype) if h0 is None else h0
        states = []
        for t in range(T):
            h = self.step(params, h, inputs[:, :, t])
            states.append(h)
        return torch.stack(states, dim=2)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_units={self.n_units}, n_inputs={self.n_inputs}, "
            f"n_outputs={self.n_outputs}, activation={self.activation!r})"
        )


def unsqueeze_params(params: Params) -> Params:
    """Add a population axis of size 1 to every parameter of one network."""
    return {k: v.unsqueeze(0) for k, v in params.items()}


def stack_params(many: list[Params]) -> Params:
    """Stack the parameters of several networks of one cell into a population."""
    return {k: torch.stack([p[k] for p in many]) for k in many[0]}
