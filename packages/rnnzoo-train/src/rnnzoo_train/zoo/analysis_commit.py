"""Atomic analysis transactions: every analysis of one write is stored, or none is.

Used by :class:`rnnzoo_train.zoo.analyses.AnalysisStore` (``Zoo.write_analyses``), and by
``rnnzoo-train verify`` (:func:`analysis_problems`, :func:`repair_analyses`).

1. *Stage*: under the writer's lock (:class:`~rnnzoo_train.zoo.store.WriterLock`), every new
   analysis is written completely (every chunk, ``write_empty_chunks=True``) into
   ``<target>/.rnnzoo-staging/<task>/<tx>/new/<name>`` — inside the same directory tree, so
   that moving it into place is a rename, and outside the Zarr hierarchy (the staging
   folder has no ``zarr.json``), so no reader sees it.
2. *Commit*: ``<tx>/journal.json`` is written (to a temporary file, then ``os.replace``:
   it appears whole or not at all). Its existence is the commit point.
3. *Swap*: for each analysis, the live group (if any) is renamed to ``<tx>/old/<name>`` and
   the staged one to ``<task>/analysis/<name>``; each step is idempotent.
4. The store's consolidated metadata is rewritten (zarr's ``LocalStore`` writes every file,
   ``zarr.json`` included, to a temporary file and renames it: atomic), the transaction
   folder is renamed ``<tx>.done`` and removed.

A writer killed before step 2 leaves staged data only: the next writer (or
:func:`repair_analyses`) removes it (*roll back*; the old set is intact). Killed after step
2, the transaction is *rolled forward* by the next writer: steps 3-4 are redone from where
they stopped. Readers of a task with a committed but unfinished transaction raise
:class:`~rnnzoo_train.zoo.errors.ZooError` asking for ``rnnzoo-train verify --repair``
instead of returning a mix of old and new analyses (:func:`wait_for_commit`).

Every analysis root group carries ``rnnzoo_commit = {"id", "seq", "analyses"}``: the
transaction that wrote it, its sequence number within the task, and every analysis it
wrote. :func:`analysis_problems` uses it to detect a set whose members are missing or older
than their commit (damage no atomic writer leaves, e.g. a deleted group).

The guarantee is against the death of the writing process (SIGKILL, OOM, a scheduler's
walltime); staged chunks are not fsynced, so it does not extend to a power loss.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import signal
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import xarray as xr
import zarr
import zarr.storage

from . import layout
from .errors import ZooError, ZooLocationError
from .store import LOCK_NAME, consolidate, quiet_zarr
from .targets import unwritable

#: folder (inside an analysis target, outside the Zarr hierarchy) holding transactions
STAGING_DIR = ".rnnzoo-staging"
JOURNAL = "journal.json"
#: attribute of every analysis root group: the transaction that wrote it
COMMIT_ATTR = "rnnzoo_commit"
#: root attribute of a separate analysis store (the zoo whose analyses it holds)
STORE_ATTR = "rnnzoo_analyses_of"
#: tests only: SIGKILL the writing process before its n-th file operation of a write
FAULT_ENV = "RNNZOO_ANALYSIS_KILL_AT_STEP"
#: tests only: append one line per file operation of a write ("<n> <label>") to this file
TRACE_ENV = "RNNZOO_ANALYSIS_TRACE"
#: how long a reader waits for a live writer's commit to finish before it raises
READER_WAIT_SECONDS = 10.0


# -- for the verifier ---------------------------------------------------------------------------
def analysis_problems(path: Path, task: str) -> list[tuple[str, str]]:
    """Analysis-level problems of ``task`` in the analysis target ``path`` (read only).

    Callable while the caller holds the zoo's :class:`~rnnzoo_train.zoo.store.WriterLock`
    (it takes no lock and writes nothing). Reports:

    - a committed but unfinished analysis transaction (a writer killed while it swapped
      analyses in): readers refuse the task until :func:`repair_analyses` rolls it forward;
    - an uncommitted one (staged data of a killed writer, never visible to readers) and the
      leftovers of a finished one: :func:`repair_analyses` removes them;
    - an analysis whose ``zarr.json`` cannot be read;
    - an analysis written in one transaction with others (``rnnzoo_commit``) of which one is
      missing or older than that transaction (an incomplete set, e.g. a deleted group; no
      repair can restore it: rerun the command that wrote it, which for
      ``rnnzoo-dynamics analyze`` recomputes exactly the networks it lacks).

    Parameters
    ----------
    path : Path
        The zoo directory, or a separate analysis store. A path that is not a directory
        (a zip) has nothing to report.
    task : str

    Returns
    -------
    list of (str, str)
        ``(where, what)``: ``where`` relative to ``path``, ``what`` one line saying what is
        wrong and what to do.
    """
    path = Path(path)
    if not path.is_dir():
        return []
    problems: list[tuple[str, str]] = []
    for tx in _transactions(path, task):
        where = str(tx.relative_to(path))
        if tx.name.endswith(".done"):
            problems.append(
                (where, "leftovers of a finished analysis commit; `verify --repair` removes them")
            )
            continue
        journal = _read_journal(tx)
        if journal is None:
            problems.append(
                (
                    where,
                    "an uncommitted analysis write (a writer was killed while staging; readers "
                    "see the previous analyses); `verify --repair` removes it",
                )
            )
        else:
            names = ", ".join(journal.get("analyses", []))
            problems.append(
                (
                    where,
                    f"an interrupted analysis commit of {names} (readers refuse the task until "
                    "it is completed); `verify --repair` completes it",
                )
            )
    # analyses of an unfinished commit are incomplete because of it: reported above only
    pending = {n for journal in _pending(path, task) for n in journal["analyses"]}
    problems += _commit_set_problems(path, task, skip=pending)
    return problems


def repair_analyses(path: Path, task: str) -> list[str]:
    """Complete or undo interrupted analysis transactions of ``task`` in ``path``.

    Does not take the writer lock: the caller must hold it (``rnnzoo-train verify --repair``
    does; :meth:`AnalysisStore.write_analyses` does this itself). A committed transaction
    (its journal exists) is rolled forward: the staged analyses are swapped in and the
    consolidated metadata is rewritten; an uncommitted one (no journal) is rolled back: its
    staged data is removed and the live analyses are left as they are; leftovers of a
    finished one are removed. Analyses themselves are never removed, and an incomplete set
    reported by :func:`analysis_problems` is left alone (it cannot be restored here).

    Parameters
    ----------
    path : Path
        The zoo directory or a separate analysis store (not a zip).
    task : str

    Returns
    -------
    list of str
        One line per action taken (empty when there was nothing to do).
    """
    path = Path(path)
    if not path.is_dir():
        return []
    done, forward = [], False
    for tx in _transactions(path, task):
        where = tx.relative_to(path)
        if tx.name.endswith(".done"):
            shutil.rmtree(tx, ignore_errors=True)
            done.append(f"removed {where} (leftovers of a finished analysis commit)")
        elif _read_journal(tx) is None:
            shutil.rmtree(tx, ignore_errors=True)
            done.append(f"rolled back {where} (an uncommitted analysis write; nothing was live)")
        else:
            names = _roll_forward(path, tx, consolidate_after=False)
            forward = True
            done.append(f"rolled forward {where} (committed analyses {', '.join(names)})")
    if forward:
        consolidate(path)
        for tx in _transactions(path, task):
            _finish(tx)
    _tidy_staging(path)
    return done


# -- the transaction ---------------------------------------------------------------------------
def transaction(target: Path, task: str, analyses: dict, location: str) -> None:
    """Stage, commit and swap in ``analyses`` (the caller holds the lock)."""
    _ensure_groups(target, task, location)
    seq = _next_seq(target, task)
    tx_id = f"{seq:08d}-{uuid.uuid4().hex[:12]}"
    tx = target / STAGING_DIR / task / tx_id
    names = sorted(analyses)
    commit = {"id": tx_id, "seq": seq, "analyses": names}
    try:
        for name in names:
            _stage(tx / "new" / name, analyses[name], commit, f"{task}/{name}")
        for folder in task_folders(target, task):
            check_writable(folder)
        journal = {
            "version": 1,
            "task": task,
            "analyses": names,
            "id": tx_id,
            "seq": seq,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        _step(f"journal {task}")
        _write_json_atomic(tx / JOURNAL, journal)
    except BaseException:
        shutil.rmtree(tx, ignore_errors=True)  # roll back: nothing live was touched
        _tidy_staging(target)
        raise
    try:
        _roll_forward(target, tx, consolidate_after=True)
    except OSError as err:  # e.g. a read-only analysis folder: put the old analyses back
        undone = _undo(target, tx)
        _tidy_staging(target)
        why = f"{err.strerror or err} ({err.filename or target})"
        if undone:
            raise ZooLocationError(
                f"cannot write analyses into {target}: {why}; nothing was changed"
            ) from err
        raise ZooError(
            f"{target}: an analysis commit of task {task!r} failed half-way: {why}; fix "
            f"that, then run `rnnzoo-train verify --repair {target}`"
        ) from err
    _finish(tx)
    _tidy_staging(target)


def _roll_forward(target: Path, tx: Path, *, consolidate_after: bool) -> list[str]:
    """Swap the staged analyses of a committed transaction in (idempotent)."""
    journal = _read_journal(tx)
    assert journal is not None
    task = journal["task"]
    live_parent = target / task / "analysis"
    names = list(journal["analyses"])
    for name in names:
        new, live, old = tx / "new" / name, live_parent / name, tx / "old" / name
        if not new.exists():
            continue  # swapped in already
        if live.exists():
            old.parent.mkdir(parents=True, exist_ok=True)
            _step(f"rename-old {task}/{name}")
            os.rename(live, old)
        _step(f"rename-new {task}/{name}")
        os.rename(new, live)
    if consolidate_after:
        _step("consolidate")
        consolidate(_StepStore(target, "consolidate write") if _faults_armed() else target)
    return names


def _undo(target: Path, tx: Path) -> bool:
    """Put the old analyses back after a failed swap; True if the transaction is undone."""
    journal = _read_journal(tx)
    if journal is None:
        return True
    live_parent = target / journal["task"] / "analysis"
    try:
        for name in reversed(journal["analyses"]):
            new, live, old = tx / "new" / name, live_parent / name, tx / "old" / name
            if not new.exists() and live.exists():
                os.rename(live, new)
            if old.exists() and not live.exists():
                os.rename(old, live)
        (tx / JOURNAL).unlink()
        consolidate(target)
    except OSError:
        return False
    shutil.rmtree(tx, ignore_errors=True)
    return True


def _finish(tx: Path) -> None:
    """Retire a completed transaction: ``<tx>.done`` (one rename), then remove it."""
    if tx.name.endswith(".done") or not tx.exists():
        return
    done = tx.with_name(tx.name + ".done")
    _step("done")
    os.rename(tx, done)
    _step("cleanup")
    shutil.rmtree(done, ignore_errors=True)


def recover(target: Path) -> bool:
    """Repair every task's interrupted transactions in ``target``; True if any was."""
    root = target / STAGING_DIR
    if not root.is_dir():
        return False
    acted = False
    for task_dir in sorted(root.iterdir()):
        if task_dir.is_dir():
            acted |= bool(repair_analyses(target, task_dir.name))
    return acted


def _stage(path: Path, data: xr.Dataset | xr.DataTree, commit: dict, label: str) -> None:
    """Write one analysis completely as the root group of a new store at ``path``."""
    path.mkdir(parents=True, exist_ok=False)
    store = _StepStore(path, f"stage {label}") if _faults_armed() else zarr.storage.LocalStore(path)
    nodes = (
        {"": data}
        if isinstance(data, xr.Dataset)
        else {
            str(n.relative_to(data)) if n is not data else "": n.to_dataset() for n in data.subtree
        }
    )
    with quiet_zarr():
        for rel, ds in nodes.items():
            ds = _for_storage(ds)
            if not rel:
                ds.attrs[COMMIT_ATTR] = commit
            ds.to_zarr(
                store,
                group=rel or None,
                mode="w",
                consolidated=False,
                zarr_format=3,
                encoding=layout.whole_encoding(ds) | _chunk_auto(ds),
                write_empty_chunks=True,
            )


def _ensure_groups(target: Path, task: str, location: str) -> None:
    """The root, ``<task>`` and ``<task>/analysis`` groups of the target (created if absent)."""
    store = zarr.storage.LocalStore(target)
    with quiet_zarr():
        if not (target / "zarr.json").is_file():
            zarr.create_group(
                store,
                zarr_format=3,
                attributes={
                    "rnnzoo_schema_version": layout.SCHEMA_VERSION,
                    STORE_ATTR: location,
                    "tasks": [],
                },
            )
        if not (target / task / "analysis" / "zarr.json").is_file():
            zarr.open_group(store, path=f"{task}/analysis", mode="a", zarr_format=3)


def _next_seq(target: Path, task: str) -> int:
    seqs = [c["seq"] for c in _live_commits(target, task).values() if c]
    for tx in _transactions(target, task):
        with contextlib.suppress(ValueError, IndexError):
            seqs.append(int(tx.name.split("-")[0]))
    return max(seqs, default=0) + 1


# -- reading the target's state ---------------------------------------------------------------
def _transactions(target: Path, task: str) -> list[Path]:
    folder = target / STAGING_DIR / task
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir())


def _read_journal(tx: Path) -> dict | None:
    try:
        journal = json.loads((tx / JOURNAL).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(journal, dict) or not isinstance(journal.get("analyses"), list):
        return None
    return journal


def _pending(target: Path, task: str) -> list[dict]:
    """Journals of committed, unfinished transactions of ``task``."""
    out = []
    for tx in _transactions(target, task):
        if not tx.name.endswith(".done"):
            journal = _read_journal(tx)
            if journal is not None:
                out.append(journal)
    return out


def wait_for_commit(target: Path, task: str) -> None:
    """Raise if ``task`` has an unfinished commit (after waiting for a live writer)."""
    pending = _pending(target, task)
    deadline = time.monotonic() + READER_WAIT_SECONDS
    while pending and any(_alive(j) for j in pending) and time.monotonic() < deadline:
        time.sleep(0.05)
        pending = _pending(target, task)
    if pending:
        names = ", ".join(n for j in pending for n in j["analyses"])
        raise ZooError(
            f"{target}: an analysis commit of task {task!r} ({names}) was interrupted; "
            f"run `rnnzoo-train verify --repair {target}` (or rerun the command that wrote it)"
        )


def _alive(journal: dict) -> bool:
    """Whether the writer of a journal still runs (on this host)."""
    if journal.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(journal.get("pid", -1)), 0)
    except (OSError, ValueError):
        return False
    return True


def _group_attrs(folder: Path) -> dict | None:
    """Attributes of the group at ``folder`` (None if its ``zarr.json`` is unreadable)."""
    try:
        meta = json.loads((folder / "zarr.json").read_text())
    except (OSError, ValueError):
        return None
    return meta.get("attributes", {}) if isinstance(meta, dict) else None


def _live_commits(target: Path, task: str) -> dict[str, dict | None]:
    """Each live analysis of ``task`` -> its commit record ({} without one; None: unreadable)."""
    parent = target / task / "analysis"
    if not parent.is_dir():
        return {}
    out: dict[str, dict | None] = {}
    for folder in sorted(p for p in parent.iterdir() if p.is_dir()):
        attrs = _group_attrs(folder)
        if attrs is None:
            out[folder.name] = None
            continue
        commit = attrs.get(COMMIT_ATTR)
        ok = isinstance(commit, dict) and isinstance(commit.get("seq"), int)
        out[folder.name] = commit if ok else {}
    return out


def _commit_set_problems(
    target: Path, task: str, skip: set[str] = frozenset()
) -> list[tuple[str, str]]:
    commits = _live_commits(target, task)
    problems = []
    for name, commit in commits.items():
        where = f"{task}/analysis/{name}"
        if commit is None:
            problems.append((where, "its zarr.json cannot be read; rerun the analysis"))
            continue
        if not commit or name in skip or set(commit.get("analyses", [])) & skip:
            continue
        for other in commit.get("analyses", []):
            if other == name:
                continue
            theirs = commits.get(other, "missing")
            if theirs == "missing":
                problems.append(
                    (
                        where,
                        f"written together with {other!r} (commit {commit['seq']}), which is "
                        "missing: an incomplete set; rerun the command that wrote it",
                    )
                )
            elif theirs and theirs["seq"] < commit["seq"]:
                problems.append(
                    (
                        f"{task}/analysis/{other}",
                        f"older (commit {theirs['seq']}) than {name!r} (commit "
                        f"{commit['seq']}) it was written with: an incomplete set; rerun the "
                        "command that wrote it",
                    )
                )
    return list(dict.fromkeys(problems))


# -- checks on the target -----------------------------------------------------------------------
def check_target(target: Path, zoo_dir: Path | None) -> None:
    """Refuse a target that cannot take analyses (one line); ``zoo_dir``: the local zoo."""
    if target.exists() and not target.is_dir():
        raise ZooLocationError(
            f"{target} is a file, not a directory; give a directory for the analysis store"
        )
    if not target.is_dir() or (zoo_dir is not None and _same(target, zoo_dir)):
        return
    meta = target / "zarr.json"
    if meta.is_file():
        attrs = _group_attrs(target)
        if attrs is None:
            raise ZooLocationError(
                f"{target}/zarr.json cannot be read; it is not an analysis store this can "
                "write to (give a new path)"
            )
        if STORE_ATTR not in attrs:
            what = "another zoo" if "rnnzoo_schema_version" in attrs else "a Zarr store"
            raise ZooLocationError(
                f"{target} is {what}, not an rnnzoo analysis store; give a new path or an "
                "existing analysis store"
            )
        return
    others = [p.name for p in target.iterdir() if p.name not in (LOCK_NAME, STAGING_DIR)]
    if others:
        raise ZooLocationError(
            f"{target} is a folder of other files ({', '.join(sorted(others)[:3])}), not an "
            "analysis store; give a new path or an existing analysis store"
        )


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def task_folders(target: Path, task: str | None) -> list[Path]:
    if task is None:
        return []
    return [p for p in (target / task, target / task / "analysis") if p.is_dir()]


def check_writable(folder: Path) -> None:
    """Try to create (and remove) a file in ``folder``: mode bits do not stop root."""
    reason = unwritable(folder)
    if reason is not None:
        raise ZooLocationError(
            f"cannot write analyses into {folder}: {reason}; make it writable or "
            "store analyses elsewhere (--analysis-store PATH)"
        )


def missing_ancestors(target: Path) -> list[Path]:
    """``target`` and its ancestors that do not exist yet, deepest first."""
    out = []
    p = target.absolute()
    while not p.exists() and p != p.parent:
        out.append(p)
        p = p.parent
    return out


def remove_created(created: list[Path]) -> None:
    """Remove folders this writer created if they are (still) empty."""
    for p in created:
        with contextlib.suppress(OSError):
            p.rmdir()


def _tidy_staging(target: Path) -> None:
    """Remove empty staging folders (the staging root included)."""
    root = target / STAGING_DIR
    if not root.is_dir():
        return
    for task_dir in root.iterdir():
        with contextlib.suppress(OSError):
            task_dir.rmdir()
    with contextlib.suppress(OSError):
        root.rmdir()


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # the rename itself, durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- fault injection (tests) -------------------------------------------------------------------
_step_count = 0


def _faults_armed() -> bool:
    return bool(os.environ.get(FAULT_ENV) or os.environ.get(TRACE_ENV))


def _step(label: str) -> None:
    """Count one file operation of a write; tests kill the process at a chosen one."""
    global _step_count
    if not _faults_armed():
        return
    _step_count += 1
    trace = os.environ.get(TRACE_ENV)
    if trace:
        with open(trace, "a") as fh:
            fh.write(f"{_step_count} {label}\n")
    if os.environ.get(FAULT_ENV) == str(_step_count):
        os.kill(os.getpid(), signal.SIGKILL)


class _StepStore(zarr.storage.LocalStore):
    """A LocalStore that counts every file it writes as a step (fault injection only)."""

    def __init__(self, root: Path, label: str):
        super().__init__(root)
        self._label = label

    async def set(self, key: str, value: Any) -> None:
        _step(f"{self._label} {key}")
        await super().set(key, value)

    async def set_if_not_exists(self, key: str, value: Any) -> None:
        _step(f"{self._label} {key}")
        await super().set_if_not_exists(key, value)


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
