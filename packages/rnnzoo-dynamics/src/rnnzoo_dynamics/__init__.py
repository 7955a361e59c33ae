"""rnnzoo-dynamics: fixed points, linearisations and fixed-point graphs of RNN zoos.

The public API is importable from the package root; the submodules stay importable as
before (``from rnnzoo_dynamics.population import AnalysisOptions``)::

    from rnnzoo_dynamics import find_fixed_points, linearize, analyze_zoo, read_analysis

``rnnzoo_dynamics.linearize`` is the function: reach the module's other names with
``from rnnzoo_dynamics.linearize import point_jacobians`` (``import
rnnzoo_dynamics.linearize as m`` binds the function too). See ``docs/dynamics.md`` for the
methods and defaults.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rnnzoo-dynamics")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

from rnnzoo_dynamics.analyze import (
    AnalysisError,
    AnalysisReport,
    analyze_zoo,
    read_analysis,
    summary_table,
)
from rnnzoo_dynamics.cdi import (
    ablation_curve,
    cdi_analysis,
    line_attractor_points,
    mode_contributions,
)
from rnnzoo_dynamics.fixed_points import (
    FinderOptions,
    FixedPoints,
    deduplicate,
    deduplicate_kinds,
    find_fixed_points,
    speed,
)
from rnnzoo_dynamics.flow import ProbeFlow, probe_flow
from rnnzoo_dynamics.graphs import (
    Graph,
    TransitionOptions,
    graphs_to_dataset,
    line_attractor_graph,
    modal_node_count,
    modal_node_counts,
    nearest_neighbour_graph,
    transition_graphs,
)
from rnnzoo_dynamics.initial_states import sample_initial_states, trajectories
from rnnzoo_dynamics.linearize import (
    Eigendecomposition,
    Linearization,
    eigendecomposition,
    linearize,
    point_jacobians,
    stability,
)
from rnnzoo_dynamics.models import (
    Float32Warning,
    ModelError,
    OwnNetwork,
    StepFunctionCell,
    analyze_model,
    as_network,
)
from rnnzoo_dynamics.place import Placement, PlacementError, place_model
from rnnzoo_dynamics.population import AnalysisOptions, analyze_population
from rnnzoo_dynamics.sine import leading_oscillation, representative_points, sine_frequencies

#: public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    # fixed points
    "FinderOptions": "fixed_points",
    "FixedPoints": "fixed_points",
    "find_fixed_points": "fixed_points",
    "deduplicate": "fixed_points",
    "deduplicate_kinds": "fixed_points",
    "speed": "fixed_points",
    # initial states and the probe flow
    "trajectories": "initial_states",
    "sample_initial_states": "initial_states",
    "ProbeFlow": "flow",
    "probe_flow": "flow",
    # linearisation
    "Linearization": "linearize",
    "Eigendecomposition": "linearize",
    "linearize": "linearize",
    "point_jacobians": "linearize",
    "eigendecomposition": "linearize",
    "stability": "linearize",
    # graphs
    "Graph": "graphs",
    "TransitionOptions": "graphs",
    "transition_graphs": "graphs",
    "nearest_neighbour_graph": "graphs",
    "line_attractor_graph": "graphs",
    "graphs_to_dataset": "graphs",
    "modal_node_count": "graphs",
    "modal_node_counts": "graphs",
    # task analyses
    "sine_frequencies": "sine",
    "leading_oscillation": "sine",
    "representative_points": "sine",
    "cdi_analysis": "cdi",
    "line_attractor_points": "cdi",
    "mode_contributions": "cdi",
    "ablation_curve": "cdi",
    # your own network
    "as_network": "models",
    "analyze_model": "models",
    "OwnNetwork": "models",
    "StepFunctionCell": "models",
    "ModelError": "models",
    "Float32Warning": "models",
    "place_model": "place",
    "Placement": "place",
    "PlacementError": "place",
    # populations and zoos
    "AnalysisOptions": "population",
    "analyze_population": "population",
    "AnalysisError": "analyze",
    "AnalysisReport": "analyze",
    "analyze_zoo": "analyze",
    "read_analysis": "analyze",
    "summary_table": "analyze",
}

__all__ = [
    "__version__",
    "FinderOptions",
    "FixedPoints",
    "find_fixed_points",
    "deduplicate",
    "deduplicate_kinds",
    "speed",
    "trajectories",
    "sample_initial_states",
    "ProbeFlow",
    "probe_flow",
    "Linearization",
    "Eigendecomposition",
    "linearize",
    "point_jacobians",
    "eigendecomposition",
    "stability",
    "Graph",
    "TransitionOptions",
    "transition_graphs",
    "nearest_neighbour_graph",
    "line_attractor_graph",
    "graphs_to_dataset",
    "modal_node_count",
    "modal_node_counts",
    "sine_frequencies",
    "leading_oscillation",
    "representative_points",
    "cdi_analysis",
    "line_attractor_points",
    "mode_contributions",
    "ablation_curve",
    "as_network",
    "analyze_model",
    "OwnNetwork",
    "StepFunctionCell",
    "ModelError",
    "Float32Warning",
    "place_model",
    "Placement",
    "PlacementError",
    "AnalysisOptions",
    "analyze_population",
    "AnalysisError",
    "AnalysisReport",
    "analyze_zoo",
    "read_analysis",
    "summary_table",
]
