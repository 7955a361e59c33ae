"""CCA-family metrics: SVCCA (Raghu et al. 2017) and PWCCA (Morcos et al. 2018).

Both prepare each network once: centre, thin SVD, keep the top ``k`` left singular
vectors ``U`` (the smallest ``k`` whose cumulative ``s**2`` reaches ``threshold`` of the
total). The canonical correlations of two networks are then the singular values of the
small matrix ``U_a^T U_b`` (``k_a x k_b``), so a tile of pairs is one stacked GEMM
followed by the tiny per-pair problems batched through NumPy's stacked gufuncs: blocks of
equal shape are gathered into one ``(pairs, k_a, k_b)`` array and solved in one call
(:func:`rnnzoo_metrics.linalg.singular_values`), never one LAPACK call per pair.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import InputError, MetricsError
from ..linalg import (
    centred_svd,
    cross_products,
    pair_blocks,
    singular_values,
    tile_matrix,
    tile_pairs,
    unit_scaled,
)
from ..metric import Metric


def keep_components(s: np.ndarray, threshold: float) -> int:
    """Smallest ``k`` with ``sum(s[:k]**2) >= threshold * sum(s**2)`` (at most ``len(s)``)."""
    var = s**2
    cum = np.cumsum(var) / var.sum()
    return int(min(len(s), np.searchsorted(cum, threshold, side="left") + 1))


def _check_samples(name: str, x: np.ndarray) -> None:
    # centring leaves n - 1 sample dimensions: a basis of n - 1 components spans all of
    # them, and every canonical correlation with it is 1 whatever the other network does
    n, p = x.shape
    if n <= p + 1:
        raise InputError(
            f"{n} samples for {p} units: {name} needs at least units + 2 = {p + 2} samples "
            "(with fewer, every canonical correlation is 1); probe with more inputs"
        )


class _CCABase(Metric):
    parameters = {"threshold": 0.95}
    scale_invariant = True
    min_samples = 3  # and units + 2 (checked in prepare: the minimum depends on the width)

    def check_params(self) -> None:
        t = self.params["threshold"]
        if not (isinstance(t, (int, float)) and 0.0 < t <= 1.0):
            raise MetricsError(f"{self.name}: threshold must be in (0, 1], got {t!r}")


class SVCCA(_CCABase):
    name = "svcca"
    summary = (
        "1 - mean of the min(kx, ky) canonical correlations between the top principal "
        "components (smallest k with cumulative s^2 >= threshold of the centred data)"
    )
    reference = "Raghu et al. 2017; Maheswaranathan et al. 2019, Fig. 1c"
    parameters = {"threshold": 0.95}

    def prepare(self, x: np.ndarray) -> np.ndarray:
        _check_samples(self.name, x)
        u, s, _ = centred_svd(unit_scaled(x))
        return np.asfortranarray(u[:, : keep_components(s, self.params["threshold"])])

    def width(self, cache: np.ndarray) -> int:
        return cache.shape[1]

    def pair(self, a: np.ndarray, b: np.ndarray) -> float:
        rho = np.clip(np.linalg.svd(a.T @ b, compute_uv=False), 0.0, 1.0)
        return float(1.0 - rho.mean())

    def block(self, caches_a, caches_b) -> np.ndarray:
        same = caches_a is caches_b
        g, oa, ob = cross_products(caches_a, caches_b)
        i, j = tile_pairs(len(caches_a), len(caches_b), same)
        dist = np.empty(len(i))
        for sel, m in pair_blocks(g, oa, ob, i, j):
            rho = np.clip(singular_values(m), 0.0, 1.0)
            dist[sel] = 1.0 - rho.mean(axis=1)  # rho has min(ka, kb) columns
        return tile_matrix(dist, i, j, (len(caches_a), len(caches_b)), same, self.self_value)


class PWBasis(NamedTuple):
    u: np.ndarray  # (samples, k) orthonormal basis of the kept principal components
    sv: np.ndarray  # (k, units) = diag(s) V^T: the neurons expressed in that basis


class PWCCA(_CCABase):
    name = "pwcca"
    summary = (
        "1 - projection-weighted mean canonical correlation (weights: summed |<canonical "
        "variate, neuron>|), averaged over both directions so that it is symmetric"
    )
    reference = "Morcos, Raghu & Bengio 2018"
    parameters = {"threshold": 1.0}

    def prepare(self, x: np.ndarray) -> PWBasis:
        _check_samples(self.name, x)
        u, s, vt = centred_svd(unit_scaled(x))
        k = keep_components(s, self.params["threshold"])
        return PWBasis(np.asfortranarray(u[:, :k]), s[:k, None] * vt[:k])

    def width(self, cache: PWBasis) -> int:
        return cache.u.shape[1]

    def pair(self, a: PWBasis, b: PWBasis) -> float:
        p, rho, rt = np.linalg.svd(a.u.T @ b.u, full_matrices=False)
        rho = np.clip(rho, 0.0, 1.0)
        alpha_a = np.abs(p.T @ a.sv).sum(axis=1)
        alpha_b = np.abs(rt @ b.sv).sum(axis=1)
        sim_a = float(alpha_a @ rho / alpha_a.sum())
        sim_b = float(alpha_b @ rho / alpha_b.sum())
        return 1.0 - 0.5 * (sim_a + sim_b)

    def block(self, caches_a, caches_b) -> np.ndarray:
        same = caches_a is caches_b
        ua = [c.u for c in caches_a]
        g, oa, ob = cross_products(ua, ua if same else [c.u for c in caches_b])
        i, j = tile_pairs(len(caches_a), len(caches_b), same)
        dist = np.empty(len(i))
        for sel, m in pair_blocks(g, oa, ob, i, j, scale=4):
            p, rho, rt = np.linalg.svd(m, full_matrices=False)  # one batched call
            rho = np.clip(rho, 0.0, 1.0)
            sims = np.zeros(len(sel))
            # projection weights: one stacked product per network of the chunk
            for idx, caches, dirs in (
                (i[sel], caches_a, p.transpose(0, 2, 1)),
                (j[sel], caches_b, rt),
            ):
                alpha = np.empty(rho.shape)
                for net in np.unique(idx):
                    at = np.flatnonzero(idx == net)
                    alpha[at] = np.abs(dirs[at] @ caches[net].sv).sum(axis=2)
                sims += np.einsum("pk,pk->p", alpha, rho) / alpha.sum(axis=1)
            dist[sel] = 1.0 - 0.5 * sims
        return tile_matrix(dist, i, j, (len(caches_a), len(caches_b)), same, self.self_value)
