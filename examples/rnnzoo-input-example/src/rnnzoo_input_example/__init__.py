"""Example rnnzoo-metrics plugin that declares a new input kind, ``psth``.

A network of kind ``psth`` is its trial-averaged activity ``(time, units)``. The kind's
adapters read it from arrays, from a zoo (averaging the probe trials) and from a folder of
``.csv`` files; the metric ``psth-norm-corr`` compares the time courses of the population
activity norm ``||psth(t)||`` (1 - Pearson r), so networks of different widths compare.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rnnzoo_metrics import InputError, InputKind, Metric, Networks, hookimpl

KIND = "psth"


def check_psth(x: Any, name: str) -> np.ndarray:
    """One network: a finite float64 array ``(time, units)`` with >= 3 time steps."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"network {name!r}: not a numeric array ({exc})") from None
    if a.ndim != 2 or a.shape[0] < 3 or a.shape[1] < 1:
        raise InputError(
            f"network {name!r}: a psth is 2-D (time >= 3, units >= 1), got shape {a.shape}"
        )
    if not np.isfinite(a).all():
        raise InputError(f"network {name!r}: non-finite values in its psth")
    return a


def psth_from_dataset(ds: Any, variable: str | None) -> Networks | None:
    """Zoo adapter: the variable averaged over every dim but network, time and unit."""
    var = variable or "hidden_trained"
    if var not in ds:
        return None
    da = ds[var]
    if not {"network", "time", "unit"} <= set(da.dims):
        raise InputError(f"variable {var!r} has dims {da.dims}; a psth needs network, time, unit")
    trials = [d for d in da.dims if d not in ("network", "time", "unit")]
    da = da.transpose("network", *trials, "time", "unit")
    ids = [str(v) for v in np.asarray(ds["network"].values)]

    def get(i: int) -> np.ndarray:
        x = np.asarray(da.isel(network=i).values, dtype=np.float64)
        return x.reshape(-1, *x.shape[-2:]).mean(axis=0)

    return Networks(ids, get, KIND)


def read_csv_folder(path: Path) -> dict[str, np.ndarray] | None:
    """File adapter: a folder of ``.csv`` files (one network each; None: not such a folder)."""
    if not path.is_dir():
        return None
    files = sorted(path.glob("*.csv"))
    if not files:
        return None
    out = {}
    for f in files:
        try:
            out[f.stem] = np.loadtxt(f, delimiter=",", ndmin=2)
        except ValueError as exc:
            raise InputError(f"{str(f)!r} is not a numeric CSV table: {exc}") from None
    return out


PSTH = InputKind(
    name=KIND,
    summary="trial-averaged activity (time, units) per network",
    check=check_psth,
    from_dataset=psth_from_dataset,
    read_path=read_csv_folder,
    default_variable="hidden_trained",
)


class PsthNormCorrelation(Metric):
    name = "psth-norm-corr"
    input_kind = KIND
    kind = "distance"
    summary = "1 - Pearson r between the population activity norms ||psth(t)|| over time"
    reference = "rnnzoo-input-example (a demonstration of a plugin input kind)"

    def prepare(self, x: np.ndarray) -> np.ndarray:
        norm = np.linalg.norm(x, axis=1)
        norm = norm - norm.mean()
        scale = np.linalg.norm(norm)
        return norm / scale if scale > 0 else norm

    def pair(self, a: np.ndarray, b: np.ndarray) -> float:
        if a.shape != b.shape:
            raise InputError(f"psths of {len(a)} and {len(b)} time steps cannot be compared")
        return float(1.0 - a @ b)


@hookimpl
def register_input_kinds(register):
    """Declare the ``psth`` input kind with its adapters."""
    register(PSTH)


@hookimpl
def register_metrics(register):
    """The metric that compares networks of kind ``psth``."""
    register(PsthNormCorrelation)
