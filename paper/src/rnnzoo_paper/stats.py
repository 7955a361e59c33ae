"""Statistics behind the findings: silhouette scores, permutation tests, verdict rules.

Every verdict in ``report.md`` is decided by one of the rules here, stated in the report:

- :func:`verdict`: **agrees** when the effect is in the paper's direction and significant
  (p <= ``ALPHA``); **differs** when the opposite effect is significant, or when the effect is
  not significant although every compared group has at least ``N_ENOUGH`` networks (the test
  had the networks to see it); **inconclusive at this zoo size** otherwise;
- :func:`threshold_verdict`: a threshold claim ("the vast majority") agrees when met and
  differs when it fails on at least ``N_ENOUGH`` networks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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
    sums = np.matmul(d, onehot)  # (m, n, k) summed distance to each group (batched GEMM)
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


@dataclass(frozen=True)
class LabelTest:
    """How strongly networks cluster by a label on one distance matrix.

    Attributes
    ----------
    silhouette : float
        Mean silhouette of the label groups, computed within each stratum (e.g. the
        architecture silhouette among the tanh networks and among the relu networks) and
        averaged with weights by stratum size; without strata, on the whole matrix.
    p_value : float
        One-sided permutation p-value that the labels cluster:
        ``(1 + #{s_perm >= s}) / (1 + n_permutations)``, labels permuted within strata.
    p_lower : float
        The opposite tail, ``(1 + #{s_perm <= s}) / (1 + n_permutations)``: small when the
        label groups are *less* clustered than chance.
    null_mean : float
        Mean silhouette of the permuted labelings (the chance level; usually below 0).
    n : int
        Networks compared.
    min_group : int
        Size of the smallest label group (over all strata).
    groups : int
        Number of label groups.
    null : ndarray or None
        The silhouettes of the permuted labelings (the firmness of a verdict reads the
        p-values of resampled silhouettes off it).
    """

    silhouette: float
    p_value: float
    p_lower: float
    null_mean: float
    n: int
    min_group: int
    groups: int
    null: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def testable(self) -> bool:
        return self.groups >= 2 and self.min_group >= 2 and math.isfinite(self.silhouette)


def _stratified(d: np.ndarray, codes: np.ndarray, parts: list[np.ndarray]) -> np.ndarray:
    """Size-weighted mean over strata of the silhouettes of labelings ``codes (m, n)``."""
    total = np.zeros(codes.shape[0])
    weight = 0
    for idx in parts:
        sub = codes[:, idx]
        if len(np.unique(sub[0])) < 2:
            continue  # one label in this stratum: it says nothing about the label
        _, local = np.unique(sub, return_inverse=True)
        local = local.reshape(sub.shape)
        s = _silhouettes(d[np.ix_(idx, idx)], local)
        if not np.isfinite(s).all():
            continue
        total += len(idx) * s
        weight += len(idx)
    return total / weight if weight else np.full(codes.shape[0], np.nan)


def label_test(
    d: np.ndarray,
    labels: np.ndarray,
    strata: np.ndarray | None = None,
    n_permutations: int = N_PERMUTATIONS,
    seed: int = 0,
) -> LabelTest:
    """Silhouette of ``labels`` on ``d`` (within ``strata``) with permutation p-values.

    Permutations shuffle the labels within each stratum, which keeps every stratum's
    label counts, so the test asks "do networks of the same label sit closer together
    than other networks of the same stratum?" (e.g. architecture clustering among networks
    of the same activation), and confounding by the other factor is removed.
    """
    d = np.asarray(d, dtype=float)
    labels = _strings(labels)
    codes = _codes(labels)
    counts = np.bincount(codes) if codes.size else np.zeros(0, dtype=int)
    groups = int((counts > 0).sum())
    min_group = int(counts[counts > 0].min()) if groups else 0
    st = np.zeros(len(codes), dtype=np.int64) if strata is None else _codes(strata)
    parts = [np.flatnonzero(st == k) for k in np.unique(st)]
    s = float(_stratified(d, codes[None], parts)[0]) if groups >= 2 else math.nan
    if not math.isfinite(s):
        return LabelTest(s, math.nan, math.nan, math.nan, len(labels), min_group, groups)
    rng = np.random.default_rng(seed)
    null = []
    for done in range(0, n_permutations, 200):
        batch = np.repeat(codes[None], min(200, n_permutations - done), axis=0)
        for idx in parts:
            batch[:, idx] = rng.permuted(batch[:, idx], axis=1)
        null.append(_stratified(d, batch, parts))
    null = np.concatenate(null)
    p_upper = (1 + int(np.sum(null >= s - 1e-12))) / (1 + len(null))
    p_lower = (1 + int(np.sum(null <= s + 1e-12))) / (1 + len(null))
    return LabelTest(
        s, p_upper, p_lower, float(np.mean(null)), len(labels), min_group, groups, null
    )


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


def verdict(
    in_direction: bool, p_value: float, min_group: int, p_opposite: float = math.nan
) -> str:
    """The rule for a tested effect (module docstring).

    ``p_value`` tests the paper's direction, ``p_opposite`` (optional) the opposite one.
    """
    if math.isfinite(p_value) and p_value <= ALPHA and in_direction:
        return AGREES
    if math.isfinite(p_opposite) and p_opposite <= ALPHA:
        return DIFFERS
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


def topology_verdict(
    p_topology: float, excess_topology: float, p_geometry: float, excess_geometry: float, margin
) -> str:
    """The rule for "topology clusters much less than geometry" (SVCCA), from excesses.

    ``excess_*``: silhouette minus its chance level (the permutation null's mean).
    *agrees* when geometry clusters (p <= ``ALPHA``) and topology clearly less (its p >
    ``ALPHA``, or its excess at least ``margin`` lower); *differs* when topology clusters
    significantly and at least as strongly; *inconclusive at this zoo size* otherwise.
    """
    clearly_less = p_geometry <= ALPHA and (
        p_topology > ALPHA or excess_topology <= excess_geometry - margin
    )
    if clearly_less:
        return AGREES
    if p_topology <= ALPHA and excess_topology >= excess_geometry:
        return DIFFERS
    return INCONCLUSIVE


def agreement_verdict(pairs: list[tuple[float, float, int]]) -> str:
    """The rule for "SVCCA and CKA reach the same clustering decisions" (Appendix E).

    ``pairs``: for each testable label, (SVCCA p, CKA p, smallest group). *agrees* when the
    two tests reach the same decision (p <= ``ALPHA``) for every label and one of them is
    significant or every group has ``N_ENOUGH`` networks; *differs* when they disagree with
    ``N_ENOUGH`` networks per group; *inconclusive at this zoo size* otherwise (and when no
    label is testable).
    """
    if not pairs:
        return INCONCLUSIVE
    same = all((pa <= ALPHA) == (pb <= ALPHA) for pa, pb, _ in pairs)
    any_sig = any(pa <= ALPHA or pb <= ALPHA for pa, pb, _ in pairs)
    min_group = min(m for _, _, m in pairs)
    if same and not any_sig and min_group < N_ENOUGH:
        return INCONCLUSIVE
    if same:
        return AGREES
    return DIFFERS if min_group >= N_ENOUGH else INCONCLUSIVE
