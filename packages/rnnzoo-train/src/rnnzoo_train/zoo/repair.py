"""``verify --repair``: make a damaged zoo consistent, so that ``generate`` restores it.

Every chunk of a zoo is written (schema >= 1.1), and generation is deterministic, so the
repair never has to invent a value: it puts back what can be rebuilt from the plan, resets
what cannot to its *pending* value, and marks every network that lost a value ``failed``,
which a resumed ``generate`` retrains (the same work units, so identical values):

==============================================  ==============================================
damage                                          repair
==============================================  ==============================================
``*.partial`` leftovers                         removed
an unreadable node ``zarr.json``                restored from the consolidated metadata
an index column that the plan fixes (ids,       rewritten from the plan
arch, units, l2, seed, config, group,
iterations, batch size)
any other index column                          reset to pending values; every finished
                                                network marked ``failed`` (run-specific
                                                ``train_seconds`` / ``written_at``: reset only)
a search-table column                           the whole table reset to pending: ``generate``
                                                runs the search again (same trials, same pick)
a probe array                                   rewritten from the task (``task_config``)
a group coordinate (``network``, ``arch``...)   rewritten from the plan
a network's chunk (weights, states, status...)  rewritten with fill values; the network marked
                                                ``failed`` if it was finished
index and group status disagree; an ``ok``      the network marked ``failed``
network with non-finite values
interrupted analysis commits                    :func:`~rnnzoo_train.zoo.analyses.repair_analyses`
stale or missing consolidated metadata          re-consolidated (after every repair)
==============================================  ==============================================

Lost analysis chunks cannot be rebuilt here (rerun the analysis) and an interrupted task
template is rebuilt by ``generate``; both stay reported.

Safety: the repair holds the zoo's :class:`~rnnzoo_train.zoo.store.WriterLock` from the first
check to the last write (refused with one line while a ``generate`` or an analysis writes),
refuses a path that does not exist (creating nothing), a store that is not a zoo, a zip or a
URL, and tries to write in every folder it will touch before it writes anything, so a
read-only zoo is refused with one line and nothing half-done.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from . import layout
from .errors import ZooError, ZooLocationError
from .store import PARTIAL_SUFFIX, WriterLock, consolidate, is_url, is_zip, quiet_zarr
from .targets import unwritable
from .verify import Problem, Target, VerifyReport, check

#: index columns that the plan alone fixes (rewritten without retraining anything)
PLAN_COLUMNS = (
    "network",
    "arch",
    "activation",
    "units",
    "l2",
    "seed",
    "config",
    "group",
    "iterations",
    "batch_size",
)
#: index columns that describe the run, not the network (reset without retraining)
RUN_COLUMNS = ("train_seconds", "written_at")
#: repair passes at most (a restored zarr.json can reveal chunk problems behind it)
MAX_PASSES = 3


@dataclass
class Action:
    """One repair step: what it does (a report line), where it writes, how."""

    what: str
    dirs: list[Path]
    apply: Callable[[], None]


@dataclass
class _Plan:
    """The repair of one pass: actions, then networks to mark failed, then consolidation."""

    target: Target
    actions: list[Action] = field(default_factory=list)
    failed: dict[str, dict[str, str]] = field(default_factory=dict)  # task -> id -> reason
    lost_status: set[str] = field(default_factory=set)  # tasks whose index status was lost
    group_rows: dict[str, set[str]] = field(default_factory=dict)  # task -> ids: group status

    def fail(self, task: str, network: str, reason: str) -> None:
        self.failed.setdefault(task, {}).setdefault(network, reason)


def repair_zoo(
    location: str | os.PathLike, *, checksums: bool = True, progress: bool = False
) -> VerifyReport:
    """Check the zoo at ``location`` and repair it (see the module docstring).

    Returns
    -------
    VerifyReport
        The problems left after the repair (``ok`` when the zoo is consistent again) and,
        in ``repaired``, one line per action taken.

    Raises
    ------
    FileNotFoundError, ZooError
        One line, with nothing written: the path does not exist, is not a zoo, is a zip or
        a URL, is being written by another process, or cannot be written.
    """
    if is_url(location) or is_zip(location):
        raise ZooError(
            f"cannot repair {location}: a zip or a URL is read-only; repair the original zoo "
            "directory and publish it again"
        )
    target = Target(location)  # refuses a missing path, a non-zoo, an unreadable root
    path = target.path
    assert path is not None
    lock = WriterLock(path)
    try:
        lock.acquire()
    except ZooLocationError as err:
        holder = getattr(err, "holder", "another process")
        raise ZooLocationError(
            f"cannot repair {location}: it is being written by {holder} (a generate or an "
            "analysis); wait for it to finish, then run verify --repair again"
        ) from None
    except OSError as err:
        raise ZooLocationError(
            f"cannot repair {location}: cannot take its writer lock ({err.strerror or err}); "
            f"is it read-only? `rnnzoo-train verify {location}` checks it without writing"
        ) from None
    try:
        done: list[str] = []
        report = check(Target(location), checksums=checksums, progress=progress)
        for _ in range(MAX_PASSES):
            if report.ok:
                break
            plan = plan_repair(Target(location), report)
            if not plan.actions:
                break
            _check_writable(plan.actions, location)
            for action in plan.actions:
                action.apply()
                done.append(action.what)
            report = check(Target(location), checksums=checksums, progress=progress)
        report.repaired = done
        return report
    finally:
        lock.release()


def plan_repair(target: Target, report: VerifyReport) -> _Plan:
    """The actions that repair ``report``'s problems (nothing is written here)."""
    plan = _Plan(target)
    assert target.path is not None
    by_array: dict[str, list[Problem]] = {}
    analysis_tasks: list[str] = []
    for p in report.problems:
        if p.kind == "leftover":
            plan.actions.append(_remove_partials(target))
        elif p.kind == "metadata":
            action = _restore_metadata(target, p.where if p.where != "/" else "")
            if action is not None:
                plan.actions.append(action)
        elif p.kind == "chunk" and p.array:
            by_array.setdefault(p.array, []).append(p)
        elif p.kind in ("status", "values") and p.network:
            plan.fail(p.task, p.network, p.what)
        elif p.kind == "analysis" and p.task not in analysis_tasks:
            analysis_tasks.append(p.task)
    for array, problems in by_array.items():
        _plan_chunks(plan, array, problems)
    for task in plan.failed.keys() | plan.lost_status | plan.group_rows.keys():
        plan.actions.append(_mark(plan, task))
    for task in analysis_tasks:
        action = _repair_analyses(target, task)
        if action is not None:
            plan.actions.append(action)
    if plan.actions or any(p.kind == "consolidated" for p in report.problems):
        plan.actions.append(
            Action(
                "re-consolidated the metadata",
                [target.path],
                lambda: consolidate(target.path),
            )
        )
    return plan


# -- actions ------------------------------------------------------------------------------------
def _remove_partials(target: Target) -> Action:
    assert target.path is not None
    files = [target.path / k for k in target.partials]

    def apply() -> None:
        for f in files:
            with contextlib.suppress(FileNotFoundError):
                f.unlink()

    return Action(
        f"removed {len(files)} *.partial leftover(s)", sorted({f.parent for f in files}), apply
    )


def _restore_metadata(target: Target, node: str) -> Action | None:
    """Rewrite an unreadable ``zarr.json`` from its copy in the consolidated metadata."""
    assert target.path is not None
    meta = (target.consolidated or {}).get(node)
    if not node or meta is None:
        return None
    file = target.path / node / "zarr.json"

    def apply() -> None:
        _write_atomic(file, json.dumps(meta, indent=2).encode())

    return Action(f"restored {node}/zarr.json from the consolidated metadata", [file.parent], apply)


def _repair_analyses(target: Target, task: str) -> Action | None:
    from . import analyses

    repair = getattr(analyses, "repair_analyses", None)
    if repair is None:  # pragma: no cover - an analyses module without transactions
        return None
    path = target.path
    assert path is not None
    lines: list[str] = []

    def apply() -> None:
        lines.extend(repair(path, task))

    dirs = [path] + [d for d in (path / task, path / task / "analysis") if d.is_dir()]
    return Action(f"{task}: completed or undid interrupted analysis commits", dirs, apply)


def _plan_chunks(plan: _Plan, array: str, problems: list[Problem]) -> None:
    """Actions for lost or corrupt chunks of ``array`` (one action per array)."""
    target = plan.target
    parts = array.split("/")
    task, node, name = parts[0], parts[1] if len(parts) > 1 else "", parts[-1]
    plan_dict = target.group_attrs(task).get("plan")
    if plan_dict is None or node not in ("index", "search", "probe", "networks"):
        return  # an analysis (rerun it) or an array rnnzoo does not know: stays reported
    task_plan = layout.plan_from_dict(plan_dict)
    slots = layout.network_slots(task_plan)
    if node == "index" and len(parts) == 3:
        values = _index_column(task_plan, slots, name, target)
        plan.actions.append(_rewrite(target, array, values, f"{task}: rewrote index/{name}"))
        if name == "status":
            plan.lost_status.add(task)
        elif name not in PLAN_COLUMNS and name not in RUN_COLUMNS:
            statuses = _statuses(target, task, slots)
            for nid, status in statuses.items():
                if status in layout.FINISHED_STATUSES:
                    plan.fail(task, nid, f"index/{name} was lost")
    elif node == "search" and len(parts) == 3:
        search = layout.search_template(task_plan)
        for var in search.variables:
            values = _plain(search[var].values)
            plan.actions.append(_rewrite(target, f"{task}/search/{var}", values, ""))
        plan.actions[-1].what = (
            f"{task}: reset the search table (search/{name} was lost; generate runs the "
            "search again: the same trials, the same choice)"
        )
    elif node == "probe" and len(parts) == 3:
        values = _probe_values(target, task, name)
        if values is not None:
            plan.actions.append(_rewrite(target, array, values, f"{task}: rewrote probe/{name}"))
    elif node == "networks" and len(parts) == 4:
        _plan_group_chunks(plan, array, problems, task_plan, slots)


def _plan_group_chunks(
    plan: _Plan,
    array: str,
    problems: list[Problem],
    task_plan: Any,
    slots: dict[str, layout.NetworkSlot],
) -> None:
    target = plan.target
    task, _, group, name = array.split("/")
    members = [s for s in slots.values() if s.group == group]
    coords = layout._network_coords(members)
    if name in coords and name != "status":
        values = _plain(coords[name][1])
        plan.actions.append(_rewrite(target, array, values, f"{task}: rewrote {group}/{name}"))
        return
    if name == "loss_iteration":
        values = np.arange(task_plan.n_logged, dtype="int64") * task_plan.loss_every
        plan.actions.append(_rewrite(target, array, values, f"{task}: rewrote {group}/{name}"))
        return
    statuses = _statuses(target, task, slots)
    rows = sorted({p.chunk[0] for p in problems if p.chunk})
    ids = [members[r].network_id for r in rows if r < len(members)]
    if name == "status":
        plan.group_rows.setdefault(task, set()).update(ids)
    else:
        plan.actions.append(_fill_rows(target, array, rows, f"{task}: {group}/{name}"))
    for nid in ids:
        if statuses.get(nid) in layout.FINISHED_STATUSES:
            plan.fail(task, nid, f"{group}/{name} was lost")


def _index_column(
    task_plan: Any, slots: dict[str, layout.NetworkSlot], name: str, target: Target
) -> np.ndarray:
    """The rebuilt values of index column ``name``: from the plan, else pending values."""
    n = len(slots)
    coords = layout._network_coords(list(slots.values()))
    if name in coords and name != "status":
        return _plain(coords[name][1])
    if name == "iterations":
        return np.full(n, task_plan.iterations, dtype="int64")
    if name == "batch_size":
        return np.full(n, task_plan.batch_size, dtype="int64")
    if name == "status":
        return _plain(layout.as_vlen_str(["pending"] * n))  # _mark writes the real ones
    dtype, value = layout.INDEX_VARIABLES.get(name, (None, None))
    if dtype is None:
        meta = target.nodes[f"{task_plan.task}/index/{name}"]
        return np.full(n, meta.get("fill_value"))
    if dtype == "str":
        return layout.as_vlen_str([value] * n)
    return np.full(n, value, dtype=dtype)


def _probe_values(target: Target, task: str, name: str) -> np.ndarray | None:
    from rnnzoo_train.tasks import get_task

    config = target.group_attrs(task).get("task_config") or {}
    try:
        probe = layout.probe_dataset(get_task(config["name"], **config.get("params", {})))
    except Exception:
        return None
    if name not in probe.variables:
        return None
    return _plain(probe[name].values)


def _plain(values: Any) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind in "OUT":
        return layout.as_vlen_str(values)
    return values


def _statuses(target: Target, task: str, slots: dict[str, layout.NetworkSlot]) -> dict[str, str]:
    """Index status per network; where the index status is lost, the group's status."""
    index = target.values(f"{task}/index/status")
    if index is not None and len(index) == len(slots):
        return {nid: str(s) for nid, s in zip(slots, index, strict=True)}
    out = {}
    for g in dict.fromkeys(s.group for s in slots.values()):
        members = [s.network_id for s in slots.values() if s.group == g]
        values = target.values(f"{layout.group_path(task, g)}/status")
        if values is None or len(values) != len(members):
            values = []
            for row in range(len(members)):
                arr = target.array(f"{layout.group_path(task, g)}/status")
                try:
                    with quiet_zarr():
                        values.append(str(arr[row]) if arr is not None else "pending")
                except Exception:
                    values.append("pending")
        out.update({nid: str(v) or "pending" for nid, v in zip(members, values, strict=True)})
    return out


def _writable(target: Target, path: str) -> zarr.Array:
    """Array ``path`` opened for writing, every chunk written (even all-fill ones)."""
    assert target.path is not None
    store = zarr.storage.LocalStore(target.path)
    with quiet_zarr():
        arr = zarr.open_array(store=store, path=path, mode="r+", zarr_format=3)
    return arr.with_config({"write_empty_chunks": True})


def _chunk_dirs(target: Target, path: str) -> list[Path]:
    """Folders that writing every chunk of array ``path`` touches."""
    from .store import chunk_grid, chunk_key

    assert target.path is not None
    arr = target.array(path)
    if arr is None:
        return [target.path / path]
    return sorted({(target.path / chunk_key(arr, c)).parent for c in chunk_grid(arr)})


def _rewrite(target: Target, path: str, values: np.ndarray, what: str) -> Action:
    def apply() -> None:
        arr = _writable(target, path)
        with quiet_zarr():
            arr[...] = values

    return Action(what, _chunk_dirs(target, path), apply)


def _fill_rows(target: Target, path: str, rows: list[int], what: str) -> Action:
    """Rewrite rows ``rows`` of a per-network array with its fill value."""
    assert target.path is not None
    dirs = [
        d if d.is_dir() else _existing_ancestor(d)
        for d in (target.path / path / "c" / str(r) for r in rows)
    ]

    def apply() -> None:
        arr = _writable(target, path)
        with quiet_zarr():
            for r in rows:
                arr[r] = arr.fill_value

    n = len(rows)
    return Action(f"{what}: rewrote {n} lost chunk(s) with fill values", dirs, apply)


def _mark(plan: _Plan, task: str) -> Action:
    """Mark ``plan.failed[task]`` failed: group status rows, index message, index status."""
    target = plan.target
    assert target.path is not None
    task_plan = layout.plan_from_dict(target.group_attrs(task)["plan"])
    slots = layout.network_slots(task_plan)
    failed = plan.failed.get(task, {})
    statuses = _statuses(target, task, slots)
    if task in plan.lost_status:  # rebuilt from the groups; finished ones retrain
        for nid, status in statuses.items():
            if status in layout.FINISHED_STATUSES:
                failed.setdefault(nid, "index/status was lost")
    new_status = {nid: "failed" if nid in failed else s for nid, s in statuses.items()}
    rows_to_write = set(failed) | plan.group_rows.get(task, set())

    def apply() -> None:
        with quiet_zarr():
            for g in dict.fromkeys(s.group for s in slots.values()):
                members = [s for s in slots.values() if s.group == g]
                todo = [s for s in members if s.network_id in rows_to_write]
                if not todo:
                    continue
                arr = _writable(target, f"{layout.group_path(task, g)}/status")
                for s in todo:
                    arr[s.group_row] = new_status[s.network_id]
            index = f"{task}/index"
            message = target.values(f"{index}/message")
            if message is None or len(message) != len(slots):
                message = [""] * len(slots)
            message = layout.as_vlen_str(message)
            for i, nid in enumerate(slots):
                if nid in failed:
                    message[i] = f"verify: {failed[nid]}"
            _writable(target, f"{index}/message")[...] = message  # the message first:
            status = layout.as_vlen_str([new_status[nid] for nid in slots])
            _writable(target, f"{index}/status")[...] = status  # status marks the row

    dirs = _chunk_dirs(target, f"{task}/index/message") + _chunk_dirs(
        target, f"{task}/index/status"
    )
    for s in slots.values():
        if s.network_id in rows_to_write:
            dirs.append(target.path / layout.group_path(task, s.group) / "status" / "c")
    n = len(failed)
    what = (
        f"{task}: marked {n} network(s) failed (a resumed generate retrains them)"
        if n
        else f"{task}: rewrote lost status chunks"
    )
    return Action(what, dirs, apply)


# -- safety -------------------------------------------------------------------------------------
def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_writable(actions: list[Action], location: str | os.PathLike) -> None:
    """Try to create (and remove) a file in every folder the actions write in, first.

    Mode bits do not stop root, so the test is an actual write; a folder that refuses it
    (read-only file system, ``chattr +i``) refuses the whole repair before anything changes.
    """
    seen: set[Path] = set()
    for action in actions:
        for folder in action.dirs:
            folder = _existing_ancestor(folder)
            if folder in seen:
                continue
            seen.add(folder)
            reason = unwritable(folder)
            if reason is not None:
                raise ZooLocationError(
                    f"cannot repair {location}: {folder} cannot be written "
                    f"({reason}); nothing was changed"
                )


def _write_atomic(file: Path, data: bytes) -> None:
    tmp = file.with_name(f".{file.name}.{uuid.uuid4().hex}{PARTIAL_SUFFIX}")
    tmp.write_bytes(data)
    os.replace(tmp, file)


__all__ = ["Action", "plan_repair", "repair_zoo"]
