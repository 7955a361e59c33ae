"""The probe flow and flow distances (``rnnzoo_dynamics.flow``)."""

from __future__ import annotations

import numpy as np
import torch

from rnnzoo_dynamics.fixed_points import FIXED, SLOW, FinderOptions, FixedPoints
from rnnzoo_dynamics.flow import nearest_distance, probe_flow
from rnnzoo_dynamics.initial_states import trajectories
from rnnzoo_dynamics.sine import representative_points, sine_frequencies
from rnnzoo_dynamics.testing import LinearCell

torch.set_num_threads(1)


def _rotation_network(decay: float = 0.95):
    """3 units: a decaying rotation in units 1-2 driven by input 0; unit 3 never moves."""
    cell = LinearCell(3, 2, 1)
    a = 2 * np.pi * 0.05
    W_h = np.zeros((3, 3))
    W_h[:2, :2] = decay * np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    W_x = np.zeros((2, 3))
    W_x[0, 0] = 1.0  # the time-varying input
    W_x[1, 1] = 0.5  # the static (condition) input
    params = {
        "W_h": W_h,
        "W_x": W_x,
        "b": np.zeros(3),
        "W_out": np.ones((3, 1)),
        "b_out": np.zeros(1),
    }
    return cell, {k: torch.as_tensor(v)[None] for k, v in params.items()}


def _points(states, condition, x_star, kind=None, q=None) -> FixedPoints:
    n = len(states)
    return FixedPoints(
        network=np.zeros(n, dtype=np.int64),
        condition=np.asarray(condition, dtype=np.int64),
        state=np.asarray(states, dtype=np.float64),
        q=np.zeros(n) if q is None else np.asarray(q, dtype=np.float64),
        kind=np.full(n, FIXED, dtype=object) if kind is None else np.asarray(kind, object),
        n_merged=np.ones(n, dtype=np.int64),
        x_star=np.asarray(x_star, dtype=np.float64),
        candidate_q=np.zeros((1, np.asarray(x_star).shape[0], 1)),
        stats={},
        options=FinderOptions(),
    )


def _inputs(scale: float = 1.0) -> np.ndarray:
    """Two trials of 40 steps: a pulse train on input 0, the static input 1 on."""
    x = np.zeros((2, 40, 2))
    x[0, :10, 0] = scale
    x[1, 5:8, 0] = -2 * scale
    x[:, :, 1] = scale
    return x


def test_a_visited_state_is_at_distance_zero_and_far_points_scale_with_r():
    cell, params = _rotation_network()
    x_star = np.array([[0.0, 1.0]])
    traj = trajectories(cell, params, _inputs()).numpy()  # (1, 2, 40, 3)
    visited = traj[0].reshape(-1, 3)
    radius = np.sqrt(((visited - visited.mean(0)) ** 2).sum(1).mean())
    on = visited[17]
    off = on + np.array([0.0, 0.0, 4.0])  # unit 3 is 0 on every state of the flow
    flow = probe_flow(cell, params, traj, _points([on, off], [0, 0], x_star))
    np.testing.assert_allclose(flow.radius, [[radius]], rtol=1e-12)
    assert flow.distance[0] < 1e-12
    np.testing.assert_allclose(flow.distance[1], 4.0 / radius, rtol=1e-12)
    # a linear network: everything twice as large -> the same relative distances
    traj2 = trajectories(cell, params, _inputs(2.0)).numpy()
    flow2 = probe_flow(cell, params, traj2, _points([2 * on, 2 * off], [0, 0], 2 * x_star))
    np.testing.assert_allclose(flow2.radius, 2 * flow.radius, rtol=1e-12)
    np.testing.assert_allclose(flow2.distance, flow.distance, atol=1e-12)


def test_the_flow_continues_under_the_static_input():
    cell, params = _rotation_network()
    x_star = np.array([[0.0, 1.0]])
    traj = trajectories(cell, params, _inputs()).numpy()
    # where the first trial's end state goes after 30 steps without the pulses
    h = torch.as_tensor(traj[:, 0, -1])[:, None]
    x = torch.as_tensor(x_star)[None]
    for _ in range(30):
        h = cell.step(params, h, x)
    later = h[0, 0].numpy()
    assert np.linalg.norm(traj[0].reshape(-1, 3) - later, axis=1).min() > 0.1
    pts = _points([later], [0], x_star)
    assert probe_flow(cell, params, traj, pts, steps=0).distance[0] > 0.05
    assert probe_flow(cell, params, traj, pts, steps=30).distance[0] < 1e-12


def test_conditions_use_their_own_trials_and_static_input():
    cell, params = _rotation_network()
    x_star = np.array([[0.0, 1.0], [0.0, -1.0]])
    inputs = np.concatenate([_inputs(), _inputs()])
    inputs[2:, :, 1] = -1.0  # trials 2-3 belong to condition 1
    traj = trajectories(cell, params, inputs).numpy()
    groups = [np.array([0, 1]), np.array([2, 3])]
    s0, s1 = traj[0, 0, 20], traj[0, 2, 20]
    pts = _points([s0, s1, s0], [0, 1, 1], x_star)
    flow = probe_flow(cell, params, traj, pts, groups)
    assert flow.distance[0] < 1e-12
    assert flow.distance[1] < 1e-12
    # condition 0's state measured against condition 1's flow, by hand
    W_h, W_x = params["W_h"][0].numpy(), params["W_x"][0].numpy()
    h = traj[0, 2:].reshape(-1, 3)
    visited, flow_states = h, [h]
    for _ in range(100):
        h = h @ W_h + x_star[1] @ W_x
        flow_states.append(h)
    radius = np.sqrt(((visited - visited.mean(0)) ** 2).sum(1).mean())
    expected = np.linalg.norm(np.concatenate(flow_states) - s0, axis=1).min() / radius
    assert expected > 0.01
    np.testing.assert_allclose(flow.distance[2], expected, rtol=1e-10)
    assert flow.radius.shape == (1, 2)


def test_nearest_distance_is_exact_where_the_expansion_cancels():
    """Far from the origin, near and equal points: the expansion |a|^2+|b|^2-2ab loses half
    the digits (~sqrt(eps)|a| = 1.5e-5 at |a| = 1e3); the direct differences do not."""
    rng = np.random.default_rng(0)
    P, m, n, S = 3, 7, 200, 16
    states = 1e3 + rng.normal(size=(P, n, S))
    points = states[:, rng.choice(n, m, replace=False)].copy()
    points[:, :3] += rng.normal(scale=1e-9, size=(P, 3, S))  # near, not on, a state
    points[:, 3:5] += rng.normal(scale=10.0, size=(P, 2, S))  # far from every state
    valid = rng.random((P, n)) < 0.9
    valid[2] = False  # a network without a valid state
    got = nearest_distance(torch.as_tensor(points), torch.as_tensor(states), torch.as_tensor(valid))
    diff = points[:, :, None, :] - states[:, None, :, :]
    brute = np.where(valid[:, None, :], np.sqrt((diff**2).sum(-1)), np.inf).min(-1)
    # direct differences of numbers ~1e3: each distance is exact to a few ulps of |a|
    # (eps * 1e3 = 2e-13 absolute), far below the 1e-9 offsets it must resolve
    np.testing.assert_allclose(got.numpy()[:2], brute[:2], rtol=1e-12, atol=1e-11)
    assert np.isinf(got.numpy()[2]).all()
    on_state = brute[:2, 5:] == 0  # points picked exactly on a valid state
    assert (got.numpy()[:2, 5:][on_state] == 0).all()


def test_a_network_without_finite_states_has_infinite_distance():
    cell, params = _rotation_network()
    traj = np.full((1, 1, 5, 3), np.nan)
    flow = probe_flow(cell, params, traj, _points([[0.0, 0, 0]], [0], [[0.0, 1.0]]))
    assert np.isinf(flow.distance).all()


def test_representative_points_preference_order():
    x_star = np.zeros((1, 2))
    states = np.array([[0.0, 0], [1.0, 0], [2.0, 0], [3.0, 0], [4.0, 0]])
    kind = [SLOW, FIXED, SLOW, FIXED, FIXED]
    q = [1e-8, 1e-20, 1e-9, 1e-25, 1e-30]
    dist = np.array([0.1, 3.0, 0.5, 0.2, 1.9])
    pts = _points(states, [0] * 5, x_star, kind, q)
    centre = np.array([[[0.0, 0.0]]])
    # fixed points near the orbit first (rows 3, 4), the nearest to the centre of those
    assert representative_points(pts, 1, centre, dist, 2.0).tolist() == [[3]]
    # without centres: the first listed (a fixed point's q, 1e-25 or 1e-30, is rounding
    # noise: choosing by it chose by CPU)
    assert representative_points(pts, 1, None, dist, 2.0).tolist() == [[3]]
    # no fixed point near: slow near (rows 0, 2) before fixed far (row 1)
    far = dist.copy()
    far[[3, 4]] = 5.0
    assert representative_points(pts, 1, centre, far, 2.0).tolist() == [[0]]
    # nothing near: fixed far (rows 1, 3, 4; row 1 nearest the centre) before slow far
    assert representative_points(pts, 1, centre, dist + 10, 2.0).tolist() == [[1]]
    only_slow = pts.select(np.array([True, False, True, False, False]))
    assert representative_points(only_slow, 1, centre, dist[[0, 2]] + 10, 2.0).tolist() == [[0]]
    # without flow distances every point is near: fixed first (row 1 nearest the centre)
    assert representative_points(pts, 1, centre).tolist() == [[1]]
    # a condition without points: -1
    assert representative_points(pts, 2, None, dist).tolist() == [[3, -1]]
    # slow points only, without centres: the slowest (their q is a real speed)
    assert representative_points(only_slow, 1, None, dist[[0, 2]] + 10, 2.0).tolist() == [[1]]


def test_sine_counts_points_near_the_orbit():
    from types import SimpleNamespace

    x_star = np.zeros((2, 1))
    states = np.arange(6, dtype=float)[:, None]
    kind = [FIXED, FIXED, SLOW, FIXED, FIXED, SLOW]
    cond = [0, 0, 0, 0, 1, 1]
    dist = np.array([0.5, 1.0, 0.1, 7.0, 0.3, 9.0])
    pts = _points(states, cond, x_star, kind, [0, 0, 1e-9, 0, 0, 1e-8])
    lam = np.tile([0.99 * np.exp(2j * np.pi * 0.02), 0.99 * np.exp(-2j * np.pi * 0.02)], (6, 1))
    lin = SimpleNamespace(eig=SimpleNamespace(eigenvalues=lam))
    ds = sine_frequencies(pts, lin, np.array([0.02, 0.03]), ["n"], flow_distance=dist)
    assert ds["n_points"].values.tolist() == [[2, 1]]
    assert ds["n_slow_points"].values.tolist() == [[1, 1]]
    assert ds["n_far_points"].values.tolist() == [[1, 0]]
    assert ds["n_points_all"].values.tolist() == [[4, 2]]
    assert ds["point_kind"].values.tolist() == [["fixed", "fixed"]]
    np.testing.assert_allclose(ds["point_flow_distance"].values, [[0.5, 0.3]])
    assert ds.attrs["near_orbit_distance"] == 2.0
