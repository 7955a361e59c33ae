"""In-process library calls leave this process's signal handlers as they found them.

A user's program calls these functions in its own process, and pytest-xdist runs many test
files in one worker process: whatever a library installs for SIGINT or SIGTERM while it
works (rnnzoo-metrics' remembered Ctrl-C, the commands' clean SIGTERM stop) must be the
caller's again when it returns or raises, and a handler the caller chose must be left
alone. That includes ``SIG_IGN``: a process started as a background job of a
non-interactive shell (``nox -s tests &`` in a CI script) inherits SIGINT ignored, and so
do pytest-xdist's workers; Python keeps it ignored and so must rnnzoo. Pool workers ignore
Ctrl-C in their own processes only (their initialisers never run in the caller).

Each test compares the SIGINT and SIGTERM handlers and the main thread's blocked signals
before and after; nothing is mocked: real pools, real signals, the real command lines.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import rnnzoo_metrics as rm
from rnnzoo_metrics import stopping
from rnnzoo_metrics.cli import main as metrics_main
from rnnzoo_metrics.synthetic import low_rank_networks

pytestmark = pytest.mark.skipif(
    "fork" not in __import__("multiprocessing").get_all_start_methods(),
    reason="rnnzoo-metrics' pool needs fork",
)


def _signal_state() -> tuple:
    """SIGINT and SIGTERM handlers and this thread's blocked signals."""
    return (
        signal.getsignal(signal.SIGINT),
        signal.getsignal(signal.SIGTERM),
        frozenset(signal.pthread_sigmask(signal.SIG_BLOCK, [])),
    )


@pytest.fixture
def unchanged() -> Iterator[None]:
    """Assert that the test leaves the signal state as it found it (then restore it)."""
    before = _signal_state()
    yield
    after = _signal_state()
    signal.signal(signal.SIGINT, before[0])
    signal.signal(signal.SIGTERM, before[1])
    signal.pthread_sigmask(signal.SIG_SETMASK, before[2])
    assert after == before


@pytest.fixture
def python_ctrl_c() -> Iterator[None]:
    """Python's own SIGINT handler for the test, whatever this process started with (a
    pytest-xdist worker of a suite started as a background job inherits SIGINT ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture(params=["default", "ignored", "own"])
def callers_sigint(request) -> Iterator[object]:
    """The caller's SIGINT handler: Python's, ignored (a background job), or its own."""
    handlers = {
        "default": signal.default_int_handler,
        "ignored": signal.SIG_IGN,
        "own": lambda signum, frame: None,
    }
    previous = signal.signal(signal.SIGINT, handlers[request.param])
    try:
        yield handlers[request.param]
    finally:
        signal.signal(signal.SIGINT, previous)


def _nets() -> list[np.ndarray]:
    return low_rank_networks(n_networks=4, samples=40, widths=(4, 5), seed=0)


def _pool_left_by_ctrl_c() -> None:
    with stopping.worker_pool(1) as pool:
        fut = pool.submit(time.sleep, 5)
        os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, while the pool runs
        while not stopping.wait_any([fut]):
            pass


def _pool_left_by_an_error() -> None:
    with stopping.worker_pool(1) as pool:
        assert pool.submit(abs, -3).result() == 3
        raise ValueError("stop")


def test_a_metrics_pool_restores_sigint_when_left_normally(unchanged, python_ctrl_c):
    with stopping.worker_pool(1) as pool:
        assert pool.submit(abs, -3).result() == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_metrics_pool_restores_sigint_when_left_by_an_error(unchanged, python_ctrl_c):
    with pytest.raises(ValueError, match="stop"):
        _pool_left_by_an_error()


def test_a_metrics_pool_restores_sigint_when_left_by_ctrl_c(unchanged, python_ctrl_c):
    with pytest.raises(KeyboardInterrupt):
        _pool_left_by_ctrl_c()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_metrics_pool_keeps_the_callers_sigint_handler(unchanged, callers_sigint):
    with stopping.worker_pool(1) as pool:
        assert pool.submit(abs, -3).result() == 3
    assert signal.getsignal(signal.SIGINT) is callers_sigint


def test_pairwise_with_workers_in_process(unchanged, callers_sigint):
    d = rm.pairwise(_nets(), "cka", tile=2, n_jobs=2, progress=False)
    assert d.shape == (4, 4)
    assert signal.getsignal(signal.SIGINT) is callers_sigint


def test_the_metrics_command_in_process(unchanged, tmp_path: Path):
    folder = tmp_path / "nets"
    folder.mkdir()
    for i, x in enumerate(_nets()):
        np.save(folder / f"net{i}.npy", x)
    out = tmp_path / "d.nc"
    argv = ["pairwise", str(folder), "-m", "cka", "-o", str(out), "--jobs", "2", "--tile", "2"]
    assert metrics_main([*argv, "--no-progress"]) == 0
    assert out.exists()


@pytest.mark.parametrize("package", ["rnnzoo_metrics.stopping", "rnnzoo_train.signals"])
@pytest.mark.parametrize("ends", ["returns", "raises", "sigterm"])
def test_exit_on_sigterm_restores_the_callers_sigterm_handler(unchanged, package, ends, capsys):
    exit_on_sigterm = __import__(package, fromlist=["exit_on_sigterm"]).exit_on_sigterm

    def own(signum, frame):  # the caller's handler, to be found again afterwards
        raise AssertionError("the caller's SIGTERM handler ran during the command")

    previous = signal.signal(signal.SIGTERM, own)
    try:

        @exit_on_sigterm("rnnzoo-test")
        def command() -> int:
            if ends == "raises":
                raise RuntimeError("failed")
            if ends == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # interrupted by the command's handler
            return 0

        if ends == "raises":
            with pytest.raises(RuntimeError, match="failed"):
                command()
        else:
            assert command() == (143 if ends == "sigterm" else 0)
        assert signal.getsignal(signal.SIGTERM) is own
    finally:
        signal.signal(signal.SIGTERM, previous)
    capsys.readouterr()


@pytest.mark.parametrize("consume", ["all", "first-only"])
def test_a_process_runner_in_process(unchanged, consume):
    from rnnzoo_train.runners import ProcessRunner

    results = ProcessRunner(2).map_unordered(abs, [-1, -2, -3])
    if consume == "all":
        assert sorted(r for _, r in results) == [1, 2, 3]
    else:
        unit, r = next(results)
        assert r == -unit
        results.close()  # left early: the pool's workers are killed
