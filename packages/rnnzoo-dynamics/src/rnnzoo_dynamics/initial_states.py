"""Initial states for the fixed-point finder: states visited on the task's inputs plus noise.

Fixed points that matter for a computation lie on or near the trajectories the network
visits while doing the task (paper §2.3, following Sussillo & Barak 2013). Starts are drawn
uniformly from the states of every (trial, time step) of the given inputs (the task's probe
set by default), then perturbed with isotropic Gaussian noise of standard deviation
``noise_scale × σ``, where ``σ`` is the root-mean-square over state dimensions of the
per-dimension standard deviation of the visited states of that network (so the noise is
relative to each network's own scale; default ``noise_scale = 1.0``). The noise lets starts
leave the trajectories and reach saddles that trajectories only pass near: on trained 3-bit
flip-flop networks, noise 0.1 found 16-21 of the 27 fixed points of a 16-unit vanilla
network and noise 1.0 all 27, with 1,024 starts (docs/dynamics.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from rnnzoo_dynamics._batch import n_networks, params_as
from rnnzoo_dynamics.fixed_points import _population_params
from rnnzoo_train.cells.base import Cell, Params

#: default noise, relative to the RMS standard deviation of the visited states
NOISE_SCALE = 1.0


def trajectories(cell: Cell, params: Params, inputs: Any, dtype=torch.float64) -> Tensor:
    """Full states ``(P, trials, T, S)`` of every network on ``inputs`` ``(trials, T, M)``.

    Starts from the cell's initial state; for the LSTM the state includes the cell state
    ``c``. Used instead of stored hidden states because those hold the readout-facing part
    only.
    """
    params = params_as(_population_params(cell, params), dtype)
    P = n_networks(params)
    x = torch.as_tensor(np.asarray(inputs), dtype=dtype)
    if x.dim() != 3 or x.shape[-1] != cell.n_inputs:
        raise ValueError(
            f"inputs must have shape (trials, time, {cell.n_inputs}); got {tuple(x.shape)}"
        )
    with torch.no_grad():
        return cell.run(params, x.unsqueeze(0).expand(P, -1, -1, -1))


def sample_initial_states(
    states: Tensor | np.ndarray,
    n_states: int,
    rng: np.random.Generator,
    noise_scale: float = NOISE_SCALE,
    trials: np.ndarray | None = None,
) -> np.ndarray:
    """Draw ``n_states`` starts per network from visited states, plus relative noise.

    Parameters
    ----------
    states : Tensor or ndarray, (P, trials, T, S)
        Visited states (see :func:`trajectories`).
    n_states : int
        Starts per network.
    rng : numpy.random.Generator
        The only source of randomness.
    noise_scale : float
        Noise standard deviation relative to the network's RMS state spread (default 1.0).
    trials : ndarray of int, optional
        Draw only from these trials (e.g. the probe trials of one condition).

    Returns
    -------
    ndarray, float64, (P, n_states, S)
        Non-finite visited states (a diverging network) are never drawn; a network with
        no finite state gets zero-state starts plus unit-scale noise.
    """
    st = np.asarray(states, dtype=np.float64)
    if trials is not None:
        st = st[:, np.asarray(trials, dtype=np.int64)]
    P, S = st.shape[0], st.shape[-1]
    pool = st.reshape(P, -1, S)
    out = np.empty((P, n_states, S))
    for i in range(P):
        ok = np.isfinite(pool[i]).all(-1)
        cand = pool[i][ok]
        if len(cand) == 0:
            out[i] = rng.normal(size=(n_states, S))
            continue
        sigma = float(np.sqrt(np.mean(cand.var(axis=0)))) if len(cand) > 1 else 1.0
        pick = rng.integers(0, len(cand), size=n_states)
        out[i] = cand[pick] + noise_scale * sigma * rng.normal(size=(n_states, S))
    return out


def condition_trials(
    probe_labels: dict[str, np.ndarray], condition_labels: dict[str, np.ndarray]
) -> list[np.ndarray] | None:
    """Probe trials belonging to each fixed-point condition, matched on shared labels.

    A probe trial belongs to the condition whose label value is nearest to its own (exact
    for integer labels such as ``context``, nearest for float labels such as ``omega``).
    Returns ``None`` when the probe and the conditions share no label (every trial is used
    for every condition).
    """
    keys = [k for k in condition_labels if k in probe_labels]
    if not keys:
        return None
    key = keys[0]
    probe = np.asarray(probe_labels[key], dtype=np.float64)
    cond = np.asarray(condition_labels[key], dtype=np.float64)
    nearest = np.abs(probe[:, None] - cond[None, :]).argmin(1)
    groups = [np.nonzero(nearest == c)[0] for c in range(len(cond))]
    if any(len(g) == 0 for g in groups):
        all_trials = np.arange(len(probe))
        groups = [g if len(g) else all_trials for g in groups]
    return groups
