"""Centred kernel alignment (Kornblith et al. 2019): linear, angular, debiased, RBF.

Linear CKA of centred ``X_a, X_b`` is ``||X_a^T X_b||_F^2 / (||X_a^T X_a||_F
||X_b^T X_b||_F)``. With the thin SVD ``X = U S V^T`` and ``B = U S`` this equals
``||B_a^T B_b||_F^2 / (||S_a^2|| ||S_b^2||)``, so each network is prepared once and a tile
of pairs is one stacked GEMM plus per-block sums of squares.

Truncation (``tol``): dropping the tail ``T`` of a network's components changes the
numerator by at most ``max(s_b)^2 * sum_T s_a^2`` while the exact denominator is at least
``||S_a^2|| * max(s_b)^2``. Dropping, per network, the longest tail with
``sum_T s^2 <= (tol / 2) * ||S^2||`` therefore changes CKA by at most ``tol`` (the
denominators are kept exact). ``tol = 0`` keeps the numerical rank (exact).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import InputError, MetricsError
from ..linalg import block_sq_norms, centred_svd, cross_products, stack, unit_scaled
from ..metric import Metric
from .procrustes import ScaledBasis


def truncated_basis(x: np.ndarray, tol: float) -> ScaledBasis:
    """``B = U S`` of the centred data, tail-truncated so that CKA moves by <= ``tol``."""
    u, s, _ = centred_svd(x)
    s2 = s**2
    norm = float(np.sqrt(np.sum(s2**2)))
    k = len(s)
    if tol > 0:
        tails = np.cumsum(s2[::-1])[::-1]  # tails[i] = sum(s2[i:])
        k = max(1, int(np.sum(tails > 0.5 * tol * norm)))
    return ScaledBasis(np.ascontiguousarray(u[:, :k] * s[:k]), norm)


class LinearCKA(Metric):
    name = "cka"
    summary = "1 - linear CKA (biased HSIC, Gretton et al. 2005) of the centred data"
    reference = "Kornblith, Norouzi, Lee & Hinton 2019"
    parameters = {"tol": 1e-11}
    angular = False
    scale_invariant = True
    min_samples = 3  # 2 centred samples span one direction: every pair has CKA 1

    def check_params(self) -> None:
        tol = self.params["tol"]
        if not (isinstance(tol, (int, float)) and 0.0 <= tol < 1e-3):
            raise MetricsError(f"{self.name}: tol must be in [0, 1e-3), got {tol!r}")

    def prepare(self, x: np.ndarray) -> ScaledBasis:
        return truncated_basis(unit_scaled(x), float(self.params["tol"]))

    def width(self, cache: ScaledBasis) -> int:
        return cache.b.shape[1]

    def _finish(self, cka):
        cka = np.clip(cka, 0.0, 1.0)
        return np.arccos(cka) if self.angular else 1.0 - cka

    def pair(self, a: ScaledBasis, b: ScaledBasis) -> float:
        num = np.sum((a.b.T @ b.b) ** 2)
        return float(self._finish(num / (a.norm * b.norm)))

    def block(self, caches_a, caches_b) -> np.ndarray:
        ba = [c.b for c in caches_a]
        g, oa, ob = cross_products(ba, ba if caches_a is caches_b else [c.b for c in caches_b])
        na = np.array([c.norm for c in caches_a])
        nb = np.array([c.norm for c in caches_b])
        return self._finish(block_sq_norms(g, oa, ob) / np.outer(na, nb))


class AngularCKA(LinearCKA):
    name = "cka-angular"
    is_metric = True
    summary = "arccos(linear CKA): the angle between centred Gram matrices (a true metric)"
    reference = "Kornblith et al. 2019; Williams et al. 2021 (angular form)"
    parameters = {"tol": 0.0}
    angular = True


class DebiasedBasis(NamedTuple):
    b: np.ndarray  # U S of the centred data
    d: np.ndarray  # (samples,) squared norm of each centred sample = diag(K)
    trace: float  # trace(K) = sum(d)
    hsic: float  # debiased HSIC of the network with itself


def _hsic1(cross_sq, dd, tr_a, tr_b, n):
    """Unbiased HSIC (Song et al. 2012) of linear kernels of centred data."""
    return (cross_sq - dd + tr_a * tr_b / ((n - 1) * (n - 2)) - 2.0 * dd / (n - 2)) / (n * (n - 3))


class DebiasedCKA(Metric):
    name = "cka-debiased"
    summary = (
        "1 - linear CKA with the unbiased HSIC estimator of Song et al. 2012 "
        "(can be negative for unrelated networks)"
    )
    reference = "Song et al. 2012; Kornblith et al. 2019; Nguyen, Raghu & Kornblith 2021"
    parameters: dict = {}
    scale_invariant = True
    min_samples = 4  # the unbiased estimator divides by n (n - 3)

    def prepare(self, x: np.ndarray) -> DebiasedBasis:
        n = x.shape[0]
        if n < 4:
            raise InputError(f"{n} samples: cka-debiased needs at least 4 samples")
        x = unit_scaled(x)
        u, s, _ = centred_svd(x)
        xc = x - x.mean(axis=0, keepdims=True)
        d = np.einsum("ij,ij->i", xc, xc)
        tr = float(d.sum())
        hsic = float(_hsic1(np.sum(s**4), d @ d, tr, tr, n))
        if not hsic > 0:
            raise InputError(
                "debiased HSIC of the network with itself is not positive (the unbiased "
                "estimator needs more samples for activations this degenerate); probe with "
                "more inputs or use 'cka'"
            )
        return DebiasedBasis(np.ascontiguousarray(u * s), d, tr, hsic)

    def width(self, cache: DebiasedBasis) -> int:
        return cache.b.shape[1]

    def pair(self, a: DebiasedBasis, b: DebiasedBasis) -> float:
        n = a.d.shape[0]
        h = _hsic1(np.sum((a.b.T @ b.b) ** 2), a.d @ b.d, a.trace, b.trace, n)
        return float(1.0 - h / np.sqrt(a.hsic * b.hsic))

    def block(self, caches_a, caches_b) -> np.ndarray:
        same = caches_a is caches_b
        ba = [c.b for c in caches_a]
        g, oa, ob = cross_products(ba, ba if same else [c.b for c in caches_b])
        da, _ = stack([c.d[:, None] for c in caches_a])
        db = da if same else stack([c.d[:, None] for c in caches_b])[0]
        n = da.shape[0]
        ta = np.array([c.trace for c in caches_a])
        tb = np.array([c.trace for c in caches_b])
        h = _hsic1(block_sq_norms(g, oa, ob), da.T @ db, ta[:, None], tb[None, :], n)
        ha = np.array([c.hsic for c in caches_a])
        hb = np.array([c.hsic for c in caches_b])
        return 1.0 - h / np.sqrt(np.outer(ha, hb))


class CentredGram(NamedTuple):
    k: np.ndarray  # flattened centred RBF Gram matrix (samples**2,)
    norm: float


class RbfCKA(Metric):
    name = "cka-rbf"
    summary = (
        "1 - CKA with Gaussian kernels exp(-|xi - xj|^2 / (2 sigma^2)), sigma = bandwidth "
        "x the median distance between the network's samples"
    )
    reference = "Kornblith et al. 2019 (bandwidth as a fraction of the median distance)"
    parameters = {"bandwidth": 0.8}
    max_samples = 6000
    scale_invariant = True  # sigma scales with the data
    min_samples = 3  # 2 samples: every centred Gram matrix is the same up to scale

    def check_params(self) -> None:
        bw = self.params["bandwidth"]
        if not (isinstance(bw, (int, float)) and 0 < bw < float("inf")):
            raise MetricsError(f"cka-rbf: bandwidth must be finite and > 0, got {bw!r}")

    def prepare(self, x: np.ndarray) -> CentredGram:
        n = x.shape[0]
        if n > self.max_samples:
            raise InputError(
                f"{n} samples: cka-rbf stores a samples x samples Gram matrix per network; "
                f"subsample to at most {self.max_samples} samples"
            )
        x = unit_scaled(x)
        xc = x - x.mean(axis=0, keepdims=True)
        sq = np.einsum("ij,ij->i", xc, xc)
        d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (xc @ xc.T), 0.0)
        med = float(np.median(np.sqrt(d2[np.triu_indices(n, 1)])))
        if not med > 0:
            raise InputError("all samples are identical: the median distance is 0")
        sigma = self.params["bandwidth"] * med
        k = np.exp(-d2 / (2.0 * sigma**2))
        k -= k.mean(axis=0, keepdims=True)
        k -= k.mean(axis=1, keepdims=True)
        return CentredGram(k.ravel(), float(np.linalg.norm(k)))

    def pair(self, a: CentredGram, b: CentredGram) -> float:
        return float(1.0 - np.clip(a.k @ b.k / (a.norm * b.norm), 0.0, 1.0))

    def block(self, caches_a, caches_b) -> np.ndarray:
        ka = np.stack([c.k for c in caches_a], axis=1)
        g = ka.T @ ka if caches_a is caches_b else ka.T @ np.stack([c.k for c in caches_b], 1)
        na = np.array([c.norm for c in caches_a])
        nb = np.array([c.norm for c in caches_b])
        return 1.0 - np.clip(g / np.outer(na, nb), 0.0, 1.0)
