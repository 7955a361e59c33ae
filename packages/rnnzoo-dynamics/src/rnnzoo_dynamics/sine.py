"""Sine-wave task: frequency of the linearised oscillation against the command (Fig. 2d, 2f).

For each input-dependent fixed point, the *leading oscillatory mode* is the eigenvalue of
``J`` with non-zero imaginary part (``|Im λ| > imag_tol``, default ``1e-8``) of largest
modulus; its frequency is ``|arg λ| / 2π`` in cycles per step, the unit of the commanded
``ω`` (DESIGN.md §2: a linearised oscillation at ``ω`` rotates by ``2πω`` radians per step).
A point without complex eigenvalues has frequency NaN.

One point represents each (network, condition): the true fixed point (``kind == "fixed"``;
slow points only if a condition has no fixed point) nearest to the centre of that condition's
probe trajectory when centres are given (the paper's "single fixed point in the middle of each
oscillatory trajectory"), otherwise the one with the lowest ``q``.
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
    points: FixedPoints, n_conditions: int, centres: np.ndarray | None = None
) -> np.ndarray:
    """Row of the point representing each (network, condition), ``(P, C)``; -1 if none."""
    P = points.n_networks
    out = np.full((P, n_conditions), -1, dtype=np.int64)
    for i in range(P):
        for c in range(n_conditions):
            rows = np.nonzero((points.network == i) & (points.condition == c))[0]
            if len(rows) == 0:
                continue
            fixed = rows[points.kind[rows] == FIXED]
            rows = fixed if len(fixed) else rows
            if centres is not None and np.isfinite(centres[i, c]).all():
                d = np.linalg.norm(points.state[rows] - centres[i, c], axis=1)
                out[i, c] = rows[np.argmin(d)]
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

    Returns
    -------
    Dataset
        ``frequency_linear (network, condition)`` (NaN where no oscillatory mode or no
        point), ``leading_eigenvalue``, ``leading_modulus``, ``n_points``, ``point`` (row in
        the points), and ``omega (condition)`` as a coordinate.
    """
    C = len(omega)
    rep = representative_points(points, C, centres)
    lam, freq = leading_oscillation(lin.eig.eigenvalues, imag_tol)
    valid = rep >= 0
    safe = np.where(valid, rep, 0)
    f = np.where(valid, freq[safe] if len(freq) else np.nan, np.nan)
    ll = np.where(valid, lam[safe] if len(lam) else np.nan, np.nan + 0j)
    counts = np.zeros((points.n_networks, C), dtype=np.int64)
    np.add.at(counts, (points.network, points.condition), 1)
    local = np.full_like(rep, -1)
    for i in range(points.n_networks):
        rows = np.nonzero(points.network == i)[0]
        local[i] = np.where(rep[i] >= 0, np.searchsorted(rows, np.maximum(rep[i], 0)), -1)
    ds = xr.Dataset(
        {
            "frequency_linear": (("network", "condition"), f),
            "leading_eigenvalue": (("network", "condition"), ll),
            "leading_modulus": (("network", "condition"), np.abs(ll)),
            "n_points": (("network", "condition"), counts),
            "point": (("network", "condition"), local),
        },
        coords={
            "network": np.asarray(list(network_ids), dtype=object),
            "omega": ("condition", np.asarray(omega, dtype=np.float64)),
        },
        attrs={
            "description": "frequency of the leading oscillatory mode of the linearisation "
            "at each input-dependent fixed point, cycles per step (paper Fig. 2f)",
            "imag_tol": imag_tol,
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
