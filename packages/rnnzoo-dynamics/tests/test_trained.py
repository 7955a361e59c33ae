"""Trained flip-flop networks (the real trainer): every stable point found is an attractor."""

from __future__ import annotations

import numpy as np
import torch

from rnnzoo_dynamics.population import AnalysisOptions, analyze_population
from rnnzoo_dynamics.results import NETWORK_COORDS
from rnnzoo_train.zoo import open_zoo


def test_stable_points_of_trained_networks_are_attractors(trained_flipflop_zoo):
    zoo = open_zoo(trained_flipflop_zoo)
    index = zoo.index("flipflop")
    ids = list(index.index)
    assert (index["status"] == "ok").all()
    cell, params = zoo.population("flipflop", ids, dtype=torch.float64)
    out = analyze_population(
        zoo.task("flipflop"),
        cell,
        params,
        ids,
        probe=zoo.probe("flipflop"),
        network_coords=index[list(NETWORK_COORDS)],
        options=AnalysisOptions(n_starts=256),  # few starts: refinement completes the set
    )
    fp, graph = out["fixed_points"], out["transition_graph"]
    rng = np.random.default_rng(0)
    for i, nid in enumerate(ids):
        rows = np.nonzero(fp["network"].values == nid)[0]
        fixed = rows[fp["kind"].values[rows] == "fixed"]
        assert (fp["q"].values[fixed] < 1e-10).all()
        stable = fixed[fp["n_unstable"].values[fixed] == 0]
        assert len(stable) >= 1
        # independent check: perturb each stable point and run the cell forward
        h_star = torch.as_tensor(fp["state"].values[stable])  # (n, S)
        delta = torch.as_tensor(rng.normal(size=(len(stable), 20, cell.state_size)))
        delta = 0.02 * delta / delta.norm(dim=-1, keepdim=True)
        h = (h_star[:, None] + delta).reshape(1, -1, cell.state_size)
        x = torch.zeros(1, h.shape[1], cell.n_inputs, dtype=torch.float64)
        p = {k: v[i : i + 1] for k, v in params.items()}
        with torch.no_grad():
            for _ in range(400):
                h = cell.step(p, h, x)
        dist = (h.reshape(len(stable), 20, -1) - h_star[:, None]).norm(dim=-1)
        assert dist.max() < 1e-3, (nid, dist.max())
        # the transition graph agrees: stable nodes only return to themselves
        g = graph.sel(network=nid)
        n = int(g["graph_n_nodes"])
        w = g["graph_weight"].values[:n, :n]
        st = g["graph_node_stable"].values[:n]
        np.testing.assert_allclose(np.diag(w)[st], 1.0)
        np.testing.assert_allclose(w.sum(1), 1.0)
        # a network that solves the 3-bit task needs (and has) all 2^3 memories
        if index.loc[nid, "performance"] >= 0.95:
            assert len(stable) == 8, (nid, len(stable))
            readout = fp["readout"].values[stable]
            assert len({tuple(np.sign(r)) for r in readout}) == 8
