"""Dynamical Similarity Analysis (Ostrow, Eisen, Kozachkov & Fiete, NeurIPS 2023), numpy only.

Per network (once, :func:`dmd_operator`): delay-embed the trajectories
(:func:`delay_embed`), fit a linear operator to the embedding, reduced to ``rank``
dimensions: HAVOK DMD (regression between consecutive time points of the leading ``rank``
right singular vectors of the Hankel matrix, as the reference package ``dsa-metric``'s
default ``DMD``) or projected DMD (Schmid 2010: the operator in the leading ``rank`` POD
modes of the embedding).

Per pair (:func:`procrustes_vector_fields`): the Procrustes analysis over vector fields,
``min over orthogonal C of ||A - C B C^T||_F``, which is invariant to a similarity transform
of either system by an orthogonal matrix. With ``A`` and ``B`` scaled to unit Frobenius
norm the minimiser maximises ``f(C) = <A, C B C^T>``; the *angular* form is
``arccos(f(C*))`` and the *Euclidean* form ``||A - C* B C*^T||_F`` of the operators as fitted
(the paper's definition; ``dsa-metric`` 2.0.2 evaluates it on the unit-norm operators, i.e.
``sqrt(2 - 2 f(C*))``).

The problem is non-convex (a quadratic over O(r)). It is solved for all pairs of a tile at
once, vectorised over pairs, by Riemannian gradient ascent on O(r) (left-multiplicative
updates ``C <- exp(tau Omega) C`` with ``Omega = skew(grad f C^T) = skew(A^T M - M A^T)``,
``M = C B C^T``, Barzilai-Borwein step sizes capped at ``||tau Omega||_F <= 0.5``, a
second-order exponential followed by a Newton-Schulz re-orthogonalisation: eight stacked
r x r products per step), from several starts per pair:

1. the identity (both operators in their own SVD coordinates, ordered by variance: the
   reference's first start);
2. the identity with the first two coordinates swapped (the reference's second start);
3.-5. the real Schur bases of A and B with their eigenvalues in the same order (three
   orders: by modulus, by angle, by real part), 2x2 blocks of complex pairs in a standard
   form, and the signs of the basis vectors chosen to align the two Schur forms: exact
   for a similarity-transformed copy with distinct eigenvalues. Three orders, because
   the operators of trained networks often have eigenvalues of similar moduli (or
   angles) whose order alone pairs them up wrongly, a start in another basin.

6.-105. (``search="thorough"``, the default) a hundred Haar-random orthogonal matrices, the
   same for every pair (seeded).

``"thorough"`` ascends all 105 to convergence (``gtol`` or ``max_iter`` steps) and keeps the
best. ``search="fast"`` ascends the five structured starts ``PRUNE_AFTER`` (10) steps, then
only each pair's best two go on.

Precision: the search runs on the operators' traceless parts scaled to unit norm
(:func:`_search_form`: the identity's share of ``f`` does not depend on C, and can leave the
C-dependent part as small as 1e-6 of ``f``, below float32's resolution and a fixed ``gtol``;
at the demo zoo's cdi parameters, rank 4, the search on the unit operators ended above the
best value by more than 1e-5 rad in 99 of 780 pairs, up to 1e-4 rad at angles of ~1e-2).
The starts ascend in float32 (numpy's stacked ``r x r`` products are ~3x faster than in
float64) to ``||Omega||_F < max(gtol, stop)``, the preset's float32 stop (``SEARCHES``:
1e-3 for ``"thorough"``, far enough to tell the basins apart; 1e-4 for ``"fast"``); then
each pair's best ``POLISHED`` (16; ``"fast"`` keeps two) go on in float64 to ``gtol`` by
Newton's method (:mod:`.dsa_newton`: two or three steps, where the gradient ascent needed
a median ~120 on the flat ridges near a maximum; the few starts where ``-H`` is not
positive definite, near saddles, go on by the gradient ascent in float64), and the value is
evaluated on the unit operators. Before the Newton polish (seventh to tenth sessions) the
float32 stop was 1e-4 for both presets: the ascent's last decade (1e-3 to 1e-4) took about
half of ``"thorough"``'s float32 steps, and the float64 ascent two thirds of ``"fast"``'s
time; on the demo zoo the values are those of the old search to 1e-6 rad
(``docs/benchmarks.md``, "Newton's method for the last digits"). Sixteen, not two: on
flat ridges a float32 value at the stop can still lie below the ridge's top by more than
the gap between two maxima (at the demo's sine parameters, rank 6 and delay interval 5,
with the 1e-4 stop the best two of 105 missed the best polished start in 12 of 741 pairs,
by up to 8.4e-5 rad, found by the certificate of :mod:`rnnzoo_metrics.dsa_bound`; the best
eight in none). With the 1e-3 stop the float32 values rank the starts less well: the best
eight missed the old search's maximum in 1 of 780 pairs of the benchmark's synthetic
networks (by 3.7e-5 rad), the best twelve in none; sixteen keep a margin, at ~20% of the
search's time. A start that has converged takes no further
step while it waits in its batch, so a pair's value does not depend on the tile it is
computed in. On the demo zoo (rank 10 and the rule's ranks 9, 4 and 4), ``"thorough"`` so
reaches the best value of 305 float64 starts (to 1e-5 rad, in fact 1e-8) in every pair;
float32 rounding sends a few per cent of single starts to another local maximum, which the
other starts cover.

Why so many starts, and why the two presets (measured 2026-12-06 on the demo zoo, rank 10,
against ``dsa-metric`` 2.0.2; ``docs/benchmarks.md``): the landscape has many local maxima
within ~1e-3 rad of each other (about 5 distinct ones among 15 starts per pair), and the
reference's Adam run (1,500 steps from two perturbed starts) often lands in a better one
than any single start of ours (each start alone ends above the reference in 30-58% of
pairs). On 12 context-dependent-integration networks, 15 starts (ten random) ended above
the reference in 3 of 66 pairs (up to 8e-4 rad), 35 in none; on 20 other ones, 35 starts in
1 of 190 (1.7e-3 rad; that pair's reference basin is reached by 9 of 200 starts), 105 in
none (105 was chosen after that; on the 16 networks per task in neither set, 0 of 360
pairs; at the demo's own parameters, every usable demo-zoo network, 0 of 2,301). Each start needs
~200 ascent steps (median; 70-90% of them after ``||Omega||`` is below 1e-3): the maxima
are ill-conditioned (Hessian condition ~300-550, up to ~5,500; long curved ridges), so
neither Newton steps (the quadratic model holds only very near a maximum) nor
L-BFGS (median ~130 evaluations) nor other step-size rules cut this much, and the value
after 10-80 steps is a poor guide to the final one (pruning to the best few starts there
left the result above the reference in 1-16 of 66 pairs in every variant tried). So
``"thorough"`` is the one that is never worse than the reference, and ``"fast"`` the one
that fits all pairs of 2,880 networks in an hour on two cores.

The winning C is made orthogonal to 1e-12 before the distance is evaluated, so every
reported distance is attained by an orthogonal C (an upper bound on the global minimum,
like the reference's).

Whether a reported distance *is* the global minimum: :mod:`rnnzoo_metrics.dsa_bound` bounds
it from below by Lagrangian duality and certifies the pairs where the two meet (on the demo
zoo 84% of 3,429 pairs, 55-96% per set, with ``"thorough"``; ``docs/benchmarks.md``,
"Certified global optima").
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .dsa_newton import newton_polish
from .errors import InputError, MetricsError

DMD_METHODS = ("havok", "dmd")
PRUNE_AFTER = 10  # search="fast": steps from every start before only the best two go on
SEARCH_FORM = "traceless, unit norm"  # the operators the search ascends on (_search_form)
POLISHED = 16  # each pair's best starts then polished in float64 to gtol (Newton)
# search presets: (Haar-random starts added to the five structured ones, steps before
# pruning (None: never), starts kept per pair)
# random starts, steps before pruning, starts kept, the float32 stage's stop (docstring,
# "Precision"): thorough's float32 starts only have to reach their basin's top closely enough
# for the best POLISHED to contain the best one; fast's two are the only ones polished
SEARCHES = {"thorough": (100, None, None, 1e-3), "fast": (0, PRUNE_AFTER, 2, 1e-4)}
POLISH = "newton"  # the float64 stage (:mod:`.dsa_newton`; the gradient ascent where it stops)
SCORES = ("angular", "euclidean")


# -- per network -------------------------------------------------------------------------
def delay_embed(x: np.ndarray, n_delays: int, delay_interval: int = 1) -> np.ndarray:
    """Delay embedding (Hankel matrix) of trajectories.

    Parameters
    ----------
    x : ndarray, shape (trials, time, units)
    n_delays : int
        Number of delayed copies (1: no embedding).
    delay_interval : int
        Time steps between consecutive delays.

    Returns
    -------
    ndarray, shape (trials, time - (n_delays - 1) * delay_interval, units * n_delays)
        Block ``d`` (units ``d*N .. (d+1)*N``) of row ``t`` is ``x[:, t + (n_delays-1-d)
        * delay_interval]``: the newest state first, as in ``dsa-metric``.
    """
    trials, steps, units = x.shape
    span = (n_delays - 1) * delay_interval
    if steps - span < 2:
        raise InputError(
            f"{steps} time steps are too few for n_delays={n_delays} x "
            f"delay_interval={delay_interval} (need more than {span + 1}); use fewer delays"
        )
    out = np.empty((trials, steps - span, units * n_delays))
    for d in range(n_delays):
        start = (n_delays - 1 - d) * delay_interval
        out[:, :, d * units : (d + 1) * units] = x[:, start : steps - d * delay_interval]
    return out


def dmd_operator(
    x: np.ndarray,
    n_delays: int,
    delay_interval: int,
    rank: int,
    method: str = "havok",
    lamb: float = 0.0,
) -> np.ndarray:
    """The ``rank x rank`` DMD operator of one network's delay-embedded trajectories.

    Parameters
    ----------
    x : ndarray, shape (trials, time, units)
    n_delays, delay_interval : int
        See :func:`delay_embed`.
    rank : int
        Dimension of the operator.
    method : {"havok", "dmd"}
        ``"havok"``: with the Hankel matrix ``H = U S V^T`` (trials and time as rows, not
        centred), regress ``V_r(t+1)`` on ``V_r(t)`` within each trial (ridge ``lamb``) and
        return the transposed coefficients, as ``dsa-metric``'s ``DMD``. ``"dmd"``:
        projected DMD: ``X_- = U S W^T`` (the embedding at t, rank r),
        ``A = U_r^T X_+ W_r S_r^{-1}``.
    lamb : float
        Ridge regularisation of the HAVOK regression (``dsa-metric`` default 0).

    Returns
    -------
    ndarray, shape (rank, rank), float64
    """
    h = delay_embed(x, n_delays, delay_interval)
    trials, steps, dim = h.shape
    if method == "havok":
        rows = trials * steps
        if rank > min(dim, rows):
            raise InputError(
                f"rank={rank} exceeds the {min(dim, rows)} dimensions of the delay embedding "
                f"({rows} rows x {dim} columns); lower rank or raise n_delays"
            )
        v = leading_left_singular_vectors(h.reshape(rows, dim), rank)
        v = v.reshape(trials, steps, rank)
        vm = v[:, :-1].reshape(-1, rank)
        vp = v[:, 1:].reshape(-1, rank)
        gram = vm.T @ vm + lamb * np.eye(rank)
        return np.linalg.solve(gram, vm.T @ vp).T
    if method == "dmd":
        xm = h[:, :-1].reshape(-1, dim).T  # (dim, samples)
        xp = h[:, 1:].reshape(-1, dim).T
        if rank > min(xm.shape):
            raise InputError(
                f"rank={rank} exceeds the {min(xm.shape)} dimensions of the delay embedding; "
                "lower rank or raise n_delays"
            )
        u, s, wt = np.linalg.svd(xm, full_matrices=False)
        if s[rank - 1] <= s[0] * 1e-13:
            raise InputError(
                f"the delay embedding has numerical rank below rank={rank}; lower rank"
            )
        return (u[:, :rank].T @ xp @ wt[:rank].T) / s[:rank]
    raise MetricsError(f"dmd must be one of {DMD_METHODS}, not {method!r}")


def leading_left_singular_vectors(h: np.ndarray, rank: int) -> np.ndarray:
    """The ``rank`` leading left singular vectors of ``h`` (rows x dim), as columns.

    From the eigenvectors of the smaller Gram matrix (LAPACK ``syevr``, only the ``rank``
    largest): ``U_r = H W_r / s_r``, re-orthonormalised by a QR step. Much cheaper than a
    full SVD of the Hankel matrix (e.g. 910 x 640 for 10 delays of 64 units); the leading
    vectors are accurate to ~1e-16 s_1^2 / (s_r^2 gap), and a rank whose s_r is below
    1e-6 s_1 is refused instead (numerically rank-deficient embedding).
    """
    from scipy.linalg import eigh

    rows, dim = h.shape
    if dim <= rows:
        gram = h.T @ h
        w, vec = eigh(gram, subset_by_index=(dim - rank, dim - 1))
        w, vec = w[::-1], vec[:, ::-1]
        u = h @ vec
    else:
        gram = h @ h.T
        w, u = eigh(gram, subset_by_index=(rows - rank, rows - 1))
        w, u = w[::-1], u[:, ::-1]
    if not w[-1] > 1e-12 * w[0]:
        raise InputError(
            f"the delay embedding has numerical rank below rank={rank} (singular value "
            f"{rank} is {np.sqrt(max(w[-1], 0.0) / w[0]):.1e} of the largest); lower rank"
        )
    q, r = np.linalg.qr(u)
    return q * np.sign(np.diag(r))  # same signs as u: columns ordered by singular value


class Operator(NamedTuple):
    """A network's prepared DMD operator (the cache of the ``dsa`` metric)."""

    a: np.ndarray  # (r, r) operator scaled to unit Frobenius norm
    norm: float  # its Frobenius norm as fitted
    schur: np.ndarray  # (len(ORDERS), r, r) orthogonal bases: schur[k].T @ a @ schur[k] is
    #                     quasi-triangular with the eigenvalues in ORDERS[k]


# orders of the eigenvalues (one of each conjugate pair) for the Schur starts: by modulus,
# by angle (frequency) and by real part; near-unit-circle operators (HAVOK's) often have
# eigenvalues of similar moduli, whose order alone would pair them up wrongly
ORDERS = {
    "modulus": lambda z: (-round(abs(z), 12), -np.angle(z)),
    "angle": lambda z: (-round(np.angle(z), 12), -abs(z)),
    "real": lambda z: (-round(z.real, 12), -z.imag),
}


def sorted_schur_basis(a: np.ndarray, order: str = "modulus") -> np.ndarray:
    """Orthogonal Q with ``Q^T a Q`` quasi-upper-triangular, eigenvalues in a canonical order.

    Eigenvalues (one of each complex-conjugate pair, which fills two columns: the real and
    imaginary parts of its eigenvector) are ordered by ``order`` (a key of
    :data:`ORDERS`). Q is the QR factor of those eigenvector columns, each 2x2 block put in
    a standard form; where the columns are numerically dependent (a defective operator),
    scipy's unordered real Schur basis.
    """
    r = a.shape[0]
    w, v = np.linalg.eig(a)
    keep = [k for k in range(r) if w[k].imag >= 0]
    key = ORDERS[order]
    keep.sort(key=lambda k: key(w[k]))
    cols = []
    for k in keep:
        if w[k].imag > 0:
            cols += [v[:, k].real, v[:, k].imag]
        else:
            cols.append(v[:, k].real)
    if len(cols) == r:
        m = np.stack(cols, axis=1)
        q, rr = np.linalg.qr(m)
        d = np.abs(np.diag(rr))
        if d.min() > 1e-8 * max(d.max(), 1e-300):
            k = 0
            for e in keep:  # each complex pair's 2x2 block in a canonical form
                if w[e].imag > 0:
                    q[:, k : k + 2] = q[:, k : k + 2] @ _standard_block_rotation(
                        q[:, k : k + 2].T @ a @ q[:, k : k + 2]
                    )
                    k += 2
                else:
                    k += 1
            return q
    from scipy.linalg import schur

    return schur(a, output="real")[1]


def _standard_block_rotation(block: np.ndarray) -> np.ndarray:
    """Orthogonal G making ``G^T block G = [[x, y], [z, x]]`` with ``y >= |z|``.

    A 2x2 block of a complex-conjugate pair is unique up to rotations and reflections of
    its plane; this form (equal diagonal, as LAPACK's standardised Schur blocks, the larger
    off-diagonal entry first and positive) leaves only ``G = -I``, which the sign alignment
    of :func:`starts` covers.
    """
    (p, q), (r, s) = block
    # equal diagonal: rotate the symmetric part [[p, m], [m, s]] (m = (q + r) / 2)
    theta = 0.5 * np.arctan2(s - p, q + r)
    best = None
    for t in (theta, theta + np.pi / 2):
        c, sn = np.cos(t), np.sin(t)
        g = np.array([[c, -sn], [sn, c]])
        b = g.T @ block @ g
        if best is None or abs(b[0, 1]) > abs(best[1][0, 1]):
            best = (g, b)
    g, b = best
    if b[0, 1] < 0:  # a reflection of the plane flips both off-diagonal signs
        g = g @ np.diag([1.0, -1.0])
    return g


def prepare_operator(a: np.ndarray) -> Operator:
    """Scale an operator to unit Frobenius norm and find its sorted Schur basis."""
    norm = float(np.linalg.norm(a))
    if not np.isfinite(norm) or norm == 0.0:
        raise InputError("the DMD operator is zero or not finite (constant trajectories?)")
    unit = a / norm
    return Operator(unit, norm, np.stack([sorted_schur_basis(unit, o) for o in ORDERS]))


# -- per pair ----------------------------------------------------------------------------
def _mm(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.matmul(x, y)


def _t(x: np.ndarray) -> np.ndarray:
    return np.swapaxes(x, -1, -2)


def _newton_schulz(x: np.ndarray, steps: int) -> np.ndarray:
    """Orthogonal polar factor of nearly orthogonal matrices: X <- X (3I - X^T X) / 2."""
    eye = np.eye(x.shape[-1], dtype=x.dtype)
    for _ in range(steps):
        x = 0.5 * _mm(x, 3.0 * eye - _mm(_t(x), x))
    return x


def _sign_aligned(ta: np.ndarray, tb: np.ndarray, sweeps: int = 4) -> np.ndarray:
    """Signs s (+-1) maximising sum_ij TA_ij TB_ij s_i s_j, per pair, by coordinate ascent.

    The moves flip one coordinate or two neighbouring ones together: a canonical 2x2 block
    (:func:`_standard_block_rotation`) is only determined up to ``-I``, and flipping one of
    its two columns alone would break the block's own agreement.
    """
    m = ta * tb
    m = m + _t(m)
    r = m.shape[-1]
    idx = np.arange(r)
    m[:, idx, idx] = 0.0
    s = np.ones(m.shape[:2])
    for _ in range(sweeps):
        changed = False
        for i in range(r):  # flip s_i if it helps
            gain = -2.0 * s[:, i] * np.einsum("pj,pj->p", m[:, i], s)
            flip = gain > 1e-15
            s[flip, i] *= -1.0
            changed |= bool(flip.any())
        for i in range(r - 1):  # flip s_i and s_{i+1} together if it helps
            fi = s[:, i] * np.einsum("pj,pj->p", m[:, i], s)
            fj = s[:, i + 1] * np.einsum("pj,pj->p", m[:, i + 1], s)
            both = 2.0 * s[:, i] * s[:, i + 1] * m[:, i, i + 1]
            gain = -2.0 * (fi + fj - both)
            flip = gain > 1e-15
            s[flip, i] *= -1.0
            s[flip, i + 1] *= -1.0
            changed |= bool(flip.any())
        if not changed:
            break
    return s


def starts(ops_a: list[Operator], ops_b: list[Operator]) -> np.ndarray:
    """The starting C per pair: identity, swapped identity, and one per Schur order.

    Returns
    -------
    ndarray, shape (2 + len(ORDERS), pairs, r, r)
    """
    p, r = len(ops_a), ops_a[0].a.shape[0]
    eye = np.broadcast_to(np.eye(r), (p, r, r))
    swap = np.eye(r)
    if r > 1:
        swap[[0, 1]] = swap[[1, 0]]
    out = [eye, np.broadcast_to(swap, (p, r, r))]
    a = np.stack([o.a for o in ops_a])
    b = np.stack([o.a for o in ops_b])
    for k in range(len(ORDERS)):
        qa = np.stack([o.schur[k] for o in ops_a])
        qb = np.stack([o.schur[k] for o in ops_b])
        ta = _mm(_mm(_t(qa), a), qa)
        tb = _mm(_mm(_t(qb), b), qb)
        s_ = _sign_aligned(ta, tb)
        out.append(_mm(qa * s_[:, None, :], _t(qb)))
    return np.stack(out)


class Alignment(NamedTuple):
    """Result of :func:`procrustes_vector_fields` for a batch of pairs."""

    cosine: np.ndarray  # (pairs,) f(C*) = <A, C* B C*^T> of the unit-norm operators
    c: np.ndarray  # (pairs, r, r) the orthogonal C* reached
    iterations: np.ndarray  # (pairs,) ascent steps of the best start (float32 and float64)
    start: np.ndarray  # (pairs,) which start won (0 identity, 1 swap, 2+ Schur orders)


def _dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.einsum("pij,pij->p", x, y)


def _ascend(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, max_iter: int, gtol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Riemannian Barzilai-Borwein gradient ascent of f over O(r), batched over pairs.

    Steps ``C <- exp(tau Omega) C`` (second-order exponential, one Newton-Schulz step),
    ``tau`` alternating the two BB formulas on the Lie-algebra coordinates, capped at
    ``||tau Omega||_F <= 0.5`` and halved after a step without progress (non-monotone, the
    best C seen is kept). A pair stops when ``||Omega||_F < gtol``: it takes no further step,
    even while it waits in the batch to be dropped, so its result does not depend on which
    other pairs share its batch (the engine's tiles). ``c`` is not modified.

    Per step eight stacked ``r x r`` products, all with contiguous operands (a transposed
    view as an operand makes numpy's stacked product ~2x slower): ``M = C B C^T`` (two),
    ``f = <A, M>`` and ``Omega = skew(A M^T + A^T M) = skew(A^T M - M A^T)`` (two), the
    step (two) and the Newton-Schulz step (two). The best C is copied only when the ascent
    goes down after a new best (BB is non-monotone, but mostly ascends), not at every step.

    Returns the best f, its C (orthogonal to ~1e-12) and the step at which it was reached.
    """
    p = a.shape[0]
    best_f = np.full(p, -np.inf)
    best_c = c.copy()
    steps = np.zeros(p, dtype=int)
    active = np.arange(p)
    aa, bb, cc = a, b, c
    at = np.ascontiguousarray(_t(a))
    prev_step = prev_dir = prev_c = None
    was_best = np.zeros(p, dtype=bool)  # the previous iterate was a new best (not stored)
    tau = np.full(p, 0.5)
    for it in range(max_iter + 1):
        m = _mm(_mm(cc, bb), np.ascontiguousarray(_t(cc)))  # M = C B C^T
        f = _dot(aa, m)
        g = _mm(at, m)
        g -= _mm(m, at)  # skew(A M^T + A^T M) = skew(A^T M - M A^T)
        om = g - _t(g)
        om *= 0.5  # Omega = skew(grad f C^T)
        better = f > best_f[active]
        lost = was_best & ~better  # went down right after a new best: keep that best
        if lost.any():
            k = np.flatnonzero(lost)
            best_c[active[k]] = prev_c[k]
        best_f[active[better]] = f[better]
        steps[active[better]] = it
        was_best = better
        gnorm = np.sqrt(_dot(om, om))
        go = gnorm > gtol
        if it == max_iter or go.sum() < 0.75 * len(go):
            done = np.flatnonzero(~go) if it < max_iter else np.arange(len(active))
            k = done[was_best[done]]
            best_c[active[k]] = cc[k]
            if it == max_iter:
                break
            # drop converged pairs (copies: not every step)
            keep = np.flatnonzero(go)
            active, aa, bb, cc, at = active[keep], aa[keep], bb[keep], cc[keep], at[keep]
            om, f, was_best, gnorm = om[keep], f[keep], was_best[keep], gnorm[keep]
            better, tau = better[keep], tau[keep]
            if prev_step is not None:
                prev_step, prev_dir = prev_step[keep], prev_dir[keep]
            if not len(active):
                break
        t = tau
        if prev_step is not None:  # Barzilai-Borwein on the Lie-algebra coordinates
            y = prev_dir - om  # gradient of -f
            sy = np.abs(_dot(prev_step, y))
            with np.errstate(divide="ignore", invalid="ignore"):
                if it % 2:
                    bb_t = _dot(prev_step, prev_step) / sy
                else:
                    bb_t = sy / _dot(y, y)
            t = np.where(np.isfinite(bb_t) & (bb_t > 0), bb_t, t)
            t = np.where(better, t, 0.5 * t)  # no progress: shorter steps
        t = np.clip(np.minimum(t, 0.5 / np.maximum(gnorm.astype(float), 1e-300)), 1e-8, 1e8)
        step = om * t[:, None, None].astype(om.dtype)
        sc = _mm(step, cc)
        x = cc + sc
        x += 0.5 * _mm(step, sc)  # exp(step) C to second order
        prev_c = cc
        cc = 1.5 * x - 0.5 * _mm(x, _mm(np.ascontiguousarray(_t(x)), x))  # Newton-Schulz
        moving = gnorm > gtol
        if not moving.all():  # converged, not yet dropped: they stay where they stopped
            cc = np.where(moving[:, None, None], cc, prev_c)
        tau = t
        prev_step, prev_dir = step, om
    return best_f, _newton_schulz(best_c, 3), steps


def _polish(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, max_iter: int, gtol: float
) -> tuple[np.ndarray, np.ndarray]:
    """The float64 stage: Newton steps (:mod:`.dsa_newton`), the gradient ascent where they stop.

    Returns the C reached and the steps taken per start (Newton's and the ascent's).
    """
    _, c, steps, converged = newton_polish(a, b, c, gtol)
    rest = np.flatnonzero(~converged)
    if len(rest):
        _, c[rest], more = _ascend(a[rest], b[rest], c[rest], max_iter, gtol)
        steps[rest] += more
    return _newton_schulz(c, 1), steps


def _search_form(a: np.ndarray) -> np.ndarray:
    """The operators' traceless parts scaled to unit Frobenius norm: the search's objective.

    ``<A, C B C^T> = tr(A) tr(B) / r + <A0, C B0 C^T>`` for the traceless parts ``A0``,
    ``B0`` (the identity commutes with every C), so the maximisers are those of
    ``<A0/|A0|, C B0/|B0| C^T>``, whose values and gradients are O(1) whatever the
    operators. On the unit operators themselves the C-dependent part can be as small as
    ``|A0| |B0|`` ~ 1e-6 (operators near a multiple of the identity, e.g. slow dynamics at a
    low rank), below float32's resolution of ``f`` ~ 1 and far below a fixed ``gtol``. A
    traceless part that is zero (``A`` a multiple of the identity: every C is optimal) stays
    zero.
    """
    r = a.shape[-1]
    out = a - (np.trace(a, axis1=-2, axis2=-1) / r)[:, None, None] * np.eye(r)
    norm = np.sqrt(_dot(out, out))
    return out / np.where(norm > 0, norm, 1.0)[:, None, None]


def random_orthogonal(n: int, r: int, seed: int) -> np.ndarray:
    """``n`` Haar-random orthogonal ``r x r`` matrices (QR of Gaussians, signs fixed)."""
    g = np.random.default_rng(seed).normal(size=(n, r, r))
    q, rr = np.linalg.qr(g)
    return q * np.sign(np.diagonal(rr, axis1=-2, axis2=-1))[:, None, :]


def search_starts(search: str) -> int:
    """Starts per pair of a search preset (the five structured ones and the random ones)."""
    if search not in SEARCHES:
        raise MetricsError(f"search must be one of {tuple(SEARCHES)}, not {search!r}")
    return 2 + len(ORDERS) + SEARCHES[search][0]


def procrustes_vector_fields(
    ops_a: list[Operator],
    ops_b: list[Operator],
    max_iter: int = 500,
    gtol: float = 1e-6,
    search: str = "thorough",
    seed: int = 0,
) -> Alignment:
    """Max over orthogonal C of <A, C B C^T> for pairs (ops_a[k], ops_b[k]), batched.

    Parameters
    ----------
    ops_a, ops_b : list of Operator
        Prepared operators (:func:`prepare_operator`) of equal size, one per pair.
    max_iter : int
        Ascent steps per start at most in float32, and as many again in the float64 polish
        where its Newton steps give way to the gradient ascent.
    gtol : float
        A start stops when ``||Omega||_F`` (the Riemannian gradient of the search's objective,
        on the traceless parts scaled to unit norm: a tolerance relative to the
        C-dependent part of ``f``) falls below ``gtol``: in float32 below ``max(gtol, the
        preset's float32 stop)`` (``SEARCHES``: 1e-3 for ``"thorough"``, 1e-4 for
        ``"fast"``), then each pair's best ``POLISHED`` starts in float64 below ``gtol``
        (Newton's method, :mod:`.dsa_newton`).
    search : {"thorough", "fast"}
        ``"thorough"``: the five structured starts (:func:`starts`) and 100 Haar-random
        orthogonal ones (the same for every pair, seeded by ``seed``: deterministic), every
        one ascended to convergence: never worse than ``dsa-metric``'s optimum on the 768
        demo-zoo pairs compared (module docstring). ``"fast"``: the five structured starts ascend
        ``PRUNE_AFTER`` (10) steps, then only each pair's best two go on (~30x cheaper; on
        the demo zoo a worse local optimum than the reference's in 8-41% of pairs, by up
        to ~1e-2 rad).

    Returns
    -------
    Alignment
    """
    if len(ops_a) != len(ops_b):
        raise MetricsError("ops_a and ops_b must pair up")
    p = len(ops_a)
    if p == 0:
        z = np.zeros(0)
        return Alignment(z, np.zeros((0, 0, 0)), z.astype(int), z.astype(int))
    r = ops_a[0].a.shape[0]
    if any(o.a.shape != (r, r) for o in (*ops_a, *ops_b)):
        raise MetricsError("every DMD operator must have the same rank")
    if search not in SEARCHES:
        raise MetricsError(f"search must be one of {tuple(SEARCHES)}, not {search!r}")
    random_starts, prune_after, keep, gtol32 = SEARCHES[search]
    a_unit = np.stack([o.a for o in ops_a])
    b_unit = np.stack([o.a for o in ops_b])
    # the search runs on the traceless parts, scaled to unit norm (see _search_form)
    a, b = _search_form(a_unit), _search_form(b_unit)
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    c0 = starts(ops_a, ops_b)  # (starts, p, r, r)
    if random_starts:
        rand = random_orthogonal(random_starts, r, seed)
        c0 = np.concatenate([c0, np.broadcast_to(rand[:, None], (random_starts, p, r, r))])
    k = c0.shape[0]
    sel = np.arange(p)
    gtol32 = max(gtol, gtol32)
    # float32: every start for `first` steps, then only the best `keep` of each pair go on
    first = max_iter if prune_after is None else min(prune_after, max_iter)
    f, c, it = _ascend(
        np.tile(a32, (k, 1, 1)),
        np.tile(b32, (k, 1, 1)),
        c0.reshape(k * p, r, r).astype(np.float32),
        first,
        gtol32,
    )
    keep = k if keep is None else max(1, min(keep, k))
    order = np.argsort(-f.reshape(k, p), axis=0)[:keep]  # (keep, p) start indices
    c = c.reshape(k, p, r, r)[order, sel]  # (keep, p, r, r)
    f = f.reshape(k, p)[order, sel]
    it = it.reshape(k, p)[order, sel]
    if max_iter > first:
        f, c, it2 = _ascend(
            np.tile(a32, (keep, 1, 1)),
            np.tile(b32, (keep, 1, 1)),
            np.ascontiguousarray(c.reshape(keep * p, r, r)),
            max_iter - first,
            gtol32,
        )
        c, f = c.reshape(keep, p, r, r), f.reshape(keep, p)
        it = it + it2.reshape(keep, p)
    # float64: each pair's best `polished` starts ascend on to gtol
    polished = min(POLISHED, keep)
    top = np.argsort(-f, axis=0)[:polished]  # (polished, p) rows of the kept
    c = _newton_schulz(c[top, sel].astype(np.float64).reshape(-1, r, r), 2)
    it, order = it[top, sel], order[top, sel]
    c, it3 = _polish(np.tile(a, (polished, 1, 1)), np.tile(b, (polished, 1, 1)), c, max_iter, gtol)
    c = c.reshape(polished, p, r, r)
    it = it + it3.reshape(polished, p)
    # evaluated on the unit operators with the orthogonalised C: exactly what is reported
    fx = _dot(_mm(_mm(a_unit[None], c), _t(b_unit)[None]).reshape(-1, r, r), c.reshape(-1, r, r))
    best = np.argmax(fx.reshape(polished, p), axis=0)
    return Alignment(
        fx.reshape(polished, p)[best, sel], c[best, sel], it[best, sel], order[best, sel]
    )


def distances(
    ops_a: list[Operator],
    ops_b: list[Operator],
    score: str = "angular",
    max_iter: int = 500,
    gtol: float = 1e-6,
    search: str = "thorough",
) -> np.ndarray:
    """DSA distance per pair (see the module docstring for the two forms)."""
    al = procrustes_vector_fields(ops_a, ops_b, max_iter, gtol, search)
    cos = np.clip(al.cosine, -1.0, 1.0)
    if score == "angular":
        return np.arccos(cos)
    if score == "euclidean":
        na = np.array([o.norm for o in ops_a])
        nb = np.array([o.norm for o in ops_b])
        return np.sqrt(np.maximum(na**2 + nb**2 - 2.0 * na * nb * cos, 0.0))
    raise MetricsError(f"score must be one of {SCORES}, not {score!r}")


# -- choosing delays and rank for a zoo --------------------------------------------------
def suggest_parameters(
    trajectories: Any,
    *,
    variance: float = 0.95,
    window: float = 0.1,
    max_rank: int = 20,
    delay_interval: int = 1,
) -> dict[str, int]:
    """The documented rule for choosing ``n_delays`` and ``rank`` for a zoo (docs/metrics.md).

    * ``n_delays``: the delay window ``(n_delays - 1) * delay_interval`` covers a fraction
      ``window`` of the trial (default 10%), at least 2 delays, and the embedding keeps at
      least half of each trial's time steps;
    * ``rank``: the median over the networks given (e.g. a random sample of 20 of the zoo)
      of the smallest r whose leading singular values of the (uncentred) delay embedding
      carry a fraction ``variance`` (default 0.95) of its energy (sum of s^2), capped at
      ``max_rank`` (default 20: the pair cost grows like rank^3) and at the embedding's
      size. One rank for the whole zoo: DSA compares operators of equal size.

    Parameters
    ----------
    trajectories : sequence of arrays (trials, time, units)
    variance, window : float
    max_rank, delay_interval : int

    Returns
    -------
    dict with ``n_delays``, ``delay_interval``, ``rank``
    """
    from .trajectories import check_trajectories

    xs = [check_trajectories(x, str(i)) for i, x in enumerate(trajectories)]
    if not xs:
        raise InputError("suggest_parameters needs at least one network")
    steps = min(x.shape[1] for x in xs)
    n_delays = max(2, int(round(window * steps / delay_interval)) + 1)
    n_delays = min(n_delays, max(1, (steps // 2) // delay_interval + 1))
    ranks = []
    for x in xs:
        h = delay_embed(x, n_delays, delay_interval)
        s = np.linalg.svd(h.reshape(-1, h.shape[-1]), compute_uv=False)
        energy = np.cumsum(s**2) / np.sum(s**2)
        ranks.append(int(np.searchsorted(energy, variance) + 1))
        ranks[-1] = min(ranks[-1], h.shape[-1], h.shape[0] * h.shape[1])
    rank = int(min(max_rank, max(1, int(np.median(ranks)))))
    return {"n_delays": n_delays, "delay_interval": delay_interval, "rank": rank}


def zoo_parameters(
    data: Any, *, variable: str | None = None, sample: int = 20, seed: int = 0, **rule: Any
) -> dict[str, int]:
    """:func:`suggest_parameters` on a seeded random sample of a zoo's networks.

    Parameters
    ----------
    data
        Anything :func:`rnnzoo_metrics.as_networks` reads as trajectories, e.g. one task
        of a zoo (``tree["flipflop"]``) or a list of ``(trials, time, units)`` arrays.
    variable : str, optional
        The states read from a zoo (default ``hidden_trained``).
    sample : int
        Networks drawn (without replacement; all if fewer).
    seed : int
        Seed of the draw, so the parameters (and every distance) are reproducible.
    **rule
        ``variance``, ``window``, ``max_rank``, ``delay_interval`` of the rule.

    Returns
    -------
    dict with ``n_delays``, ``delay_interval``, ``rank``: pass as ``**params`` to
    ``rnnzoo_metrics.pairwise(data, "dsa", **params)``.
    """
    from .inputs import as_networks

    nets = as_networks(data, "trajectories", variable)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(nets), size=min(sample, len(nets)), replace=False))
    return suggest_parameters([nets.load(int(i)) for i in pick], **rule)
