"""Input kinds: what a metric compares, and the adapters that read it.

A metric declares ``input_kind`` (a name). An :class:`InputKind` says how one network of
that kind is validated (``check``), how many samples it has (``samples``), and how networks
of that kind are read from an xarray Dataset in the zoo layout (``from_dataset``), from a
single stacked array (``from_array``) and from files (``read_path``). Kinds are registered
through the plugin hook ``register_input_kinds`` (:mod:`rnnzoo_metrics.hookspecs`); the
built-in kinds ``activations``, ``graph`` and ``trajectories`` use the same hook, so a
plugin's kind works everywhere a built-in one does (``pairwise``, the command line, tile
stores).

Example
-------
>>> import numpy as np
>>> from rnnzoo_metrics import InputKind, hookimpl
>>> def check(x, name):  # doctest: +SKIP
...     return np.asarray(x, float)
>>> @hookimpl  # doctest: +SKIP
... def register_input_kinds(register):
...     register(InputKind("rates", "firing rates (time, units)", check))
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass(frozen=True)
class InputKind:
    """One kind of metric input and its adapters.

    Parameters
    ----------
    name : str
        The name metrics declare as ``input_kind`` (lower case, digits, ``.``, ``_``, ``-``).
    summary : str
        One line for ``rnnzoo-metrics list`` and error messages.
    check : callable ``(item, network_id) -> item``
        Validate and normalise one network (e.g. to a finite float64 array); raise
        :class:`~rnnzoo_metrics.InputError` with a one-line message naming ``network_id``.
    samples : callable ``(item) -> int or None``, optional
        Samples of a checked network, compared against the metric's ``min_samples`` and
        required to agree across networks; ``None`` (the default) skips both checks.
    from_dataset : callable ``(dataset, variable) -> Networks or None``, optional
        Read every network of one xarray Dataset (one node of a zoo's DataTree), or return
        ``None`` if the Dataset holds none of this kind. Without it, xarray inputs are
        refused with a message naming the kind.
    from_array : callable ``(array) -> Networks``, optional
        Read a single stacked numpy array (network first). Default: one network per entry
        along the first axis.
    read_path : callable ``(path) -> data or None``, optional
        Read networks from a path the built-in readers do not know (the command line's
        input argument, e.g. a folder of ``.csv`` files); return ``None`` to fall back to
        the built-in readers (``.npy`` folder, ``.npz``, ``.npy``, ``.nc``, ``.zarr``).
    default_variable : str, optional
        The xarray variable read when the user names none (e.g. ``hidden_trained``).
    variable_option : bool
        Whether ``variable=`` (``--variable``) selects what ``from_dataset`` reads (False
        for kinds read from fixed variables, such as ``graph``).
    """

    name: str
    summary: str
    check: Callable[[Any, str], Any]
    samples: Callable[[Any], int | None] | None = None
    from_dataset: Callable[[Any, str | None], Any] | None = None
    from_array: Callable[[np.ndarray], Any] | None = None
    read_path: Callable[[Any], Any] | None = None
    default_variable: str | None = None
    variable_option: bool = True

    def sample_count(self, item: Any) -> int | None:
        """Samples of a checked network (``None``: not counted)."""
        return None if self.samples is None else self.samples(item)


def validate_input_kind(kind: Any) -> str | None:
    """Return why ``kind`` is not a usable :class:`InputKind`, or None if it is."""
    if not isinstance(kind, InputKind):
        return f"registered {kind!r} as an input kind; expected an rnnzoo_metrics.InputKind"
    if not isinstance(kind.name, str) or not _NAME.match(kind.name):
        return f"input kind {kind.name!r} has an invalid name (use lower case, digits, '-')"
    if not callable(kind.check):
        return f"input kind {kind.name!r}: check must be callable"
    for attr in ("samples", "from_dataset", "from_array", "read_path"):
        value = getattr(kind, attr)
        if value is not None and not callable(value):
            return f"input kind {kind.name!r}: {attr} must be callable or None"
    return None
