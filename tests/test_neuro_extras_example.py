"""A new task, its analysis and a new cell are three plugins, end to end (issue 12 §3).

``examples/rnnzoo-neuro-extras`` is pip-installed into a private site directory
(``--target``, on ``PYTHONPATH`` of the commands only, as the metric plugin tests do), and
the four command lines of docs/plugins.md run as real subprocesses:
``rnnzoo-train generate`` (its ``tiny.toml``: the head-direction task, the package's MGU
cell and two built-in cells) -> ``rnnzoo-dynamics analyze`` (the task's ring-attractor
plugin) -> ``rnnzoo-metrics pairwise`` (CKA; the ring graphs) -> ``rnnzoo-metrics embed``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # about 30 s of CPU: five commands, each importing torch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "rnnzoo-neuro-extras"
ARCHS = {"mgu", "vanilla", "gru"}
TASK = "head_direction"
#: each command's ``main`` (the console scripts' targets), run with this interpreter
MAINS = {
    "rnnzoo-train": "rnnzoo_train.cli",
    "rnnzoo-dynamics": "rnnzoo_dynamics.cli",
    "rnnzoo-metrics": "rnnzoo_metrics.cli",
}


def command(site: Path, name: str, *args: str) -> subprocess.CompletedProcess:
    code = f"import sys; from {MAINS[name]} import main; sys.exit(main(sys.argv[1:]))"
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=site
    )
    assert r.returncode == 0, f"{name} {' '.join(args)}\n{r.stdout}\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    path = tmp_path_factory.mktemp("site")
    extra = []
    try:
        import hatchling  # noqa: F401

        extra = ["--no-build-isolation"]  # no download needed for the build backend
    except ImportError:
        pass
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "install"]
    r = subprocess.run(
        [*cmd, "--no-deps", "--target", str(path), *extra, str(EXAMPLE)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    return path


def test_generate_analyze_compare_embed(site, tmp_path):
    xr = pytest.importorskip("xarray")
    zoo = tmp_path / "hd.zarr"
    out = command(
        site, "rnnzoo-train", "generate", "--config", str(EXAMPLE / "tiny.toml"), "--out",
        str(zoo), "--no-progress",
    ).stdout  # fmt: skip
    assert "6 networks: 6 ok" in out

    out = command(site, "rnnzoo-dynamics", "analyze", str(zoo), "--task", TASK, "--quiet").stdout
    assert "analysed 6 network(s)" in out
    assert "wrote analyses: dynamics_summary, fixed_points, ring_attractor, ring_graph" in out
    assert "no analysis plugin" not in out  # the task's own plugin ran, not the generic one

    cka, emb = tmp_path / "cka.nc", tmp_path / "emb.nc"
    command(site, "rnnzoo-metrics", "pairwise", str(zoo), "--group", TASK, "-m", "cka", "-o",
            str(cka), "--no-progress")  # fmt: skip
    graph = tmp_path / "graph.nc"
    command(site, "rnnzoo-metrics", "pairwise", str(zoo), "--group", f"{TASK}/analysis/ring_graph",
            "-m", "fixed-point-graph", "-o", str(graph), "--no-progress")  # fmt: skip
    command(site, "rnnzoo-metrics", "embed", str(cka), "-o", str(emb))

    d = xr.open_dataarray(cka)
    assert set(d["arch"].values) == ARCHS
    assert d.shape == (6, 6)
    assert np.isfinite(d.values).all()
    np.testing.assert_allclose(np.diag(d.values), 0, atol=1e-6)
    e = xr.open_dataset(emb)["embedding"]
    assert e.shape == (6, 2)
    assert np.isfinite(e.values).all()
    assert xr.open_dataarray(graph).sizes["network"] == 6

    # what the analysis plugin stored, read back by a process that has the plugin
    check = (
        "import sys; from rnnzoo_dynamics import read_analysis as r; z = sys.argv[1]\n"
        f"s = r(z, {TASK!r}, 'dynamics_summary'); a = r(z, {TASK!r}, 'ring_attractor')\n"
        f"p = r(z, {TASK!r}, 'fixed_points')\n"
        "assert set(s['n_candidates'].values) == {512}, s['n_candidates'].values\n"
        "assert 'task_analysis' not in s.attrs\n"
        "assert (s['n_ring_points'].values == a['n_ring_points'].values).all()\n"
        "assert ((0 <= a['ring_coverage']) & (a['ring_coverage'] <= 1)).all()\n"
        "assert {'ring_point', 'decoded_heading'} <= set(p.variables)\n"
        "print(sorted(set(s['arch'].values)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    r = subprocess.run(
        [sys.executable, "-c", check, str(zoo)], capture_output=True, text=True, env=env
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['gru', 'mgu', 'vanilla']"


def ring_network(n_units: int, gain: float):
    """A vanilla tanh network with cosine connectivity: a ring attractor when ``gain > 1``.

    ``W_h = gain · (2/N) U Uᵀ`` with ``U = [cos θ_i, sin θ_i]`` (units at evenly spaced
    angles ``θ_i``): the dynamics live in the plane of ``U``, where ``gain > 1`` makes a ring
    of bump states (``N`` stable points and ``N`` saddles between them, ``|λ₁| ≈ 1`` along
    it) and ``gain < 1`` a single stable point at 0. The initial-heading inputs place the
    bump at ``θ₀``; the readout decodes the bump's position.
    """
    theta = np.arange(n_units) * 2 * np.pi / n_units
    U = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    return {
        "W_h": gain * 2 / n_units * U @ U.T,
        "W_x": np.concatenate([np.zeros((1, n_units)), 3 * U.T]),
        "b": np.zeros(n_units),
        "W_out": U * 2 / n_units,
        "b_out": np.zeros(2),
    }


def test_the_ring_analysis_finds_a_hand_built_ring_attractor(site, monkeypatch):
    """The installed plugin, found from the task in process: a ring and a non-ring."""
    import torch

    monkeypatch.syspath_prepend(str(site))
    from rnnzoo_neuro_extras.tasks import HeadDirection

    from rnnzoo_dynamics.population import AnalysisOptions, analysis_names, analyze_population
    from rnnzoo_train.cells import get_cell

    N = 16
    task = HeadDirection(n_steps=20)
    cell = get_cell("vanilla", "tanh", N, task.n_inputs, task.n_outputs)
    nets = [ring_network(N, 2.0), ring_network(N, 0.5)]
    params = {k: torch.tensor(np.stack([p[k] for p in nets])) for k in nets[0]}
    out = analyze_population(task, cell, params, ["ring", "no-ring"], options=AnalysisOptions())
    assert sorted(out) == analysis_names(task)
    ring = out["ring_attractor"]
    assert ring["n_ring_points"].values[0] >= 2 * N  # N stable points and N saddles
    assert ring["n_ring_stable"].values[0] >= N
    assert ring["ring_coverage"].values[0] == 1.0
    # no gap wider than the spacing of the units' preferred headings (2π/N), up to the
    # finder's resolution (points are exact to |F(h) - h| ~ 1e-12)
    assert ring["ring_max_gap"].values[0] <= 2 * np.pi / N + 1e-6
    assert abs(ring["ring_leading_modulus"].values[0] - 1) < 1e-3  # a continuous attractor
    assert ring["n_ring_points"].values[1] <= 1  # the origin at most: no ring
    graph = out["ring_graph"]
    assert graph["graph_n_nodes"].values[0] == ring["n_ring_points"].values[0]
    summary = out["summary"]
    assert summary["n_candidates"].values.tolist() == [512, 512]
    assert "task_analysis" not in summary.attrs


def test_the_task_integrates_angular_velocity(site, monkeypatch):
    monkeypatch.syspath_prepend(str(site))
    from rnnzoo_neuro_extras.analysis import ring_summary
    from rnnzoo_neuro_extras.tasks import HeadDirection

    from rnnzoo_train.tasks import get_task

    task = get_task("head_direction", n_steps=30)
    assert isinstance(task, HeadDirection)
    batch = task.sample(5, np.random.default_rng(0))
    x = batch.inputs.astype(np.float64)
    theta = np.arctan2(x[:, 0, 2], x[:, 0, 1])[:, None] + np.cumsum(x[..., 0], axis=1)
    np.testing.assert_allclose(batch.targets[..., 0], np.cos(theta), atol=1e-6)
    np.testing.assert_allclose(batch.targets[..., 1], np.sin(theta), atol=1e-6)
    assert (x[:, 1:, 1:] == 0).all()  # the heading is given at t = 1 only
    assert task.performance(batch.targets, batch) < 1e-5
    assert task.solved(task.performance(batch.targets, batch))
    probe = task.probe()
    assert probe.inputs.shape == (16, 30, 3)
    assert sorted(set(probe.labels["velocity"])) == [0.0, 2 * np.pi / 30]
    occupied, gap = ring_summary(np.array([0.1, 3.2]), 4)
    assert occupied.tolist() == [True, False, True, False]
    assert gap == pytest.approx(2 * np.pi - 3.1)
    assert ring_summary(np.zeros(0), 4)[1] == 2 * np.pi
