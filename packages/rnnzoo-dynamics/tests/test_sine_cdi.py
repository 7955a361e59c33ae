"""Linearised analyses: sine frequency (Fig. 2f), cdi spectra and mode ablation (Fig. 3e-f)."""

from __future__ import annotations

import numpy as np
import torch

from rnnzoo_dynamics.cdi import ablation_curve, cdi_analysis, mode_contributions
from rnnzoo_dynamics.fixed_points import FinderOptions, find_fixed_points
from rnnzoo_dynamics.linearize import linearize
from rnnzoo_dynamics.sine import leading_oscillation, sine_frequencies
from rnnzoo_dynamics.testing import LinearCell
from rnnzoo_train.cells.base import Cell


class Oscillator(Cell):
    """``h' = ρ R(2π ω(x)) h + b`` in 2-D plus one decaying unit; ``ω(x) = a x + c``.

    Linear in ``h``: one fixed point per input, whose Jacobian rotates by exactly ``2π ω``.
    """

    arch = "oscillator"

    def __init__(self):
        super().__init__(3, 1, 1)

    def param_shapes(self):
        return {"a": (1,), "c": (1,), "rho": (1,), "b": (3,), "W_out": (3, 1), "b_out": (1,)}

    def init_params(self, generator, dtype=torch.float32):
        raise NotImplementedError

    def _matrix(self, params, x):
        theta = 2 * np.pi * (params["a"].unsqueeze(1) * x + params["c"].unsqueeze(1))[..., 0]
        rho = params["rho"].unsqueeze(1)[..., 0]
        cos, sin = rho * torch.cos(theta), rho * torch.sin(theta)
        zero = torch.zeros_like(cos)
        # J[i, j] = dF_i/dh_j
        rows = [
            torch.stack([cos, -sin, zero], -1),
            torch.stack([sin, cos, zero], -1),
            torch.stack([zero, zero, zero + 0.3], -1),
        ]
        return torch.stack(rows, -2)  # (P, B, 3, 3)

    def step(self, params, h, x):
        return (self._matrix(params, x) @ h.unsqueeze(-1)).squeeze(-1) + params["b"].unsqueeze(1)

    def jacobian_h(self, params, h, x):
        return self._matrix(params, x)

    def jacobian_x(self, params, h, x):
        eps = 1e-6
        return ((self.step(params, h, x + eps) - self.step(params, h, x - eps)) / (2 * eps))[
            ..., None
        ]


def test_leading_oscillation():
    lam = np.array(
        [
            [1.02 * np.exp(2j * np.pi * 0.03), 1.02 * np.exp(-2j * np.pi * 0.03), 0.5, 0.1],
            [0.9, 0.8 * np.exp(2j * np.pi * 0.2), 0.8 * np.exp(-2j * np.pi * 0.2), 0.95],
            [0.9, 0.5, 0.2, np.nan],
        ]
    )
    ev, f = leading_oscillation(lam)
    np.testing.assert_allclose(f[:2], [0.03, 0.2])
    assert np.isnan(f[2])
    assert ev[0].imag > 0


def test_sine_frequency_equals_the_rotation_of_the_linearisation():
    cell = Oscillator()
    P = 3
    params = {
        "a": torch.tensor([[0.04], [0.03], [0.05]], dtype=torch.float64),
        "c": torch.tensor([[0.01], [0.02], [0.005]], dtype=torch.float64),
        "rho": torch.tensor([[1.01], [0.99], [1.02]], dtype=torch.float64),
        "b": torch.tensor([[0.1, 0.2, 0.3]] * P, dtype=torch.float64),
        "W_out": torch.ones(P, 3, 1, dtype=torch.float64),
        "b_out": torch.zeros(P, 1, dtype=torch.float64),
    }
    x = np.linspace(0, 1, 5)[:, None]
    omega = 0.04 * x[:, 0] + 0.01
    starts = np.random.default_rng(0).normal(size=(8, 3))
    fp = find_fixed_points(cell, params, x, starts, FinderOptions(escape=None))
    lin = linearize(cell, params, fp)
    ds = sine_frequencies(fp, lin, omega, ["n0", "n1", "n2"])
    truth = params["a"].numpy() * x[:, 0][None, :] + params["c"].numpy()
    np.testing.assert_allclose(ds["frequency_linear"].values, truth, atol=1e-12)
    np.testing.assert_allclose(ds["omega"].values, omega)
    np.testing.assert_allclose(
        np.abs(ds["leading_eigenvalue"].values), params["rho"].numpy() * np.ones((1, 5))
    )
    assert (ds["n_points"].values == 1).all()
    assert ds["frequency_linear"].dims == ("network", "condition")


def _integrator(rng, S, lam):
    """A linear cell with eigenvalues ``lam`` (non-normal eigenbasis), inputs 2+2 (cdi)."""
    R = rng.normal(size=(S, S))
    J = R @ np.diag(lam) @ np.linalg.inv(R)
    return J, R


def test_mode_ablation_matches_explicit_matrix_powers():
    rng = np.random.default_rng(1)
    S, T = 6, 30
    lam = np.array([1.0, 0.97, 0.9 + 0.2j, 0.9 - 0.2j, 0.5, 0.1])
    R = rng.normal(size=(S, S)) + 1j * 0
    R[:, 2] = rng.normal(size=S) + 1j * rng.normal(size=S)
    R[:, 3] = R[:, 2].conj()
    J = (R @ np.diag(lam) @ np.linalg.inv(R)).real
    cell = LinearCell(S, 4, 1)
    W_x = np.zeros((4, S))
    W_x[2] = rng.normal(size=S)  # stream 0 (cued by context 0)
    W_x[3] = rng.normal(size=S)
    params = {
        "W_h": torch.tensor(J.T),  # row-vector convention: J = W_h^T
        "W_x": torch.tensor(W_x),
        "b": torch.zeros(S, dtype=torch.float64),
        "W_out": torch.tensor(rng.normal(size=(S, 1))),
        "b_out": torch.zeros(1, dtype=torch.float64),
    }
    # the line of fixed points along the lambda = 1 eigenvector; pick a few of them
    fp = find_fixed_points(
        cell, params, np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]), rng.normal(size=(16, S))
    )
    assert len(fp) > 2
    lin = linearize(cell, params, fp)
    c = params["W_out"].numpy()[:, 0]
    for cued, cond in ((2, 0), (3, 1)):
        rows = np.nonzero(fp.condition == cond)[0]
        contrib = mode_contributions(lin, rows, np.broadcast_to(c, (len(rows), S)), cued, T)
        curve = ablation_curve(contrib)
        b = W_x[cued]
        full = c @ np.linalg.matrix_power(J, T - 1) @ b
        np.testing.assert_allclose(curve[:, -1], full, rtol=1e-9)
        # keeping the m largest modes = projecting on them
        for m in (1, 2, 4):
            Rm = lin.eig.right[rows[0]][:, :m]
            Lm = lin.eig.left[rows[0]][:, :m]
            lm = lin.eig.eigenvalues[rows[0]][:m]
            ref = (c @ Rm @ np.diag(lm ** (T - 1)) @ Lm.conj().T @ b).real
            np.testing.assert_allclose(curve[0, m - 1], ref, rtol=1e-9, atol=1e-12)
    ds = cdi_analysis(fp, lin, params["W_out"].numpy()[None], [2, 3], ["net"], horizon=T)
    assert ds["ablation"].dims == ("network", "context", "modes_kept")
    assert ds["modes_kept"].values.tolist() == list(range(1, S + 1))
    np.testing.assert_allclose(ds["spectrum"].values[0, 0], np.sort(np.abs(lam))[::-1], rtol=1e-9)
    full0 = c @ np.linalg.matrix_power(J, T - 1) @ W_x[2]
    np.testing.assert_allclose(ds["response_full"].values[0, 0], full0, rtol=1e-9)


def test_single_mode_integrator_needs_one_mode():
    # J = diag(1, 0.5, 0.2): input on the lambda = 1 mode, read out from it: y_m(T) = 1 for m >= 1
    S = 3
    cell = LinearCell(S, 4, 1)
    W_x = np.zeros((4, S))
    W_x[2, 0] = 1.0
    params = {
        "W_h": torch.diag(torch.tensor([1.0, 0.5, 0.2], dtype=torch.float64)),
        "W_x": torch.tensor(W_x),
        "b": torch.zeros(S, dtype=torch.float64),
        "W_out": torch.tensor([[1.0], [0.3], [0.2]], dtype=torch.float64),
        "b_out": torch.zeros(1, dtype=torch.float64),
    }
    x = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
    fp = find_fixed_points(cell, params, x, np.random.default_rng(2).normal(size=(8, S)))
    lin = linearize(cell, params, fp)
    ds = cdi_analysis(fp, lin, params["W_out"].numpy()[None], [2, 3], ["net"], horizon=30)
    np.testing.assert_allclose(ds["ablation"].values[0, 0], [1.0, 1.0, 1.0], atol=1e-12)
    assert lin.stability.tolist() == ["marginal"] * len(fp)


def test_results_of_groups_with_different_state_sizes_concatenate():
    from rnnzoo_dynamics.results import concat_results

    parts = []
    for i, S in enumerate((3, 5)):
        cell = LinearCell(S, 4, 1)
        W_x = np.zeros((4, S))
        W_x[2, 0] = W_x[3, 0] = 1.0
        params = {
            "W_h": torch.diag(torch.linspace(1.0, 0.2, S, dtype=torch.float64)),
            "W_x": torch.tensor(W_x),
            "b": torch.zeros(S, dtype=torch.float64),
            "W_out": torch.ones(S, 1, dtype=torch.float64),
            "b_out": torch.zeros(1, dtype=torch.float64),
        }
        x = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
        fp = find_fixed_points(cell, params, x, np.random.default_rng(i).normal(size=(4, S)))
        lin = linearize(cell, params, fp)
        ds = cdi_analysis(fp, lin, params["W_out"].numpy()[None], [2, 3], [f"net{S}"])
        parts.append(ds.assign_coords(arch=("network", [f"a{S}"])))
    both = concat_results(parts, "network")
    assert both.sizes["modes_kept"] == 5
    assert both["modes_kept"].values.tolist() == [1, 2, 3, 4, 5]
    assert np.isnan(both["ablation"].sel(network="net3").values[:, 3:]).all()
    np.testing.assert_allclose(both["ablation"].sel(network="net5").values[0], 1.0)
    assert both["arch"].values.tolist() == ["a3", "a5"]
