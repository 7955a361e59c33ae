"""The graph variables cross packages by name (issue 12 section 4): rnnzoo-dynamics writes
them (``graphs_to_dataset``), rnnzoo-metrics reads them (its ``graph`` input kind). This
round trip pins the names and meanings on both sides: a rename on one side fails here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from rnnzoo_dynamics.graphs import Graph, graphs_to_dataset
from rnnzoo_metrics.graphs import FixedPointGraph
from rnnzoo_metrics.inputs import as_networks


def _graphs() -> tuple[list[Graph], list[str]]:
    rng = np.random.default_rng(0)
    graphs = []
    for n in (3, 1, 2):  # different sizes: the Dataset is NaN-padded to 3 nodes
        w = rng.random((n, n))
        graphs.append(
            Graph(
                weight=w / w.sum(1, keepdims=True),
                node_readout=rng.normal(size=(n, 2)),
                node_stable=rng.random(n) < 0.5,
                node_point=np.arange(n),
                unresolved=np.zeros(n),
                node_n_unstable=rng.integers(0, 3, n),
            )
        )
    return graphs, ["net-a", "net-b", "net-c"]


@pytest.mark.parametrize("through", ["memory", "zarr"])
def test_graphs_written_by_dynamics_are_read_by_metrics(through, tmp_path):
    graphs, ids = _graphs()
    coords = pd.DataFrame({"arch": ["gru", "lstm", "gru"]}, index=ids)
    ds = graphs_to_dataset(graphs, ids, coords)
    if through == "zarr":  # as stored beside a zoo
        ds.to_zarr(tmp_path / "graphs.zarr", zarr_format=3, consolidated=False)
        ds = xr.open_zarr(tmp_path / "graphs.zarr", zarr_format=3, consolidated=False)
    networks = as_networks(ds, "graph")
    assert networks.ids == ids
    assert list(networks.coords["arch"]) == ["gru", "lstm", "gru"]
    for i, g in enumerate(graphs):
        got = networks.load(i)
        assert isinstance(got, FixedPointGraph)
        np.testing.assert_array_equal(got.weights, g.weight)  # unpadded: n_nodes respected
        np.testing.assert_array_equal(got.node_readout, g.node_readout)
        np.testing.assert_array_equal(got.stable, g.node_stable)


def test_the_names_metrics_reads_are_the_names_dynamics_writes():
    graphs, ids = _graphs()
    written = set(graphs_to_dataset(graphs, ids).data_vars)
    read = {"graph_weight", "graph_node_readout", "graph_node_stable", "graph_n_nodes"}
    assert read <= written
    # the graph kind finds its variables by these names (an unrelated Dataset is refused)
    from rnnzoo_metrics.errors import InputError

    with pytest.raises(InputError, match="graph_weight"):
        as_networks(xr.Dataset({"weight": (("network", "node"), np.zeros((1, 1)))}), "graph")
