"""Candidates on the boundaries between basins of attraction: the saddles trajectories miss.

The finder's starts come from the states a network visits on the task's inputs. A saddle
that separates several attractors can lie far from every trajectory: in a 3-bit flip-flop
the three-unstable saddle sits at the centre of the cube of the 8 stable corners, and the
two-unstable ones at the centres of its faces, where no trial goes. Saddles of a
multistable system lie on the boundaries between basins, and between attractors that are
arranged like the corners of a box they sit at (or near) the means of the attractors they
separate: the mean of two neighbouring corners is an edge saddle, of the four corners of a
face a face saddle, of all eight the centre.

So, once the stable points of a (network, condition) are known, the **means of subsets of
them** are extra starts: the centroid of all stable points first, then every pair, then
every triple and so on (increasing subset size, subsets in lexicographic order), up to
:data:`BOUNDARY_CAP` per (network, condition). For ``k`` stable points there are
``2^k − k − 1`` subsets of two or more; with ``k = 8`` (the flip-flop) that is 247, all
used. A condition with fewer than two stable points gets no extra start (sine, and cdi
contexts whose line attractor has one stable point). The extra starts go through the same
finder (same stages, thresholds, region of interest and deduplication) and are merged into
the points already found.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np

from rnnzoo_dynamics.fixed_points import FIXED, FinderOptions, FixedPoints, find_fixed_points
from rnnzoo_dynamics.linearize import STABILITY_EPS, Linearization, linearize
from rnnzoo_train.cells.base import Cell, Params

#: largest number of extra starts per (network, condition)
BOUNDARY_CAP = 256


def _subsets(k: int) -> Iterator[tuple[int, ...]]:
    """Every subset of ``range(k)`` with two or more members: all first, then by size."""
    if k < 2:
        return
    yield tuple(range(k))
    for size in range(2, k):
        yield from itertools.combinations(range(k), size)


def subset_means(stable: np.ndarray, cap: int = BOUNDARY_CAP) -> np.ndarray:
    """Means of subsets of the stable points of one (network, condition).

    Parameters
    ----------
    stable : ndarray, (k, S)
        The stable fixed points.
    cap : int
        At most this many means (default :data:`BOUNDARY_CAP`).

    Returns
    -------
    ndarray, (min(cap, 2^k − k − 1), S)
        The centroid of all ``k`` points first, then the means of every pair, triple, ...
        (``k < 2``: no row). Subsets are enumerated lazily, so the cost is bounded by
        ``cap`` whatever ``k``.
    """
    stable = np.asarray(stable, dtype=np.float64)
    if cap < 0:
        raise ValueError(f"the boundary cap must be >= 0, got {cap}")
    S = stable.shape[-1]
    rows = [stable[list(s)].mean(0) for s in itertools.islice(_subsets(len(stable)), cap)]
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), S)


def boundary_starts(
    states: np.ndarray,
    network: np.ndarray,
    condition: np.ndarray,
    stable: np.ndarray,
    n_networks: int,
    n_conditions: int,
    cap: int = BOUNDARY_CAP,
) -> tuple[np.ndarray, np.ndarray]:
    """Extra starts for every (network, condition), NaN-padded to a common count.

    Parameters
    ----------
    states : ndarray, (n, S)
        Every point found so far (all networks and conditions).
    network, condition : ndarray of int, (n,)
        Each point's network and condition.
    stable : ndarray of bool, (n,)
        Which points are stable fixed points (``kind == "fixed"``, no unstable mode).
    n_networks, n_conditions : int
    cap : int
        Most extra starts per (network, condition).

    Returns
    -------
    starts : ndarray, (P, C, K, S)
        :func:`subset_means` of each (network, condition)'s stable points, padded with NaN
        (the finder ignores non-finite starts); ``K = 0`` when no condition has two stable
        points.
    counts : ndarray of int, (P, C)
        Real (non-padding) starts per (network, condition).
    """
    S = states.shape[-1]
    means = {}
    counts = np.zeros((n_networks, n_conditions), dtype=np.int64)
    for i in range(n_networks):
        for c in range(n_conditions):
            pick = stable & (network == i) & (condition == c)
            m = subset_means(states[pick], cap)
            means[i, c] = m
            counts[i, c] = len(m)
    K = int(counts.max()) if counts.size else 0
    starts = np.full((n_networks, n_conditions, K, S), np.nan)
    for (i, c), m in means.items():
        starts[i, c, : len(m)] = m
    return starts, counts


def add_boundary_points(
    cell: Cell,
    params: Params,
    x_star: np.ndarray,
    points: FixedPoints,
    lin: Linearization,
    region_states: np.ndarray,
    cap: int = BOUNDARY_CAP,
    options: FinderOptions | None = None,
    stability_eps: float = STABILITY_EPS,
) -> tuple[FixedPoints, Linearization, np.ndarray]:
    """Run the finder from the means of subsets of each condition's stable points; merge.

    Parameters
    ----------
    cell, params, x_star
        As for :func:`~rnnzoo_dynamics.fixed_points.find_fixed_points`.
    points : FixedPoints
        The points found so far (first pass).
    lin : Linearization
        Their linearisation; a point is a seed when it is a fixed point (``kind ==
        "fixed"``) labelled ``stable`` (every ``|λ| < 1 − eps``; marginal points of a
        continuum are not separate attractors).
    region_states : ndarray
        The first pass's initial states: they set the region of interest, so that it stays
        the network's and not the hull of the few extra starts.
    cap : int
        Most extra starts per (network, condition) (:data:`BOUNDARY_CAP`).
    options : FinderOptions, optional
        The same finder options as the first pass (same thresholds and deduplication).
    stability_eps : float
        Tolerance of the relinearisation.

    Returns
    -------
    points : FixedPoints
        The first pass's points with the new ones merged in (:meth:`FixedPoints.merge`).
    lin : Linearization
        Their linearisation.
    gained : ndarray of int, (P,)
        Fixed points each network gained.
    """
    stable = (points.kind == FIXED) & (np.asarray(lin.stability) == "stable")
    n_conditions = 1 if np.ndim(x_star) == 1 else np.shape(x_star)[-2]
    extra, _ = boundary_starts(
        points.state,
        points.network,
        points.condition,
        stable,
        points.n_networks,
        n_conditions,
        cap,
    )
    gained = np.zeros(points.n_networks, dtype=np.int64)
    if extra.shape[2] == 0:
        return points, lin, gained
    found = find_fixed_points(cell, params, x_star, extra, options, region_states=region_states)
    if len(found) == 0:
        return points, lin, gained
    before = points.stats["n_fixed"].copy()
    points = points.merge(found)
    gained = points.stats["n_fixed"] - before
    return points, linearize(cell, params, points, stability_eps), gained
