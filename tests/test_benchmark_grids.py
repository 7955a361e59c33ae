"""Every grid file under benchmarks/ still loads against the presets it is based on.

The recorded tables of docs/reproducing.md name these files as the way to rerun them; a
change to a base preset (the demo's sine task moved to T = 500) must not leave them broken
or silently changed: each must load, and the T-dependence grids keep their own T.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnzoo_train.presets import load_grid

ROOT = Path(__file__).resolve().parents[1]
GRIDS = sorted((ROOT / "benchmarks").rglob("*.toml"))


def test_there_are_grids():
    assert GRIDS


@pytest.mark.parametrize("path", GRIDS, ids=lambda p: p.name)
def test_grid_loads(path):
    load_grid(path)


@pytest.mark.parametrize(
    ("name", "n_steps", "iterations"),
    [
        ("t50", 50, 1500),
        ("t50_5seeds", 50, 1500),
        ("t100", 100, 3000),
        ("t500", 500, 1500),
        ("t500_5000", 500, 5000),
    ],
)
def test_trial_length_grids_keep_their_own_T(name, n_steps, iterations):
    p = load_grid(ROOT / "benchmarks" / "sine_trial_length" / f"{name}.toml")
    assert p.task_parameters("sine")["n_steps"] == n_steps
    assert sum(k for _, k in p.task_curricula["sine"]) == iterations
    assert not any("T = 500, reached through" in d for d in p.departures)


def test_relu_t500_grid_trains_relu_cells_at_T500_within_the_paper_ranges():
    """``t500_relu.toml``: the relu cells, sine at T = 500 through its schedule, and fixed
    per-cell-type settings inside the paper's search ranges (issue 14 section 3)."""
    from rnnzoo_train.presets import DEMO, SEARCH_RANGES

    p = load_grid(ROOT / "benchmarks" / "sine_trial_length" / "t500_relu.toml")
    assert p.task_parameters("sine")["n_steps"] == 500
    stages = p.task_curricula["sine"]
    assert stages[-1][0] == 500
    assert [t for t, _ in stages] == sorted({t for t, _ in stages})
    assert p.iterations_for("sine") == sum(k for _, k in stages) <= 20_000  # the paper's budget
    assert p.activations == ("relu",)
    assert p.n_trials == 0
    assert {c.arch for c in p.configurations()} == {"vanilla", "ugrnn", "gru", "lstm"}
    for c in p.configurations():
        hp = p.fixed_hparams(c, "sine")
        assert hp is p.hparams[f"sine/{c.arch}-relu"]  # set per cell type, not inherited
        for name, (lo, hi, _) in SEARCH_RANGES.items():
            assert lo <= getattr(hp, name) <= hi, (c.key, name)
    # the demo itself keeps its own sine schedule and settings
    assert DEMO.task_curricula["sine"] == ((50, 1500), (100, 300), (200, 300), (500, 300))


SOLVED = ROOT / "benchmarks" / "sine_trial_length" / "solved.py"


def test_solved_check_counts_the_index_and_fails_on_a_shortfall(tmp_path):
    """benchmarks/sine_trial_length/solved.py: the check of the relu T = 500 benchmark."""
    import os
    import shutil
    import subprocess
    import sys

    import xarray as xr

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    out = tmp_path / "zoo.zarr"
    exe = shutil.which("rnnzoo-train", path=str(Path(sys.executable).parent)) or "rnnzoo-train"
    gen = subprocess.run(
        [exe, "generate", "--preset", "tiny", "--task", "flipflop", "--out", str(out)]
        + ["--no-progress"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert gen.returncode == 0, gen.stderr
    index = xr.open_zarr(out, group="flipflop/index", consolidated=False)
    cell = f"{index['arch'].values[0]}-{index['activation'].values[0]}"
    mine = [
        f"{a}-{b}" == cell
        for a, b in zip(index["arch"].values, index["activation"].values, strict=True)
    ]
    n_solved = int(index["solved"].values[mine].sum())

    def run(*expect):
        return subprocess.run(
            [sys.executable, str(SOLVED), str(out), "--task", "flipflop", "--expect", *expect],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip

    ok = run(f"{cell}={n_solved}")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"{cell}: solved {n_solved} of {sum(mine)}" in ok.stdout
    assert "PASS" in ok.stdout
    short = run(f"{cell}={n_solved + 1}")
    assert short.returncode == 1
    assert f"FAIL: {cell} solved {n_solved}, expected at least {n_solved + 1}" in short.stdout
    bad = run(f"{cell}=many")
    assert bad.returncode == 2
    assert "is not CELL=N" in bad.stderr
