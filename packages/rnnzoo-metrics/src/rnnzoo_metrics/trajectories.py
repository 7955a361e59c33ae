"""The ``trajectories`` input kind: one network is an array ``(trials, time, units)``.

Dynamical comparisons (DSA, :mod:`rnnzoo_metrics.dsa`) need the time axis that the
``activations`` kind flattens away. From a zoo, the variable (default ``hidden_trained``,
dims ``(network, probe, time, unit)``) gives each network's ``(probe, time, unit)`` states;
any dims other than ``network``, ``time`` and ``unit`` are flattened into trials.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InputError
from .graphs import FixedPointGraph
from .inputs import DEFAULT_VARIABLE, Networks, _ids, _network_coords

KIND = "trajectories"


def check_trajectories(x: Any, name: str) -> np.ndarray:
    """Validate one network's trajectories; return float64 ``(trials, time, units)``.

    A 2-D array ``(time, units)`` is one trial.
    """
    if isinstance(x, FixedPointGraph):
        raise InputError(
            f"network {name!r} is a fixed-point graph but this metric compares trajectories"
        )
    if np.iscomplexobj(x):
        raise InputError(f"network {name!r}: complex trajectories; pass real arrays")
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"network {name!r}: not a numeric array ({exc})") from None
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise InputError(
            f"network {name!r}: trajectories must be 3-D (trials, time, units), got shape {a.shape}"
        )
    if a.shape[0] < 1 or a.shape[1] < 2 or a.shape[2] < 1:
        raise InputError(
            f"network {name!r}: needs >= 1 trial, >= 2 time steps and >= 1 unit, got {a.shape}"
        )
    bad = ~np.isfinite(a)
    if bad.any():
        k, t, u = np.argwhere(bad)[0]
        raise InputError(
            f"network {name!r}: {int(bad.sum())} non-finite values (trial {k}, time {t}, "
            f"unit {u}); remove diverged networks"
        )
    return a


def trajectories_from_array(data: np.ndarray) -> Networks:
    """Networks of a stacked array ``(network, trials, time, units)``.

    A 3-D array ``(network, time, units)`` gives one trial per network.
    """
    if data.ndim not in (3, 4):
        raise InputError(
            "a trajectories array must be 4-D (network, trials, time, units) or 3-D "
            f"(network, time, units), got shape {data.shape}"
        )
    return Networks([str(i) for i in range(len(data))], data.__getitem__, KIND)


def trajectories_from_dataset(ds: Any, variable: str | None) -> Networks | None:
    """The zoo adapter: ``(trials, time, unit)`` per network from ``variable``."""
    var = variable or DEFAULT_VARIABLE
    if var not in ds:
        return None
    da = ds[var]
    missing = [d for d in ("network", "time", "unit") if d not in da.dims]
    if missing:
        raise InputError(
            f"variable {var!r} has dims {da.dims}; trajectories need 'network', 'time' and 'unit'"
        )
    trial_dims = [d for d in da.dims if d not in ("network", "time", "unit")]
    da = da.transpose("network", *trial_dims, "time", "unit")

    def get(i: int) -> np.ndarray:
        x = np.asarray(da.isel(network=i).values)
        return x.reshape(-1, x.shape[-2], x.shape[-1])

    return Networks(_ids(ds), get, KIND, _network_coords(ds))
