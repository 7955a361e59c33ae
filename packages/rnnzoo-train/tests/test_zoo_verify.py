"""``verify``: completeness, checksums, schema and consolidated metadata, per network."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from rnnzoo_train.tasks import get_task
from rnnzoo_train.zoo import ZarrZooWriter, ZooError, open_zoo
from rnnzoo_train.zoo.testing import small_plan, synthetic_result
from rnnzoo_train.zoo.verify import verify_zoo

TASK = "flipflop"


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    task = get_task(TASK, n_steps=10, n_probe=2)
    plan = small_plan(task)
    path = tmp_path_factory.mktemp("verify") / "zoo.zarr"
    with ZarrZooWriter(path) as w:
        w.prepare_task(plan, task)
        w.write_results(TASK, [synthetic_result(plan, task, i) for i in plan.network_ids()[:6]])
    return path, plan, task


@pytest.fixture
def zoo(clean, tmp_path):
    path = tmp_path / "zoo.zarr"
    shutil.copytree(clean[0], path)
    return path


def _chunk(path, var, row, group="gru-tanh-u8"):
    base = path / TASK / "networks" / group / var / "c" / str(row)
    return next(p for p in [base, *base.rglob("*")] if p.is_file())


def test_a_clean_zoo_verifies(clean):
    report = verify_zoo(clean[0])
    assert report.ok, report.format()
    assert report.status_counts[TASK] == {"ok": 6, "pending": 2}
    # every per-network chunk of the 6 written networks was read (and so checksummed)
    assert report.chunks_read >= 6 * 14
    assert "OK" in report.format()


def test_a_corrupted_chunk_is_reported_for_its_network(zoo, clean):
    plan = clean[1]
    chunk = _chunk(zoo, "final_W_h", 1)
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    report = verify_zoo(zoo)
    assert not report.ok
    bad = report.bad_networks()
    nid = plan.network_ids()[1]  # row 1 of gru-tanh-u8 is the second network of the plan
    assert list(bad) == [f"{TASK}/{nid}"]
    assert "final_W_h" in bad[f"{TASK}/{nid}"][0]
    assert "corrupt (crc32c mismatch)" in bad[f"{TASK}/{nid}"][0]


def test_a_missing_chunk_of_an_ok_network_is_reported(zoo, clean):
    _chunk(zoo, "hidden_untrained", 0).unlink()
    report = verify_zoo(zoo, checksums=False)
    nid = clean[1].network_ids()[0]
    assert report.bad_networks() == {
        f"{TASK}/{nid}": ["hidden_untrained: chunk c/0/0/0/0 missing (status is ok)"]
    }


def test_repair_marks_bad_networks_failed_so_a_resume_retrains_them(zoo, clean):
    _, plan, task = clean
    _chunk(zoo, "loss_curve", 0).unlink()
    report = verify_zoo(zoo, repair=True)
    nid = plan.network_ids()[0]
    assert any("marked 1 network" in r for r in report.repaired)
    index = open_zoo(zoo).index(TASK)
    assert index.loc[nid, "status"] == "failed"
    assert "loss_curve" in index.loc[nid, "message"]
    with ZarrZooWriter(zoo) as w:
        w.prepare_task(plan, task)
        assert nid not in w.completed(TASK)
        w.write_results(TASK, [synthetic_result(plan, task, nid)])
    assert verify_zoo(zoo).ok


def test_stale_or_missing_consolidated_metadata_is_reported_and_repaired(zoo):
    meta = json.loads((zoo / "zarr.json").read_text())
    cons = meta.pop("consolidated_metadata")
    (zoo / "zarr.json").write_text(json.dumps(meta))
    report = verify_zoo(zoo)
    assert any("no consolidated metadata" in p.what for p in report.problems)
    stale = dict(cons)
    stale["metadata"] = {k: v for k, v in cons["metadata"].items() if "vanilla" not in k}
    meta["consolidated_metadata"] = stale
    (zoo / "zarr.json").write_text(json.dumps(meta))
    report = verify_zoo(zoo)
    assert any("out of date" in p.what and "missing" in p.what for p in report.problems)
    report = verify_zoo(zoo, repair=True)
    assert report.ok, report.format()
    assert verify_zoo(zoo).ok


def test_leftover_partial_files_and_unfinished_templates(zoo):
    (zoo / TASK / "index" / "status" / "c.1234.partial").write_bytes(b"torn")
    report = verify_zoo(zoo)
    assert any("partial" in p.what for p in report.problems)
    assert verify_zoo(zoo, repair=True).ok
    (zoo / "sine").mkdir()
    (zoo / "sine" / "zarr.json").write_text(
        json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}})
    )
    report = verify_zoo(zoo)
    problems = {p.where: p.what for p in report.problems}
    assert set(problems) == {"/", "sine"}
    assert "interrupted generate" in problems["sine"]
    assert "out of date (missing: sine)" in problems["/"]


def test_index_and_group_status_disagreeing_is_reported(zoo, clean):
    import zarr

    group = zarr.open_group(zoo, mode="r+", path=f"{TASK}/networks/vanilla-relu-u6")
    group["status"][0] = "pending"  # as if killed between the group write and the index
    report = verify_zoo(zoo)
    nid = [i for i in clean[1].network_ids() if i.startswith("vanilla")][0]
    assert (
        "index status 'ok' but group status 'pending'" in report.bad_networks()[f"{TASK}/{nid}"][0]
    )


# -- verify --repair is safe (issue 10 section 3) ----------------------------------------------
def _snapshot(root):
    import hashlib

    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "d"
        for p in sorted(root.rglob("*"))
    }


@contextlib.contextmanager
def _immutable(path):
    """``path`` read-only even for root (``chattr +i``); skips where that is not possible."""
    if os.geteuid() != 0:
        path.chmod(0o555)
    elif subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        pytest.skip("chattr +i is not supported here")
    try:
        yield
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], capture_output=True)
        else:
            path.chmod(0o755)


def test_repair_is_refused_while_another_process_holds_the_writer_lock(zoo):
    (zoo / TASK / "index" / "status" / "c.1234.partial").write_bytes(b"torn")
    _chunk(zoo, "loss_curve", 0).unlink()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from rnnzoo_train.zoo.store import WriterLock; "
            f"lock = WriterLock(__import__('pathlib').Path({str(zoo)!r})); lock.acquire(); "
            "print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        before = _snapshot(zoo)
        with pytest.raises(ZooError, match=f"being written by pid {holder.pid}") as err:
            verify_zoo(zoo, repair=True)
        assert "\n" not in str(err.value)
        assert _snapshot(zoo) == before  # the partial file and the damage are untouched
    finally:
        holder.kill()
        holder.wait()
    assert not verify_zoo(zoo, repair=True).bad_networks()


def test_repair_refuses_a_store_that_is_not_a_zoo_and_touches_nothing(tmp_path):
    import zarr

    other = tmp_path / "theirs.zarr"
    zarr.create_group(str(other), zarr_format=3, attributes={"owner": "someone"})
    (other / "data.partial").write_bytes(b"theirs")
    before = _snapshot(other)
    with pytest.raises(ZooError, match="not an rnnzoo zoo"):
        verify_zoo(other, repair=True)
    assert _snapshot(other) == before


def test_repair_of_a_missing_path_creates_nothing(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        verify_zoo(tmp_path / "nosuch.zarr", repair=True)
    assert not (tmp_path / "nosuch.zarr").exists()
    assert list(tmp_path.iterdir()) == []


def test_repair_of_a_read_only_zoo_is_refused_before_anything_changes(zoo):
    _chunk(zoo, "final_W_h", 1).unlink()
    (zoo / TASK / "index" / "status" / "c.1234.partial").write_bytes(b"torn")
    before = _snapshot(zoo)
    with _immutable(zoo / TASK / "index" / "status" / "c"):  # deep inside: found first
        with pytest.raises(ZooError, match="cannot be written") as err:
            verify_zoo(zoo, repair=True)
        assert "nothing was changed" in str(err.value)
        assert _snapshot(zoo) == before
    with _immutable(zoo):  # the zoo folder itself: the lock cannot be taken
        with pytest.raises(ZooError, match="cannot take its writer lock"):
            verify_zoo(zoo, repair=True)
        assert _snapshot(zoo) == before
    assert verify_zoo(zoo, repair=True).ok


def test_repair_refuses_a_zip(zoo, tmp_path):
    from rnnzoo_train.zoo.publish import publish_zoo

    pub = publish_zoo(zoo, tmp_path / "site", allow_incomplete=True, version="1")
    zipped = pub.files[TASK]
    with pytest.raises(ZooError, match="a zip or a URL is read-only"):
        verify_zoo(zipped, repair=True)
    assert verify_zoo(zipped).ok


def test_repair_completes_an_analysis_commit_interrupted_by_a_kill(zoo, tmp_path):
    """A writer SIGKILLed in the middle of swapping analyses in: verify finds, repair completes."""
    import pickle
    import signal

    import numpy as np
    import xarray as xr

    from rnnzoo_train.zoo.analyses import FAULT_ENV, TRACE_ENV

    ids = list(open_zoo(zoo).index(TASK).index)
    data = {
        name: xr.Dataset({"v": ("network", np.arange(len(ids)) + k)}, coords={"network": ids})
        for k, name in enumerate(("fixed_points", "graph"))
    }
    pickled = tmp_path / "analyses.pkl"
    pickled.write_bytes(pickle.dumps(data))
    child = (
        "import os, pickle, sys; from rnnzoo_train.zoo import open_zoo; "
        f"open_zoo({str(zoo)!r}).write_analyses({TASK!r}, "
        f"pickle.loads(open({str(pickled)!r}, 'rb').read()))"
    )

    def write(env: dict[str, str]) -> int:
        return subprocess.run([sys.executable, "-c", child], env={**os.environ, **env}).returncode

    trial = tmp_path / "trial.zarr"
    shutil.copytree(zoo, trial)
    trace = tmp_path / "trace.txt"
    child_trial = child.replace(str(zoo), str(trial))
    assert (
        subprocess.run(
            [sys.executable, "-c", child_trial], env={**os.environ, TRACE_ENV: str(trace)}
        ).returncode
        == 0
    )
    labels = [line.split(" ", 1)[1] for line in trace.read_text().splitlines()]
    step = next(k for k, label in enumerate(labels, 1) if label.startswith("rename-new"))
    assert write({FAULT_ENV: str(step + 1)}) == -signal.SIGKILL  # one analysis swapped in
    report = verify_zoo(zoo)
    assert any("interrupted analysis commit" in p.what for p in report.problems), report.format()
    repaired = verify_zoo(zoo, repair=True)
    assert repaired.ok, repaired.format()
    assert any("analysis commits" in r for r in repaired.repaired)
    z = open_zoo(zoo)
    assert z.analyses(TASK) == ["fixed_points", "graph"]
    assert list(z.analysis(TASK, "graph")["v"].values) == list(np.arange(len(ids)) + 1)
