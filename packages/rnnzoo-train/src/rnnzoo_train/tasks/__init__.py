"""Tasks: ``flipflop``, ``sine``, ``cdi`` and any task registered by a plugin package.

>>> task = get_task("flipflop", n_steps=50)
>>> batch = task.sample(64, numpy.random.default_rng(0))

See :mod:`rnnzoo_train.tasks.base` for the interface and ``docs/cells-and-tasks.md`` for the
definitions, probe sets, fixed-point conditions and "solved" thresholds.
"""

from __future__ import annotations

from .base import FixedPointConditions, ProbeSet, Task, TaskBatch
from .cdi import ContextDependentIntegration
from .flipflop import FlipFlop
from .registry import GROUP, TaskPluginError, available_tasks, get_task, get_task_class
from .sine import SineWave

__all__ = [
    "GROUP",
    "ContextDependentIntegration",
    "FixedPointConditions",
    "FlipFlop",
    "ProbeSet",
    "SineWave",
    "Task",
    "TaskBatch",
    "TaskPluginError",
    "available_tasks",
    "get_task",
    "get_task_class",
]
