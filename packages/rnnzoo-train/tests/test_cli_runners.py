"""Where ``rnnzoo-train generate`` runs: ``--workers N`` (a Dask LocalCluster), ``--processes
N`` (a process pool), this process by default; conflicting options are one-line errors.

The CLI runs as the real console script; the runner line it prints is read from the live
cluster (the scheduler's address and its workers' thread counts), and every zoo is compared
array by array with a serial run.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from rnnzoo_train.cli import main
from rnnzoo_train.runners import (
    ProcessRunner,
    RunnerOptionError,
    SerialRunner,
    choose_runner,
    describe_runner,
)
from rnnzoo_train.zoo.testing import zoo_differences

ARGS = ["generate", "--preset", "tiny", "--task", "cdi", "--no-progress"]
LOCAL_CLUSTER = re.compile(
    r"^runner: Dask LocalCluster: 2 workers x 1 thread, scheduler tcp://127\.0\.0\.1:\d+, ",
    re.M,
)


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run(
        ["rnnzoo-train", *args], capture_output=True, text=True, timeout=300, env=env
    )


@pytest.fixture(scope="module")
def serial_zoo(tmp_path_factory):
    """The tiny cdi zoo generated in this process (the default, ``--workers 1``)."""
    out = tmp_path_factory.mktemp("serial") / "zoo.zarr"
    proc = run(*ARGS, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "runner: this process (serial, 1 thread)" in proc.stderr
    return out


@pytest.mark.network
def test_workers_2_runs_on_a_local_cluster_and_gives_the_serial_zoo(serial_zoo, tmp_path):
    out = tmp_path / "zoo.zarr"
    proc = run(*ARGS, "--out", str(out), "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    assert LOCAL_CLUSTER.search(proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr
    assert zoo_differences(out, serial_zoo) == []


def test_processes_2_runs_in_a_process_pool_and_gives_the_serial_zoo(serial_zoo, tmp_path):
    out = tmp_path / "zoo.zarr"
    proc = run(*ARGS, "--out", str(out), "--processes", "2")
    assert proc.returncode == 0, proc.stderr
    assert "runner: 2 worker processes x 1 thread (a process pool, no Dask)" in proc.stderr
    assert "Dask" not in proc.stderr.replace("no Dask", "")
    assert zoo_differences(out, serial_zoo) == []


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--workers", "2", "--processes", "2"], "--workers 2 (a Dask LocalCluster) and "
         "--processes 2 (a process pool) exclude each other; give only one"),
        (["--processes", "2", "--scheduler", "tcp://127.0.0.1:9"], "--processes 2 (a process "
         "pool) and --scheduler tcp://127.0.0.1:9 (an existing Dask cluster) exclude each other"),
        (["--workers", "3", "--scheduler", "tcp://127.0.0.1:9"], "--workers 3 (a Dask "
         "LocalCluster) and --scheduler tcp://127.0.0.1:9 (an existing Dask cluster) exclude"),
        (["--workers", "0"], "--workers must be >= 1, got 0"),
        (["--processes", "0"], "--processes must be >= 1, got 0"),
    ],
)  # fmt: skip
def test_conflicting_runner_options_are_one_line_errors(tmp_path, capsys, flags, message):
    out = tmp_path / "zoo.zarr"
    assert main([*ARGS, "--out", str(out), *flags]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("rnnzoo-train: error: ")
    assert message in lines[0]
    assert not out.exists()  # nothing written


def test_a_conflict_through_the_console_script_exits_2_without_a_traceback(tmp_path):
    proc = run(*ARGS, "--out", str(tmp_path / "zoo.zarr"), "--workers", "2", "--processes", "2")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().startswith("rnnzoo-train: error: --workers 2")
    assert "Traceback" not in proc.stderr


def test_the_dask_flag_is_gone(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main([*ARGS, "--out", str(tmp_path / "zoo.zarr"), "--dask"])
    assert info.value.code == 2
    assert "unrecognized arguments: --dask" in capsys.readouterr().err


def test_choose_runner_maps_the_options_to_runners():
    from rnnzoo_train.distributed import DaskRunner

    assert isinstance(choose_runner(), SerialRunner)
    assert isinstance(choose_runner(workers=1), SerialRunner)
    local = choose_runner(workers=4)
    assert isinstance(local, DaskRunner)
    assert (local.n_workers, local.address) == (4, None)
    assert isinstance(choose_runner(default_workers=2), DaskRunner)  # rnnzoo-paper's default
    assert isinstance(choose_runner(workers=1, default_workers=2), SerialRunner)
    pool = choose_runner(processes=3)
    assert isinstance(pool, ProcessRunner)
    assert pool.n_workers == 3
    # --workers 1 is the default: it does not conflict with --processes
    assert isinstance(choose_runner(workers=1, processes=3), ProcessRunner)
    # with --processes or --scheduler the default of --workers does not apply
    assert isinstance(choose_runner(processes=2, default_workers=2), ProcessRunner)
    remote = choose_runner(scheduler="tcp://head:8786", default_workers=2)
    assert isinstance(remote, DaskRunner)
    assert (remote.n_workers, remote.address) == (None, "tcp://head:8786")
    assert remote._client is None  # nothing started or connected yet
    with pytest.raises(RunnerOptionError, match="exclude each other"):
        choose_runner(workers=2, processes=2)
    with pytest.raises(ValueError, match="exclude each other"):  # a ValueError too
        choose_runner(processes=1, scheduler="tcp://head:8786")
    assert describe_runner(SerialRunner()) == "this process (serial, 1 thread)"
    assert describe_runner(ProcessRunner(1)).startswith("1 worker process x 1 thread")
    assert describe_runner(object()).startswith("<object object")  # no describe(): repr


def test_start_on_first_use_says_which_runner_once_and_only_when_work_arrives():
    from rnnzoo_train.runners import StartOnFirstUse

    said: list[str] = []
    runner = StartOnFirstUse(ProcessRunner(1), said.append)
    assert list(runner.map_unordered(abs, [])) == []
    assert said == []  # nothing to do: nothing started, nothing said
    assert dict(runner.map_unordered(abs, [-1, -2])) == {-1: 1, -2: 2}
    assert dict(runner.map_unordered(abs, [-3])) == {-3: 3}
    assert said == ["runner: 1 worker process x 1 thread (a process pool, no Dask)"]
    assert runner.n_workers == 1  # other attributes are the wrapped runner's
