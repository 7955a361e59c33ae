"""``rnnzoo-dynamics analyze / summary / plot``: every malformed input refused in one line.

Rows run through the shared harness (``conftest.py``): exit status != 0, one line on stderr
naming the problem, no traceback, the sandbox unchanged. Everything here is refused before
any network is analysed.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

D = "rnnzoo-dynamics"
ZOO = "zoo.zarr"


def _zip_of_zoo(sandbox: Path) -> None:
    """``zoo.zip``: the sandbox zoo as an uncompressed zip (a read-only zoo)."""
    root = sandbox / ZOO
    with zipfile.ZipFile(sandbox / "zoo.zip", "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(root).as_posix())


def _analysed(sandbox: Path) -> None:
    """Analyse one flip-flop network of the sandbox zoo (8 starts) before the row runs."""
    from rnnzoo_dynamics.analyze import analyze_zoo
    from rnnzoo_dynamics.population import AnalysisOptions
    from rnnzoo_train.zoo import open_zoo

    first = open_zoo(sandbox / ZOO).index("flipflop").index[:1]
    analyze_zoo(
        sandbox / ZOO,
        "flipflop",
        options=AnalysisOptions(n_starts=8),
        network_ids=list(first),
        progress=False,
    )


def _read_only_folder(sandbox: Path) -> None:
    (sandbox / "ro").mkdir()


def row(argv, expect=(), id=None, **options):
    return pytest.param([D, *argv], tuple(expect), options, id=id)


ANALYZE = [
    # what ZOO is
    row(["analyze", "missing.zarr"], ["no zoo at missing.zarr"], "analyze-missing"),
    row(["analyze", "text.txt"], ["text.txt"], "analyze-a-file"),
    row(["analyze", "notes"], ["notes"], "analyze-user-folder"),
    row(["analyze", "notes.zarr"], ["notes.zarr"], "analyze-user-folder-named-zarr"),
    row(["analyze", "notzoo.zarr"], ["not an rnnzoo zoo"], "analyze-zarr-not-a-zoo"),
    row(["analyze", "truncated.zarr"], ["truncated.zarr"], "analyze-truncated-root"),
    row(["analyze", "fake.zip"], ["fake.zip"], "analyze-zip-not-a-zip"),
    row(
        ["analyze", "zoo.zip"],
        ["read-only", "--analysis-store"],
        "analyze-zip-read-only",
        setup=_zip_of_zoo,
    ),
    row(["analyze", ZOO, "missing.zarr"], ["no zoo at missing.zarr"], "analyze-second-missing"),
    # what it should do
    row(["analyze", ZOO, "--task", "nosuch"], ["no task 'nosuch'"], "analyze-unknown-task"),
    row(
        ["analyze", ZOO, "--network", "nobody"], ["no network(s) nobody"], "analyze-unknown-network"
    ),
    row(
        ["analyze", ZOO, "--starts", "0"],
        ["--starts must be between 1 and 16,384"],
        "analyze-starts-0",
    ),
    row(["analyze", ZOO, "--starts", "-5"], ["--starts"], "analyze-starts-negative"),
    row(
        ["analyze", ZOO, "--starts", "1000000000"],
        ["between 1 and 16,384", "1000000000"],
        "analyze-starts-1e9",
    ),
    row(["analyze", ZOO, "--starts", "1e9"], ["--starts", "invalid int"], "analyze-starts-float"),
    row(["analyze", ZOO, "--seed", "-1"], ["--seed must be between 0"], "analyze-seed-negative"),
    row(["analyze", ZOO, "--seed", "2e3"], ["--seed", "invalid int"], "analyze-seed-float"),
    row(["analyze", ZOO, "--seed", str(2**64)], ["--seed must be between 0"], "analyze-seed-huge"),
    row(
        ["analyze", ZOO, "--unit-size", "0"],
        ["--unit-size must be between 1 and 64"],
        "analyze-unit-size-0",
    ),
    row(
        ["analyze", ZOO, "--unit-size", "100000"],
        ["--unit-size must be between 1 and 64"],
        "analyze-unit-size-huge",
    ),
    row(["analyze", ZOO, "--flush-seconds", "-1"], ["--flush-seconds"], "analyze-flush-negative"),
    row(["analyze", ZOO, "--flush-seconds", "nan"], ["--flush-seconds"], "analyze-flush-nan"),
    row(["analyze", ZOO, "--flush-seconds", "inf"], ["--flush-seconds"], "analyze-flush-inf"),
    row(["analyze", ZOO, "--workers", "0"], ["--workers must be >= 1"], "analyze-workers-0"),
    row(["analyze", ZOO, "--processes", "0"], ["--processes must be >= 1"], "analyze-processes-0"),
    row(
        ["analyze", ZOO, "--processes", "100000"],
        ["--processes must be at most"],
        "analyze-processes-huge",
    ),
    row(
        ["analyze", ZOO, "--workers", "2", "--processes", "2"],
        ["exclude each other"],
        "analyze-two-runners",
    ),
    row(["analyze", ZOO, "--bogus"], ["unrecognized arguments"], "analyze-unknown-option"),
    row(["analyze"], ["the following arguments are required: zoo"], "analyze-no-zoo"),
    # where the results would go
    row(
        ["analyze", ZOO, "--analysis-store", "text.txt"],
        ["text.txt is a file"],
        "analyze-store-a-file",
    ),
    row(
        ["analyze", ZOO, "--analysis-store", "fake.zip"],
        ["fake.zip is a file"],
        "analyze-store-a-zip-file",
    ),
    row(
        ["analyze", ZOO, "--analysis-store", "notes"],
        ["folder of other files"],
        "analyze-store-user-folder",
    ),
    row(
        ["analyze", ZOO, "--analysis-store", "notes.zarr"],
        ["folder of other files"],
        "analyze-store-user-folder-named-zarr",
    ),
    row(
        ["analyze", ZOO, "--analysis-store", "notzoo.zarr"],
        ["not an rnnzoo analysis store"],
        "analyze-store-zarr-not-a-store",
    ),
    row(
        ["analyze", ZOO, "--analysis-store", "truncated.zarr"],
        ["cannot be read"],
        "analyze-store-truncated",
    ),
    row(
        ["analyze", ZOO, "--task", "flipflop"],
        ["cannot write analyses into", "zoo.zarr"],
        "analyze-read-only-zoo",
        read_only=(ZOO,),
    ),
    row(
        ["analyze", ZOO, "--task", "flipflop"],
        ["cannot write analyses into"],
        "analyze-read-only-task",
        read_only=(f"{ZOO}/flipflop",),
    ),
    row(
        ["analyze", ZOO, "--analysis-store", "ro/new.zarr"],
        ["cannot write analyses into"],
        "analyze-store-in-read-only-folder",
        setup=_read_only_folder,
        read_only=("ro",),
    ),
    row(
        ["analyze", ZOO, "--task", "flipflop", "--starts", "32"],
        ["other options", "--force"],
        "analyze-other-options-than-stored",
        setup=_analysed,
    ),
]

SUMMARY = [
    row(["summary", "missing.zarr"], ["no zoo at missing.zarr"], "summary-missing"),
    row(["summary", "fake.zip"], ["fake.zip"], "summary-zip-not-a-zip"),
    row(["summary", "notzoo.zarr"], ["not an rnnzoo zoo"], "summary-zarr-not-a-zoo"),
    row(["summary", "truncated.zarr"], ["truncated.zarr"], "summary-truncated-root"),
    row(["summary", "text.txt"], ["text.txt"], "summary-a-file"),
    row(["summary", ZOO], ["no dynamics analysis stored", "analyze"], "summary-nothing-analysed"),
    row(
        ["summary", ZOO, "--task", "cdi"],
        ["no dynamics analysis stored for task 'cdi'"],
        "summary-task-not-analysed",
        setup=_analysed,
    ),
    row(
        ["summary", ZOO, "--untrained"],
        ["--untrained"],
        "summary-untrained-not-analysed",
        setup=_analysed,
    ),
    row(["summary", ZOO, "--task", "nosuch"], ["no task 'nosuch'"], "summary-unknown-task"),
    row(
        ["summary", ZOO, "--analysis-store", "missing.zarr"],
        ["no analysis store at"],
        "summary-store-missing",
    ),
    row(
        ["summary", ZOO, "--analysis-store", "text.txt"],
        ["not an analysis store"],
        "summary-store-a-file",
    ),
    row(
        ["summary", ZOO, "--analysis-store", "notes"],
        ["not an analysis store"],
        "summary-store-user-folder",
    ),
]

PLOT = [
    row(["plot", ZOO], ["--out"], "plot-no-out"),
    row(["plot", "missing.zarr", "--out", "figs"], ["no zoo at"], "plot-missing"),
    row(["plot", "fake.zip", "--out", "figs"], ["fake.zip"], "plot-zip-not-a-zip"),
    row(["plot", "notzoo.zarr", "--out", "figs"], ["not an rnnzoo zoo"], "plot-zarr-not-a-zoo"),
    row(["plot", ZOO, "--out", "figs"], ["no dynamics analysis stored"], "plot-nothing-analysed"),
    row(
        ["plot", ZOO, "--task", "cdi", "--out", "figs"],
        ["task 'cdi'"],
        "plot-task-not-analysed",
        setup=_analysed,
    ),
    row(
        ["plot", ZOO, "--task", "nosuch", "--out", "figs"],
        ["no task 'nosuch'"],
        "plot-unknown-task",
    ),
    row(
        ["plot", ZOO, "--network", "nobody", "--out", "figs"],
        ["no network(s) nobody"],
        "plot-unknown-network",
        setup=_analysed,
    ),
    row(
        ["plot", ZOO, "--out", "text.txt"],
        ["text.txt is a file"],
        "plot-out-a-file",
        setup=_analysed,
    ),
    row(
        ["plot", ZOO, "--out", "ro/figs"],
        ["cannot create ro/figs"],
        "plot-out-read-only",
        setup=lambda sb: (_analysed(sb), _read_only_folder(sb)),
        read_only=("ro",),
    ),
    row(
        ["plot", ZOO, "--out", "figs", "--analysis-store", "missing.zarr"],
        ["no analysis store at"],
        "plot-store-missing",
    ),
]


@pytest.mark.parametrize(("argv", "expect", "options"), ANALYZE + SUMMARY + PLOT)
def test_refused(refused, argv, expect, options):
    refused(argv, expect, **options)


def test_analyze_while_another_process_holds_the_lock_is_refused(refused, sandbox):
    """The zoo's writer lock is held by another process: refused before computing."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from pathlib import Path; "
            "from rnnzoo_train.zoo.store import WriterLock; "
            f"lock = WriterLock(Path({str(sandbox / ZOO)!r})); lock.acquire(); "
            "print('held', flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        refused([D, "analyze", ZOO, "--task", "flipflop"], (f"pid {holder.pid}", "zoo.zarr"))
    finally:
        holder.kill()
        holder.wait()
