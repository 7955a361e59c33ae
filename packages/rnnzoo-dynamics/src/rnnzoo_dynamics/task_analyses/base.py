"""The interface of a task-analysis plugin, and the state of one population's analysis.

:func:`rnnzoo_dynamics.population.analyze_population` runs what every task gets (initial
states from the probe trajectories, the fixed-point finder, the boundary pass,
linearisations, the probe flow, ``fixed_points`` and ``summary``) and asks the task's
:class:`TaskAnalysis` for everything that depends on the task, in this order:

1. :attr:`TaskAnalysis.n_starts`, :meth:`~TaskAnalysis.probe`,
   :meth:`~TaskAnalysis.fixed_point_conditions` and :meth:`~TaskAnalysis.condition_trials`:
   how many initial states per condition, from which probe trials;
2. :meth:`~TaskAnalysis.refine`: after the finder, may add points (e.g. from transition
   trajectories that found an attractor the finder missed);
3. :meth:`~TaskAnalysis.point_variables`: extra per-point variables of ``fixed_points``;
4. :meth:`~TaskAnalysis.analyses`: the task's own datasets (keyed by analysis name, listed
   beforehand by :meth:`~TaskAnalysis.analysis_names`), and extra summary columns.

A plugin subclasses :class:`TaskAnalysis` and registers it under the entry-point group
``rnnzoo_dynamics.task_analyses`` with the task's registry name (see
:mod:`rnnzoo_dynamics.task_analyses.registry` and ``docs/plugins.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from rnnzoo_dynamics.initial_states import condition_trials
from rnnzoo_train.tasks.base import FixedPointConditions, ProbeSet, Task

if TYPE_CHECKING:
    from rnnzoo_dynamics.fixed_points import FixedPoints
    from rnnzoo_dynamics.flow import ProbeFlow
    from rnnzoo_dynamics.linearize import Linearization
    from rnnzoo_dynamics.population import AnalysisOptions
    from rnnzoo_train.cells.base import Cell, Params

#: initial states per condition of a task whose plugin does not say
DEFAULT_N_STARTS = 256


@dataclass
class PopulationRun:
    """Everything known about one population's analysis, handed to the plugin's hooks.

    Attributes
    ----------
    task : Task
    cell : Cell
    params : dict of str to Tensor
        Stacked float64 parameters ``(P, ...)``.
    network_ids : list of str, (P,)
    network_coords : DataFrame or None
        Index coordinates per network id (carry them to every dataset).
    options : AnalysisOptions
    probe : ProbeSet
    conditions : FixedPointConditions
    x_star : ndarray, (C, n_inputs)
        The conditions' static inputs in float64.
    trajectories : ndarray, (P, trials, T, S)
        Hidden states on the probe inputs.
    groups : list of ndarray or None
        Probe trials of each condition (``None``: every trial for every condition).
    starts : ndarray, (P, C, K, S)
        The finder's initial states.
    points : FixedPoints
        Unique fixed and slow points (a plugin's :meth:`TaskAnalysis.refine` may replace it).
    lin : Linearization
        At ``points`` (replace it with ``points``).
    n_boundary : ndarray of int, (P,)
        Points added by the boundary pass.
    flow : ProbeFlow or None
        Distance of every point from the probe flow (set before
        :meth:`TaskAnalysis.point_variables`).
    extra : dict
        Room for the plugin's own intermediate results between hooks.
    """

    task: Task
    cell: Cell
    params: Params
    network_ids: list[str]
    network_coords: pd.DataFrame | None
    options: AnalysisOptions
    probe: ProbeSet
    conditions: FixedPointConditions
    x_star: np.ndarray
    trajectories: np.ndarray
    groups: list[np.ndarray] | None
    starts: np.ndarray
    points: FixedPoints
    lin: Linearization
    n_boundary: np.ndarray
    flow: ProbeFlow | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_networks(self) -> int:
        return len(self.network_ids)

    @property
    def n_conditions(self) -> int:
        return len(self.x_star)


class TaskAnalysis:
    """Base class of a task's dynamics analysis (the hooks do nothing by default).

    Parameters
    ----------
    task : Task
        The task instance being analysed (its parameters, e.g. its number of contexts).

    Attributes
    ----------
    name : str
        Shown in outputs, e.g. ``"flipflop"``.
    n_starts : int
        Initial states per fixed-point condition when ``AnalysisOptions.n_starts`` is not
        given (:data:`DEFAULT_N_STARTS`).
    generic : bool
        True only for :class:`~rnnzoo_dynamics.task_analyses.generic.GenericAnalysis`, the
        analysis of a task without a plugin.
    """

    name: ClassVar[str] = ""
    n_starts: ClassVar[int] = DEFAULT_N_STARTS
    generic: ClassVar[bool] = False

    def __init__(self, task: Task):
        self.task = task

    def analysis_names(self) -> list[str]:
        """Names of the datasets :meth:`analyses` returns.

        Besides ``fixed_points`` and ``summary``, which every task has; known before anything
        is computed.
        """
        return []

    def probe(self) -> ProbeSet:
        """The probe inputs whose trajectories seed the finder (default: the task's)."""
        return self.task.probe()

    def fixed_point_conditions(self) -> FixedPointConditions:
        """The static inputs ``x*`` (default: the task's)."""
        return self.task.fixed_point_conditions()

    def condition_trials(
        self, probe: ProbeSet, conditions: FixedPointConditions
    ) -> list[np.ndarray] | None:
        """Probe trials that seed each condition.

        Default: matched on a shared label
        (:func:`rnnzoo_dynamics.initial_states.condition_trials`).
        """
        return condition_trials(probe.labels, conditions.labels)

    def refine(self, run: PopulationRun) -> None:
        """After the finder and the boundary pass: may replace ``run.points``/``run.lin``."""

    def point_variables(self, run: PopulationRun) -> dict[str, np.ndarray]:
        """Extra per-point variables of ``fixed_points``, each of shape ``(n_points, ...)``."""
        return {}

    def analyses(self, run: PopulationRun, rows: list[dict]) -> dict[str, xr.Dataset]:
        """The task's own datasets (dim ``network``), keyed by :meth:`analysis_names`.

        ``rows`` are the summary rows, one per network in ``run.network_ids`` order; add
        the task's summary columns to them in place.
        """
        return {}


def localise(graphs: list, points: FixedPoints) -> list:
    """Node -> position among its network's points (the row order of ``fixed_points``).

    Graphs are built with ``node_point`` = row in the population's :class:`FixedPoints`;
    stored graphs name the row among their own network's points.
    """
    for i, g in enumerate(graphs):
        rows = np.nonzero(points.network == i)[0]
        g.node_point = np.searchsorted(rows, g.node_point).astype(np.int64)
    return graphs
