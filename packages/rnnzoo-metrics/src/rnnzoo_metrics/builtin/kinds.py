"""The built-in input kinds, registered through the ``register_input_kinds`` hook."""

from __future__ import annotations

from ..inputs import (
    DEFAULT_VARIABLE,
    activations_from_array,
    activations_from_dataset,
    check_activations,
    check_graph,
    graphs_from_dataset,
)
from ..kinds import InputKind
from ..trajectories import check_trajectories, trajectories_from_array, trajectories_from_dataset

ACTIVATIONS = InputKind(
    name="activations",
    summary="states (samples, units) per network; every network probed with the same inputs",
    check=check_activations,
    samples=lambda x: x.shape[0],
    from_dataset=activations_from_dataset,
    from_array=activations_from_array,
    default_variable=DEFAULT_VARIABLE,
)
GRAPH = InputKind(
    name="graph",
    summary="fixed-point transition graph per network (rnnzoo-dynamics' graph_* variables)",
    check=check_graph,
    from_dataset=graphs_from_dataset,
    default_variable="graph_weight",
    variable_option=False,
)
TRAJECTORIES = InputKind(
    name="trajectories",
    summary="states (trials, time, units) per network, time kept (dynamical metrics: DSA)",
    check=check_trajectories,
    from_dataset=trajectories_from_dataset,
    from_array=trajectories_from_array,
    default_variable=DEFAULT_VARIABLE,
)
BUILTIN_INPUT_KINDS = (ACTIVATIONS, GRAPH, TRAJECTORIES)
