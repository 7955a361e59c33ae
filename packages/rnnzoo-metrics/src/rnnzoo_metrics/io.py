"""Reading networks and writing results for the command line.

Inputs: a folder of ``.npy`` files (one network each, file stem = network id), an
``.npz`` file (one array per network), a 3-D ``.npy`` ``(network, samples, units)``, a
NetCDF file, or a zoo store (Zarr, needs the ``[zoo]`` extra). Results are written as
NetCDF (``.nc``, no extra needed) or Zarr (``.zarr``, ``[zoo]`` extra), marked as
rnnzoo-metrics results and published atomically (:mod:`rnnzoo_metrics.targets`,
:mod:`rnnzoo_metrics.atomic`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .atomic import publish, remove_temp, temp_path
from .errors import InputError, require
from .targets import RESULT_ATTR, VERSION_ATTR, check_output, identify

RESULT_SUFFIXES = (".nc", ".zarr")


def _is_zarr(path: Path) -> bool:
    return path.suffix == ".zarr" or (path.is_dir() and (path / "zarr.json").exists())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _zarr_groups(path: Path) -> list[str]:
    """Top-level groups of a Zarr v3 store, from their ``zarr.json`` (no zarr needed)."""
    import json

    out = []
    for child in sorted(path.iterdir()):
        try:
            meta = json.loads((child / "zarr.json").read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and meta.get("node_type") == "group":
            out.append(child.name)
    return out


def open_any(path: str | Path, *, group: str | None = None) -> Any:
    """Open an xarray object from NetCDF or Zarr (a zoo store gives a DataTree)."""
    import xarray as xr

    p = Path(path)
    if not p.exists():
        raise InputError(f"{str(p)!r} does not exist")
    if _is_zarr(p):
        if not (p / "zarr.json").is_file():
            raise InputError(
                f"{str(p)!r} is not a Zarr store (no zarr.json); pass a zoo store, a .nc file "
                "or a folder of .npy files"
            )
        parts = group.strip("/").split("/") if group else []
        if any(part in ("", ".", "..") for part in parts) and group.strip("/"):
            raise InputError(f"--group {group!r}: use a group path such as flipflop")
        if group and group.strip("/") and not (p / group.strip("/") / "zarr.json").is_file():
            raise InputError(
                f"{str(p)!r} has no group {group!r}; its groups: {', '.join(_zarr_groups(p))}"
            )
        require("zarr", "zoo", f"reading the Zarr store {str(p)!r}")
        try:
            with warnings.catch_warnings():  # a store without consolidated metadata is fine
                warnings.filterwarnings("ignore", "Failed to open Zarr store", RuntimeWarning)
                tree = xr.open_datatree(p, engine="zarr")
        except Exception as exc:  # damaged metadata of any kind: one line, no traceback
            raise InputError(f"cannot read the Zarr store {str(p)!r}: {_first_line(exc)}") from None
        if group and group.strip("/"):
            tree = tree[group.strip("/")]
        return tree
    if p.suffix == ".nc":
        try:
            return xr.open_dataset(p)
        except Exception as exc:  # not NetCDF, or damaged
            raise InputError(f"cannot read {str(p)!r} as NetCDF: {_first_line(exc)}") from None
    raise InputError(f"{str(p)!r}: expected a .nc file or a .zarr store")


def _load_npy(f: Path, **kw: Any) -> np.ndarray:
    try:
        return np.load(f, allow_pickle=False, **kw)
    except Exception as exc:  # not a .npy, truncated, or pickled objects
        raise InputError(f"{str(f)!r} is not a readable .npy array: {_first_line(exc)}") from None


def _task_groups(tree: Any, variable: str | None) -> list[str]:
    """Top-level groups of a zoo DataTree that hold the activations variable."""
    var = variable or "hidden_trained"
    out = []
    for name, child in tree.children.items():
        if any(var in node.to_dataset(inherit=False) for node in child.subtree):
            out.append(str(name))
    return out


def read_networks(
    path: str | Path,
    *,
    group: str | None = None,
    variable: str | None = None,
    kind: str | None = None,
) -> Any:
    """Networks from a path, in a form :func:`rnnzoo_metrics.pairwise` accepts.

    A zoo store holding several tasks needs ``group`` (networks of different tasks were
    probed with different inputs and cannot be compared). ``kind``: the metric's input
    kind; a kind with its own file reader (``InputKind.read_path``) reads the path first.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{str(p)!r} does not exist")
    if kind is not None:
        from .registry import input_kind

        reader = input_kind(kind).read_path
        found = reader(p) if reader is not None else None
        if found is not None:
            return found
    if _is_zarr(p) or p.suffix == ".nc":
        obj = open_any(p, group=group)
        if not group and hasattr(obj, "children"):
            tasks = _task_groups(obj, variable)
            if len(tasks) > 1:
                raise InputError(
                    f"{str(p)!r} holds {len(tasks)} tasks ({', '.join(tasks)}) whose networks "
                    f"cannot be compared with each other; pass --group <task>, e.g. "
                    f"--group {tasks[0]}"
                )
        return obj
    if p.is_dir():
        files = sorted(f for f in p.glob("*.npy") if f.is_file())
        if not files:
            raise InputError(f"{str(p)!r} holds no .npy files (one network per file)")
        return {f.stem: _load_npy(f, mmap_mode="r") for f in files}
    if p.suffix == ".npz":
        try:
            with np.load(p, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except InputError:
            raise
        except Exception as exc:
            raise InputError(
                f"{str(p)!r} is not a readable .npz file: {_first_line(exc)}"
            ) from None
    if p.suffix == ".npy":
        return _load_npy(p)
    raise InputError(
        f"{str(p)!r}: expected a folder of .npy files, a .npz, a .npy, a .nc or a .zarr store"
    )


def result_kind(obj: Any) -> str:
    """``pairwise`` or ``embedding``, from the dims of a result DataArray."""
    dims = tuple(obj.dims)
    if dims == ("network", "network_to"):
        return "pairwise"
    if dims == ("network", "component"):
        return "embedding"
    raise InputError(f"not a result: dims {dims} (expected a pairwise matrix or an embedding)")


def check_result_target(path: str | Path, kind: str, *, overwrite: bool = False) -> Path:
    """Refuse ``--out`` before computing: see :func:`rnnzoo_metrics.targets.check_output`."""
    p = check_output(path, kind, overwrite=overwrite, suffixes=RESULT_SUFFIXES)
    if p.suffix == ".zarr":
        require("zarr", "zoo", "writing a .zarr result")
    return p


def write_result(obj: Any, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write a result DataArray to ``.nc`` (NetCDF) or ``.zarr``, marked and atomically.

    Parameters
    ----------
    obj : xarray.DataArray
        A pairwise matrix ``(network, network_to)`` or an embedding ``(network, component)``.
    path : path
        A new path, or (``overwrite=True``) a previous result of the same kind.
    overwrite : bool
        Replace a previous result of the same kind; nothing else is ever replaced.

    Returns
    -------
    Path
    """
    kind = result_kind(obj)
    p = check_result_target(path, kind, overwrite=overwrite)
    replace = identify(p).kind == kind
    ds = obj.to_dataset(name=obj.name or "value")
    ds.attrs = {RESULT_ATTR: kind, VERSION_ATTR: __version__}
    for name in list(ds.coords):
        dkind = ds[name].dtype.kind
        if p.suffix == ".nc" and dkind in "Ob":  # NetCDF-3: no object or bool dtypes
            ds[name] = ds[name].astype(str)
        elif p.suffix == ".zarr" and dkind == "U":  # Zarr v3: variable-length strings
            ds[name] = ds[name].astype(object)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(p, directory=p.suffix == ".zarr")
    try:
        if p.suffix == ".zarr":
            from .store import quiet_zarr

            with quiet_zarr():
                ds.to_zarr(tmp, mode="w", consolidated=True, zarr_format=3)
        else:
            ds.to_netcdf(tmp)
        publish(tmp, p, replace=replace)
    except BaseException:
        remove_temp(tmp)
        raise
    return p


def read_result(path: str | Path, kind: str | None = None) -> Any:
    """Read a matrix or embedding written by :func:`write_result` as a DataArray.

    Parameters
    ----------
    path : path
    kind : {"pairwise", "embedding"}, optional
        Refuse anything else with one line.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{str(p)!r} does not exist")
    if p.suffix not in RESULT_SUFFIXES and not _is_zarr(p):
        raise InputError(f"{str(p)!r}: expected a result of rnnzoo-metrics (.nc or .zarr)")
    found = identify(p)
    if found.kind == "tile-store" or "rnnzoo zoo" in found.what:
        raise InputError(
            f"{str(p)!r} is {found.what}, not a result; pass the --out of "
            "`rnnzoo-metrics pairwise` (or `embed`)"
        )
    obj = open_any(p)
    ds = obj.to_dataset() if hasattr(obj, "to_dataset") and not hasattr(obj, "data_vars") else obj
    names = list(ds.data_vars)
    if len(names) != 1:
        raise InputError(
            f"{str(p)!r} holds {len(names)} variables; expected one result of "
            "`rnnzoo-metrics pairwise` or `embed`"
        )
    da = ds[names[0]].load()
    got = result_kind(da)
    if kind is not None and got != kind:
        raise InputError(
            f"{str(p)!r} is {'an embedding' if got == 'embedding' else 'a pairwise matrix'}; "
            f"expected {'an embedding' if kind == 'embedding' else 'a pairwise matrix'}"
        )
    return da
