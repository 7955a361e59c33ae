"""``verify``: check a zoo's schema, layout, completeness and checksums, per network.

Checks, in order (a problem names the network or the node it concerns):

1. schema: an rnnzoo zoo, of a schema major version this reader knows;
2. consolidated metadata: present and equal to the metadata of every node (a stale or
   missing copy makes a zoo open empty or partial over HTTP);
3. layout: every task listed has its index, probe set, search table and one group per
   configuration group, with every variable at the shape the index implies;
4. per network: the index status equals the group's status; a network with a finished
   result (``ok`` or ``diverged``, which a resumed ``generate`` never rewrites) has every
   per-network chunk, and (unless ``checksums=False``) every chunk decodes, which checks its
   crc32c; an ``ok`` network also holds finite weights, hidden states and losses;
5. leftovers: ``*.partial`` files (chunks whose writer was killed before the atomic rename).

``repair=True`` fixes what can be fixed without retraining: re-consolidates the metadata,
removes ``*.partial`` leftovers, and marks networks with problems ``failed`` (index and group
status), so that a resumed ``generate``, which retrains every network that is not finished,
rewrites them.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.core.sync import sync

from rnnzoo_train.records import STATUSES

from . import layout
from .errors import ZooError
from .reader import check_schema
from .store import (
    PARTIAL_SUFFIX,
    WriterLock,
    consolidate,
    is_url,
    is_zip,
    open_store,
    quiet_zarr,
)

_NODES = ("index", "probe", "search", "networks", "analysis")


@dataclass(frozen=True)
class Problem:
    """One problem: ``where`` (``task/network-id`` or a node path) and ``what``."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass
class VerifyReport:
    """The result of :func:`verify_zoo`."""

    location: str
    schema_version: str = ""
    status_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    chunks_read: int = 0
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def bad_networks(self) -> dict[str, list[str]]:
        """Problems grouped by ``task/network-id`` (only those about a network)."""
        out: dict[str, list[str]] = {}
        for p in self.problems:
            task, _, network = p.where.partition("/")
            if task and network and "/" not in network and network not in _NODES:
                out.setdefault(p.where, []).append(p.what)
        return out

    def format(self) -> str:
        lines = [f"zoo {self.location} (schema {self.schema_version or '?'})"]
        for task, counts in self.status_counts.items():
            parts = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts.get(s))
            lines.append(f"  {task}: {sum(counts.values())} networks ({parts})")
        lines.append(f"  {self.chunks_read} chunks read and checksummed")
        lines += [f"  repaired: {r}" for r in self.repaired]
        if self.ok:
            lines.append("OK: schema, layout, completeness and checksums")
        else:
            lines.append(f"{len(self.problems)} problem(s):")
            lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


def verify_zoo(
    location: str | os.PathLike,
    *,
    checksums: bool = True,
    repair: bool = False,
    progress: bool = False,
) -> VerifyReport:
    """Check a zoo and report problems per network.

    Parameters
    ----------
    location : str or path
        A zoo directory, a published zip, or a URL.
    checksums : bool
        Read (and so checksum) every chunk of every ``ok`` network; ``False`` checks only
        that the chunks exist.
    repair : bool
        Re-consolidate the metadata and delete ``*.partial`` leftovers (directories only).
    progress : bool
        Show a progress bar over networks.

    Returns
    -------
    VerifyReport
    """
    report = VerifyReport(str(location))
    local_dir = not is_url(location) and not is_zip(location)
    if repair and not local_dir:
        raise ZooError(f"cannot repair {location}: only a zoo directory can be repaired")
    store = open_store(location, read_only=not repair)
    if local_dir:
        _check_leftovers(Path(location), report, repair)
        if repair:
            consolidate(store)
            report.repaired.append("re-consolidated the metadata")
    with quiet_zarr():
        try:
            root = zarr.open_group(store, mode="r", zarr_format=3, use_consolidated=False)
        except FileNotFoundError:
            report.problems.append(Problem("/", "no Zarr v3 group here"))
            return report
    try:
        report.schema_version = check_schema(dict(root.attrs), str(location))
    except ZooError as err:
        report.problems.append(Problem("/", str(err)))
        return report
    _check_consolidated(store, root, report, remote=is_url(location))
    for task in root.attrs.get("tasks", []):
        _check_task(store, root, str(task), report, checksums, progress)
    if repair and report.bad_networks():
        _reset_bad_networks(Path(location), root, report)
    unlisted = [n for n, _ in root.groups() if n not in root.attrs.get("tasks", [])]
    for name in unlisted:
        report.problems.append(
            Problem(
                name,
                "task group without a complete template (an interrupted generate: "
                "rerun it to rebuild this task)",
            )
        )
    return report


# -- checks -----------------------------------------------------------------------------------
def _check_leftovers(path: Path, report: VerifyReport, repair: bool) -> None:
    partial = [p for p in path.rglob(f"*{PARTIAL_SUFFIX}") if p.is_file()]
    if repair:
        for p in partial:
            p.unlink()
        if partial:
            report.repaired.append(f"removed {len(partial)} *.partial leftover(s)")
    elif partial:
        report.problems.append(
            Problem(
                "/",
                f"{len(partial)} *.partial file(s) left by a killed writer (harmless; "
                "`rnnzoo-train verify --repair` removes them)",
            )
        )


def _metadata_dicts(group: zarr.Group) -> dict[str, dict]:
    out = {}
    for path, node in group.members(max_depth=None):
        d = node.metadata.to_dict()
        d.pop("consolidated_metadata", None)
        out[path] = d
    return out


def _check_consolidated(store, root: zarr.Group, report: VerifyReport, remote: bool) -> None:
    with quiet_zarr():
        try:
            cons = zarr.open_group(store, mode="r", zarr_format=3, use_consolidated=True)
        except (ValueError, KeyError):
            report.problems.append(
                Problem(
                    "/",
                    "no consolidated metadata (the zoo opens EMPTY over HTTP); "
                    "run `rnnzoo-train verify --repair`",
                )
            )
            return
        if remote:
            return  # a web server cannot be listed; the consolidated copy is all there is
        listed = _metadata_dicts(root)
        stored = _metadata_dicts(cons)
    missing = sorted(set(listed) - set(stored))
    stale = sorted(p for p in set(listed) & set(stored) if listed[p] != stored[p])
    extra = sorted(set(stored) - set(listed))
    if missing or stale or extra:
        detail = "; ".join(
            f"{label}: {', '.join(paths[:3])}{' ...' if len(paths) > 3 else ''}"
            for label, paths in (("missing", missing), ("stale", stale), ("gone", extra))
            if paths
        )
        report.problems.append(
            Problem(
                "/",
                f"consolidated metadata is out of date ({detail}); "
                "run `rnnzoo-train verify --repair`",
            )
        )


def _read(array: zarr.Array, selection: Any, report: VerifyReport) -> tuple[Any, str | None]:
    try:
        value = array[selection]
    except Exception as err:  # crc32c mismatch, truncated or undecodable chunk
        return None, f"{array.basename}: unreadable chunk ({type(err).__name__}: {err})"
    report.chunks_read += 1
    return value, None


def _chunk_exists(store, array: zarr.Array, coords: tuple[int, ...]) -> bool:
    key = f"{array.path}/{array.metadata.encode_chunk_key(coords)}"
    return bool(sync(store.exists(key)))


def _check_task(
    store,
    root: zarr.Group,
    task: str,
    report: VerifyReport,
    checksums: bool,
    progress: bool,
) -> None:
    try:
        tgroup = root[task]
        index = tgroup["index"]
        tgroup["probe"]
        tgroup["search"]
    except KeyError as err:
        report.problems.append(Problem(task, f"missing node {err}"))
        return
    columns: dict[str, np.ndarray] = {}
    for name in ("network", "group", "status", "units", "train_loss"):
        value, err = _read(index[name], slice(None), report)
        if err:
            report.problems.append(Problem(f"{task}/index", err))
            return
        columns[name] = np.asarray(value)
    for name in index.array_keys():
        if name not in columns:
            _, err = _read(index[name], slice(None), report)
            if err:
                report.problems.append(Problem(f"{task}/index", err))
    plan = tgroup.attrs.get("plan")
    if plan is not None:
        expected = layout.plan_from_dict(plan).network_ids()
        if [str(n) for n in columns["network"]] != expected:
            report.problems.append(
                Problem(f"{task}/index", "network ids differ from the plan's networks")
            )
    report.status_counts[task] = dict(Counter(str(s) for s in columns["status"]))

    groups: dict[str, zarr.Group] = {}
    for g in dict.fromkeys(str(x) for x in columns["group"]):
        try:
            groups[g] = tgroup[f"networks/{g}"]
        except KeyError:
            report.problems.append(Problem(f"{task}/networks/{g}", "group is missing"))
    group_rows: dict[str, dict[str, int]] = {}
    group_status: dict[str, np.ndarray] = {}
    for g, node in groups.items():
        ids, err = _read(node["network"], slice(None), report)
        status, err2 = _read(node["status"], slice(None), report)
        if err or err2:
            report.problems.append(Problem(f"{task}/networks/{g}", err or err2))
            continue
        group_rows[g] = {str(n): i for i, n in enumerate(ids)}
        group_status[g] = np.asarray(status)
        _check_group_layout(task, g, node, report)

    rows = range(len(columns["network"]))
    if progress:
        from tqdm.auto import tqdm

        rows = tqdm(rows, desc=f"verify {task}", unit="network")
    for i in rows:
        nid, g, status = (
            str(columns["network"][i]),
            str(columns["group"][i]),
            str(columns["status"][i]),
        )
        where = f"{task}/{nid}"
        if g not in group_rows:
            continue
        row = group_rows[g].get(nid)
        if row is None:
            report.problems.append(Problem(where, f"not in group {g}"))
            continue
        if str(group_status[g][row]) != status:
            report.problems.append(
                Problem(
                    where,
                    f"index status {status!r} but group status {group_status[g][row]!r} "
                    "(interrupted write; a resumed generate retrains it)",
                )
            )
        if status == "ok" and not np.isfinite(columns["train_loss"][i]):
            report.problems.append(Problem(where, "status ok but train_loss is not finite"))
        if status in layout.FINISHED_STATUSES:  # a resume never rewrites these: check them
            _check_network(store, groups[g], row, where, report, checksums, status)


def _check_group_layout(task: str, g: str, node: zarr.Group, report: VerifyReport) -> None:
    where = f"{task}/networks/{g}"
    params = list(node.attrs.get("parameters", []))
    omitted = list(node.attrs.get("omitted", []))
    expected = [a for a in layout.GROUP_ARRAYS if a not in omitted] + [
        prefix + p for p in params for prefix in layout.WEIGHT_PREFIXES.values()
    ]
    present = set(node.array_keys())
    missing = [v for v in expected if v not in present]
    if missing:
        report.problems.append(Problem(where, f"missing variables {missing}"))
    units = node.attrs.get("units")
    for name in layout.HIDDEN_VARIABLES.values():
        if name in present and units is not None and node[name].shape[-1] != units:
            report.problems.append(
                Problem(where, f"{name} has {node[name].shape[-1]} units, expected {units}")
            )


def _check_network(
    store,
    node: zarr.Group,
    row: int,
    where: str,
    report: VerifyReport,
    checksums: bool,
    status: str = "ok",
) -> None:
    """Chunks of a finished network exist and read back; an ``ok`` one's values are finite."""
    params = list(node.attrs.get("parameters", []))
    names = list(layout.GROUP_ARRAYS) + [
        prefix + p for p in params for prefix in layout.WEIGHT_PREFIXES.values()
    ]
    for name in names:
        if name not in node:
            continue
        array = node[name]
        coords = (row,) + (0,) * (array.ndim - 1)
        if not _chunk_exists(store, array, coords):
            report.problems.append(Problem(where, f"{name}: chunk missing (status is {status})"))
            continue
        if not checksums:
            continue
        value, err = _read(array, row, report)
        if err:
            report.problems.append(Problem(where, err))
        elif status == "ok" and (
            np.any(np.isnan(value))
            or (array.dtype != np.float16 and not np.all(np.isfinite(value)))
        ):  # diverged: NaN allowed; float16 states saturate to +-inf (zoo-format.md section 7)
            report.problems.append(Problem(where, f"{name}: non-finite values (status is ok)"))


def _reset_bad_networks(path: Path, root: zarr.Group, report: VerifyReport) -> None:
    """Mark networks with problems ``failed`` so that a resumed ``generate`` retrains them."""
    lock = WriterLock(path)
    lock.acquire()
    try:
        store = zarr.storage.LocalStore(path)
        with quiet_zarr():
            writable = zarr.open_group(store, mode="r+", zarr_format=3, use_consolidated=False)
        by_task: dict[str, list[tuple[str, str]]] = {}
        for where, what in report.bad_networks().items():
            task, _, nid = where.partition("/")
            by_task.setdefault(task, []).append((nid, "; ".join(what)))
        for task, bad in by_task.items():
            index = writable[f"{task}/index"]
            ids = [str(n) for n in index["network"][:]]
            groups = [str(g) for g in index["group"][:]]
            status = layout.as_vlen_str(index["status"][:])
            message = layout.as_vlen_str(index["message"][:])
            for nid, what in bad:
                i = ids.index(nid)
                status[i] = "failed"
                message[i] = f"verify: {what}"
                node = writable[f"{task}/networks/{groups[i]}"]
                row = [str(n) for n in node["network"][:]].index(nid)
                node["status"][row] = "failed"
            index["message"][:] = message  # the message first: status marks the row
            index["status"][:] = status
            report.repaired.append(
                f"{task}: marked {len(bad)} network(s) with problems as failed "
                "(a resumed generate retrains them)"
            )
    finally:
        lock.release()


__all__ = ["Problem", "VerifyReport", "verify_zoo"]
