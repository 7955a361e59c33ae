import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

rm = pytest.importorskip("rnnzoo_metrics")
try:
    import rnnzoo_metric_example as rsa_mod
except ImportError:  # not installed: test the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import rnnzoo_metric_example as rsa_mod


def test_rsa_matches_scipy_spearman():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 5)), rng.normal(size=(30, 7))
    m = rsa_mod.RSA()
    iu = np.triu_indices(30, 1)
    rdm = lambda a: 1 - np.corrcoef(a)  # noqa: E731
    expected = 1 - spearmanr(rdm(x)[iu], rdm(y)[iu]).statistic
    assert m.pair(m.prepare(x), m.prepare(y)) == pytest.approx(expected, abs=1e-12)
