"""Distances between fixed-point graphs (paper section 3, footnote 5, and Discussion)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from ..errors import InputError, MetricsError
from ..graphs import FixedPointGraph
from ..metric import Metric


def lexicographic_order(readout: np.ndarray, decimals: int | None) -> np.ndarray:
    """Node order: lexicographic by readout (first coordinate first).

    Coordinates are first compared rounded to ``decimals`` (so that 0.999 and 1.001 tie
    and the next coordinate decides), then at full precision to break remaining ties.
    """
    cols = [readout[:, c] for c in range(readout.shape[1])]
    keys = cols[::-1]
    if decimals is not None:
        keys = keys + [np.round(c, decimals) for c in cols[::-1]]
    return np.lexsort(keys) if keys else np.arange(readout.shape[0])


class FixedPointGraphDistance(Metric):
    name = "fixed-point-graph"
    input_kind = "graph"
    summary = (
        "Euclidean (Frobenius) distance between edge-weight matrices with nodes sorted "
        "lexicographically by readout; NaN when node counts differ (paper, footnote 5)"
    )
    reference = "Maheswaranathan et al. 2019, section 3 and footnote 5"
    parameters = {"decimals": 1}

    def prepare(self, g: FixedPointGraph) -> np.ndarray:
        order = lexicographic_order(g.node_readout, self.params["decimals"])
        return g.weights[np.ix_(order, order)]

    def pair(self, a: np.ndarray, b: np.ndarray) -> float:
        if a.shape != b.shape:
            return float("nan")
        return float(np.linalg.norm(a - b))


def node_descriptors(g: FixedPointGraph) -> np.ndarray:
    """Per-node descriptor ``(r_i, sum_j w_ij r_j, w_ii, sum_j w_ij)``, shape (n, 2k+2)."""
    w, r = g.weights, g.node_readout
    return np.concatenate([r, w @ r, np.diag(w)[:, None], w.sum(axis=1, keepdims=True)], 1)


class MatchedFixedPointGraphDistance(Metric):
    name = "fixed-point-graph-matched"
    input_kind = "graph"
    is_metric = True
    summary = (
        "optimal one-to-one matching of nodes (descriptor: readout position, outgoing "
        "flow, self-loop, out-weight) with cost c per unmatched node; defined for "
        "different node counts and a true (pseudo)metric"
    )
    reference = "rnnzoo (docs/metrics.md); answers the paper's Discussion"
    parameters = {"unmatched_cost": 1.0}

    def check_params(self) -> None:
        c = self.params["unmatched_cost"]
        if not (isinstance(c, (int, float)) and c > 0):
            raise MetricsError(f"{self.name}: unmatched_cost must be > 0, got {c!r}")

    def prepare(self, g: FixedPointGraph) -> np.ndarray:
        return node_descriptors(g)

    def pair(self, a: np.ndarray, b: np.ndarray) -> float:
        c = float(self.params["unmatched_cost"])
        na, nb = a.shape[0], b.shape[0]
        if na and nb and a.shape[1] != b.shape[1]:
            raise InputError(
                f"graphs have readouts of different dimension ({(a.shape[1] - 2) // 2} "
                f"and {(b.shape[1] - 2) // 2}); compare networks of the same task"
            )
        cost = np.zeros((na + nb, nb + na))
        if na and nb:
            cost[:na, :nb] = np.minimum(cdist(a, b), 2.0 * c)
        cost[:na, nb:] = c  # node of a left unmatched
        cost[na:, :nb] = c  # node of b left unmatched
        rows, cols = linear_sum_assignment(cost)
        return float(cost[rows, cols].sum())
