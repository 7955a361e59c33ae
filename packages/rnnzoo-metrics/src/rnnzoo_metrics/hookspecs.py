"""The plugin hook of rnnzoo-metrics (pluggy project name ``rnnzoo_metrics``).

A plugin is a module of ``@hookimpl`` functions, found through the entry-point group
``rnnzoo_metrics``. The built-in metrics are registered through this same hook.

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
