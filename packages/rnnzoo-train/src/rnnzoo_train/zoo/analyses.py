"""Analysis results stored beside a zoo: ``/<task>/analysis/<name>``, committed atomically.

:class:`AnalysisStore` is the part of :class:`rnnzoo_train.zoo.reader.Zoo` that writes and
reads analysis results (fixed points, graphs, distance matrices, embeddings): in the zoo
itself for a local directory, or in a separate local store (``analysis_store=``) for a
read-only zoo (zips, URLs). Every write is a transaction
(:mod:`rnnzoo_train.zoo.analysis_commit`): all analyses of one :meth:`~AnalysisStore.
write_analyses` call are stored, or none, whatever moment the writer is killed at.

For ``rnnzoo-train verify``: :func:`analysis_problems` and :func:`repair_analyses`.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import xarray as xr
import zarr
import zarr.storage

from . import layout
from .analysis_commit import (
    COMMIT_ATTR,
    FAULT_ENV,
    STAGING_DIR,
    STORE_ATTR,
    TRACE_ENV,
    analysis_problems,
    check_target,
    check_writable,
    missing_ancestors,
    recover,
    remove_created,
    repair_analyses,
    task_folders,
    transaction,
    wait_for_commit,
)
from .errors import ZooError, ZooKeyError, ZooLocationError
from .store import WriterLock, open_root

if TYPE_CHECKING:
    from .reader import _Source

__all__ = [
    "COMMIT_ATTR",
    "FAULT_ENV",
    "STAGING_DIR",
    "STORE_ATTR",
    "TRACE_ENV",
    "AnalysisStore",
    "analysis_problems",
    "repair_analyses",
]

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
                f"{src.location} is read-only; to store analyses of it, give a local analysis "
                "store (open_zoo(..., analysis_store='analyses.zarr'), or --analysis-store)"
            )
        return Path(src.location)

    # -- the writer's lock -------------------------------------------------------------------
    @contextlib.contextmanager
    def writing_analyses(self, task: str | None = None) -> Iterator[Path]:
        """Hold the writer's lock of the analysis target, e.g. for a whole analysis run.

        Checks first that the target can take analyses (a directory that is writable and is
        the zoo, an rnnzoo analysis store, or new), takes its
        :class:`~rnnzoo_train.zoo.store.WriterLock` (the zoo's own lock when analyses go
        into the zoo: a running ``generate`` refuses it, and it refuses a ``generate``),
        and completes or removes any interrupted analysis transaction. While it is held,
        :meth:`write_analyses` of this object uses it. Re-entrant.

        Parameters
        ----------
        task : str, optional
            Also check that this task's analysis folder is writable.

        Yields
        ------
        Path
            The analysis target directory.

        Raises
        ------
        ZooLocationError
            The target is a file, a folder of other files, a Zarr store that is not an
            analysis store, read-only, or locked by another process (the message names it).
        """
        if getattr(self, "_analysis_lock", None) is not None:
            yield self._analysis_target()
            return
        target = self._analysis_target()
        zoo_dir = None if self._sources[0].remote else Path(self._sources[0].location)
        check_target(target, zoo_dir)
        created = missing_ancestors(target)
        lock = WriterLock(target)
        try:
            lock.acquire()
        except OSError as err:
            remove_created(created)
            raise ZooLocationError(
                f"cannot write analyses into {target}: {err.strerror or err}; make it "
                "writable or store analyses elsewhere (--analysis-store PATH)"
            ) from None
        self._analysis_lock = lock
        try:
            for folder in task_folders(target, task):
                check_writable(folder)
            if recover(target):
                self._reopen()
            yield target
        finally:
            self._analysis_lock = None
            lock.release()
            remove_created(created)

    def _reopen(self) -> None:
        for src in self._sources:
            if not src.remote:
                src.reopen()
        self._datasets = {k: v for k, v in self._datasets.items() if "/analysis/" not in k[1]}
        self._tree = None

    # -- writing -----------------------------------------------------------------------------
    def write_analysis(self, task: str, name: str, data: xr.Dataset | xr.DataTree) -> None:
        """Store one analysis under ``/<task>/analysis/<name>`` (replacing it), atomically.

        A one-analysis :meth:`write_analyses`.
        """
        self.write_analyses(task, {name: data})

    def write_analyses(
        self, task: str, analyses: Mapping[str, xr.Dataset | xr.DataTree]
    ) -> list[str]:
        """Store several analyses of ``task`` in one transaction: all of them, or none.

        Each value is a Dataset (or a DataTree, stored with its sub-groups), keyed by
        network id along a ``network`` dimension where it has one, and replaces the
        analysis of the same name. Strings are stored as variable-length strings, every
        chunk is written (also chunks equal to the fill value) with a crc32c checksum, as
        in the zoo. The transaction (module docstring) guarantees that a writer killed at
        any moment leaves either every old analysis or every new one; the next writer, or
        ``rnnzoo-train verify --repair``, completes or removes an interrupted one.

        Takes the analysis target's writer lock unless this object holds it
        (:meth:`writing_analyses`).

        Parameters
        ----------
        task : str
        analyses : mapping of str to Dataset or DataTree
            Analysis name (letters, digits, ``_``, ``-``, ``.``) to its data.

        Returns
        -------
        list of str
            The names written, sorted.

        Raises
        ------
        ValueError
            An invalid analysis name.
        ZooLocationError
            The target cannot be written (see :meth:`writing_analyses`).
        """
        self._root(task)
        for name in analyses:
            if not _ANALYSIS_NAME.fullmatch(name):
                raise ValueError(
                    f"analysis name {name!r}: use letters, digits, '_', '-' and '.' (no '/')"
                )
        if not analyses:
            return []
        with self.writing_analyses(task) as target:
            transaction(target, task, dict(analyses), self.location)
        self._reopen()
        return sorted(analyses)

    # -- reading -----------------------------------------------------------------------------
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
        root = self._root(task)
        if getattr(self, "_analysis_lock", None) is None:
            for folder in self._local_targets(task):
                wait_for_commit(folder, task)
        if self._analysis_store is not None and (self._analysis_store / "zarr.json").is_file():
            store = zarr.storage.LocalStore(self._analysis_store, read_only=True)
            roots.append(open_root(store, remote=False))
        roots.append(root)
        return roots

    def _local_targets(self, task: str) -> list[Path]:
        folders = []
        if self._analysis_store is not None and self._analysis_store.is_dir():
            folders.append(self._analysis_store)
        src = getattr(self, "_task_source", {}).get(task)
        if src is not None and not src.remote:
            folders.append(Path(src.location))
        return folders
