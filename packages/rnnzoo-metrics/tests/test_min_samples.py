"""Too few samples for a metric to tell networks apart are refused, naming the minimum.

With 2 samples, ``cka`` and ``procrustes`` returned 0 for any pair: centring leaves one
dimension, so every network is the same up to rotation and scale. Each metric declares
``min_samples`` (plugins too); these tests show each built-in minimum is the smallest
count at which values differ between pairs, and that one fewer makes every pair equal.
"""

from __future__ import annotations

import numpy as np
import pytest

import rnnzoo_metrics as rm
from rnnzoo_metrics.builtin import BUILTIN_METRICS
from rnnzoo_metrics.metric import validate_metric_class

pytestmark = pytest.mark.filterwarnings("ignore::rnnzoo_metrics.PluginWarning")

ACTIVATION_METRICS = [c for c in BUILTIN_METRICS if c.input_kind == "activations"]


def nets(samples: int, units: int = 1, n: int = 6) -> list[np.ndarray]:
    return [np.random.default_rng(i).normal(size=(samples, units)) for i in range(n)]


def values(metric: rm.Metric, xs: list[np.ndarray]) -> np.ndarray:
    """Every pair's value, computed without the engine's check (metric.prepare/block)."""
    caches = [metric.prepare(x) for x in xs]
    block = metric.block(caches, caches)
    return block[np.triu_indices(len(xs), 1)]


@pytest.mark.parametrize("cls", ACTIVATION_METRICS, ids=lambda c: c.name)
def test_below_the_minimum_is_refused_naming_metric_count_and_minimum(cls):
    m = cls.min_samples
    with pytest.raises(rm.InputError) as info:
        rm.pairwise(nets(m - 1), cls.name, progress=False)
    msg = str(info.value)
    assert f"{m - 1} samples" in msg
    assert cls.name in msg
    assert f"at least {m}" in msg
    assert "\n" not in msg


@pytest.mark.parametrize("cls", ACTIVATION_METRICS, ids=lambda c: c.name)
def test_at_the_minimum_the_values_tell_pairs_apart(cls):
    d = rm.pairwise(nets(cls.min_samples), cls.name, progress=False).values
    pairs = d[np.triu_indices(len(d), 1)]
    assert np.ptp(pairs) > 1e-3, pairs


NOT_CCA = [c for c in ACTIVATION_METRICS if c.name not in ("svcca", "pwcca", "cka-debiased")]


@pytest.mark.parametrize("cls", NOT_CCA, ids=lambda c: c.name)
def test_one_sample_fewer_makes_every_pair_the_same(cls):
    """Why the minimum is 3: with 2 samples every pair equals the self-comparison.

    (cka-debiased's 4 is where its estimator is defined: it divides by n (n - 3).)
    """
    m = cls()
    v = values(m, nets(cls.min_samples - 1))
    # up to arccos's ~2e-8 resolution near 0 (docs/metrics.md)
    np.testing.assert_allclose(v, m.self_value, atol=1e-7)


def test_cca_minimum_depends_on_the_width():
    from rnnzoo_metrics.linalg import centred_svd

    xs = nets(5, units=4)  # units + 1 samples: both bases span all 4 centred dimensions
    ua, ub = centred_svd(xs[0])[0], centred_svd(xs[1])[0]
    np.testing.assert_allclose(np.linalg.svd(ua.T @ ub, compute_uv=False), 1.0, atol=1e-12)
    with pytest.raises(rm.InputError, match="5 samples for 4 units: svcca needs at least .* 6"):
        rm.pairwise(nets(5, units=4), "svcca", progress=False)
    d = rm.pairwise(nets(6, units=4), "svcca", threshold=1.0, progress=False).values
    assert np.ptp(d[np.triu_indices(len(d), 1)]) > 1e-3


class NeedsTen(rm.Metric):
    name = "needs-ten"
    min_samples = 10

    def prepare(self, x):
        return x.mean()

    def pair(self, a, b):
        return abs(a - b)


def test_a_plugin_declares_its_own_minimum():
    with pytest.raises(rm.InputError, match="9 samples; needs-ten needs at least 10 samples"):
        rm.pairwise(nets(9), NeedsTen(), progress=False)
    assert rm.pairwise(nets(10), NeedsTen(), progress=False).shape == (6, 6)
    assert NeedsTen.info().min_samples == 10


@pytest.mark.parametrize("bad", [1, 0, "3", 2.5, True])
def test_an_invalid_minimum_is_a_broken_plugin(bad):
    cls = type("Bad", (NeedsTen,), {"min_samples": bad, "name": "bad-min"})
    assert "min_samples must be an integer >= 2" in validate_metric_class(cls)


def test_list_json_shows_minimum_and_scale_invariance(capsys):
    import json

    from rnnzoo_metrics.cli import main

    assert main(["list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["metrics"]}
    assert rows["cka"]["min_samples"] == 3
    assert rows["cka"]["scale_invariant"] is True
    assert rows["cka-debiased"]["min_samples"] == 4
    assert rows["fixed-point-graph"]["scale_invariant"] is False
