"""Fixed-point transition graphs (paper §3.1), for tasks with discrete attractors.

:class:`TransitionGraphAnalysis` perturbs every fixed point of the first condition and
records where the perturbations settle (``transition_graph``); with
``AnalysisOptions.refine`` it first runs the finder again from the end states of
trajectories that never landed on a known stable point (counted as ``n_refined``).
The flip-flop's plugin is this analysis; a third-party task with discrete memories can
subclass it too.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from rnnzoo_dynamics.fixed_points import find_fixed_points
from rnnzoo_dynamics.graphs import Graph, TransitionOptions, graphs_to_dataset, transition_graphs
from rnnzoo_dynamics.linearize import linearize

from .base import PopulationRun, TaskAnalysis, localise

#: the condition whose fixed points are perturbed
CONDITION = 0


class TransitionGraphAnalysis(TaskAnalysis):
    """``transition_graph``: where perturbations of each fixed point settle."""

    def analysis_names(self) -> list[str]:
        return ["transition_graph"]

    def refine(self, run: PopulationRun) -> None:
        """Transition graphs; with ``options.refine``, points from unresolved trajectories."""
        opt, ids = run.options, run.network_ids
        points, lin = run.points, run.lin
        graphs = transition_graphs(
            run.cell, run.params, points, lin, CONDITION, opt.transition, ids
        )
        n_refined = np.zeros(run.n_networks, dtype=np.int64)
        if opt.refine and any(len(g.unresolved_states) for g in graphs):
            before = points.stats["n_fixed"].copy()
            points = points.merge(
                refine_points(run.cell, run.params, run.x_star, points, graphs, opt)
            )
            n_refined = points.stats["n_fixed"] - before
            lin = linearize(run.cell, run.params, points, opt.stability_eps)
            graphs = transition_graphs(
                run.cell, run.params, points, lin, CONDITION, opt.transition, ids
            )
        run.points, run.lin = points, lin
        run.extra["transition_graphs"] = localise(graphs, points)
        run.extra["n_refined"] = n_refined

    def analyses(self, run: PopulationRun, rows: list[dict]) -> dict[str, xr.Dataset]:
        graphs = run.extra["transition_graphs"]
        for r, n in zip(rows, run.extra["n_refined"], strict=True):
            r["n_refined"] = int(n)
        out = graphs_to_dataset(
            graphs,
            run.network_ids,
            run.network_coords,
            attrs=transition_attrs(run.options.transition),
        )
        for r, g in zip(rows, graphs, strict=True):
            r["n_graph_nodes"] = g.n_nodes
            r["max_unresolved"] = float(g.unresolved.max()) if g.n_nodes else np.nan
            stable_self = np.diag(g.weight)[g.node_stable] if g.n_nodes else np.zeros(0)
            r["min_stable_self_loop"] = float(stable_self.min()) if stable_self.size else np.nan
        return {"transition_graph": out}


def refine_points(cell, params, x_star, points, graphs: list[Graph], opt):
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


def transition_attrs(opt: TransitionOptions) -> dict:
    """The attributes of a ``transition_graph`` dataset."""
    return {
        "description": "fixed-point transition graph (paper section 3.1): weight[i, j] is the "
        "fraction of perturbations of fixed point i that settle on stable point j",
        "n_perturbations": opt.n_perturbations,
        "perturbation": opt.perturbation,
        "landing": opt.landing,
        "max_steps": opt.max_steps,
        "readout_decimals": opt.readout_decimals,
    }
