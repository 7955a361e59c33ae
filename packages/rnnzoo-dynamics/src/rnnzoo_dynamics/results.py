"""xarray Datasets of the dynamics results (docs/architecture.md §6), and their merging.

- :func:`fixed_points_dataset`: dim ``fixed_point``, with the string coordinate ``network``
  (and the index coordinates ``arch, activation, units, l2, seed, status``) along it;
- :func:`summary_dataset`: dim ``network``, one row per network, its analysis status;
- :func:`concat_results`: joins results of several groups (state sizes differ: state and
  mode dimensions are NaN-padded to the largest).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict

import numpy as np
import pandas as pd
import xarray as xr

from rnnzoo_dynamics.fixed_points import FixedPoints
from rnnzoo_dynamics.linearize import Linearization
from rnnzoo_dynamics.sine import leading_oscillation

#: index coordinates carried along ``network`` (docs/architecture.md §4)
NETWORK_COORDS = ("arch", "activation", "units", "l2", "seed", "status")

#: analysis statuses recorded per network in the summary
ANALYSIS_STATUSES = ("ok", "no_fixed_point", "skipped", "failed")


def _options_attrs(points: FixedPoints) -> dict:
    opts = asdict(points.options)
    opts["gradient_dtype"] = str(opts["gradient_dtype"]).replace("torch.", "")
    return {"finder_options": json.dumps(opts)}


def fixed_points_dataset(
    points: FixedPoints,
    lin: Linearization,
    network_ids: Sequence[str],
    condition_labels: dict[str, np.ndarray] | None = None,
    network_coords: pd.DataFrame | None = None,
    n_vectors: int | None = None,
    per_point: dict[str, np.ndarray] | None = None,
) -> xr.Dataset:
    """One row per fixed (or slow) point, with its linearisation.

    Parameters
    ----------
    points, lin : FixedPoints, Linearization
    network_ids : sequence of str, (P,)
        Id of each network of the population.
    condition_labels : dict of str to ndarray (C,), optional
        Labels of the conditions (``omega``, ``context``), carried along ``fixed_point``.
    network_coords : DataFrame, optional
        Index coordinates indexed by network id (columns from :data:`NETWORK_COORDS`).
    n_vectors : int, optional
        Keep the left/right eigenvectors of the ``n_vectors`` largest-``|λ|`` modes only
        (default: all). Eigenvalues are always kept in full.
    per_point : dict of str to ndarray (n_points,), optional
        More variables along ``fixed_point`` (the driver adds ``flow_distance``, and for
        cdi ``attractor_point`` and ``on_line_attractor``).

    Returns
    -------
    Dataset
        Variables ``state (fixed_point, state_dim)`` (NaN-padded beyond the network's state
        size when groups are merged), ``q``, ``kind``, ``n_merged``,
        ``x_star (fixed_point, input)``, ``readout (fixed_point, output)``,
        ``eigenvalue (fixed_point, mode)`` complex, ``right_eigenvector`` and
        ``left_eigenvector (fixed_point, state_dim, vector)`` complex (biorthonormal:
        ``Σ_s conj(left[s, i]) right[s, j] = δ_ij``), ``n_unstable``, ``n_marginal``,
        ``stability``, ``leading_frequency`` (cycles per step of the leading oscillatory
        mode, NaN if none), ``eigenvector_condition``, ``biorthonormality_error``.
    """
    ids = np.asarray(list(network_ids), dtype=object)
    n, S = points.state.shape
    k = S if n_vectors is None or n_vectors < 0 else min(int(n_vectors), S)
    _, freq = leading_oscillation(lin.eig.eigenvalues)
    ds = xr.Dataset(
        {
            "state": (("fixed_point", "state_dim"), points.state),
            "q": ("fixed_point", points.q),
            "kind": ("fixed_point", points.kind.astype(object)),
            "n_merged": ("fixed_point", points.n_merged),
            "x_star": (("fixed_point", "input"), points.x_of_points().astype(np.float64)),
            "readout": (("fixed_point", "output"), lin.readout),
            "eigenvalue": (("fixed_point", "mode"), lin.eig.eigenvalues),
            "right_eigenvector": (("fixed_point", "state_dim", "vector"), lin.eig.right[:, :, :k]),
            "left_eigenvector": (("fixed_point", "state_dim", "vector"), lin.eig.left[:, :, :k]),
            "n_unstable": ("fixed_point", lin.n_unstable.astype(np.int64)),
            "n_marginal": ("fixed_point", lin.n_marginal.astype(np.int64)),
            "stability": ("fixed_point", lin.stability.astype(object)),
            "leading_frequency": ("fixed_point", freq),
            "eigenvector_condition": ("fixed_point", lin.eig.condition),
            "biorthonormality_error": ("fixed_point", lin.eig.biorthonormality_error),
        },
        coords={
            "network": ("fixed_point", ids[points.network] if n else np.zeros(0, object)),
            "condition": ("fixed_point", points.condition),
        },
        attrs={
            "description": "fixed and slow points with their linearisations (rnnzoo-dynamics)",
            "stability_eps": lin.eps,
            "q_definition": "q = 0.5 * ||F(h, x*) - h||^2, float64",
            **_options_attrs(points),
        },
    )
    for name, values in (per_point or {}).items():
        ds[name] = ("fixed_point", np.asarray(values))
    for name, values in (condition_labels or {}).items():
        ds = ds.assign_coords({name: ("fixed_point", np.asarray(values)[points.condition])})
    if network_coords is not None:
        nid = ds["network"].values
        for c in network_coords.columns:
            ds = ds.assign_coords({c: ("fixed_point", network_coords.loc[nid, c].to_numpy())})
    return ds


def summary_dataset(rows: Sequence[dict], network_coords: pd.DataFrame | None = None) -> xr.Dataset:
    """Per-network analysis record (dim ``network``) from one dict per network.

    Each dict has ``network`` (id), ``analysis_status`` (one of :data:`ANALYSIS_STATUSES`),
    ``message`` and numeric fields (``n_fixed``, ``n_slow``, ``n_stable``, ...); missing
    numeric fields are NaN (float) or -1 (counts).
    """
    df = pd.DataFrame(list(rows))
    if df.empty:
        df = pd.DataFrame({"network": [], "analysis_status": [], "message": []})
    df = df.set_index("network")
    data = {}
    for col in df.columns:
        values = df[col]
        if col in ("analysis_status", "message"):
            data[col] = ("network", values.fillna("").astype(str).to_numpy(dtype=object))
        elif col.startswith("n_"):
            data[col] = ("network", values.fillna(-1).astype(np.int64).to_numpy())
        else:
            data[col] = ("network", values.astype(np.float64).to_numpy())
    ds = xr.Dataset(data, coords={"network": df.index.to_numpy(dtype=object)})
    if network_coords is not None:
        ids = list(ds["network"].values)
        ds = ds.assign_coords(
            {c: ("network", network_coords.loc[ids, c].to_numpy()) for c in network_coords.columns}
        )
    return ds


def _pad_to(ds: xr.Dataset, sizes: dict[str, int]) -> xr.Dataset:
    """NaN-pad (or -1 / False / '' for other dtypes) the given dims up to ``sizes``."""
    pad = {d: (0, sizes[d] - ds.sizes[d]) for d in sizes if d in ds.dims and ds.sizes[d] < sizes[d]}
    if not pad:
        return ds
    # coordinates along padded dimensions are dropped (concat_results rebuilds the known ones)
    ds = ds.drop_vars([c for c, v in ds.coords.items() if set(v.dims) & set(pad)])
    out = {}
    for name, var in ds.data_vars.items():
        widths = {d: w for d, w in pad.items() if d in var.dims}
        if not widths:
            out[name] = var
            continue
        kind = var.dtype.kind
        if kind in "fc":
            fill = np.nan
        elif kind == "b":
            fill = False
        elif kind in "iu":
            fill = -1
        else:
            fill = ""
        out[name] = var.pad(widths, constant_values=fill)
    res = xr.Dataset(out, coords=dict(ds.coords.items()))
    res.attrs = ds.attrs
    return res


def concat_results(parts: Sequence[xr.Dataset], dim: str) -> xr.Dataset:
    """Concatenate result Datasets along ``dim`` after padding every other dim to its max.

    Coordinates along padded dimensions (e.g. ``modes_kept``) are rebuilt as ``1..n`` when
    they were a 1-based range, else dropped.
    """
    parts = [p for p in parts if p is not None]
    if not parts:
        return xr.Dataset()
    dims = {d for p in parts for d in p.dims if d != dim}
    sizes = {d: max(p.sizes.get(d, 0) for p in parts) for d in dims}
    padded = [_pad_to(p, sizes) for p in parts]
    out = xr.concat(
        padded, dim=dim, data_vars="all", coords="different", compat="equals", join="outer"
    )
    if "modes_kept" in out.dims and "modes_kept" not in out.coords:
        out = out.assign_coords(modes_kept=np.arange(1, out.sizes["modes_kept"] + 1))
    out.attrs = dict(parts[0].attrs)
    return out
