"""Every dynamics analysis of one population (networks of one cell type), zoo-independent.

:func:`analyze_population` runs, for networks that share a cell: initial states from the
probe trajectories, the fixed-point finder, linearisation, and the task's analyses:

- every task: ``fixed_points`` (dim ``fixed_point``) and ``summary`` (dim ``network``);
- single-condition tasks (flip-flop): ``transition_graph`` (paper §3.1);
- ``sine``: ``sine_frequency`` (Fig. 2f) and ``sine_graph`` (nearest-neighbour graph of the
  input-dependent fixed points, one node per command frequency, node readout = ``ω``; Fig. 2e);
- ``cdi``: ``cdi_linear`` (Fig. 3e-f, averaged over the points on the line attractor) and
  ``line_attractor_graph-context<c>`` per context (the attractor curve resampled at exactly
  ``line_nodes`` readouts; Fig. 3d).

Every point gets its flow distance (:mod:`rnnzoo_dynamics.flow`), stored in
``fixed_points`` as ``flow_distance``; cdi points also ``attractor_point`` and
``on_line_attractor`` (:func:`rnnzoo_dynamics.cdi.line_attractor_points`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import xarray as xr

from rnnzoo_dynamics._checks import MAX_SEED, MAX_STARTS, check_float, check_int
from rnnzoo_dynamics.basins import BOUNDARY_CAP, add_boundary_points
from rnnzoo_dynamics.cdi import cdi_analysis, line_attractor_points, readout_weights
from rnnzoo_dynamics.fixed_points import FIXED, SLOW, FinderOptions, find_fixed_points
from rnnzoo_dynamics.flow import FLOW_STATES, FLOW_STEPS, probe_flow
from rnnzoo_dynamics.graphs import (
    Graph,
    TransitionOptions,
    graphs_to_dataset,
    line_attractor_graph,
    nearest_neighbour_graph,
    network_rng,
    transition_graphs,
)
from rnnzoo_dynamics.initial_states import (
    NOISE_SCALE,
    condition_trials,
    sample_initial_states,
    trajectories,
)
from rnnzoo_dynamics.linearize import STABILITY_EPS, linearize
from rnnzoo_dynamics.results import fixed_points_dataset, summary_dataset
from rnnzoo_dynamics.sine import sine_frequencies
from rnnzoo_train.cells.base import Cell, Params
from rnnzoo_train.tasks.base import ProbeSet, Task

#: initial states per condition when not given: flip-flop has one condition and up to 27
#: fixed points; sine one point per command frequency; cdi a line of points per context
DEFAULT_STARTS = {"flipflop": 1024, "sine": 64, "cdi": 256}
FALLBACK_STARTS = 256


@dataclass(frozen=True)
class AnalysisOptions:
    """Settings of :func:`analyze_population` (every default stated in docs/dynamics.md).

    Attributes
    ----------
    n_starts : int or None
        Initial states per condition (default per task: :data:`DEFAULT_STARTS`).
    noise_scale : float
        Noise on the initial states, relative to the states' spread (1.0).
    finder : FinderOptions
    transition : TransitionOptions
    stability_eps : float
        ``|λ| > 1 + eps`` is unstable (1e-3).
    n_vectors : int
        Eigenvectors stored per point (largest ``|λ|`` first; -1 for all; default 4). All
        eigenvalues are always stored.
    line_nodes : int
        Nodes of a line-attractor graph: the attractor curve resampled at this many evenly
        spaced readouts (20).
    knn : int
        Neighbours per node in nearest-neighbour and line-attractor graphs (2).
    horizon : int or None
        cdi mode ablation: steps after the pulse (default: the task's trial length).
    flow_steps : int
        Steps the probe states are run on under ``x*`` to form the probe flow (100).
    flow_states : int
        Most probe states per condition that start that run (1,024).
    attractor_distance : float
        cdi: largest flow distance of an attractor point (0.25, relative to the RMS size of
        the context's probe states).
    attractor_growth : float
        cdi: a point is on the line attractor when its leading mode grows or decays by at
        most this factor over the horizon, ``|λ₁|^(T−1) ∈ [1/g, g]`` (4.0).
    orbit_distance : float
        sine: largest flow distance of a fixed point near its frequency's orbit (2.0).
    refine : bool
        Single-condition tasks: run the finder once more from the end states of transition
        trajectories that never landed on a known stable point (they usually sit on a missed
        attractor), then rebuild the graphs (True; counted as ``n_refined``).
    boundary : bool
        Every task: once the stable points of a (network, condition) are found, run the
        finder once more from the means of subsets of them (centroid first, then pairs,
        triples, ...; :mod:`rnnzoo_dynamics.basins`), which lie on the boundaries between
        their basins where saddles sit that no trajectory comes near (True; counted as
        ``n_boundary``). Conditions with fewer than two strictly stable points get none.
    boundary_cap : int
        Most such starts per (network, condition) (256; a 3-bit flip-flop's 8 attractors
        give 247).
    seed : int
        Seeds the initial states (with a hash of the network id, so results do not depend on
        which networks share a batch); ``0 <= seed <= 2**63 - 1``.

    Raises
    ------
    ValueError
        An option out of its range (one line naming it); ``n_starts`` is at most
        :data:`MAX_STARTS`.
    """

    n_starts: int | None = None
    noise_scale: float = NOISE_SCALE
    finder: FinderOptions = field(default_factory=FinderOptions)
    transition: TransitionOptions = field(default_factory=TransitionOptions)
    stability_eps: float = STABILITY_EPS
    n_vectors: int = 4
    line_nodes: int = 20
    knn: int = 2
    horizon: int | None = None
    refine: bool = True
    boundary: bool = True
    boundary_cap: int = BOUNDARY_CAP
    seed: int = 0
    flow_steps: int = FLOW_STEPS
    flow_states: int = FLOW_STATES
    attractor_distance: float = 0.25
    attractor_growth: float = 4.0
    orbit_distance: float = 2.0

    def __post_init__(self) -> None:
        if self.n_starts is not None:
            check_int("n_starts (--starts)", self.n_starts, 1, MAX_STARTS)
        check_int("seed (--seed)", self.seed, 0, MAX_SEED)
        check_float("noise_scale", self.noise_scale, 0)
        check_float("stability_eps", self.stability_eps, 0, 1, high_open=True)
        check_int("n_vectors", self.n_vectors, -1)
        check_int("line_nodes", self.line_nodes, 2)
        check_int("knn", self.knn, 1)
        if self.horizon is not None:
            check_int("horizon", self.horizon, 1)
        check_int("boundary_cap", self.boundary_cap, 0)
        check_int("flow_steps", self.flow_steps, 0)
        check_int("flow_states", self.flow_states, 1)
        check_float("attractor_distance", self.attractor_distance, 0, low_open=True)
        check_float("attractor_growth", self.attractor_growth, 1)
        check_float("orbit_distance", self.orbit_distance, 0, low_open=True)
        for name, cls in (("finder", FinderOptions), ("transition", TransitionOptions)):
            if not isinstance(getattr(self, name), cls):
                raise ValueError(f"{name} must be a {cls.__name__}")


def analysis_names(task: Task) -> list[str]:
    """Names of the analyses :func:`analyze_population` returns for ``task`` (sorted).

    ``summary`` (stored as ``dynamics_summary``) and ``fixed_points`` for every task;
    ``transition_graph`` for a single-condition task (flip-flop); ``sine_frequency`` and
    ``sine_graph`` for sine; ``cdi_linear`` and ``line_attractor_graph-context<c>`` per
    context for cdi. A network analysed (``ok`` or ``no_fixed_point``) has a row in each of
    them, ``fixed_points`` aside (one row per point, none without points).
    """
    n_conditions = len(task.fixed_point_conditions().inputs)
    names = ["fixed_points", "summary"]
    if n_conditions == 1:
        names.append("transition_graph")
    if task.name == "sine":
        names += ["sine_frequency", "sine_graph"]
    if task.name == "cdi":
        names += ["cdi_linear"] + [f"line_attractor_graph-context{c}" for c in range(n_conditions)]
    return sorted(names)


def cued_channels(task: Task) -> list[int]:
    """Input channel of the stream each cdi context cues (contexts first, then streams)."""
    K = int(getattr(task, "n_contexts", task.n_inputs // 2))
    return [K + c for c in range(K)]


def analyze_population(
    task: Task,
    cell: Cell,
    params: Params,
    network_ids: Sequence[str],
    probe: ProbeSet | None = None,
    network_coords: pd.DataFrame | None = None,
    options: AnalysisOptions | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, xr.Dataset]:
    """Run every dynamics analysis for a population of networks of one cell.

    Parameters
    ----------
    task : Task
    cell : Cell
    params : dict of str to Tensor
        Stacked parameters ``(P, ...)`` (any float dtype; analyses run in float64).
    network_ids : sequence of str, (P,)
    probe : ProbeSet, optional
        Inputs whose trajectories seed the finder (default ``task.probe()``).
    network_coords : DataFrame, optional
        Index coordinates per network id (carried to every result).
    options : AnalysisOptions, optional
    progress : callable, optional
        ``progress(stage, done, total)`` from the finder.

    Returns
    -------
    dict of str to Dataset
        Keyed by analysis name (see the module docstring).
    """
    opt = options or AnalysisOptions()
    ids = list(network_ids)
    P = len(ids)
    params = {k: v.detach().to(torch.float64) for k, v in params.items()}
    probe = probe if probe is not None else task.probe()
    conditions = task.fixed_point_conditions()
    x_star = np.asarray(conditions.inputs, dtype=np.float64)
    C = len(x_star)
    K = opt.n_starts or DEFAULT_STARTS.get(task.name, FALLBACK_STARTS)
    t0 = time.perf_counter()

    traj = trajectories(cell, params, probe.inputs).numpy()  # (P, trials, T, S)
    groups = condition_trials(probe.labels, conditions.labels)
    starts = np.empty((P, C, K, cell.state_size))
    for i, nid in enumerate(ids):
        rng = network_rng(opt.seed, nid)
        for c in range(C):
            trials = None if groups is None else groups[c]
            starts[i, c] = sample_initial_states(traj[i : i + 1], K, rng, opt.noise_scale, trials)[
                0
            ]
    points = find_fixed_points(cell, params, x_star, starts, opt.finder, progress)
    lin = linearize(cell, params, points, opt.stability_eps)
    n_boundary = np.zeros(P, dtype=np.int64)
    if opt.boundary:
        points, lin, n_boundary = add_boundary_points(
            cell,
            params,
            x_star,
            points,
            lin,
            starts,
            opt.boundary_cap,
            opt.finder,
            opt.stability_eps,
        )
    graphs: list[Graph] = []
    n_refined = np.zeros(P, dtype=np.int64)
    if C == 1:
        ids = list(network_ids)
        graphs = transition_graphs(cell, params, points, lin, 0, opt.transition, ids)
        if opt.refine and any(len(g.unresolved_states) for g in graphs):
            before = points.stats["n_fixed"].copy()
            points = points.merge(_refine(cell, params, x_star, points, graphs, opt))
            n_refined = points.stats["n_fixed"] - before
            lin = linearize(cell, params, points, opt.stability_eps)
            graphs = transition_graphs(cell, params, points, lin, 0, opt.transition, ids)
        graphs = _localise(graphs, points)
    flow = probe_flow(cell, params, traj, points, groups, opt.flow_steps, opt.flow_states)
    per_point: dict[str, np.ndarray] = {"flow_distance": flow.distance}
    horizon = opt.horizon or int(getattr(task, "n_steps", 30))
    if task.name == "cdi":
        attractor, on_line = line_attractor_points(
            lin, flow.distance, horizon, opt.attractor_distance, opt.attractor_growth
        )
        per_point.update(attractor_point=attractor, on_line_attractor=on_line)
    out: dict[str, xr.Dataset] = {
        "fixed_points": fixed_points_dataset(
            points, lin, ids, conditions.labels, network_coords, opt.n_vectors, per_point
        )
    }

    # per-network summary
    rows = []
    for i, nid in enumerate(ids):
        mine = points.network == i
        fixed = mine & (points.kind == FIXED)
        empty = [c for c in range(C) if not (mine & (points.condition == c)).any()]
        message = "" if mine.any() else _why_nothing(points.stats, i, K * C)
        if mine.any() and empty:
            message = f"no fixed or slow point for condition(s) {empty}"
        rows.append(
            {
                "network": nid,
                "analysis_status": "ok" if mine.any() else "no_fixed_point",
                "message": message,
                "n_conditions_without_points": len(empty),
                "n_fixed": int(fixed.sum()),
                "n_slow": int((mine & (points.kind == SLOW)).sum()),
                "n_stable": int((fixed & (lin.n_unstable == 0)).sum()),
                "n_saddle": int((fixed & (lin.n_unstable > 0)).sum()),
                "n_candidates": int(K * C),
                "n_dropped": int(points.stats["n_dropped"][i]),
                "n_nonfinite": int(points.stats["n_nonfinite"][i]),
                "max_q_fixed": float(points.q[fixed].max()) if fixed.any() else np.nan,
                "n_unstable_max": int(lin.n_unstable[fixed].max()) if fixed.any() else -1,
            }
        )
        rows[-1]["n_boundary"] = int(n_boundary[i])
        if C == 1:
            rows[-1]["n_refined"] = int(n_refined[i])

    # task-specific analyses
    if C == 1:
        out["transition_graph"] = graphs_to_dataset(
            graphs, ids, network_coords, attrs=_transition_attrs(opt.transition)
        )
        for r, g in zip(rows, graphs, strict=True):
            r["n_graph_nodes"] = g.n_nodes
            r["max_unresolved"] = float(g.unresolved.max()) if g.n_nodes else np.nan
            stable_self = np.diag(g.weight)[g.node_stable] if g.n_nodes else np.zeros(0)
            r["min_stable_self_loop"] = float(stable_self.min()) if stable_self.size else np.nan
    if task.name == "sine":
        omega = np.asarray(conditions.labels["omega"], dtype=np.float64)
        centres = (
            np.stack([traj[:, g, traj.shape[2] // 2 :].mean(axis=(1, 2)) for g in groups], axis=1)
            if groups is not None
            else None
        )
        freq = sine_frequencies(
            points,
            lin,
            omega,
            ids,
            centres,
            network_coords,
            flow_distance=flow.distance,
            distance=opt.orbit_distance,
        )
        out["sine_frequency"] = freq
        out["sine_graph"] = graphs_to_dataset(
            _localise(_sine_graphs(points, freq, omega, opt.knn), points),
            ids,
            network_coords,
            attrs={
                "description": "nearest-neighbour graph of the input-dependent fixed points "
                "(one node per command frequency; node readout = omega)",
                "knn": opt.knn,
            },
        )
    if task.name == "cdi":
        W = readout_weights(params, cell.state_size)
        out["cdi_linear"] = cdi_analysis(
            points,
            lin,
            W,
            cued_channels(task),
            ids,
            horizon,
            0,
            network_coords,
            on_line_attractor=on_line,
            attractor=attractor,
        )
        out["cdi_linear"].attrs.update(
            attractor_distance=opt.attractor_distance, attractor_growth=opt.attractor_growth
        )
        for c in range(C):
            graphs = []
            for i in range(P):
                pick = np.nonzero((points.network == i) & (points.condition == c) & attractor)[0]
                graphs.append(
                    line_attractor_graph(
                        points.state[pick],
                        lin.readout[pick],
                        opt.line_nodes,
                        opt.knn,
                        node_point=pick,
                        node_stable=lin.n_unstable[pick] == 0,
                    )
                )
            out[f"line_attractor_graph-context{c}"] = graphs_to_dataset(
                _localise(graphs, points),
                ids,
                network_coords,
                attrs={
                    "description": f"line-attractor graph of context {c} (paper Fig. 3d): the "
                    "attractor points (fixed and slow points on the probe flow) joined in "
                    "readout order and resampled at line_nodes evenly spaced readouts; "
                    "k-nearest-neighbour edges weighted by length / curve length",
                    "knn": opt.knn,
                    "line_nodes": opt.line_nodes,
                    "attractor_distance": opt.attractor_distance,
                    "context": c,
                },
            )
            for r, g in zip(rows, graphs, strict=True):
                r[f"n_attractor_points_context{c}"] = int(
                    out["cdi_linear"]["n_attractor_points"].values[ids.index(r["network"]), c]
                )
                r[f"n_line_graph_nodes_context{c}"] = g.n_nodes
    seconds = time.perf_counter() - t0
    for r in rows:
        r["seconds"] = seconds / max(1, P)
    out["summary"] = summary_dataset(rows, network_coords)
    return out


def _refine(cell, params, x_star, points, graphs: list[Graph], opt: AnalysisOptions):
    """Run the finder from where unresolved transition trajectories ended.

    A perturbation of a saddle that never lands on a known stable point usually settled on an
    attractor the finder missed; its end state is an excellent start. Networks without such
    trajectories restart from their own fixed points (which merge back unchanged).
    """
    P, S = points.n_networks, cell.state_size
    K = min(256, max(len(g.unresolved_states) for g in graphs))
    starts = np.full((P, K, S), np.nan)
    for i, g in enumerate(graphs):
        pool = g.unresolved_states
        if len(pool) == 0:
            pool = points.state[points.network == i]
        if len(pool):
            starts[i] = pool[np.arange(K) % len(pool)]
    return find_fixed_points(cell, params, x_star, starts, opt.finder)


def _localise(graphs: list[Graph], points) -> list[Graph]:
    """Node -> position among its network's points (the row order of ``fixed_points``)."""
    for i, g in enumerate(graphs):
        rows = np.nonzero(points.network == i)[0]
        g.node_point = np.searchsorted(rows, g.node_point).astype(np.int64)
    return graphs


def _why_nothing(stats: dict, i: int, n: int) -> str:
    nonfinite = int(stats["n_nonfinite"][i])
    if nonfinite == n:
        return f"all {n} candidates diverged to non-finite states"
    return (
        f"no fixed or slow point among {n} candidates ({nonfinite} non-finite, "
        f"{int(stats['n_dropped'][i])} above the slow-point threshold)"
    )


def _transition_attrs(opt: TransitionOptions) -> dict:
    return {
        "description": "fixed-point transition graph (paper section 3.1): weight[i, j] is the "
        "fraction of perturbations of fixed point i that settle on stable point j",
        "n_perturbations": opt.n_perturbations,
        "perturbation": opt.perturbation,
        "landing": opt.landing,
        "max_steps": opt.max_steps,
        "readout_decimals": opt.readout_decimals,
    }


def _sine_graphs(points, freq: xr.Dataset, omega: np.ndarray, k: int) -> list[Graph]:
    graphs = []
    local = freq["point"].values
    for i in range(local.shape[0]):
        have = local[i] >= 0
        rows = np.nonzero(points.network == i)[0][local[i][have]]
        graphs.append(
            nearest_neighbour_graph(
                points.state[rows],
                omega[have][:, None],
                k,
                node_point=rows,
                order=np.argsort(omega[have], kind="stable"),
            )
        )
    return graphs
