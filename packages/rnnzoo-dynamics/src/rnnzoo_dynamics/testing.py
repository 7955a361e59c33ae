"""Small dynamical systems with known fixed points, written as :class:`Cell` subclasses.

They are the ground truth of the finder's tests and a quick way for a user to check the
finder on their machine: every fixed point, its Jacobian and its stability are known in
closed form (or by one-dimensional root finding).

- :class:`ScalarTanh`: ``h' = tanh(w h + u x)``; for ``x = 0`` and ``w > 1`` three fixed
  points: ``0`` (unstable, ``λ = w``) and ``±h₊`` with ``h₊ = tanh(w h₊)`` (stable,
  ``λ = w (1 − h₊²)``).
- :class:`LinearCell`: ``h' = h W_h + x W_x + b``; one fixed point
  ``h* = (x W_x + b)(I − W_h)⁻¹`` whose Jacobian is ``W_hᵀ``.
- :class:`TanhCell`: a vanilla ``tanh`` network ``h' = tanh(h W_h + x W_x + b)``; with a
  diagonal ``W_h`` the units decouple and the fixed points form a known grid
  (:func:`diagonal_tanh_fixed_points`).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from scipy.optimize import brentq
from torch import Tensor

from rnnzoo_train.cells.base import Cell, Params


class ScalarTanh(Cell):
    """One unit, ``h' = tanh(w h + u x)``; parameters ``w``, ``u`` (shape ``(1,)``)."""

    arch = "scalar-tanh"

    def __init__(self) -> None:
        super().__init__(n_units=1, n_inputs=1, n_outputs=1, activation="tanh")

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"w": (1,), "u": (1,), "W_out": (1, 1), "b_out": (1,)}

    def init_params(self, generator: torch.Generator, dtype: torch.dtype = torch.float32) -> Params:
        return {
            "w": torch.full((1,), 2.0, dtype=dtype),
            "u": torch.ones(1, dtype=dtype),
            "W_out": torch.ones(1, 1, dtype=dtype),
            "b_out": torch.zeros(1, dtype=dtype),
        }

    def _pre(self, params: Params, h: Tensor, x: Tensor) -> Tensor:
        return params["w"].unsqueeze(1) * h + params["u"].unsqueeze(1) * x

    def step(self, params: Params, h: Tensor, x: Tensor) -> Tensor:
        return torch.tanh(self._pre(params, h, x))

    def jacobian_h(self, params: Params, h: Tensor, x: Tensor) -> Tensor:
        f = self.step(params, h, x)
        return (params["w"].unsqueeze(1) * (1 - f * f)).unsqueeze(-1)

    def jacobian_x(self, params: Params, h: Tensor, x: Tensor) -> Tensor:
        f = self.step(params, h, x)
        return (params["u"].unsqueeze(1) * (1 - f * f)).unsqueeze(-1)


def scalar_tanh_fixed_points(w: float) -> np.ndarray:
    """The fixed points of ``h' = tanh(w h)``, ascending (one for ``w ≤ 1``, three else)."""
    if w <= 1:
        return np.zeros(1)
    hp = brentq(lambda h: np.tanh(w * h) - h, 1e-9, 1.0 + 1e-9, xtol=1e-15)
    return np.array([-hp, 0.0, hp])


class LinearCell(Cell):
    """``h' = h W_h + x W_x + b`` (row-vector convention of :class:`Cell`)."""

    arch = "linear"

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        n, m, k = self.n_units, self.n_inputs, self.n_outputs
        return {"W_h": (n, n), "W_x": (m, n), "b": (n,), "W_out": (n, k), "b_out": (k,)}

    def init_params(self, generator: torch.Generator, dtype: torch.dtype = torch.float32) -> Params:
        n = self.n_units
        return {
            name: torch.randn(shape, generator=generator, dtype=dtype) / np.sqrt(n)
            for name, shape in self.param_shapes().items()
        }

    def step(self, params: Params, h: Tensor, x: Tensor) -> Tensor:
        return h @ params["W_h"] + x @ params["W_x"] + params["b"].unsqueeze(1)

    def jacobian_h(self, params: Params, h: Tensor, x: Tensor) -> Tensor:
        P, B, _ = h.shape
        return params["W_h"].transpose(-1, -2).unsqueeze(1).expand(P, B, -1, -1)

    def jacobian_x(self, params: Params, h: Tensor, x: Tensor) -> Tensor:
        P, B, _ = h.shape
        return params["W_x"].transpose(-1, -2).unsqueeze(1).expand(P, B, -1, -1)


class TanhCell(Cell):
    """A vanilla tanh network ``h' = tanh(h W_h + x W_x + b)``."""

    arch = "tanh-reference"

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        n, m, k = self.n_units, self.n_inputs, self.n_outputs
        return {"W_h": (n, n), "W_x": (m, n), "b": (n,), "W_out": (n, k), "b_out": (k,)}

    def init_params(self, generator: torch.Generator, dtype: torch.dtype = torch.float32) -> Params:
        n = self.n_units
        return {
            name: torch.randn(shape, generator=generator, dtype=dtype) / np.sqrt(n)
            for name, shape in self.param_shapes().items()
        }

    def step(self, params: Params, h: Tensor, x: Tensor) -> Tensor:
        return torch.tanh(h @ params["W_h"] + x @ params["W_x"] + params["b"].unsqueeze(1))

    def jacobian_h(self, params: Params, h: Tensor, x: Tensor) -> Tensor:
        f = self.step(params, h, x)
        return (1 - f * f).unsqueeze(-1) * params["W_h"].transpose(-1, -2).unsqueeze(1)

    def jacobian_x(self, params: Params, h: Tensor, x: Tensor) -> Tensor:
        f = self.step(params, h, x)
        return (1 - f * f).unsqueeze(-1) * params["W_x"].transpose(-1, -2).unsqueeze(1)


def diagonal_tanh_params(
    w: np.ndarray, b: np.ndarray, n_inputs: int = 1, readout: np.ndarray | None = None
) -> Params:
    """Parameters of ONE :class:`TanhCell` with ``W_h = diag(w)``, bias ``b``, ``W_x = 0``."""
    n = len(w)
    out = np.eye(n) if readout is None else np.asarray(readout, dtype=np.float64)
    return {
        "W_h": torch.diag(torch.as_tensor(w, dtype=torch.float64)),
        "W_x": torch.zeros(n_inputs, n, dtype=torch.float64),
        "b": torch.as_tensor(b, dtype=torch.float64),
        "W_out": torch.as_tensor(out, dtype=torch.float64),
        "b_out": torch.zeros(out.shape[1], dtype=torch.float64),
    }


def _unit_roots(w: float, b: float) -> list[tuple[float, bool]]:
    """Roots of ``tanh(w h + b) = h`` with whether each is stable (``|w (1 − h²)| < 1``)."""
    grid = np.linspace(-1.0, 1.0, 20001)
    g = np.tanh(w * grid + b) - grid
    roots = []
    for i in np.nonzero(np.sign(g[:-1]) * np.sign(g[1:]) <= 0)[0]:
        if g[i] == 0:
            r = grid[i]
        else:
            r = brentq(lambda h: np.tanh(w * h + b) - h, grid[i], grid[i + 1], xtol=1e-15)
        if not roots or abs(r - roots[-1]) > 1e-9:
            roots.append(r)
    return [(r, abs(w * (1 - np.tanh(w * r + b) ** 2)) < 1) for r in roots]


def diagonal_tanh_fixed_points(w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every fixed point of the decoupled network and its number of unstable dimensions.

    Returns
    -------
    points : ndarray, (n_points, n)
        The grid of fixed points (the Cartesian product of each unit's roots).
    n_unstable : ndarray of int, (n_points,)
    """
    per_unit = [_unit_roots(float(wi), float(bi)) for wi, bi in zip(w, b, strict=True)]
    pts, unst = [], []
    for combo in itertools.product(*per_unit):
        pts.append([r for r, _ in combo])
        unst.append(sum(not s for _, s in combo))
    return np.asarray(pts), np.asarray(unst, dtype=np.int64)
