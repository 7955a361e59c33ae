"""The analysis of a task without an analysis plugin: what every task's dynamics support.

Fixed and slow points per static input condition, their stability and linearisations (in
``fixed_points``, as for every task) and, per condition, a nearest-neighbour graph of each
network's points: ``nearest_neighbour_graph-condition<c>``. Every dataset carries the
attribute ``task_analysis = "generic"``, and ``rnnzoo-dynamics analyze`` says so.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from rnnzoo_dynamics.graphs import graphs_to_dataset, nearest_neighbour_graph

from .base import PopulationRun, TaskAnalysis, localise

#: the value of the ``task_analysis`` attribute of a generic analysis' datasets
GENERIC = "generic"


class GenericAnalysis(TaskAnalysis):
    """Fixed points, stability, linearisations and a nearest-neighbour graph per condition."""

    name = GENERIC
    generic = True

    def graph_name(self, condition: int) -> str:
        return f"nearest_neighbour_graph-condition{condition}"

    def analysis_names(self) -> list[str]:
        n = len(self.fixed_point_conditions().inputs)
        return [self.graph_name(c) for c in range(n)]

    def analyses(self, run: PopulationRun, rows: list[dict]) -> dict[str, xr.Dataset]:
        points, lin, opt = run.points, run.lin, run.options
        out = {}
        for c in range(run.n_conditions):
            graphs = []
            for i in range(run.n_networks):
                pick = np.nonzero((points.network == i) & (points.condition == c))[0]
                graphs.append(
                    nearest_neighbour_graph(
                        points.state[pick],
                        lin.readout[pick],
                        opt.knn,
                        node_point=pick,
                        node_stable=lin.n_unstable[pick] == 0,
                    )
                )
            out[self.graph_name(c)] = graphs_to_dataset(
                localise(graphs, points),
                run.network_ids,
                run.network_coords,
                attrs={
                    "description": f"nearest-neighbour graph of the fixed and slow points of "
                    f"condition {c} (the task has no analysis plugin: generic analyses); "
                    "nodes in lexicographic readout order, k-nearest-neighbour edges in state "
                    "space, weight 1",
                    "knn": opt.knn,
                    "condition": c,
                },
            )
            for r, g in zip(rows, graphs, strict=True):
                r[f"n_graph_nodes_condition{c}"] = g.n_nodes
        return out
