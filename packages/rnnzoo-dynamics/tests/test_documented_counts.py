"""What docs/dynamics.md says the counts and radii are, checked exactly (issue 10 §7)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from rnnzoo_dynamics.fixed_points import FIXED, SLOW, FinderOptions, FixedPoints, deduplicate
from rnnzoo_dynamics.population import AnalysisOptions, analyze_population
from rnnzoo_dynamics.sine import sine_frequencies
from rnnzoo_train.cells import get_cell
from rnnzoo_train.tasks import get_task

torch.set_num_threads(1)


def test_dedup_radius_is_euclidean_over_the_whole_state():
    # max‖h‖ = ‖(3, 4)‖₂ = 5 (‖·‖∞ would give 4): radius 1e-3 · (1 + 5) = 6e-3
    a = np.array([3.0, 4.0])
    q = np.array([1e-20, 1e-19])
    for offset, merged in (
        ([0.0055, 0.0], True),  # 5.5e-3 < 6e-3: merged (not with the ∞-norm radius 5e-3)
        ([0.0065, 0.0], False),  # outside
        ([0.004, 0.004], True),  # Euclidean distance 5.7e-3 (the 1-norm distance is 8e-3)
    ):
        keep, counts = deduplicate(np.stack([a, a + offset]), q, 1e-3)
        assert (len(keep) == 1) == merged, offset
    # the radius is inclusive: a point exactly at it (all numbers exact in binary) is merged
    keep, _ = deduplicate(np.array([[0.0], [1.0]]), q, 0.5)  # radius 0.5 · (1 + 1) = 1
    assert len(keep) == 1
    keep, _ = deduplicate(np.array([[0.0], [1.0]]), q, 0.4375)  # radius 0.875
    assert len(keep) == 2


def _integrator():
    """cdi relu network: unit a integrates stream 0 in context 0, b stream 1 in context 1.

    ``a = relu(h_a + x2 − 100 x1)``, ``b = relu(h_b + x3 − 100 x0)``: in each context a line
    attractor of fixed points with eigenvalue exactly 1 (marginal), the other unit at 0."""
    cell = get_cell("vanilla", "relu", 2, 4, 1)
    W_x = torch.zeros(4, 2)
    W_x[2, 0] = W_x[3, 1] = 1.0
    W_x[1, 0] = W_x[0, 1] = -100.0
    params = {"W_x": W_x, "W_h": torch.eye(2), "b": torch.zeros(2)}
    params |= {"W_out": torch.ones(2, 1), "b_out": torch.zeros(1)}
    return cell, {k: v[None].to(torch.float64) for k, v in params.items()}


def test_summary_n_stable_counts_fixed_points_without_an_unstable_mode_marginal_included():
    cell, params = _integrator()
    opt = AnalysisOptions(n_starts=32)
    out = analyze_population(get_task("cdi"), cell, params, ["net"], options=opt)
    fp, summary = out["fixed_points"], out["summary"]
    fixed = fp["kind"].values == FIXED
    no_unstable = fp["n_unstable"].values == 0
    strictly = fp["stability"].values == "stable"
    assert (fixed & (fp["stability"].values == "marginal")).sum() > 0  # the line attractor
    assert int(summary["n_stable"].values[0]) == int((fixed & no_unstable).sum())
    assert int(summary["n_stable"].values[0]) > int((fixed & strictly).sum())
    assert int(summary["n_saddle"].values[0]) == int((fixed & ~no_unstable).sum())
    assert summary["n_stable"].values[0] + summary["n_saddle"].values[0] == int(fixed.sum())
    assert int(summary["n_fixed"].values[0]) == int(fixed.sum())


def test_sine_counts_are_defined_as_documented():
    # one network, one frequency: fixed near, fixed far, fixed with no flow distance (inf),
    # slow near, slow far
    kind = np.array([FIXED, FIXED, FIXED, SLOW, SLOW], dtype=object)
    flow = np.array([1.0, 3.0, np.inf, 0.5, 5.0])
    n = len(kind)
    points = FixedPoints(
        network=np.zeros(n, np.int64),
        condition=np.zeros(n, np.int64),
        state=np.arange(n, dtype=np.float64)[:, None],
        q=np.where(kind == FIXED, 1e-20, 1e-9),
        kind=kind,
        n_merged=np.ones(n, np.int64),
        x_star=np.zeros((1, 1)),
        candidate_q=np.zeros((1, 1, 1)),
        stats={},
        options=FinderOptions(),
    )
    lin = SimpleNamespace(eig=SimpleNamespace(eigenvalues=np.zeros((n, 1), complex)))
    ds = sine_frequencies(points, lin, np.array([0.03]), ["net"], flow_distance=flow)
    counts = {k: int(ds[k].values[0, 0]) for k in ("n_points", "n_far_points", "n_slow_points")}
    assert counts == {"n_points": 1, "n_far_points": 2, "n_slow_points": 2}
    assert int(ds["n_points_all"].values[0, 0]) == sum(counts.values()) == n
