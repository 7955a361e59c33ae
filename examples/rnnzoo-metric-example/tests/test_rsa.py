import numpy as np
import pytest
from scipy.stats import spearmanr

rm = pytest.importorskip("rnnzoo_metrics")
rsa_mod = pytest.importorskip("rnnzoo_metric_example")


def test_rsa_matches_scipy_spearman():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 5)), rng.normal(size=(30, 7))
    m = rsa_mod.RSA()
    iu = np.triu_indices(30, 1)
    rdm = lambda a: 1 - np.corrcoef(a)  # noqa: E731
    expected = 1 - spearmanr(rdm(x)[iu], rdm(y)[iu]).statistic
    assert m.pair(m.prepare(x), m.prepare(y)) == pytest.approx(expected, abs=1e-12)
