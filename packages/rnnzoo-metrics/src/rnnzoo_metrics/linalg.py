"""Small float64 linear-algebra helpers shared by the built-in metrics."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from .errors import InputError


def unit_scaled(x: np.ndarray) -> np.ndarray:
    """``x`` times the power of two that brings ``max|x|`` into ``[0.5, 1)``.

    Multiplying by a power of two is exact in floating point (only entries more than
    ~1e-308 below the largest one lose digits, far below rounding), so a scale-invariant
    metric computed from the result is exactly the metric of ``x``, while no squared or
    fourth-power quantity it forms can overflow or underflow (activations x 1e150 or
    x 1e-150 would: ``s**4`` of CKA leaves float64). Inputs whose largest entry is already
    in ``[0.5, 1)`` (e.g. saturated tanh units) are returned unchanged, as is an all-zero
    array.
    """
    top = float(max(np.max(x), -np.min(x))) if x.size else 0.0
    if not top > 0 or not np.isfinite(top):
        return x
    _, e = np.frexp(top)
    return x if e == 0 else np.ldexp(x, -int(e))


def centred_svd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD of the column-centred data, cut to its numerical rank.

    Parameters
    ----------
    x : ndarray, shape (samples, units)
        Activations (float64).

    Returns
    -------
    u : ndarray, shape (samples, r)
        Left singular vectors (orthonormal columns) of ``x - mean(x, axis=0)``.
    s : ndarray, shape (r,)
        Singular values, descending, all above ``max(samples, units) * eps * s[0]``.
    vt : ndarray, shape (r, units)
        Right singular vectors.

    Raises
    ------
    InputError
        If every unit is constant (no variance to compare).
    """
    xc = x - x.mean(axis=0, keepdims=True)
    u, s, vt = np.linalg.svd(xc, full_matrices=False)
    if s.size == 0 or s[0] <= np.finfo(float).tiny or not np.isfinite(s[0]):
        raise InputError(
            "every unit is constant over the samples (zero variance): nothing to compare; "
            "leave this network out (dead or saturated units?)"
        )
    r = int(np.sum(s > s[0] * max(x.shape) * np.finfo(float).eps))
    return u[:, :r], s[:r], vt[:r]


def stack(bases: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate per-network bases column-wise; return the stack and column offsets.

    Bases stored in Fortran order (columns contiguous, as the CCA metrics prepare their
    narrow bases) are stacked as contiguous rows of the transpose: one ``memcpy`` per
    network instead of a strided copy of a few values per sample, which costs as much as
    the GEMM itself for 5-column bases. The result is the same matrix either way.
    """
    widths = np.fromiter((b.shape[1] for b in bases), dtype=np.int64, count=len(bases))
    offsets = np.concatenate([[0], np.cumsum(widths)])
    if all(b.flags.f_contiguous for b in bases):
        return np.concatenate([b.T for b in bases], axis=0).T, offsets
    return np.concatenate(list(bases), axis=1), offsets


def cross_products(a: Sequence[np.ndarray], b: Sequence[np.ndarray]):
    """One stacked GEMM ``[A_1..A_m]^T [B_1..B_p]`` for a tile of pairs.

    If ``a is b`` (a diagonal tile) the symmetric product ``A^T A`` is used (half the
    work). Returns the product and the column offsets of each network on both sides.
    """
    sa, oa = stack(a)
    if a is b:
        return sa.T @ sa, oa, oa
    sb, ob = stack(b)
    return sa.T @ sb, oa, ob


#: bytes of stacked per-pair blocks (and their work arrays) handled at once
PAIR_BUDGET = 32 * 2**20

#: Gram eigenvalue ratio below which :func:`singular_values` switches to an SVD (see there)
EIG_RATIO = 1e-6


def tile_pairs(ma: int, mb: int, same: bool) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(i, j)`` of a tile that need computing.

    ``same`` (a diagonal tile: the same networks on both sides): the strict upper
    triangle ``i < j`` only; otherwise every ``(i, j)``.
    """
    if same:
        return np.triu_indices(ma, 1)
    i, j = np.divmod(np.arange(ma * mb), mb)
    return i, j


def tile_matrix(
    values: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    shape: tuple[int, int],
    same: bool,
    diag: float,
) -> np.ndarray:
    """Scatter per-pair values back into a tile; mirror them (and set ``diag``) if ``same``."""
    out = np.empty(shape)
    out[i, j] = values
    if same:
        out[j, i] = values
        np.fill_diagonal(out, diag)
    return out


def pair_blocks(
    g: np.ndarray,
    oa: np.ndarray,
    ob: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    scale: int = 1,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Gather the per-pair sub-blocks of a stacked product, stacked by shape.

    The block of pair ``(i[p], j[p])`` is ``g[oa[i]:oa[i+1], ob[j]:ob[j+1]]``. Pairs are
    grouped by block shape ``(ka, kb)`` (no padding, so no spurious zero singular values)
    and cut into chunks of at most :data:`PAIR_BUDGET` bytes (times ``scale``, for callers
    that build larger work arrays per pair), so memory stays bounded for wide bases.

    Yields
    ------
    sel : ndarray of int
        Positions in ``i``/``j`` of the pairs of this chunk.
    blocks : ndarray, shape (len(sel), ka, kb)
        Their blocks (a copy).
    """
    if len(i) == 0:
        return
    wa, wb = np.diff(oa), np.diff(ob)
    ka_all, kb_all = wa[i], wb[j]
    key = ka_all * (int(wb.max()) + 1) + kb_all
    order = np.argsort(key, kind="stable")
    for grp in np.split(order, np.flatnonzero(np.diff(key[order])) + 1):
        ka, kb = int(ka_all[grp[0]]), int(kb_all[grp[0]])
        step = max(1, PAIR_BUDGET // (8 * ka * kb * max(scale, 1)))
        ra, rb = np.arange(ka), np.arange(kb)
        for s in range(0, len(grp), step):
            sel = grp[s : s + step]
            rows = oa[i[sel]][:, None, None] + ra[None, :, None]
            cols = ob[j[sel]][:, None, None] + rb[None, None, :]
            yield sel, g[rows, cols]


def singular_values(m: np.ndarray, fast: bool = True) -> np.ndarray:
    """Singular values of every matrix of a stack ``(P, ka, kb)``, shape ``(P, min(ka, kb))``.

    One batched call (NumPy's stacked gufuncs) instead of one LAPACK call per pair.
    ``fast=False``: a batched SVD (``gesdd``), descending. ``fast=True``: the square roots
    of the eigenvalues of the smaller Gram matrix ``M Mᵀ`` or ``Mᵀ M`` (a batched
    symmetric eigensolver, about half the cost of the SVD for small blocks), ascending.
    Eigenvalues carry an absolute error of order ``eps·λ_max``, so ``sqrt(λ)`` loses
    accuracy for tiny singular values; every matrix whose eigenvalue ratio
    ``λ_min/λ_max`` is below :data:`EIG_RATIO` (1e-6) is therefore recomputed by SVD. With
    the ratio above it, ``|δσ| <= |δλ|/(2σ_min) <~ 5e-13·σ_max``, which keeps the engine
    within 1e-12 of a per-pair SVD (tested).
    """
    if not fast or m.shape[0] == 0:
        return np.linalg.svd(m, compute_uv=False)
    ka, kb = m.shape[1:]
    mt = m.transpose(0, 2, 1)
    lam = np.linalg.eigvalsh(m @ mt if ka <= kb else mt @ m)
    sv = np.sqrt(np.maximum(lam, 0.0))
    bad = ~(lam[:, 0] >= EIG_RATIO * lam[:, -1])  # also catches NaN
    if bad.any():
        sv[bad] = np.linalg.svd(m[bad], compute_uv=False)[:, ::-1]
    return sv


def block_sq_norms(g: np.ndarray, oa: np.ndarray, ob: np.ndarray) -> np.ndarray:
    """Squared Frobenius norm of every per-pair sub-block of a stacked product."""
    g2 = g * g
    return np.add.reduceat(np.add.reduceat(g2, oa[:-1], axis=0), ob[:-1], axis=1)
