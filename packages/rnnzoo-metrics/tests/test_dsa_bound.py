"""The certified lower bound on the DSA angle (rnnzoo_metrics.dsa_bound).

The bound is ``f(C) + n max(0, -lambda_min(M(D)))``: valid for any orthogonal C and any
symmetric D by weak duality, so "valid" assertions allow only rounding (1e-10 on values of
order 1: the 100 x 100 eigenvalue problem's backward error is ~1e-14, and the slack the
function adds is ~1e-12). Whether it is *tight* depends on the Newton iterations finding a
D with ``lambda_min >= 0`` off ``vec(I)``: checked against closed forms and against an
independent semidefinite solver (Clarabel, whose stored dual optima are accurate to ~1e-8:
hence 1e-6 there).
"""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import ortho_group

from rnnzoo_metrics import MetricsError
from rnnzoo_metrics import dsa as D
from rnnzoo_metrics import dsa_bound as B


def unit_traceless(a):
    a = a - np.trace(a) / len(a) * np.eye(len(a))
    return a / np.linalg.norm(a)


def f_of(a, b, c):
    return float(np.sum(a * (c @ b @ c.T)))


def test_newton_data_are_the_traces_they_stand_for():
    rng = np.random.default_rng(0)
    n = 3
    w = rng.normal(size=(n * n, n * n))
    d1, d2 = (lambda x: x + x.T)(rng.normal(size=(n, n))), rng.normal(size=(n, n))
    eye = np.eye(n)
    g, h = B._newton_data(w, n)
    l1, l2 = B._lift(d1, eye), B._lift(d2, eye)
    assert abs(np.sum(g * d1) - np.trace(w @ l1)) < 1e-12
    assert abs(np.einsum("xyuv,xy,uv->", h, d1, d2) - np.trace(w @ l1 @ w @ l2)) < 1e-12


def test_symmetric_operators_certified_at_the_eigenvalue_optimum_and_not_elsewhere():
    """For symmetric A, B the maximum of <A, C B C^T> is sum_i l_i(A) l_i(B) (both sorted):
    the bound meets it at the aligned eigenbases; at the reversed alignment (a stationary
    point, the minimum) it still bounds the maximum and the gap is wide open."""
    rng = np.random.default_rng(1)
    n = 5
    qa, qb = ortho_group.rvs(n, random_state=2), ortho_group.rvs(n, random_state=3)
    la, lb = np.sort(rng.normal(size=n)), np.sort(rng.normal(size=n))
    a = unit_traceless(qa @ np.diag(la) @ qa.T)
    b = unit_traceless(qb @ np.diag(lb) @ qb.T)
    wa, va = np.linalg.eigh(a)
    wb, vb = np.linalg.eigh(b)
    best = float(np.sum(wa * wb))
    f, up = B.dual_bound(a, b, va @ vb.T)
    assert abs(f - best) < 1e-12
    assert abs(up - best) < 1e-10  # certified
    f_min, up_min = B.dual_bound(a, b, va[:, ::-1] @ vb.T)
    assert f_min < best - 0.5
    assert up_min >= best - 1e-10  # still a valid bound on the maximum
    assert up_min - f_min > 0.5  # and not a certificate of the minimum


def test_a_similarity_transformed_copy_is_certified_at_distance_zero():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(6, 6)) / 3 + 0.5 * np.eye(6)
    q = ortho_group.rvs(6, random_state=5)
    oa, ob = D.prepare_operator(a), D.prepare_operator(q.T @ a @ q)
    al = D.procrustes_vector_fields([oa], [ob], gtol=1e-9)  # "~0" as in test_dsa.py
    res = B.angle_bounds([oa], [ob], al.c)
    assert res.certified[0]
    assert res.angle[0] < 1e-6
    assert 0.0 <= res.lower[0] <= res.angle[0]


def sdp_pairs():
    path = Path(__file__).parent / "data" / "dsa_bound_sdp.json"
    return json.loads(path.read_text())["pairs"]


@pytest.mark.parametrize("k", range(len(sdp_pairs())))
def test_bound_never_below_the_semidefinite_optimum_and_equal_where_certified(k):
    """Any value of the bound is the objective of a feasible dual point, so it is >= the
    dual's optimum (computed independently with Clarabel); where it certifies the search's
    C, f(C) <= max f <= dual optimum <= bound pins all three together."""
    pair = sdp_pairs()[k]
    a, b, sdp = np.array(pair["a"]), np.array(pair["b"]), pair["sdp"]
    al = D.procrustes_vector_fields([D.prepare_operator(a)], [D.prepare_operator(b)])
    f, up = B.dual_bound(a, b, al.c[0])
    assert up >= sdp - 1e-6
    assert f <= sdp + 1e-6
    if up - f < 1e-9:
        assert abs(f - sdp) < 1e-6


def test_the_stored_pairs_include_certified_and_uncertified_ones():
    """So that the test above checks both branches: the rank-10 cdi pair 397 of the demo
    zoo has a duality gap (its SDP optimum lies 9e-4 above the best f found)."""
    got = []
    for pair in sdp_pairs():
        a, b = np.array(pair["a"]), np.array(pair["b"])
        al = D.procrustes_vector_fields([D.prepare_operator(a)], [D.prepare_operator(b)])
        f, up = B.dual_bound(a, b, al.c[0])
        got.append(up - f < 1e-9)
    assert any(got)
    assert not all(got)
    assert not got[-1]
    assert pair["sdp"] - f > 5e-4


def test_the_bound_is_valid_at_any_orthogonal_matrix():
    """Computed at a random (not stationary) C, the bound still exceeds f everywhere."""
    rng = np.random.default_rng(6)
    a = unit_traceless(rng.normal(size=(4, 4)) + np.eye(4))
    b = unit_traceless(rng.normal(size=(4, 4)) + np.eye(4))
    _, up = B.dual_bound(a, b, ortho_group.rvs(4, random_state=7))
    cs = ortho_group.rvs(4, size=500, random_state=8)
    assert max(f_of(a, b, c) for c in cs) <= up + 1e-10
    al = D.procrustes_vector_fields([D.prepare_operator(a)], [D.prepare_operator(b)])
    assert f_of(a, b, al.c[0]) <= up + 1e-10


def reference_pairs():
    path = Path(__file__).parent / "data" / "dsa_reference_pairs.json"
    return json.loads(path.read_text())["pairs"]


@pytest.mark.parametrize("pair", reference_pairs(), ids=lambda p: "-".join(p["networks"]))
def test_the_reference_never_ends_below_the_lower_bound(pair):
    """dsa-metric's own angle (an independent optimiser) on its own operators lies above
    the certified lower bound (1e-5 rad: its float32 score)."""
    oa, ob = D.prepare_operator(np.array(pair["a"])), D.prepare_operator(np.array(pair["b"]))
    al = D.procrustes_vector_fields([oa], [ob])
    res = B.angle_bounds([oa], [ob], al.c)
    assert pair["reference_angle"] >= res.lower[0] - 1e-5
    assert res.lower[0] <= res.angle[0]


def test_certify_pairs_over_a_small_population():
    rng = np.random.default_rng(9)
    xs = [np.cumsum(rng.normal(size=(3, 30, 4)), axis=1) * 0.1 for _ in range(3)]
    res, pairs = B.certify_pairs(xs, rank=3, n_delays=2)
    assert pairs.tolist() == [[0, 1], [0, 2], [1, 2]]
    assert res.angle.shape == res.lower.shape == res.certified.shape == (3,)
    assert np.all(res.lower <= res.angle)


def test_mismatched_inputs_are_refused():
    op = D.prepare_operator(np.eye(3) + np.triu(np.ones((3, 3)), 1))
    with pytest.raises(MetricsError, match="one entry per pair"):
        B.angle_bounds([op], [op, op], np.eye(3)[None])
    with pytest.raises(MetricsError, match="same size"):
        B.dual_bound(np.eye(3), np.eye(2), np.eye(3))


def test_an_operator_that_is_a_multiple_of_the_identity_is_certified_at_once():
    """Its traceless part is zero, so f does not depend on C: every C is optimal."""
    oa = D.prepare_operator(np.eye(3))
    ob = D.prepare_operator(np.diag([1.0, 2.0, 3.0]))
    res = B.angle_bounds([oa], [ob], ortho_group.rvs(3, random_state=10)[None])
    assert res.certified[0]
    assert np.isfinite(res.lower[0])
    assert abs(res.angle[0] - res.lower[0]) < 1e-12
