"""``rnnzoo-dynamics place`` measures exactly as the paper pipeline does (issue 11 §2).

A zoo network placed against its own zoo (converted to ``nn.RNN``) must see the zoo as
``rnnzoo_paper.distances`` sees it: the same zoo map (the paper's MDS embedding, value for
value) and, from itself, the paper's distance-matrix row of that network.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("matplotlib")

from rnnzoo_dynamics import place_model
from rnnzoo_dynamics.analyze import analyze_zoo
from rnnzoo_dynamics.population import AnalysisOptions
from rnnzoo_train.generate import generate
from rnnzoo_train.presets import get_preset
from rnnzoo_train.records import HyperParameters
from rnnzoo_train.zoo import ZarrZooWriter, open_zoo

#: the stored probe states are float32; a distance between two different networks is
#: first-order in that rounding (relative 6e-8) times the metric's sensitivity: measured
#: 4e-9 (SVCCA) and 1e-8 (CKA) on the demo zoo, so 1e-6 leaves a factor ~100
ROW_TOL = 1e-6


def _vanilla_as_torch(zoo, task: str, nid: str) -> tuple[nn.RNN, nn.Linear]:
    w = {k: torch.as_tensor(v) for k, v in zoo.weights(task, nid).items()}
    M, N = w["W_x"].shape
    rnn, readout = nn.RNN(M, N, batch_first=True), nn.Linear(N, w["W_out"].shape[1])
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(w["W_x"].T)
        rnn.weight_hh_l0.copy_(w["W_h"].T)
        rnn.bias_ih_l0.copy_(w["b"])
        rnn.bias_hh_l0.zero_()
        readout.weight.copy_(w["W_out"].T)
        readout.bias.copy_(w["b_out"])
    return rnn, readout


def test_place_sees_the_zoo_as_the_paper_pipeline_does(tmp_path: Path):
    from rnnzoo_paper import distances as paper

    preset = dataclasses.replace(
        get_preset("tiny"),
        archs=("vanilla", "gru"),
        seeds=(0, 1, 2),
        iterations=40,
        n_trials=0,
        search_iterations=0,
        hparams={"default": HyperParameters(clip=1.0, lr=0.05, decay=0.5, momentum=0.9)},
    )
    path = tmp_path / "zoo.zarr"
    generate(preset, ["flipflop"], ZarrZooWriter(path), progress=False)
    analyze_zoo(path, "flipflop", options=AnalysisOptions(n_starts=16), progress=False)
    zoo = open_zoo(path)
    index = zoo.index("flipflop")
    nid = str(index.index[index["arch"].astype(str) == "vanilla"][0])
    rnn, readout = _vanilla_as_torch(zoo, "flipflop", nid)
    placed = place_model(rnn, zoo, "flipflop", readout=readout, name="mine")

    compute = paper.Compute(progress=False)
    for key, dist in paper.DISTANCES.items():
        fn = paper.activation_distance if dist.source == "activations" else paper.graph_distance
        d = fn(zoo, "flipflop", dist, compute)
        mine = key.replace("-", "_")
        emb = paper.embedding(zoo, "flipflop", key, d)
        if emb is not None:  # the zoo's map is the paper's, value for value
            ids = [str(i) for i in emb["network"].values]
            got = placed.distances[f"embedding_{mine}"].sel(network=ids).values
            scale = float(np.abs(emb.values).max()) or 1.0
            np.testing.assert_allclose(got, emb.values, rtol=0, atol=1e-12 * scale, err_msg=key)
        if dist.source == "activations":  # from itself: the paper's row of that network
            ids = [str(i) for i in d["network_to"].values]
            row = d.sel(network=nid).values
            got = placed.distances[mine].sel(network=ids).values
            np.testing.assert_allclose(got, row, rtol=0, atol=ROW_TOL, err_msg=key)
