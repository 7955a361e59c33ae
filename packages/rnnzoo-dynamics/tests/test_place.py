"""``place_model`` / ``rnnzoo-dynamics place``: your own network among the zoo's (issue 11 §2).

A real zoo (flip-flop and cdi, Vanilla and GRU tanh, two seeds each) is generated and
analysed once; zoo networks converted to ``nn.RNN`` / ``nn.GRU`` are then placed against it.
"""

from __future__ import annotations

import dataclasses
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from torch import nn

from rnnzoo_dynamics.cli import main
from rnnzoo_dynamics.model_files import ModelFileError, load_model
from rnnzoo_dynamics.place import (
    OUTPUTS,
    PlacementError,
    check_out,
    options_from_json,
    place_model,
    place_point,
)
from rnnzoo_train.generate import generate
from rnnzoo_train.presets import get_preset
from rnnzoo_train.records import HyperParameters
from rnnzoo_train.zoo import ZarrZooWriter, open_zoo

GOOD = HyperParameters(clip=1.0, lr=0.05, decay=0.5, momentum=0.9)
PNG = b"\x89PNG\r\n\x1a\n"
#: SVCCA / CKA of a network with itself, stored in float32 by the zoo and run in float64 here:
#: 1 - rho and 1 - CKA are quadratic in a small perturbation of the states, so float32
#: rounding (relative ~1e-7, grown over the trial) gives ~1e-14 (measured); 1e-9 leaves room
SELF_DISTANCE = 1e-9


def sampling_tolerance(graph, n_perturbations: int) -> tuple[float, float]:
    """How far one network's transition graph may be from a second sampling of it.

    Each transition probability is estimated from ``n_perturbations`` perturbations of its
    node (seeded by the network id: the placed copy samples other perturbations), so two
    estimates differ by at most ~3 standard errors, ``3 * 0.5 / sqrt(n)`` each. The paper's
    distance is the Frobenius norm over ``n_nodes**2`` entries; the matched distance's node
    descriptor holds the readout (equal), the outgoing flow ``sum_j w_ij r_j`` and two sums
    of a row, each moved by at most ``n_nodes`` entries times ``max |r|`` or 1.
    """
    n = int(graph["graph_n_nodes"].values[0])
    r = np.asarray(graph["graph_node_readout"].values[0][:n], dtype=float)
    big = float(np.abs(r).max()) if n else 0.0
    entry = 3 * 0.5 / np.sqrt(n_perturbations)
    return entry * n, entry * n * n * (big + 2)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> Path:
    """flip-flop and cdi, Vanilla and GRU tanh x 2 seeds, analysed (16 starts)."""
    from rnnzoo_dynamics.analyze import analyze_zoo
    from rnnzoo_dynamics.population import AnalysisOptions

    preset = dataclasses.replace(
        get_preset("tiny"),
        archs=("vanilla", "gru"),
        activations=("tanh",),
        iterations=40,
        n_trials=0,
        search_iterations=0,
        hparams={"default": GOOD},
    )
    path = tmp_path_factory.mktemp("place") / "zoo.zarr"
    generate(preset, ["flipflop", "cdi"], ZarrZooWriter(path), progress=False)
    for task in ("flipflop", "cdi"):
        analyze_zoo(path, task, options=AnalysisOptions(n_starts=16), progress=False)
    return path


def as_torch(zoo_path: Path, task: str, network_id: str) -> tuple[nn.Module, nn.Linear]:
    """A zoo network as the torch module it equals (``docs/cells-and-tasks.md``)."""
    z = open_zoo(zoo_path)
    w = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in z.weights(task, network_id).items()}
    arch = str(z.index(task).loc[network_id, "arch"])
    M, GN = w["W_x"].shape
    N = w["W_h"].shape[0]
    rnn = nn.RNN(M, N, batch_first=True) if arch == "vanilla" else nn.GRU(M, N, batch_first=True)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(w["W_x"].T)
        rnn.weight_hh_l0.copy_(w["W_h"].T)
        rnn.bias_ih_l0.copy_(w["b"])
        hh = torch.zeros(GN)
        if arch == "gru":  # reset after the recurrent matmul: b_hn in the hidden bias
            hh[2 * N :] = w["b_hn"]
        rnn.bias_hh_l0.copy_(hh)
    readout = nn.Linear(N, w["W_out"].shape[1])
    with torch.no_grad():
        readout.weight.copy_(w["W_out"].T)
        readout.bias.copy_(w["b_out"])
    return rnn, readout


def first(zoo_path: Path, task: str, arch: str) -> str:
    index = open_zoo(zoo_path).index(task)
    return str(index.index[index["arch"].astype(str) == arch][0])


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, hash(p.read_bytes()))
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# -- the science ----------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["vanilla", "gru"])
def test_a_zoo_network_sits_on_itself_and_its_nearest_type_is_its_own(zoo, tmp_path, arch):
    nid = first(zoo, "flipflop", arch)
    rnn, readout = as_torch(zoo, "flipflop", nid)
    p = place_model(rnn, zoo, "flipflop", tmp_path / "out", readout=readout, name="mine")
    ds = p.distances
    own = ds.sel(network=nid)
    for key in ("svcca", "cka"):
        col = ds[key].values
        assert float(own[key]) < SELF_DISTANCE, key
        assert float(own[key]) == np.nanmin(col), key  # nothing is nearer than itself
    # the same network, analysed again: the same fixed points, its graph equal up to the
    # transition probabilities' sampling
    from rnnzoo_dynamics.graphs import TransitionOptions

    tol = dict(
        zip(
            ("fixed-point graph", "matched fixed-point graph"),
            sampling_tolerance(p.analyses["transition_graph"], TransitionOptions().n_perturbations),
            strict=True,
        )
    )
    for key, title in (
        ("graph", "fixed-point graph"),
        ("graph_matched", "matched fixed-point graph"),
    ):
        assert float(own[key]) <= tol[title], key
    cell_type = {"vanilla": "Vanilla tanh", "gru": "GRU tanh"}[arch]
    for distance, rows in p.nearest.groupby("distance"):
        best = rows[rows["rank"] == 1].iloc[0]
        mine = rows[rows["cell_type"] == cell_type].iloc[0]
        if distance in ("SVCCA", "CKA"):
            assert best["cell_type"] == cell_type, distance
            assert best["nearest_network"] == nid
        else:  # graph distances may tie (identical graphs): its own type is among the nearest
            assert mine["nearest"] <= best["nearest"] + tol[distance], distance
    # its place in the zoo's map: where the network itself is (within the map's residual)
    emb = ds["embedding_svcca"].sel(network=nid).values
    assert np.linalg.norm(p.position("svcca") - emb) <= 3 * ds.attrs["zoo_residual_svcca"] + 1e-6
    assert not p.notes


def test_a_trained_flipflop_network_finds_its_own_graph(trained_flipflop_zoo, tmp_path):
    """Networks that solve flip-flop have many fixed points: the graphs are not trivial.

    The zoo is analysed with the flip-flop's own number of starts (1,024). The placed copy
    runs in float64 from the nn.RNN, the zoo in float32, so their starts differ slightly, and
    the paper's graph distance needs both analyses to find the same points (it is NaN where
    node counts differ). With 64 starts each found a different subset of the 27 points on
    an Intel Xeon (25 and 24, 27 and 25); with 1,024 both find all 27.
    """
    from rnnzoo_dynamics.analyze import analyze_zoo
    from rnnzoo_dynamics.graphs import TransitionOptions

    zoo_path = tmp_path / "zoo.zarr"
    shutil.copytree(trained_flipflop_zoo, zoo_path)
    analyze_zoo(zoo_path, "flipflop", progress=False)
    nid = first(zoo_path, "flipflop", "vanilla")
    rnn, readout = as_torch(zoo_path, "flipflop", nid)
    p = place_model(rnn, zoo_path, "flipflop", readout=readout, name="mine")
    graph = p.analyses["transition_graph"]
    assert int(graph["graph_n_nodes"].values[0]) >= 4  # attractors and saddles
    tol_graph, tol_matched = sampling_tolerance(graph, TransitionOptions().n_perturbations)
    own = p.distances.sel(network=nid)
    assert float(own["svcca"]) < SELF_DISTANCE
    assert float(own["graph"]) <= tol_graph
    assert float(own["graph_matched"]) <= tol_matched


def test_cdi_compares_both_line_attractor_graphs(zoo, tmp_path):
    nid = first(zoo, "cdi", "gru")
    rnn, readout = as_torch(zoo, "cdi", nid)
    p = place_model(rnn, zoo, "cdi", None, readout=readout, name="mine")
    own = p.distances.sel(network=nid)
    assert float(own["svcca"]) < SELF_DISTANCE
    assert sorted(k for k in p.analyses if "graph" in k) == [
        "line_attractor_graph-context0",
        "line_attractor_graph-context1",
    ]
    assert np.isfinite(p.distances["graph_matched"].values).any()
    assert not p.files  # out=None writes nothing


def test_place_point_recovers_a_point_of_a_euclidean_map():
    rng = np.random.default_rng(0)
    xy = rng.normal(size=(12, 2))
    y = np.array([0.3, -0.7])
    got, residual = place_point(xy, np.linalg.norm(xy - y, axis=1))
    np.testing.assert_allclose(got, y, atol=1e-6)
    assert residual < 1e-6


def test_options_are_the_zoo_analyses_own(zoo):
    from rnnzoo_dynamics.analyze import options_json, read_analysis

    stored = read_analysis(zoo, "flipflop", "dynamics_summary").attrs["analysis_options"]
    opt = options_from_json(stored)
    assert opt.n_starts == 16
    assert options_json(opt) == stored


# -- what the user gets ---------------------------------------------------------------------
def test_outputs_are_written_and_readable(zoo, tmp_path):
    rnn, readout = as_torch(zoo, "flipflop", first(zoo, "flipflop", "gru"))
    out = tmp_path / "placed"
    p = place_model(rnn, zoo, "flipflop", out, readout=readout, name="mine")
    assert sorted(f.name for f in p.files) == sorted(OUTPUTS)
    png = (out / "placement.png").read_bytes()
    assert png[:8] == PNG
    assert len(png) > 10_000
    from matplotlib.image import imread

    h, w, _ = imread(out / "placement.png").shape
    assert w > 2 * h  # panels side by side
    csv = pd.read_csv(out / "distances.csv", index_col="network")
    np.testing.assert_allclose(csv["svcca"].values, p.distances["svcca"].values, rtol=1e-9)
    nc = xr.open_dataset(out / "distances.nc", engine="scipy").load()
    np.testing.assert_array_equal(nc["cka"].values, p.distances["cka"].values)
    np.testing.assert_allclose(nc.attrs["position_svcca"], p.position("svcca"))
    nearest = pd.read_csv(out / "nearest.csv")
    assert set(nearest["distance"]) >= {"SVCCA", "CKA"}
    md = (out / "nearest.md").read_text()
    assert "| SVCCA | 1 |" in md
    assert "placement.png" in md
    # a rerun into its own earlier output replaces it; a folder of other files is refused
    place_model(rnn, zoo, "flipflop", out, readout=readout, name="mine")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    with pytest.raises(PlacementError, match="already holds other files"):
        place_model(rnn, zoo, "flipflop", tmp_path / "mine", readout=readout)


def test_wrong_input_size_is_one_line_naming_the_task_sizes(zoo, tmp_path):
    with pytest.raises(PlacementError, match="takes 2 inputs.*3 inputs and 3 outputs") as err:
        place_model(nn.GRU(2, 8, batch_first=True), zoo, "flipflop", tmp_path / "o")
    assert "\n" not in str(err.value)
    with pytest.raises(PlacementError, match="readout has 2 outputs.*3 inputs and 3 outputs"):
        place_model(nn.GRU(3, 8), zoo, "flipflop", readout=nn.Linear(8, 2))
    with pytest.raises(PlacementError, match="4 inputs and 1 outputs"):  # cdi: K=2 contexts
        place_model(nn.GRU(3, 8), zoo, "cdi")
    assert not (tmp_path / "o").exists()


def test_read_only_zoo_works_and_nothing_is_written_into_it(zoo, tmp_path):
    from rnnzoo_train.zoo.testing import read_only

    ro = tmp_path / "ro.zarr"
    shutil.copytree(zoo, ro)
    before = snapshot(ro)
    rnn, readout = as_torch(zoo, "flipflop", first(zoo, "flipflop", "vanilla"))
    try:
        ctx = read_only(ro)
        ctx.__enter__()
    except OSError as err:
        pytest.skip(f"cannot make a path read-only here: {err}")
    try:
        p = place_model(rnn, ro, "flipflop", tmp_path / "out", readout=readout, name="mine")
        with pytest.raises(PlacementError, match="inside the zoo"):
            place_model(rnn, ro, "flipflop", ro / "placed", readout=readout)
        with pytest.raises(PlacementError, match="Zarr store"):
            check_out(tmp_path / "ro.zarr", [])
    finally:
        ctx.__exit__(None, None, None)
    assert snapshot(ro) == before
    assert np.isfinite(p.distances["graph"].values).any()  # the stored analyses were read


def test_a_zoo_without_analyses_gives_geometry_and_says_why_not_topology(zoo, tmp_path):
    bare = tmp_path / "bare.zarr"
    generate(
        dataclasses.replace(
            get_preset("tiny"), iterations=5, n_trials=0, search_iterations=0, hparams={}
        ),
        ["flipflop"],
        ZarrZooWriter(bare),
        progress=False,
    )
    p = place_model(nn.GRU(3, 8), bare, "flipflop", readout=nn.Linear(8, 3))
    assert np.isfinite(p.distances["svcca"].values).all()
    assert np.isnan(p.distances["graph"].values).all()
    assert any("rnnzoo-dynamics analyze" in n for n in p.notes)
    # downloaded (a zip: read-only), analysed into a store of its own: the store is read
    from rnnzoo_dynamics.analyze import analyze_zoo
    from rnnzoo_dynamics.population import AnalysisOptions

    zipped = tmp_path / "bare.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(bare.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(bare).as_posix())
    store = tmp_path / "analyses.zarr"
    analyze_zoo(zipped, "flipflop", options=AnalysisOptions(n_starts=8), analysis_store=store)
    before = zipped.read_bytes()
    q = place_model(
        nn.GRU(3, 8),
        zipped,
        "flipflop",
        tmp_path / "out",
        readout=nn.Linear(8, 3),
        analysis_store=store,
    )
    assert np.isfinite(q.distances["graph_matched"].values).all()
    assert not q.notes
    assert zipped.read_bytes() == before


def test_any_model_of_as_network_is_placed(zoo):
    """An LSTM (its h is compared, as the zoo stores it), a cell, a rate-network step function."""

    class Rate(nn.Module):
        state_size, n_inputs = 8, 3

        def __init__(self):
            super().__init__()
            g = torch.Generator().manual_seed(0)
            self.W = nn.Parameter(1.5 * torch.randn(8, 8, generator=g) / 8**0.5)
            self.U = nn.Parameter(torch.randn(3, 8, generator=g))

        def forward(self, h, x):
            return h + 0.2 * (-h + torch.tanh(h) @ self.W + x @ self.U)

    for model, units in ((nn.LSTM(3, 6, batch_first=True), 6), (nn.GRUCell(3, 5), 5), (Rate(), 8)):
        p = place_model(model, zoo, "flipflop", readout=nn.Linear(units, 3))
        assert np.isfinite(p.distances["svcca"].values).all(), model
        assert np.isfinite(p.distances["graph_matched"].values).all(), model
        assert p.analyses["fixed_points"].sizes["fixed_point"] > 0


# -- the command line -----------------------------------------------------------------------
FACTORY = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(3, 8, batch_first=True)
        self.readout = nn.Linear(8, 3)


def make():
    return Net()


def pair():
    net = Net()
    return net.rnn, net.readout
"""


def test_cli_and_python_call_give_the_same_numbers(zoo, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Path("my_rnn.py").write_text(FACTORY)
    torch.manual_seed(3)
    net = load_model("my_rnn.py:make")[0]
    torch.save(net.state_dict(), "my_rnn.pt")
    argv = ["place", "--zoo", str(zoo), "--task", "flipflop", "--model", "my_rnn.py:make"]
    argv += ["--weights", "my_rnn.pt", "--rnn", "rnn", "--readout", "readout", "--quiet"]
    assert main([*argv, "--out", "cli"]) == 0
    assert "| SVCCA | 1 |" in capsys.readouterr().out
    p = place_model(net.rnn, zoo, "flipflop", "py", readout=net.readout, name="make")
    a = pd.read_csv("cli/distances.csv", index_col="network")
    b = pd.read_csv("py/distances.csv", index_col="network")
    pd.testing.assert_frame_equal(a, b)
    assert Path("cli/nearest.csv").read_text() == Path("py/nearest.csv").read_text()
    np.testing.assert_allclose(a["cka"].values, p.distances["cka"].values, rtol=1e-9)
    # the same network as a TorchScript file: the same numbers
    torch.jit.save(torch.jit.script(net), "my_rnn.ts")
    ts = ["place", "--zoo", str(zoo), "--task", "flipflop", "--model", "my_rnn.ts"]
    ts += ["--rnn", "rnn", "--readout", "readout", "--name", "make", "--quiet", "--out", "ts"]
    assert main(ts) == 0
    pd.testing.assert_frame_equal(a, pd.read_csv("ts/distances.csv", index_col="network"))


def test_model_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("my_rnn.py").write_text(FACTORY)
    rnn, readout = load_model("my_rnn.py:pair")  # a factory returning (model, readout)
    assert isinstance(rnn, nn.GRU)
    assert isinstance(readout, nn.Linear)
    rnn, readout = load_model("my_rnn:pair")  # a module on the working directory
    assert isinstance(rnn, nn.GRU)
    net = load_model("my_rnn.py:make")[0]
    torch.save({"epoch": 3, "state_dict": net.state_dict()}, "ckpt.pt")  # Lightning style
    got = load_model("my_rnn.py:make", "ckpt.pt", rnn="rnn")[0]
    torch.testing.assert_close(got.weight_hh_l0, net.rnn.weight_hh_l0, rtol=0, atol=0)
    lstm = nn.LSTM(3, 5, batch_first=True)
    torch.jit.save(torch.jit.script(lstm), "lstm.pt")
    back, none = load_model("lstm.pt")  # rebuilt as nn.LSTM, weights exactly
    assert type(back) is nn.LSTM
    assert none is None
    assert back.batch_first
    for k, v in lstm.state_dict().items():
        torch.testing.assert_close(back.state_dict()[k], v, rtol=0, atol=0)
    # torch.export (.pt2): a step function exported with a dynamic batch dimension
    from rnnzoo_dynamics import as_network

    class Rate(nn.Module):
        def __init__(self):
            super().__init__()
            self.W = nn.Parameter(torch.randn(8, 8, generator=torch.Generator().manual_seed(0)))

        def forward(self, h, x):
            return h + 0.2 * (-h + torch.tanh(h) @ self.W + x.sum(-1, keepdim=True))

    batch = torch.export.Dim("batch")
    example = (torch.zeros(2, 8), torch.zeros(2, 3))
    shapes = ({0: batch}, {0: batch})
    torch.export.save(torch.export.export(Rate(), example, dynamic_shapes=shapes), "rate.pt2")
    step, _ = load_model("rate.pt2")
    net = as_network(step, nn.Linear(8, 3), n_inputs=3)
    assert net.float64
    h, x = torch.randn(5, 8, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    torch.testing.assert_close(net.cell.fn(h, x), Rate().double()(h, x))
    assert not list(tmp_path.glob("__pycache__"))  # nothing written beside the user's code
    with pytest.raises(ModelFileError, match="TorchScript"):
        load_model("my_rnn.py")
