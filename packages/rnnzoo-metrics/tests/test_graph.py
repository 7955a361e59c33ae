"""Fixed-point graph distances: the paper's sorted-matrix distance and the matched metric."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnnzoo_metrics as rm
from rnnzoo_metrics import FixedPointGraph

pytestmark = pytest.mark.filterwarnings("ignore::rnnzoo_metrics.PluginWarning")


def flipflop_like(n_bits=2, seed=0, jitter=0.01):
    """Stable corners with self-loops; saddles between neighbours split 50/50."""
    rng = np.random.default_rng(seed)
    corners = np.array(np.meshgrid(*[[-1.0, 1.0]] * n_bits)).reshape(n_bits, -1).T
    nodes, w_rows = list(corners), []
    n_st = len(corners)
    edges = []
    for i in range(n_st):
        for j in range(i + 1, n_st):
            if np.sum(corners[i] != corners[j]) == 1:
                nodes.append(0.5 * (corners[i] + corners[j]))
                edges.append((i, j))
    n = len(nodes)
    w = np.zeros((n, n))
    w[np.arange(n_st), np.arange(n_st)] = 1.0
    for k, (i, j) in enumerate(edges):
        w[n_st + k, i] = w[n_st + k, j] = 0.5
    del w_rows
    r = np.array(nodes) + jitter * rng.normal(size=(n, n_bits))
    return FixedPointGraph(w, r, np.arange(n) < n_st)


def permuted(g, seed):
    p = np.random.default_rng(seed).permutation(g.n_nodes)
    return FixedPointGraph(g.weights[np.ix_(p, p)], g.node_readout[p], g.stable[p])


def test_sorted_distance_ignores_node_order():
    g = flipflop_like(seed=1)
    m = rm.get_metric("fixed-point-graph")
    assert m.pair(m.prepare(g), m.prepare(permuted(g, 3))) == 0.0


def test_sorted_distance_is_euclidean_between_matrices():
    g = flipflop_like(seed=1)
    w = g.weights.copy()
    w[-1] = 0
    w[-1, 0] = 1.0  # one saddle now flows to a single corner
    h = FixedPointGraph(w, g.node_readout)
    m = rm.get_metric("fixed-point-graph")
    assert m.pair(m.prepare(g), m.prepare(h)) == pytest.approx(np.linalg.norm(g.weights - w))


def test_different_node_counts_are_nan_and_reported():
    graphs = [flipflop_like(2, seed=s) for s in range(3)] + [flipflop_like(3, seed=9)]
    graphs[-1] = FixedPointGraph(graphs[-1].weights, graphs[-1].node_readout[:, :2])
    with pytest.warns(UserWarning, match="3 of 6 pairs are NaN"):
        d = rm.pairwise(graphs, "fixed-point-graph", progress=False)
    assert d.attrs["n_nan_pairs"] == 3
    assert np.isnan(d.values[3, :3]).all()
    assert np.isfinite(d.values[:3, :3]).all()
    kept = rm.drop_incomparable(d)
    assert list(kept.network.values) == ["0", "1", "2"]


def test_matched_defined_for_different_node_counts():
    g2, g3 = flipflop_like(2, seed=0), flipflop_like(2, seed=0)
    extra = FixedPointGraph(
        np.pad(g3.weights, ((0, 1), (0, 1))) + np.diag([0] * g3.n_nodes + [1.0]),
        np.vstack([g3.node_readout, [[5.0, 5.0]]]),
    )
    m = rm.get_metric("fixed-point-graph-matched", unmatched_cost=0.7)
    # one extra, far-away stable node: exactly one unmatched-node cost
    assert m.pair(m.prepare(g2), m.prepare(extra)) == pytest.approx(0.7)
    assert m.pair(m.prepare(g2), m.prepare(permuted(g2, 5))) == pytest.approx(0.0, abs=1e-12)


def random_graph(rng, n_max=6, k=2):
    n = int(rng.integers(0, n_max + 1))
    w = rng.uniform(size=(n, n)) * (rng.uniform(size=(n, n)) < 0.4)
    r = np.round(rng.normal(size=(n, k)), 1)
    return FixedPointGraph(w, r)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), c=st.floats(0.05, 3.0))
def test_matched_is_a_metric(seed, c):
    """Identity, symmetry and triangle inequality (W1 on the augmented node space)."""
    rng = np.random.default_rng(seed)
    m = rm.get_metric("fixed-point-graph-matched", unmatched_cost=c)
    a, b, z = (m.prepare(random_graph(rng)) for _ in range(3))
    if rng.uniform() < 0.3:  # near-copies make the inequality tight
        b = a.copy()
        b[: len(b) // 2] += 0.01
    dab, dbz, daz = m.pair(a, b), m.pair(b, z), m.pair(a, z)
    assert m.pair(a, a.copy()) == pytest.approx(0.0, abs=1e-12)
    assert dab == pytest.approx(m.pair(b, a), abs=1e-12)
    assert daz <= dab + dbz + 1e-9
    assert dab <= daz + dbz + 1e-9
    assert dbz <= dab + daz + 1e-9
    # bounded by deleting every node of one graph and creating every node of the other
    assert dab <= c * (len(a) + len(b)) + 1e-9


def test_graph_dataset_input_layout():
    xr = pytest.importorskip("xarray")
    graphs = [flipflop_like(2, seed=s) for s in range(3)]
    small = FixedPointGraph(graphs[0].weights[:4, :4], graphs[0].node_readout[:4])
    graphs.append(small)
    n_max = max(g.n_nodes for g in graphs)
    w = np.full((4, n_max, n_max), np.nan)
    r = np.full((4, n_max, 2), np.nan)
    for i, g in enumerate(graphs):
        w[i, : g.n_nodes, : g.n_nodes] = g.weights
        r[i, : g.n_nodes] = g.node_readout
    ds = xr.Dataset(
        {
            "graph_weight": (("network", "node", "node_to"), w),
            "graph_node_readout": (("network", "node", "readout"), r),
            "graph_n_nodes": ("network", [g.n_nodes for g in graphs]),
        },
        coords={"network": ["a", "b", "c", "d"], "arch": ("network", ["gru"] * 2 + ["lstm"] * 2)},
    )
    d = rm.pairwise(ds, "fixed-point-graph-matched", progress=False)
    direct = rm.pairwise(graphs, "fixed-point-graph-matched", progress=False)
    np.testing.assert_allclose(d.values, direct.values, atol=1e-12)
    assert list(d.arch_to.values) == ["gru", "gru", "lstm", "lstm"]
