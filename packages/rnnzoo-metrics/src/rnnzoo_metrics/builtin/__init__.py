"""Built-in metrics and input kinds, registered through the same hooks as plugins."""

from __future__ import annotations

from ..hookspecs import hookimpl
from .cca import PWCCA, SVCCA
from .cka import AngularCKA, DebiasedCKA, LinearCKA, RbfCKA
from .dsa import DSA
from .graph import FixedPointGraphDistance, MatchedFixedPointGraphDistance
from .kinds import BUILTIN_INPUT_KINDS
from .procrustes import Procrustes

BUILTIN_METRICS = (
    SVCCA,
    PWCCA,
    LinearCKA,
    AngularCKA,
    DebiasedCKA,
    RbfCKA,
    Procrustes,
    FixedPointGraphDistance,
    MatchedFixedPointGraphDistance,
    DSA,
)


@hookimpl
def register_metrics(register):
    """Register every built-in metric."""
    for cls in BUILTIN_METRICS:
        register(cls)


@hookimpl
def register_input_kinds(register):
    """Register every built-in input kind (activations, graph, trajectories)."""
    for kind in BUILTIN_INPUT_KINDS:
        register(kind)
