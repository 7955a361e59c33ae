"""Every dynamics analysis of one population (networks of one cell type), zoo-independent.

:func:`analyze_population` runs, for networks that share a cell: initial states from the
probe trajectories, the fixed-point finder, the boundary pass, linearisation and the probe
flow, and stores ``fixed_points`` (dim ``fixed_point``; every point's ``flow_distance``,
:mod:`rnnzoo_dynamics.flow`) and ``summary`` (dim ``network``). Everything that depends on
the task (how many initial states per condition, from which probe trials, extra points,
per-point variables and the task's own datasets) comes from the task's analysis plugin
(:mod:`rnnzoo_dynamics.task_analyses`), found from the task; a task without one gets the
generic analyses (a nearest-neighbour graph per condition) and every dataset says so in
its ``task_analysis`` attribute.
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
from rnnzoo_dynamics.fixed_points import FIXED, SLOW, FinderOptions, find_fixed_points
from rnnzoo_dynamics.flow import FLOW_STATES, FLOW_STEPS, probe_flow
from rnnzoo_dynamics.graphs import TransitionOptions, network_rng
from rnnzoo_dynamics.initial_states import NOISE_SCALE, sample_initial_states, trajectories
from rnnzoo_dynamics.linearize import STABILITY_EPS, linearize
from rnnzoo_dynamics.results import fixed_points_dataset, summary_dataset
from rnnzoo_dynamics.task_analyses import GENERIC, PopulationRun, get_task_analysis
from rnnzoo_train.cells.base import Cell, Params
from rnnzoo_train.tasks.base import ProbeSet, Task


@dataclass(frozen=True)
class AnalysisOptions:
    """Settings of :func:`analyze_population` (every default stated in docs/dynamics.md).

    Attributes
    ----------
    n_starts : int or None
        Initial states per condition (default: the task's analysis plugin's ``n_starts``).
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
        Mode ablation (line-attractor analyses): steps after the pulse (default: the task's
        trial length).
    flow_steps : int
        Steps the probe states are run on under ``x*`` to form the probe flow (100).
    flow_states : int
        Most probe states per condition that start that run (1,024).
    attractor_distance : float
        Line-attractor analyses: largest flow distance of an attractor point (0.25, relative
        to the RMS size of the condition's probe states).
    attractor_growth : float
        Line-attractor analyses: a point is on the line attractor when its leading mode
        grows or decays by at most this factor over the horizon, ``|λ₁|^(T−1) ∈ [1/g, g]`` (4.0).
    orbit_distance : float
        Input-dependent fixed points of oscillations: largest flow distance of a fixed point
        near its frequency's orbit (2.0).
    refine : bool
        Transition-graph analyses: run the finder once more from the end states of
        transition trajectories that never landed on a known stable point (they usually sit
        on a missed attractor), then rebuild the graphs (True; counted as ``n_refined``).
    boundary : bool
        Every task: once the stable points of a (network, condition) are found, run the
        finder once more from the means of subsets of them (centroid first, then pairs,
        triples, ...; :mod:`rnnzoo_dynamics.basins`), which lie on the boundaries between
        their basins where saddles sit that no trajectory comes near (True; counted as
        ``n_boundary``). Conditions with fewer than two strictly stable points get none.
    boundary_cap : int
        Most such starts per (network, condition) (256; 8 attractors give 247).
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

    ``summary`` (stored as ``dynamics_summary``) and ``fixed_points`` for every task, and
    those of the task's analysis plugin
    (:meth:`~rnnzoo_dynamics.task_analyses.TaskAnalysis.analysis_names`). A network analysed
    (``ok`` or ``no_fixed_point``) has a row in each of them, ``fixed_points`` aside (one
    row per point, none without points).

    Raises
    ------
    TaskAnalysisPluginError
        The task's analysis plugin cannot be loaded (the message names it).
    """
    return sorted(["fixed_points", "summary", *get_task_analysis(task).analysis_names()])


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
        Inputs whose trajectories seed the finder (default: the task analysis plugin's,
        normally ``task.probe()``).
    network_coords : DataFrame, optional
        Index coordinates per network id (carried to every result).
    options : AnalysisOptions, optional
    progress : callable, optional
        ``progress(stage, done, total)`` from the finder.

    Returns
    -------
    dict of str to Dataset
        Keyed by analysis name (:func:`analysis_names`).

    Raises
    ------
    TaskAnalysisPluginError
        The task's analysis plugin cannot be loaded (the message names it).
    """
    plugin = get_task_analysis(task)
    opt = options or AnalysisOptions()
    ids = list(network_ids)
    P = len(ids)
    params = {k: v.detach().to(torch.float64) for k, v in params.items()}
    probe = probe if probe is not None else plugin.probe()
    conditions = plugin.fixed_point_conditions()
    x_star = np.asarray(conditions.inputs, dtype=np.float64)
    C = len(x_star)
    K = opt.n_starts or plugin.n_starts
    t0 = time.perf_counter()

    traj = trajectories(cell, params, probe.inputs).numpy()  # (P, trials, T, S)
    groups = plugin.condition_trials(probe, conditions)
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
    run = PopulationRun(
        task=task,
        cell=cell,
        params=params,
        network_ids=ids,
        network_coords=network_coords,
        options=opt,
        probe=probe,
        conditions=conditions,
        x_star=x_star,
        trajectories=traj,
        groups=groups,
        starts=starts,
        points=points,
        lin=lin,
        n_boundary=n_boundary,
    )
    plugin.refine(run)
    points, lin = run.points, run.lin
    run.flow = probe_flow(cell, params, traj, points, groups, opt.flow_steps, opt.flow_states)
    per_point: dict[str, np.ndarray] = {"flow_distance": run.flow.distance}
    per_point.update(plugin.point_variables(run))
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
                "n_boundary": int(n_boundary[i]),
            }
        )

    # the task's own analyses (and summary columns)
    out.update(plugin.analyses(run, rows))
    seconds = time.perf_counter() - t0
    for r in rows:
        r["seconds"] = seconds / max(1, P)
    out["summary"] = summary_dataset(rows, network_coords)
    if plugin.generic:
        for ds in out.values():
            ds.attrs["task_analysis"] = GENERIC
    return out


def _why_nothing(stats: dict, i: int, n: int) -> str:
    nonfinite = int(stats["n_nonfinite"][i])
    if nonfinite == n:
        return f"all {n} candidates diverged to non-finite states"
    return (
        f"no fixed or slow point among {n} candidates ({nonfinite} non-finite, "
        f"{int(stats['n_dropped'][i])} above the slow-point threshold)"
    )
