"""Reading what the pipeline needs from a zoo, through the packages' public APIs only.

Stored strings come back from Zarr as NumPy ``StringDType``; :func:`clean` turns them into
plain ``str`` object arrays so that comparisons, ``isin`` and plotting behave.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

#: the graph analysis each task's topology distances are computed on (paper Figs 1f, 2e, 3d)
GRAPH_ANALYSES: dict[str, tuple[str, ...]] = {
    "flipflop": ("transition_graph",),
    "sine": ("sine_graph",),
    "cdi": ("line_attractor_graph-context0", "line_attractor_graph-context1"),
}


def as_str(values) -> np.ndarray:
    """Any string-like array (``StringDType``, ``<U``, object) as ``str`` objects."""
    arr = np.asarray(values)
    return np.array([str(v) for v in arr.ravel().tolist()], dtype=object).reshape(arr.shape)


def clean(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with every string variable and coordinate as a ``str`` object array."""
    coords, data = {}, {}
    for name, var in ds.variables.items():
        if var.dtype.kind in "TUS" or (var.dtype == object and var.size):
            target = coords if name in ds.coords else data
            target[name] = (var.dims, as_str(var.values), var.attrs)
    if data:
        ds = ds.assign(data)
    if coords:
        ds = ds.assign_coords(coords)
    return ds


def dynamics(zoo, task: str, name: str) -> xr.Dataset | None:
    """A stored dynamics analysis (``fixed_points``, ``cdi_linear``, ...), or None if absent.

    Read through rnnzoo-dynamics' public reader ``rnnzoo_dynamics.read_analysis`` (the
    analysis store of a read-only zoo included), loaded into memory, strings as ``str``.
    """
    from rnnzoo_dynamics import read_analysis

    ds = read_analysis(zoo, task, name, missing_ok=True)
    return None if ds is None else clean(ds)


def stored(zoo, task: str, name: str) -> xr.Dataset | None:
    """The pipeline's own stored result ``name`` (``paper-distance-*``, ``paper-embedding-*``).

    Loaded into memory, or None if it is not stored. Dynamics analyses are read with
    :func:`dynamics` instead.
    """
    try:
        ds = zoo.analysis(task, name)
    except KeyError:
        return None
    if not isinstance(ds, xr.Dataset):
        return None
    return clean(ds.load())


def index(zoo, task: str) -> pd.DataFrame:
    """The task's index (every network), strings as ``str``."""
    return zoo.index(task)


def ok_networks(zoo, task: str) -> list[str]:
    """Ids of the networks whose training finished (status ``ok``), in index order."""
    df = zoo.index(task)
    return [str(i) for i in df.index[df["status"].astype(str) == "ok"]]


def finite_hidden(zoo, task: str, ids: list[str], which: str = "trained") -> list[str]:
    """The subset of ``ids`` whose probe hidden states are all finite."""
    if not ids:
        return []
    tree = zoo.hidden_states(task, ids, which=which)
    var = f"hidden_{which}"
    keep: set[str] = set()
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False)
        if var not in ds:
            continue
        values = np.asarray(ds[var].values)
        finite = np.isfinite(values.reshape(values.shape[0], -1)).all(axis=1)
        keep |= {str(n) for n, f in zip(ds["network"].values, finite, strict=True) if f}
    return [i for i in ids if i in keep]


def analysed_networks(zoo, task: str) -> list[str]:
    """Networks whose dynamics analysis finished with fixed points (status ``ok``)."""
    summary = dynamics(zoo, task, "dynamics_summary")
    if summary is None:
        return []
    status = summary["analysis_status"].values
    return [str(n) for n, s in zip(summary["network"].values, status, strict=True) if s == "ok"]


def select_rows(ds: xr.Dataset, ids: list[str], dim: str = "network") -> xr.Dataset:
    """Rows of ``ds`` (along ``dim``, keyed by the ``network`` coordinate) for ``ids``."""
    have = as_str(ds["network"].values)
    pos = {n: i for i, n in enumerate(have)}
    rows = [pos[i] for i in ids if i in pos]
    return ds.isel({dim: rows})
