"""``DaskRunner`` on real LocalClusters: identical zoos, worker loss, retries, scheduler mode."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace

import pytest

from rnnzoo_train.cli import main
from rnnzoo_train.distributed import DaskRunner, SchedulerUnreachable
from rnnzoo_train.generate import generate
from rnnzoo_train.presets import TINY
from rnnzoo_train.runners import UnitFailed
from rnnzoo_train.zoo import ZarrZooWriter, open_zoo
from rnnzoo_train.zoo.testing import always_fail, fail_once, zoo_differences
from rnnzoo_train.zoo.verify import verify_zoo

pytestmark = [pytest.mark.network, pytest.mark.slow]

#: longer units than TINY's (so a worker can be killed while it trains one), one per network
SLOW = replace(
    TINY,
    name="slow-tiny",
    tasks=("flipflop",),
    archs=("vanilla", "gru"),
    seeds=(0, 1, 2),
    iterations=300,
    n_trials=0,
    search_iterations=0,
    unit_size=1,
)


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """Reference zoos from the serial runner, by preset name."""
    base = tmp_path_factory.mktemp("serial")
    paths = {}
    for preset, tasks in ((TINY, ["flipflop", "cdi"]), (SLOW, ["flipflop"])):
        paths[preset.name] = base / f"{preset.name}.zarr"
        report = generate(preset, tasks, ZarrZooWriter(paths[preset.name]), progress=False)
        assert report.ok
    return paths


def test_a_local_cluster_gives_the_serial_zoo(serial, tmp_path):
    path = tmp_path / "dask.zarr"
    with DaskRunner(n_workers=2) as runner:
        info = runner.client.scheduler_info()
        assert len(info["workers"]) == 2
        assert {w["nthreads"] for w in info["workers"].values()} == {1}
        threads = runner.client.run(lambda: __import__("torch").get_num_threads())
        assert set(threads.values()) == {1}
        report = generate(TINY, ["flipflop", "cdi"], ZarrZooWriter(path), runner=runner,
                          progress=False)  # fmt: skip
    assert report.ok
    assert report.trained == 8
    assert zoo_differences(path, serial["tiny"]) == []
    assert verify_zoo(path).ok


class KillAWorkerMidRun:
    """Wraps a DaskRunner; after the first result, SIGKILLs a worker that is training."""

    def __init__(self, runner: DaskRunner):
        self.runner = runner
        self.killed: list[str] = []

    def map_unordered(self, fn, units):
        stream = self.runner.map_unordered(fn, units)
        first = next(stream)
        client = self.runner.client
        busy = {w: keys for w, keys in client.processing().items() if keys}
        victim = sorted(busy)[0]
        pid = client.run(os.getpid, workers=[victim])[victim]
        os.kill(pid, signal.SIGKILL)
        self.killed = list(busy[victim])
        yield first
        yield from stream


def test_killing_a_worker_mid_run_loses_nothing(serial, tmp_path):
    path = tmp_path / "killed.zarr"
    with DaskRunner(n_workers=2) as runner:
        killer = KillAWorkerMidRun(runner)
        report = generate(SLOW, ["flipflop"], ZarrZooWriter(path), runner=killer, progress=False)
    assert killer.killed  # a unit was in training on the killed worker
    assert report.ok, report.failed_units
    assert report.trained == 6
    index = open_zoo(path).index("flipflop")
    assert set(index["status"]) == {"ok"}
    assert zoo_differences(path, serial["slow-tiny"]) == []


def test_an_existing_scheduler_retries_reports_failures_and_gives_the_serial_zoo(serial, tmp_path):
    from distributed import LocalCluster

    path = tmp_path / "scheduler.zarr"
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        DaskRunner(address=cluster.scheduler_address, retries=1) as runner,
    ):
        marker = str(tmp_path)
        assert list(runner.map_unordered(fail_once, [marker])) == [(marker, "ok")]  # retried
        out = dict(runner.map_unordered(always_fail, [1, 2]))
        assert set(out) == {1, 2}
        assert all(isinstance(v, UnitFailed) for v in out.values())
        assert "unit 2 is broken" in str(out[2])
        report = generate(TINY, ["cdi"], ZarrZooWriter(path), runner=runner, progress=False)
        # the same through the command line: rnnzoo-train generate --scheduler ADDRESS
        cli_path = tmp_path / "cli.zarr"
        args = ["generate", "--preset", "tiny", "--task", "cdi", "--out", str(cli_path)]
        assert main([*args, "--scheduler", cluster.scheduler_address, "--no-progress"]) == 0
        deadline = time.monotonic() + 20  # the CLI's client disconnects when it is done
        while len(cluster.scheduler.clients) > 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(cluster.scheduler.clients) == 2  # fire-and-forget + this runner's client
    assert report.ok
    assert zoo_differences(path, serial["tiny"], tasks=["cdi"]) == []
    assert zoo_differences(cli_path, serial["tiny"], tasks=["cdi"]) == []


def test_an_unreachable_scheduler_is_a_one_line_error():
    runner = DaskRunner(address="tcp://127.0.0.1:9", connect_timeout="2s")
    with pytest.raises(SchedulerUnreachable, match=r"cannot connect to the Dask scheduler"):
        runner.client  # noqa: B018
    with pytest.raises(ValueError, match="n_workers .* or address"):
        DaskRunner(n_workers=2, address="tcp://x:1")
