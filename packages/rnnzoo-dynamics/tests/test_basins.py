"""Boundary starts: saddles between attractors that trajectory seeding misses."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from rnnzoo_dynamics.analyze import options_json
from rnnzoo_dynamics.basins import (
    BOUNDARY_CAP,
    add_boundary_points,
    boundary_starts,
    subset_means,
)
from rnnzoo_dynamics.fixed_points import FIXED, find_fixed_points
from rnnzoo_dynamics.linearize import linearize
from rnnzoo_dynamics.population import AnalysisOptions
from rnnzoo_dynamics.testing import TanhCell, diagonal_tanh_fixed_points, diagonal_tanh_params


def corner_starts(truth, n_unstable, n, noise, seed=0):
    """Starts near the stable points only, as trajectories of a trained flip-flop are."""
    rng = np.random.default_rng(seed)
    corners = truth[n_unstable == 0]
    pick = rng.integers(0, len(corners), size=n)
    return corners[pick] + noise * rng.normal(size=(n, truth.shape[1]))


def test_subset_means_order_and_count():
    pts = np.random.default_rng(0).normal(size=(8, 5))
    m = subset_means(pts)
    assert len(m) == 2**8 - 8 - 1 == 247  # every subset of two or more, under the cap
    np.testing.assert_allclose(m[0], pts.mean(0))  # centroid first
    np.testing.assert_allclose(m[1], pts[[0, 1]].mean(0))  # then pairs
    np.testing.assert_allclose(m[28], pts[[6, 7]].mean(0))
    np.testing.assert_allclose(m[29], pts[[0, 1, 2]].mean(0))  # then triples
    assert subset_means(pts[:1]).shape == (0, 5)  # one stable point: nothing to add
    assert subset_means(pts[:0]).shape == (0, 5)
    assert subset_means(pts[:2]).shape == (1, 5)  # two: their midpoint


def test_cap_is_respected_and_bounds_the_cost():
    pts = np.random.default_rng(1).normal(size=(40, 3))  # 2^40 subsets
    t0 = time.perf_counter()
    m = subset_means(pts)
    assert time.perf_counter() - t0 < 5.0
    assert len(m) == BOUNDARY_CAP
    np.testing.assert_allclose(m[0], pts.mean(0))
    assert len(subset_means(pts, cap=10)) == 10
    assert len(subset_means(pts, cap=0)) == 0
    with pytest.raises(ValueError, match="cap must be >= 0"):
        subset_means(pts, cap=-1)
    # per (network, condition), padded with NaN to the largest count
    states = np.concatenate([pts, pts[:3], pts[:1]])
    network = np.array([0] * 40 + [1] * 3 + [1])
    condition = np.array([0] * 40 + [0] * 3 + [1])
    starts, counts = boundary_starts(states, network, condition, np.ones(44, bool), 2, 2, cap=100)
    assert counts.tolist() == [[100, 0], [4, 0]]
    assert starts.shape == (2, 2, 100, 3)
    assert np.isfinite(starts[1, 0, :4]).all()
    assert np.isnan(starts[1, 0, 4:]).all()
    assert np.isnan(starts[:, 1]).all()


def _bistable_cube(n_starts: int):
    """3 decoupled bistable units (27 fixed points) seeded near the 8 stable corners only."""
    w = np.array([2.0, 1.6, 3.0])
    b = np.array([0.1, -0.05, 0.0])
    truth, n_unstable = diagonal_tanh_fixed_points(w, b)
    cell = TanhCell(3, 1, 3)
    params = diagonal_tanh_params(w, b)
    starts = corner_starts(truth, n_unstable, n_starts, noise=0.05)
    points = find_fixed_points(cell, params, [0.0], starts)
    return cell, params, truth, starts, points, linearize(cell, params, points)


def test_centre_and_face_saddles_missed_by_seeding_are_found_with_boundary_starts():
    # 3 decoupled bistable units: 27 fixed points, 8 stable corners, 12/6/1 saddles
    cell, params, truth, starts, points, lin = _bistable_cube(512)
    # trajectory-like seeding finds the attractors only: every saddle is missed
    assert len(points) == 8
    assert (lin.n_unstable == 0).all()

    new, new_lin, gained = add_boundary_points(cell, params, [0.0], points, lin, starts)
    assert gained.tolist() == [19]
    assert (new.kind == FIXED).all()
    assert len(new) == 27
    dist = np.linalg.norm(new.state[:, None] - truth[None], axis=-1)
    assert dist.min(1).max() < 1e-10
    assert sorted(dist.argmin(1).tolist()) == list(range(27))  # each true point once
    assert np.bincount(new_lin.n_unstable).tolist() == [8, 12, 6, 1]
    # every first-pass point is still there
    d_old = np.linalg.norm(points.state[:, None] - new.state[None], axis=-1)
    assert d_old.min(1).max() < 1e-10


def test_cap_limits_what_boundary_starts_can_find():
    cell, params, truth, starts, points, lin = _bistable_cube(256)
    # cap 1: the centroid of the 8 corners only, i.e. the 3-unstable centre saddle
    new, new_lin, gained = add_boundary_points(cell, params, [0.0], points, lin, starts, cap=1)
    assert gained.tolist() == [1]
    assert sorted(new_lin.n_unstable.tolist()) == [0] * 8 + [3]


def test_two_attractors_midpoint_saddle_uses_the_networks_region():
    # unit 1 bistable, unit 2 monostable: two stable points and one saddle between them
    w = np.array([2.5, 0.5])
    b = np.array([0.15, 0.2])  # the saddle is off the midpoint of the attractors
    truth, n_unstable = diagonal_tanh_fixed_points(w, b)
    assert len(truth) == 3
    cell = TanhCell(2, 1, 2)
    params = diagonal_tanh_params(w, b)
    starts = corner_starts(truth, n_unstable, 128, noise=0.02, seed=3)
    points = find_fixed_points(cell, params, [0.0], starts)
    lin = linearize(cell, params, points)
    assert len(points) == 2
    # one extra start (the midpoint): its region of interest must be the first pass's
    new, new_lin, gained = add_boundary_points(cell, params, [0.0], points, lin, starts)
    assert gained.tolist() == [1]
    saddle = new.state[new_lin.n_unstable == 1]
    np.testing.assert_allclose(saddle, truth[n_unstable == 1], atol=1e-10)
    # from its own single start the region would be a point and the candidate dropped
    alone = find_fixed_points(cell, params, [0.0], truth[n_unstable == 0].mean(0)[None])
    assert len(alone) == 0
    assert alone.stats["n_escaped"].tolist() == [1]


def test_monostable_conditions_and_networks_get_nothing():
    # per-network population: network 0 monostable, network 1 bistable; two conditions
    cell = TanhCell(1, 1, 1)
    params = {
        "W_h": np.array([[[0.5]], [[2.0]]]),
        "W_x": np.array([[[1.0]], [[1.0]]]),
        "b": np.zeros((2, 1)),
        "W_out": np.ones((2, 1, 1)),
        "b_out": np.zeros((2, 1)),
    }
    params = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in params.items()}
    x_star = np.array([[0.0], [3.0]])  # a large input makes the bistable unit monostable
    rng = np.random.default_rng(0)
    starts = np.sign(rng.normal(size=(64, 1))) * 0.95 + 0.01 * rng.normal(size=(64, 1))
    points = find_fixed_points(cell, params, x_star, starts)
    lin = linearize(cell, params, points)
    stable = (points.kind == FIXED) & (lin.stability == "stable")
    extra, counts = boundary_starts(points.state, points.network, points.condition, stable, 2, 2)
    assert counts.tolist() == [[0, 0], [1, 0]]  # only network 1 under x* = 0
    new, _, gained = add_boundary_points(cell, params, x_star, points, lin, starts)
    assert gained.tolist() == [0, 1]
    assert np.abs(new.state[(new.network == 1) & (new.condition == 0)]).min() < 1e-10


def test_option_is_on_by_default_and_recorded_in_the_stored_options():
    opt = AnalysisOptions()
    assert opt.boundary is True
    assert opt.boundary_cap == BOUNDARY_CAP == 256
    stored = json.loads(options_json(opt))
    assert stored["boundary"] is True
    assert stored["boundary_cap"] == 256
    assert options_json(AnalysisOptions(boundary=False)) != options_json(opt)
