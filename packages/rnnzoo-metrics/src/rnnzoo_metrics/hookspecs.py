"""The plugin hook of rnnzoo-metrics (pluggy project name ``rnnzoo_metrics``).

A plugin is a module of ``@hookimpl`` functions, found through the entry-point group
``rnnzoo_metrics``. The built-in metrics and input kinds are registered through these same
hooks: ``register_metrics`` (metric classes) and ``register_input_kinds`` (what metrics
compare, with the adapters that read it; :mod:`rnnzoo_metrics.kinds`).

Example
-------
>>> from rnnzoo_metrics import Metric, hookimpl
>>> class MyMetric(Metric):  # doctest: +SKIP
...     name = "my-metric"
...     def prepare(self, x): ...
...     def pair(self, a, b): ...
>>> @hookimpl  # doctest: +SKIP
... def register_metrics(register):
...     register(MyMetric)
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

PROJECT = "rnnzoo_metrics"
ENTRY_POINT_GROUP = "rnnzoo_metrics"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_metrics(register: Callable[[type], None]) -> None:
    """Register metric classes.

    Parameters
    ----------
    register : callable
        Call ``register(MetricSubclass)`` once per metric the plugin provides. The class
        is validated (name, input kind, declared properties, ``prepare``/``pair``) and
        instantiated only when a user asks for it, with the user's parameters.
    """


@hookspec
def register_input_kinds(register: Callable[[object], None]) -> None:
    """Register input kinds (:class:`~rnnzoo_metrics.InputKind`).

    Parameters
    ----------
    register : callable
        Call ``register(InputKind(...))`` once per kind the plugin provides. Kinds are
        registered before any metric, so a plugin's metric may declare its own plugin's
        kind (or any other registered kind) as ``input_kind``.
    """
