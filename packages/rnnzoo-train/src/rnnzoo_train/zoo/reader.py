"""``open_zoo`` and :class:`Zoo`: read a zoo from a directory, zip files or a URL.

>>> zoo = open_zoo("results/demo/zoo.zarr")
>>> zoo.select("flipflop", arch="gru", status="ok")        # pandas DataFrame
>>> net = zoo.network("flipflop", "gru-tanh-u64-l2_1e-04-s003")
>>> states = net.run(torch.as_tensor(zoo.probe("flipflop").inputs))

Everything is lazy: opening reads the consolidated metadata only; arrays are read when they
are used. :class:`Zoo` reads; building and running torch networks from what it reads is
:mod:`rnnzoo_train.zoo.networks` (``Zoo.cell``, ``network``, ``population`` delegate to it),
and writing analyses beside a zoo is :mod:`rnnzoo_train.zoo.analyses`. A zoo opened from
zips or a URL is read-only; analyses of it can be kept in a local store beside it
(``analysis_store=``).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr
import zarr

from rnnzoo_train.records import TaskPlan
from rnnzoo_train.tasks.base import ProbeSet

from . import layout
from .analyses import AnalysisStore
from .errors import ZooError, ZooKeyError, ZooSchemaError
from .networks import Network
from .store import is_url, open_root, open_store, quiet_zarr

if TYPE_CHECKING:
    import torch

    from rnnzoo_train.cells.base import Cell
    from rnnzoo_train.tasks.base import Task

#: index columns shown first, in this order (then the data variables in layout order)
_INDEX_FIRST = ("arch", "activation", "units", "l2", "seed", "status", "config", "group")


def check_schema(attrs: Mapping[str, Any], where: str) -> str:
    """The schema version in ``attrs``; raises :class:`ZooSchemaError` if unknown."""
    found = attrs.get("rnnzoo_schema_version")
    if found is None:
        raise ZooSchemaError(
            f"{where} is a Zarr store but not an rnnzoo zoo (no rnnzoo_schema_version attribute)"
        )
    try:
        major = int(str(found).split(".")[0])
    except ValueError:
        raise ZooSchemaError(f"{where} has an unreadable rnnzoo_schema_version {found!r}") from None
    if major != layout.SCHEMA_MAJOR:
        from rnnzoo_train import __version__

        newer = major > layout.SCHEMA_MAJOR
        raise ZooSchemaError(
            f"{where} uses zoo schema {found}, but rnnzoo-train {__version__} reads schema "
            f"{layout.SCHEMA_MAJOR}.x only; "
            + (
                "upgrade rnnzoo-train (pip install -U rnnzoo-train)"
                if newer
                else "open it with the older rnnzoo-train that wrote it"
            )
        )
    return str(found)


class _Source:
    """One opened store: a directory, a zip, or a URL."""

    def __init__(self, location: str | os.PathLike):
        self.location = str(location)
        self.remote = is_url(location) or str(location).endswith(".zip")
        self.store = open_store(location, read_only=True)
        self.root = open_root(self.store, remote=is_url(location), location=self.location)
        self.store = self.root.store  # the IntegrityStore every read goes through
        self.attrs = dict(self.root.attrs)
        check_schema(self.attrs, self.location)
        self.tasks = [str(t) for t in self.attrs.get("tasks", [])]
        missing = [t for t in self.tasks if t not in self.root]
        if missing and not self.remote:
            # metadata consolidated before the last template (a killed generation): list
            with quiet_zarr():
                self.root = zarr.open_group(
                    self.store, mode="r", zarr_format=3, use_consolidated=False
                )
            missing = [t for t in self.tasks if t not in self.root]
        if missing:
            raise ZooError(
                f"{self.location}: task(s) {', '.join(missing)} are listed but cannot be read "
                "(missing or stale consolidated metadata); run `rnnzoo-train verify` on it"
            )

    def reopen(self) -> None:
        self.store = open_store(self.location, read_only=True)
        self.root = open_root(self.store, remote=is_url(self.location), location=self.location)
        self.store = self.root.store


class Zoo(AnalysisStore):
    """A zoo opened for reading (see :func:`open_zoo`)."""

    def __init__(
        self,
        sources: Sequence[_Source],
        *,
        analysis_store: str | os.PathLike | None = None,
        chunks: Any = None,
    ):
        self._sources = list(sources)
        self._task_source: dict[str, _Source] = {}
        for src in self._sources:
            for t in src.tasks:
                if t in self._task_source:
                    raise ZooError(
                        f"task {t!r} is in both {self._task_source[t].location} and "
                        f"{src.location}; open one of them"
                    )
                self._task_source[t] = src
        self._analysis_store = None if analysis_store is None else Path(analysis_store)
        self._chunks = chunks
        self._datasets: dict[tuple[str, str], xr.Dataset] = {}
        self._indexes: dict[str, pd.DataFrame] = {}
        self._tree: xr.DataTree | None = None

    # -- what is in it -----------------------------------------------------------------------
    @property
    def location(self) -> str:
        """Where the zoo was opened from (the first store if it spans several)."""
        return self._sources[0].location

    @property
    def attrs(self) -> dict[str, Any]:
        """Root attributes: schema version, generator versions, preset, created, tasks."""
        attrs = dict(self._sources[0].attrs)
        attrs["tasks"] = self.tasks
        return attrs

    @property
    def schema_version(self) -> str:
        return str(self._sources[0].attrs["rnnzoo_schema_version"])

    @property
    def tasks(self) -> list[str]:
        """Task names, in the order they were generated."""
        return list(self._task_source)

    def __repr__(self) -> str:
        counts = ", ".join(
            f"{t}: {int(self._root(t)[t].attrs.get('n_networks', 0))} networks" for t in self.tasks
        )
        return f"<Zoo {self.location} schema {self.schema_version} ({counts})>"

    def __enter__(self) -> Zoo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for ds in self._datasets.values():
            ds.close()
        self._datasets.clear()
        for src in self._sources:
            src.store.close()

    # -- nodes -------------------------------------------------------------------------------
    def _root(self, task: str) -> zarr.Group:
        src = self._task_source.get(task)
        if src is None:
            raise ZooKeyError(
                f"no task {task!r} in this zoo; it has {', '.join(self.tasks) or 'none'} "
                "(zoo.tasks)"
            )
        return src.root

    def _dataset(self, task: str, path: str) -> xr.Dataset:
        key = (task, path)
        if key not in self._datasets:
            root = self._root(task)
            try:
                group = root[path]
            except KeyError:
                raise ZooKeyError(
                    f"no {path} in {self._task_source[task].location}; "
                    "run `rnnzoo-train verify` on it"
                ) from None
            self._datasets[key] = _open_group(group, self._chunks)
        return self._datasets[key]

    @property
    def tree(self) -> xr.DataTree:
        """The whole zoo as a lazy :class:`xarray.DataTree` (root attributes included)."""
        if self._tree is None:
            nodes: dict[str, xr.Dataset] = {"/": xr.Dataset(attrs=self.attrs)}
            for task in self.tasks:
                root = self._root(task)
                nodes[f"/{task}"] = xr.Dataset(attrs=dict(root[task].attrs))
                for path, node in root[task].groups():
                    self._add_groups(task, f"{task}/{path}", node, nodes)
            self._tree = xr.DataTree.from_dict(nodes)
        return self._tree

    def _add_groups(self, task: str, path: str, node: zarr.Group, nodes: dict) -> None:
        nodes[f"/{path}"] = self._dataset(task, path)
        for name, child in node.groups():
            self._add_groups(task, f"{path}/{name}", child, nodes)

    # -- the index ---------------------------------------------------------------------------
    def task_attrs(self, task: str) -> dict[str, Any]:
        """Attributes of the task group: ``task_config``, ``plan``, performance name..."""
        return dict(self._root(task)[task].attrs)

    def plan(self, task: str) -> TaskPlan:
        """The :class:`TaskPlan` the task was generated from."""
        return layout.plan_from_dict(self.task_attrs(task)["plan"])

    def index(self, task: str) -> pd.DataFrame:
        """Every network of ``task`` as a DataFrame indexed by network id.

        Columns: ``arch, activation, units, l2, seed, config, group, status``, the
        hyper-parameters ``clip, lr, decay, momentum``, ``iterations``, ``train_loss``,
        ``val_loss``, ``test_loss``, ``last_finite_loss``, ``performance``, ``solved``,
        ``diverged_at``, ``train_seconds``, ``message``, ``written_at``.
        """
        return self._index(task).copy()

    def _index(self, task: str) -> pd.DataFrame:
        """The cached index (not a copy: internal use only)."""
        if task not in self._indexes:
            ds = self._dataset(task, layout.index_path(task)).load()
            df = _str_columns(ds.to_dataframe())
            order = [c for c in (*_INDEX_FIRST, *layout.INDEX_VARIABLES) if c in df.columns]
            self._indexes[task] = df[order + [c for c in df.columns if c not in order]]
        return self._indexes[task]

    def _check_ids(self, task: str, ids: Sequence[str]) -> None:
        """Raise :class:`ZooKeyError` naming every id of ``ids`` not in the task's index."""
        index = self._index(task).index
        unknown = [str(i) for i in dict.fromkeys(ids) if i not in index]
        if not unknown:
            return
        shown = ", ".join(repr(i) for i in unknown[:5])
        if len(unknown) > 5:
            shown += f" and {len(unknown) - 5} more"
        hint = ""
        close = difflib.get_close_matches(unknown[0], list(index), n=1)
        if close:
            hint = f" (did you mean {close[0]!r}?)"
        raise ZooKeyError(
            f"{len(unknown)} unknown network id(s) in task {task!r}: {shown}{hint}; "
            f"list the ids with zoo.index({task!r}).index or `rnnzoo-train info ZOO`"
        )

    def select(self, task: str, **criteria: Any) -> pd.DataFrame:
        """Rows of :meth:`index` matching every criterion.

        A criterion is ``column=value`` or ``column=[value, ...]`` (any of them), e.g.
        ``zoo.select("cdi", arch=["gru", "lstm"], units=64, status="ok")``.
        """
        df = self.index(task)
        for col, want in criteria.items():
            if col not in df.columns:
                raise ValueError(
                    f"cannot select by {col!r}; the index of {task!r} has {', '.join(df.columns)}"
                )
            if isinstance(want, str) or not isinstance(want, Iterable):
                df = df[df[col] == want]
            else:
                df = df[df[col].isin(list(want))]
        return df

    def search(self, task: str) -> pd.DataFrame:
        """The hyper-parameter search trials of ``task`` (one row per trial)."""
        ds = self._dataset(task, layout.search_path(task)).load()
        return _str_columns(ds.to_dataframe().reset_index(drop=True))

    def task(self, task: str) -> Task:
        """The :class:`Task`, rebuilt from the stored ``task_config``."""
        from rnnzoo_train.tasks import get_task

        config = self.task_attrs(task)["task_config"]
        return get_task(config["name"], **config.get("params", {}))

    def probe(self, task: str) -> ProbeSet:
        """The task's probe set, as stored (identical for every network)."""
        ds = self._dataset(task, layout.probe_path(task)).load()
        labels = {name: np.asarray(c.values) for name, c in ds.coords.items() if name != "probe"}
        return ProbeSet(
            inputs=ds["inputs"].values,
            targets=ds["targets"].values,
            mask=ds["mask"].values,
            labels=labels,
        )

    # -- networks ----------------------------------------------------------------------------
    def _locate(self, task: str, network_id: str) -> tuple[xr.Dataset, int]:
        index = self._index(task)
        self._check_ids(task, [network_id])
        group = index.loc[network_id, "group"]
        ds = self._dataset(task, layout.group_path(task, group))
        row = int(ds.indexes["network"].get_loc(network_id))
        return ds, row

    def weights(self, task: str, network_id: str, which: str = "final") -> dict[str, np.ndarray]:
        """Parameters of one network: ``which="final"`` (trained) or ``"initial"``."""
        if which not in layout.WEIGHT_PREFIXES:
            raise ValueError(f"which must be 'initial' or 'final', not {which!r}")
        ds, row = self._locate(task, network_id)
        prefix = layout.WEIGHT_PREFIXES[which]
        return {p: ds[prefix + p][row].values for p in ds.attrs.get("parameters", [])}

    # -- networks as torch objects: rnnzoo_train.zoo.networks ----------------------------------
    def cell(self, task: str, group_or_network: str) -> Cell:
        """The cell of a group (``gru-tanh-u64``) or of a network id (needs torch).

        Raises
        ------
        ZooArchitectureError
            If the architecture is not installed (one line naming the plugin to install).
        """
        from .networks import cell_of

        return cell_of(self, task, group_or_network)

    def network(
        self, task: str, network_id: str, which: str = "final", dtype: Any = None
    ) -> Network:
        """A ready-to-run :class:`~rnnzoo_train.zoo.networks.Network` (cell + parameters).

        ``dtype`` is a torch dtype (default float32; the dynamics analyses use float64).
        """
        from .networks import network

        return network(self, task, network_id, which, dtype)

    def population(
        self,
        task: str,
        network_ids: Sequence[str],
        which: str = "final",
        dtype: Any = None,
    ) -> tuple[Cell, dict[str, torch.Tensor]]:
        """The cell and stacked parameters ``(P, ...)`` of networks of ONE group.

        Parameters
        ----------
        task : str
        network_ids : sequence of str (or one id)
            Networks of one group (``zoo.select(task, group="gru-tanh-u64").index``), stacked
            in this order.
        which : {"final", "initial"}
        dtype : torch dtype, optional
            Default float32.

        Raises
        ------
        ZooKeyError
            (a ``KeyError``) naming the ids that are not in the task.
        ValueError
            If the networks belong to more than one group.
        ZooArchitectureError
            If the architecture is not installed (one line naming the plugin to install).
        """
        from .networks import population

        return population(self, task, network_ids, which, dtype)

    def hidden_states(
        self, task: str, network_ids: Sequence[str] | None = None, which: str = "trained"
    ) -> xr.DataTree:
        """Hidden states on the probe inputs, one tree node per group.

        Returns a :class:`xarray.DataTree` whose children are the groups
        (``gru-tanh-u64``...), each a Dataset with ``hidden_<which>``
        ``(network, probe, time, unit)``, the network coordinates along ``network`` and the
        probe labels along ``probe``. Lazy: values are read when used.
        """
        if which not in layout.HIDDEN_VARIABLES:
            raise ValueError(f"which must be 'trained' or 'untrained', not {which!r}")
        var = layout.HIDDEN_VARIABLES[which]
        index = self._index(task)
        if network_ids is None:
            ids = list(index.index)
        else:
            ids = [network_ids] if isinstance(network_ids, str) else list(network_ids)
        self._check_ids(task, ids)
        labels = {
            k: ("probe", v.values)
            for k, v in self._dataset(task, layout.probe_path(task)).coords.items()
            if k != "probe"
        }
        nodes: dict[str, xr.Dataset] = {"/": xr.Dataset(attrs={"task": task, "variable": var})}
        groups = index.loc[ids, "group"]
        for group in dict.fromkeys(groups):
            members = [i for i, g in zip(ids, groups, strict=True) if g == group]
            ds = self._dataset(task, layout.group_path(task, group))
            if var in ds:
                sub = ds[[var]].sel(network=members)
            else:  # not stored (zoo_storage untrained_hidden = false): recompute it
                sub = self._recompute_hidden(task, group, ds, members, var)
            nodes[group] = sub.assign_coords(labels)
        return xr.DataTree.from_dict(nodes)

    def _recompute_hidden(
        self, task: str, group: str, ds: xr.Dataset, members: list[str], var: str
    ) -> xr.Dataset:
        """Hidden states on the probe inputs from the stored weights (needs torch)."""
        from .networks import recompute_hidden

        return recompute_hidden(self, task, ds, members, var)


def _open_group(group: zarr.Group, chunks: Any) -> xr.Dataset:
    """A Zarr group as a lazy Dataset, with :func:`plain_strings`."""
    store = xr.backends.ZarrStore(group, mode="r", use_zarr_fill_value_as_mask=False)
    with quiet_zarr():
        return plain_strings(xr.open_dataset(store, chunks=chunks))


def plain_strings(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with every string variable as an object array of Python ``str``.

    zarr-python 3 reads variable-length strings as NumPy 2's ``StringDType``, on which
    ``.astype(str)``, older pandas and many libraries fail. Readers hand out object arrays
    of ``str`` instead (what xarray itself gives for strings from netCDF). The conversion is
    lazy (nothing is read here: a group's per-network ``status`` chunks are read only when
    used), except for indexed coordinates, which xarray has already loaded.
    """
    converted = {}
    for name, var in ds.variables.items():
        if var.dtype.kind != "T":
            continue
        encoding = {k: v for k, v in var.encoding.items() if k != "dtype"}
        converted[name] = xr.Variable(var.dims, _lazy_object(var), var.attrs, encoding)
    if not converted:
        return ds
    coords = {k: v for k, v in converted.items() if k in ds.coords}
    data_vars = {k: v for k, v in converted.items() if k not in ds.coords}
    return ds.assign_coords(coords).assign(data_vars)


def _str_columns(df: pd.DataFrame) -> pd.DataFrame:
    """String columns and index of a table as pandas' ``str`` dtype (values are ``str``)."""
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = df[col].astype(str)
    if df.index.dtype == object:
        df.index = df.index.astype(str)
    return df


def _as_object(values: Any) -> np.ndarray:
    return np.asarray(values).astype(object)


def _lazy_object(var: xr.Variable) -> Any:
    """``var``'s data as object strings: lazily for backend and dask arrays."""
    if isinstance(var, xr.IndexVariable):  # already in memory (a pandas index)
        return _as_object(var.values)
    try:
        from xarray.coding.common import lazy_elemwise_func
    except ImportError:  # pragma: no cover - another xarray: convert eagerly
        return _as_object(var.values)
    # var._data: the backend's lazily indexed array, or a dask array (chunks=)
    return lazy_elemwise_func(var._data, _as_object, np.dtype(object))


def open_zoo(
    location: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    analysis_store: str | os.PathLike | None = None,
    chunks: Any = None,
) -> Zoo:
    """Open a zoo for reading (lazily).

    Parameters
    ----------
    location : str, path, or a sequence of them
        A zoo directory (``zoo.zarr``), an uncompressed zip of one task (as published), an
        ``http(s)://`` URL of a zoo directory on a web server (consolidated metadata makes
        this work without directory listing), or several of these holding different tasks.
    analysis_store : str or path, optional
        A local Zarr directory where :meth:`Zoo.write_analysis` stores results (required for
        read-only zoos; by default analyses go into a local zoo itself).
    chunks : optional
        Passed to :func:`xarray.open_dataset` (``{}`` gives dask arrays chunked like the
        store: one network per chunk).

    Raises
    ------
    ZooSchemaError
        If a store is not a zoo or has a schema major version this reader does not know.
    ZooError
        If a store cannot be read completely (e.g. served without consolidated metadata).
    """
    if isinstance(location, str | os.PathLike):
        locations = [location]
    else:
        locations = list(location)
        if not locations:
            raise ValueError("open_zoo() needs at least one location")
    sources = [_Source(loc) for loc in locations]
    return Zoo(sources, analysis_store=analysis_store, chunks=chunks)
