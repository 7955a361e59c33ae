"""Statistics behind the findings: silhouette scores, permutation tests, verdict rules.

Every verdict in ``report.md`` is decided by one of the rules here, stated in the report:

- :func:`verdict`: **agrees** when the effect is in the paper's direction and significant
  (p <= ``ALPHA``); **differs** when it is not significant although every compared group has
  at least ``N_ENOUGH`` networks (the test had the networks to see it), or when a threshold
  claim fails on such a population; **inconclusive at this zoo size** otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: significance level of every test in the report
ALPHA = 0.05
#: networks per compared group from which a non-significant result counts as "differs"
N_ENOUGH = 10
#: permutations of the label tests (seeded; p has resolution 1 / (N_PERMUTATIONS + 1))
N_PERMUTATIONS = 999

AGREES = "agrees"
DIFFERS = "differs"
INCONCLUSIVE = "inconclusive at this zoo size"


def silhouette(d: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of ``labels`` on the distance matrix ``d`` (Rousseeuw 1987).

    ``s_i = (b_i - a_i) / max(a_i, b_i)`` with ``a_i`` the mean distance from ``i`` to the
    other members of its group and ``b_i`` the smallest mean distance to another group;
    ``s_i = 0`` for a group of one. Equal to ``sklearn.metrics.silhouette_score(d, labels,
    metric="precomputed")`` (tested); vectorised so that permutation tests are cheap.

    Returns NaN when there are fewer than two groups or every group has one member.
    """
    return float(_silhouettes(np.asarray(d, dtype=float), _codes(labels)[None])[0])


def _strings(values) -> np.ndarray:
    return np.array([str(v) for v in np.asarray(values).ravel().tolist()], dtype=str)


def _codes(labels: np.ndarray) -> np.ndarray:
    _, codes = np.unique(_strings(labels), return_inverse=True)
    return codes.astype(np.int64)


def _silhouettes(d: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Silhouette of every row of ``codes`` (labelings, ``(m, n)``) on ``d``."""
    m, n = codes.shape
    k = int(codes.max()) + 1 if codes.size else 0
    if k < 2 or n < 3:
        return np.full(m, np.nan)
    onehot = np.zeros((m, n, k))
    np.put_along_axis(onehot, codes[:, :, None], 1.0, axis=2)
    sizes = onehot.sum(axis=1)  # (m, k)
    sums = np.einsum("ij,mjk->mik", d, onehot)  # (m, n, k) summed distance to each group
    own = np.take_along_axis(sizes, codes, axis=1)  # (m, n)
    own_sum = np.take_along_axis(sums, codes[:, :, None], axis=2)[:, :, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        a = own_sum / (own - 1)
        mean_other = sums / sizes[:, None, :]
    np.put_along_axis(mean_other, codes[:, :, None], np.inf, axis=2)
    mean_other = np.where(sizes[:, None, :] > 0, mean_other, np.inf)
    b = mean_other.min(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = (b - a) / np.maximum(a, b)
    s = np.where((own > 1) & np.isfinite(s), s, 0.0)
    valid = (sizes > 0).sum(axis=1) >= 2
    return np.where(valid & (sizes.max(axis=1) > 1), s.mean(axis=1), np.nan)


def _permute_within(codes: np.ndarray, strata: np.ndarray | None, rng, n: int) -> np.ndarray:
    out = np.empty((n, codes.size), dtype=np.int64)
    groups = (
        [np.arange(codes.size)]
        if strata is None
        else [np.flatnonzero(strata == s) for s in np.unique(strata)]
    )
    for r in range(n):
        perm = codes.copy()
        for g in groups:
            perm[g] = codes[g][rng.permutation(len(g))]
        out[r] = perm
    return out


@dataclass(frozen=True)
class LabelTest:
    """How strongly networks cluster by a label on one distance matrix.

    Attributes
    ----------
    silhouette : float
        Mean silhouette of the label groups.
    p_value : float
        One-sided permutation p-value: ``(1 + #{s_perm >= s}) / (1 + n_permutations)``,
        labels permuted within the strata (the other factor), so e.g. architecture
        clustering is not credited with activation differences.
    n : int
        Networks compared.
    min_group : int
        Size of the smallest label group.
    groups : int
        Number of label groups.
    """

    silhouette: float
    p_value: float
    n: int
    min_group: int
    groups: int

    @property
    def testable(self) -> bool:
        return self.groups >= 2 and self.min_group >= 2 and math.isfinite(self.silhouette)


def label_test(
    d: np.ndarray,
    labels: np.ndarray,
    strata: np.ndarray | None = None,
    n_permutations: int = N_PERMUTATIONS,
    seed: int = 0,
) -> LabelTest:
    """Silhouette of ``labels`` on ``d`` with a stratified permutation p-value."""
    d = np.asarray(d, dtype=float)
    labels = _strings(labels)
    codes = _codes(labels)
    counts = np.bincount(codes) if codes.size else np.zeros(0, dtype=int)
    groups = int((counts > 0).sum())
    min_group = int(counts[counts > 0].min()) if groups else 0
    s = silhouette(d, labels)
    if not math.isfinite(s) or groups < 2:
        return LabelTest(s, math.nan, len(labels), min_group, groups)
    st = None if strata is None else _codes(strata)
    rng = np.random.default_rng(seed)
    null = np.concatenate(
        [
            _silhouettes(d, _permute_within(codes, st, rng, min(200, n_permutations - done)))
            for done in range(0, n_permutations, 200)
        ]
    )
    p = (1 + int(np.sum(null >= s - 1e-12))) / (1 + len(null))
    return LabelTest(s, p, len(labels), min_group, groups)


def mean_se(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over ``axis`` ignoring NaN (s.e. 0 for one value)."""
    v = np.asarray(values, dtype=float)
    n = np.sum(np.isfinite(v), axis=axis)
    total = np.nansum(v, axis=axis)
    mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
    dev = np.where(np.isfinite(v), v - np.expand_dims(mean, axis), 0.0)
    var = np.sum(dev**2, axis=axis) / np.maximum(n - 1, 1)
    se = np.where(n > 1, np.sqrt(var / np.maximum(n, 1)), 0.0)
    return mean, se


def verdict(in_direction: bool, p_value: float, min_group: int) -> str:
    """The rule for a tested effect (module docstring)."""
    if math.isfinite(p_value) and p_value <= ALPHA and in_direction:
        return AGREES
    if min_group >= N_ENOUGH and math.isfinite(p_value):
        return DIFFERS
    return INCONCLUSIVE


def threshold_verdict(met: bool, n: int) -> str:
    """The rule for a threshold claim (e.g. "the vast majority", >= 90%) on ``n`` networks."""
    if met:
        return AGREES
    return DIFFERS if n >= N_ENOUGH else INCONCLUSIVE


def exact_two_group_test(
    values_a: np.ndarray, values_b: np.ndarray, n_permutations: int = 9999, seed: int = 0
) -> float:
    """One-sided permutation p-value that mean(a) < mean(b) (exact when few arrangements)."""
    a = np.asarray(values_a, dtype=float)
    b = np.asarray(values_b, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) == 0 or len(b) == 0:
        return math.nan
    both = np.concatenate([a, b])
    obs = a.mean() - b.mean()
    n, k = len(both), len(a)
    if math.comb(n, k) <= n_permutations:
        from itertools import combinations

        stats = []
        for idx in combinations(range(n), k):
            mask = np.zeros(n, dtype=bool)
            mask[list(idx)] = True
            stats.append(both[mask].mean() - both[~mask].mean())
        stats = np.asarray(stats)
        return float(np.mean(stats <= obs + 1e-12))
    rng = np.random.default_rng(seed)
    count = 0
    for _ in range(n_permutations):
        perm = rng.permutation(both)
        count += perm[:k].mean() - perm[k:].mean() <= obs + 1e-12
    return (1 + count) / (1 + n_permutations)
