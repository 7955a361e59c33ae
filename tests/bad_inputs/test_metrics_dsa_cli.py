"""Malformed DSA runs of ``rnnzoo-metrics pairwise -m dsa`` (issue 13) are refused.

One line on stderr, exit status != 0, no traceback, the sandbox unchanged (the rules of
``conftest.py``). ``zoo.zarr`` is the harness' tiny real zoo (flipflop: T=100 steps);
``trajs`` and ``flat`` are folders of ``.npy`` networks written by the rows' ``setup=``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

M = "rnnzoo-metrics"
pytestmark = pytest.mark.filterwarnings("ignore::rnnzoo_metrics.PluginWarning")


def folder_of(name: str, shape: tuple[int, ...], n: int = 3):
    """``setup``: a folder of ``n`` random networks of ``shape`` as .npy files."""

    def setup(root: Path) -> None:
        (root / name).mkdir()
        for i in range(n):
            np.save(root / name / f"net{i}.npy", np.random.default_rng(i).normal(size=shape))

    return setup


ZOO = [M, "pairwise", "zoo.zarr", "--group", "flipflop", "-m", "dsa", "-o", "d.nc", "--no-progress"]
TRAJS = [M, "pairwise", "trajs", "-m", "dsa", "-o", "d.nc", "--no-progress"]
T3 = folder_of("trajs", (2, 30, 4))

# a table: one row per malformed input
CASES = [
    pytest.param([*ZOO, "-p", "rank=0"], ("rank must be a whole number >= 1",), {}, id="rank-zero"),
    pytest.param(
        [*ZOO, "-p", "n_delays=x"], ("n_delays", "not a valid int"), {}, id="delays-not-int"
    ),
    pytest.param([*ZOO, "-p", "dmd=exact"], ("dmd must be one of",), {}, id="unknown-dmd"),
    pytest.param(
        [*ZOO, "-p", "score=wasserstein"], ("score must be one of",), {}, id="unknown-score"
    ),
    pytest.param([*ZOO, "-p", "lamb=-1"], ("lamb must be >= 0",), {}, id="negative-ridge"),
    pytest.param(
        [*ZOO, "-p", "n_delays=200"],
        ("time steps are too few", "n_delays=200"),
        {},
        id="more-delays-than-steps",
    ),
    pytest.param(
        [*ZOO, "-p", "n_delays=1", "-p", "rank=5000"],
        ("rank=5000 exceeds",),
        {},
        id="rank-above-the-embedding",
    ),
    pytest.param([*ZOO, "--variable", "nosuch"], ("nosuch",), {}, id="no-such-variable"),
    pytest.param(
        [M, "pairwise", "zoo.zarr", "-m", "dsa", "-o", "d.nc"],
        ("--group",),
        {},
        id="zoo-needs-a-task",
    ),
    pytest.param(
        TRAJS,
        ("must be 3-D (trials, time, units)",),
        {"setup": folder_of("trajs", (5,))},
        id="one-dimensional-networks",
    ),
    pytest.param(
        [*TRAJS, "-p", "n_delays=2", "-p", "rank=9"],
        ("rank=9 exceeds",),
        {"setup": T3},
        id="rank-above-units-times-delays",
    ),
    pytest.param(
        [*TRAJS, "-p", "nosuch=1"],
        ("no parameter 'nosuch'",),
        {"setup": T3},
        id="unknown-parameter",
    ),
]


@pytest.mark.parametrize(("argv", "expect", "options"), CASES)
def test_refused(refused, argv, expect, options):
    refused(argv, expect, **options)
