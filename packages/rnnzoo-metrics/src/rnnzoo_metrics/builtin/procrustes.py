"""Procrustes angular shape distance (Williams et al. 2021)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

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


class ScaledBasis(NamedTuple):
    b: np.ndarray  # (samples, r) = U S of the centred data: B B^T = X X^T
    norm: float  # normaliser of the metric (||X||_F or ||X^T X||_F)


class Procrustes(Metric):
    name = "procrustes"
    is_metric = True
    summary = (
        "angular shape distance arccos(||Xa^T Xb||_* / (||Xa||_F ||Xb||_F)) of centred "
        "data: the angle left after the best rotation (a true metric)"
    )
    reference = "Williams, Kunz, Kornblith & Linderman 2021 (NeurIPS), alpha = 1"
    parameters: dict = {}
    scale_invariant = True
    min_samples = 3  # 2 centred samples span one direction: every pair is identical

    def prepare(self, x: np.ndarray) -> ScaledBasis:
        u, s, _ = centred_svd(unit_scaled(x))
        return ScaledBasis(np.ascontiguousarray(u * s), float(np.sqrt(np.sum(s**2))))

    def width(self, cache: ScaledBasis) -> int:
        return cache.b.shape[1]

    def pair(self, a: ScaledBasis, b: ScaledBasis) -> float:
        nuc = np.linalg.svd(a.b.T @ b.b, compute_uv=False).sum()
        return float(np.arccos(np.clip(nuc / (a.norm * b.norm), -1.0, 1.0)))

    def block(self, caches_a, caches_b) -> np.ndarray:
        same = caches_a is caches_b
        ba = [c.b for c in caches_a]
        g, oa, ob = cross_products(ba, ba if same else [c.b for c in caches_b])
        i, j = tile_pairs(len(caches_a), len(caches_b), same)
        na = np.array([c.norm for c in caches_a])
        nb = np.array([c.norm for c in caches_b])
        dist = np.empty(len(i))
        for sel, m in pair_blocks(g, oa, ob, i, j):
            # B = U S is as ill-conditioned as the data, and every small singular value
            # counts in the nuclear norm: a batched SVD, not the Gram-eigenvalue shortcut
            nuc = singular_values(m, fast=False).sum(axis=1)
            cos = nuc / (na[i[sel]] * nb[j[sel]])
            dist[sel] = np.arccos(np.clip(cos, -1.0, 1.0))
        return tile_matrix(dist, i, j, (len(caches_a), len(caches_b)), same, self.self_value)
