"""rnnzoo-metrics: fast all-pairs similarity between populations of neural networks.

>>> import numpy as np, rnnzoo_metrics as rm
>>> nets = [np.random.default_rng(i).normal(size=(200, 16)) for i in range(4)]
>>> d = rm.pairwise(nets, "svcca", progress=False)
>>> d.dims
('network', 'network_to')

Metrics are pluggy plugins (entry-point group ``rnnzoo_metrics``); see
:func:`available_metrics` and ``docs/plugins.md``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rnnzoo-metrics")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

from .embedding import classical_mds, drop_incomparable, embed
from .engine import pairwise
from .errors import (
    InputError,
    MetricsError,
    MissingExtraError,
    PluginError,
    PluginWarning,
    UnknownMetricError,
)
from .graphs import FixedPointGraph
from .hookspecs import hookimpl
from .inputs import Networks, as_networks
from .kinds import InputKind
from .metric import Metric, MetricInfo
from .registry import (
    available_input_kinds,
    available_metrics,
    get_metric,
    input_kind,
    plugin_failures,
    reload_plugins,
)

__all__ = [
    "FixedPointGraph",
    "InputError",
    "InputKind",
    "Metric",
    "MetricInfo",
    "MetricsError",
    "MissingExtraError",
    "Networks",
    "PluginError",
    "PluginWarning",
    "UnknownMetricError",
    "__version__",
    "as_networks",
    "available_input_kinds",
    "available_metrics",
    "classical_mds",
    "drop_incomparable",
    "embed",
    "get_metric",
    "hookimpl",
    "input_kind",
    "pairwise",
    "plugin_failures",
    "reload_plugins",
]
