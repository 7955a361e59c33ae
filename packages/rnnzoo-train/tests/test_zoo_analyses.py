"""Analysis transactions: all analyses of a write, or none, whenever the writer is killed.

The writer is a real child process that SIGKILLs itself before its k-th file operation
(``RNNZOO_ANALYSIS_KILL_AT_STEP``; the steps are counted and labelled by a first traced
run). After each kill, what readers see is the old set or an error asking for a repair,
never a mix; after the repair (or the next write) what is stored is exactly the old set or
exactly the new one, and nothing is left to report.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from rnnzoo_train.tasks import get_task
from rnnzoo_train.zoo import ZooError, ZooLocationError, open_zoo
from rnnzoo_train.zoo.analyses import (
    FAULT_ENV,
    STAGING_DIR,
    TRACE_ENV,
    analysis_problems,
    repair_analyses,
)
from rnnzoo_train.zoo.store import WriterLock
from rnnzoo_train.zoo.testing import write_synthetic_zoo

TASK = "flipflop"


@pytest.fixture(scope="module")
def zoo_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("analyses") / "zoo.zarr"
    write_synthetic_zoo(path, [get_task("flipflop", n_steps=10, n_probe=2)], seeds=(0,))
    return path


def _analyses(ids: list[str], version: float) -> dict:
    """A set of three analyses (one a DataTree) whose every value depends on ``version``."""
    n = len(ids)
    summary = xr.Dataset(
        {
            "n_fixed": ("network", np.arange(n) + int(version)),
            "status": ("network", [f"v{version}"] * n),
            "missing": ("network", np.full(n, np.nan)),  # all fill value: still stored
        },
        coords={"network": ids},
        attrs={"version": version},
    )
    points = xr.Dataset(
        {"q": ("fixed_point", np.linspace(0, version, 2 * n))},
        coords={"network": ("fixed_point", [i for i in ids for _ in range(2)])},
    )
    graph = xr.DataTree.from_dict(
        {
            "/": xr.Dataset({"n_nodes": ("network", np.full(n, version))}, coords={"network": ids}),
            "weights": xr.Dataset({"w": (("node", "node2"), np.full((2, 2), version))}),
        }
    )
    return {"summary": summary, "points": points, "graph": graph}


def _state(path: Path, store: Path | None = None) -> dict:
    """Every stored analysis of the task as plain values (attributes of the writer aside)."""
    zoo = open_zoo(path, analysis_store=store)
    out = {}
    for name in zoo.analyses(TASK):
        data = zoo.analysis(TASK, name)
        nodes = {"/": data} if isinstance(data, xr.Dataset) else dict(data.to_dict())
        for rel, ds in nodes.items():
            ds = ds.load()
            for var in ds.variables:
                a = np.asarray(ds[var].values)
                values = a.tolist() if a.dtype == object else (a.dtype.str, a.tobytes())
                out[name, rel, var] = (ds[var].dims, a.shape, values)  # NaN == NaN here
            attrs = {k: v for k, v in ds.attrs.items() if not k.startswith("rnnzoo_")}
            out[name, rel, "attrs"] = attrs
    return out


_CHILD = """
import os, pickle
from rnnzoo_train.zoo import open_zoo
os.environ.update(ENV)
with open(DATA, "rb") as fh:
    analyses = pickle.load(fh)
open_zoo(PATH, analysis_store=STORE).write_analyses(TASK, analyses)
"""


@pytest.fixture(scope="module")
def writer():
    """``writer(zoo, data_file, env, store=None) -> exit code``: write analyses in a child.

    A forkserver that has imported the zoo modules (and done no I/O) forks every child, so
    a child costs milliseconds rather than an interpreter start.
    """
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["xarray", "zarr", "rnnzoo_train.zoo"])

    def run(path: Path, data: Path, env: dict[str, str], store: Path | None = None) -> int:
        scope = {"ENV": env, "DATA": str(data), "PATH": str(path), "TASK": TASK}
        scope["STORE"] = None if store is None else str(store)
        proc = ctx.Process(target=exec, args=(_CHILD, scope))
        proc.start()
        proc.join(120)
        return proc.exitcode

    return run


def _pick_steps(labels: list[str]) -> list[int]:
    """Every step of the commit, and the first write of each staged analysis and the last."""
    picked: set[int] = set()
    first: dict[str, int] = {}
    for k, label in enumerate(labels, start=1):
        if label.startswith("stage "):
            first.setdefault(label.split(" ")[1], k)
            last = k
        else:
            picked.add(k)
    return sorted(picked | set(first.values()) | {last})


def test_a_writer_killed_at_any_step_leaves_the_old_set_or_the_new_one(zoo_path, tmp_path, writer):
    # the target is an analysis store (a small folder to copy for every kill)
    base = tmp_path / "base.zarr"
    ids = list(open_zoo(zoo_path).index(TASK).index)
    open_zoo(zoo_path, analysis_store=base).write_analyses(TASK, _analyses(ids, 1.0))
    new = _analyses(ids + ["extra-network"], 2.0)  # other values and other shapes
    data = tmp_path / "new.pkl"
    data.write_bytes(pickle.dumps(new))
    old_state = _state(zoo_path, base)

    trace = tmp_path / "trace.txt"
    traced = tmp_path / "traced.zarr"
    shutil.copytree(base, traced)
    assert writer(zoo_path, data, {TRACE_ENV: str(trace)}, traced) == 0
    new_state = _state(zoo_path, traced)
    assert old_state != new_state
    labels = [line.split(" ", 1)[1] for line in trace.read_text().splitlines()]
    journal = labels.index(f"journal {TASK}") + 1
    kinds = {label.split(" ")[0] for label in labels}
    assert {"stage", "journal", "rename-old", "rename-new", "consolidate", "done"} <= kinds
    steps = _pick_steps(labels)
    assert len(steps) >= 14

    for k in steps:
        store = tmp_path / f"killed-{k}.zarr"
        shutil.copytree(base, store)
        code = writer(zoo_path, data, {FAULT_ENV: str(k)}, store)
        where = f"killed before step {k} ({labels[k - 1]})"
        assert code == -signal.SIGKILL, where
        committed = k > journal
        problems = analysis_problems(store, TASK)
        # readers: the old set, or (a commit in the middle of its swap) a one-line refusal
        try:
            seen = _state(zoo_path, store)
        except ZooError as err:
            seen = str(err)
        if isinstance(seen, str):
            assert committed, where
            assert "verify --repair" in seen, where
            assert "\n" not in seen, where
            assert any("interrupted analysis commit" in what for _, what in problems), where
            assert len(problems) == 1, where  # not also "an incomplete set": it is pending
        else:
            assert seen == (new_state if committed else old_state), where
        # the next writer's lock completes or removes the transaction; so does the repair
        lock = WriterLock(store)
        lock.acquire()
        try:
            actions = repair_analyses(store, TASK)
        finally:
            lock.release()
        assert bool(actions) == bool(problems), where
        assert _state(zoo_path, store) == (new_state if committed else old_state), where
        assert analysis_problems(store, TASK) == [], where
        assert not (store / STAGING_DIR).exists(), where
        shutil.rmtree(store)


def test_the_next_write_completes_an_interrupted_commit_first(zoo_path, tmp_path, writer):
    path = tmp_path / "zoo.zarr"
    shutil.copytree(zoo_path, path)
    ids = list(open_zoo(path).index(TASK).index)
    open_zoo(path).write_analyses(TASK, _analyses(ids, 1.0))
    data = tmp_path / "new.pkl"
    data.write_bytes(pickle.dumps(_analyses(ids, 2.0)))
    trace = tmp_path / "trace.txt"
    probe = tmp_path / "probe.zarr"
    shutil.copytree(path, probe)
    assert writer(probe, data, {TRACE_ENV: str(trace)}) == 0
    labels = [line.split(" ", 1)[1] for line in trace.read_text().splitlines()]
    k = labels.index(f"rename-new {TASK}/points") + 1  # summary and graph swapped, not points
    assert writer(path, data, {FAULT_ENV: str(k)}) == -signal.SIGKILL
    with pytest.raises(ZooError, match="interrupted"):
        open_zoo(path).analysis(TASK, "points")
    # another analysis written now: the interrupted commit is rolled forward first
    extra = xr.Dataset({"x": ("network", np.ones(len(ids)))}, coords={"network": ids})
    open_zoo(path).write_analysis(TASK, "other", extra)
    zoo = open_zoo(path)
    assert float(zoo.analysis(TASK, "points")["q"].max()) == 2.0
    assert zoo.analysis(TASK, "summary").attrs["version"] == 2.0
    assert zoo.analyses(TASK) == ["graph", "other", "points", "summary"]
    assert analysis_problems(path, TASK) == []


def test_every_chunk_is_written_and_the_commit_is_recorded(zoo_path, tmp_path):
    path = tmp_path / "zoo.zarr"
    shutil.copytree(zoo_path, path)
    zoo = open_zoo(path)
    ids = list(zoo.index(TASK).index)
    assert zoo.write_analyses(TASK, _analyses(ids, 1.0)) == ["graph", "points", "summary"]
    # an all-NaN variable (the fill value) still has its chunk on disk
    assert (path / TASK / "analysis/summary/missing/c/0").is_file()
    meta = json.loads((path / TASK / "analysis/summary/zarr.json").read_text())
    commit = meta["attributes"]["rnnzoo_commit"]
    assert commit["analyses"] == ["graph", "points", "summary"]
    assert commit["seq"] == 1
    zoo.write_analysis(TASK, "points", _analyses(ids, 3.0)["points"])
    meta = json.loads((path / TASK / "analysis/points/zarr.json").read_text())
    assert meta["attributes"]["rnnzoo_commit"]["seq"] == 2  # a later commit: consistent
    assert analysis_problems(path, TASK) == []
    # consolidated metadata lists the new arrays
    root = json.loads((path / "zarr.json").read_text())
    assert f"{TASK}/analysis/summary/missing" in root["consolidated_metadata"]["metadata"]


def test_a_member_of_a_set_deleted_is_reported_and_never_repaired_away(zoo_path, tmp_path):
    path = tmp_path / "zoo.zarr"
    shutil.copytree(zoo_path, path)
    zoo = open_zoo(path)
    ids = list(zoo.index(TASK).index)
    zoo.write_analyses(TASK, _analyses(ids, 1.0))
    shutil.rmtree(path / TASK / "analysis" / "graph")
    problems = analysis_problems(path, TASK)
    assert (f"{TASK}/analysis/points", problems[0][1]) in problems
    assert any("'graph'" in what and "missing" in what for _, what in problems)
    assert repair_analyses(path, TASK) == []
    assert (path / TASK / "analysis" / "points").is_dir()


def test_writing_under_another_writer_is_refused_naming_it(zoo_path, tmp_path):
    path = tmp_path / "zoo.zarr"
    shutil.copytree(zoo_path, path)
    ids = list(open_zoo(path).index(TASK).index)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from pathlib import Path; "
            "from rnnzoo_train.zoo.store import WriterLock; "
            f"lock = WriterLock(Path({str(path)!r})); lock.acquire(); print('held', flush=True); "
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ZooLocationError, match=f"pid {holder.pid}"):
            open_zoo(path).write_analyses(TASK, _analyses(ids, 1.0))
        zoo = open_zoo(path)
        with pytest.raises(ZooLocationError, match="being written by"), zoo.writing_analyses(TASK):
            pass
    finally:
        holder.kill()
        holder.wait()
    assert open_zoo(path).analyses(TASK) == []
    zoo = open_zoo(path)
    with zoo.writing_analyses(TASK):  # held for a run: writes inside use it (re-entrant)
        zoo.write_analyses(TASK, _analyses(ids, 1.0))
        zoo.write_analysis(TASK, "points", _analyses(ids, 2.0)["points"])
    assert open_zoo(path).analyses(TASK) == ["graph", "points", "summary"]


@pytest.mark.parametrize("kind", ["file", "user-folder", "zarr-not-a-store", "other-zoo"])
def test_a_target_that_is_not_an_analysis_store_is_refused(zoo_path, tmp_path, kind):
    import zarr

    store = tmp_path / "target"
    if kind == "file":
        store.write_text("mine\n")
    elif kind == "user-folder":
        store.mkdir()
        (store / "a.txt").write_text("mine\n")
    elif kind == "zarr-not-a-store":
        zarr.create_group(str(store), zarr_format=3, attributes={"owner": "someone"})
    else:
        shutil.copytree(zoo_path, store)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    zoo = open_zoo(zoo_path, analysis_store=store)
    ids = list(zoo.index(TASK).index)
    with pytest.raises(ZooLocationError) as err:
        zoo.write_analyses(TASK, _analyses(ids, 1.0))
    assert "\n" not in str(err.value)
    assert str(store) in str(err.value)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_a_new_analysis_store_is_created_and_a_refused_one_leaves_nothing(zoo_path, tmp_path):
    store = tmp_path / "new" / "analyses.zarr"
    zoo = open_zoo(zoo_path, analysis_store=store)
    ids = list(zoo.index(TASK).index)
    with zoo.writing_analyses(TASK):
        pass  # nothing written: the folders the lock needed are removed again
    assert not (tmp_path / "new").exists()
    zoo.write_analyses(TASK, _analyses(ids, 1.0))
    assert open_zoo(zoo_path, analysis_store=store).analyses(TASK) == ["graph", "points", "summary"]
    assert open_zoo(zoo_path).analyses(TASK) == []


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("chattr"), reason="needs chattr")
def test_a_read_only_target_is_refused_before_anything_is_written(zoo_path, tmp_path):
    path = tmp_path / "zoo.zarr"
    shutil.copytree(zoo_path, path)
    ids = list(open_zoo(path).index(TASK).index)
    for folder in (path, path / TASK):
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
            pytest.skip("chattr +i is not supported here")
        try:
            zoo = open_zoo(path)
            with (
                pytest.raises(ZooLocationError, match="cannot write analyses into"),
                zoo.writing_analyses(TASK),
            ):
                pass
            with pytest.raises(ZooLocationError, match="cannot write analyses into"):
                zoo.write_analyses(TASK, _analyses(ids, 1.0))
        finally:
            subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
        assert not (path / STAGING_DIR).exists()
        assert open_zoo(path).analyses(TASK) == []


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("chattr"), reason="needs chattr")
def test_a_swap_that_fails_half_way_puts_the_old_analyses_back(zoo_path, tmp_path):
    path = tmp_path / "zoo.zarr"
    shutil.copytree(zoo_path, path)
    ids = list(open_zoo(path).index(TASK).index)
    open_zoo(path).write_analyses(TASK, _analyses(ids, 1.0))
    old = _state(path)
    locked = path / TASK / "analysis" / "summary"  # swapped last: graph and points go first
    if subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode:
        pytest.skip("chattr +i is not supported here")
    try:
        with pytest.raises(ZooLocationError, match="nothing was changed"):
            open_zoo(path).write_analyses(TASK, _analyses(ids, 2.0))
    finally:
        subprocess.run(["chattr", "-i", str(locked)], capture_output=True)
    assert _state(path) == old
    assert analysis_problems(path, TASK) == []
    assert not (path / STAGING_DIR).exists()
