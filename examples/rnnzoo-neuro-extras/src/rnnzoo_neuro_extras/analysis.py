"""The head-direction task's own dynamics analysis: a ring attractor, or not.

An angular-velocity integrator must hold any heading when the velocity is zero, so its
fixed and slow points at zero input should form a ring that the readout maps onto the
circle, with a leading eigenvalue ``|λ₁| ≈ 1`` along the ring (a continuous attractor).
:class:`HeadDirectionAnalysis` adds to what every task gets (fixed and slow points,
stability, linearisations, in ``fixed_points``):

- per point: ``ring_point`` (on the probe flow: flow distance at most
  :attr:`HeadDirectionAnalysis.ring_distance`) and ``decoded_heading``
  (``atan2(y₂, y₁)`` of the point's readout);
- ``ring_attractor`` (dim ``network``; ``heading_bin``): how many ring points, which
  fraction of the circle they cover (in ``n_bins`` bins), the largest angular gap between
  them, their mean readout radius and leading eigenvalue modulus;
- ``ring_graph``: the nearest-neighbour graph of the ring points in the order of their
  decoded headings (node readout: the point's output), comparable across networks with
  rnnzoo-metrics' graph metrics.

It is registered in this package's ``pyproject.toml`` under the task's name::

    [project.entry-points."rnnzoo_dynamics.task_analyses"]
    head_direction = "rnnzoo_neuro_extras.analysis:HeadDirectionAnalysis"
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from rnnzoo_dynamics.graphs import graphs_to_dataset, nearest_neighbour_graph
from rnnzoo_dynamics.task_analyses import PopulationRun, TaskAnalysis, localise

__all__ = ["HeadDirectionAnalysis", "ring_summary"]


def ring_summary(headings: np.ndarray, n_bins: int) -> tuple[np.ndarray, float]:
    """Occupied heading bins ``(n_bins,)`` and the largest circular gap (radians).

    ``2π`` without points; a single point leaves a gap of ``2π`` too.
    """
    headings = np.sort(np.mod(np.asarray(headings, dtype=np.float64), 2 * np.pi))
    occupied = np.zeros(n_bins, dtype=bool)
    occupied[np.floor(headings / (2 * np.pi) * n_bins).astype(int) % n_bins] = True
    if len(headings) < 2:
        return occupied, 2 * np.pi
    gaps = np.diff(np.concatenate([headings, headings[:1] + 2 * np.pi]))
    return occupied, float(gaps.max())


class HeadDirectionAnalysis(TaskAnalysis):
    """Ring-attractor analysis of head-direction networks (module docstring).

    Attributes
    ----------
    n_starts : int
        512 initial states at zero input: a ring needs points all around it.
    ring_distance : float
        Largest flow distance of a ring point (relative to the RMS size of the probe
        states, as ``AnalysisOptions.attractor_distance`` for line attractors).
    n_bins : int
        Heading bins of the coverage (12: 30° each).
    """

    name = "head_direction"
    n_starts = 512
    ring_distance = 0.25
    n_bins = 12

    def analysis_names(self) -> list[str]:
        return ["ring_attractor", "ring_graph"]

    def point_variables(self, run: PopulationRun) -> dict[str, np.ndarray]:
        distance = np.nan_to_num(run.flow.distance, nan=np.inf)
        on_ring = distance <= self.ring_distance
        y = run.lin.readout
        heading = np.arctan2(y[:, 1], y[:, 0])
        run.extra.update(on_ring=on_ring, heading=heading)
        return {"ring_point": on_ring, "decoded_heading": heading}

    def analyses(self, run: PopulationRun, rows: list[dict]) -> dict[str, xr.Dataset]:
        points, lin = run.points, run.lin
        on_ring, heading = run.extra["on_ring"], run.extra["heading"]
        P, B = run.n_networks, self.n_bins
        n_points = np.zeros(P, dtype=np.int64)
        n_stable = np.zeros(P, dtype=np.int64)
        occupied = np.zeros((P, B), dtype=bool)
        gap = np.full(P, 2 * np.pi)
        radius = np.full(P, np.nan)
        leading = np.full(P, np.nan)
        graphs = []
        for i in range(P):
            pick = np.nonzero((points.network == i) & on_ring)[0]
            n_points[i] = len(pick)
            n_stable[i] = int((lin.n_unstable[pick] == 0).sum())
            occupied[i], gap[i] = ring_summary(heading[pick], B)
            if len(pick):
                radius[i] = float(np.linalg.norm(lin.readout[pick], axis=1).mean())
                leading[i] = float(np.abs(lin.eig.eigenvalues[pick, 0]).mean())
            graphs.append(
                nearest_neighbour_graph(
                    points.state[pick],
                    lin.readout[pick],
                    run.options.knn,
                    node_point=pick,
                    node_stable=lin.n_unstable[pick] == 0,
                    order=np.argsort(heading[pick], kind="stable"),
                )
            )
        coverage = occupied.mean(axis=1)
        ring = xr.Dataset(
            {
                "n_ring_points": ("network", n_points),
                "n_ring_stable": ("network", n_stable),
                "ring_coverage": ("network", coverage),
                "ring_max_gap": ("network", gap),
                "ring_readout_radius": ("network", radius),
                "ring_leading_modulus": ("network", leading),
                "ring_bin_occupied": (("network", "heading_bin"), occupied),
            },
            coords={
                "network": np.asarray(run.network_ids, dtype=object),
                "heading_bin": (np.arange(B) + 0.5) * 2 * np.pi / B,
            },
            attrs={
                "description": "ring attractor of head-direction integration: fixed and slow "
                "points at zero input on the probe flow, by decoded heading",
                "ring_distance": self.ring_distance,
                "n_bins": B,
            },
        )
        if run.network_coords is not None:
            coords = run.network_coords.loc[run.network_ids]
            ring = ring.assign_coords({c: ("network", coords[c].to_numpy()) for c in coords})
        graph = graphs_to_dataset(
            localise(graphs, points),
            run.network_ids,
            run.network_coords,
            attrs={
                "description": "nearest-neighbour graph of the ring points in decoded-heading "
                "order (node readout: the point's output (cos, sin))",
                "knn": run.options.knn,
                "ring_distance": self.ring_distance,
            },
        )
        for i, r in enumerate(rows):
            r["n_ring_points"] = int(n_points[i])
            r["ring_coverage"] = float(coverage[i])
        return {"ring_attractor": ring, "ring_graph": graph}
