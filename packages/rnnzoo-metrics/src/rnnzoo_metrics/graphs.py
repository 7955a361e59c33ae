"""Fixed-point graphs as rnnzoo-metrics consumes them (docs/architecture.md section 5)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError


@dataclass(frozen=True, eq=False)
class FixedPointGraph:
    """A directed, weighted graph whose nodes are fixed points of one network.

    Parameters
    ----------
    weights : array_like, shape (n, n)
        ``weights[i, j]``: weight of the edge from node ``i`` to node ``j`` (transition
        graph: probability that a perturbation of fixed point ``i`` settles on ``j``;
        line-attractor graph: nearest-neighbour adjacency).
    node_readout : array_like, shape (n, k)
        Position of each node in the network's output (readout) space.
    stable : array_like of bool, shape (n,), optional
        Linear stability of each node.
    """

    weights: np.ndarray
    node_readout: np.ndarray
    stable: np.ndarray | None = None

    def __post_init__(self) -> None:
        w = np.asarray(self.weights, dtype=float)
        r = np.asarray(self.node_readout, dtype=float)
        if r.ndim == 1:
            r = r[:, None]
        if w.ndim != 2 or w.shape[0] != w.shape[1]:
            raise InputError(f"graph weights must be square (n, n), got shape {w.shape}")
        if r.ndim != 2 or r.shape[0] != w.shape[0]:
            raise InputError(
                f"node_readout must be (n, k) with n = {w.shape[0]} nodes, got shape {r.shape}"
            )
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(r))):
            raise InputError("graph weights and node readouts must be finite (no NaN/inf)")
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "node_readout", r)
        if self.stable is not None:
            s = np.asarray(self.stable, dtype=bool)
            if s.shape != (w.shape[0],):
                raise InputError(f"stable must have shape ({w.shape[0]},), got {s.shape}")
            object.__setattr__(self, "stable", s)

    @property
    def n_nodes(self) -> int:
        """Number of nodes (fixed points)."""
        return int(self.weights.shape[0])
