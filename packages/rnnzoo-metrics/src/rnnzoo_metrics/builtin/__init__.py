"""Built-in metrics, registered through the same ``register_metrics`` hook as plugins."""

from __future__ import annotations

from ..hookspecs import hookimpl
from .cca import PWCCA, SVCCA
from .cka import AngularCKA, DebiasedCKA, LinearCKA, RbfCKA
from .graph import FixedPointGraphDistance, MatchedFixedPointGraphDistance
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
)


@hookimpl
def register_metrics(register):
    """Register every built-in metric."""
    for cls in BUILTIN_METRICS:
        register(cls)
