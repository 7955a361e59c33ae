"""A network's analysis does not depend on the networks that share its batch.

Two 3-unit tanh networks on the flip-flop inputs: ``a``, decoupled and bistable in every
unit (the 27 fixed points of a 3-bit flip-flop), and ``b``, whose only fixed point (the
origin) is an unstable spiral inside a limit cycle: every perturbation of it is an
unresolved transition, so a batch holding ``b`` runs the refinement pass for every network
(from ``b``'s 100 unresolved end states, and ``a``'s padded to the batch's largest count).
That pass used to add its starts to ``n_merged``: ``a``'s counts grew with ``b`` beside it,
and ``b``'s exceeded its 64 initial states.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from rnnzoo_dynamics.population import AnalysisOptions, analyze_population
from rnnzoo_dynamics.testing import TanhCell, diagonal_tanh_params
from rnnzoo_train.tasks import get_task

OPTIONS = AnalysisOptions(n_starts=64)
#: per-network timing (run-specific)
NOT_PER_NETWORK = ("seconds",)


def _networks() -> dict[str, dict[str, torch.Tensor]]:
    a = diagonal_tanh_params(np.full(3, 2.0), np.zeros(3), n_inputs=3)
    a["W_x"] = 2.0 * torch.eye(3, dtype=torch.float64)  # input pulses flip the units
    c, s = 1.5 * np.cos(0.5), 1.5 * np.sin(0.5)
    b = diagonal_tanh_params(np.array([1.0, 1.0, 0.5]), np.zeros(3), n_inputs=3)
    b["W_h"] = torch.tensor([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 0.5]], dtype=torch.float64)
    b["W_x"] = 0.5 * torch.eye(3, dtype=torch.float64)
    return {"a": a, "b": b}


@pytest.fixture(scope="module")
def runs() -> dict[tuple[str, ...], dict[str, xr.Dataset]]:
    task = get_task("flipflop", n_steps=30)
    cell = TanhCell(3, 3, 3)
    nets = _networks()
    out = {}
    for ids in (("a",), ("b",), ("a", "b"), ("b", "a")):
        params = {k: torch.stack([nets[i][k] for i in ids]) for k in nets["a"]}
        out[ids] = analyze_population(
            task, cell, params, list(ids), probe=task.probe(), options=OPTIONS
        )
    return out


def _rows(result: dict[str, xr.Dataset], nid: str, graphs: bool = False) -> dict[str, xr.Dataset]:
    """Each analysis of one network (its rows along ``network`` or ``fixed_point``)."""
    rows = {}
    for name, ds in result.items():
        if (name == "transition_graph") != graphs:
            continue
        dim = "fixed_point" if "fixed_point" in ds.dims else "network"
        keep = np.nonzero(ds["network"].values.astype(str) == nid)[0]
        rows[name] = ds.isel({dim: keep}).drop_vars(NOT_PER_NETWORK, errors="ignore")
    return rows


def test_the_batch_needs_the_refinement_pass(runs):
    summary = runs["a", "b"]["summary"].set_index(network="network")
    graph = runs["b",]["transition_graph"]
    assert float(graph["graph_node_unresolved"].max()) == 1.0  # b: nothing ever lands
    assert int(summary["n_fixed"].sel(network="a")) >= 26


def _unpadded(ds: xr.Dataset) -> xr.Dataset:
    """A one-network graph without the padding to the batch's largest graph (NaN / -1)."""
    if "node" not in ds.dims:
        return ds
    n = int(ds["graph_n_nodes"].values[0])
    return ds.isel({d: slice(0, n) for d in ("node", "node_to") if d in ds.dims})


def _assert_same(alone: dict[str, xr.Dataset], together: dict[str, xr.Dataset]) -> None:
    assert alone.keys() == together.keys()
    for name in alone:
        a, t = _unpadded(alone[name]), _unpadded(together[name])
        assert a.sizes == t.sizes, name
        for var in a.variables:
            x, y = a[var].values, t[var].values
            if var == "graph_is_modal":
                continue  # the population's modal count (recomputed over the task when stored)
            if x.dtype.kind in "fc":
                # the float32 gradient stage runs in another batch shape; the float64
                # polish takes every fixed point to q < 1e-24, i.e. |h - h*| ~ 1e-12
                np.testing.assert_allclose(x, y, rtol=0, atol=1e-9, equal_nan=True, err_msg=var)
            else:
                np.testing.assert_array_equal(x, y, err_msg=f"{name}.{var}")


@pytest.mark.parametrize("nid", ["a", "b"])
@pytest.mark.parametrize("batch", [("a", "b"), ("b", "a")])
def test_a_network_alone_and_in_a_batch_gives_the_same_fixed_points_and_counts(runs, nid, batch):
    _assert_same(_rows(runs[nid,], nid), _rows(runs[batch], nid))


@pytest.mark.parametrize("nid", ["a", "b"])
@pytest.mark.parametrize("batch", [("a", "b"), ("b", "a")])
def test_a_network_alone_and_in_a_batch_gives_the_same_transition_graph(runs, nid, batch):
    """Each network's perturbations come from its own generator (seed and network id)."""
    _assert_same(_rows(runs[nid,], nid, graphs=True), _rows(runs[batch], nid, graphs=True))


@pytest.mark.parametrize("batch", [("a",), ("b",), ("a", "b")])
def test_n_merged_counts_at_most_the_initial_states(runs, batch):
    points = runs[batch]["fixed_points"]
    summary = runs[batch]["summary"]
    for nid, n_candidates in zip(
        summary["network"].values, summary["n_candidates"].values, strict=True
    ):
        mine = points["n_merged"].values[points["network"].values == nid]
        assert (mine >= 0).all()
        assert mine.sum() <= n_candidates, nid
