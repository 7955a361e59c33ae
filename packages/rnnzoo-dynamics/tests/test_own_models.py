"""A user's own torch network (issue 11 §1): exact conversions, step functions, ground truth."""

from __future__ import annotations

import dataclasses
import itertools
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from rnnzoo_dynamics import (
    AnalysisOptions,
    Float32Warning,
    ModelError,
    OwnNetwork,
    StepFunctionCell,
    analyze_model,
    analyze_population,
    as_network,
    find_fixed_points,
    linearize,
)
from rnnzoo_train.cells import ACTIVATIONS, ARCHITECTURES, get_cell
from rnnzoo_train.cells.autograd import autograd_jacobians
from rnnzoo_train.generate import generate
from rnnzoo_train.presets import get_preset
from rnnzoo_train.tasks import get_task
from rnnzoo_train.zoo import ZarrZooWriter, open_zoo

from .conftest import GOOD

F64 = torch.float64

# -- a zoo network as a torch module, and back ------------------------------------------------


@pytest.fixture(scope="module")
def lstm_zoo(tmp_path_factory):
    """A tiny zoo of the architectures torch has (vanilla tanh/relu, GRU, LSTM), 3 tasks."""
    preset = dataclasses.replace(
        get_preset("tiny"),
        archs=("vanilla", "gru", "lstm"),
        activations=("tanh", "relu"),
        seeds=(0,),
        iterations=60,
        n_trials=0,
        search_iterations=0,
        hparams={"default": GOOD},
    )
    path = tmp_path_factory.mktemp("own") / "zoo.zarr"
    generate(preset, ["flipflop", "sine", "cdi"], ZarrZooWriter(path), progress=False)
    return path


def to_torch(arch: str, activation: str, params: dict, layer: bool, seed: int = 0):
    """The zoo network ``params`` (one network) as a float64 torch module and readout.

    The bias is split at random between ``bias_ih`` and ``bias_hh`` (torch adds them), so the
    conversion back is exact only up to that rounding.
    """
    W_x, W_h, b = params["W_x"], params["W_h"], params["b"]
    M, GN = W_x.shape
    N = W_h.shape[0]
    if layer:
        cls = {"vanilla": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[arch]
        kw = {"nonlinearity": activation} if arch == "vanilla" else {}
        module, sfx = cls(M, N, batch_first=True, **kw), "_l0"
    else:
        cls = {"vanilla": nn.RNNCell, "gru": nn.GRUCell, "lstm": nn.LSTMCell}[arch]
        kw = {"nonlinearity": activation} if arch == "vanilla" else {}
        module, sfx = cls(M, N, **kw), ""
    module = module.double()
    split = 0.1 * torch.randn(GN, generator=torch.Generator().manual_seed(seed), dtype=F64)
    with torch.no_grad():
        getattr(module, f"weight_ih{sfx}").copy_(W_x.T)
        getattr(module, f"weight_hh{sfx}").copy_(W_h.T)
        b_hh = split.clone()
        if arch == "gru":  # torch's b_hn sits inside the reset gate's product
            b_hh[2 * N :] = params["b_hn"]
            b_ih = b - torch.cat([split[: 2 * N], torch.zeros(N, dtype=F64)])
        else:
            b_ih = b - split
        getattr(module, f"bias_ih{sfx}").copy_(b_ih)
        getattr(module, f"bias_hh{sfx}").copy_(b_hh)
    readout = nn.Linear(N, params["W_out"].shape[1]).double()
    with torch.no_grad():
        readout.weight.copy_(params["W_out"].T)
        readout.bias.copy_(params["b_out"])
    return module, readout


CONVERSIONS = [
    ("vanilla", "tanh", True),
    ("vanilla", "relu", False),
    ("gru", "tanh", True),
    ("lstm", "tanh", True),
]


@pytest.mark.parametrize(("arch", "activation", "layer"), CONVERSIONS, ids=str)
def test_zoo_network_through_torch_gives_the_zoo_analysis(lstm_zoo, arch, activation, layer):
    zoo = open_zoo(lstm_zoo)
    index = zoo.index("flipflop")
    nid = index[(index.arch == arch) & (index.activation == activation)].index[0]
    cell, params = zoo.population("flipflop", [nid], dtype=F64)
    task, probe = zoo.task("flipflop"), zoo.probe("flipflop")
    options = AnalysisOptions(n_starts=128)
    want = analyze_population(task, cell, params, [nid], probe=probe, options=options)

    module, readout = to_torch(arch, activation, {k: v[0] for k, v in params.items()}, layer)
    net = as_network(module, readout)
    assert net.kind.startswith(f"nn.{type(module).__name__}")
    assert "exact" in net.kind
    assert net.float64
    assert net.cell.arch == arch
    assert net.cell.activation == activation
    assert net.state_layout == ("concat[h, c]" if arch == "lstm" else "h")
    for k in params:  # the weights come back up to the rounding of the bias split
        torch.testing.assert_close(net.params[k], params[k], rtol=0, atol=1e-15)
    # the network runs as torch runs it (h only, for an LSTM)
    x = torch.as_tensor(probe.inputs[:4], dtype=F64)
    if layer:
        ref = module(x)[0]
    else:
        state, hs = None, []
        for t in range(x.shape[1]):
            state = module(x[:, t], state)
            hs.append(state[0] if isinstance(state, tuple) else state)
        ref = torch.stack(hs, 1)
    np.testing.assert_allclose(net.run(x), ref.detach().numpy(), rtol=0, atol=1e-13)
    np.testing.assert_allclose(net.outputs(x), readout(ref).detach().numpy(), rtol=0, atol=1e-13)

    got = analyze_model(net, task, options=options, network_id=nid)
    a, b = want["fixed_points"], got["fixed_points"]
    assert a.sizes["fixed_point"] > 0
    np.testing.assert_array_equal(a["kind"].values, b["kind"].values)
    np.testing.assert_array_equal(a["n_unstable"].values, b["n_unstable"].values)
    np.testing.assert_array_equal(a["n_marginal"].values, b["n_marginal"].values)
    np.testing.assert_allclose(b["state"].values, a["state"].values, rtol=0, atol=1e-10)
    for name in ("n_fixed", "n_slow", "n_stable", "n_saddle", "n_graph_nodes"):
        assert int(want["summary"][name].values[0]) == int(got["summary"][name].values[0]), name
    np.testing.assert_allclose(
        got["transition_graph"]["graph_weight"].values,
        want["transition_graph"]["graph_weight"].values,
        rtol=0,
        atol=1e-12,
    )
    assert b.attrs["model_kind"] == net.kind
    assert b.attrs["model_float64"] == 1
    assert b.attrs["q_tol"] == options.finder.q_tol
    assert b.attrs["q_reached"] < 1e-10


def assert_same_analysis(want: dict, got: dict, atol: float, rtol: float) -> None:
    """Every dataset and variable of two analyses of one network agree (timings aside)."""
    assert sorted(want) == sorted(got)
    for name in want:
        a, b = want[name], got[name]
        assert sorted(a.data_vars) == sorted(b.data_vars), name
        for var in a.data_vars:
            if var == "seconds":
                continue
            x, y = a[var].values, b[var].values
            if x.dtype.kind in "fc":
                np.testing.assert_allclose(y, x, rtol=rtol, atol=atol, err_msg=f"{name}.{var}")
            else:
                np.testing.assert_array_equal(y, x, err_msg=f"{name}.{var}")


@pytest.mark.parametrize(
    ("task_name", "arch"), [("sine", "gru"), ("cdi", "gru"), ("cdi", "lstm"), ("sine", "lstm")]
)
def test_sine_and_cdi_analyses_of_a_torch_model_are_the_zoo_analyses(lstm_zoo, task_name, arch):
    zoo = open_zoo(lstm_zoo)
    index = zoo.index(task_name)
    nid = index[(index.arch == arch) & (index.activation == "tanh")].index[0]
    cell, params = zoo.population(task_name, [nid], dtype=F64)
    task, probe = zoo.task(task_name), zoo.probe(task_name)
    options = AnalysisOptions(n_starts=32)
    want = analyze_population(task, cell, params, [nid], probe=probe, options=options)
    module, readout = to_torch(arch, "tanh", {k: v[0] for k, v in params.items()}, True)
    got = analyze_model(module, task, readout, options=options, network_id=nid)
    assert got["fixed_points"].sizes["fixed_point"] > 0
    # the weights differ by the rounding of the bias split (~1e-17) and the points by what
    # the float64 polish resolves (~1e-12): absolute agreement to 1e-8, except where an
    # ill-conditioned eigenbasis amplifies it (eigenvector condition up to ~1e4 here), which
    # stays within a relative 1e-7
    assert_same_analysis(want, got, atol=1e-8, rtol=1e-7)


# -- the step-function path: analytic ground truth ------------------------------------------------


def random_orthogonal(n: int, seed: int) -> torch.Tensor:
    q, r = torch.linalg.qr(
        torch.randn(n, n, generator=torch.Generator().manual_seed(seed)).double()
    )
    return q * torch.sign(torch.diagonal(r))


def bistable_root() -> float:
    """``u₊ > 0`` with ``u₊ = 2 tanh u₊`` (Newton)."""
    u = 2.0
    for _ in range(60):
        u -= (u - 2 * np.tanh(u)) / (1 - 2 / np.cosh(u) ** 2)
    return u


class RotatedBistable(nn.Module):
    """``F(h) = Q g(Qᵀ h + dt U x)``, ``g(u) = u + dt(−u + 2 tanh u)`` per coordinate.

    In the rotated coordinates ``u = Qᵀ h`` the units decouple: each has the fixed points
    ``0`` (``g'(0) = 1 + dt``: unstable) and ``±u₊`` (``g' = 1 − dt(1 − 2 sech² u₊) < 1``).
    """

    def __init__(self, n: int = 3, dt: float = 0.2, gain: float = 0.0, seed: int = 0):
        super().__init__()
        self.state_size = self.n_inputs = n
        self.dt = dt
        self.Q = nn.Parameter(random_orthogonal(n, seed))  # orthogonal in float64
        self.U = nn.Parameter(gain * torch.eye(n, dtype=F64))

    def forward(self, h, x):
        u = h @ self.Q + self.dt * (x @ self.U)
        return (u + self.dt * (-u + 2 * torch.tanh(u))) @ self.Q.T


def test_rotated_bistable_units_have_the_known_fixed_points():
    model = RotatedBistable()
    net = as_network(model)
    assert isinstance(net.cell, StepFunctionCell)
    assert net.float64
    assert net.kind == "step function RotatedBistable (autograd Jacobians)"
    assert net.readout_kind.startswith("identity")
    Q = model.Q.detach().double().numpy()
    starts = np.random.default_rng(0).uniform(-3, 3, size=(1, 256, 3)) @ Q.T
    points = find_fixed_points(net.cell, net.params, np.zeros(3), starts)
    lin = linearize(net.cell, net.params, points)
    fixed = points.kind == "fixed"
    assert fixed.sum() == 27
    assert len(points) == 27
    assert points.q.max() < 1e-20
    u = points.state @ Q  # rotated coordinates
    up = bistable_root()
    expected = np.array(list(itertools.product([-up, 0.0, up], repeat=3)))
    order = np.lexsort(u.T[::-1].round(6))
    # |h - h*| <= |F(h) - h| / min |1 - λ| (the slowest mode sets it), plus rounding
    slowest = model.dt * (1 - 2 / np.cosh(up) ** 2)
    atol = np.sqrt(2 * points.q.max()) / slowest + 1e-14
    np.testing.assert_allclose(u[order], expected, rtol=0, atol=atol)
    zeros = (np.abs(u) < 1e-6).sum(1)
    np.testing.assert_array_equal(lin.n_unstable, zeros)
    assert (lin.n_unstable == 0).sum() == 8
    # eigenvalues: 1 + dt at a zero coordinate, 1 - dt (1 - 2 sech^2 u+) at ±u+
    dt = model.dt
    lam = {0: 1 + dt, 1: 1 - dt * (1 - 2 / np.cosh(up) ** 2)}
    for i in range(27):
        want = sorted(lam[0] if z else lam[1] for z in np.abs(u[i]) < 1e-6)
        # |dλ/du| = dt |4 sech² u tanh u| < 1: an error in position is at most as large in λ
        got = np.sort(lin.eig.eigenvalues[i].real)
        np.testing.assert_allclose(got, want, rtol=0, atol=atol + 1e-14)


class ThreeBitRateNetwork(nn.Module):
    """A continuous-time rate network storing three bits, built by hand.

    ``h' = h + dt(−h + W φ(h) + U x)``, ``φ = tanh``, ``W = Q diag(2) Qᵀ`` (three bistable
    self-exciting modes mixed by ``Q``) and ``U = gain · Q``: a pulse on input ``k`` pushes mode
    ``k`` past its unstable middle so the bit flips to the pulse's sign. Unlike
    :class:`RotatedBistable` ``φ`` acts on the units, not the modes, so nothing decouples
    unless ``Q`` is the identity; with ``Q = I`` the 27 points and their stability are known.
    """

    def __init__(self, dt: float = 0.2, gain: float = 15.0):
        super().__init__()
        self.hidden_size, self.input_size = 3, 3
        self.dt = dt
        self.W = nn.Parameter(2.0 * torch.eye(3))
        self.U = nn.Parameter(gain * torch.eye(3))

    def forward(self, h, x):
        return h + self.dt * (-h + torch.tanh(h) @ self.W.T + x @ self.U.T)


def test_three_bit_rate_network_is_a_flip_flop():
    model = ThreeBitRateNetwork()
    up = bistable_root()
    readout = nn.Linear(3, 3)
    with torch.no_grad():
        readout.weight.copy_(torch.eye(3) / up)
        readout.bias.zero_()
    task = get_task("flipflop", n_steps=40)
    out = analyze_model(model, task, readout, options=AnalysisOptions(n_starts=128))
    s = out["summary"]
    assert int(s["n_fixed"].values[0]) == 27
    assert int(s["n_slow"].values[0]) == 0
    assert int(s["n_stable"].values[0]) == 8
    assert int(s["n_saddle"].values[0]) == 19
    fp = out["fixed_points"]
    counts = np.bincount(fp["n_unstable"].values, minlength=4)
    np.testing.assert_array_equal(counts, [8, 12, 6, 1])  # corners, edges, faces, centre
    # the stable points store the 8 bit patterns (outputs ±1)
    stable = fp["n_unstable"].values == 0
    y = fp["state"].values[stable] / up
    np.testing.assert_allclose(np.abs(y), 1.0, atol=1e-12)
    assert len({tuple(np.sign(r)) for r in y}) == 8
    # saddles with one unstable dimension sit between two corners that differ in one bit
    g = out["transition_graph"]
    weight = g["graph_weight"].values[0]
    node_stable = g["graph_node_stable"].values[0].astype(bool)
    readout_y = g["graph_node_readout"].values[0]
    n = int(g["graph_n_nodes"].values[0])
    assert n == 27
    assert node_stable[:n].sum() == 8
    for a in range(n):
        dest = np.nonzero(weight[a, :n] > 0)[0]
        if node_stable[a]:
            assert dest.tolist() == [a]
            continue
        zero = np.abs(readout_y[a]) < 1e-6
        assert len(dest) == 2 ** zero.sum()
        for d in dest:  # every destination keeps the saddle's stored bits
            np.testing.assert_array_equal(
                np.sign(readout_y[d][~zero]), np.sign(readout_y[a][~zero])
            )
    assert out["fixed_points"].attrs["q_reached"] < 1e-10


def test_a_float32_only_step_function_is_analysed_to_float32_precision():
    W = 2.0 * torch.eye(3)  # captured float32 weights: float64 states cannot be multiplied
    U = 15.0 * torch.eye(3)

    def rate(h, x):
        return h + 0.2 * (-h + torch.tanh(h) @ W + x @ U)

    with pytest.warns(Float32Warning, match="cannot run in float64"):
        net = as_network(rate, n_inputs=3, state_size=3)
    assert not net.float64
    assert net.cell.dtype == torch.float32
    task = get_task("flipflop", n_steps=40)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Float32Warning)  # warned once, at conversion
        out = analyze_model(net, task, options=AnalysisOptions(n_starts=64))
    attrs = out["summary"].attrs
    assert attrs["model_float64"] == 0
    assert 1e-12 < attrs["q_tol"] < 1e-9
    assert attrs["q_reached"] <= attrs["q_tol"]
    assert int(out["summary"]["n_stable"].values[0]) == 8


# -- autograd Jacobians ---------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_autograd_jacobians_equal_the_closed_forms(arch, activation):
    cell = get_cell(arch, activation, n_units=6, n_inputs=3, n_outputs=2)
    g = torch.Generator().manual_seed(1)
    params = {
        k: torch.stack([v, 1.3 * v])
        for k, v in cell.init_params(g, dtype=F64).items()  # two networks
    }
    h = torch.randn(2, 5, cell.state_size, generator=g, dtype=F64)
    x = torch.randn(2, 5, 3, generator=g, dtype=F64)
    jh, jx = autograd_jacobians(cell.step, params, h, x)
    # both are sums of the same few O(1) products: they agree to a few float64 ulps of the
    # largest term (|W| <= ~3, gate derivatives <= 1)
    torch.testing.assert_close(jh, cell.jacobian_h(params, h, x), rtol=0, atol=1e-13)
    torch.testing.assert_close(jx, cell.jacobian_x(params, h, x), rtol=0, atol=1e-13)


def test_autograd_jacobians_work_in_blocks(monkeypatch):
    import rnnzoo_train.cells.autograd as ag

    cell = get_cell("gru", "tanh", n_units=4, n_inputs=2, n_outputs=1)
    params = {k: v[None] for k, v in cell.init_params(torch.Generator(), dtype=F64).items()}
    h = torch.randn(1, 37, 4, dtype=F64)
    x = torch.randn(1, 37, 2, dtype=F64)
    monkeypatch.setattr(ag, "MAX_JACOBIAN_ELEMENTS", 5 * 4 * 6)  # blocks of 5 points
    jh, jx = ag.autograd_jacobians(cell.step, params, h, x)
    torch.testing.assert_close(jh, cell.jacobian_h(params, h, x), rtol=0, atol=1e-14)
    torch.testing.assert_close(jx, cell.jacobian_x(params, h, x), rtol=0, atol=1e-14)
    # an input the step ignores has a zero Jacobian (no error)
    jh0, jx0 = ag.autograd_jacobians(lambda p, hh, xx: torch.tanh(hh), params, h, x)
    torch.testing.assert_close(jh0, torch.diag_embed(1 - torch.tanh(h) ** 2))
    assert not jx0.any()


def test_a_cell_without_closed_forms_gets_autograd_jacobians():
    from rnnzoo_dynamics.testing import TanhCell

    class Bare(TanhCell):  # the step only: Cell's default Jacobians
        jacobian_h = TanhCell.__bases__[0].jacobian_h
        jacobian_x = TanhCell.__bases__[0].jacobian_x

    ref, bare = TanhCell(4, 2, 1), Bare(4, 2, 1)
    params = {k: v[None] for k, v in ref.init_params(torch.Generator(), dtype=F64).items()}
    h, x = torch.randn(1, 3, 4, dtype=F64), torch.randn(1, 3, 2, dtype=F64)
    torch.testing.assert_close(bare.jacobian_h(params, h, x), ref.jacobian_h(params, h, x))
    torch.testing.assert_close(bare.jacobian_x(params, h, x), ref.jacobian_x(params, h, x))


# -- what is not a recurrent network --------------------------------------------------------------


def _bad(h, x):
    return h[:, :2]


BAD_MODELS = [
    (lambda: nn.GRU(3, 4, num_layers=2), {}, "num_layers=2"),
    (lambda: nn.LSTM(3, 4, bidirectional=True), {}, "bidirectional"),
    (lambda: nn.LSTM(3, 4, proj_size=2), {}, "proj_size=2"),
    (lambda: nn.Linear(4, 4), {"n_inputs": 3}, "unknown module type nn.Linear"),
    (lambda: lambda h: h, {"n_inputs": 3, "state_size": 4}, "must map \\(h, x\\)"),
    (lambda: _bad, {"n_inputs": 3, "state_size": 4}, "returned shape \\(3, 2\\)"),
    (lambda: lambda h, x: (h, h), {"n_inputs": 3, "state_size": 4}, "returned a tuple"),
    (lambda: lambda h, x: h / 0.0, {"n_inputs": 3, "state_size": 4}, "non-finite"),
    (lambda: lambda h, x: h, {}, "pass state_size= and n_inputs="),
    (lambda: {"weight_hh_l0": torch.zeros(4, 4)}, {}, "dict is not a torch recurrent model"),
    (lambda: nn.GRU(3, 4), {"n_inputs": 5}, "input_size=3"),
    (lambda: MyGRU(3, 4), {}, "MyGRU subclasses nn.GRU with its own forward"),
]


class MyGRU(nn.GRU):
    def forward(self, x, h=None):
        return super().forward(2 * x, h)


@pytest.mark.parametrize(("make", "kwargs", "match"), BAD_MODELS, ids=[m for *_, m in BAD_MODELS])
def test_bad_models_get_one_line_errors(make, kwargs, match):
    with pytest.raises(ModelError, match=match) as err:
        as_network(make(), **kwargs)
    assert isinstance(err.value, ValueError)
    assert "\n" not in str(err.value)


def test_bad_readouts_and_task_sizes_get_one_line_errors():
    gru = nn.GRU(3, 4)
    cases = [
        (lambda: as_network(gru, nn.Linear(5, 3)), "in_features=5"),
        (lambda: as_network(gru, lambda h: torch.tanh(h)), "not affine"),
        (lambda: as_network(gru, lambda h: h.sum()), "\\(batch, n_outputs\\)"),
        (lambda: as_network(gru, "linear"), "nn.Linear or an affine callable"),
        (lambda: analyze_model(nn.GRU(2, 4), "flipflop"), "task flipflop has 3 inputs"),
        (lambda: analyze_model(gru, "flipflop", nn.Linear(4, 2)), "readout has 2 outputs"),
        (lambda: analyze_model(nn.GRU(4, 4), "cdi"), "pass readout="),
    ]
    for call, match in cases:
        with pytest.raises(ModelError, match=match) as err:
            call()
        assert "\n" not in str(err.value)


def test_an_affine_callable_readout_and_a_replaced_readout():
    gru = nn.GRU(3, 4)
    lin = nn.Linear(4, 2).double()
    net = as_network(gru, lambda h: lin(h))
    assert net.readout_kind == "affine callable"
    assert net.n_outputs == 2
    torch.testing.assert_close(net.params["W_out"][0], lin.weight.detach().T, atol=1e-14, rtol=0)
    again = as_network(as_network(gru), lin)
    assert isinstance(again, OwnNetwork)
    assert again.readout_kind == "nn.Linear"
    assert again.cell.n_outputs == 2


def test_a_module_is_copied_not_changed_and_runs_in_eval_mode():
    class Leaky(nn.Module):
        def __init__(self):
            super().__init__()
            self.state_size, self.n_inputs = 4, 2
            self.W = nn.Linear(4, 4)
            self.U = nn.Linear(2, 4, bias=False)
            self.drop = nn.Dropout(0.5)

        def forward(self, h, x):
            return h + 0.1 * (-h + self.drop(torch.tanh(self.W(h))) + self.U(x))

    model = Leaky().train()
    net = as_network(model)
    assert net.float64
    assert model.training  # the user's module is untouched: still float32, still training
    assert model.W.weight.dtype == torch.float32
    assert model.W.weight.requires_grad
    x = np.random.default_rng(0).standard_normal((2, 5, 2))
    np.testing.assert_array_equal(net.run(x), net.run(x))  # no dropout
    with pytest.raises(ModelError, match="inputs must have shape \\(batch, time, 2\\)"):
        net.run(x[..., :1])
    with pytest.raises(ModelError, match="h0 must have shape \\(2, 4\\)"):
        net.run(x, h0=np.zeros((2, 3)))
    h0 = np.ones((2, 4))
    first = net.states(x[:, :1], h0=h0)[:, 0]
    with torch.no_grad():
        m64 = model.eval().double()
        want = m64(torch.ones(2, 4, dtype=F64), torch.as_tensor(x[:, 0])).numpy()
    np.testing.assert_allclose(first, want, rtol=0, atol=1e-15)
