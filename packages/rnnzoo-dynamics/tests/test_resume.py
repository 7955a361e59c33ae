"""Resume from what is stored: kills during the final write lose no network's results.

``analyze_zoo`` runs in a child process that SIGKILLs itself before a chosen file operation
of a commit (``RNNZOO_ANALYSIS_KILL_AT_STEP``; steps counted and labelled by a traced,
uninterrupted run of the same command). The rerun must recompute exactly the networks the
killed run had not committed, and end with what the uninterrupted run stored.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from rnnzoo_dynamics.analyze import AnalysisError, analyze_zoo, read_analysis
from rnnzoo_dynamics.population import AnalysisOptions
from rnnzoo_train.runners import SerialRunner
from rnnzoo_train.zoo import open_zoo
from rnnzoo_train.zoo.analyses import FAULT_ENV, STAGING_DIR, TRACE_ENV, analysis_problems

TASK = "flipflop"
FAST = AnalysisOptions(n_starts=16)
#: one network per work unit and per commit, in this order
NETS = ["vanilla-tanh-u8-l2_1e-04-s000", "vanilla-tanh-u8-l2_1e-04-s001"]
NAMES = ("dynamics_summary", "fixed_points", "transition_graph")

_CHILD = """
import json, os
os.environ.update(ENV)
from rnnzoo_dynamics.analyze import analyze_zoo
from rnnzoo_dynamics.population import AnalysisOptions
r = analyze_zoo(PATH, "flipflop", options=AnalysisOptions(n_starts=16), network_ids=NETS,
                unit_size=1, flush_seconds=0, progress=False)
with open(OUT, "w") as fh:
    json.dump({"analysed": r.analysed, "resumed": r.resumed}, fh)
"""


@pytest.fixture(scope="module")
def analyze_in_child(tmp_path_factory):
    """``run(zoo, env) -> (exit code, report or None)``: ``analyze_zoo`` in a forked child.

    A forkserver that has imported torch and the packages (and run nothing) forks every
    child: a child costs milliseconds instead of an interpreter start and torch's import.
    """
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["torch", "xarray", "zarr", "rnnzoo_dynamics.analyze"])
    out = tmp_path_factory.mktemp("reports") / "report.json"

    def run(path: Path, env: dict[str, str]) -> tuple[int, dict | None]:
        out.unlink(missing_ok=True)
        scope = {"ENV": env, "PATH": str(path), "NETS": NETS, "OUT": str(out)}
        proc = ctx.Process(target=exec, args=(_CHILD, scope))
        proc.start()
        proc.join(300)
        report = json.loads(out.read_text()) if out.exists() else None
        return proc.exitcode, report

    return run


def _stored(path: Path) -> dict[str, xr.Dataset]:
    """Every stored analysis, sorted by network, without run-specific values."""
    zoo = open_zoo(path)
    out = {}
    for name in NAMES:
        ds = read_analysis(zoo, TASK, name).drop_vars("seconds", errors="ignore")
        dim = "fixed_point" if "fixed_point" in ds.dims else "network"
        order = np.argsort(ds["network"].values.astype(str), kind="stable")
        ds = ds.isel({dim: order})
        ds.attrs = {k: v for k, v in ds.attrs.items() if not k.startswith("rnnzoo_")}
        out[name] = ds
    return out


def _assert_same(a: dict[str, xr.Dataset], b: dict[str, xr.Dataset]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        xr.testing.assert_identical(a[name], b[name])


def test_a_run_killed_in_a_commit_resumes_exactly_the_networks_not_committed(
    zoo_copy, tmp_path, analyze_in_child
):
    trace = tmp_path / "trace.txt"
    reference = tmp_path / "reference.zarr"
    shutil.copytree(zoo_copy, reference)
    code, report = analyze_in_child(reference, {TRACE_ENV: str(trace)})
    assert code == 0
    assert report == {"analysed": 2, "resumed": 0}
    expected = _stored(reference)
    labels = [line.split(" ", 1)[1] for line in trace.read_text().splitlines()]
    journals = [k for k, label in enumerate(labels, start=1) if label == f"journal {TASK}"]
    assert len(journals) >= 2  # a commit per network (and a last flush)
    # the second commit (both networks stored together): its steps after the commit point
    swap = next(k for k in range(journals[1], len(labels)) if labels[k].startswith("rename-new"))
    cases = {
        journals[1]: 1,  # killed just before the commit point: network 1 is stored
        swap + 1: 2,  # after it, in the swap: the next writer rolls it forward
    }
    for k, n_stored in cases.items():
        path = tmp_path / f"killed-{k}.zarr"
        shutil.copytree(zoo_copy, path)
        code, _ = analyze_in_child(path, {FAULT_ENV: str(k)})
        where = f"killed before step {k} ({labels[k - 1]})"
        assert code == -signal.SIGKILL, where
        code, report = analyze_in_child(path, {})
        assert code == 0, where
        assert report == {"analysed": 2 - n_stored, "resumed": n_stored}, where
        _assert_same(_stored(path), expected)
        assert analysis_problems(path, TASK) == [], where
        assert not (path / STAGING_DIR).exists(), where
        shutil.rmtree(path)


def _analyze(path: Path):
    """One network per batch: a network's float rounding is the same in every run."""
    return analyze_zoo(path, TASK, options=FAST, network_ids=NETS, unit_size=1, progress=False)


def test_a_network_the_summary_lists_but_an_analysis_lacks_is_recomputed(zoo_copy, tmp_path):
    reference = tmp_path / "reference.zarr"
    shutil.copytree(zoo_copy, reference)
    _analyze(reference)
    expected = _stored(reference)
    _analyze(zoo_copy)
    zoo = open_zoo(zoo_copy)
    # what the former driver left after a kill between two of its writes: the summary says
    # "ok", the graph lacks the network
    graph = read_analysis(zoo, TASK, "transition_graph")
    keep = np.nonzero(graph["network"].values != NETS[0])[0]
    zoo.write_analysis(TASK, "transition_graph", graph.isel(network=keep))
    report = _analyze(zoo_copy)
    assert (report.analysed, report.resumed) == (1, 1)
    _assert_same(_stored(zoo_copy), expected)
    # ... and a network with fewer fixed points stored than its summary counts
    points = read_analysis(open_zoo(zoo_copy), TASK, "fixed_points")
    mine = np.nonzero(points["network"].values == NETS[1])[0]
    drop = np.setdiff1d(np.arange(points.sizes["fixed_point"]), mine[:1])
    open_zoo(zoo_copy).write_analysis(TASK, "fixed_points", points.isel(fixed_point=drop))
    report = _analyze(zoo_copy)
    assert (report.analysed, report.resumed) == (1, 1)
    _assert_same(_stored(zoo_copy), expected)


class CountingRunner(SerialRunner):
    """A serial runner that counts the units it was given."""

    def __init__(self):
        self.units = 0

    def map_unordered(self, fn, units):
        units = list(units)
        self.units += len(units)
        yield from super().map_unordered(fn, units)


def test_analyze_under_another_writer_is_refused_before_computing(zoo_copy):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from pathlib import Path; "
            "from rnnzoo_train.zoo.store import WriterLock; "
            f"lock = WriterLock(Path({str(zoo_copy)!r})); lock.acquire(); "
            "print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    runner = CountingRunner()
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.perf_counter()
        with pytest.raises(AnalysisError, match=f"being written by pid {holder.pid}"):
            analyze_zoo(zoo_copy, TASK, options=FAST, network_ids=NETS[:1], runner=runner)
        assert time.perf_counter() - started < 30
    finally:
        holder.kill()
        holder.wait()
    assert runner.units == 0
    assert open_zoo(zoo_copy).analyses(TASK) == []
    report = analyze_zoo(zoo_copy, TASK, options=FAST, network_ids=NETS[:1], runner=runner)
    assert report.analysed == 1
    assert runner.units == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"unit_size": 0}, "--unit-size must be between 1 and 64"),
        ({"unit_size": 10**6}, "--unit-size must be between 1 and 64"),
        ({"flush_seconds": -1.0}, "--flush-seconds must be a finite number >= 0"),
        ({"flush_seconds": float("nan")}, "--flush-seconds must be a finite number >= 0"),
        ({"which": "best"}, "which must be 'final' or 'initial'"),
    ],
)
def test_arguments_out_of_range_are_refused_before_anything_is_read(kwargs, message, tmp_path):
    with pytest.raises(AnalysisError, match=message):
        analyze_zoo(tmp_path / "no-zoo-needed.zarr", TASK, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_starts": 0}, "n_starts"),
        ({"n_starts": 16_385}, "between 1 and 16,384"),
        ({"seed": -1}, "seed"),
        ({"noise_scale": float("inf")}, "noise_scale"),
        ({"line_nodes": 1}, "line_nodes"),
        ({"attractor_growth": 0.5}, "attractor_growth"),
    ],
)
def test_analysis_options_out_of_range_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AnalysisOptions(**kwargs)


def test_finder_and_transition_options_out_of_range_are_refused():
    from rnnzoo_dynamics.fixed_points import FinderOptions
    from rnnzoo_dynamics.graphs import TransitionOptions

    for kwargs in ({"learning_rate": 0.0}, {"check_every": 0}, {"dedup_tol": -1e-4}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            FinderOptions(**kwargs)
    for kwargs in ({"n_perturbations": 0}, {"landing": float("nan")}, {"seed": -3}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            TransitionOptions(**kwargs)
