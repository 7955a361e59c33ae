"""Context-dependent integration: eigenvalue spectra and mode ablation (Fig. 3e-f).

Around a fixed point ``h*`` of context ``c`` the linearised network is
``δh_t = J δh_{t-1} + b u_t``, ``y_t = cᵀ δh_t``, with ``b = ∂F/∂x`` for the cued stream of
context ``c`` and ``c`` the readout weights (zero on the LSTM's cell state). With the
biorthonormal decomposition ``J = Σ_k λ_k r_k l_kᴴ`` the output ``t`` steps after a unit
pulse ``u_1 = 1`` is

    y(t) = Σ_k (cᵀ r_k)(l_kᴴ b) λ_k^(t−1),

a sum of independent mode contributions. An ideal integrator has ``y(t) = 1`` for all ``t``
(the cdi target moves by exactly 1 per unit of cued input). **Mode ablation** (Fig. 3f):
modes are ordered by decreasing ``|λ|``; keeping the ``m`` largest (removing the others from
the smallest up) gives ``y_m(T)``, evaluated at the horizon ``T`` (default: the task's trial
length, 30). ``y_S(T)`` is the full linearised response. The real part is reported (the
imaginary parts of a complete conjugate pair cancel; when ``m`` splits a pair, the kept
member contributes its real part).

**Spectra** (Fig. 3e): ``|λ|`` sorted in decreasing order, averaged over the fixed and slow
points of the context.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from rnnzoo_dynamics.fixed_points import FixedPoints
from rnnzoo_dynamics.linearize import Linearization


def mode_contributions(
    lin: Linearization, rows: np.ndarray, readout: np.ndarray, channel: int, horizon: int
) -> np.ndarray:
    """Per-mode contribution ``(cᵀ r_k)(l_kᴴ b) λ_k^(T−1)`` at the given points, ``(n, S)``.

    Parameters
    ----------
    lin : Linearization
    rows : ndarray of int
        Points to use.
    readout : ndarray, (n, S)
        Readout vector ``c`` of each point's network, over the full state.
    channel : int
        Input channel of the unit pulse.
    horizon : int
        ``T``: the response is read ``T`` steps after the pulse (the pulse is step 1).
    """
    R = lin.eig.right[rows]  # (n, S, S)
    L = lin.eig.left[rows]
    lam = lin.eig.eigenvalues[rows]
    b = lin.input_jacobian[rows][:, :, channel]  # (n, S)
    gain_out = np.einsum("ns,nsk->nk", readout.astype(np.complex128), R)
    gain_in = np.einsum("nsk,ns->nk", L.conj(), b.astype(np.complex128))
    return gain_out * gain_in * lam ** (horizon - 1)


def ablation_curve(contrib: np.ndarray) -> np.ndarray:
    """``y_m = Re Σ_{k<m} contrib_k`` for ``m = 1..S`` (modes already ordered by ``|λ|``)."""
    return np.cumsum(contrib, axis=-1).real


def cdi_analysis(
    points: FixedPoints,
    lin: Linearization,
    readout_weights: np.ndarray,
    cued_channels: Sequence[int],
    network_ids: Sequence[str],
    horizon: int = 30,
    output: int = 0,
    network_coords: pd.DataFrame | None = None,
) -> xr.Dataset:
    """Sorted spectra and mode-ablation curves per network and context.

    Parameters
    ----------
    points, lin : FixedPoints, Linearization
        Fixed and slow points per context (condition ``c`` is context ``c``).
    readout_weights : ndarray, (P, S, n_outputs)
        ``W_out`` of every network, zero-padded over the state (LSTM cell state has no
        readout).
    cued_channels : sequence of int, (C,)
        Input channel of the stream cued by each context.
    network_ids : sequence of str
    horizon : int
        Steps after the pulse at which the output is read (default 30, the task's ``T``).
    output : int
        Readout channel (cdi has one).

    Returns
    -------
    Dataset
        ``spectrum (network, context, mode)`` mean sorted ``|λ|``;
        ``ablation (network, context, modes_kept)`` mean ``y_m(T)`` over the context's
        points with ``m = 1..S`` (the paper's average) and ``ablation_median`` (robust: a
        single point with an unstable mode ``|λ| > 1`` grows as ``|λ|^(T−1)`` and dominates a
        mean); ``response_full`` / ``response_full_median`` ``(network, context)`` =
        ``y_S(T)``; ``n_points (network, context)``.
    """
    P = points.n_networks
    C = len(cued_channels)
    S = lin.eig.eigenvalues.shape[1] if len(points) else readout_weights.shape[1]
    spec = np.full((P, C, S), np.nan)
    abl = np.full((P, C, S), np.nan)
    abl_med = np.full((P, C, S), np.nan)
    n_pts = np.zeros((P, C), dtype=np.int64)
    for i in range(P):
        for c in range(C):
            rows = np.nonzero((points.network == i) & (points.condition == c))[0]
            n_pts[i, c] = len(rows)
            if len(rows) == 0:
                continue
            spec[i, c] = np.abs(lin.eig.eigenvalues[rows]).mean(0)
            cvec = np.broadcast_to(readout_weights[i, :, output], (len(rows), S))
            contrib = mode_contributions(lin, rows, cvec, cued_channels[c], horizon)
            curves = ablation_curve(contrib)
            abl[i, c] = curves.mean(0)
            abl_med[i, c] = np.median(curves, axis=0)
    ds = xr.Dataset(
        {
            "spectrum": (("network", "context", "mode"), spec),
            "ablation": (("network", "context", "modes_kept"), abl),
            "ablation_median": (("network", "context", "modes_kept"), abl_med),
            "response_full": (("network", "context"), abl[:, :, -1]),
            "response_full_median": (("network", "context"), abl_med[:, :, -1]),
            "n_points": (("network", "context"), n_pts),
        },
        coords={
            "network": np.asarray(list(network_ids), dtype=object),
            "context": np.arange(C),
            "modes_kept": np.arange(1, S + 1),
            "cued_channel": ("context", np.asarray(cued_channels, dtype=np.int64)),
        },
        attrs={
            "description": "mean sorted |eigenvalue| spectrum (Fig. 3e) and linearised "
            "response to a unit pulse on the cued stream keeping the m largest modes (Fig. 3f)",
            "horizon": int(horizon),
        },
    )
    if network_coords is not None:
        ds = ds.assign_coords(
            {
                col: ("network", network_coords.loc[list(network_ids), col].to_numpy())
                for col in network_coords.columns
            }
        )
    return ds


def readout_weights(params: dict, state_size: int) -> np.ndarray:
    """``W_out`` zero-padded to the full state, ``(P, S, n_outputs)``."""
    W = np.asarray(
        params["W_out"].detach().double().numpy()
        if hasattr(params["W_out"], "detach")
        else params["W_out"],
        dtype=np.float64,
    )
    if W.ndim == 2:
        W = W[None]
    out = np.zeros((W.shape[0], state_size, W.shape[2]))
    out[:, : W.shape[1]] = W
    return out
