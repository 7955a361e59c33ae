"""Stratified bootstrap of networks, and the findings' tests recomputed on every resample.

A resample draws, within every cell type (architecture x activation), as many networks as
the cell has, with replacement (:func:`stratified_resamples`). Draws stay at the positions of
their cell, so labels and strata are the same in every resample and only the data move.

The tests are recomputed from precomputed quantities, never from the analyses:

- :func:`resampled_silhouettes`: the stratified label silhouette of
  :func:`rnnzoo_paper.stats.label_test` on the resampled sub-matrix of a stored distance
  matrix, vectorised over resamples. A network drawn twice has distance 0 to its copy, which
  would count as perfect clustering; pairs of copies are left out of every mean (each copy
  still counts as a member of its group), so the bootstrap distribution of the silhouette is
  centred on the zoo's own value instead of above it. Its p-values (:func:`null_p_values`)
  are read off the zoo's own permutation null: a fresh permutation test inside a resample
  would permute ~63% distinct networks (copies kept together), a test with less power than
  the zoo's, or split the copies across groups, which raises the null (both measured).
- :class:`TwoGroupTest`: the permutation test on means of
  :func:`rnnzoo_paper.stats.exact_two_group_test`, with one fixed set of permutation masks per
  group size (exact enumeration where the original is exact), as one matrix product.
"""

from __future__ import annotations

import math
from itertools import combinations

import numpy as np

from . import stats

#: resamples computed at once (memory: chunk x networks x networks)
_CHUNK = 100


def stratified_resamples(cells: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """``(n_resamples, n)`` indices: each cell type's networks drawn with replacement.

    Position ``i`` of every resample holds a network of the same cell type as network ``i``,
    so per-position labels (architecture, activation) are fixed across resamples.
    """
    cells = np.asarray([str(c) for c in np.asarray(cells).ravel().tolist()])
    rng = np.random.default_rng(seed)
    idx = np.empty((n_resamples, len(cells)), dtype=np.int64)
    for c in sorted(set(cells.tolist())):
        pos = np.flatnonzero(cells == c)
        idx[:, pos] = pos[rng.integers(0, len(pos), size=(n_resamples, len(pos)))]
    return idx


def resampled_silhouettes(
    d: np.ndarray,
    present: np.ndarray,
    labels: np.ndarray,
    strata: np.ndarray | None,
    idx: np.ndarray,
) -> dict[str, np.ndarray]:
    """The stratified label silhouette of :func:`rnnzoo_paper.stats.label_test`, per resample.

    Parameters
    ----------
    d : (n, n) array
        Distances between the task's networks (any value where not ``present``).
    present : (n,) bool
        Networks that are in the matrix the finding tests (e.g. comparable graphs).
    labels, strata : (n,) arrays
        The label tested and the other factor the silhouette is computed within (None: none).
    idx : (B, n) int
        Resamples from :func:`stratified_resamples` over the same networks' cell types.

    Returns
    -------
    dict
        Arrays of length B: ``silhouette`` (NaN where not testable), ``min_group`` (present
        networks, copies counted, in the smallest label group), ``testable`` (two groups of
        at least two networks and a finite silhouette). On the identity resample the
        silhouette equals the finding's (tested).
    """
    d = np.nan_to_num(np.asarray(d, dtype=float), nan=0.0)
    present = np.asarray(present, dtype=bool)
    codes = stats._codes(labels)
    k = int(codes.max()) + 1
    st = np.zeros(len(codes), dtype=np.int64) if strata is None else stats._codes(strata)
    parts = [np.flatnonzero(st == s) for s in np.unique(st)]
    member = (codes[:, None] == np.arange(k)).astype(float)  # (n, k)
    same_stratum = st[:, None] == st[None, :]
    b_all = idx.shape[0]
    res = {"silhouette": np.full(b_all, np.nan), "min_group": np.zeros(b_all)}
    res["testable"] = np.zeros(b_all, dtype=bool)
    for start in range(0, b_all, _CHUNK):
        ii = idx[start : start + _CHUNK]  # (c, n)
        c, n = ii.shape
        w = present[ii]  # (c, n)
        dd = d[ii[:, :, None], ii[:, None, :]]
        # pairs of distinct networks, both present, in one stratum (copies left out)
        m = (
            w[:, :, None] & w[:, None, :] & (ii[:, :, None] != ii[:, None, :]) & same_stratum
        ).astype(float)
        sums = np.matmul(dd * m, member)  # (c, n, k): distance to each group
        cnt = np.matmul(m, member)  # distinct members of each group
        own = member.astype(bool)[None]  # (1, n, k)
        own_sum = np.where(own, sums, 0.0).sum(axis=2)
        own_cnt = np.where(own, cnt, 0.0).sum(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            a = own_sum / own_cnt
            mean_other = np.where(own | (cnt == 0), np.inf, sums / cnt)
        b = mean_other.min(axis=2)
        with np.errstate(invalid="ignore", divide="ignore"):
            s = (b - a) / np.maximum(a, b)
        s = np.where((own_cnt > 0) & np.isfinite(s), s, 0.0)  # (c, n)
        # a stratum counts when its present rows hold >= 2 groups and one of >= 2 networks
        rows = np.zeros((c, n), dtype=bool)
        sizes = np.zeros((c, k))
        for pos in parts:
            cnt_s = w[:, pos].astype(float) @ member[pos]  # (c, k)
            sizes += cnt_s
            ok = ((cnt_s > 0).sum(1) >= 2) & (cnt_s.max(1) > 1)
            rows[:, pos] = w[:, pos] & ok[:, None]
        nrows = rows.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            sil = (s * rows).sum(1) / nrows
        groups = (sizes > 0).sum(1)
        min_group = np.where(sizes > 0, sizes, np.inf).min(1)
        testable = (nrows > 0) & (groups >= 2) & (min_group >= 2) & np.isfinite(sil)
        sl = slice(start, start + c)
        res["silhouette"][sl] = np.where(testable, sil, np.nan)
        res["min_group"][sl] = np.where(np.isfinite(min_group), min_group, 0)
        res["testable"][sl] = testable
    return res


def null_p_values(null: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Permutation p-values of ``observed`` statistics against one null sample.

    ``(1 + #{null >= s}) / (1 + len(null))`` and the lower tail likewise, as
    :func:`rnnzoo_paper.stats.label_test` (NaN stays NaN).
    """
    null = np.sort(np.asarray(null, dtype=float))
    obs = np.asarray(observed, dtype=float)
    upper = len(null) - np.searchsorted(null, obs - 1e-12, side="left")
    lower = np.searchsorted(null, obs + 1e-12, side="right")
    with np.errstate(invalid="ignore"):
        p_upper = np.where(np.isfinite(obs), (1 + upper) / (1 + len(null)), np.nan)
        p_lower = np.where(np.isfinite(obs), (1 + lower) / (1 + len(null)), np.nan)
    return p_upper, p_lower


class TwoGroupTest:
    """Fast repeats of :func:`rnnzoo_paper.stats.exact_two_group_test` on resampled groups.

    ``p(a, b)``: one-sided p-value that ``mean(a) < mean(b)``. As the original, exact (every
    split of the pooled values, p = the fraction at or below the observed difference) when
    there are at most ``n_permutations`` splits, else ``(1 + count) / (1 + n_permutations)``
    over random splits. The splits of each group size are drawn once (seeded) and reused for
    every resample, so a resample costs one matrix product.
    """

    def __init__(self, n_permutations: int = 1999, seed: int = 0):
        self.n_permutations = n_permutations
        self.seed = seed
        self._masks: dict[tuple[int, int], tuple[np.ndarray, bool]] = {}

    def _splits(self, n: int, k: int) -> tuple[np.ndarray, bool]:
        key = (n, k)
        if key not in self._masks:
            if math.comb(n, k) <= self.n_permutations:
                rows = list(combinations(range(n), k))
                masks = np.zeros((len(rows), n))
                for r, cols in enumerate(rows):
                    masks[r, list(cols)] = 1.0
                self._masks[key] = (masks, True)
            else:
                rng = np.random.default_rng(self.seed + 7919 * n + k)
                keys = rng.random((self.n_permutations, n))
                masks = (np.argsort(np.argsort(keys, axis=1), axis=1) < k).astype(float)
                self._masks[key] = (masks, False)
        return self._masks[key]

    def p(self, a: np.ndarray, b: np.ndarray) -> float:
        a = np.asarray(a, dtype=float)
        b = np.asarray(b, dtype=float)
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        if len(a) == 0 or len(b) == 0:
            return math.nan
        both = np.concatenate([a, b])
        n, k = len(both), len(a)
        masks, exact = self._splits(n, k)
        sa = masks @ both
        diff = sa / k - (both.sum() - sa) / (n - k)
        obs = a.mean() - b.mean()
        count = int(np.sum(diff <= obs + 1e-12))
        return count / len(masks) if exact else (1 + count) / (1 + len(masks))
