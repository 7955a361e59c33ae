import itertools
import math

import numpy as np
import pytest

from rnnzoo_paper import stats


def _clustered(n_per: int, k: int, spread: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, 5)) * 3
    x = np.concatenate([c + spread * rng.normal(size=(n_per, 5)) for c in centres])
    labels = np.repeat([f"g{i}" for i in range(k)], n_per)
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    return d, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_silhouette_equals_sklearn(seed):
    from sklearn.metrics import silhouette_score

    d, labels = _clustered(5, 3, 2.0, seed)
    labels = labels.copy()
    labels[0] = "solo"  # a group of one scores 0, as in sklearn
    assert stats.silhouette(d, labels) == pytest.approx(
        silhouette_score(d, labels, metric="precomputed"), abs=1e-12
    )


def test_silhouette_of_one_group_is_nan():
    d, _ = _clustered(4, 1, 1.0)
    assert math.isnan(stats.silhouette(d, np.array(["a"] * 4)))


def test_clustered_labels_are_significant_and_random_labels_are_not():
    d, labels = _clustered(6, 3, 0.3)
    t = stats.label_test(d, labels)
    assert t.silhouette > 0.5
    assert t.p_value == pytest.approx(1 / (1 + stats.N_PERMUTATIONS))
    assert (t.n, t.min_group, t.groups) == (18, 6, 3)
    rng = np.random.default_rng(3)
    shuffled = labels[rng.permutation(len(labels))]
    assert stats.label_test(d, shuffled).p_value > 0.05


def test_strata_remove_confounding_by_the_other_factor():
    # two strata far apart, no label effect within them; label A is mostly in stratum X
    strata = np.repeat(["X", "Y"], 10)
    labels = np.array(list("AAAAAAAABB") + list("AABBBBBBBB"))
    confounded, stratified = [], []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        x = np.concatenate([rng.normal(size=(10, 3)), 20 + rng.normal(size=(10, 3))])
        d = np.linalg.norm(x[:, None] - x[None], axis=-1)
        confounded.append(stats.label_test(d, labels, n_permutations=199).p_value)
        stratified.append(stats.label_test(d, labels, strata, n_permutations=199).p_value)
    # without strata the stratum difference looks like a label effect; with them it does not
    assert max(confounded) <= 0.05
    assert np.mean(stratified) > 0.2
    assert np.sum(np.array(stratified) <= 0.05) <= 2


def test_a_label_that_never_varies_within_a_stratum_is_not_testable():
    d, labels = _clustered(4, 2, 0.3)
    t = stats.label_test(d, labels, strata=labels)
    assert not t.testable
    assert math.isnan(t.p_value)


def test_lower_tail_detects_anti_clustering():
    # turn a clustered labelling into an anti-clustered one: groups become mutually far apart
    d, labels = _clustered(6, 3, 0.3)
    anti = d.max() - d
    np.fill_diagonal(anti, 0.0)
    t = stats.label_test(anti, labels)
    assert t.silhouette < t.null_mean
    assert t.p_lower == pytest.approx(1 / (1 + stats.N_PERMUTATIONS))
    assert t.p_value > 0.5
    assert stats.verdict(t.silhouette > t.null_mean, t.p_value, 3, t.p_lower) == stats.DIFFERS


def test_p_values_are_uniform_under_the_null():
    rng = np.random.default_rng(0)
    ps = []
    for _ in range(40):
        x = rng.normal(size=(16, 4))
        d = np.linalg.norm(x[:, None] - x[None], axis=-1)
        ps.append(stats.label_test(d, np.repeat(["a", "b"], 8), n_permutations=199).p_value)
    assert 0.3 < np.mean(ps) < 0.7
    assert np.mean(np.array(ps) <= 0.05) < 0.2


def test_exact_two_group_test_enumerates_all_arrangements():
    a, b = np.array([0.1, 0.2, 0.3]), np.array([0.5, 0.6, 0.7])
    # a holds the three smallest of six values: 1 of C(6, 3) = 20 arrangements
    assert stats.exact_two_group_test(a, b) == pytest.approx(1 / 20)
    assert stats.exact_two_group_test(b, a) == pytest.approx(1.0)
    # the exact p equals the share of arrangements at least as extreme, counted by hand
    vals = np.array([0.1, 0.5, 0.3, 0.2, 0.6, 0.7])
    obs = vals[:3].mean() - vals[3:].mean()
    stat = [
        vals[list(i)].mean() - np.delete(vals, list(i)).mean()
        for i in itertools.combinations(range(6), 3)
    ]
    assert stats.exact_two_group_test(vals[:3], vals[3:]) == pytest.approx(
        np.mean(np.array(stat) <= obs + 1e-12)
    )


def test_verdict_rules():
    assert stats.verdict(True, 0.01, 3) == stats.AGREES
    assert stats.verdict(False, 0.01, 3) == stats.INCONCLUSIVE
    assert stats.verdict(True, 0.2, 3) == stats.INCONCLUSIVE
    assert stats.verdict(True, 0.2, stats.N_ENOUGH) == stats.DIFFERS
    assert stats.verdict(True, math.nan, 50) == stats.INCONCLUSIVE
    assert stats.threshold_verdict(True, 2) == stats.AGREES
    assert stats.threshold_verdict(False, 2) == stats.INCONCLUSIVE
    assert stats.threshold_verdict(False, stats.N_ENOUGH) == stats.DIFFERS


def test_mean_se_ignores_nan():
    v = np.array([[1.0, np.nan], [3.0, 2.0], [np.nan, np.nan]])
    mean, se = stats.mean_se(v)
    assert mean.tolist() == [2.0, 2.0]
    assert se[0] == pytest.approx(np.std([1, 3], ddof=1) / np.sqrt(2))
    assert se[1] == 0.0
