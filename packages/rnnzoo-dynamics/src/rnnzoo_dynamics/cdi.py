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

**Spectra** (Fig. 3e): ``|λ|`` sorted in decreasing order, averaged over the context's points
on the line attractor.

**On the line attractor.** The paper averages both "over all fixed points on the line
attractor". A fixed or slow point of context ``c`` is on it when

1. it lies on the probe flow (``rnnzoo_dynamics.flow``): within ``distance`` (default 0.25)
   of the states the network visits on ``c``'s probe trials and settles into when the
   input stops, in units of the RMS size of those states — the *attractor points*, the
   curve the integrated value is held on (Fig. 3b, d); points farther away (e.g. the
   exactly marginal slow points relu networks have in regions they never visit) are not
   part of the computation; and
2. its leading mode is slow on the task's time scale: ``|λ₁|^(T−1)`` within a factor
   ``growth`` (default 4) of 1, i.e. ``|λ₁| ∈ [0.953, 1.049]`` for ``T = 30``. A line
   attractor is a continuum of marginally stable points (``λ₁ = 1``). A point whose
   leading mode grows faster (a saddle of a "staircase" of alternating stable and unstable
   points: ``1.3^29 ≈ 2,000``) has a linearisation that the state leaves long before
   ``T``; one whose leading mode decays faster (a saturated end of the attractor,
   ``|λ₁| ≈ 0.4``) does not integrate.

The unfiltered averages over every point of the context are kept as ``*_all``.
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


def line_attractor_points(
    lin: Linearization,
    flow_distance: np.ndarray,
    horizon: int,
    distance: float = 0.25,
    growth: float = 4.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Which points are attractor points and which are on the line attractor.

    Parameters
    ----------
    lin : Linearization
    flow_distance : ndarray, (n,)
        Relative distance of each point to its context's probe flow
        (:func:`rnnzoo_dynamics.flow.probe_flow`).
    horizon : int
        ``T``: steps over which the leading mode's growth is judged.
    distance : float
        Largest flow distance of an attractor point (0.25).
    growth : float
        ``|λ₁|^(T−1)`` must lie in ``[1/growth, growth]`` (4.0).

    Returns
    -------
    attractor : ndarray of bool, (n,)
        Points on the probe flow (the curve the line-attractor graph is built from).
    on_line : ndarray of bool, (n,)
        Attractor points whose leading mode is slow (the points the spectra and the mode
        ablation average over).
    """
    if growth <= 1 or distance < 0:
        raise ValueError(f"need growth > 1 and distance >= 0, got {growth} and {distance}")
    near = np.asarray(flow_distance, dtype=np.float64) <= distance
    mag = np.abs(np.asarray(lin.eig.eigenvalues))
    with np.errstate(all="ignore"):
        lead = np.where(
            np.isfinite(mag).any(-1), np.nanmax(np.where(np.isfinite(mag), mag, -1), -1), np.nan
        )
        slow = np.abs(np.log(lead)) * max(1, horizon - 1) <= np.log(growth)
    return near, near & slow


def _averages(lin, rows, cvec_i, channel, horizon, S):
    if len(rows) == 0:
        nan = np.full(S, np.nan)
        return nan, nan, nan.copy()
    spec = np.abs(lin.eig.eigenvalues[rows]).mean(0)
    cvec = np.broadcast_to(cvec_i, (len(rows), S))
    curves = ablation_curve(mode_contributions(lin, rows, cvec, channel, horizon))
    return spec, curves.mean(0), np.median(curves, axis=0)


def cdi_analysis(
    points: FixedPoints,
    lin: Linearization,
    readout_weights: np.ndarray,
    cued_channels: Sequence[int],
    network_ids: Sequence[str],
    horizon: int = 30,
    output: int = 0,
    network_coords: pd.DataFrame | None = None,
    on_line_attractor: np.ndarray | None = None,
    attractor: np.ndarray | None = None,
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
    on_line_attractor : ndarray of bool, (n_points,), optional
        The points on the line attractor (:func:`line_attractor_points`); the averages are
        over these. Default: every point.
    attractor : ndarray of bool, (n_points,), optional
        The attractor points (only counted, as ``n_attractor_points``).

    Returns
    -------
    Dataset
        ``spectrum (network, context, mode)`` mean sorted ``|λ|`` over the context's points
        on the line attractor; ``ablation (network, context, modes_kept)`` their mean
        ``y_m(T)`` with ``m = 1..S`` (the paper's average) and ``ablation_median`` (robust:
        a single point with an unstable mode grows as ``|λ|^(T−1)`` and dominates a mean);
        ``response_full`` / ``response_full_median`` ``(network, context)`` = ``y_S(T)``;
        NaN where a context has no point on the line attractor. The same over every point
        of the context: ``spectrum_all``, ``ablation_all``, ``ablation_median_all``,
        ``response_full_all``. Counts ``(network, context)``: ``n_points`` (every point),
        ``n_attractor_points``, ``n_line_attractor_points`` (averaged over).
    """
    P = points.n_networks
    C = len(cued_channels)
    n = len(points)
    S = lin.eig.eigenvalues.shape[1] if n else readout_weights.shape[1]
    on_line = np.ones(n, dtype=bool) if on_line_attractor is None else np.asarray(on_line_attractor)
    near = on_line if attractor is None else np.asarray(attractor)
    if on_line.shape != (n,) or near.shape != (n,):
        raise ValueError(f"on_line_attractor and attractor need one entry per point ({n})")
    out = {
        k: np.full((P, C, S), np.nan)
        for k in ("spec", "abl", "med", "spec_all", "abl_all", "med_all")
    }
    counts = {k: np.zeros((P, C), dtype=np.int64) for k in ("all", "near", "line")}
    for i in range(P):
        cvec = readout_weights[i, :, output]
        for c in range(C):
            mine = (points.network == i) & (points.condition == c)
            rows_all = np.nonzero(mine)[0]
            rows = np.nonzero(mine & on_line)[0]
            counts["all"][i, c] = len(rows_all)
            counts["near"][i, c] = int((mine & near).sum())
            counts["line"][i, c] = len(rows)
            ch = cued_channels[c]
            out["spec"][i, c], out["abl"][i, c], out["med"][i, c] = _averages(
                lin, rows, cvec, ch, horizon, S
            )
            out["spec_all"][i, c], out["abl_all"][i, c], out["med_all"][i, c] = _averages(
                lin, rows_all, cvec, ch, horizon, S
            )
    dims3 = ("network", "context", "mode")
    dimsa = ("network", "context", "modes_kept")
    dims2 = ("network", "context")
    ds = xr.Dataset(
        {
            "spectrum": (dims3, out["spec"]),
            "ablation": (dimsa, out["abl"]),
            "ablation_median": (dimsa, out["med"]),
            "response_full": (dims2, out["abl"][:, :, -1]),
            "response_full_median": (dims2, out["med"][:, :, -1]),
            "spectrum_all": (dims3, out["spec_all"]),
            "ablation_all": (dimsa, out["abl_all"]),
            "ablation_median_all": (dimsa, out["med_all"]),
            "response_full_all": (dims2, out["abl_all"][:, :, -1]),
            "n_points": (dims2, counts["all"]),
            "n_attractor_points": (dims2, counts["near"]),
            "n_line_attractor_points": (dims2, counts["line"]),
        },
        coords={
            "network": np.asarray(list(network_ids), dtype=object),
            "context": np.arange(C),
            "modes_kept": np.arange(1, S + 1),
            "cued_channel": ("context", np.asarray(cued_channels, dtype=np.int64)),
        },
        attrs={
            "description": "mean sorted |eigenvalue| spectrum (Fig. 3e) and linearised "
            "response to a unit pulse on the cued stream keeping the m largest modes (Fig. 3f), "
            "averaged over each context's fixed and slow points on the line attractor "
            "(*_all: over every point of the context)",
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
