"""Transition graphs, nearest-neighbour graphs and the graph Dataset layout."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from rnnzoo_dynamics.fixed_points import find_fixed_points
from rnnzoo_dynamics.graphs import (
    Graph,
    TransitionOptions,
    graphs_to_dataset,
    lexicographic_order,
    modal_node_count,
    modal_node_counts,
    nearest_neighbour_graph,
    resample_along_readout,
    transition_graphs,
)
from rnnzoo_dynamics.linearize import linearize
from rnnzoo_dynamics.testing import diagonal_tanh_params
from rnnzoo_train.cells import get_cell, stack_params


@pytest.fixture(scope="module")
def three_bit():
    """Two decoupled 3-unit tanh networks: a 3-bit memory with 27 known fixed points."""
    cell = get_cell("vanilla", "tanh", 3, 1, 3)
    nets = [
        diagonal_tanh_params(np.array([2.0, 1.6, 3.0]), np.array([0.1, -0.05, 0.0])),
        diagonal_tanh_params(np.array([2.5, 2.0, 1.8]), np.array([0.0, 0.05, -0.1])),
    ]
    params = stack_params(nets)
    starts = np.random.default_rng(0).uniform(-1.2, 1.2, size=(2, 1024, 3))
    fp = find_fixed_points(cell, params, [0.0], starts)
    lin = linearize(cell, params, fp)
    return cell, params, fp, lin


def test_transition_graph_of_the_three_bit_memory(three_bit):
    cell, params, fp, lin = three_bit
    graphs = transition_graphs(cell, params, fp, lin, options=TransitionOptions(seed=1))
    for i, g in enumerate(graphs):
        w = np.diag(params["W_h"][i].numpy())
        assert g.n_nodes == 27
        assert g.node_stable.sum() == 8
        np.testing.assert_allclose(g.weight.sum(1), 1.0)
        np.testing.assert_allclose(g.unresolved, 0.0, atol=1e-12)
        h = g.node_readout  # readout = state here (W_out = I)
        middle = w * (1 - h**2) > 1  # the unit sits on its unstable (middle) root
        corners = np.sign(h)
        for a in range(27):
            dest = np.nonzero(g.weight[a])[0]
            assert g.node_stable[dest].all()
            if g.node_stable[a]:
                # a stable node only returns to itself (confirmed by simulation)
                assert dest.tolist() == [a]
                continue
            # a saddle goes to the corners that agree on its stable (nonzero) coordinates,
            # and reaches all 2^k of them (k = unstable dimensions, 100 perturbations)
            fixed = ~middle[a]
            allowed = [b for b in range(27) if g.node_stable[b]]
            allowed = [b for b in allowed if (corners[b][fixed] == corners[a][fixed]).all()]
            assert sorted(dest.tolist()) == sorted(allowed)
            assert len(allowed) == 2 ** g.node_n_unstable[a]
        # lexicographic readout order (paper footnote 5)
        np.testing.assert_array_equal(lexicographic_order(g.node_readout), np.arange(27))


def test_transition_graph_marks_an_unstable_node_without_targets_unresolved():
    # h' = tanh(2 h) with only its unstable origin as a node: perturbations land nowhere
    cell = get_cell("vanilla", "tanh", 1, 1, 1)
    params = stack_params([diagonal_tanh_params(np.array([2.0]), np.array([0.0]))])
    fp = find_fixed_points(cell, params, [0.0], np.array([[0.0]]))
    lin = linearize(cell, params, fp)
    assert len(fp) == 1
    assert lin.n_unstable[0] == 1
    opt = TransitionOptions(n_perturbations=10, max_steps=200)
    (g,) = transition_graphs(cell, params, fp, lin, options=opt)
    assert g.weight.tolist() == [[0.0]]
    assert g.unresolved.tolist() == [1.0]


def test_nearest_neighbour_graph_of_a_line_is_a_chain():
    t = np.linspace(-1, 1, 9)
    rng = np.random.default_rng(3)
    direction = rng.normal(size=5)
    states = t[:, None] * direction[None, :]
    perm = rng.permutation(9)
    g = nearest_neighbour_graph(states[perm], t[perm, None], k=2)
    np.testing.assert_allclose(g.node_readout[:, 0], t)
    w = g.weight
    assert (w == w.T).all()
    for a in range(8):
        assert w[a, a + 1] == 1.0
    # each node links to its two neighbours; an end's second-nearest (the third node from
    # that end) also links back to it
    assert w.sum(1).tolist() == [2, 2, 3, 2, 2, 2, 3, 2, 2]


def test_resample_along_readout():
    r = np.random.default_rng(4).permutation(100).astype(float)
    pick = resample_along_readout(r, 5)
    assert r[pick].tolist() == [0, 25, 50, 74, 99] or r[pick].tolist() == [0, 25, 50, 75, 99]
    assert len(resample_along_readout(r[:3], 5)) == 3
    # a context without any point (seen on a demo-zoo relu network) gives an empty graph
    assert len(resample_along_readout(np.zeros((0, 1)), 5)) == 0
    g = nearest_neighbour_graph(np.zeros((0, 4)), np.zeros((0, 1)))
    assert g.n_nodes == 0


def _graph(n, seed):
    rng = np.random.default_rng(seed)
    return Graph(
        weight=rng.uniform(size=(n, n)),
        node_readout=rng.normal(size=(n, 3)),
        node_stable=rng.uniform(size=n) > 0.5,
        node_point=np.arange(n),
        unresolved=np.zeros(n),
        node_n_unstable=np.zeros(n, np.int64),
    )


def test_graph_dataset_layout_and_modal_count():
    graphs = [_graph(4, 0), _graph(4, 1), _graph(6, 2), _graph(4, 3)]
    ids = ["a", "b", "c", "d"]
    ds = graphs_to_dataset(graphs, ids)
    assert ds["graph_weight"].dims == ("network", "node", "node_to")
    assert ds["graph_node_readout"].dims == ("network", "node", "readout")
    assert ds["graph_node_stable"].dims == ("network", "node")
    assert ds["graph_n_nodes"].values.tolist() == [4, 4, 6, 4]
    assert ds["graph_weight"].dtype == np.float64
    assert np.isnan(ds["graph_weight"].values[0, 4:]).all()
    assert np.isnan(ds["graph_weight"].values[0, :, 4:]).all()
    np.testing.assert_array_equal(ds["graph_weight"].values[2], graphs[2].weight)
    assert ds.attrs["graph_modal_n_nodes"] == 4
    assert ds["graph_is_modal"].values.tolist() == [True, True, False, True]
    assert modal_node_count(ds["graph_n_nodes"].values, ids) == (4, ["c"])
    ds = ds.assign_coords(arch=("network", ["gru", "gru", "lstm", "lstm"]))
    table = modal_node_counts(ds, by=["arch"]).set_index("arch")
    assert table.loc["gru", "modal_n_nodes"] == 4
    assert table.loc["lstm", "n_non_modal"] == 1


def test_rnnzoo_metrics_reads_the_graphs(three_bit):
    rm = pytest.importorskip("rnnzoo_metrics")
    cell, params, fp, lin = three_bit
    graphs = transition_graphs(cell, params, fp, lin)
    ds = graphs_to_dataset(graphs, ["net-a", "net-b"])
    d = rm.pairwise(ds, "fixed-point-graph", progress=False)
    assert list(d.coords["network"].values) == ["net-a", "net-b"]
    # metrics re-sort by readout: the same order as ours, so the distance is ours
    expected = np.linalg.norm(graphs[0].weight - graphs[1].weight)
    np.testing.assert_allclose(float(d.values[0, 1]), expected, rtol=1e-12)
    # the two memories have the same topology: stable rows agree exactly
    both_stable = graphs[0].node_stable & graphs[1].node_stable
    assert both_stable.sum() == 8
    diff = graphs[0].weight[both_stable] - graphs[1].weight[both_stable]
    assert np.abs(diff).max() == 0.0


def test_all_corner_patterns_are_present(three_bit):
    _, _, fp, lin = three_bit
    mine = fp.network == 0
    stable = np.sign(fp.state[mine][lin.n_unstable[mine] == 0])
    assert {tuple(s) for s in stable} == set(itertools.product([-1.0, 1.0], repeat=3))


def test_unresolved_trajectories_reveal_a_missed_attractor(three_bit):
    from rnnzoo_dynamics.population import AnalysisOptions
    from rnnzoo_dynamics.task_analyses.transitions import refine_points as _refine

    cell, params, fp, lin = three_bit
    # pretend the finder missed one corner of network 0
    mine = np.nonzero((fp.network == 0) & (lin.n_unstable == 0))[0]
    missing = mine[0]
    partial = fp.select(np.arange(len(fp)) != missing)
    plin = linearize(cell, params, partial)
    graphs = transition_graphs(cell, params, partial, plin)
    assert graphs[0].n_nodes == 26
    assert graphs[0].unresolved.max() > 0  # some saddle perturbations land nowhere known
    assert len(graphs[0].unresolved_states) > 0
    assert graphs[1].unresolved.max() == 0
    new = _refine(cell, params, [0.0], partial, graphs, AnalysisOptions())
    merged = partial.merge(new)
    assert merged.stats["n_fixed"].tolist() == [27, 27]
    back = merged.state[(merged.network == 0)]
    assert np.linalg.norm(back - fp.state[missing], axis=1).min() < 1e-10
    # the merged points are the full set, in the order a single pass lists them (by
    # position), whatever pass found each; nothing is duplicated
    assert len(merged) == 54
    np.testing.assert_allclose(merged.state, fp.state, atol=1e-10)
    mlin = linearize(cell, params, merged)
    regraph = transition_graphs(cell, params, merged, mlin)
    np.testing.assert_allclose(regraph[0].unresolved, 0.0, atol=1e-12)
