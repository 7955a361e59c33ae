"""The sine task's dynamics (paper Fig. 2): input-dependent fixed points and frequencies.

Registered as ``sine`` under ``rnnzoo_dynamics.task_analyses``. One condition per probe
frequency (the static input ``x`` of that ``ω``, label ``omega``), one fixed point expected
near each frequency's orbit: 64 initial states per condition.

- ``sine_frequency`` (Fig. 2f): per network and command frequency, the fixed point near the
  orbit and the frequency of its linearised oscillation
  (:func:`rnnzoo_dynamics.sine.sine_frequencies`);
- ``sine_graph`` (Fig. 2e): the nearest-neighbour graph of those input-dependent fixed
  points, one node per command frequency, node readout = ``ω``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from rnnzoo_dynamics.graphs import Graph, graphs_to_dataset, nearest_neighbour_graph
from rnnzoo_dynamics.sine import sine_frequencies

from .base import PopulationRun, TaskAnalysis, localise


class SineAnalysis(TaskAnalysis):
    """Input-dependent fixed points, their linearised frequencies and their graph."""

    name = "sine"
    n_starts = 64

    def analysis_names(self) -> list[str]:
        return ["sine_frequency", "sine_graph"]

    def analyses(self, run: PopulationRun, rows: list[dict]) -> dict[str, xr.Dataset]:
        opt, traj, groups = run.options, run.trajectories, run.groups
        omega = np.asarray(run.conditions.labels["omega"], dtype=np.float64)
        centres = (
            np.stack([traj[:, g, traj.shape[2] // 2 :].mean(axis=(1, 2)) for g in groups], axis=1)
            if groups is not None
            else None
        )
        freq = sine_frequencies(
            run.points,
            run.lin,
            omega,
            run.network_ids,
            centres,
            run.network_coords,
            flow_distance=run.flow.distance,
            distance=opt.orbit_distance,
        )
        graph = graphs_to_dataset(
            localise(_sine_graphs(run.points, freq, omega, opt.knn), run.points),
            run.network_ids,
            run.network_coords,
            attrs={
                "description": "nearest-neighbour graph of the input-dependent fixed points "
                "(one node per command frequency; node readout = omega)",
                "knn": opt.knn,
            },
        )
        return {"sine_frequency": freq, "sine_graph": graph}


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
