"""``verify``: check every chunk of every array a zoo promises, and report problems per network.

Checks, in order (a problem names the network, or the node and array, it concerns):

1. the root: a zoo (or a separate analysis store) of a schema major version this reader
   knows; a store that is not one is refused with one line, and so is a path that does not
   exist or a root ``zarr.json`` that cannot be read;
2. metadata: every node's ``zarr.json`` is readable, and the consolidated metadata is
   present and equal to the metadata of every node (a stale or missing copy makes a zoo open
   empty or partial over HTTP);
3. layout: every task listed has its index, probe set, search table and one group per
   configuration group, with every variable at the shape the plan implies and the network
   ids of the plan;
4. every chunk of every array (index, probe, search, networks, ``analysis``): it exists
   (schema >= 1.1 writes them all, so a missing chunk is always damage) and, unless
   ``checksums=False``, it decodes, which checks its crc32c. A chunk of a per-network array
   (one network per chunk) is reported for its network;
5. per network: the index status equals the group's status; an ``ok`` network holds finite
   weights, hidden states and losses;
6. analyses: interrupted or incomplete analysis commits
   (:func:`rnnzoo_train.zoo.analyses.analysis_problems`);
7. leftovers: ``*.partial`` files (chunks whose writer was killed before the atomic rename).

``repair=True`` (:mod:`rnnzoo_train.zoo.repair`) makes the zoo consistent under the writer
lock, so that a following ``generate`` restores every lost value.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.core.sync import sync

from rnnzoo_train.records import STATUSES

from . import layout
from .errors import ZooError, ZooIntegrityError, ZooSchemaError
from .reader import check_schema
from .store import (
    LOCK_NAME,
    PARTIAL_SUFFIX,
    IntegrityStore,
    chunk_grid,
    chunk_key,
    every_chunk_written,
    is_url,
    is_zip,
    open_store,
    quiet_zarr,
    unreadable,
)

#: root attribute of a separate analysis store (``open_zoo(..., analysis_store=...)``)
ANALYSES_OF = "rnnzoo_analyses_of"
_NODES = ("index", "probe", "search", "networks", "analysis")


@dataclass(frozen=True)
class Problem:
    """One problem: ``where`` (``task/network-id`` or a node path) and ``what``.

    The other fields say what :mod:`rnnzoo_train.zoo.repair` needs: ``kind`` (``chunk``,
    ``status``, ``values``, ``metadata``, ``consolidated``, ``leftover``, ``analysis``,
    ``layout``, ``template``), the ``task``, the ``network`` id, the ``array`` path and the
    ``chunk`` coordinates.
    """

    where: str
    what: str
    kind: str = ""
    task: str = ""
    network: str = ""
    array: str = ""
    chunk: tuple[int, ...] | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass
class VerifyReport:
    """The result of :func:`verify_zoo`."""

    location: str
    schema_version: str = ""
    status_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    chunks_checked: int = 0
    chunks_read: int = 0
    repaired: list[str] = field(default_factory=list)
    kind: str = "zoo"

    @property
    def ok(self) -> bool:
        return not self.problems

    def bad_networks(self) -> dict[str, list[str]]:
        """Problems grouped by ``task/network-id`` (only those about a network)."""
        out: dict[str, list[str]] = {}
        for p in self.problems:
            if p.task and p.network:
                out.setdefault(f"{p.task}/{p.network}", []).append(p.what)
        return out

    def add(self, problem: Problem) -> None:
        self.problems.append(problem)

    def format(self) -> str:
        what = "analysis store" if self.kind == "analyses" else "zoo"
        lines = [f"{what} {self.location} (schema {self.schema_version or '?'})"]
        for task, counts in self.status_counts.items():
            parts = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts.get(s))
            lines.append(f"  {task}: {sum(counts.values())} networks ({parts})")
        lines.append(
            f"  {self.chunks_checked} chunks checked, {self.chunks_read} read and checksummed"
        )
        lines += [f"  repaired: {r}" for r in self.repaired]
        if self.ok:
            lines.append("OK: schema, metadata, layout, every chunk and checksums")
        else:
            lines.append(f"{len(self.problems)} problem(s):")
            lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


# -- the store being checked --------------------------------------------------------------------
class Target:
    """A zoo (or analysis store) opened for checking: its metadata, nodes and chunk keys.

    Opening reads the root metadata and refuses, with one line, what cannot be checked: a
    path that does not exist, a store that is not a zoo, an unreadable root ``zarr.json``.
    Nothing is created or written.
    """

    def __init__(self, location: str | os.PathLike):
        self.location = str(location)
        self.remote = is_url(location)
        self.zipped = is_zip(location)
        self.path: Path | None = None
        if not self.remote and not self.zipped:
            self.path = Path(self.location.removeprefix("file://"))
            if not self.path.exists():
                raise FileNotFoundError(f"no zoo at {self.location}: the path does not exist")
            if not self.path.is_dir():
                raise ZooError(
                    f"{self.location} is a file, not a zoo; give a zoo directory, a published "
                    ".zarr.zip or an http(s) URL"
                )
        self.raw = open_store(location, read_only=True) if self.path is None else None
        if self.path is not None:
            if not (self.path / "zarr.json").is_file():
                raise ZooSchemaError(
                    f"{self.location} is not a Zarr v3 store (no zarr.json); is it an rnnzoo zoo?"
                )
            self.raw = zarr.storage.LocalStore(self.path, read_only=True)
        self.root_meta = self._read_root()
        self.attrs: dict[str, Any] = dict(self.root_meta.get("attributes") or {})
        self.is_analysis_store = ANALYSES_OF in self.attrs
        self.schema_version = check_schema(self.attrs, self.location)
        self.strict = every_chunk_written(self.attrs)
        self.store = IntegrityStore(self.raw, location=self.location, strict=self.strict)
        self.consolidated: dict[str, dict] | None = _consolidated(self.root_meta)
        self.nodes: dict[str, dict] = {}  # path -> metadata, as listed (or consolidated)
        self.unreadable: dict[str, str] = {}  # path -> why its zarr.json cannot be read
        self.files: set[str] | None = None  # every key of the store (None: cannot list)
        self.partials: list[str] = []
        self._list()

    # -- reading ---------------------------------------------------------------------------------
    def _read_root(self) -> dict:
        from zarr.core.buffer import default_buffer_prototype

        try:
            sync(self.raw._ensure_open())  # a ZipStore opens its file here
            raw = sync(self.raw.get("zarr.json", default_buffer_prototype()))
        except Exception as err:  # unreachable server, unreadable zip
            raise ZooError(unreadable(self.location, err)) from None
        if raw is None:
            raise FileNotFoundError(f"no zoo at {self.location} (no zarr.json)")
        try:
            meta = json.loads(raw.to_bytes())
            if not isinstance(meta, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as err:
            raise ZooError(
                f"{self.location}: the root zarr.json cannot be read ({err}); it is truncated "
                "or not JSON, and nothing in the store can rebuild it: restore it from a copy "
                "(a published zip holds one per task)"
            ) from None
        return meta

    def _list(self) -> None:
        if self.path is not None:
            self._list_directory(self.path)
        elif self.zipped:
            names = zipfile.ZipFile(self.location).namelist()
            self.files = set(names)
            for name in names:
                if name == "zarr.json" or name.endswith("/zarr.json"):
                    self._add_node(name.removesuffix("zarr.json").rstrip("/"), self._zip_read(name))
        else:  # a web server cannot be listed: the consolidated copy is all there is
            for path, meta in (self.consolidated or {}).items():
                self.nodes[path] = meta

    def _zip_read(self, name: str) -> bytes:
        with zipfile.ZipFile(self.location) as zf:
            return zf.read(name)

    def _list_directory(self, base: Path) -> None:
        self.files = set()
        for dirpath, dirnames, filenames in os.walk(base):
            rel = os.path.relpath(dirpath, base)
            rel = "" if rel == "." else rel.replace(os.sep, "/")
            if rel == "":  # the lock, the analyses' staging folder: not Zarr nodes
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                key = f"{rel}/{name}" if rel else name
                if name.endswith(PARTIAL_SUFFIX):
                    self.partials.append(key)
                elif not (rel == "" and name == LOCK_NAME):
                    self.files.add(key)
            if "zarr.json" in filenames:
                try:
                    data = (Path(dirpath) / "zarr.json").read_bytes()
                except OSError as err:
                    self.unreadable[rel] = str(err)
                    continue
                self._add_node(rel, data)

    def _add_node(self, path: str, data: bytes) -> None:
        try:
            meta = json.loads(data)
            normalised(meta)
        except Exception as err:
            self.unreadable[path] = f"{type(err).__name__}: {err}".splitlines()[0]
            return
        meta.pop("consolidated_metadata", None)
        self.nodes[path] = meta

    # -- chunks ----------------------------------------------------------------------------------
    def exists(self, key: str) -> bool | None:
        """Whether chunk ``key`` is stored (``None``: cannot tell without reading it)."""
        if self.files is not None:
            return key in self.files
        return None

    def array(self, path: str) -> zarr.Array | None:
        """The array at ``path``, read through the :class:`IntegrityStore`."""
        meta = self.nodes.get(path)
        if meta is None or meta.get("node_type") != "array":
            return None
        from zarr.core.array import AsyncArray
        from zarr.core.metadata.v3 import ArrayV3Metadata
        from zarr.storage import StorePath

        metadata = ArrayV3Metadata.from_dict(json.loads(json.dumps(meta)))
        return zarr.Array(AsyncArray(metadata, StorePath(self.store, path)))

    def values(self, path: str) -> np.ndarray | None:
        """The whole array at ``path``; ``None`` if unreadable (the chunk check says why)."""
        arr = self.array(path)
        if arr is None:
            return None
        try:
            with quiet_zarr():
                return np.asarray(arr[...])
        except Exception:
            return None

    def arrays(self, prefix: str = "") -> list[str]:
        return sorted(
            p
            for p, m in self.nodes.items()
            if m.get("node_type") == "array" and (not prefix or p.startswith(prefix))
        )

    def groups(self, prefix: str) -> list[str]:
        """Names of the child groups of ``prefix``."""
        depth = prefix.count("/") + 1 if prefix else 0
        return sorted(
            p.rsplit("/", 1)[-1]
            for p, m in self.nodes.items()
            if m.get("node_type") == "group"
            and p.startswith(f"{prefix}/" if prefix else "")
            and p.count("/") == depth
            and p
        )

    def group_attrs(self, path: str) -> dict:
        meta = self.nodes.get(path) or {}
        return dict(meta.get("attributes") or {})


def normalised(meta: dict) -> dict:
    """Node metadata as zarr normalises it (so that equal metadata compares equal)."""
    from zarr.core.group import GroupMetadata
    from zarr.core.metadata.v3 import ArrayV3Metadata

    meta = json.loads(json.dumps(meta))
    meta.pop("consolidated_metadata", None)
    if meta.get("node_type") == "array":
        return ArrayV3Metadata.from_dict(meta).to_dict()
    if meta.get("node_type") == "group":
        out = GroupMetadata.from_dict(meta).to_dict()
        out.pop("consolidated_metadata", None)
        return out
    raise ValueError(f"node_type {meta.get('node_type')!r} is not 'array' or 'group'")


def _consolidated(root_meta: dict) -> dict[str, dict] | None:
    cm = root_meta.get("consolidated_metadata")
    if not isinstance(cm, dict) or not isinstance(cm.get("metadata"), dict):
        return None
    return dict(cm["metadata"])


# -- the checks ---------------------------------------------------------------------------------
def verify_zoo(
    location: str | os.PathLike,
    *,
    checksums: bool = True,
    repair: bool = False,
    progress: bool = False,
) -> VerifyReport:
    """Check a zoo (or a separate analysis store) and report problems per network.

    Parameters
    ----------
    location : str or path
        A zoo directory, a published zip, a URL, or an analysis store directory.
    checksums : bool
        Read (and so checksum) every chunk; ``False`` checks only that every chunk exists.
    repair : bool
        Make the zoo consistent (directories only; see :mod:`rnnzoo_train.zoo.repair`):
        under the writer lock, refused with one line if another process holds it or the
        zoo cannot be written. The returned report holds the problems left *after* the
        repair, and ``repaired`` what was done.
    progress : bool
        Show a progress bar over arrays.

    Returns
    -------
    VerifyReport

    Raises
    ------
    FileNotFoundError, ZooError
        One line, before anything is read further or written, for a path that does not
        exist, a store that is not a zoo, an unreadable root ``zarr.json``, or a repair that
        cannot be done (a zip or URL, a held lock, a read-only zoo).
    """
    if repair:
        from .repair import repair_zoo

        return repair_zoo(location, checksums=checksums, progress=progress)
    return check(Target(location), checksums=checksums, progress=progress)


def check(target: Target, *, checksums: bool = True, progress: bool = False) -> VerifyReport:
    """Every check of :func:`verify_zoo` on an opened :class:`Target` (reads only)."""
    report = VerifyReport(target.location, schema_version=target.schema_version)
    report.kind = "analyses" if target.is_analysis_store else "zoo"
    _check_leftovers(target, report)
    _check_metadata(target, report)
    if target.is_analysis_store:
        tasks = target.groups("")
    else:
        tasks = [str(t) for t in target.attrs.get("tasks", [])]
    statuses: dict[str, dict[str, str]] = {}
    for task in tasks:
        if not target.is_analysis_store:
            statuses[task] = _check_task(target, task, report)
    _check_chunks(target, report, statuses, checksums, progress)
    for task in tasks:
        _check_analyses(target, task, report)
    if not target.is_analysis_store:
        for name in target.groups(""):
            if name not in tasks:
                report.add(
                    Problem(
                        name,
                        "task group without a complete template (an interrupted generate: "
                        "rerun it to rebuild this task)",
                        kind="template",
                        task=name,
                    )
                )
    return report


def _check_leftovers(target: Target, report: VerifyReport) -> None:
    if target.partials:
        report.add(
            Problem(
                "/",
                f"{len(target.partials)} *.partial file(s) left by a killed writer (harmless; "
                "`rnnzoo-train verify --repair` removes them)",
                kind="leftover",
            )
        )


def _check_metadata(target: Target, report: VerifyReport) -> None:
    for path, why in sorted(target.unreadable.items()):
        report.add(
            Problem(
                path or "/",
                f"zarr.json cannot be read ({why}); `rnnzoo-train verify --repair` restores it "
                "from the consolidated metadata",
                kind="metadata",
                task=path.split("/")[0],
            )
        )
    if target.consolidated is None:
        report.add(
            Problem(
                "/",
                "no consolidated metadata (the zoo opens EMPTY over HTTP); "
                "run `rnnzoo-train verify --repair`",
                kind="consolidated",
            )
        )
        return
    if target.remote:
        return  # nothing to compare with: the consolidated copy is all there is
    listed, stored, bad = {}, {}, []
    for path, meta in target.nodes.items():
        if path:
            listed[path] = normalised(meta)
    for path, meta in target.consolidated.items():
        try:
            stored[path] = normalised(meta)
        except Exception:
            bad.append(path)
    missing = sorted(set(listed) - set(stored) - set(target.unreadable))
    stale = sorted(p for p in set(listed) & set(stored) if listed[p] != stored[p]) + bad
    extra = sorted(set(stored) - set(listed) - set(target.unreadable))
    if missing or stale or extra:
        detail = "; ".join(
            f"{label}: {', '.join(paths[:3])}{' ...' if len(paths) > 3 else ''}"
            for label, paths in (("missing", missing), ("stale", stale), ("gone", extra))
            if paths
        )
        report.add(
            Problem(
                "/",
                f"consolidated metadata is out of date ({detail}); "
                "run `rnnzoo-train verify --repair`",
                kind="consolidated",
            )
        )


def _check_task(target: Target, task: str, report: VerifyReport) -> dict[str, str]:
    """Layout and statuses of one task; returns ``network id -> index status``."""
    missing = [n for n in ("index", "probe", "search") if f"{task}/{n}" not in target.nodes]
    if task not in target.nodes or missing:
        report.add(Problem(task, f"missing node(s) {missing or [task]}", kind="layout", task=task))
        return {}
    plan_dict = target.group_attrs(task).get("plan")
    slots: dict[str, layout.NetworkSlot] = {}
    if plan_dict is not None:
        try:
            slots = layout.network_slots(layout.plan_from_dict(plan_dict))
        except Exception as err:
            report.add(Problem(task, f"unreadable plan attribute ({err})", "layout", task))
    ids = target.values(f"{task}/index/network")
    status = target.values(f"{task}/index/status")
    if ids is not None and slots and [str(n) for n in ids] != list(slots):
        report.add(
            Problem(
                f"{task}/index",
                "network ids differ from the plan's networks",
                kind="layout",
                task=task,
                array=f"{task}/index/network",
            )
        )
    names = list(slots) if slots else [str(n) for n in (ids if ids is not None else [])]
    statuses: dict[str, str] = {}
    if status is not None and len(status) == len(names):
        statuses = {n: str(s) for n, s in zip(names, status, strict=True)}
        report.status_counts[task] = dict(Counter(statuses.values()))
    train_loss = target.values(f"{task}/index/train_loss")
    if train_loss is not None and statuses and len(train_loss) == len(names):
        for nid, loss in zip(names, train_loss, strict=True):
            if statuses[nid] == "ok" and not np.isfinite(loss):
                report.add(
                    Problem(
                        f"{task}/{nid}",
                        "status ok but train_loss is not finite",
                        kind="values",
                        task=task,
                        network=nid,
                    )
                )
    groups = dict.fromkeys(s.group for s in slots.values())
    for g in groups:
        path = layout.group_path(task, g)
        if path not in target.nodes:
            report.add(Problem(path, "group is missing", kind="layout", task=task))
            continue
        _check_group_layout(target, task, g, report)
        members = [s.network_id for s in slots.values() if s.group == g]
        group_status = target.values(f"{path}/status")
        if group_status is None or len(group_status) != len(members) or not statuses:
            continue
        for nid, gs in zip(members, group_status, strict=True):
            if str(gs) != statuses[nid] and str(gs) != "":
                report.add(
                    Problem(
                        f"{task}/{nid}",
                        f"index status {statuses[nid]!r} but group status {str(gs)!r} "
                        "(interrupted write; a resumed generate retrains it)",
                        kind="status",
                        task=task,
                        network=nid,
                    )
                )
    return statuses


def _check_group_layout(target: Target, task: str, g: str, report: VerifyReport) -> None:
    where = layout.group_path(task, g)
    attrs = target.group_attrs(where)
    params = list(attrs.get("parameters", []))
    omitted = list(attrs.get("omitted", []))
    expected = [a for a in layout.GROUP_ARRAYS if a not in omitted] + [
        prefix + p for p in params for prefix in layout.WEIGHT_PREFIXES.values()
    ]
    present = {p.rsplit("/", 1)[-1] for p in target.arrays(f"{where}/")}
    missing = [v for v in expected if v not in present]
    if missing:
        report.add(Problem(where, f"missing variables {missing}", kind="layout", task=task))
    units = attrs.get("units")
    for name in layout.HIDDEN_VARIABLES.values():
        meta = target.nodes.get(f"{where}/{name}")
        if meta and units is not None and meta["shape"][-1] != units:
            report.add(
                Problem(
                    where,
                    f"{name} has {meta['shape'][-1]} units, expected {units}",
                    kind="layout",
                    task=task,
                )
            )


def _row_networks(target: Target, array: str) -> list[str] | None:
    """Network ids along the first axis of a per-network array (one network per chunk)."""
    meta = target.nodes[array]
    dims = meta.get("dimension_names") or []
    chunks = meta["chunk_grid"]["configuration"]["chunk_shape"]
    parts = array.split("/")
    if not dims or dims[0] != "network" or chunks[0] != 1 or len(parts) < 4:
        return None
    if parts[1] != "networks":
        return None
    task, group = parts[0], parts[2]
    plan = target.group_attrs(task).get("plan")
    if plan is None:
        return None
    try:
        slots = layout.network_slots(layout.plan_from_dict(plan)).values()
    except Exception:
        return None
    return [s.network_id for s in slots if s.group == group]


def _check_chunks(
    target: Target,
    report: VerifyReport,
    statuses: dict[str, dict[str, str]],
    checksums: bool,
    progress: bool,
) -> None:
    arrays = target.arrays()
    items: Iterable[str] = arrays
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(arrays, desc=f"verify {target.location}", unit="array")
    for path in items:
        if not target.is_analysis_store and path.split("/")[0] not in statuses:
            continue  # an unlisted (interrupted) task: reported as a template problem
        try:
            arr = target.array(path)
        except Exception as err:
            report.add(Problem(path, f"unusable array metadata ({err})", "metadata"))
            continue
        if arr is None:
            continue
        task = path.split("/")[0]
        rows = _row_networks(target, path)
        status = statuses.get(task, {})
        name = path.rsplit("/", 1)[-1]
        for coords in chunk_grid(arr):
            nid = rows[coords[0]] if rows is not None and coords[0] < len(rows) else ""
            owner = _Owner(task, nid, status.get(nid, ""), name)
            _check_chunk(target, arr, coords, owner, report, checksums)


@dataclass(frozen=True)
class _Owner:
    """Whose a chunk is: its task, network (per-network arrays) and status, the array name."""

    task: str
    network: str
    status: str
    name: str


def _check_chunk(
    target: Target,
    arr: zarr.Array,
    coords: tuple[int, ...],
    owner: _Owner,
    report: VerifyReport,
    checksums: bool,
) -> None:
    task, nid, status, name = owner.task, owner.network, owner.status, owner.name
    key = chunk_key(arr, coords)
    chunk = key[len(arr.path) + 1 :]
    where = f"{task}/{nid}" if nid else arr.path
    label = f"{name}: chunk {chunk}" if nid else f"chunk {chunk}"
    hint = ""
    if f"{task}/analysis/" in f"{arr.path}/":
        hint = "; rerun the command that wrote this analysis"

    def problem(what: str, kind: str = "chunk") -> None:
        report.add(Problem(where, what + hint, kind, task, nid, arr.path, coords))

    report.chunks_checked += 1
    present = target.exists(key)
    if present is None and not checksums:
        present = bool(sync(target.raw.exists(key)))
    if present is False:
        if target.strict or status in layout.FINISHED_STATUSES:
            problem(f"{label} missing" + (f" (status is {status})" if status else ""))
        return
    if not checksums:
        return
    try:
        with quiet_zarr():
            value = arr.get_block_selection(coords)
    except ZooIntegrityError as err:
        what = "missing" if err.reason == "missing" else "corrupt (crc32c mismatch)"
        problem(f"{label} {what}" + (f" (status is {status})" if status and nid else ""))
        return
    except Exception as err:  # truncated or undecodable chunk
        gist = str(err).splitlines()[0] if str(err) else ""
        problem(f"{label} unreadable ({type(err).__name__}: {gist})")
        return
    report.chunks_read += 1
    if status == "ok" and nid and name != "status" and _non_finite(value, arr.dtype):
        problem(f"{name}: non-finite values (status is ok)", kind="values")


def _non_finite(value: Any, dtype: Any) -> bool:
    """NaN anywhere, or +-inf outside float16 (float16 states saturate: zoo-format.md §7)."""
    value = np.asarray(value)
    if value.dtype.kind != "f":
        return False
    if np.any(np.isnan(value)):
        return True
    return np.dtype(dtype) != np.float16 and not np.all(np.isfinite(value))


def _check_analyses(target: Target, task: str, report: VerifyReport) -> None:
    """Interrupted or incomplete analysis commits (local directories only)."""
    if target.path is None:
        return
    from . import analyses

    problems_of: Callable | None = getattr(analyses, "analysis_problems", None)
    if problems_of is None:  # pragma: no cover - an analyses module without transactions
        return
    for where, what in problems_of(target.path, task):
        report.add(Problem(where, what, kind="analysis", task=task))


__all__ = ["Problem", "Target", "VerifyReport", "check", "verify_zoo"]
