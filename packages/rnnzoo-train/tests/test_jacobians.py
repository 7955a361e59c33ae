"""Closed-form Jacobians dF/dh and dF/dx of all eight cells against autodiff, and their cost."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from rnnzoo_train.cells import ACTIVATIONS, ARCHITECTURES, PackedCell, get_cell, stack_params

F64 = torch.float64
ALL = [(a, act) for a in ARCHITECTURES for act in ACTIVATIONS]
P, B, N, M, K = 2, 5, 7, 3, 2


def _population(cell: PackedCell, seed: int):
    g = torch.Generator().manual_seed(seed)
    params = stack_params(
        [
            {
                k: 0.7 * torch.randn(s, generator=g, dtype=F64)
                for k, s in cell.param_shapes().items()
            }
            for _ in range(P)
        ]
    )
    h = torch.randn(P, B, cell.state_size, generator=g, dtype=F64)
    x = torch.randn(P, B, M, generator=g, dtype=F64)
    return params, h, x


def _distance_to_kink(cell: PackedCell, params, h, x) -> float:
    """Smallest |argument| of any relu in the step (the only non-smooth points)."""
    a = cell.project_input(params, x) + cell.recurrent_projection(params, h)
    n = cell.n_units
    if cell.arch == "vanilla":
        args = [a]
    elif cell.arch == "ugrnn":
        args = [a[..., n:]]
    elif cell.arch == "gru":
        r = torch.sigmoid(a[..., :n])
        u = cell.project_input(params, x)[..., 2 * n :]
        m = cell.recurrent_projection(params, h)[..., 2 * n :] + params["b_hn"].unsqueeze(1)
        args = [u + r * m]
    else:
        i, f, g = torch.sigmoid(a[..., :n]), torch.sigmoid(a[..., n : 2 * n]), a[..., 2 * n : 3 * n]
        c_next = f * h[..., n:] + i * torch.relu(g)
        args = [g, c_next]
    return min(float(t.abs().min()) for t in args)


def _autodiff(cell: PackedCell, params, h, x, wrt: str) -> torch.Tensor:
    """Per-(network, trial) Jacobian with torch.func.jacrev, vmapped over both batch axes."""

    def one(p, hh, xx):  # single network, single trial
        p1 = {k: v[None] for k, v in p.items()}

        def f(s, u):
            return cell.step(p1, s[None, None], u[None, None])[0, 0]

        return torch.func.jacrev(f, argnums=0 if wrt == "h" else 1)(hh, xx)

    over_trials = torch.func.vmap(one, in_dims=(None, 0, 0))
    return torch.func.vmap(over_trials, in_dims=(0, 0, 0))(params, h, x)


@pytest.mark.parametrize(("arch", "act"), ALL)
def test_closed_form_jacobians_match_jacrev(arch, act):
    cell = get_cell(arch, act, N, M, K)
    params, h, x = _population(cell, seed=17)
    if act == "relu":  # the random state is away from the kink (relu' is undefined there)
        assert _distance_to_kink(cell, params, h, x) > 1e-4
    jh = cell.jacobian_h(params, h, x)
    jx = cell.jacobian_x(params, h, x)
    S = cell.state_size
    assert jh.shape == (P, B, S, S)
    assert jx.shape == (P, B, S, M)
    torch.testing.assert_close(jh, _autodiff(cell, params, h, x, "h"), rtol=0, atol=1e-10)
    torch.testing.assert_close(jx, _autodiff(cell, params, h, x, "x"), rtol=0, atol=1e-10)
    # not trivially zero: every gate block contributes
    assert jh.abs().mean() > 1e-2


@pytest.mark.parametrize(("arch", "act"), ALL)
def test_jacobians_at_initialisation_match_jacrev(arch, act):
    """At the initial weights (the dynamics analyses also study untrained networks)."""
    cell = get_cell(arch, act, N, M, K)
    params = stack_params([cell.init_params(torch.Generator().manual_seed(s), F64) for s in (0, 1)])
    g = torch.Generator().manual_seed(5)
    h = torch.randn(P, B, cell.state_size, generator=g, dtype=F64)
    x = torch.randn(P, B, M, generator=g, dtype=F64)
    torch.testing.assert_close(
        cell.jacobian_h(params, h, x), _autodiff(cell, params, h, x, "h"), rtol=0, atol=1e-10
    )
    torch.testing.assert_close(
        cell.jacobian_x(params, h, x), _autodiff(cell, params, h, x, "x"), rtol=0, atol=1e-10
    )


def test_relu_jacobian_is_zero_for_inactive_units():
    cell = get_cell("vanilla", "relu", N, M, K)
    params, h, x = _population(cell, seed=3)
    a = cell.project_input(params, x) + cell.recurrent_projection(params, h)
    jh = cell.jacobian_h(params, h, x)
    inactive = a < 0
    assert inactive.any()
    assert (~inactive).any()
    assert torch.all(jh[inactive] == 0)
    expected = params["W_h"].transpose(1, 2).unsqueeze(1).expand_as(jh)
    torch.testing.assert_close(jh[~inactive], expected[~inactive], rtol=0, atol=0)


class _LargestTensor(TorchDispatchMode):
    """Records the largest tensor any torch operation produces."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize(("arch", "act"), ALL)
def test_jacobian_memory_is_bounded_by_its_output(arch, act):
    """No intermediate is larger than the (P, B, S, S) result: never a (P*B*S)^2 matrix."""
    n, points = 48, 64
    cell = get_cell(arch, act, n, M, K)
    params = stack_params([cell.init_params(torch.Generator().manual_seed(s), F64) for s in (0, 1)])
    h = torch.randn(2, points, cell.state_size, dtype=F64)
    x = torch.randn(2, points, M, dtype=F64)
    S = cell.state_size
    with _LargestTensor() as mode:
        cell.jacobian_h(params, h, x)
    assert mode.largest == 2 * points * S * S
    with _LargestTensor() as mode:
        cell.jacobian_x(params, h, x)
    # the input Jacobian is small; the largest intermediate is a gate-sized vector or W_h
    assert mode.largest <= max(2 * points * S * M, 2 * points * 4 * n, 2 * n * 4 * n)


@pytest.mark.parametrize(("arch", "act"), ALL)
def test_one_static_input_broadcasts_over_many_points(arch, act):
    """The fixed-point finder passes one x* per network, (P, 1, M), for many states."""
    cell = get_cell(arch, act, N, M, K)
    params, h, x = _population(cell, seed=23)
    x1 = x[:, :1]
    xb = x1.expand(P, B, M)
    for f in (cell.step, cell.jacobian_h, cell.jacobian_x):
        torch.testing.assert_close(f(params, h, x1), f(params, h, xb), rtol=0, atol=1e-14)
