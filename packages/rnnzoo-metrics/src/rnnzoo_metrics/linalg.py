"""Small float64 linear-algebra helpers shared by the built-in metrics."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import InputError


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
            "every unit is constant over the samples (zero variance): nothing to compare"
        )
    r = int(np.sum(s > s[0] * max(x.shape) * np.finfo(float).eps))
    return u[:, :r], s[:r], vt[:r]


def stack(bases: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate per-network bases column-wise; return the stack and column offsets."""
    widths = np.fromiter((b.shape[1] for b in bases), dtype=np.int64, count=len(bases))
    offsets = np.concatenate([[0], np.cumsum(widths)])
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


def padded_blocks(g: np.ndarray, oa: np.ndarray, ob: np.ndarray) -> np.ndarray:
    """Cut the per-pair sub-blocks out of a stacked product, zero-padded to equal shape.

    Returns an array ``(len(oa)-1, len(ob)-1, ka_max, kb_max)``. Zero padding adds only
    zero singular values, so the top ``min(ka, kb)`` singular values are unchanged.
    """
    wa, wb = np.diff(oa), np.diff(ob)
    ka, kb = int(wa.max()), int(wb.max())
    if np.all(wa == ka) and np.all(wb == kb):
        ma, mb = len(wa), len(wb)
        return g.reshape(ma, ka, mb, kb).transpose(0, 2, 1, 3)
    out = np.zeros((len(wa), len(wb), ka, kb))
    for i in range(len(wa)):
        rows = g[oa[i] : oa[i + 1]]
        for j in range(len(wb)):
            out[i, j, : wa[i], : wb[j]] = rows[:, ob[j] : ob[j + 1]]
    return out


def block_sq_norms(g: np.ndarray, oa: np.ndarray, ob: np.ndarray) -> np.ndarray:
    """Squared Frobenius norm of every per-pair sub-block of a stacked product."""
    g2 = g * g
    return np.add.reduceat(np.add.reduceat(g2, oa[:-1], axis=0), ob[:-1], axis=1)
