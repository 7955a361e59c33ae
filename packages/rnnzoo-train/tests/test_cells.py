"""The eight cells: shapes, initialisation, and equality with PyTorch's native cells."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rnnzoo_train.cells import (
    ACTIVATIONS,
    ARCHITECTURES,
    GRUCell,
    LSTMCell,
    PackedCell,
    UGRNNCell,
    VanillaCell,
    get_cell,
    stack_params,
    unsqueeze_params,
)

F64 = torch.float64
ALL = [(a, act) for a in ARCHITECTURES for act in ACTIVATIONS]
N, M, K = 6, 3, 2


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_params(cell: PackedCell, seed: int, scale: float = 0.6) -> dict[str, torch.Tensor]:
    """Dense random parameters (non-zero biases everywhere), float64, one network."""
    g = gen(seed)
    return {
        k: scale * torch.randn(s, generator=g, dtype=F64) for k, s in cell.param_shapes().items()
    }


# -- construction -------------------------------------------------------------------------


@pytest.mark.parametrize(("arch", "act"), ALL)
def test_get_cell_builds_each_architecture(arch, act):
    cell = get_cell(arch, act, N, M, K)
    assert cell.arch == arch
    assert cell.activation == act
    assert cell.state_size == (2 * N if arch == "lstm" else N)


def test_unknown_names_give_one_line_errors():
    with pytest.raises(ValueError, match=r"unknown architecture 'rnn'; choose one of vanilla"):
        get_cell("rnn", "tanh", N, M, K)
    with pytest.raises(ValueError, match=r"unknown activation 'gelu'; choose one of tanh, relu"):
        get_cell("gru", "gelu", N, M, K)
    with pytest.raises(ValueError, match="n_units must be a positive integer"):
        get_cell("gru", "tanh", 0, M, K)


@pytest.mark.parametrize(("arch", "act"), ALL)
def test_param_shapes_and_packed_gate_order(arch, act):
    cell = get_cell(arch, act, N, M, K)
    G = {"vanilla": 1, "ugrnn": 2, "gru": 3, "lstm": 4}[arch]
    shapes = cell.param_shapes()
    assert shapes["W_x"] == (M, G * N)
    assert shapes["W_h"] == (N, G * N)
    assert shapes["b"] == (G * N,)
    assert shapes["W_out"] == (N, K)
    assert shapes["b_out"] == (K,)
    extra = {"b_hn"} if arch == "gru" else set()
    assert set(shapes) == {"W_x", "W_h", "b", "W_out", "b_out"} | extra
    params = cell.init_params(gen(0))
    assert {k: tuple(v.shape) for k, v in params.items()} == shapes
    assert all(v.dtype == torch.float32 for v in params.values())


# -- initialisation -----------------------------------------------------------------------


@pytest.mark.parametrize(("arch", "act"), ALL)
def test_init_is_a_function_of_the_generator_seed_only(arch, act):
    cell = get_cell(arch, act, N, M, K)
    torch.manual_seed(123)  # the global RNG must not matter
    a = cell.init_params(gen(7))
    torch.manual_seed(456)
    b = cell.init_params(gen(7))
    c = cell.init_params(gen(8))
    for k in a:
        assert torch.equal(a[k], b[k])
    assert not torch.equal(a["W_h"], c["W_h"])
    # float64 and float32 draws of one seed agree to float32 rounding
    d = cell.init_params(gen(7), dtype=F64)
    for k in a:
        assert d[k].dtype == F64
        torch.testing.assert_close(d[k].float(), a[k], rtol=0, atol=0)


@pytest.mark.parametrize(("arch", "act"), ALL)
def test_init_scheme_gains_and_gate_biases(arch, act):
    cell: PackedCell = get_cell(arch, act, 32, M, K)
    p = cell.init_params(gen(1), dtype=F64)
    for gate in cell.gates:
        block = p["W_h"][:, cell.gate_slice(gate)]
        gain = cell.recurrent_gain[act][gate]
        # a scaled orthogonal block: all singular values equal the gain
        sv = torch.linalg.svdvals(block)
        torch.testing.assert_close(sv, torch.full_like(sv, gain), rtol=0, atol=1e-12)
        bias = cell.gate_bias[act].get(gate, 0.0)
        assert torch.all(p["b"][cell.gate_slice(gate)] == bias)
    # relu candidate blocks contract (spectral radius < 1): relu networks cannot explode at init
    if act == "relu":
        cand = {"vanilla": "candidate", "ugrnn": "candidate", "gru": "candidate", "lstm": "cell"}
        block = p["W_h"][:, cell.gate_slice(cand[arch])]
        assert torch.linalg.eigvals(block).abs().max() < 1.0
    # documented carry biases
    expected = {"ugrnn": ("update", 1.0), "gru": ("update", 1.0), "lstm": ("forget", 1.0)}
    if (arch, act) == ("lstm", "relu"):
        expected["lstm"] = ("forget", 2.0)
        assert torch.all(p["b"][cell.gate_slice("input")] == -3.0)
    if arch in expected:
        gate, value = expected[arch]
        assert torch.all(p["b"][cell.gate_slice(gate)] == value)
    assert torch.all(p["b_out"] == 0)
    assert 0.5 < p["W_x"].std() * M**0.5 < 1.5
    assert 0.5 < p["W_out"].std() * 32**0.5 < 1.5


@pytest.mark.parametrize(("arch", "act"), ALL)
def test_untrained_states_stay_bounded_over_a_long_run(arch, act):
    """At initialisation no cell explodes over 500 steps of unit-size random input."""
    cell = get_cell(arch, act, 64, M, K)
    params = stack_params([cell.init_params(gen(s)) for s in range(16)])
    x = torch.randn(16, 8, 500, M, generator=gen(99))
    states = cell.run(params, x)[..., :64]
    assert torch.isfinite(states).all()
    # tanh states are bounded by 1; relu ones are driven by unit inputs (max ~10 when the
    # recurrence contracts; gain-1 relu LSTM gates reached |h| > 1000 here)
    assert states.abs().max() <= (1.0 if act == "tanh" else 30.0)
    # and activity does not grow over the trial
    assert states[:, :, -100:].abs().max() < 2 * states[:, :, :100].abs().max()


def test_relu_lstm_stays_bounded_on_a_static_sine_cue():
    """The relu LSTM's cell state integrates a sustained input; its init keeps that stable.

    With forget bias +1 and gate gains 0.5 (the earlier scheme) about a third of 32-unit
    networks ran away (|h| > 1e3) over sine's 500 steps at initialisation.
    """
    from rnnzoo_train.tasks import get_task

    task = get_task("sine")
    batch = task.sample(8, np.random.default_rng(0))
    cell = get_cell("lstm", "relu", 32, task.n_inputs, task.n_outputs)
    params = stack_params([cell.init_params(gen(s)) for s in range(32)])
    x = torch.from_numpy(batch.inputs)[None].expand(32, -1, -1, -1)
    with torch.no_grad():
        states = cell.run(params, x)[..., :32]
    peak = states.abs().amax(dim=(1, 2, 3)).nan_to_num(torch.inf)
    assert int((peak > 1e3).sum()) <= 2


# -- the step function --------------------------------------------------------------------


@pytest.mark.parametrize(("arch", "act"), ALL)
def test_population_equals_networks_alone(arch, act):
    cell = get_cell(arch, act, N, M, K)
    many = [random_params(cell, s) for s in range(3)]
    pop = stack_params(many)
    h = torch.randn(3, 5, cell.state_size, generator=gen(1), dtype=F64)
    x = torch.randn(3, 5, M, generator=gen(2), dtype=F64)
    together = cell.step(pop, h, x)
    assert together.shape == (3, 5, cell.state_size)
    for i, p in enumerate(many):
        alone = cell.step(unsqueeze_params(p), h[i : i + 1], x[i : i + 1])
        # P = 3 vs 1 may take other BLAS kernels: sums of N+M+1 = 10 terms, sum|terms| <= 11.3:
        # <= 10·u·11.3 = 1.3e-14, times <= 1.5 + max|c|/4 = 2.4 through the LSTM's gates and c
        torch.testing.assert_close(together[i : i + 1], alone, rtol=0, atol=5e-14)
    y = cell.readout(pop, together)
    assert y.shape == (3, 5, K)
    torch.testing.assert_close(y[1], together[1, :, :N] @ many[1]["W_out"] + many[1]["b_out"])


@pytest.mark.parametrize(("arch", "act"), ALL)
def test_projected_step_and_run(arch, act):
    cell: PackedCell = get_cell(arch, act, N, M, K)
    p = unsqueeze_params(random_params(cell, 3))
    x = torch.randn(1, 4, 7, M, generator=gen(4), dtype=F64)
    u = cell.project_input(p, x)  # a whole sequence in one GEMM
    assert u.shape == (1, 4, 7, cell.n_gates * N)
    states = cell.run(p, x)
    assert states.shape == (1, 4, 7, cell.state_size)
    h = cell.initial_state(1, 4, F64)
    for t in range(7):
        h = cell.step_projected(p, h, u[:, :, t])
        # u from one sequence GEMM (MKL) vs per-step products (torch's own loop below 400
        # multiply-adds): <= 4·u·sum|x W_x + b| ~ 2e-15 apart; 7 steps amplify that by
        # sum_s prod_t |J_t| <= 916 (relu UGRNN): <= 2e-12
        torch.testing.assert_close(h, states[:, :, t], rtol=0, atol=2e-12)


# -- agreement with native PyTorch cells and with independent textbook references -----------


def test_vanilla_matches_torch_rnncell():
    for act in ACTIVATIONS:
        ref = torch.nn.RNNCell(M, N, nonlinearity=act).double()
        cell = VanillaCell(N, M, K, act)
        p = {
            "W_x": ref.weight_ih.detach().T[None],
            "W_h": ref.weight_hh.detach().T[None],
            "b": (ref.bias_ih + ref.bias_hh).detach()[None],
        }
        _compare_to_native(cell, p, ref, act)


def test_gru_matches_torch_grucell():
    ref = torch.nn.GRUCell(M, N).double()
    cell = GRUCell(N, M, K, "tanh")
    bias_h = ref.bias_hh.detach().clone()
    p = {
        "W_x": ref.weight_ih.detach().T[None],
        "W_h": ref.weight_hh.detach().T[None],
        "b": (ref.bias_ih.detach() + torch.cat([bias_h[: 2 * N], torch.zeros(N, dtype=F64)]))[None],
        "b_hn": bias_h[2 * N :][None],
    }
    _compare_to_native(cell, p, ref, "tanh")


def test_lstm_matches_torch_lstmcell():
    ref = torch.nn.LSTMCell(M, N).double()
    cell = LSTMCell(N, M, K, "tanh")
    p = {
        "W_x": ref.weight_ih.detach().T[None],
        "W_h": ref.weight_hh.detach().T[None],
        "b": (ref.bias_ih + ref.bias_hh).detach()[None],
    }

    def native(x, s):
        h, c = ref(x, (s[:, :N], s[:, N:]))
        return torch.cat([h, c], dim=-1)

    _compare_to_native(cell, p, native, "tanh")


def _compare_to_native(cell, p, native, act):
    x = torch.randn(5, 9, M, generator=gen(5), dtype=F64)
    h_ours = cell.initial_state(1, 5, F64)
    h_ref = h_ours[0]
    with torch.no_grad():
        for t in range(9):
            h_ours = cell.step(p, h_ours, x[None, :, t])
            h_ref = native(x[:, t], h_ref)
            torch.testing.assert_close(h_ours[0], h_ref, rtol=0, atol=1e-13)
    assert h_ours.abs().sum() > 0


def _act(name):
    return torch.tanh if name == "tanh" else torch.relu


def _reference_step(arch, act, p, h, x):
    """Textbook equations with one weight matrix per gate (independent of the packed code)."""
    n = h.shape[-1] if arch != "lstm" else h.shape[-1] // 2

    def lin(gate_index, z, w):
        return z @ w[:, gate_index * n : (gate_index + 1) * n]

    def pre(gate_index):
        return (
            lin(gate_index, x, p["W_x"])
            + lin(gate_index, h[..., :n], p["W_h"])
            + p["b"][gate_index * n : (gate_index + 1) * n]
        )

    f = _act(act)
    if arch == "vanilla":
        return f(pre(0))
    if arch == "ugrnn":
        g, c = torch.sigmoid(pre(0)), f(pre(1))
        return g * h + (1 - g) * c
    if arch == "gru":
        r, z = torch.sigmoid(pre(0)), torch.sigmoid(pre(1))
        cand = f(lin(2, x, p["W_x"]) + p["b"][2 * n :] + r * (lin(2, h, p["W_h"]) + p["b_hn"]))
        return (1 - z) * cand + z * h
    c = h[..., n:]
    i, fg, g, o = torch.sigmoid(pre(0)), torch.sigmoid(pre(1)), f(pre(2)), torch.sigmoid(pre(3))
    c2 = fg * c + i * g
    return torch.cat([o * f(c2), c2], dim=-1)


@pytest.mark.parametrize(("arch", "act"), ALL)
def test_matches_textbook_equations(arch, act):
    """Covers the cells PyTorch lacks (UGRNN, relu GRU and LSTM) with written-out equations."""
    cell = get_cell(arch, act, N, M, K)
    p = random_params(cell, 11)
    h = torch.randn(4, cell.state_size, generator=gen(12), dtype=F64)
    x = torch.randn(4, M, generator=gen(13), dtype=F64)
    expected = _reference_step(arch, act, p, h, x)
    got = cell.step(unsqueeze_params(p), h[None], x[None])[0]
    # per-gate products vs one packed GEMM: sums of 10 terms, sum|terms| <= 7.3: <= 8.1e-15,
    # times <= 1.5 + max|c|/4 = 2.1 through the LSTM's gates and cell state
    torch.testing.assert_close(got, expected, rtol=0, atol=2e-14)


def test_ugrnn_gate_interpolates_between_state_and_candidate():
    cell = UGRNNCell(N, M, K, "tanh")
    p = unsqueeze_params(random_params(cell, 0))
    h = torch.randn(1, 3, N, generator=gen(1), dtype=F64)
    x = torch.randn(1, 3, M, generator=gen(2), dtype=F64)
    p["b"][0, :N] = 50.0  # update gate saturated open -> carries the state
    torch.testing.assert_close(cell.step(p, h, x), h, rtol=0, atol=1e-12)
    p["b"][0, :N] = -50.0  # closed -> the candidate act(x W_xc + h W_hc + b_c)
    cand = torch.tanh(x @ p["W_x"][0, :, N:] + h @ p["W_h"][0, :, N:] + p["b"][0, N:])
    torch.testing.assert_close(cell.step(p, h, x), cand, rtol=0, atol=1e-12)
