"""The non-gate point-wise nonlinearities (``tanh``, ``relu``) and their derivatives.

Derivatives are written in terms of the *output* ``y = act(a)`` so that the closed-form
Jacobians reuse the values the forward step already computed:

- ``tanh'(a) = 1 - y**2``;
- ``relu'(a) = 1 if a > 0 else 0`` (``= 1[y > 0]``; 0 at the kink, as in PyTorch's autograd).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .base import ACTIVATIONS


def _tanh_derivative(y: Tensor) -> Tensor:
    return 1.0 - y * y


def _relu_derivative(y: Tensor) -> Tensor:
    return (y > 0).to(y.dtype)


_FORWARD: dict[str, Callable[[Tensor], Tensor]] = {"tanh": torch.tanh, "relu": torch.relu}
_DERIVATIVE: dict[str, Callable[[Tensor], Tensor]] = {
    "tanh": _tanh_derivative,
    "relu": _relu_derivative,
}


def activation(name: str) -> Callable[[Tensor], Tensor]:
    """The point-wise function ``act`` named ``name`` (``"tanh"`` or ``"relu"``)."""
    if name not in _FORWARD:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return _FORWARD[name]


def activation_derivative(name: str) -> Callable[[Tensor], Tensor]:
    """``act'`` as a function of the output ``y = act(a)`` (see the module docstring)."""
    if name not in _DERIVATIVE:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return _DERIVATIVE[name]


def sigmoid_derivative(s: Tensor) -> Tensor:
    """``sigma'(a) = s (1 - s)`` as a function of ``s = sigma(a)``."""
    return s * (1.0 - s)
