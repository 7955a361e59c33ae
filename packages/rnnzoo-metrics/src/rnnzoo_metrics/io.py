"""Reading networks and writing results for the command line.

Inputs: a folder of ``.npy`` files (one network each, file stem = network id), an
``.npz`` file (one array per network), a 3-D ``.npy`` ``(network, samples, units)``, a
NetCDF file, or a zoo store (Zarr, needs the ``[zoo]`` extra). Results are written as
NetCDF (``.nc``, no extra needed) or Zarr (``.zarr``, ``[zoo]`` extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, require


def _is_zarr(path: Path) -> bool:
    return path.suffix == ".zarr" or (path.is_dir() and (path / "zarr.json").exists())


def open_any(path: str | Path, *, group: str | None = None) -> Any:
    """Open an xarray object from NetCDF or Zarr (a zoo store gives a DataTree)."""
    import xarray as xr

    p = Path(path)
    if not p.exists():
        raise InputError(f"{str(p)!r} does not exist")
    if _is_zarr(p):
        require("zarr", "zoo", f"reading the Zarr store {str(p)!r}")
        tree = xr.open_datatree(p, engine="zarr")
        if group:
            if group.strip("/") not in tree:
                raise InputError(f"{str(p)!r} has no group {group!r}; groups: {list(tree.groups)}")
            tree = tree[group.strip("/")]
        return tree
    if p.suffix == ".nc":
        return xr.open_dataset(p)
    raise InputError(f"{str(p)!r}: expected a .nc file or a .zarr store")


def read_networks(path: str | Path, *, group: str | None = None) -> Any:
    """Networks from a path, in a form :func:`rnnzoo_metrics.pairwise` accepts."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{str(p)!r} does not exist")
    if _is_zarr(p) or p.suffix == ".nc":
        return open_any(p, group=group)
    if p.is_dir():
        files = sorted(p.glob("*.npy"))
        if not files:
            raise InputError(f"{str(p)!r} holds no .npy files (one network per file)")
        return {f.stem: np.load(f, mmap_mode="r") for f in files}
    if p.suffix == ".npz":
        with np.load(p) as z:
            return {k: z[k] for k in z.files}
    if p.suffix == ".npy":
        return np.load(p)
    raise InputError(
        f"{str(p)!r}: expected a folder of .npy files, a .npz, a .npy, a .nc or a .zarr store"
    )


def write_result(obj: Any, path: str | Path) -> Path:
    """Write a DataArray to ``.nc`` (NetCDF) or ``.zarr``; refuse other suffixes."""
    p = Path(path)
    if p.suffix not in (".nc", ".zarr"):
        raise InputError(f"output {str(p)!r}: use a .nc or a .zarr path")
    p.parent.mkdir(parents=True, exist_ok=True)
    ds = obj.to_dataset(name=obj.name or "value")
    for name in list(ds.coords):
        kind = ds[name].dtype.kind
        if p.suffix == ".nc" and kind in "Ob":  # NetCDF-3: no object or bool dtypes
            ds[name] = ds[name].astype(str)
        elif p.suffix == ".zarr" and kind == "U":  # Zarr v3: variable-length strings
            ds[name] = ds[name].astype(object)
    tmp = p.with_name(p.name + ".partial")
    if p.suffix == ".zarr":
        from .store import quiet_zarr

        require("zarr", "zoo", "writing a .zarr result")
        with quiet_zarr():
            ds.to_zarr(tmp, mode="w", consolidated=True, zarr_format=3)
    else:
        ds.to_netcdf(tmp)
    _replace(tmp, p)
    return p


def _replace(tmp: Path, dest: Path) -> None:
    import shutil

    if dest.exists():
        if dest.is_dir():
            shutil.rmtree(dest)
        else:
            dest.unlink()
    tmp.rename(dest)


def read_result(path: str | Path) -> Any:
    """Read a matrix or embedding written by :func:`write_result` as a DataArray."""
    obj = open_any(path)
    ds = obj.to_dataset() if hasattr(obj, "to_dataset") and not hasattr(obj, "data_vars") else obj
    if hasattr(ds, "load"):
        ds = ds.load()
    names = list(ds.data_vars)
    if len(names) != 1:
        raise InputError(f"{str(path)!r} holds {len(names)} variables; expected one result")
    return ds[names[0]]
