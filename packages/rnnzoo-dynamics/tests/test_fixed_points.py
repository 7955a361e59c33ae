"""The fixed-point finder on systems whose fixed points are known exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnzoo_dynamics._batch import Packing
from rnnzoo_dynamics._canonical import position_order
from rnnzoo_dynamics.fixed_points import (
    FIXED,
    SLOW,
    FinderOptions,
    FixedPoints,
    deduplicate,
    deduplicate_kinds,
    find_fixed_points,
    speed,
)
from rnnzoo_dynamics.linearize import linearize
from rnnzoo_dynamics.testing import (
    LinearCell,
    ScalarTanh,
    TanhCell,
    diagonal_tanh_fixed_points,
    diagonal_tanh_params,
    scalar_tanh_fixed_points,
)
from rnnzoo_train.cells.base import Cell, stack_params


def scalar_population(ws):
    P = len(ws)
    return {
        "w": torch.tensor(ws, dtype=torch.float64).reshape(P, 1),
        "u": torch.ones(P, 1, dtype=torch.float64),
        "W_out": torch.ones(P, 1, 1, dtype=torch.float64),
        "b_out": torch.zeros(P, 1, dtype=torch.float64),
    }


def test_scalar_tanh_population_all_found_none_spurious():
    ws = [2.0, 0.5, 3.0, 1.2]
    cell = ScalarTanh()
    starts = np.linspace(-1.5, 1.5, 41)[:, None]
    fp = find_fixed_points(cell, scalar_population(ws), [0.0], starts)
    lin = linearize(cell, scalar_population(ws), fp)
    for i, w in enumerate(ws):
        truth = scalar_tanh_fixed_points(w)
        mine = fp.network == i
        found = np.sort(fp.state[mine, 0])
        assert len(found) == len(truth), (w, found)
        # polish stop q < 1e-24: |F(h)-h| < 1.41e-12 over |1-λ| >= 0.2: 7.1e-12; truth: xtol 2e-12
        np.testing.assert_allclose(found, truth, rtol=0, atol=1e-11)
        assert (fp.kind[mine] == "fixed").all()
        assert fp.q[mine].max() < 1e-24
        # stability: 0 is unstable for w > 1 (lambda = w), the outer points are stable
        order = np.argsort(fp.state[mine, 0])
        labels = lin.stability[mine][order]
        lam = lin.eig.eigenvalues[mine][order, 0].real
        if w > 1:
            assert list(labels) == ["stable", "unstable", "stable"]
            np.testing.assert_allclose(lam[1], w, rtol=1e-12)
            hp = truth[2]
            # δλ/λ = 2 w h₊ (λ·1.41e-12/|1-λ| + 1e-15 truth's xtol)/λ <= 8.9e-12 (w = 3, λ = 0.03)
            np.testing.assert_allclose(lam[[0, 2]], w * (1 - hp**2), rtol=2e-11)
        else:
            assert list(labels) == ["stable"]
    assert fp.stats["n_fixed"].tolist() == [3, 1, 3, 3]
    assert fp.n_merged.sum() == len(ws) * len(starts)


def test_diagonal_tanh_grid_of_27_points_with_stability():
    w = np.array([2.0, 1.6, 3.0])
    b = np.array([0.1, -0.05, 0.0])
    truth, n_unstable = diagonal_tanh_fixed_points(w, b)
    assert len(truth) == 27
    cell = TanhCell(3, 1, 3)
    params = diagonal_tanh_params(w, b)
    rng = np.random.default_rng(0)
    starts = rng.uniform(-1.2, 1.2, size=(2048, 3))
    fp = find_fixed_points(cell, params, [0.0], starts)
    assert len(fp) == 27
    dist = np.linalg.norm(fp.state[:, None] - truth[None], axis=-1)
    match = dist.argmin(1)
    assert dist.min(1).max() < 1e-10
    assert sorted(match.tolist()) == list(range(27))  # every true point, exactly once
    lin = linearize(cell, params, fp)
    np.testing.assert_array_equal(lin.n_unstable, n_unstable[match])
    assert np.bincount(lin.n_unstable).tolist() == [8, 12, 6, 1]


def test_non_normal_linear_system_unique_point():
    rng = np.random.default_rng(1)
    S = 8
    A = 0.3 * rng.normal(size=(S, S)) + np.triu(rng.normal(size=(S, S)), 1)
    cell = LinearCell(S, 2, 2)
    params = {
        "W_h": torch.tensor(A),
        "W_x": torch.tensor(rng.normal(size=(2, S))),
        "b": torch.tensor(rng.normal(size=S)),
        "W_out": torch.tensor(rng.normal(size=(S, 2))),
        "b_out": torch.zeros(2, dtype=torch.float64),
    }
    xs = np.array([[0.0, 0.0], [0.5, -1.0]])
    # the fixed point of an unstable linear map can lie anywhere: no region of interest
    fp = find_fixed_points(cell, params, xs, rng.normal(size=(32, S)), FinderOptions(escape=None))
    assert sorted(fp.condition.tolist()) == [0, 1]
    for c, x in enumerate(xs):
        true = (x @ params["W_x"].numpy() + params["b"].numpy()) @ np.linalg.inv(np.eye(S) - A)
        np.testing.assert_allclose(fp.state[fp.condition == c][0], true, atol=1e-12)
    lin = linearize(cell, params, fp, keep_jacobians=True)
    n_true = int((np.abs(np.linalg.eigvals(A)) > 1 + 1e-3).sum())
    assert (lin.n_unstable == n_true).all()


class Ghost(Cell):
    """``h' = h + a + h²``: no fixed point for ``a > 0``; a slow point at 0 with q = a²/2."""

    arch = "ghost"

    def __init__(self):
        super().__init__(1, 1, 1)

    def param_shapes(self):
        return {"a": (1,), "W_out": (1, 1), "b_out": (1,)}

    def init_params(self, generator, dtype=torch.float32):
        raise NotImplementedError

    def step(self, params, h, x):
        return h + params["a"].unsqueeze(1) + h * h

    def jacobian_h(self, params, h, x):
        return (1 + 2 * h).unsqueeze(-1)

    def jacobian_x(self, params, h, x):
        return torch.zeros_like(h).unsqueeze(-1)


def test_slow_point_is_labelled_and_fixed_points_are_not_confused():
    # network 0: a = 1e-4 (ghost, q = 5e-9: slow); network 1: a = -0.01 (two fixed points)
    params = {
        "a": torch.tensor([[1e-4], [-0.01]], dtype=torch.float64),
        "W_out": torch.ones(2, 1, 1, dtype=torch.float64),
        "b_out": torch.zeros(2, 1, dtype=torch.float64),
    }
    starts = np.linspace(-0.3, 0.05, 24)[:, None]
    fp = find_fixed_points(Ghost(), params, [0.0], starts)
    ghost = fp.select(fp.network == 0)
    assert list(ghost.kind) == ["slow"]
    np.testing.assert_allclose(ghost.state[0, 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(ghost.q[0], 0.5e-8, rtol=1e-6)
    two = fp.select(fp.network == 1)
    assert sorted(two.kind) == ["fixed", "fixed"]
    # polish stop |F(h)-h| < 1.41e-12 over |1-λ| = 2|h| = 0.2: 7.1e-12
    np.testing.assert_allclose(np.sort(two.state[:, 0]), [-0.1, 0.1], rtol=0, atol=1e-11)
    # without slow points the ghost network has nothing
    strict = find_fixed_points(Ghost(), params, [0.0], starts, FinderOptions(slow_q_tol=None))
    assert (strict.network == 0).sum() == 0
    assert strict.stats["n_dropped"][0] == len(starts)


def test_nonfinite_candidates_are_counted_not_raised():
    cell = LinearCell(2, 1, 1)
    params = {
        "W_h": torch.tensor([[3.0, 0.0], [0.0, 0.5]], dtype=torch.float64),
        "W_x": torch.zeros(1, 2, dtype=torch.float64),
        "b": torch.zeros(2, dtype=torch.float64),
        "W_out": torch.ones(2, 1, dtype=torch.float64),
        "b_out": torch.zeros(1, dtype=torch.float64),
    }
    starts = np.array([[1e300, 0.0], [0.3, 0.2]])
    fp = find_fixed_points(cell, params, [0.0], starts)
    assert fp.stats["n_nonfinite"].tolist() == [1]
    assert len(fp) == 1
    np.testing.assert_allclose(fp.state[0], 0.0, atol=1e-14)


def test_converged_points_freeze():
    cell = ScalarTanh()
    params = scalar_population([2.0])
    hp = scalar_tanh_fixed_points(2.0)[2]
    near = hp + 1e-7  # q ~ 1e-15 < gradient_q_stop: frozen from the start
    starts = np.array([[near], [0.7], [-0.4], [0.05]])
    opt = FinderOptions(polish_steps=0, slow_q_tol=1e-2, gradient_dtype=torch.float64)
    fp = find_fixed_points(cell, params, [0.0], starts, opt)
    # Adam moves any point it touches by about learning_rate (its steps are normalised):
    # a frozen point must come out bit-identical while the others kept moving
    assert near in fp.state[:, 0].tolist()
    assert fp.stats["gradient_steps"] > 0
    moved = find_fixed_points(cell, params, [0.0], starts[1:], opt)
    assert not np.isin(starts[1:, 0], moved.state[:, 0]).any()


def test_deduplicate_keeps_lowest_q_and_isolated_points():
    rng = np.random.default_rng(2)
    centre = np.zeros(5)
    cluster = centre + 1e-9 * rng.normal(size=(20, 5))
    q = rng.uniform(1e-20, 1e-14, size=20)
    far = np.full((1, 5), 50.0)
    states = np.vstack([cluster, far])
    qs = np.append(q, 1e-13)  # the isolated point has the worst q and is alone
    keep, merged = deduplicate(states, qs, 1e-6)
    assert len(keep) == 2
    assert keep[0] == int(np.argmin(q))
    assert keep[1] == 20
    assert merged.tolist() == [20, 1]


def test_population_and_per_network_inputs_match_single_networks():
    rng = np.random.default_rng(3)
    cells = TanhCell(4, 2, 1)
    nets = [cells.init_params(torch.Generator().manual_seed(s), torch.float64) for s in range(3)]
    for p in nets:
        p["W_h"] = p["W_h"] * 3.0  # several fixed points
    params = stack_params(nets)
    starts = rng.uniform(-1, 1, size=(3, 64, 4))
    x = np.array([[0.0, 0.0], [0.2, -0.1]])
    together = find_fixed_points(cells, params, x, starts)
    for i, p in enumerate(nets):
        alone = find_fixed_points(cells, p, x, starts[i])
        mine = together.select(together.network == i)
        assert len(mine) == len(alone)
        for c in range(2):
            a = np.sort(alone.state[alone.condition == c], axis=0)
            b = np.sort(mine.state[mine.condition == c], axis=0)
            np.testing.assert_allclose(a, b, atol=1e-10)
    # every reported point really is a fixed point, checked independently in float64
    h = torch.as_tensor(together.state).unsqueeze(1)
    xx = torch.as_tensor(together.x_of_points()).unsqueeze(1)
    pp = {k: v[torch.as_tensor(together.network)] for k, v in params.items()}
    q = speed(cells, pp, h, xx)[:, 0].numpy()
    # q < q_tol in the finder's batch; recomputed in another layout q = ½|r|² (|r| < 1.41e-6)
    # moves by |r|·|δr| <~ 1.41e-6 · 1e-13 = 1.4e-19, far below 1e-6 · q_tol
    assert q.max() < (1 + 1e-6) * 1e-12


def test_block_size_does_not_change_the_answer():
    w = np.array([2.0, 1.6, 3.0])
    b = np.array([0.1, -0.05, 0.0])
    cell = TanhCell(3, 1, 3)
    params = diagonal_tanh_params(w, b)
    starts = np.random.default_rng(4).uniform(-1.2, 1.2, size=(256, 3))
    big = find_fixed_points(cell, params, [0.0], starts)
    small = find_fixed_points(cell, params, [0.0], starts, FinderOptions(max_block_elements=50))
    assert len(big) == len(small) == 27
    # each run stops within |F(h)-h|/min|1-λ| < 1.41e-12/0.589 = 2.4e-12 of the true point
    np.testing.assert_allclose(
        np.sort(big.state, axis=0), np.sort(small.state, axis=0), rtol=0, atol=5e-12
    )


def test_packing_round_trip():
    active = torch.tensor([[True, False, True, False], [False, False, False, False], [1, 1, 1, 1]])
    active = active.bool()
    t = torch.arange(12.0).reshape(3, 4, 1)
    pack = Packing.from_mask(active)
    assert pack.rows.tolist() == [0, 2]
    assert pack.n_active == 6
    g = pack.gather(t)
    assert g[0, :2, 0].tolist() == [0.0, 2.0]
    out = torch.zeros_like(t)
    pack.scatter(out, g)
    np.testing.assert_array_equal(out[active], t[active])
    assert (out[~active] == 0).all()


@pytest.mark.parametrize(
    ("x_star", "starts", "message"),
    [
        (np.zeros((2, 3)), np.zeros((4, 1)), "x_star must have shape"),
        ([0.0], np.zeros((4, 2)), "initial_states must have shape"),
    ],
)
def test_bad_shapes_give_one_line_errors(x_star, starts, message):
    with pytest.raises(ValueError, match=message):
        find_fixed_points(ScalarTanh(), scalar_population([2.0]), x_star, starts)


def test_bad_options():
    with pytest.raises(ValueError, match="slow_q_tol"):
        FinderOptions(q_tol=1e-6, slow_q_tol=1e-8)


def test_candidates_leaving_the_region_of_interest_are_dropped_and_counted():
    # h' = h W + b with W = 0.5 I: the only fixed point is 2b, far outside the starts' ball
    cell = LinearCell(2, 1, 1)
    params = {
        "W_h": 0.5 * torch.eye(2, dtype=torch.float64),
        "W_x": torch.zeros(1, 2, dtype=torch.float64),
        "b": torch.tensor([50.0, 0.0], dtype=torch.float64),
        "W_out": torch.ones(2, 1, dtype=torch.float64),
        "b_out": torch.zeros(1, dtype=torch.float64),
    }
    starts = np.random.default_rng(5).uniform(-1, 1, size=(16, 2))
    fp = find_fixed_points(cell, params, [0.0], starts)
    assert len(fp) == 0
    assert fp.stats["n_escaped"][0] == 16
    assert np.isinf(fp.candidate_q).all()
    free = find_fixed_points(cell, params, [0.0], starts, FinderOptions(escape=None))
    np.testing.assert_allclose(free.state, [[100.0, 0.0]], atol=1e-10)


def test_premerge_polishes_each_cluster_once_and_keeps_counts():
    w = np.array([2.0, 1.6, 3.0])
    b = np.array([0.1, -0.05, 0.0])
    cell = TanhCell(3, 1, 3)
    params = diagonal_tanh_params(w, b)
    starts = np.random.default_rng(6).uniform(-1.2, 1.2, size=(512, 3))
    merged = find_fixed_points(cell, params, [0.0], starts)
    every = find_fixed_points(cell, params, [0.0], starts, FinderOptions(premerge_tol=None))
    assert len(merged) == len(every) == 27
    assert merged.n_merged.sum() == every.n_merged.sum() == 512
    # each run stops within |F(h)-h|/min|1-λ| < 1.41e-12/0.589 = 2.4e-12 of the true point
    np.testing.assert_allclose(
        np.sort(merged.state, axis=0), np.sort(every.state, axis=0), rtol=0, atol=5e-12
    )


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None, database=None)
@given(st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_any_linear_map_with_no_unit_eigenvalue_has_its_one_fixed_point_found(S, seed):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(S, S)) / np.sqrt(S) * rng.uniform(0.2, 2.0)
    assert np.abs(np.linalg.eigvals(A) - 1).min() > 1e-3 or True
    if np.abs(np.linalg.eigvals(A) - 1).min() < 1e-2:
        return  # (nearly) singular I - A: a line or no fixed point
    b = rng.normal(size=S)
    cell = LinearCell(S, 1, 1)
    params = {
        "W_h": torch.tensor(A),
        "W_x": torch.zeros(1, S, dtype=torch.float64),
        "b": torch.tensor(b),
        "W_out": torch.ones(S, 1, dtype=torch.float64),
        "b_out": torch.zeros(1, dtype=torch.float64),
    }
    fp = find_fixed_points(cell, params, [0.0], rng.normal(size=(8, S)), FinderOptions(escape=None))
    truth = b @ np.linalg.inv(np.eye(S) - A)
    assert len(fp) == 1
    np.testing.assert_allclose(fp.state[0], truth, atol=1e-9 * (1 + np.abs(truth).max()))


@pytest.mark.parametrize("arch", ["vanilla", "ugrnn", "gru", "lstm"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_every_cell_type_gets_true_fixed_points(arch, activation):
    from rnnzoo_train.cells import get_cell

    cell = get_cell(arch, activation, 6, 2, 2)
    nets = [cell.init_params(torch.Generator().manual_seed(s), torch.float64) for s in range(2)]
    for p in nets:  # a stronger recurrence than at initialisation: several fixed points
        p["W_h"] = p["W_h"] * 2.0
    params = stack_params(nets)
    x = np.array([[0.0, 0.0], [0.5, -0.5]])
    starts = np.random.default_rng(7).normal(size=(2, 64, cell.state_size))
    fp = find_fixed_points(cell, params, x, starts)
    fixed = fp.select(fp.kind == "fixed")
    assert len(fixed) >= 2
    h = torch.as_tensor(fixed.state)[:, None]
    xx = torch.as_tensor(fixed.x_of_points())[:, None]
    pp = {k: v[torch.as_tensor(fixed.network)] for k, v in params.items()}
    # q < q_tol = 1e-12 in the finder's batch; recomputed here in another batch layout
    # q = ½|r|² (|r| < 1.41e-6) moves by |r|·|δr| <~ 1.41e-6 · 1e-13 = 1.4e-19 << 1e-6 · q_tol
    assert speed(cell, pp, h, xx).max() < (1 + 1e-6) * 1e-12
    lin = linearize(cell, params, fixed)
    assert np.isfinite(lin.eig.eigenvalues).all()
    assert lin.eig.eigenvalues.shape == (len(fixed), cell.state_size)


def test_deduplicate_kinds_absorbs_slow_points_next_to_fixed_points():
    opt = FinderOptions()  # q_tol 1e-12, dedup_tol 1e-4, slow_dedup_tol 1e-3
    # radii are relative: tol * (1 + max|h|) = tol * 1.5 here
    states = np.array(
        [
            [0.0, 0.0],  # fixed A
            [2e-5, 0.0],  # fixed, the same point as A within dedup_tol (1.5e-4)
            [1e-3, 0.0],  # fixed B: distinct from A at the fixed-point radius
            [1.2e-3, 0.0],  # slow, 2e-4 from B: absorbed by B
            [0.0, -1.4e-3],  # slow, within slow_dedup_tol (1.5e-3) of A: absorbed by A
            [0.5, 0.0],  # slow, alone: kept
            [0.5, 1e-3],  # slow, the same slow point
        ]
    )
    q = np.array([1e-20, 1e-25, 1e-22, 1e-9, 1e-8, 1e-7, 1e-9])
    w = np.array([1, 2, 3, 4, 5, 6, 7])
    keep, merged, is_fixed = deduplicate_kinds(states, q, w, opt)
    # fixed first, by position (their q is rounding noise), then slow by increasing q; the
    # lowest q of each cluster is kept
    fixed_order = position_order(states[[1, 2]])
    assert keep.tolist() == [[1, 2][k] for k in fixed_order] + [6]
    assert is_fixed.tolist() == [True, True, False]
    # counts: A = 1 + 2 + 5 (the slow point next to it), B = 3 + 4, slow = 6 + 7
    assert merged.tolist() == [[8, 7][k] for k in fixed_order] + [13]
    # the slow points' radius decides absorption: at 1e-4 nothing is absorbed
    keep, merged, is_fixed = deduplicate_kinds(states, q, w, FinderOptions(slow_dedup_tol=1e-4))
    assert keep.tolist() == [[1, 2][k] for k in fixed_order] + [3, 6, 4, 5]
    assert is_fixed.tolist() == [True, True, False, False, False, False]
    assert merged.tolist() == [3, 3, 4, 7, 5, 6]


def test_deduplicate_kinds_never_lets_slow_points_swallow_fixed_points():
    opt = FinderOptions()
    # two fixed points 5e-4 apart, closer than the slow-point radius but not the fixed one,
    # and slow points around them with lower index
    states = np.array([[0.0], [5e-4], [2.5e-4], [1e-4]])
    q = np.array([1e-20, 1e-20, 1e-10, 1e-11])
    keep, merged, is_fixed = deduplicate_kinds(states, q, np.ones(4, np.int64), opt)
    assert sorted(keep.tolist()) == [0, 1]
    assert is_fixed.all()
    assert merged.sum() == 4
    # only slow points, or only fixed points
    keep, _, is_fixed = deduplicate_kinds(states[2:], q[2:], np.ones(2, np.int64), opt)
    assert keep.tolist() == [1]
    assert not is_fixed.any()
    keep, _, is_fixed = deduplicate_kinds(states[:2], q[:2], np.ones(2, np.int64), opt)
    assert len(keep) == 2
    assert is_fixed.all()


def test_merge_absorbs_a_slow_point_into_a_new_fixed_point():
    def points(states, q):
        n = len(q)
        return FixedPoints(
            network=np.zeros(n, np.int64),
            condition=np.zeros(n, np.int64),
            state=np.asarray(states, float),
            q=np.asarray(q, float),
            kind=np.where(np.asarray(q) < 1e-12, FIXED, SLOW).astype(object),
            n_merged=np.ones(n, np.int64),
            x_star=np.zeros((1, 1)),
            candidate_q=np.zeros((1, 1, 1)),
            stats={"n_fixed": np.array([1]), "n_slow": np.array([1])},
        )

    old = points([[0.0], [1.0]], [1e-20, 1e-9])  # fixed at 0, slow at 1
    new = points([[1.0005], [3.0]], [1e-25, 1e-24])  # the slow point is really fixed at 1.0005
    merged = old.merge(new)
    assert merged.kind.tolist() == [FIXED, FIXED, FIXED]
    np.testing.assert_allclose(merged.state[:, 0], [0.0, 1.0005, 3.0])
    assert merged.n_merged.tolist() == [1, 1, 0]  # merged-in points add no start
    assert merged.stats["n_fixed"].tolist() == [3]
    assert merged.stats["n_slow"].tolist() == [0]


def test_dedup_resolution_keeps_distinct_close_fixed_points():
    # h' = h + a + h² with a = -(d/2)²: two true fixed points ±d/2 (λ = 1 ± d), d apart.
    # The dedup radius is dedup_tol * (1 + max|h|) ≈ 1e-4: points 3e-4 apart are two points
    # (as they were with the former 1e-6); points 5e-5 apart are one (closer than the
    # premerge radius, which already merged such candidates before the polish).
    for d, n_expected in ((3e-4, 2), (5e-5, 1)):
        params = {
            "a": torch.tensor([[-((d / 2) ** 2)]], dtype=torch.float64),
            "W_out": torch.ones(1, 1, 1, dtype=torch.float64),
            "b_out": torch.zeros(1, 1, dtype=torch.float64),
        }
        starts = np.concatenate([np.linspace(-3 * d, -d / 2, 8), np.linspace(d / 2, 3 * d, 8)])
        opt = FinderOptions(premerge_tol=None, escape=None, gradient_steps=0)
        fp = find_fixed_points(Ghost(), params, [0.0], starts[:, None], opt)
        fixed = np.sort(fp.state[fp.kind == FIXED, 0])
        assert len(fixed) == n_expected, (d, fixed)
        if n_expected == 2:
            # polish stop |F(h)-h| < 1.41e-12 over |1-λ| = d = 3e-4: 4.7e-9
            np.testing.assert_allclose(fixed, [-d / 2, d / 2], rtol=0, atol=5e-9)


def test_the_order_of_fixed_points_does_not_depend_on_rounding():
    """A polished fixed point's q is rounding noise: the list must not be ordered by it.

    On an Intel Xeon the committed reference networks' fixed points came out in another order
    than on the AMD EPYC that wrote the reference (``test_task_analysis_reference.py``): they
    were listed by increasing ``q`` ~ 1e-30. The same points, given in another order and with
    other noise in ``q`` (and ~1e-15 in position), must be listed identically; slow points
    (``q`` above ``q_tol``, a real speed) still follow the fixed ones by increasing ``q``.
    """
    rng = np.random.default_rng(3)
    opt = FinderOptions()
    fixed = rng.normal(size=(12, 5))
    slow = rng.normal(size=(3, 5)) + 10.0
    states = np.vstack([fixed, fixed, slow])  # every fixed point found twice
    slow_q = np.array([3e-7, 1e-8, 2e-6])
    lists = []
    for _ in range(5):
        noise = rng.normal(scale=1e-15, size=states.shape)
        q = np.concatenate([10.0 ** rng.uniform(-32, -26, size=24), slow_q])
        perm = rng.permutation(len(states))
        keep, merged, is_fixed = deduplicate_kinds(
            (states + noise)[perm], q[perm], np.ones(len(states), np.int64), opt
        )
        lists.append(((states + noise)[perm][keep], merged, is_fixed))
    first_states, first_merged, first_fixed = lists[0]
    assert first_fixed.tolist() == [True] * 12 + [False] * 3
    np.testing.assert_array_equal(first_merged, [2] * 12 + [1] * 3)
    np.testing.assert_allclose(first_states[12:], slow[np.argsort(slow_q)], atol=1e-12)
    for st_, merged, is_fixed in lists[1:]:
        np.testing.assert_allclose(st_, first_states, atol=1e-12)
        np.testing.assert_array_equal(merged, first_merged)
        np.testing.assert_array_equal(is_fixed, first_fixed)
    # symmetric pairs (a network odd in h has fixed points ±h) are not a tie
    pair = np.vstack([fixed[:1], -fixed[:1]])
    orders = {
        tuple(np.sign(pair[perm][deduplicate_kinds(pair[perm], np.full(2, 1e-30),
                                                   np.ones(2, np.int64), opt)[0], 0]))
        for perm in ([0, 1], [1, 0])
    }  # fmt: skip
    assert len(orders) == 1
