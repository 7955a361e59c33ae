"""Bad inputs give one clear error naming the cause (and the network)."""

import os
import sys

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
    with pytest.raises(
        rm.InputError, match=r"10 samples for 20 units: svcca needs at least units \+ 2 = 22"
    ):
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


def test_samples_boundary_for_cca():
    """Centring leaves n - 1 dimensions: n = units + 1 would make every correlation 1."""
    with pytest.raises(rm.InputError, match="5 samples for 4 units"):
        rm.pairwise([good(5, 4), good(5, 4, 1)], "pwcca", progress=False)
    d = rm.pairwise([good(6, 4), good(6, 4, 1)], "svcca", threshold=1.0, progress=False)
    assert d.values[0, 1] > 0.01


def test_complex_activations_are_refused():
    with pytest.raises(rm.InputError, match="network 'b': complex activations"):
        rm.pairwise({"a": good(), "b": good() + 1j}, "cka", progress=False)


def test_graph_dataset_errors_name_the_network():
    xr = pytest.importorskip("xarray")
    w = np.full((2, 3, 3), np.nan)
    w[:, :2, :2] = 0.5
    r = np.zeros((2, 3, 1))
    r[1, 0, 0] = np.nan  # a node inside graph_n_nodes without a readout position
    ds = xr.Dataset(
        {
            "graph_weight": (("network", "node", "node_to"), w),
            "graph_node_readout": (("network", "node", "readout"), r),
            "graph_n_nodes": ("network", [2, 2]),
        },
        coords={"network": ["gru-a", "gru-b"]},
    )
    with pytest.raises(rm.InputError, match="network 'gru-b': graph weights and node readouts"):
        rm.pairwise(ds, "fixed-point-graph", progress=False)


class CountingList(list):
    loads = 0

    def __getitem__(self, i):
        CountingList.loads += 1
        return super().__getitem__(i)


def test_sample_mismatch_stops_before_preparing_everything():
    nets = CountingList([good(50, 4, s) for s in range(30)])
    nets[2] = good(40, 4)
    CountingList.loads = 0
    with pytest.raises(rm.InputError, match="network '02' has 40 samples but network '00'"):
        rm.pairwise(nets, "svcca", progress=False)
    assert CountingList.loads == 3
    with pytest.raises(rm.InputError, match="network '02' has 40 samples"):
        rm.pairwise(nets, "svcca", n_jobs=2, progress=False)


class BuggyPrepare(rm.Metric):
    name = "buggy-prepare"

    def prepare(self, x):
        return x.nonexistent_attribute

    def pair(self, a, b):
        return 0.0


class BuggyPair(BuggyPrepare):
    name = "buggy-pair"

    def prepare(self, x):
        return x.shape[1]

    def pair(self, a, b):
        return {"not": "a number"}


class WrongBlockShape(BuggyPair):
    name = "wrong-block"

    def block(self, caches_a, caches_b):
        return np.zeros((len(caches_a) + 1, 1))


@pytest.mark.parametrize(
    ("metric", "match"),
    [
        (BuggyPrepare(), "network '0': metric 'buggy-prepare' .* raised AttributeError in prepare"),
        (BuggyPair(), "metric 'buggy-pair' .* raised TypeError while comparing networks"),
        (WrongBlockShape(), "metric 'wrong-block': block\\(\\) returned shape \\(3, 1\\)"),
    ],
)
def test_a_buggy_plugin_metric_is_named(metric, match):
    with pytest.raises(rm.PluginError, match=match) as info:
        rm.pairwise([good(), good(seed=1)], metric, progress=False)
    if not isinstance(metric, WrongBlockShape):  # who provides it: module or distribution
        assert f"({type(metric).__module__})" in str(info.value)


class DiesInWorker(BuggyPair):
    """Simulates a worker killed by the system (e.g. the out-of-memory killer)."""

    name = "dies-in-worker"
    parent = os.getpid()

    def block(self, caches_a, caches_b):
        if os.getpid() != self.parent:
            os._exit(9)
        return np.zeros((len(caches_a), len(caches_b)))


@pytest.mark.skipif(sys.platform == "win32", reason="worker processes are forked")
def test_a_killed_worker_gives_an_actionable_error():
    nets = [good(seed=s) for s in range(6)]
    with pytest.raises(rm.MetricsError, match="a worker process died .* fewer jobs"):
        rm.pairwise(nets, DiesInWorker(), tile=2, n_jobs=2, progress=False)


def test_debiased_cka_on_too_few_samples_says_what_to_do():
    x = np.zeros((6, 1))
    x[0] = 1.0  # one active sample: the unbiased self-HSIC is not positive
    with pytest.raises(rm.InputError, match="network '1': debiased HSIC .* use 'cka'"):
        rm.pairwise([good(6, 1), x], "cka-debiased", progress=False)


def test_a_tree_of_several_tasks_names_them_and_says_how_to_pick_one():
    xr = pytest.importorskip("xarray")

    def task(samples):
        h = np.random.default_rng(samples).normal(size=(2, samples, 3))
        return xr.Dataset(
            {"hidden_trained": (("network", "sample", "unit"), h)},
            coords={"network": ["net-a", "net-b"]},
        )

    tree = xr.DataTree.from_dict({"flipflop/g": task(20), "cdi/g": task(12)})
    with pytest.raises(rm.InputError, match=r"2 groups \(cdi, flipflop\).*--group cdi"):
        rm.pairwise(tree, "cka", progress=False)
    assert rm.pairwise(tree["flipflop"], "cka", progress=False).shape == (2, 2)
