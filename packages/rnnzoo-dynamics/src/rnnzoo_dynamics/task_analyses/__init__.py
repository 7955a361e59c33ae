"""Task-analysis plugins: each task's own dynamics analyses, found from the task's name.

>>> analysis = get_task_analysis(get_task("flipflop"))  # FlipFlopAnalysis
>>> analysis.analysis_names()
['transition_graph']

Built in: ``flipflop`` (:class:`FlipFlopAnalysis`: transition graphs), ``sine``
(:class:`SineAnalysis`: input-dependent fixed points and frequencies), ``cdi``
(:class:`CDIAnalysis`: line attractors, linear spectra, mode ablation). A task without a
plugin gets :class:`GenericAnalysis`. See :mod:`.base` for the hooks and ``docs/plugins.md``
for writing one.
"""

from __future__ import annotations

from .base import DEFAULT_N_STARTS, PopulationRun, TaskAnalysis, localise
from .cdi import CDIAnalysis
from .flipflop import FlipFlopAnalysis
from .generic import GENERIC, GenericAnalysis
from .registry import (
    GROUP,
    TaskAnalysisPluginError,
    available_task_analyses,
    get_task_analysis,
    get_task_analysis_class,
)
from .sine import SineAnalysis
from .transitions import TransitionGraphAnalysis

__all__ = [
    "DEFAULT_N_STARTS",
    "GENERIC",
    "GROUP",
    "CDIAnalysis",
    "FlipFlopAnalysis",
    "GenericAnalysis",
    "PopulationRun",
    "SineAnalysis",
    "TaskAnalysis",
    "TaskAnalysisPluginError",
    "TransitionGraphAnalysis",
    "available_task_analyses",
    "get_task_analysis",
    "get_task_analysis_class",
    "localise",
]
