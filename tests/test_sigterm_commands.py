"""SIGTERM and SIGKILL of ``rnnzoo-dynamics analyze`` and ``rnnzoo-paper demo``.

They run their work through ``rnnzoo_train.runners`` (whose workers end with their parent)
and wrap ``main`` in ``rnnzoo_train.signals.exit_on_sigterm``: a SIGTERM stops the command
with status 143, one line on stderr and no worker left; a SIGKILL leaves no worker either.
The console scripts run as real subprocesses; their workers are taken with psutil before
the signal. (``packages/rnnzoo-train/tests/test_signals.py`` does the same for ``rnnzoo-train
generate``, with the bitwise resume.)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from rnnzoo_train.cli import main as train_main
from rnnzoo_train.signals import MESSAGE

BIN = Path(sys.executable).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
GONE_WITHIN_S = 5.0

#: six small networks to analyse
ZOO = """
name = "sigterm-zoo"
base = "tiny"
[grid]
arch = ["vanilla", "gru"]
seeds = 3
tasks = ["flipflop"]
[training]
iterations = 100
[search]
trials = 0
"""

#: generation of minutes: any moment after the workers started is mid-unit
LONG = ZOO.replace("iterations = 100", "iterations = 20000\nunit_size = 1").replace(
    "seeds = 3", "seeds = 2"
)


def _script(name: str) -> str:
    return shutil.which(name, path=str(BIN)) or name


@pytest.fixture(scope="module")
def grids(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("grids")
    (folder / "zoo.toml").write_text(ZOO)
    (folder / "long.toml").write_text(LONG)
    return {"zoo": folder / "zoo.toml", "long": folder / "long.toml"}


@pytest.fixture(scope="module")
def zoo(grids, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("zoo") / "zoo.zarr"
    args = ["generate", "--config", str(grids["zoo"]), "--out", str(out), "--no-progress"]
    assert train_main(args) == 0
    return out


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def _still_running_after(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while _alive(procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = _alive(procs)
    for p in left:  # leave nothing behind on failure
        p.kill()
    return left


def _run_until_busy_then(cmd: list[str], sig: int, stderr: Path) -> tuple[int, list]:
    """Start ``cmd``; once it printed its runner line and then two of its workers computed
    1 s each, send ``sig`` to ``cmd`` alone (a LocalCluster's workers are busy starting
    before that line, a pool's start after it: either way the signal lands mid-unit).

    Returns its exit status and the processes below it, taken before the signal.
    """
    start: dict[int, float] = {}
    with stderr.open("w") as err:
        proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 240
    try:
        while True:
            assert proc.poll() is None, f"exited early ({proc.returncode}): {stderr.read_text()}"
            assert time.monotonic() < deadline, "workers never got busy: " + stderr.read_text()
            if "runner:" not in stderr.read_text():
                time.sleep(0.02)
                continue
            try:
                workers = psutil.Process(proc.pid).children(recursive=True)
                cpu = {w.pid: sum(w.cpu_times()[:2]) for w in workers}
            except psutil.NoSuchProcess:
                continue
            if sum(c - start.setdefault(pid, c) >= 1.0 for pid, c in cpu.items()) >= 2:
                break
            time.sleep(0.02)
        proc.send_signal(sig)
        return proc.wait(timeout=60), workers
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _check_terminated(status: int, workers: list, stderr: Path, prog: str) -> None:
    text = stderr.read_text()
    assert status == 128 + signal.SIGTERM, text
    assert text.strip().splitlines()[-1] == f"{prog}: {MESSAGE}", text
    assert "Traceback" not in text, text
    assert len(workers) >= 2
    assert _still_running_after(workers, GONE_WITHIN_S) == [], "workers outlived the command"


def _analyze(zoo: Path, *runner: str) -> list[str]:
    # many initial states: each network takes seconds, so the signal lands mid-analysis
    return [
        _script("rnnzoo-dynamics"),
        *("analyze", str(zoo), "--task", "flipflop", "--unit-size", "1", "--quiet"),
        *("--starts", "16000", *runner),
    ]


def test_sigterm_of_analyze_stops_its_pool_and_a_rerun_finishes(zoo, tmp_path):
    copy = tmp_path / "zoo.zarr"
    shutil.copytree(zoo, copy)
    status, workers = _run_until_busy_then(
        _analyze(copy, "--processes", "2"), signal.SIGTERM, tmp_path / "err"
    )
    _check_terminated(status, workers, tmp_path / "err", "rnnzoo-dynamics")

    from rnnzoo_dynamics.cli import main as dynamics_main

    # the rerun here, serially and with fewer starts per network (a different analysis:
    # --force), shows the zoo and its analysis store were left usable
    args = ["analyze", str(copy), "--task", "flipflop", "--quiet", "--starts", "64", "--force"]
    assert dynamics_main(args) == 0


def test_sigkill_of_analyze_ends_every_pool_worker(zoo, tmp_path):
    copy = tmp_path / "zoo.zarr"
    shutil.copytree(zoo, copy)
    status, workers = _run_until_busy_then(
        _analyze(copy, "--processes", "2"), signal.SIGKILL, tmp_path / "err"
    )
    assert status == -signal.SIGKILL
    assert len(workers) >= 2
    assert _still_running_after(workers, GONE_WITHIN_S) == []


@pytest.mark.network
def test_sigterm_of_analyze_on_a_local_cluster_stops_it(zoo, tmp_path):
    copy = tmp_path / "zoo.zarr"
    shutil.copytree(zoo, copy)
    status, workers = _run_until_busy_then(
        _analyze(copy, "--workers", "2"), signal.SIGTERM, tmp_path / "err"
    )
    _check_terminated(status, workers, tmp_path / "err", "rnnzoo-dynamics")


def test_sigterm_of_the_paper_demo_stops_its_pool(grids, tmp_path):
    pytest.importorskip("matplotlib")
    cmd = [
        _script("rnnzoo-paper"),
        *("demo", "--config", str(grids["long"]), "--out", str(tmp_path / "demo")),
        *("--no-progress", "--processes", "2"),
    ]
    status, workers = _run_until_busy_then(cmd, signal.SIGTERM, tmp_path / "err")
    _check_terminated(status, workers, tmp_path / "err", "rnnzoo-paper")
