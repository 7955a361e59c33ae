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
                d = torch.cdist(pts, torch.where(valid.unsqueeze(-1), h, 0.0))
                d = torch.where(valid.unsqueeze(1), d, torch.inf)
                best = torch.minimum(best, d.amin(-1) if d.shape[-1] else best)
        best_np = best.numpy()
        for i, r in enumerate(rows):
            if len(r) and np.isfinite(radius[i, c]) and radius[i, c] > 0:
                distance[r] = best_np[i, : len(r)] / radius[i, c]
    return ProbeFlow(distance=distance, radius=radius)
