"""Exceptions and warnings of rnnzoo-metrics.

Every error a user can cause is a :class:`MetricsError` whose message is one line saying
what was wrong and what to do; the CLI prints it and exits with status 2, no traceback.
"""

from __future__ import annotations


class MetricsError(ValueError):
    """Base class of every user-facing error raised by rnnzoo-metrics."""


class InputError(MetricsError):
    """The networks given to a metric are unusable (NaN, shapes, sample counts...)."""


class UnknownMetricError(MetricsError, KeyError):
    """No registered metric has the requested name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PluginError(MetricsError):
    """A metric plugin failed to import, to register or to declare its metrics."""


class MissingExtraError(MetricsError, ImportError):
    """An optional dependency (an ``[extra]`` of rnnzoo-metrics) is not installed."""


class PluginWarning(UserWarning):
    """A plugin was skipped because it is broken; the built-in metrics still work."""


def require(module: str, extra: str, purpose: str):
    """Import an optional dependency or raise a one-line error naming the extra.

    Parameters
    ----------
    module : str
        Module to import, e.g. ``"zarr"``.
    extra : str
        The rnnzoo-metrics extra that provides it, e.g. ``"zoo"``.
    purpose : str
        What needs it, for the message, e.g. ``"reading a zoo store"``.

    Returns
    -------
    module
        The imported module.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{purpose} needs {module!r}, which is not installed: "
            f"run `pip install 'rnnzoo-metrics[{extra}]'`"
        ) from exc
