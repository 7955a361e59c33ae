"""Newton's method for the DSA search's float64 stage (rnnzoo_metrics.dsa_newton).

The Hessian is checked against central differences of f(exp(Omega) C) (the map the search
moves by), the commutators against their definition, and the polish against the gradient
ascent it replaces: the same maxima, f never lower than where it started, and the starts
it cannot finish (saddles) handed back, not reported as converged.
"""

import numpy as np
import pytest
from scipy.linalg import expm

from rnnzoo_metrics import dsa as D
from rnnzoo_metrics import dsa_newton as N


def _random_pairs(p, r, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(p, r, r))
    b = rng.normal(size=(p, r, r))
    c = np.linalg.qr(rng.normal(size=(p, r, r)))[0]
    return a, b, c


def _f(a, b, c):
    return float(np.sum(a * (c @ b @ c.T)))


def _skew(x, r):
    return N.skew_from_coordinates(x[None], r)[0]


@pytest.mark.parametrize("r", [2, 3, 6])
def test_commutators_are_x_e_minus_e_x_in_an_orthonormal_skew_basis(r):
    a, _, _ = _random_pairs(3, r, 0)
    z = N.commutators(a)
    k_count = r * (r - 1) // 2
    assert z.shape == (3, k_count, r * r)
    assert z.dtype == np.float32
    basis = [_skew(np.eye(k_count)[k], r) for k in range(k_count)]
    gram = np.array([[np.sum(e * f) for f in basis] for e in basis])
    np.testing.assert_allclose(gram, np.eye(k_count), atol=1e-15)  # orthonormal
    for p in range(3):
        for k, e in enumerate(basis):
            want = (a[p] @ e - e @ a[p]).ravel()
            np.testing.assert_allclose(z[p, k], want, rtol=0, atol=1e-6 * np.abs(a).max())


@pytest.mark.parametrize("r", [2, 4, 7])
def test_gradient_and_hessian_match_finite_differences_of_f_along_exp(r):
    # f(exp(sum x_k E_k) C): gradient by central differences (step 1e-5: error ~1e-10),
    # Hessian by the four-point formula (step 1e-4: error ~1e-8 + float32 rounding ~1e-7
    # of its norm, the Hessian's stated precision)
    a, b, c = _random_pairs(2, r, r)
    k_count = r * (r - 1) // 2
    m = c @ b @ np.swapaxes(c, 1, 2)
    _, _, om = N._value_and_gradient(a, np.swapaxes(a, 1, 2).copy(), b, c)
    g = N.skew_coordinates(om)
    h = N.hessian(N.commutators(a), m)
    np.testing.assert_allclose(h, np.swapaxes(h, 1, 2), atol=0)
    for p in range(2):

        def f_at(x, p=p):
            return _f(a[p], b[p], expm(_skew(x, r)) @ c[p])

        unit = np.eye(k_count)
        e1 = 1e-5
        g_fd = np.array([(f_at(e1 * u) - f_at(-e1 * u)) / (2 * e1) for u in unit])
        np.testing.assert_allclose(g[p], g_fd, rtol=0, atol=1e-8)
        e2 = 1e-4
        h_fd = np.array(
            [
                [
                    (
                        f_at(e2 * (u + v))
                        - f_at(e2 * (u - v))
                        - f_at(e2 * (v - u))
                        + f_at(-e2 * (u + v))
                    )
                    / (4 * e2 * e2)
                    for v in unit
                ]
                for u in unit
            ]
        )
        scale = np.abs(h_fd).max()
        np.testing.assert_allclose(h[p], h_fd, rtol=0, atol=1e-6 * scale)


def _near_maxima(p, r, seed, gtol32=1e-4):
    """Pairs ascended by the search's own float32 gradient ascent to ||Omega|| < 1e-4: the
    float64 stage's input."""
    a, b, c = _random_pairs(p, r, seed)
    a, b = D._search_form(a), D._search_form(b)
    _, c32, _ = D._ascend(
        a.astype(np.float32), b.astype(np.float32), c.astype(np.float32), 500, gtol32
    )
    return a, b, D._newton_schulz(c32.astype(np.float64), 2)


def test_newton_reaches_the_maximum_the_gradient_ascent_reaches_in_a_few_steps():
    a, b, c = _near_maxima(60, 8, 1)
    f0 = np.einsum("pij,pij->p", a, c @ b @ np.swapaxes(c, 1, 2))
    f, cn, steps, converged = N.newton_polish(a, b, c, 1e-10)
    f_bb, c_bb, _ = D._ascend(a, b, c, 5000, 1e-10)
    ok = converged
    assert ok.mean() > 0.8  # the others are handed back (saddles, degenerate ridges)
    assert np.all(f >= f0)  # never down
    # from the float32 stop both methods end on the same maximum (the gradient ascent's
    # non-monotone steps may, rarely and depending on rounding, carry a start to another
    # one: so "nearly always", not "always"), with the same value to rounding
    same = ok & (np.linalg.norm(cn - c_bb, axis=(1, 2)) < 1e-4)
    assert same.sum() >= 0.9 * ok.sum()
    np.testing.assert_allclose(f[same], f_bb[same], rtol=0, atol=1e-12)
    assert np.median(steps[ok]) <= 4
    # converged means a float64 critical point, C orthogonal
    _, _, om = N._value_and_gradient(a, np.swapaxes(a, 1, 2).copy(), b, cn)
    assert np.linalg.norm(om[ok], axis=(1, 2)).max() < 1e-10
    np.testing.assert_allclose(
        np.swapaxes(cn, 1, 2) @ cn, np.broadcast_to(np.eye(8), cn.shape), atol=1e-12
    )


def test_a_saddle_is_handed_back_not_reported_as_converged():
    # symmetric A = B = diag(3, 2, 1, -6)/|.|: f(C) = sum_ij lambda_i lambda_j C_ij^2, whose
    # critical points include the permutations; C = the swap of the first two coordinates
    # is a saddle (swapping them back raises f; other swaps lower it). Started just off it,
    # Newton finds -H not positive definite, damps, and either climbs off the saddle or
    # hands the start back: it must not stop there and call it converged
    d = np.diag([3.0, 2.0, 1.0, -6.0])
    d /= np.linalg.norm(d)
    swap = np.eye(4)[[1, 0, 2, 3]]
    eps = _skew(np.full(6, 1e-5), 4)
    c = expm(eps) @ swap
    f, cn, _, converged = N.newton_polish(d[None], d[None], c[None], 1e-10)
    assert f[0] >= _f(d, d, c)
    if converged[0]:
        h = N.hessian(N.commutators(d[None]), (cn @ d @ cn[0].T)[None].reshape(1, 4, 4))
        assert np.linalg.eigvalsh(h[0]).max() < 1e-8  # a maximum, not the saddle
        assert f[0] > _f(d, d, swap) + 1e-3


def test_the_search_reaches_the_same_values_as_with_the_gradient_ascent_polish(monkeypatch):
    # the float64 stage by Newton against the old one (the gradient ascent to gtol from the
    # same float32 points): the same values, to what the ascent leaves (it stops at gtol on
    # ridges with Hessian eigenvalues ~1e-3, so ~gtol^2 / 1e-3 below their top)
    rng = np.random.default_rng(5)
    ops = [D.prepare_operator(rng.normal(size=(6, 6))) for _ in range(8)]
    i, j = np.triu_indices(8, 1)
    oa, ob = [ops[k] for k in i], [ops[k] for k in j]
    for search in ("fast", "thorough"):
        new = D.procrustes_vector_fields(oa, ob, search=search)

        def ascent(a, b, c, max_iter, gtol):
            _, c, steps = D._ascend(a, b, c, max_iter, gtol)
            return c, steps

        with monkeypatch.context() as mp:
            mp.setattr(D, "_polish", ascent)
            old = D.procrustes_vector_fields(oa, ob, search=search)
        if search == "thorough":  # sixteen starts polished: the pair's best maximum
            assert np.all(new.cosine >= old.cosine - 1e-12)
            np.testing.assert_allclose(new.cosine, old.cosine, rtol=0, atol=1e-7)
        else:  # two: a saddle left one way or the other may end on another maximum
            assert np.mean(np.abs(new.cosine - old.cosine) < 1e-7) >= 0.9
