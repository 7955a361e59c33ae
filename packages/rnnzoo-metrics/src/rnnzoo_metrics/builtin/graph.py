"""Distances between fixed-point graphs (paper section 3, footnote 5, and Discussion)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from ..errors import InputError, MetricsError
from ..graphs import FixedPointGraph
from ..metric import Metric


def _exponent(*arrays: np.ndarray) -> int:
    """``e`` with every entry below ``2**e`` in magnitude (0 for empty or all-zero input).

    Dividing by ``2**e`` is exact, so norms and distances computed from the scaled arrays
    and multiplied back are exactly those of the originals, without the overflow (or
    underflow) of squaring entries beyond ~1e154 (or below ~1e-154).
    """
    top = max((float(np.max(np.abs(a))) for a in arrays if a.size), default=0.0)
    return int(np.frexp(top)[1]) if top > 0 else 0


def _overflow(what: str) -> InputError:
    return InputError(f"{what} exceeds the float64 range (overflow); rescale the graphs")


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
        e = _exponent(a, b)
        with np.errstate(over="ignore"):  # checked below
            d = float(np.ldexp(np.linalg.norm(np.ldexp(a, -e) - np.ldexp(b, -e)), e))
        if not np.isfinite(d):
            raise _overflow("the Frobenius distance between two edge-weight matrices")
        return d


def node_descriptors(g: FixedPointGraph) -> np.ndarray:
    """Per-node descriptor ``(r_i, sum_j w_ij r_j, w_ii, sum_j w_ij)``, shape (n, 2k+2)."""
    w, r = g.weights, g.node_readout
    e = _exponent(r)
    with np.errstate(over="ignore", invalid="ignore"):  # checked below
        flow = np.ldexp(w @ np.ldexp(r, -e), e)  # exact scaling: no overflow on the way
    out = np.concatenate([r, flow, np.diag(w)[:, None], w.sum(axis=1, keepdims=True)], 1)
    if not np.all(np.isfinite(out)):
        raise _overflow("a node's outgoing flow (weights x readout positions)")
    return out


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
        if not (isinstance(c, (int, float)) and 0 < c < 1e300):
            raise MetricsError(f"{self.name}: unmatched_cost must be > 0 and finite, got {c!r}")

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
            e = _exponent(a, b)  # exact: cdist of entries beyond 1e154 would overflow
            with np.errstate(over="ignore"):  # inf here is > 2c: the cap below is exact
                dist = np.ldexp(cdist(np.ldexp(a, -e), np.ldexp(b, -e)), e)
            cost[:na, :nb] = np.minimum(dist, 2.0 * c)  # an overflow here is > 2c anyway
        cost[:na, nb:] = c  # node of a left unmatched
        cost[na:, :nb] = c  # node of b left unmatched
        rows, cols = linear_sum_assignment(cost)
        total = float(cost[rows, cols].sum())
        if not np.isfinite(total):
            raise _overflow("the matching cost")
        return total
