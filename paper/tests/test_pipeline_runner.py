"""``rnnzoo-paper demo``'s runner options mean what they mean in rnnzoo-train and -dynamics.

``--workers N`` (default 2): a Dask LocalCluster; ``--workers 1``: this process;
``--processes N``: a process pool; ``--scheduler ADDRESS``: an existing cluster. Nothing is
started here (the end-to-end test runs the pipeline on a real LocalCluster).
"""

from __future__ import annotations

import pytest

from rnnzoo_paper.cli import build_parser
from rnnzoo_paper.pipeline import PipelineError, PipelineOptions, _runner
from rnnzoo_train.distributed import DaskRunner
from rnnzoo_train.runners import ProcessRunner, SerialRunner


def _options(tmp_path, *flags: str) -> PipelineOptions:
    args = build_parser().parse_args(["demo", "--out", str(tmp_path), *flags])
    return PipelineOptions(
        out=tmp_path, workers=args.workers, processes=args.processes, scheduler=args.scheduler
    )


def test_the_default_is_a_local_cluster_of_two_workers(tmp_path):
    runner = _runner(_options(tmp_path))
    assert isinstance(runner, DaskRunner)
    assert (runner.n_workers, runner.address) == (2, None)
    assert runner._client is None  # not started by choosing it
    assert isinstance(_runner(PipelineOptions(out=tmp_path)), DaskRunner)  # the Python API too


@pytest.mark.parametrize(
    ("flags", "kind", "n"),
    [
        (["--workers", "1"], SerialRunner, None),
        (["--workers", "3"], DaskRunner, 3),
        (["--processes", "2"], ProcessRunner, 2),
        (["--workers", "1", "--processes", "2"], ProcessRunner, 2),
        (["--scheduler", "tcp://head:8786"], DaskRunner, None),
    ],
)
def test_each_option_gives_its_runner(tmp_path, flags, kind, n):
    runner = _runner(_options(tmp_path, *flags))
    assert type(runner) is kind
    assert getattr(runner, "n_workers", None) == n


@pytest.mark.parametrize(
    "flags",
    [
        ["--workers", "2", "--processes", "2"],
        ["--processes", "2", "--scheduler", "tcp://head:8786"],
        ["--workers", "2", "--scheduler", "tcp://head:8786"],
    ],
)
def test_conflicting_options_are_a_pipeline_error(tmp_path, flags):
    with pytest.raises(PipelineError, match="exclude each other; give only one"):
        _runner(_options(tmp_path, *flags))


def test_the_dask_flag_is_gone(tmp_path):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--out", str(tmp_path), "--dask"])
