"""The task-analysis registry: entry-point group ``rnnzoo_dynamics.task_analyses``.

An entry point's *name* is the registry name of the task it analyses (the name under
``rnnzoo_train.tasks``), its *value* a :class:`TaskAnalysis` subclass. The built-in tasks'
analyses are registered the same way (rnnzoo-dynamics' ``pyproject.toml``)::

    [project.entry-points."rnnzoo_dynamics.task_analyses"]
    mytask = "my_package.analysis:MyTaskAnalysis"

A task with no entry point gets :class:`GenericAnalysis`. Entry points are read on every
call; a plugin's module is imported only when its task is analysed, so a broken plugin
names itself in the error and cannot break the analyses of other tasks.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from rnnzoo_train.tasks.base import Task

from .base import TaskAnalysis
from .generic import GenericAnalysis

GROUP = "rnnzoo_dynamics.task_analyses"


class TaskAnalysisPluginError(RuntimeError):
    """A registered task-analysis plugin could not be loaded or is not a TaskAnalysis."""


def _entry_points() -> dict[str, list[EntryPoint]]:
    found: dict[str, list[EntryPoint]] = {}
    for ep in entry_points(group=GROUP):
        same = found.setdefault(ep.name, [])
        if all(other.value != ep.value for other in same):  # one dist seen twice is fine
            same.append(ep)
    return found


def available_task_analyses() -> list[str]:
    """Names of the tasks that have an analysis plugin (built-in and third-party), sorted."""
    return sorted(_entry_points())


def get_task_analysis_class(task_name: str) -> type[TaskAnalysis]:
    """The :class:`TaskAnalysis` subclass registered for ``task_name`` (or the generic one).

    Raises
    ------
    TaskAnalysisPluginError
        Registered twice with different targets, fails to import, or is not a
        :class:`TaskAnalysis` subclass (the message names the plugin and its target).
    """
    eps = _entry_points().get(task_name)
    if not eps:
        return GenericAnalysis
    if len(eps) > 1:
        targets = " and ".join(f"{ep.value!r}" for ep in eps)
        raise TaskAnalysisPluginError(
            f"task {task_name!r} has two analysis plugins ({targets}); uninstall one"
        )
    ep = eps[0]
    try:
        cls = ep.load()
    except Exception as exc:  # any import-time error of a third-party plugin
        raise TaskAnalysisPluginError(
            f"analysis plugin of task {task_name!r} ({ep.value}) failed to load: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, TaskAnalysis)):
        raise TaskAnalysisPluginError(
            f"analysis plugin of task {task_name!r} ({ep.value}) is not a subclass of "
            "rnnzoo_dynamics.task_analyses.TaskAnalysis"
        )
    return cls


def get_task_analysis(task: Task) -> TaskAnalysis:
    """The analysis of ``task``: its registered plugin, or :class:`GenericAnalysis`."""
    return get_task_analysis_class(task.name)(task)
