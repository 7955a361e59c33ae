"""cdi: which points are on the line attractor, and line-attractor graphs of K nodes.

The networks here are relu vanilla networks built by hand, whose fixed points are known in
closed form: unit ``a`` integrates the stream cued by context 0 and is held at 0 in context 1
(``h_a' = relu(h_a + x₂ − 100 x₁)``), unit ``b`` the reverse: in each context a line
attractor (``h ≥ 0`` along one axis, eigenvalue exactly 1). Further units add isolated fixed
points on or off the states the network visits.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rnnzoo_dynamics.cdi import cdi_analysis, line_attractor_points, readout_weights
from rnnzoo_dynamics.fixed_points import FIXED, FinderOptions, FixedPoints, speed
from rnnzoo_dynamics.flow import probe_flow
from rnnzoo_dynamics.graphs import graphs_to_dataset, line_attractor_graph
from rnnzoo_dynamics.initial_states import condition_trials, trajectories
from rnnzoo_dynamics.linearize import linearize
from rnnzoo_dynamics.population import AnalysisOptions, analyze_population
from rnnzoo_dynamics.task_analyses.cdi import cued_channels
from rnnzoo_train.cells import get_cell
from rnnzoo_train.tasks import get_task

torch.set_num_threads(1)

#: u3's unstable fixed point sits this far off the line (near it); u4's far away
NEAR_OFFSET, FAR_OFFSET = 0.5, 20.0
EPS_INPUT = 0.01


def _integrator(extra: bool = True) -> tuple:
    """``(cell, params (1, ...))`` of the network of the module docstring.

    Inputs (context 0, context 1, stream 0, stream 1); units

    a = relu(h_a + x2 - 100 x1)                 context 0: line attractor h_a >= 0 (λ = 1)
    b = relu(h_b + x3 - 100 x0)                 context 1: line attractor h_b >= 0
    m = relu(h_m)                               marginal continuum h_m >= 0, never visited
    s = relu(2 h_s - 0.5 + 0.01 (x2 + x3))      fixed points 0 (λ = 0) and 0.5 (λ = 2)
    f = relu(2 h_f - 20)                        fixed points 0 and 20 (λ = 2)

    readout y = h_a + h_b + h_s. ``extra=False``: units a and b only.
    """
    n = 5 if extra else 2
    cell = get_cell("vanilla", "relu", n, 4, 1)
    W_x = torch.zeros(4, n)
    W_x[2, 0] = W_x[3, 1] = 1.0
    W_x[1, 0] = W_x[0, 1] = -100.0
    W_out = torch.zeros(n, 1)
    W_out[:2] = 1.0
    if extra:
        W_h = torch.diag(torch.tensor([1.0, 1.0, 1.0, 2.0, 2.0]))
        W_x[2:, 3] = EPS_INPUT
        b = torch.tensor([0.0, 0.0, 0.0, -NEAR_OFFSET, -FAR_OFFSET])
        W_out[3] = 1.0
    else:
        W_h = torch.eye(2)
        b = torch.zeros(2)
    params = {"W_x": W_x, "W_h": W_h, "b": b, "W_out": W_out, "b_out": torch.zeros(1)}
    return cell, {k: v[None].to(torch.float64) for k, v in params.items()}


def _points(states: np.ndarray, condition: np.ndarray, x_star: np.ndarray) -> FixedPoints:
    n = len(states)
    return FixedPoints(
        network=np.zeros(n, dtype=np.int64),
        condition=np.asarray(condition, dtype=np.int64),
        state=np.asarray(states, dtype=np.float64),
        q=np.zeros(n),
        kind=np.full(n, FIXED, dtype=object),
        n_merged=np.ones(n, dtype=np.int64),
        x_star=x_star,
        candidate_q=np.zeros((1, len(x_star), 1)),
        stats={},
        options=FinderOptions(),
    )


@pytest.fixture(scope="module")
def constructed():
    task = get_task("cdi")
    cell, params = _integrator()
    probe = task.probe()
    conditions = task.fixed_point_conditions()
    x_star = np.asarray(conditions.inputs, dtype=np.float64)
    traj = trajectories(cell, params, probe.inputs).numpy()
    groups = condition_trials(probe.labels, conditions.labels)
    line = [(5.0, 0, 0, 0, 0), (12.0, 0, 0, 0, 0)]  # on the line attractor
    near_saddle = (5.0, 0, 0, NEAR_OFFSET, 0)  # on the probe flow, leading λ = 2
    far_slow = (5.0, 0, 30.0, 0, 0)  # leading λ = 1 but where the network never goes
    far_saddle = (5.0, 0, 0, 0, FAR_OFFSET)
    context0 = np.array(line + [near_saddle, far_slow, far_saddle], dtype=np.float64)
    context1 = context0[:, [1, 0, 2, 3, 4]]  # the same along unit b
    states = np.vstack([context0, context1])
    condition = np.repeat([0, 1], 5)
    points = _points(states, condition, x_star)
    return task, cell, params, traj, groups, points


def test_the_constructed_points_are_true_fixed_points(constructed):
    _, cell, params, _, _, points = constructed
    h = torch.as_tensor(points.state)[None]
    x = torch.as_tensor(points.x_star[points.condition])[None]
    assert float(speed(cell, params, h, x).max()) < 1e-28
    lin = linearize(cell, params, points)
    lead = np.abs(lin.eig.eigenvalues).max(1)
    np.testing.assert_allclose(lead, [1, 1, 2, 1, 2] * 2)


def _flow_distance_by_hand(traj, groups, points):
    """At x* the line attractor holds every visited state: the flow is the visited states."""
    out = np.empty(len(points))
    for r in range(len(points)):
        visited = traj[0, groups[points.condition[r]]].reshape(-1, traj.shape[-1])
        radius = np.sqrt(((visited - visited.mean(0)) ** 2).sum(1).mean())
        out[r] = np.linalg.norm(visited - points.state[r], axis=1).min() / radius
    return out


def test_flow_distance_of_the_constructed_points(constructed):
    _, cell, params, traj, groups, points = constructed
    flow = probe_flow(cell, params, traj, points, groups)
    expected = _flow_distance_by_hand(traj, groups, points)
    np.testing.assert_allclose(flow.distance, expected, rtol=1e-10, atol=1e-12)
    # the set-up the next test relies on: three points near the flow, two far
    assert (expected[[0, 1, 2]] < 0.25).all()
    assert (expected[[3, 4]] > 1.0).all()


def test_off_attractor_points_are_excluded_and_counted(constructed):
    task, cell, params, traj, groups, points = constructed
    lin = linearize(cell, params, points)
    flow = probe_flow(cell, params, traj, points, groups)
    attractor, on_line = line_attractor_points(lin, flow.distance, task.n_steps)
    assert attractor.tolist() == [True, True, True, False, False] * 2
    assert on_line.tolist() == [True, True, False, False, False] * 2
    W = readout_weights(params, cell.state_size)
    ds = cdi_analysis(
        points,
        lin,
        W,
        cued_channels(task),
        ["net"],
        horizon=task.n_steps,
        on_line_attractor=on_line,
        attractor=attractor,
    )
    assert ds["n_points"].values.tolist() == [[5, 5]]
    assert ds["n_attractor_points"].values.tolist() == [[3, 3]]
    assert ds["n_line_attractor_points"].values.tolist() == [[2, 2]]
    # on the line: a perfect integrator, unit pulse -> exactly 1; spectrum (1, 0, 0, 0)
    np.testing.assert_allclose(ds["response_full"].values, 1.0, atol=1e-12)
    np.testing.assert_allclose(ds["spectrum"].values[0, 0], [1, 0, 0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(ds["ablation"].values[0, :, 0], 1.0, atol=1e-12)
    # every point: the near saddle's unstable mode reaches the readout, 0.01 * 2^29
    big = 1 + EPS_INPUT * 2.0 ** (task.n_steps - 1)
    # (the weights are float32 numbers: 0.01 is 0.0099999998)
    np.testing.assert_allclose(ds["response_full_all"].values, (4 + big) / 5, rtol=1e-6)
    np.testing.assert_allclose(ds["spectrum_all"].values[0, 0, 0], (1 + 1 + 2 + 1 + 2) / 5)


def test_a_context_without_line_attractor_points_is_nan_not_an_error(constructed):
    task, cell, params, traj, groups, points = constructed
    lin = linearize(cell, params, points)
    none = np.zeros(len(points), dtype=bool)
    ds = cdi_analysis(
        points, lin, readout_weights(params, 5), cued_channels(task), ["net"], 30, 0, None, none
    )
    assert np.isnan(ds["response_full"].values).all()
    assert ds["n_line_attractor_points"].values.tolist() == [[0, 0]]
    assert np.isfinite(ds["response_full_all"].values).all()
    with pytest.raises(ValueError, match="one entry per point"):
        cdi_analysis(
            points, lin, readout_weights(params, 5), [2, 3], ["net"], 30, 0, None, none[1:]
        )


def test_leading_mode_band_and_distance_cut():
    # |λ₁|^(T−1) within a factor 4 of 1 for T = 30: |λ₁| in [0.9533, 1.0490]
    lam = np.array([[1.04, 0.5], [1.06, 0.5], [0.96, 0.1], [0.94, 0.1], [np.nan, np.nan]])
    lam = np.vstack([lam, [[1.0, 0.2]] * 2])
    lin = SimpleNamespace(eig=SimpleNamespace(eigenvalues=lam.astype(complex)))
    dist = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.25, 0.26])
    attractor, on_line = line_attractor_points(lin, dist, 30)
    assert attractor.tolist() == [True] * 6 + [False]
    assert on_line.tolist() == [True, False, True, False, False, True, False]
    with pytest.raises(ValueError):
        line_attractor_points(lin, dist, 30, growth=1.0)


# --- line-attractor graphs -------------------------------------------------------------


def test_straight_uniform_attractor_gives_a_chain_of_k_nodes():
    rng = np.random.default_rng(0)
    direction = rng.normal(size=6)
    t = np.sort(rng.uniform(-2, 3, size=37))  # unevenly sampled points of the attractor
    perm = rng.permutation(len(t))
    for K in (2, 5, 20):
        g = line_attractor_graph(t[perm, None] * direction, t[perm], n_nodes=K, k=2)
        assert g.n_nodes == K
        np.testing.assert_allclose(g.node_readout[:, 0], np.linspace(t[0], t[-1], K))
        chain = np.zeros((K, K))
        idx = np.arange(K - 1)
        chain[idx, idx + 1] = chain[idx + 1, idx] = 1 / (K - 1)
        np.testing.assert_allclose(g.weight, chain, atol=1e-12)
        np.testing.assert_allclose(g.node_state, g.node_readout * direction, atol=1e-12)


def test_graph_node_count_does_not_depend_on_the_number_of_points():
    rng = np.random.default_rng(1)
    for n in (2, 3, 50, 400):
        y = rng.uniform(0, 1, size=n)
        y[:2] = [0.0, 1.0]
        states = np.stack([y, np.sin(3 * y), y**2], 1)
        g = line_attractor_graph(states, y[:, None], n_nodes=20)
        assert g.n_nodes == 20
        assert (g.weight == g.weight.T).all()
        assert (g.weight >= 0).all()
        # node points and stability come from the attractor point nearest in readout
        assert set(g.node_point.tolist()) <= set(range(n))


def test_uneven_parametrisation_gives_uneven_links():
    y = np.linspace(0, 1, 200)
    states = np.stack([y**3, np.zeros_like(y)], 1)  # state moves slowly, then fast
    g = line_attractor_graph(states, y, n_nodes=11)
    links = np.diag(g.weight, 1)
    assert (links > 0).all()  # the curve is always a chain
    assert (np.diff(links) > 0).all()
    np.testing.assert_allclose(links.sum(), 1.0)


def test_a_folded_attractor_links_nodes_of_distant_readouts():
    y = np.linspace(0, 1, 101)
    states = np.stack([np.minimum(y, 1 - y), 0.02 * y], 1)  # a hairpin
    g = line_attractor_graph(states, y, n_nodes=11)
    # nodes 4 and 6 (readouts 0.4, 0.6) lie 0.004 apart in state space
    length = np.linalg.norm(np.diff(g.node_state, axis=0), axis=1).sum()
    np.testing.assert_allclose(g.weight[4, 6], 0.004 / length, rtol=1e-9)
    assert g.weight[3, 7] > 0
    assert g.weight[2, 8] > 0
    straight = line_attractor_graph(np.stack([y, 0.02 * y], 1), y, n_nodes=11)
    assert straight.weight[4, 6] == 0.0


def test_fewer_than_two_distinct_readouts_is_no_attractor():
    g = line_attractor_graph(np.zeros((0, 3)), np.zeros(0), n_nodes=20)
    assert g.n_nodes == 0
    g = line_attractor_graph(np.ones((1, 3)), np.array([0.3]), n_nodes=20, node_point=[7])
    assert g.n_nodes == 1
    assert g.node_point.tolist() == [7]
    g = line_attractor_graph(np.eye(3), np.array([0.3, 0.3, 0.3]), n_nodes=20)
    assert g.n_nodes == 1
    assert g.weight.tolist() == [[0.0]]
    with pytest.raises(ValueError, match="n_nodes >= 2"):
        line_attractor_graph(np.eye(3), np.arange(3.0), n_nodes=1)


def test_line_attractor_graphs_are_read_by_rnnzoo_metrics():
    rm = pytest.importorskip("rnnzoo_metrics")
    y = np.linspace(-1, 1, 30)
    straight = line_attractor_graph(np.stack([y, 0 * y], 1), y, n_nodes=8)
    bent = line_attractor_graph(np.stack([y, np.abs(y)], 1), y, n_nodes=8)
    lone = line_attractor_graph(np.ones((1, 2)), np.array([0.0]), n_nodes=8)
    ds = graphs_to_dataset([straight, bent, straight, lone], ["a", "b", "c", "d"])
    assert ds["graph_n_nodes"].values.tolist() == [8, 8, 8, 1]
    assert ds["graph_node_state"].dims == ("network", "node", "state_dim")
    assert np.isnan(ds["graph_node_state"].values[3, 1:]).all()
    with pytest.warns(UserWarning, match="NaN"):
        d = rm.pairwise(ds, "fixed-point-graph", progress=False)
    assert float(d.values[0, 2]) == 0.0
    expected = np.linalg.norm(straight.weight - bent.weight)
    assert expected > 0
    np.testing.assert_allclose(float(d.values[0, 1]), expected, rtol=1e-12)
    assert np.isnan(d.values[0, 3])  # different node counts: NaN (paper footnote 5)


def test_analysis_of_a_line_attractor_network():
    task = get_task("cdi")
    cell, params = _integrator(extra=False)
    out = analyze_population(
        task, cell, params, ["integrator"], options=AnalysisOptions(n_starts=64)
    )
    fp = out["fixed_points"]
    cdi = out["cdi_linear"]
    for c in range(2):
        g = out[f"line_attractor_graph-context{c}"]
        K = int(g["graph_n_nodes"].values[0])
        assert K == 20
        w = g["graph_weight"].values[0]
        np.testing.assert_allclose(np.diag(w, 1), 1 / 19, rtol=1e-9)
        assert np.count_nonzero(w) == 2 * 19
        mine = fp["context"].values == c
        assert int(cdi["n_attractor_points"].values[0, c]) == int(
            fp["attractor_point"].values[mine].sum()
        )
        assert int(cdi["n_line_attractor_points"].values[0, c]) == int(
            fp["on_line_attractor"].values[mine].sum()
        )
        assert int(out["summary"][f"n_line_graph_nodes_context{c}"].values[0]) == 20
    assert (cdi["n_line_attractor_points"].values > 10).all()
    np.testing.assert_allclose(cdi["response_full"].values, 1.0, atol=1e-9)
    assert (fp["flow_distance"].values[fp["on_line_attractor"].values] <= 0.25).all()
