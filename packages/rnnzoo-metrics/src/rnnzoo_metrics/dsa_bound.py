"""A certified lower bound on the DSA angle: Lagrangian duality for the Procrustes search.

:func:`rnnzoo_metrics.dsa.procrustes_vector_fields` finds a local maximum of the
non-convex ``f(C) = <A, C B C^T>`` over orthogonal C; its angle ``arccos f(C)`` is an upper
bound on the DSA distance. This module gives the matching *lower* bound, from the
Lagrangian dual of the quadratic problem (a standard semidefinite relaxation of
quadratic problems over the orthogonal group, as in the Shor relaxation of the quadratic
assignment problem):

with ``x = vec(C)`` the objective is ``x^T K x``, ``K = sym(B^T kron A^T)``, and the
constraints are ``C^T C = I`` and ``C C^T = I``. For any symmetric S and T,
``x^T (S kron I + I kron T) x = tr S + tr T`` on every orthogonal C, so

    f(C') <= tr S + tr T - n lambda_min(S kron I + I kron T - K)   for every orthogonal C'.

The bound is chosen at the found C (first rotated to the identity, ``B -> C B C^T``) as
``S = H/2 + D``, ``T = H/2 - D`` with ``H = sym(A^T B + A B^T)/2`` (so that
``tr S + tr T = f(C)``: the multiplier of the first-order conditions) and the symmetric D
that maximises ``lambda_min`` on the complement of ``vec(I)`` (a small semidefinite
program, 55 unknowns at rank 10, solved by a barrier method with Newton steps). Where the
relaxation is tight at C, that ``lambda_min`` is >= 0 and the bound equals ``f(C)``: C is
then the **global** maximum, certified, and no other search (the reference's included)
can end lower. Where it is not, the bound is still valid (for any D), only looser.

The bound is computed on the search's form of the operators (traceless parts at unit
norm, :func:`rnnzoo_metrics.dsa._search_form`) and mapped back to the unit operators:
``f = tr A tr B / r + |A0| |B0| f0``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .errors import MetricsError

# a pair is certified when the bound exceeds f(C) by less, on the search's scale (traceless
# parts at unit norm). At C polished to ||Omega|| < POLISH_GTOL the bound's coupling to the
# gradient adds ~||Omega||^2 / lambda ~ 1e-15 (lambda >= 1e-5 at demo-zoo maxima); at the
# search's own stop (1e-6) it could add ~1e-7 on a flat ridge. Not an angle: near angle 0,
# arccos turns a gap of 1e-13 in f into 4.5e-7 rad.
CERTIFIED_GAP = 1e-9
POLISH_GTOL, POLISH_STEPS = 1e-10, 2000  # the float64 ascent from c before the bound


class AngleBound(NamedTuple):
    """Result of :func:`angle_bounds` for a batch of pairs."""

    angle: np.ndarray  # (pairs,) arccos f(C) of the unit operators: attained, an upper bound
    lower: np.ndarray  # (pairs,) certified lower bound on the global minimum angle
    certified: np.ndarray  # (pairs,) bool: the bound meets f(C) to CERTIFIED_GAP


def _polar(c: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(c)
    return u @ vt


def _sym(x: np.ndarray) -> np.ndarray:
    return 0.5 * (x + x.T)


def _symmetric_basis(n: int) -> np.ndarray:
    """Basis of symmetric n x n matrices (``E_ab + E_ba``, a < b, and ``E_aa``), stacked."""
    iu = np.triu_indices(n)
    basis = np.zeros((len(iu[0]), n, n))
    k = np.arange(len(iu[0]))
    basis[k, iu[0], iu[1]] = 1.0
    basis[k, iu[1], iu[0]] = 1.0
    return basis


def _lift(d: np.ndarray, eye: np.ndarray) -> np.ndarray:
    """``D kron I - I kron D``: the part of the multiplier matrix D moves."""
    return np.kron(d, eye) - np.kron(eye, d)


def _newton_data(w: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gradient ``tr(W L(D))`` and Hessian ``tr(W L(D) W L(D'))`` over matrices D.

    ``L(D) = D kron I - I kron D``, ``W`` an ``n^2 x n^2`` matrix; with column-major
    ``vec``, ``W[i + n j, k + n l] = w[i, j, k, l]``. Returns ``g`` (n, n) and ``h``
    (n, n, n, n) with ``tr(W L(D)) = sum g * D`` and
    ``tr(W L(D) W L(D')) = sum h[x, y, u, v] D[x, y] D'[u, v]``, in O(n^6) instead of the
    O(n^8) of forming every ``W L(D_k)``.
    """
    t = w.reshape(n, n, n, n, order="F")
    g = np.einsum("ijil->lj", t) - np.einsum("ijkj->ik", t)
    h11 = np.einsum("ijkl,kqis->lqsj", t, t, optimize=True)
    h12 = np.einsum("ijkl,kqrj->lqri", t, t, optimize=True)
    h21 = np.einsum("ijkl,plis->kpsj", t, t, optimize=True)
    h22 = np.einsum("ijkl,plrj->kpri", t, t, optimize=True)
    return g, h11 - h12 - h21 + h22


def dual_bound(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, *, mu_final: float = 1e-13
) -> tuple[float, float]:
    """Upper bound on ``max over orthogonal C' of <a, C' b C'^T>``, certified at ``c``.

    Parameters
    ----------
    a, b : ndarray (n, n)
        The two operators (any scale).
    c : ndarray (n, n)
        A (nearly) orthogonal matrix, e.g. the search's result; made exactly orthogonal
        (polar factor) first.
    mu_final : float
        The barrier weight at which the Newton iterations stop (the bound is valid at
        every weight; a smaller one makes it tighter where the relaxation is not).

    Returns
    -------
    f : float
        ``<a, C b C^T>`` at the orthogonalised ``c`` (attained).
    upper : float
        A valid upper bound on the global maximum: ``upper >= max f``; equal to ``f`` (to
        rounding) where the relaxation is tight at ``c``.
    """
    a = np.asarray(a, dtype=float)
    n = a.shape[0]
    if a.shape != (n, n) or np.shape(b) != (n, n) or np.shape(c) != (n, n):
        raise MetricsError("dual_bound needs three square matrices of the same size")
    c = _polar(np.asarray(c, dtype=float))
    bp = c @ np.asarray(b, dtype=float) @ c.T  # C -> I
    f = float(np.sum(a * bp))
    if n == 1:
        return f, f
    eye, big = np.eye(n), np.eye(n * n)
    k = _sym(np.kron(bp.T, a.T))
    h = _sym(a.T @ bp + a @ bp.T) / 2.0
    m_base = np.kron(h / 2.0, eye) + np.kron(eye, h / 2.0) - k
    x0 = eye.reshape(-1) / np.sqrt(n)
    m0 = m_base + np.outer(x0, x0)  # lifts vec(I), the multiplier's null direction
    basis = _symmetric_basis(n)
    sb = basis.reshape(len(basis), -1)  # (p, n^2): D = sum v_k basis_k
    scale = max(float(np.abs(m_base).max()), 1e-300)

    def matrix(v: np.ndarray, t: float) -> np.ndarray:
        return m0 + _lift(np.tensordot(v, basis, 1), eye) - t * big

    def barrier(v: np.ndarray, t: float, mu: float) -> float:
        try:
            chol = np.linalg.cholesky(matrix(v, t))
        except np.linalg.LinAlgError:
            return -np.inf
        return t + 2.0 * mu * float(np.sum(np.log(np.diag(chol))))

    v = np.zeros(len(basis))
    t = float(np.linalg.eigvalsh(m0)[0]) - scale
    mu = scale
    while mu >= mu_final * scale:
        for _ in range(40):  # Newton on t + mu logdet(M(v) - t I)
            w = np.linalg.inv(matrix(v, t))
            w2 = w @ w
            g_d, h_d = _newton_data(w, n)
            g2_d, _ = _newton_data(w2, n)
            hd = h_d.reshape(n * n, n * n)
            grad = mu * np.concatenate([sb @ g_d.reshape(-1), [1.0 / mu - np.trace(w)]])
            hess = np.empty((len(v) + 1, len(v) + 1))
            hess[:-1, :-1] = -(sb @ hd @ sb.T)
            hess[:-1, -1] = hess[-1, :-1] = sb @ g2_d.reshape(-1)
            hess[-1, -1] = -np.trace(w2)
            ew, ev = np.linalg.eigh(-mu * hess)  # D = I is a null direction: L(I) = 0
            ok = ew > ew.max() * 1e-13
            step = ev[:, ok] @ ((ev[:, ok].T @ grad) / ew[ok])
            decrement = float(grad @ step)
            p0, s = barrier(v, t, mu), 1.0
            while s > 1e-12 and barrier(v + s * step[:-1], t + s * step[-1], mu) < (
                p0 + 0.25 * s * decrement
            ):
                s *= 0.5
            v, t = v + s * step[:-1], t + s * step[-1]
            if decrement < 1e-9 * mu:
                break
        if t > 0.0:  # lambda_min >= 0 off vec(I): tight at c, no need to go further
            break
        mu *= 0.05
    m = m_base + _lift(np.tensordot(v, basis, 1), eye)
    lam = float(np.linalg.eigvalsh(m)[0])
    # eigvalsh's backward error (a few ulps of |M|), times |vec C'|^2 = n
    slack = n * (n * n * np.finfo(float).eps * float(np.linalg.norm(m)))
    return f, f + n * max(0.0, -lam) + slack


def angle_bounds(ops_a: list, ops_b: list, c: np.ndarray) -> AngleBound:
    """Certified interval ``[lower, angle]`` of the DSA angle per pair.

    Parameters
    ----------
    ops_a, ops_b : list of rnnzoo_metrics.dsa.Operator
        Prepared operators (:func:`rnnzoo_metrics.dsa.prepare_operator`), one per pair.
    c : ndarray (pairs, r, r)
        Orthogonal matrices per pair, e.g. ``procrustes_vector_fields(...).c``.

    Returns
    -------
    AngleBound
        ``angle`` is attained by ``c`` (the distance rnnzoo reports for that C); the global
        minimum angle lies in ``[lower, angle]``. ``certified`` marks the pairs whose ``c``
        lies on the global maximum's ridge: ascended on from ``c`` in float64 to a gradient
        of ``POLISH_GTOL`` (the search stops at 1e-6, where an ill-conditioned maximum's
        value can still move by ~1e-7 and, through the bound's coupling to the gradient,
        its bound by as much), the bound meets ``f`` to ``CERTIFIED_GAP``. ``angle -
        lower`` is then the search's own imprecision (and arccos's magnification of
        rounding near angle 0).
    """
    from .dsa import _ascend, _search_form

    if len(ops_a) != len(ops_b) or len(ops_a) != len(c):
        raise MetricsError("ops_a, ops_b and c must have one entry per pair")
    angle, lower = np.empty(len(c)), np.empty(len(c))
    certified = np.zeros(len(c), dtype=bool)
    for q, (oa, ob) in enumerate(zip(ops_a, ops_b, strict=True)):
        ua, ub = oa.a, ob.a
        r = ua.shape[0]
        a0, b0 = _search_form(ua[None])[0], _search_form(ub[None])[0]
        # f = tr A tr B / r + |A0| |B0| f0 on the unit operators
        base = np.trace(ua) * np.trace(ub) / r
        na = np.linalg.norm(ua - np.trace(ua) / r * np.eye(r))
        nb = np.linalg.norm(ub - np.trace(ub) / r * np.eye(r))
        cq = _polar(c[q])
        _, cp, _ = _ascend(a0[None], b0[None], cq[None], POLISH_STEPS, POLISH_GTOL)
        f0, up0 = dual_bound(a0, b0, cp[0])
        f = float(np.sum(ua * (cq @ ub @ cq.T)))
        angle[q] = np.arccos(np.clip(f, -1.0, 1.0))
        lower[q] = np.arccos(np.clip(base + na * nb * up0, -1.0, 1.0))
        lower[q] = min(lower[q], angle[q])
        certified[q] = up0 - f0 <= CERTIFIED_GAP
    return AngleBound(angle, lower, certified)


def certify_pairs(
    xs: list,
    *,
    rank: int,
    n_delays: int = 1,
    delay_interval: int = 1,
    search: str = "thorough",
    dmd: str = "havok",
) -> tuple[AngleBound, np.ndarray]:
    """DSA angle of every pair of networks with its certified interval.

    Parameters
    ----------
    xs : list of ndarray (trials, time, units)
        Trajectories, one array per network.
    n_delays, delay_interval, rank, dmd
        As for the ``dsa`` metric.
    search : {"thorough", "fast"}
        The search preset whose result is certified.

    Returns
    -------
    bound : AngleBound
        Per pair ``i < j`` (``np.triu_indices(len(xs), 1)`` order): the angle rnnzoo
        reports, its certified lower bound and whether the two agree (global optimum).
    pairs : ndarray (pairs, 2)
        The network indices of each pair.
    """
    from .dsa import dmd_operator, prepare_operator, procrustes_vector_fields

    ops = [
        prepare_operator(dmd_operator(np.asarray(x, float), n_delays, delay_interval, rank, dmd))
        for x in xs
    ]
    i, j = np.triu_indices(len(ops), 1)
    al = procrustes_vector_fields([ops[k] for k in i], [ops[k] for k in j], search=search)
    return angle_bounds([ops[k] for k in i], [ops[k] for k in j], al.c), np.column_stack([i, j])
