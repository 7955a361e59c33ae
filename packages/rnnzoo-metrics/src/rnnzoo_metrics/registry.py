"""Plugin manager: finds, loads and validates metric plugins (lazily, on first use).

Built-in metrics and input kinds (:mod:`rnnzoo_metrics.builtin`) are registered through
the same ``register_metrics`` and ``register_input_kinds`` hooks as third-party plugins,
which are found through the entry-point group ``rnnzoo_metrics``. A plugin that fails to
import, has a wrong hook signature, or raises while registering is skipped with a
:class:`~rnnzoo_metrics.errors.PluginWarning` that names it; the built-ins and the other
plugins keep working.

Set ``RNNZOO_METRICS_DISABLE_PLUGINS=1`` to load the built-ins only, or to a
comma-separated list of plugin (entry-point) names to skip just those.
"""

from __future__ import annotations

import difflib
import importlib
import os
import threading
import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .errors import InputError, PluginError, PluginWarning, UnknownMetricError
from .kinds import InputKind, validate_input_kind
from .metric import Metric, MetricInfo, validate_metric_class

ENV_DISABLE = "RNNZOO_METRICS_DISABLE_PLUGINS"
BUILTIN_PLUGIN = "builtins"
BUILTIN_MODULE = "rnnzoo_metrics.builtin"


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be used, and why."""

    plugin: str
    distribution: str
    reason: str

    def __str__(self) -> str:
        return f"plugin {self.plugin!r} ({self.distribution}) {self.reason}"


def _disabled() -> tuple[bool, set[str]]:
    value = os.environ.get(ENV_DISABLE, "").strip()
    if value.lower() in ("", "0", "false", "no", "off"):
        return False, set()
    if value.lower() in ("1", "true", "yes", "on", "all", "*"):
        return True, set()
    return False, {v.strip() for v in value.split(",") if v.strip()}


def _self_distribution() -> str:
    try:
        return f"rnnzoo-metrics {metadata.version('rnnzoo-metrics')}"
    except metadata.PackageNotFoundError:  # pragma: no cover - source tree
        return "rnnzoo-metrics"


class Registry:
    """The metrics known in this process (built-ins plus loaded plugins)."""

    def __init__(self) -> None:
        self.metrics: dict[str, tuple[type[Metric], str, str]] = {}
        self.kinds: dict[str, tuple[InputKind, str, str]] = {}
        self.failures: list[PluginFailure] = []
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._providers: dict[str, tuple[str, str]] = {}
        self._load()

    # -- loading -------------------------------------------------------------------------
    def _fail(self, plugin: str, dist: str, reason: str) -> None:
        failure = PluginFailure(plugin, dist, reason)
        self.failures.append(failure)
        warnings.warn(
            f"{failure}; skipped (built-in metrics still work; "
            f"set {ENV_DISABLE}={plugin} to silence)",
            PluginWarning,
            stacklevel=4,
        )

    def _register_module(self, module: Any, name: str, dist: str) -> bool:
        try:
            self.pm.register(module, name=name)
        except pluggy.PluginValidationError as exc:
            self._fail(name, dist, f"has a wrong hook signature: {exc}")
            return False
        except ValueError as exc:  # already registered under another name
            self._fail(name, dist, f"could not be registered: {exc}")
            return False
        callers = self.pm.get_hookcallers(module) or []
        unknown = [c.name for c in callers if c.spec is None]
        if unknown or not callers:
            self.pm.unregister(module)
            what = f"defines unknown hook {unknown[0]!r}" if unknown else "defines no hook"
            self._fail(
                name,
                dist,
                f"{what}: expected `@hookimpl def register_metrics(register)` "
                "(or `register_input_kinds`)",
            )
            return False
        self._providers[name] = (dist, name)
        return True

    def _load(self) -> None:
        builtin = importlib.import_module(BUILTIN_MODULE)
        self._register_module(builtin, BUILTIN_PLUGIN, _self_distribution())
        off_all, off_some = _disabled()
        if not off_all:
            importlib.invalidate_caches()
            for ep in sorted(
                metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP), key=lambda e: e.name
            ):
                if ep.value == BUILTIN_MODULE or ep.name in off_some:
                    continue
                dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "unknown distribution"
                if ep.name in self._providers:
                    self._fail(ep.name, dist, "uses a plugin name that is already taken")
                    continue
                try:
                    module = ep.load()
                except Exception as exc:  # any import-time failure of foreign code
                    self._fail(
                        ep.name, dist, f"failed to import {ep.value!r}: {type(exc).__name__}: {exc}"
                    )
                    continue
                self._register_module(module, ep.name, dist)
        # kinds first: a metric may declare any registered kind, its own plugin's included
        for impl in self.pm.hook.register_input_kinds.get_hookimpls():
            self._call_kinds_impl(impl)
        for impl in self.pm.hook.register_metrics.get_hookimpls():
            self._call_impl(impl)

    def _call_kinds_impl(self, impl: Any) -> None:
        name = impl.plugin_name
        dist = self._providers.get(name, ("unknown distribution", name))[0]
        pending: list[InputKind] = []
        problems: list[str] = []

        def register(kind: Any) -> None:
            why = validate_input_kind(kind)
            if why:
                problems.append(why)
            else:
                pending.append(kind)

        try:
            impl.function(register=register)
        except Exception as exc:
            self._fail(name, dist, f"raised in register_input_kinds: {type(exc).__name__}: {exc}")
            return
        for why in problems:
            self._fail(name, dist, why)
        for kind in pending:
            if kind.name in self.kinds:
                other = self.kinds[kind.name][1]
                self._fail(
                    name, dist, f"registers input kind {kind.name!r}, already provided by {other}"
                )
                continue
            self.kinds[kind.name] = (kind, dist, name)

    def _call_impl(self, impl: Any) -> None:
        name = impl.plugin_name
        dist = self._providers.get(name, ("unknown distribution", name))[0]
        pending: list[type[Metric]] = []
        problems: list[str] = []

        def register(cls: Any) -> None:
            why = validate_metric_class(cls, tuple(self.kinds))
            if why:
                problems.append(why)
            else:
                pending.append(cls)

        try:
            impl.function(register=register)
        except Exception as exc:
            self._fail(name, dist, f"raised in register_metrics: {type(exc).__name__}: {exc}")
            return
        for why in problems:
            self._fail(name, dist, why)
        for cls in pending:
            if cls.name in self.metrics:
                other = self.metrics[cls.name][1]
                self._fail(
                    name, dist, f"registers metric {cls.name!r}, already provided by {other}"
                )
                continue
            self.metrics[cls.name] = (cls, dist, name)

    # -- queries -------------------------------------------------------------------------
    def names(self) -> list[str]:
        return sorted(self.metrics)

    def info(self, name: str) -> MetricInfo:
        cls, dist, plugin = self._lookup(name)
        return cls.info(provider=dist, plugin=plugin)

    def get(self, name: str, **params: Any) -> Metric:
        cls, _, _ = self._lookup(name)
        return cls(**params)

    def input_kind(self, name: str) -> InputKind:
        """The registered :class:`InputKind` called ``name``."""
        if name in self.kinds:
            return self.kinds[name][0]
        msg = f"unknown input kind {name!r}; registered: {', '.join(sorted(self.kinds))}"
        if self.failures:
            msg += "; plugins that failed to load: " + "; ".join(map(str, self.failures))
        raise InputError(msg)

    def _lookup(self, name: str) -> tuple[type[Metric], str, str]:
        if name in self.metrics:
            return self.metrics[name]
        msg = f"unknown metric {name!r}"
        close = difflib.get_close_matches(str(name), self.names(), n=1)
        if close:
            msg += f" (did you mean {close[0]!r}?)"
        msg += f"; available: {', '.join(self.names())}"
        if self.failures:
            msg += "; plugins that failed to load: " + "; ".join(map(str, self.failures))
        raise UnknownMetricError(msg)


_lock = threading.Lock()
_registry: Registry | None = None


def registry() -> Registry:
    """The process-wide registry, created (and plugins loaded) on first use."""
    global _registry
    with _lock:
        if _registry is None:
            _registry = Registry()
        return _registry


def reload_plugins() -> Registry:
    """Forget loaded plugins and scan the entry points again (after a ``pip install``)."""
    global _registry
    with _lock:
        _registry = None
    return registry()


def get_metric(name: str | Metric, **params: Any) -> Metric:
    """Instantiate a registered metric by name with the given parameters.

    Parameters
    ----------
    name : str or Metric
        A registered metric name (see :func:`available_metrics`), or an instance, which is
        returned as is (then ``params`` must be empty).
    **params
        The metric's parameters (see its ``parameters`` declaration).

    Returns
    -------
    Metric
    """
    if isinstance(name, Metric):
        if params:
            raise PluginError("pass parameters either to the Metric instance or by name, not both")
        return name
    return registry().get(name, **params)


def available_metrics() -> list[MetricInfo]:
    """Declared properties of every registered metric, sorted by name."""
    reg = registry()
    return [reg.info(n) for n in reg.names()]


def input_kind(name: str) -> InputKind:
    """The registered :class:`~rnnzoo_metrics.InputKind` called ``name`` (built-in or plugin)."""
    return registry().input_kind(name)


def available_input_kinds() -> list[dict[str, str]]:
    """Every registered input kind: name, summary, provider and plugin, sorted by name."""
    reg = registry()
    return [
        {
            "name": k,
            "summary": reg.kinds[k][0].summary,
            "provider": reg.kinds[k][1],
            "plugin": reg.kinds[k][2],
        }
        for k in sorted(reg.kinds)
    ]


def plugin_failures() -> list[PluginFailure]:
    """Plugins that were skipped because they are broken, with the reason."""
    return list(registry().failures)
