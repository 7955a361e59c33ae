"""Bad inputs give one clear error naming the cause (and the network)."""

import numpy as np
import pytest

import rnnzoo_metrics as rm

pytestmark = pytest.mark.filterwarnings("ignore::rnnzoo_metrics.PluginWarning")


def good(n=50, p=4, seed=0):
    return np.random.default_rng(seed).normal(size=(n, p))


@pytest.mark.parametrize(
    ("bad", "match"), [(np.nan, "NaN at sample 3, unit 1"), (np.inf, "inf at sample 3, unit 1")]
)
def test_non_finite(bad, match):
    x = good()
    x[3, 1] = bad
    with pytest.raises(rm.InputError, match=f"network '1'.*{match}"):
        rm.pairwise([good(), x], "svcca", progress=False)


def test_all_units_constant_names_the_network():
    with pytest.raises(rm.InputError, match="network 'b'.*zero variance"):
        rm.pairwise({"a": good(), "b": np.ones((50, 4))}, "cka", progress=False)


def test_some_zero_variance_units_are_fine():
    x = good()
    x[:, 2] = 5.0  # a dead unit
    d = rm.pairwise([good(seed=1), x], "svcca", progress=False)
    assert np.isfinite(d.values).all()
    m = rm.get_metric("procrustes")
    assert m.pair(m.prepare(x), m.prepare(np.delete(x, 2, axis=1))) == pytest.approx(0, abs=1e-7)


def test_samples_fewer_than_units():
    with pytest.raises(rm.InputError, match="10 samples for 20 units: svcca needs more samples"):
        rm.pairwise([good(10, 20), good(10, 20, 1)], "svcca", progress=False)
    # CKA and Procrustes are well defined there
    assert rm.pairwise([good(10, 20), good(10, 20, 1)], "cka", progress=False).shape == (2, 2)


def test_mismatched_sample_counts():
    with pytest.raises(rm.InputError, match="network '1' has 40 samples but network '0' has 50"):
        rm.pairwise([good(50), good(40)], "cka", progress=False)


def test_wrong_shapes():
    with pytest.raises(rm.InputError, match="must be 2-D"):
        rm.pairwise([good(), np.zeros(5)], "cka", progress=False)
    with pytest.raises(rm.InputError, match="cannot read networks"):
        rm.pairwise("not data", "cka", progress=False)


def test_unknown_metric_and_parameters():
    with pytest.raises(
        rm.UnknownMetricError, match="unknown metric 'svca' \\(did you mean 'svcca'"
    ):
        rm.pairwise([good(), good()], "svca", progress=False)
    with pytest.raises(rm.MetricsError, match="has no parameter 'treshold'"):
        rm.get_metric("svcca", treshold=0.9)
    with pytest.raises(rm.MetricsError, match="threshold must be in"):
        rm.get_metric("svcca", threshold=1.5)
    with pytest.raises(rm.MetricsError, match="not a valid float"):
        rm.get_metric("svcca", threshold="abc")


def test_graph_metric_given_activations():
    with pytest.raises(rm.InputError, match="expected a FixedPointGraph"):
        rm.pairwise([good(), good()], "fixed-point-graph", progress=False)
