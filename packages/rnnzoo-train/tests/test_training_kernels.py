"""The fused BPTT kernels against autograd through ``Cell.step`` for all eight cells, for
every backend (eager torch operations, the fused C steps of ``native.c``, and the autograd
kernel that GPUs train with, here on the CPU)."""

import sys

import pytest
import torch

from rnnzoo_train.cells import ACTIVATIONS, ARCHITECTURES, get_architecture, get_cell, stack_params
from rnnzoo_train.training import native
from rnnzoo_train.training.losses import masked_mse_and_grad
from rnnzoo_train.training.selection import make_kernel

needs_native = pytest.mark.skipif(
    native.library() is None, reason=f"native kernels unavailable: {native.status()}"
)
BACKENDS = ["eager", pytest.param("native", marks=needs_native), "autograd"]

CELLS = [(a, f) for a in ARCHITECTURES for f in ACTIVATIONS]
P, B, T, M, N, K = 3, 5, 9, 3, 7, 2


def _problem(arch, act, dtype, seed=0):
    cell = get_cell(arch, act, N, M, K)
    gen = torch.Generator().manual_seed(seed)
    params = stack_params([cell.init_params(gen, dtype) for _ in range(P)])
    # move away from the initialisation (zero biases, exact orthogonality) to cover every term
    params = {
        k: v + 0.2 * torch.randn(v.shape, generator=gen, dtype=dtype) for k, v in params.items()
    }
    x = torch.randn(P, T, B, M, generator=gen, dtype=dtype)
    target = torch.randn(P, T * B, K, generator=gen, dtype=dtype)
    mask = (torch.rand(P, T * B, K, generator=gen) > 0.2).to(dtype)
    return cell, params, x, target, mask


def _autograd(cell, params, x, target, mask):
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    h = cell.initial_state(P, B, x.dtype)
    states = []
    for t in range(T):
        h = cell.step(leaves, h, x[:, t])
        states.append(cell.readout_state(h))
    hs = torch.stack(states, 1).reshape(P, T * B, N)
    y = torch.bmm(hs, leaves["W_out"]) + leaves["b_out"][:, None]
    loss = ((y - target) ** 2 * mask).sum((1, 2)) / mask.sum((1, 2))
    loss.sum().backward()
    return loss.detach(), hs.detach(), {k: v.grad for k, v in leaves.items()}


def _kernel(cell, params, x, target, mask, chunk=None, backend=None):
    """The kernel on the same problem; its layouts are (P, T, rows, B)."""
    kern = make_kernel(cell, P, B, T, x.dtype, chunk=chunk, backend=backend)
    xa = torch.cat([x, torch.ones(P, T, B, 1, dtype=x.dtype)], -1).transpose(2, 3)
    to_kernel = lambda a: a.reshape(P, T, B, -1).transpose(2, 3)  # noqa: E731
    kern.forward(params, xa)
    hs = kern.hidden().transpose(2, 3).reshape(P, T * B, N).clone()
    loss = masked_mse_and_grad(kern.outputs(), to_kernel(target), to_kernel(mask), kern.d_outputs)
    return loss, hs, kern.backward(params)


@pytest.mark.parametrize("backend", ["eager", "autograd"])
@pytest.mark.parametrize(("arch", "act"), CELLS)
def test_gradients_exact_in_float64(arch, act, backend):
    problem = _problem(arch, act, torch.float64)
    loss_a, hs_a, grads_a = _autograd(*problem)
    loss_k, hs_k, grads_k = _kernel(*problem, backend=backend)
    assert set(grads_k) == set(grads_a)
    torch.testing.assert_close(hs_k, hs_a, rtol=0, atol=1e-12)
    torch.testing.assert_close(loss_k, loss_a, rtol=0, atol=1e-12)
    for name in grads_a:
        torch.testing.assert_close(grads_k[name], grads_a[name], rtol=0, atol=1e-10, msg=name)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("arch", "act"), CELLS)
def test_gradients_float32_close_to_float64_autograd(arch, act, backend):
    cell, params, x, target, mask = _problem(arch, act, torch.float64, seed=1)
    _, hs_a, grads_a = _autograd(cell, params, x, target, mask)
    f32 = {k: v.float() for k, v in params.items()}
    _, hs_k, grads_k = _kernel(cell, f32, x.float(), target.float(), mask.float(), backend=backend)
    assert (hs_k.double() - hs_a).abs().max().item() <= 1e-5
    for name in grads_a:
        ref = grads_a[name]
        err = (grads_k[name].double() - ref).abs().max().item()
        assert err <= 1e-5 * max(1.0, ref.abs().max().item()), (name, err)


@needs_native
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_native_lstm_at_vector_aligned_sizes(act, monkeypatch):
    """The native LSTM where ``N * B`` is a multiple of 16 and the stored gate rows are
    64-byte aligned: its AVX-512 path then streams full vectors to the stored rows (the
    small problem above takes only the masked, unaligned stores); P = 5 gives chunks of 4
    and 1 networks."""
    module = sys.modules[__name__]
    for name, value in {"P": 5, "B": 16, "T": 6, "N": 16}.items():
        monkeypatch.setattr(module, name, value)
    cell, params, x, target, mask = _problem("lstm", act, torch.float64, seed=3)
    _, hs_a, grads_a = _autograd(cell, params, x, target, mask)
    f32 = {k: v.float() for k, v in params.items()}
    _, hs_k, grads_k = _kernel(cell, f32, x.float(), target.float(), mask.float(), backend="native")
    assert (hs_k.double() - hs_a).abs().max().item() <= 1e-5
    for name in grads_a:
        ref = grads_a[name]
        err = (grads_k[name].double() - ref).abs().max().item()
        assert err <= 1e-5 * max(1.0, ref.abs().max().item()), (name, err)


@pytest.mark.parametrize(("arch", "act"), CELLS)
def test_chunks_of_the_population_give_the_same_numbers(arch, act):
    """Splitting the per-step work into sub-populations changes speed only."""
    problem = _problem(arch, act, torch.float64, seed=2)
    _, hs_all, grads_all = _kernel(*problem, chunk=P)
    for chunk in (1, 2):
        _, hs, grads = _kernel(*problem, chunk=chunk)
        # chunks of 1, 2, 3 networks may take other BLAS kernels: per step sums of N+M+1 = 11
        # terms (sum|terms| <= 11.1) differ by <= 11·u·11.1 = 1.4e-14, amplified over T = 9
        # steps by sum_s prod_t |J_t| <= 93 (tanh LSTM): <= 1.3e-12; the weight gradients sum
        # T·B = 45 rows carrying such errors: <= 1e-11
        torch.testing.assert_close(hs, hs_all, rtol=0, atol=2e-12)
        for name in grads_all:
            torch.testing.assert_close(grads[name], grads_all[name], rtol=0, atol=1e-11)


@needs_native
@pytest.mark.parametrize("arch", ["ugrnn", "gru", "lstm"])
def test_native_kernels_are_used_for_float32_by_default(arch, monkeypatch):
    monkeypatch.delenv(native.BACKEND_ENV, raising=False)
    cell = get_cell(arch, "tanh", N, M, K)
    assert make_kernel(cell, P, B, T).backend == "native"
    assert make_kernel(cell, P, B, T, torch.float64).backend == "eager"
    assert make_kernel(cell, P, B, T, backend="eager").backend == "eager"
    monkeypatch.setenv(native.BACKEND_ENV, "eager")
    assert make_kernel(cell, P, B, T).backend == "eager"


def test_native_signatures_match_the_c_source():
    """The ctypes declarations agree with the C prototypes (a mismatch would crash)."""
    import re
    from importlib import resources

    src = resources.files("rnnzoo_train.training").joinpath("native.c").read_text()
    found = {}
    for m in re.finditer(r"^void (\w+)\(([^)]*)\)", src, re.M):
        params = [p.strip() for p in m.group(2).split(",")]
        if m.group(1) in native.VECTOR_FUNCTIONS:
            assert len(params) == 3, m.group(1)
            assert params[0].startswith("idx"), m.group(1)
            continue
        assert params[0] == "int n_net", m.group(1)
        assert params[1] in ("idx nb", "idx count"), m.group(1)
        found[m.group(1)] = "".join(
            "p" if "*" in p else "r" if p == "int relu" else "i" for p in params[2:]
        )
    assert found == {**native._SIGNATURES, "copy_blocks": native.COPY_SIGNATURE}


@needs_native
@pytest.mark.parametrize(("name", "max_rel"), [("sigmoid", 2e-7), ("tanh", 5e-7)])
def test_native_sigmoid_and_tanh_are_accurate(name, max_rel):
    """Against float64 torch over [-100, 100], tiny arguments, and the special values."""
    x = torch.cat([
        torch.linspace(-100, 100, 400_001, dtype=torch.float64),
        torch.logspace(-12, 1, 20_000, dtype=torch.float64),
        -torch.logspace(-12, 1, 20_000, dtype=torch.float64),
    ]).float()  # fmt: skip
    ref = getattr(torch, name)(x.double())
    got = native.apply(name, x).double()
    big = ref.abs() > 1e-30
    assert ((got - ref).abs()[big] / ref.abs()[big]).max().item() <= max_rel
    assert (got - ref).abs().max().item() <= 5e-7
    special = native.apply(name, torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0]))
    assert torch.isnan(special[0])
    assert special[1].item() == 1.0
    assert special[2].item() == (-1.0 if name == "tanh" else pytest.approx(0.0, abs=1e-38))
    assert special[3].item() == (0.0 if name == "tanh" else 0.5)


def test_backend_errors_are_one_line_and_actionable(monkeypatch):
    cell = get_cell("lstm", "tanh", N, M, K)
    match = "unknown kernel backend 'fast'.*auto, eager, native, autograd"
    with pytest.raises(ValueError, match=match):
        make_kernel(cell, P, B, T, backend="fast")
    monkeypatch.setenv(native.BACKEND_ENV, "gpu")
    with pytest.raises(ValueError, match="RNNZOO_KERNELS"):
        make_kernel(cell, P, B, T)
    with pytest.raises(native.NativeUnavailable, match="float32 only"):
        make_kernel(cell, P, B, T, torch.float64, backend="native")


def test_without_a_compiler_auto_falls_back_to_eager(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv(native.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no cc, gcc or clang either
    native._load.cache_clear()
    try:
        assert native.library() is None
        assert "no C compiler found" in native.status()
        cell = get_cell("gru", "tanh", N, M, K)
        assert make_kernel(cell, P, B, T).backend == "eager"
        with pytest.raises(native.NativeUnavailable, match="no C compiler found"):
            make_kernel(cell, P, B, T, backend="native")
    finally:
        native._load.cache_clear()


@needs_native
def test_native_library_is_built_once_into_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv(native.CACHE_ENV, str(tmp_path))
    native._load.cache_clear()
    try:
        assert native.library() is not None
        built = sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".c")
        assert len(built) == 1
        assert built[0].startswith("rnnzoo_kernels_")
        mtime = (tmp_path / built[0]).stat().st_mtime_ns
        native._load.cache_clear()
        assert native.library() is not None  # loaded, not rebuilt
        assert (tmp_path / built[0]).stat().st_mtime_ns == mtime
    finally:
        native._load.cache_clear()


def test_kernel_rejects_other_architecture():
    cell = get_cell("gru", "tanh", N, M, K)
    from rnnzoo_train.training.kernels import LSTMKernel

    with pytest.raises(ValueError, match="needs a lstm cell"):
        LSTMKernel(cell, 1, 1, 1)


def test_population_members_do_not_interact():
    """Perturbing network 0 leaves the gradients of networks 1.. unchanged (bitwise)."""
    cell, params, x, target, mask = _problem("gru", "tanh", torch.float32)
    _, _, g1 = _kernel(cell, params, x, target, mask)
    params2 = {k: v.clone() for k, v in params.items()}
    params2["W_h"][0] += 1.0
    _, _, g2 = _kernel(cell, params2, x, target, mask)
    for name in g1:
        assert torch.equal(g1[name][1:], g2[name][1:])
        assert not torch.equal(g1[name][0], g2[name][0]) or name in ("b_out",)


@pytest.mark.parametrize(("arch", "act"), [("gru", "relu"), ("lstm", "tanh")])
def test_autograd_kernel_matches_the_hand_written_eager_kernel(arch, act):
    """The GPU path's kernel and the CPU's hand-written BPTT: two independent derivations."""
    problem = _problem(arch, act, torch.float64, seed=3)
    loss_e, hs_e, grads_e = _kernel(*problem, backend="eager")
    loss_a, hs_a, grads_a = _kernel(*problem, backend="autograd")
    assert make_kernel(problem[0], P, B, T, backend="autograd").backend == "autograd"
    torch.testing.assert_close(hs_a, hs_e, rtol=0, atol=1e-12)
    torch.testing.assert_close(loss_a, loss_e, rtol=0, atol=1e-12)
    for name in grads_e:
        torch.testing.assert_close(grads_a[name], grads_e[name], rtol=0, atol=1e-10, msg=name)


def test_a_missing_gpu_is_a_one_line_error():
    cell = get_cell("gru", "tanh", N, M, K)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA GPU; use --device cpu"):
            make_kernel(cell, P, B, T, device="cuda")
    with pytest.raises(ValueError, match="unknown device 'tpu0'"):
        make_kernel(cell, P, B, T, device="tpu0")


@needs_native
@pytest.mark.skipif(not native.sequence_drivers(), reason="no MKL sgemm_ in torch here")
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_lstm_sequence_drivers_equal_the_per_step_loop(act, monkeypatch):
    """The LSTM's time loop in C (torch's own MKL sgemm_) gives the Python loop's numbers,
    bitwise (the same sgemm on the same operands)."""
    problem = _problem("lstm", act, torch.float32, seed=5)
    loss_c, hs_c, grads_c = _kernel(*problem, backend="native")
    monkeypatch.setattr(native.library(), "rnnzoo_sequence", False)
    assert not native.sequence_drivers()
    loss_p, hs_p, grads_p = _kernel(*problem, backend="native")
    torch.testing.assert_close(hs_c, hs_p, rtol=0, atol=0)
    assert torch.equal(loss_c, loss_p)
    for name in grads_p:
        assert torch.equal(grads_c[name], grads_p[name]), name


@needs_native
def test_sequence_drivers_can_be_switched_off(monkeypatch, tmp_path):
    monkeypatch.delenv(native.BACKEND_ENV, raising=False)  # also under RNNZOO_KERNELS=eager
    monkeypatch.setenv(native.SEQUENCE_ENV, "0")
    monkeypatch.setenv(native.CACHE_ENV, str(tmp_path))
    native._load.cache_clear()
    try:
        assert not native.sequence_drivers()
        assert f"per-step GEMMs through torch ({native.SEQUENCE_ENV}=0)" in native.status()
        cell = get_cell("lstm", "tanh", N, M, K)
        assert make_kernel(cell, P, B, T).backend == "native"
    finally:
        native._load.cache_clear()


SEQUENCE_CELLS = [(a, f) for a in ("vanilla", "ugrnn", "gru") for f in ACTIVATIONS]


@needs_native
@pytest.mark.skipif(not native.sequence_drivers(), reason="no MKL sgemm_ in torch here")
@pytest.mark.parametrize(("arch", "act"), SEQUENCE_CELLS)
@pytest.mark.parametrize("chunk", [None, 2])
def test_sequence_drivers_equal_the_per_step_loop(arch, act, chunk, monkeypatch):
    """The GRU's, UGRNN's and vanilla RNN's time loops in C (``<arch>_forward_sequence``,
    ``<arch>_backward_sequence``) give the numbers of the per-step loop driven from Python,
    bitwise, in one chunk of 5 networks and in chunks of 2, 2 and 1. (Sizes where every
    per-step product of the Python loop goes to MKL: below 400 multiply-adds torch.bmm
    runs its own loop, whose rounding differs.)"""
    module = sys.modules[__name__]
    for name, value in {"P": 5, "B": 16, "T": 6, "N": 16}.items():
        monkeypatch.setattr(module, name, value)
    problem = _problem(arch, act, torch.float32, seed=6)
    cell = problem[0]
    kern = make_kernel(cell, P, B, T, chunk=chunk, backend="native")
    assert type(kern) is get_architecture(arch).kernel_class("native")
    loss_c, hs_c, grads_c = _kernel(*problem, chunk=chunk, backend="native")
    monkeypatch.setattr(native.library(), "rnnzoo_sequence", False)
    assert not native.sequence_drivers()
    loss_p, hs_p, grads_p = _kernel(*problem, chunk=chunk, backend="native")
    assert torch.equal(hs_c, hs_p)
    assert torch.equal(loss_c, loss_p)
    assert set(grads_c) == set(grads_p)
    for name in grads_p:
        assert torch.equal(grads_c[name], grads_p[name]), name


@needs_native
@pytest.mark.parametrize(("arch", "act"), [*SEQUENCE_CELLS, ("lstm", "tanh"), ("lstm", "relu")])
def test_native_network_alone_equals_in_population(arch, act, monkeypatch):
    """float32, native (with the sequence drivers where torch has MKL), sizes where the C
    steps run full vectors: each network of a population of 5 (chunks of 4 and 1) gets
    bitwise the hidden states and gradients it gets alone."""
    module = sys.modules[__name__]
    for name, value in {"P": 5, "B": 16, "T": 6, "N": 16}.items():
        monkeypatch.setattr(module, name, value)
    cell, params, x, target, mask = _problem(arch, act, torch.float32, seed=7)
    _, hs_pop, grads_pop = _kernel(cell, params, x, target, mask, chunk=4, backend="native")
    monkeypatch.setattr(module, "P", 1)
    for p in (0, 3, 4):
        one = lambda a, p=p: a[p : p + 1]  # noqa: E731
        _, hs, grads = _kernel(
            cell, {k: one(v) for k, v in params.items()}, one(x), one(target), one(mask),
            backend="native",
        )  # fmt: skip
        assert torch.equal(hs, hs_pop[p : p + 1])
        for name in grads:
            assert torch.equal(grads[name], grads_pop[name][p : p + 1]), name


@needs_native
def test_the_vanilla_rnn_has_a_native_kernel(monkeypatch):
    monkeypatch.delenv(native.BACKEND_ENV, raising=False)
    cell = get_cell("vanilla", "relu", N, M, K)
    kern = make_kernel(cell, P, B, T)
    assert kern.backend == "native"
    assert isinstance(kern, native.NativeVanillaKernel)
    assert make_kernel(cell, P, B, T, torch.float64).backend == "eager"


def test_autograd_train_step_is_forward_loss_and_backward():
    """The one-call step the engine uses for the GPU kernel (captured into a CUDA graph
    there; uncaptured on the CPU) gives the separate calls' loss and gradients."""
    cell, params, x, target, mask = _problem("gru", "tanh", torch.float64, seed=9)
    kern = make_kernel(cell, P, B, T, torch.float64, backend="autograd")
    assert not kern.use_graphs  # CUDA graphs only on a CUDA device
    xa = torch.cat([x, torch.ones(P, T, B, 1, dtype=x.dtype)], -1).transpose(2, 3)
    to_kernel = lambda a: a.reshape(P, T, B, -1).transpose(2, 3)  # noqa: E731
    loss, grads = kern.train_step(params, xa, to_kernel(target), to_kernel(mask))
    loss_ref, _, grads_ref = _kernel(cell, params, x, target, mask, backend="autograd")
    assert torch.equal(loss, loss_ref)
    for name in grads_ref:
        assert torch.equal(grads[name], grads_ref[name]), name
