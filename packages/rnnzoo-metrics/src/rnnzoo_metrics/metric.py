"""The :class:`Metric` base class that every metric plugin subclasses.

A metric is ``prepare(x) -> cache`` (once per network) plus ``pair(cache_a, cache_b) ->
float``, optionally a vectorised ``block(caches_a, caches_b) -> ndarray``. The engine
(:func:`rnnzoo_metrics.pairwise`) owns caching, tiling, parallelism and progress.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from .errors import MetricsError

BUILTIN_INPUT_KINDS = ("activations", "graph", "trajectories")  # more come from plugins
KINDS = ("distance", "similarity")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass(frozen=True)
class MetricInfo:
    """What a metric declares about itself (shown by ``rnnzoo-metrics list``)."""

    name: str
    input_kind: str
    kind: str
    is_metric: bool
    deterministic: bool
    summary: str
    reference: str
    parameters: dict[str, Any] = field(default_factory=dict)
    provider: str = ""
    plugin: str = ""
    min_samples: int = 2
    scale_invariant: bool = False


class Metric:
    """Base class of every metric (built-in or plugin).

    Subclasses set the class attributes below and implement :meth:`prepare` and
    :meth:`pair`; :meth:`block` is an optional vectorised version of :meth:`pair` over a
    tile of networks.

    Attributes
    ----------
    name : str
        Registry name, lower case, e.g. ``"svcca"``.
    input_kind : str
        A registered input kind (:mod:`rnnzoo_metrics.kinds`; plugins add their own).
        Built in: ``"activations"``: ``prepare`` receives one float64 array
        ``(samples, units)``, already checked to be finite, with the same number of samples
        for every network. ``"graph"``: ``prepare`` receives a
        :class:`~rnnzoo_metrics.FixedPointGraph`. ``"trajectories"``: ``prepare`` receives
        one finite float64 array ``(trials, time, units)``.
    kind : {"distance", "similarity"}
        What ``pair`` returns.
    is_metric : bool
        True if the distance is a true (pseudo)metric: symmetric, zero on identical
        inputs, and obeying the triangle inequality.
    deterministic : bool
        False if the value depends on a ``seed`` parameter.
    summary, reference : str
        One line each, for ``rnnzoo-metrics list`` and the docs.
    parameters : dict
        Parameter names and default values. Users pass them as keyword arguments (or as
        ``--param name=value`` on the command line, converted to the default's type).
    min_samples : int
        Fewest samples per network (activations) for which the value can tell networks
        apart; the engine refuses fewer, naming the metric, the count and this minimum.
        Centring leaves ``samples - 1`` dimensions, so with 2 samples every network is one
        direction and every rotation- and scale-invariant comparison is the same for all
        pairs: such metrics declare 3. Default 2 (the least any activations may have).
    scale_invariant : bool
        True if multiplying a network's activations by any ``c > 0`` leaves every value
        unchanged by definition. Built-in metrics that declare it rescale each network by a
        power of two in ``prepare`` (exact), so that they give the same value at any scale
        that float64 can hold (tested from 1e-150 to 1e150).
    """

    name: ClassVar[str] = ""
    input_kind: ClassVar[str] = "activations"
    kind: ClassVar[str] = "distance"
    is_metric: ClassVar[bool] = False
    deterministic: ClassVar[bool] = True
    summary: ClassVar[str] = ""
    reference: ClassVar[str] = ""
    parameters: ClassVar[dict[str, Any]] = {}
    min_samples: ClassVar[int] = 2
    scale_invariant: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            allowed = ", ".join(sorted(self.parameters)) or "none"
            raise MetricsError(
                f"metric {self.name!r} has no parameter {unknown[0]!r}; its parameters: {allowed}"
            )
        merged = dict(self.parameters)
        for key, value in params.items():
            merged[key] = _convert(self.name, key, value, self.parameters[key])
        self.params: dict[str, Any] = merged
        self.check_params()

    # -- to override ---------------------------------------------------------------------
    def check_params(self) -> None:
        """Validate ``self.params``; raise :class:`MetricsError` with a one-line message."""

    def prepare(self, x: Any) -> Any:
        """Per-network work, done once: return a cache (arrays, small objects)."""
        raise NotImplementedError

    def pair(self, a: Any, b: Any) -> float:
        """The value for one pair of prepared networks."""
        raise NotImplementedError

    def block(self, caches_a: Sequence[Any], caches_b: Sequence[Any]) -> np.ndarray:
        """Values for every pair of a tile, shape ``(len(caches_a), len(caches_b))``.

        The engine passes the *same* list object twice for a tile on the diagonal, so an
        implementation may use a symmetric product there. The default loops over
        :meth:`pair`.
        """
        out = np.empty((len(caches_a), len(caches_b)))
        same = caches_a is caches_b
        for i, a in enumerate(caches_a):
            for j, b in enumerate(caches_b):
                if same and j < i:
                    out[i, j] = out[j, i]
                elif same and i == j:
                    out[i, j] = self.self_value
                else:
                    out[i, j] = self.pair(a, b)
        return out

    def width(self, cache: Any) -> int:
        """Columns this network adds to a stacked tile product (sizes the default tile)."""
        return 1

    # -- derived -------------------------------------------------------------------------
    @property
    def self_value(self) -> float:
        """Value of a network compared with itself (0 for distances, 1 for similarities)."""
        return 0.0 if self.kind == "distance" else 1.0

    @classmethod
    def info(cls, provider: str = "", plugin: str = "") -> MetricInfo:
        """The declared properties of this metric class."""
        return MetricInfo(
            name=cls.name,
            input_kind=cls.input_kind,
            kind=cls.kind,
            is_metric=bool(cls.is_metric),
            deterministic=bool(cls.deterministic),
            summary=cls.summary,
            reference=cls.reference,
            parameters=dict(cls.parameters),
            provider=provider,
            plugin=plugin,
            min_samples=int(cls.min_samples),
            scale_invariant=bool(cls.scale_invariant),
        )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


def validate_metric_class(cls: Any, input_kinds: Sequence[str] | None = None) -> str | None:
    """Return why ``cls`` is not a usable metric class, or None if it is.

    ``input_kinds``: the registered input kind names (default: the built-in ones).
    """
    kinds = tuple(BUILTIN_INPUT_KINDS if input_kinds is None else input_kinds)
    if not isinstance(cls, type) or not issubclass(cls, Metric):
        return f"registered {cls!r}, which is not a subclass of rnnzoo_metrics.Metric"
    if not isinstance(cls.name, str) or not _NAME.match(cls.name):
        return (
            f"metric class {cls.__name__} has an invalid name {cls.name!r} "
            "(use lower case, digits, '-')"
        )
    if not isinstance(cls.input_kind, str) or cls.input_kind not in kinds:
        return (
            f"metric {cls.name!r}: input_kind must be a registered input kind "
            f"({', '.join(sorted(kinds))}), not {cls.input_kind!r}"
        )
    if cls.kind not in KINDS:
        return f"metric {cls.name!r}: kind must be one of {KINDS}, not {cls.kind!r}"
    ms = cls.min_samples
    if isinstance(ms, bool) or not isinstance(ms, (int, np.integer)) or ms < 2:
        return f"metric {cls.name!r}: min_samples must be an integer >= 2, not {ms!r}"
    if cls.prepare is Metric.prepare or cls.pair is Metric.pair:
        return f"metric {cls.name!r} must implement prepare() and pair()"
    if not cls.deterministic and "seed" not in cls.parameters:
        return (
            f"metric {cls.name!r} is declared seeded (deterministic=False) "
            "but has no 'seed' parameter"
        )
    return None


def _convert(metric: str, key: str, value: Any, default: Any) -> Any:
    """Convert a command-line string to the type of the parameter's default."""
    if not isinstance(value, str) or isinstance(default, str):
        return value
    try:
        if isinstance(default, bool):
            low = value.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if value.lower() == "none":
            return None
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value  # a plain word, e.g. a mode name
    except ValueError:
        raise MetricsError(
            f"metric {metric!r}: parameter {key}={value!r} is not a valid "
            f"{type(default).__name__} (default {default!r})"
        ) from None
