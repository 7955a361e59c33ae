"""Newton's method on O(r) for the last digits of the DSA search (:mod:`rnnzoo_metrics.dsa`).

The search ascends ``f(C) = <A, C B C^T>`` by gradient steps in float32 until
``||Omega||_F`` is below its preset's stop (1e-3 or 1e-4), then polishes each pair's best
starts in float64. Near a maximum the landscape is a long flat ridge (Hessian condition
~300-5,500), where Barzilai-Borwein steps needed a median ~120 more steps from 1e-4.
Newton's method does not care about the conditioning: from there it converges
quadratically, in two or three steps.

At ``C`` move by ``exp(Omega) C`` with ``Omega`` skew. With ``M = C B C^T``,

    f(exp(Omega) C) = f(C) + <G, Omega> + 1/2 <A, [Omega, [Omega, M]]> + O(|Omega|^3),

``G = skew(A M^T - M^T A)`` (the search's ``Omega``: ``skew(A^T M - M A^T)`` is the same
matrix). In the orthonormal basis ``E_k = (e_i e_j^T - e_j e_i^T) / sqrt 2`` (``i < j``) of
the skew matrices, ``g_k = <G, E_k> = sqrt 2 G_ij`` and, since ``<A, [X, Z]> =
<[A, X], Z>`` for skew ``X``, the Hessian is

    H_kl = -1/2 (<[A, E_k], [M, E_l]> + <[M, E_k], [A, E_l]>),

one ``K x r^2`` by ``r^2 x K`` product per start (``K = r(r-1)/2``), with the commutators
``[A, E_k]`` computed once per pair. The step solves ``(-H + mu I) x = g`` by Cholesky
(Levenberg-Marquardt: ``mu = 0`` where ``-H`` is positive definite, i.e. near a strict
maximum; otherwise raised until the factorisation exists and the step goes up), is capped
at ``||x|| <= 0.5`` and retracted as the search retracts (second-order exponential and
Newton-Schulz). A factor is reused (chord steps) while each step shrinks ``||Omega||`` to
``CONTRACTION`` (35%) or less. A step that does not raise ``f`` is not taken: ``mu`` grows
tenfold and the start tries again with a fresh Hessian, so ``f`` never decreases. Starts
that have not converged after ``NEWTON_STEPS`` steps (a few per cent: saddles and
degenerate ridges, where ``-H`` is singular) go on with the search's own gradient ascent in
float64.

The Hessian is checked against finite differences of ``f(exp(Omega) C)`` in the tests.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from scipy.linalg import lapack

NEWTON_STEPS = 12  # Newton steps per start at most before the gradient ascent takes over
MU_FIRST = 1e-8  # first damping tried where -H is not positive definite (H is O(1): unit operators)
MU_MAX = 1e4  # a start whose damping would exceed this is left to the gradient ascent
STEP_CAP = 0.5  # ||x|| <= STEP_CAP, as the gradient ascent caps ||tau Omega||_F
CONTRACTION = 0.35  # a chord step must shrink ||Omega|| to this share, or H is recomputed
CHUNK = 256  # starts polished together (their commutators stay in the cache)


@cache
def _commutator_index(r: int) -> tuple[np.ndarray, ...]:
    """Where the entries of ``X`` go in ``[X, E_k]`` for every k, flattened.

    ``[X, E_k] = X E_k - E_k X`` with ``E_k = (e_i e_j^T - e_j e_i^T) / sqrt 2`` has column
    ``j`` ``X[:, i]``, column ``i`` ``-X[:, j]``, row ``i`` ``-X[j, :]`` and row ``j``
    ``X[i, :]``, each over sqrt 2; rows and columns add where they cross, so each entry of
    the ``K r^2`` outputs is a signed sum of at most two entries of ``X``. Found by applying
    the definition to the unit matrices; returned as ``(destinations, sources, signs)`` of
    the first terms, then of the second ones.
    """
    k_count = r * (r - 1) // 2
    out = np.zeros((r * r, k_count, r, r))
    unit = np.eye(r * r).reshape(r * r, r, r)
    for k, (i, j) in enumerate(zip(*np.triu_indices(r, 1), strict=True)):
        e = np.zeros((r, r))
        e[i, j], e[j, i] = np.sqrt(0.5), -np.sqrt(0.5)
        out[:, k] = unit @ e - e @ unit
    linear = out.reshape(r * r, -1)  # (source, destination)
    dest1 = np.flatnonzero((linear != 0).any(axis=0))
    src1 = np.argmax(linear[:, dest1] != 0, axis=0)
    rest = linear.copy()
    rest[src1, dest1] = 0.0
    dest2 = np.flatnonzero((rest != 0).any(axis=0))
    src2 = np.argmax(rest[:, dest2] != 0, axis=0)
    sign1 = linear[src1, dest1].astype(np.float32)
    sign2 = linear[src2, dest2].astype(np.float32)
    return dest1, src1, sign1, dest2, src2, sign2


def commutators(x: np.ndarray) -> np.ndarray:
    """``[X, E_k]`` for the orthonormal basis ``E_k`` of skew matrices, per matrix, in float32.

    Parameters
    ----------
    x : ndarray, shape (p, r, r)

    Returns
    -------
    ndarray, shape (p, K, r * r), float32, ``K = r(r-1)/2``: row ``k`` is ``[X, E_k]``
    flattened.
    """
    p, r = x.shape[0], x.shape[-1]
    dest1, src1, sign1, dest2, src2, sign2 = _commutator_index(r)
    flat = x.reshape(p, r * r).astype(np.float32)
    z = np.zeros((p, (r * (r - 1) // 2) * r * r), dtype=np.float32)
    z[:, dest1] = flat[:, src1] * sign1
    z[:, dest2] += flat[:, src2] * sign2
    return z.reshape(p, -1, r * r)


def hessian(comm_a: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Hessian of ``f(exp(Omega) C)`` at ``Omega = 0`` in the basis ``E_k``, in float32.

    Float32 is enough: the Hessian only shapes the step; the gradient that sets where the
    steps end is float64. With a Hessian correct to ~1e-7 of its norm and conditioned up to
    ~1e4, each step removes all but ~1e-3 of the error, so ``gtol`` is still reached.

    Parameters
    ----------
    comm_a : ndarray, shape (p, K, r * r)
        :func:`commutators` of ``A``.
    m : ndarray, shape (p, r, r)
        ``M = C B C^T``.

    Returns
    -------
    ndarray, shape (p, K, K), symmetric, float64.
    """
    comm_m = commutators(m)
    y = np.matmul(comm_a, np.ascontiguousarray(np.swapaxes(comm_m, -1, -2)))
    return -0.5 * (y + np.swapaxes(y, -1, -2)).astype(np.float64)


def skew_coordinates(om: np.ndarray) -> np.ndarray:
    """Coordinates ``<Omega, E_k> = sqrt 2 Omega_ij`` of skew matrices: (p, K)."""
    i, j = np.triu_indices(om.shape[-1], 1)
    return np.sqrt(2.0) * om[:, i, j]


def skew_from_coordinates(x: np.ndarray, r: int) -> np.ndarray:
    """The skew matrices ``sum_k x_k E_k``: (p, r, r)."""
    i, j = np.triu_indices(r, 1)
    s = np.zeros((x.shape[0], r, r))
    s[:, i, j] = x * np.sqrt(0.5)
    s[:, j, i] = -s[:, i, j]
    return s


def _factor(h: np.ndarray, mu: np.ndarray) -> tuple[list, np.ndarray]:
    """Cholesky factors of ``-H + mu I``, raising ``mu`` until each factorisation exists.

    Returns the lower factors (``None`` where ``mu`` would exceed ``MU_MAX``) and the
    damping used. One LAPACK ``potrf`` per start: numpy's stacked ``cholesky`` is no faster
    for 45 x 45 matrices, and it cannot say which matrices are definite.
    """
    mu = mu.copy()
    neg = -h
    eye = np.eye(h.shape[-1])
    factors: list = []
    for q in range(len(h)):
        while True:
            p = neg[q] if not mu[q] else neg[q] + mu[q] * eye
            chol, info = lapack.dpotrf(p.T, lower=True, clean=False)  # p is symmetric
            if not info:
                factors.append(chol)
                break
            mu[q] = max(10.0 * mu[q], MU_FIRST)
            if mu[q] > MU_MAX:
                factors.append(None)
                break
    return factors, mu


def _value_and_gradient(
    a: np.ndarray, at: np.ndarray, b: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``f``, ``M = C B C^T`` and the skew gradient ``Omega = skew(A^T M - M A^T)``."""
    m = np.matmul(np.matmul(c, b), np.ascontiguousarray(np.swapaxes(c, -1, -2)))
    f = np.einsum("pij,pij->p", a, m)
    g = np.matmul(at, m) - np.matmul(m, at)
    return f, m, 0.5 * (g - np.swapaxes(g, -1, -2))


def _retract(s: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``exp(S) C`` to second order, made orthogonal by two Newton-Schulz steps."""
    sc = np.matmul(s, c)
    x = c + sc + 0.5 * np.matmul(s, sc)
    eye = np.eye(c.shape[-1])
    for _ in range(2):
        x = 0.5 * np.matmul(x, 3.0 * eye - np.matmul(np.swapaxes(x, -1, -2), x))
    return x


def newton_polish(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, gtol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Damped Newton ascent of ``f(C) = <A, C B C^T>`` from ``c`` until ``||Omega||_F < gtol``.

    Chord steps: a start's Hessian is factored once and reused while its steps go up (near
    a maximum it changes little over the last digits); it is computed again at the current
    point, with more damping each time, after a step that did not go up. Starts run in
    chunks of ``CHUNK``, so that their commutators (18 KB each) stay in the cache.

    Parameters
    ----------
    a, b : ndarray, shape (p, r, r), float64
        The operators (the search's form), one pair per row.
    c : ndarray, shape (p, r, r)
        Orthogonal starting points (not modified), near a maximum.
    gtol : float

    Returns
    -------
    f : ndarray (p,)
        ``f`` at the returned points, never below ``f`` at ``c``.
    c : ndarray (p, r, r)
    steps : ndarray (p,)
        Newton steps taken.
    converged : ndarray (p,) of bool
        ``||Omega||_F < gtol`` reached; the others (saddles, degenerate ridges, more than
        ``NEWTON_STEPS`` steps) are left to the caller's gradient ascent.
    """
    out = [np.empty(len(a)), np.empty_like(c), np.zeros(len(a), dtype=int), np.zeros(len(a), bool)]
    for k in range(0, len(a), CHUNK):
        sl = slice(k, k + CHUNK)
        for o, part in zip(out, _polish_chunk(a[sl], b[sl], c[sl], gtol), strict=True):
            o[sl] = part
    return out[0], out[1], out[2], out[3]


def _polish_chunk(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, gtol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    p, r = a.shape[0], a.shape[-1]
    at = np.ascontiguousarray(np.swapaxes(a, -1, -2))
    comm_a = commutators(a)
    c = c.copy()
    f, m, om = _value_and_gradient(a, at, b, c)
    steps = np.zeros(p, dtype=int)
    converged = np.sqrt(np.einsum("pij,pij->p", om, om)) < gtol
    mu = np.zeros(p)
    factors: list = [None] * p
    stale = np.ones(p, dtype=bool)  # no factor yet, or it refused a step: (re)compute it
    active = np.flatnonzero(~converged)
    for _ in range(NEWTON_STEPS):
        active = active[mu[active] <= MU_MAX]
        redo = active[stale[active]]
        if len(redo):
            new, mu[redo] = _factor(hessian(comm_a[redo], m[redo]), mu[redo])
            for q, factor in zip(redo, new, strict=True):
                factors[q] = factor
            stale[redo] = False
        active = active[mu[active] <= MU_MAX]
        if not len(active):
            break
        g = skew_coordinates(om[active])
        x = np.stack(
            [lapack.dpotrs(factors[q], gq, lower=True)[0] for q, gq in zip(active, g, strict=True)]
        )
        norm = np.sqrt(np.einsum("pk,pk->p", x, x))
        x *= np.minimum(1.0, STEP_CAP / np.maximum(norm, 1e-300))[:, None]
        cn = _retract(skew_from_coordinates(x, r), c[active])
        fn, mn, omn = _value_and_gradient(a[active], at[active], b[active], cn)
        up = fn >= f[active]
        k = active[up]
        c[k], f[k], m[k], om[k] = cn[up], fn[up], mn[up], omn[up]
        steps[k] += 1
        gnorm = np.sqrt(np.einsum("pij,pij->p", omn[up], omn[up]))
        converged[k] = gnorm < gtol
        # a chord step that left more than CONTRACTION of the gradient: a fresh Hessian
        g_before = np.sqrt(np.einsum("pk,pk->p", g[up], g[up]))  # = ||Omega||_F
        stale[k[gnorm > CONTRACTION * g_before]] = True
        # refused: a fresh Hessian at the same point, damped more than the last one
        down = active[~up]
        stale[down] = True
        mu[down] = np.maximum(10.0 * mu[down], MU_FIRST)
        active = active[~converged[active]]
    return f, c, steps, converged
