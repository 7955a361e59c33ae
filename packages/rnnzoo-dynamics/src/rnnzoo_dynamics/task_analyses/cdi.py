"""Context-dependent integration's dynamics (paper Fig. 3): line attractors.

Registered as ``cdi`` under ``rnnzoo_dynamics.task_analyses``. One condition per context
(its one-hot input, streams at 0), a line of points expected per context: 256 initial
states per condition.

- per point (``fixed_points``): ``attractor_point`` and ``on_line_attractor``
  (:func:`rnnzoo_dynamics.cdi.line_attractor_points`);
- ``cdi_linear`` (Fig. 3e-f): linear spectra, input selection and mode ablation, averaged
  over the points on the line attractor (:func:`rnnzoo_dynamics.cdi.cdi_analysis`);
- ``line_attractor_graph-context<c>`` per context (Fig. 3d): the attractor curve resampled
  at exactly ``line_nodes`` readouts.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from rnnzoo_dynamics.cdi import cdi_analysis, line_attractor_points, readout_weights
from rnnzoo_dynamics.graphs import graphs_to_dataset, line_attractor_graph
from rnnzoo_train.tasks.base import Task

from .base import PopulationRun, TaskAnalysis, localise


def cued_channels(task: Task) -> list[int]:
    """Input channel of the stream each context cues (contexts first, then streams)."""
    K = int(task.n_contexts)
    return [K + c for c in range(K)]


class CDIAnalysis(TaskAnalysis):
    """Line attractors, linear spectra and mode ablation per context."""

    name = "cdi"
    n_starts = 256

    def analysis_names(self) -> list[str]:
        n = len(self.fixed_point_conditions().inputs)
        return ["cdi_linear"] + [f"line_attractor_graph-context{c}" for c in range(n)]

    def horizon(self, run: PopulationRun) -> int:
        """Steps after a pulse in the mode ablation (default: the task's trial length)."""
        return run.options.horizon or int(self.task.n_steps)

    def point_variables(self, run: PopulationRun) -> dict[str, np.ndarray]:
        opt = run.options
        attractor, on_line = line_attractor_points(
            run.lin,
            run.flow.distance,
            self.horizon(run),
            opt.attractor_distance,
            opt.attractor_growth,
        )
        run.extra.update(attractor=attractor, on_line=on_line)
        return {"attractor_point": attractor, "on_line_attractor": on_line}

    def analyses(self, run: PopulationRun, rows: list[dict]) -> dict[str, xr.Dataset]:
        opt, points, lin, ids = run.options, run.points, run.lin, run.network_ids
        attractor = run.extra["attractor"]
        out: dict[str, xr.Dataset] = {}
        W = readout_weights(run.params, run.cell.state_size)
        out["cdi_linear"] = cdi_analysis(
            points,
            lin,
            W,
            cued_channels(self.task),
            ids,
            self.horizon(run),
            0,
            run.network_coords,
            on_line_attractor=run.extra["on_line"],
            attractor=attractor,
        )
        out["cdi_linear"].attrs.update(
            attractor_distance=opt.attractor_distance, attractor_growth=opt.attractor_growth
        )
        for c in range(run.n_conditions):
            graphs = []
            for i in range(run.n_networks):
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
                localise(graphs, points),
                ids,
                run.network_coords,
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
        return out
