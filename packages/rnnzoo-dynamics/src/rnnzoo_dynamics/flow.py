"""The probe flow: where a network's states go on the probe inputs, and then at rest.

A fixed point matters for a task when the network's states come near it. For a condition
``c`` (a static input ``x*_c``), the **probe flow** is every state visited on ``c``'s probe
trials, followed forward under ``x*_c`` alone (the time-varying input removed, as when the
fixed points are found) for ``steps`` more steps (default 100): the states the network
visits while doing the task, and where they settle when the input stops. For cdi this
traces the line attractor the integrated value is held on; for sine (whose input is static
already) it continues the oscillation; for flip-flop it runs into the attractors.

The **flow distance** of a fixed point is its distance to the nearest state of that flow,
divided by ``R``, the root-mean-square distance of the condition's visited states from their
mean (the size of the probe responses, so the number is comparable across networks, widths
and architectures). At most ``max_states`` visited states (evenly spaced over the trials and
time steps) start the relaxation; the distance is tracked at every step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rnnzoo_dynamics._batch import params_as
from rnnzoo_dynamics.fixed_points import FixedPoints, _population_params
from rnnzoo_train.cells.base import Cell, Params

#: relaxation steps under ``x*`` after the probe states (default)
FLOW_STEPS = 100
#: most visited states per condition that start the relaxation (default)
FLOW_STATES = 1024


@dataclass
class ProbeFlow:
    """Flow distances of a population's points.

    Attributes
    ----------
    distance : ndarray, (n_points,)
        Flow distance of every point (relative to ``radius``); ``inf`` when the network has no
        finite visited state for the point's condition.
    radius : ndarray, (P, C)
        ``R``: RMS distance of each condition's visited states from their mean.
    """

    distance: np.ndarray
    radius: np.ndarray


def _subsample(n: int, k: int) -> np.ndarray:
    if n <= k:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(np.int64))


def nearest_distance(
    points: torch.Tensor, states: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """Exact Euclidean distance from every point to its nearest valid state.

    Parameters
    ----------
    points : Tensor, (P, m, S)
    states : Tensor, (P, n, S)
    valid : Tensor of bool, (P, n)
        States that count (the others are ignored).

    Returns
    -------
    Tensor, (P, m)
        ``min_j ||points[p, i] - states[p, j]||`` over valid ``j`` (``inf`` if none).

    Notes
    -----
    The expansion ``|a|^2 + |b|^2 - 2 a.b`` (a matrix product, what ``torch.cdist`` uses for
    large inputs) is fast but loses half the digits near zero: for ``a = b`` it returns about
    ``sqrt(eps) |a|`` (1.8e-8 for unit-size states on one CPU, another value on another CPU's
    BLAS) instead of 0. So the expansion only selects candidates. With ``S`` terms per dot
    product, each expanded squared distance is within ``(2S + 8) eps (|a|^2 + max|b|^2)`` of
    the true one (the rounding bound of a length-``S`` dot product, in any summation order),
    so every state within twice that of the smallest expanded value may be the nearest one.
    The distances of those candidates (usually one per point) are then computed directly from
    the differences, which is exact to rounding.
    """
    P, m, S = points.shape
    h = torch.where(valid.unsqueeze(-1), states, 0.0)
    hn = (h * h).sum(-1)  # (P, n)
    pn = (points * points).sum(-1)  # (P, m)
    # |b|^2 - 2 a.b: the squared distance less |a|^2, which does not change the nearest state
    e = torch.baddbmm(
        torch.where(valid, hn, torch.inf).unsqueeze(1), points, h.transpose(1, 2), alpha=-2.0
    )
    hmax = hn.amax(-1, keepdim=True) if hn.shape[-1] else torch.zeros(P, 1, dtype=hn.dtype)
    band = 2 * (2 * S + 8) * torch.finfo(points.dtype).eps * (pn + hmax)  # (P, m)
    candidate = e <= (e.amin(-1) + band).unsqueeze(-1)  # (P, m, n); inf <= inf: no valid state
    candidate &= valid.unsqueeze(1)
    p, i, j = candidate.nonzero(as_tuple=True)
    exact = (points[p, i] - h[p, j]).square().sum(-1).sqrt()
    best = torch.full((P * m,), torch.inf, dtype=points.dtype)
    best = best.scatter_reduce(0, p * m + i, exact, reduce="amin")
    return best.reshape(P, m)


def probe_flow(
    cell: Cell,
    params: Params,
    trajectories: np.ndarray,
    points: FixedPoints,
    groups: list[np.ndarray] | None = None,
    steps: int = FLOW_STEPS,
    max_states: int = FLOW_STATES,
) -> ProbeFlow:
    """Flow distance of every point of ``points`` (see the module docstring).

    Parameters
    ----------
    cell : Cell
    params : dict of str to Tensor
        Population parameters ``(P, ...)``.
    trajectories : ndarray, (P, trials, T, S)
        Full states on the probe inputs (``initial_states.trajectories``).
    points : FixedPoints
        The population's points; ``points.x_star`` gives each condition's static input.
    groups : list of ndarray, optional
        Probe trials of each condition (``initial_states.condition_trials``); default: every
        trial for every condition.
    steps : int
        Relaxation steps under ``x*`` (100).
    max_states : int
        Most visited states per condition that start the relaxation (1,024).

    Returns
    -------
    ProbeFlow
    """
    params = params_as(_population_params(cell, params), torch.float64)
    traj = np.asarray(trajectories, dtype=np.float64)
    P, n_trials, _, S = traj.shape
    x_all = np.asarray(points.x_star, dtype=np.float64)
    C = x_all.shape[-2]
    distance = np.full(len(points), np.inf)
    radius = np.full((P, C), np.nan)
    for c in range(C):
        trials = np.arange(n_trials) if groups is None else np.asarray(groups[c])
        visited = traj[:, trials].reshape(P, -1, S)
        finite = np.isfinite(visited).all(-1)
        for i in range(P):
            ok = visited[i][finite[i]]
            if len(ok):
                radius[i, c] = float(np.sqrt(((ok - ok.mean(0)) ** 2).sum(1).mean()))
        rows = [np.nonzero((points.network == i) & (points.condition == c))[0] for i in range(P)]
        m = max((len(r) for r in rows), default=0)
        if m == 0:
            continue
        pick = _subsample(visited.shape[1], max_states)
        h = torch.as_tensor(np.nan_to_num(visited[:, pick], nan=0.0, posinf=0.0, neginf=0.0))
        valid = torch.as_tensor(finite[:, pick])  # (P, n)
        pts = torch.zeros(P, m, S, dtype=torch.float64)
        for i, r in enumerate(rows):
            pts[i, : len(r)] = torch.as_tensor(points.state[r])
        x = x_all[c] if x_all.ndim == 2 else x_all[:, c]
        xb = torch.as_tensor(np.broadcast_to(x, (P, x_all.shape[-1])).copy())
        xb = xb.unsqueeze(1).expand(-1, h.shape[1], -1)
        best = torch.full((P, m), torch.inf, dtype=torch.float64)
        with torch.no_grad():
            for t in range(steps + 1):
                if t:
                    h = cell.step(params, h, xb)
                    valid = valid & torch.isfinite(h).all(-1)
                if h.shape[1]:
                    best = torch.minimum(best, nearest_distance(pts, h, valid))
        best_np = best.numpy()
        for i, r in enumerate(rows):
            if len(r) and np.isfinite(radius[i, c]) and radius[i, c] > 0:
                distance[r] = best_np[i, : len(r)] / radius[i, c]
    return ProbeFlow(distance=distance, radius=radius)
