"""The task registry: entry-point group ``rnnzoo_train.tasks``, name -> :class:`Task` subclass.

The built-in tasks are registered the same way as third-party ones (in rnnzoo-train's
``pyproject.toml``). A package adds a task with::

    [project.entry-points."rnnzoo_train.tasks"]
    mytask = "my_package.tasks:MyTask"

Entry points are read on every call (cheap), so a task installed while Python runs is seen;
a plugin's module is imported only when its task is requested, so a broken plugin cannot
break the others and names itself in the error.
"""

from __future__ import annotations

import inspect
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from .base import Task

GROUP = "rnnzoo_train.tasks"


class TaskPluginError(RuntimeError):
    """A registered task plugin could not be loaded or is not a :class:`Task` subclass."""


def _entry_points() -> dict[str, list[EntryPoint]]:
    found: dict[str, list[EntryPoint]] = {}
    for ep in entry_points(group=GROUP):
        same = found.setdefault(ep.name, [])
        if all(other.value != ep.value for other in same):  # one dist seen twice is fine
            same.append(ep)
    return found


def available_tasks() -> list[str]:
    """Names of every registered task (built-in and plugins), sorted."""
    return sorted(_entry_points())


def get_task_class(name: str) -> type[Task]:
    """The :class:`Task` subclass registered as ``name``.

    Raises
    ------
    ValueError
        ``name`` is not registered (the message lists the available tasks).
    TaskPluginError
        The plugin is registered twice with different targets, fails to import, or is not a
        :class:`Task` subclass (the message names the plugin and its target).
    """
    registered = _entry_points()
    if name not in registered:
        names = ", ".join(sorted(registered)) or "none (is rnnzoo-train installed?)"
        raise ValueError(f"unknown task {name!r}; available tasks: {names}")
    eps = registered[name]
    if len(eps) > 1:
        targets = " and ".join(f"{ep.value!r}" for ep in eps)
        raise TaskPluginError(
            f"task {name!r} is registered twice ({targets}); uninstall one of the packages"
        )
    ep = eps[0]
    try:
        cls = ep.load()
    except Exception as exc:  # any import-time error of a third-party plugin
        raise TaskPluginError(
            f"task plugin {name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TaskPluginError(
            f"task plugin {name!r} ({ep.value}) is not a subclass of rnnzoo_train.tasks.Task"
        )
    return cls


def get_task(name: str, /, **params: Any) -> Task:
    """Build the task registered as ``name`` with keyword parameters ``params``.

    ``get_task(config["name"], **config["params"])`` rebuilds a task from its
    :meth:`Task.config`.

    Parameters
    ----------
    name : str
        A registered task name, e.g. ``"flipflop"``, ``"sine"``, ``"cdi"``.
    **params
        The task's constructor parameters (defaults: the paper's values).

    Raises
    ------
    ValueError
        Unknown name, unknown parameter name (the message lists the valid ones), or a bad
        parameter value.
    TaskPluginError
        See :func:`get_task_class`.
    """
    cls = get_task_class(name)
    signature = inspect.signature(cls.__init__)
    accepted = [p for p in signature.parameters if p != "self"]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    unknown = sorted(set(params) - set(accepted))
    if unknown and not takes_any:
        raise ValueError(
            f"task {name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"its parameters are: {', '.join(accepted)}"
        )
    return cls(**params)
