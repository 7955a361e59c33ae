"""Extreme scales: scale-invariant metrics give the unscaled value; the others are exact or refuse.

Activations x 1e80 or x 1e-90 used to give 0 or 1 (CKA's ``s**4`` left float64) with
only numpy warnings. Each scale-invariant metric now rescales every network by a power of
two in ``prepare`` (exact), so what is left between a scaled and an unscaled computation is
rounding, bounded below.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnnzoo_metrics as rm
from rnnzoo_metrics.builtin import BUILTIN_METRICS
from rnnzoo_metrics.linalg import unit_scaled
from rnnzoo_metrics.synthetic import low_rank_networks

pytestmark = pytest.mark.filterwarnings("ignore::rnnzoo_metrics.PluginWarning")

SCALE_INVARIANT = [c.name for c in BUILTIN_METRICS if c.scale_invariant]
NETS = low_rank_networks(n_networks=3, samples=40, widths=(5, 7), seed=0)
N_SAMPLES = NETS[0].shape[0]

# Tolerance from float64 rounding (u = eps/2). fl(c*x) perturbs each entry by a relative
# u; the power-of-two rescaling in prepare is exact; the exact metric of the rescaled data
# equals the unscaled value (scale invariance). What remains is that perturbation plus the
# forward error of two evaluations, each bounded by gamma_n ~ n*u for the length-n (samples)
# inner products every Gram/cross product is built from: (1 + 2n) u, times the metric's
# condition factor, <= 4 here (arccos' of the angular forms at these values is <= 3.2;
# the CCA/CKA ratios of well-separated networks are O(1)). Observed: <= 26 eps; bound 162 eps.
U = np.finfo(float).eps / 2
TOL = 4 * (1 + 2 * N_SAMPLES) * U

BASE = {name: rm.pairwise(NETS, name, progress=False).values for name in SCALE_INVARIANT}


def test_the_built_in_activation_metrics_declare_scale_invariance():
    assert set(SCALE_INVARIANT) == {
        "svcca",
        "pwcca",
        "cka",
        "cka-angular",
        "cka-debiased",
        "cka-rbf",
        "procrustes",
    }
    assert all(i.scale_invariant for i in rm.available_metrics() if i.name in SCALE_INVARIANT)


@settings(max_examples=60, deadline=None)
@given(
    metric=st.sampled_from(SCALE_INVARIANT),
    exponents=st.lists(st.floats(-150.0, 150.0), min_size=3, max_size=3),
)
def test_scale_invariant_metrics_give_the_unscaled_value_from_1e_150_to_1e150(metric, exponents):
    scaled = [x * 10.0**e for x, e in zip(NETS, exponents, strict=True)]  # one scale per network
    got = rm.pairwise(scaled, metric, progress=False).values
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, BASE[metric], rtol=0, atol=TOL)


@settings(max_examples=30, deadline=None)
@given(metric=st.sampled_from(SCALE_INVARIANT), k=st.integers(-490, 490))
def test_a_power_of_two_scale_gives_bitwise_the_same_matrix(metric, k):
    got = rm.pairwise([np.ldexp(x, k) for x in NETS], metric, progress=False).values
    np.testing.assert_array_equal(got, BASE[metric])


@pytest.mark.parametrize("scale", [1e80, 1e-90, 1e150, 1e-150])
def test_the_scales_of_the_report(scale):
    """The values reported as 0 or 1: now those of the unscaled data, without warnings."""
    for metric in ("cka", "cka-debiased", "svcca", "procrustes"):
        got = rm.pairwise([x * scale for x in NETS], metric, progress=False).values
        np.testing.assert_allclose(got, BASE[metric], rtol=0, atol=TOL)


def test_unit_scaled_is_exact_and_leaves_tanh_range_data_alone():
    x = NETS[0]
    y = unit_scaled(x * 2.0**-700)
    assert 0.5 <= np.abs(y).max() < 1.0
    np.testing.assert_array_equal(unit_scaled(x), unit_scaled(y))
    t = np.tanh(x)
    if 0.5 <= np.abs(t).max() < 1.0:
        assert unit_scaled(t) is t
    z = np.zeros((3, 2))
    assert unit_scaled(z) is z


# -- metrics that are not scale invariant: exact, or a one-line refusal ---------------------
def graph(readout: np.ndarray, weights: np.ndarray | None = None) -> rm.FixedPointGraph:
    n = len(readout)
    return rm.FixedPointGraph(np.eye(n) if weights is None else weights, readout)


@settings(max_examples=40, deadline=None)
@given(exponent=st.floats(-150.0, 150.0))
def test_graph_distances_scale_exactly_with_their_inputs(exponent):
    """Both graph distances are homogeneous of degree 1 in the right inputs: check at scale."""
    rng = np.random.default_rng(0)
    s = 10.0**exponent
    w = [rng.dirichlet(np.ones(4), size=4) for _ in range(2)]
    d0 = rm.get_metric("fixed-point-graph")
    r = rng.normal(size=(4, 1))
    plain = d0.pair(d0.prepare(graph(r, w[0])), d0.prepare(graph(r, w[1])))
    scaled = d0.pair(d0.prepare(graph(r, w[0] * s)), d0.prepare(graph(r, w[1] * s)))
    # rounding of the n^2 scaled entries and of the norm: relative (n^2 + 2) u
    assert scaled == pytest.approx(plain * s, rel=18 * U, abs=0)
    # matched: stable nodes (w = I) at readouts r; scaling r and the unmatched cost by s
    # scales every ground cost, so the optimal matching and its cost scale exactly
    ra, rb = rng.normal(size=(3, 2)), rng.normal(size=(4, 2))
    m1 = rm.get_metric("fixed-point-graph-matched", unmatched_cost=1.0)
    ms = rm.get_metric("fixed-point-graph-matched", unmatched_cost=s)
    plain = m1.pair(m1.prepare(graph(ra)), m1.prepare(graph(rb)))
    scaled = ms.pair(ms.prepare(graph(ra * s)), ms.prepare(graph(rb * s)))
    assert np.isfinite(scaled)
    assert scaled > 0
    # per ground cost: differences and the 2-norm over 2k + 2 = 6 coordinates, then a sum of
    # 7 costs: relative error <= (6 + 2 + 7) u, doubled for the two evaluations
    assert scaled == pytest.approx(plain * s, rel=30 * U, abs=0)


def test_a_graph_distance_beyond_float64_is_refused_in_one_line():
    big = np.full((2, 2), 1e308)
    a, b = graph(np.zeros((2, 1)), big), graph(np.zeros((2, 1)), -big)
    with pytest.raises(rm.InputError, match="exceeds the float64 range") as info:
        rm.pairwise([a, b], "fixed-point-graph", progress=False)
    assert "\n" not in str(info.value)
    with pytest.raises(rm.InputError, match="exceeds the float64 range"):
        rm.pairwise(
            [graph(np.full((2, 1), 1e308), np.ones((2, 2))), graph(np.zeros((2, 1)))],
            "fixed-point-graph-matched",
            progress=False,
        )


class Overflowing(rm.Metric):
    """A plugin that overflows: the engine refuses its infinite value."""

    name = "overflowing"

    def prepare(self, x):
        return float(np.sum(x**2))

    def pair(self, a, b):
        return a * b


def test_an_infinite_value_is_refused_and_names_the_pair():
    nets = {"a": NETS[0] * 1e150, "b": NETS[1] * 1e150, "c": NETS[2]}
    with pytest.raises(rm.MetricsError, match="overflowing between networks 'a' and 'b'"):
        rm.pairwise(nets, Overflowing(), progress=False)
