"""Sine-wave task: frequency of the linearised oscillation against the command (Fig. 2d, 2f).

For each input-dependent fixed point, the *leading oscillatory mode* is the eigenvalue of
``J`` with non-zero imaginary part (``|Im λ| > imag_tol``, default ``1e-8``) of largest
modulus; its frequency is ``|arg λ| / 2π`` in cycles per step, the unit of the commanded
``ω`` (DESIGN.md §2: a linearised oscillation at ``ω`` rotates by ``2πω`` radians per step).
A point without complex eigenvalues has frequency NaN.

**Points near the orbit.** The paper finds "a single input-dependent fixed point" per
frequency, "in the middle of each oscillatory trajectory". A point is *near the orbit* when
its flow distance (``rnnzoo_dynamics.flow``: distance to the probe trajectory of its
frequency, continued for 100 steps, over the trajectory's RMS radius ``R``) is at most
``distance`` (default 2.0): the centre of a circular orbit is at distance ``R`` from it, of
an elliptical one at less. ``n_points`` counts the true fixed points near the orbit (the
paper's claim); slow points and far fixed points are counted separately. On the demo zoo the
extra points were slow points (``q`` 1e-11 to 1e-6, not fixed points), slow points on top of
a fixed point, and exactly marginal relu slow points 2.5-5.5 ``R`` from the orbit; two
Vanilla-relu networks have 2-3 genuine fixed points near the orbit at some frequencies.

One point represents each (network, condition), the nearest to the centre of that
condition's probe trajectory (when centres are given; otherwise the lowest ``q``) among, in
this order of preference: true fixed points near the orbit, slow points near it, fixed
points farther away, slow points farther away. Its kind and flow distance are reported.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from rnnzoo_dynamics.fixed_points import FIXED, FixedPoints
from rnnzoo_dynamics.linearize import Linearization

IMAG_TOL = 1e-8


def leading_oscillation(
    eigenvalues: np.ndarray, imag_tol: float = IMAG_TOL
) -> tuple[np.ndarray, np.ndarray]:
    """Leading oscillatory eigenvalue and its frequency (cycles per step) per point.

    Parameters
    ----------
    eigenvalues : ndarray of complex, (n, S)
        NaN entries are ignored.
    imag_tol : float
        Eigenvalues with ``|Im λ| ≤ imag_tol`` are not oscillatory.

    Returns
    -------
    eigenvalue : ndarray of complex, (n,)
        With positive imaginary part; NaN where there is none.
    frequency : ndarray, (n,)
        ``arg(λ) / 2π`` in ``(0, 0.5)``; NaN where there is none.
    """
    lam = np.asarray(eigenvalues, dtype=np.complex128)
    ok = np.isfinite(lam) & (lam.imag > imag_tol)
    mag = np.where(ok, np.abs(lam), -np.inf)
    best = mag.argmax(-1) if lam.shape[-1] else np.zeros(len(lam), dtype=np.int64)
    chosen = np.take_along_axis(lam, best[:, None], -1)[:, 0] if lam.size else lam[:, 0]
    has = ok.any(-1)
    chosen = np.where(has, chosen, np.nan + 0j)
    freq = np.where(has, np.angle(chosen) / (2 * np.pi), np.nan)
    return chosen, freq


def representative_points(
    points: FixedPoints,
    n_conditions: int,
    centres: np.ndarray | None = None,
    flow_distance: np.ndarray | None = None,
    distance: float = 2.0,
) -> np.ndarray:
    """Row of the point representing each (network, condition), ``(P, C)``; -1 if none.

    Preference: fixed near the orbit, slow near it, fixed farther, slow farther (a point is
    near when ``flow_distance <= distance``; every point is near without flow distances).
    Within a tier, the point nearest the condition's centre; without centres, the first
    fixed point listed (by position: a fixed point's ``q`` is rounding noise) or the slowest
    slow point.
    """
    P = points.n_networks
    out = np.full((P, n_conditions), -1, dtype=np.int64)
    near = (
        np.ones(len(points), dtype=bool)
        if flow_distance is None
        else np.asarray(flow_distance) <= distance
    )
    fixed = points.kind == FIXED
    tiers = (near & fixed, near & ~fixed, ~near & fixed, ~near & ~fixed)
    for i in range(P):
        for c in range(n_conditions):
            mine = (points.network == i) & (points.condition == c)
            for tier in tiers:
                rows = np.nonzero(mine & tier)[0]
                if len(rows):
                    break
            if len(rows) == 0:
                continue
            if centres is not None and np.isfinite(centres[i, c]).all():
                d = np.linalg.norm(points.state[rows] - centres[i, c], axis=1)
                out[i, c] = rows[np.argmin(d)]
            elif points.kind[rows[0]] == FIXED:  # q is rounding noise: the first listed
                out[i, c] = rows[0]
            else:
                out[i, c] = rows[np.argmin(points.q[rows])]
    return out


def sine_frequencies(
    points: FixedPoints,
    lin: Linearization,
    omega: np.ndarray,
    network_ids: Sequence[str],
    centres: np.ndarray | None = None,
    network_coords: pd.DataFrame | None = None,
    imag_tol: float = IMAG_TOL,
    flow_distance: np.ndarray | None = None,
    distance: float = 2.0,
) -> xr.Dataset:
    """Linearised frequency against command, per network and condition (Fig. 2f).

    Parameters
    ----------
    points, lin : FixedPoints, Linearization
    omega : ndarray, (C,)
        Commanded frequency of each condition, cycles per step.
    network_ids : sequence of str, (P,)
    centres : ndarray, (P, C, S), optional
        Mean state of each condition's probe trajectory (picks the central fixed point).
    network_coords : DataFrame, optional
        Index coordinates (arch, activation, ...) indexed by network id.
    flow_distance : ndarray, (n_points,), optional
        Each point's flow distance (:func:`rnnzoo_dynamics.flow.probe_flow`); without it
        every point counts as near the orbit.
    distance : float
        Largest flow distance of a point near the orbit (2.0).

    Returns
    -------
    Dataset
        ``(network, condition)``: ``frequency_linear`` (NaN where no oscillatory mode or no
        point), ``leading_eigenvalue``, ``leading_modulus``, ``n_points`` (true fixed points
        near the orbit), ``n_slow_points`` (slow points, near or not), ``n_far_points``
        (fixed points farther from the orbit), ``n_points_all`` (every fixed and slow point),
        ``point`` (the representative's position among its network's points),
        ``point_kind`` (``fixed`` / ``slow`` / ``""``) and ``point_flow_distance``; and
        ``omega (condition)`` as a coordinate.
    """
    C = len(omega)
    rep = representative_points(points, C, centres, flow_distance, distance)
    lam, freq = leading_oscillation(lin.eig.eigenvalues, imag_tol)
    valid = rep >= 0
    safe = np.where(valid, rep, 0)
    f = np.where(valid, freq[safe] if len(freq) else np.nan, np.nan)
    ll = np.where(valid, lam[safe] if len(lam) else np.nan, np.nan + 0j)
    fd = np.zeros(len(points)) if flow_distance is None else np.asarray(flow_distance, float)
    near = fd <= distance
    fixed = points.kind == FIXED

    def count(mask: np.ndarray) -> np.ndarray:
        out = np.zeros((points.n_networks, C), dtype=np.int64)
        np.add.at(out, (points.network[mask], points.condition[mask]), 1)
        return out

    kind = np.where(valid, np.asarray(points.kind, dtype=object)[safe] if len(points) else "", "")
    point_fd = np.where(valid, fd[safe] if len(points) else np.nan, np.nan)
    local = np.full_like(rep, -1)
    for i in range(points.n_networks):
        rows = np.nonzero(points.network == i)[0]
        local[i] = np.where(rep[i] >= 0, np.searchsorted(rows, np.maximum(rep[i], 0)), -1)
    ds = xr.Dataset(
        {
            "frequency_linear": (("network", "condition"), f),
            "leading_eigenvalue": (("network", "condition"), ll),
            "leading_modulus": (("network", "condition"), np.abs(ll)),
            "n_points": (("network", "condition"), count(fixed & near)),
            "n_slow_points": (("network", "condition"), count(~fixed)),
            "n_far_points": (("network", "condition"), count(fixed & ~near)),
            "n_points_all": (("network", "condition"), count(np.ones(len(points), bool))),
            "point": (("network", "condition"), local),
            "point_kind": (("network", "condition"), kind.astype(object)),
            "point_flow_distance": (("network", "condition"), point_fd),
        },
        coords={
            "network": np.asarray(list(network_ids), dtype=object),
            "omega": ("condition", np.asarray(omega, dtype=np.float64)),
        },
        attrs={
            "description": "frequency of the leading oscillatory mode of the linearisation "
            "at each input-dependent fixed point, cycles per step (paper Fig. 2f)",
            "imag_tol": imag_tol,
            "near_orbit_distance": distance,
        },
    )
    if network_coords is not None:
        ds = ds.assign_coords(
            {
                c: ("network", network_coords.loc[list(network_ids), c].to_numpy())
                for c in network_coords.columns
            }
        )
    return ds
