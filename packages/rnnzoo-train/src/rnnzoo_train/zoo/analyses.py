"""Analysis results stored beside a zoo: ``/<task>/analysis/<name>``.

:class:`AnalysisStore` is the part of :class:`rnnzoo_train.zoo.reader.Zoo` that writes and
reads analysis results (fixed points, graphs, distance matrices, embeddings): in the zoo
itself for a local directory, or in a separate local store (``analysis_store=``) for a
read-only zoo (zips, URLs).
"""

from __future__ import annotations

import datetime as _dt
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import xarray as xr
import zarr

from . import layout
from .errors import ZooError, ZooKeyError
from .store import WriterLock, consolidate, open_root, quiet_zarr

if TYPE_CHECKING:
    from .reader import _Source

_ANALYSIS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


class AnalysisStore:
    """Writing and reading ``/<task>/analysis/<name>`` (mixed into ``Zoo``)."""

    _sources: list[_Source]
    _analysis_store: Path | None
    _chunks: object
    _datasets: dict[tuple[str, str], xr.Dataset]
    _tree: xr.DataTree | None
    location: str

    def _root(self, task: str) -> zarr.Group:  # pragma: no cover - provided by Zoo
        raise NotImplementedError

    def _analysis_target(self) -> Path:
        if self._analysis_store is not None:
            return self._analysis_store
        src = self._sources[0]
        if len(self._sources) > 1 or src.remote:
            raise ZooError(
                f"{src.location} is read-only; to store analyses of it, open it with "
                "open_zoo(..., analysis_store='analyses.zarr')"
            )
        return Path(src.location)

    def write_analysis(self, task: str, name: str, data: xr.Dataset | xr.DataTree) -> None:
        """Store an analysis result under ``/<task>/analysis/<name>`` (replacing it).

        ``data`` is a Dataset (or a DataTree, stored with its sub-groups), keyed by network
        id along a ``network`` dimension where it has one. Strings are stored as
        variable-length strings and every chunk gets a crc32c checksum, as in the zoo.
        """
        self._root(task)
        if not _ANALYSIS_NAME.fullmatch(name):
            raise ValueError(
                f"analysis name {name!r}: use letters, digits, '_', '-' and '.' (no '/')"
            )
        target = self._analysis_target()
        lock = WriterLock(target)
        lock.acquire()
        try:
            store = zarr.storage.LocalStore(target)
            with quiet_zarr():
                if not (target / "zarr.json").is_file():
                    zarr.create_group(
                        store,
                        zarr_format=3,
                        attributes={
                            "rnnzoo_schema_version": layout.SCHEMA_VERSION,
                            "rnnzoo_analyses_of": self.location,
                            "tasks": [],
                        },
                    )
                path = layout.analysis_path(task, name)
                if (target / path).exists():
                    shutil.rmtree(target / path)
                nodes = (
                    {"": data}
                    if isinstance(data, xr.Dataset)
                    else {
                        str(n.relative_to(data)) if n is not data else "": n.to_dataset()
                        for n in data.subtree
                    }
                )
                for rel, ds in nodes.items():
                    ds = _for_storage(ds)
                    ds.to_zarr(
                        store,
                        group=f"{path}/{rel}".rstrip("/"),
                        mode="w",
                        consolidated=False,
                        zarr_format=3,
                        encoding=layout.whole_encoding(ds) | _chunk_auto(ds),
                    )
            consolidate(store)
        finally:
            lock.release()
        for src in self._sources:
            if not src.remote:
                src.reopen()
        self._datasets = {k: v for k, v in self._datasets.items() if "/analysis/" not in k[1]}
        self._tree = None

    def analyses(self, task: str) -> list[str]:
        """Names of the analyses stored for ``task``."""
        names: list[str] = []
        for root in self._analysis_roots(task):
            try:
                group = root[f"{task}/analysis"]
            except KeyError:
                continue
            names += [n for n, _ in group.groups() if n not in names]
        return sorted(names)

    def analysis(self, task: str, name: str) -> xr.Dataset | xr.DataTree:
        """An analysis stored by :meth:`write_analysis` (a DataTree if it has sub-groups)."""
        path = layout.analysis_path(task, name)
        for root in self._analysis_roots(task):
            try:
                group = root[path]
            except KeyError:
                continue
            from .reader import _open_group

            nodes = {"/": _open_group(group, self._chunks)}
            for rel, child in group.groups():
                self._collect(child, f"/{rel}", nodes)
            if len(nodes) == 1:
                return nodes["/"]
            return xr.DataTree.from_dict(nodes)
        raise ZooKeyError(
            f"no analysis {name!r} for task {task!r}; stored: {self.analyses(task) or 'none'}"
        )

    def _collect(self, group: zarr.Group, rel: str, nodes: dict) -> None:
        from .reader import _open_group

        nodes[rel] = _open_group(group, self._chunks)
        for name, child in group.groups():
            self._collect(child, f"{rel}/{name}", nodes)

    def _analysis_roots(self, task: str) -> list[zarr.Group]:
        roots = []
        if self._analysis_store is not None and (self._analysis_store / "zarr.json").is_file():
            store = zarr.storage.LocalStore(self._analysis_store, read_only=True)
            roots.append(open_root(store, remote=False))
        roots.append(self._root(task))
        return roots


def _for_storage(ds: xr.Dataset) -> xr.Dataset:
    """A copy with fresh encodings and strings as variable-length strings."""
    ds = ds.copy()
    for name, var in list(ds.variables.items()):
        var.encoding = {}
        if var.dtype.kind in "UT" or (var.dtype == object and var.size):
            strings = (var.dims, layout.as_vlen_str(var.values), var.attrs)
            if name in ds.coords:
                ds = ds.assign_coords({name: strings})
            else:
                ds[name] = strings
    ds.attrs.setdefault(
        "rnnzoo_written_at", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    )
    return ds


def _chunk_auto(ds: xr.Dataset) -> dict[str, dict]:
    """Let zarr choose chunks for large arrays (one chunk per variable otherwise)."""
    return {
        name: {"compressors": layout.compressors()}
        for name, var in ds.variables.items()
        if var.nbytes > 64 * 2**20
    }
