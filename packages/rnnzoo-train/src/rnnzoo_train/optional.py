"""torch is optional: reading a zoo needs none, training and running networks need it.

``pip install rnnzoo-train`` gives everything that reads data: ``download``, ``verify``,
``info``, ``publish``, :func:`rnnzoo_train.zoo.open_zoo` with its index, weights, hidden
states, probe inputs and analyses. ``pip install "rnnzoo-train[torch]"`` adds what runs
networks: ``generate``, :mod:`rnnzoo_train.training`, :mod:`rnnzoo_train.cells`,
``Zoo.network``, ``Zoo.population``, ``Zoo.cell`` and hidden states that a zoo does not
store and must be recomputed. Each of those calls :func:`require_torch`, which raises a
one-line :class:`TorchMissingError` naming the feature and the install command.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: the install command that adds torch
TORCH_INSTALL = 'pip install "rnnzoo-train[torch]"'


class TorchMissingError(ModuleNotFoundError):
    """A feature that needs torch was used where torch is not installed (one line)."""

    def __init__(self, feature: str):
        super().__init__(
            f"{feature} needs torch, which is not installed: {TORCH_INSTALL}", name="torch"
        )
        self.feature = feature


def require_torch(feature: str) -> ModuleType:
    """``torch``, imported; raise :class:`TorchMissingError` naming ``feature`` if absent.

    Parameters
    ----------
    feature : str
        What needs torch, as the user would name it (``"Zoo.network"``,
        ``"rnnzoo-train generate"``).
    """
    try:
        return importlib.import_module("torch")
    except ModuleNotFoundError as err:
        if err.name != "torch":
            raise
        raise TorchMissingError(feature) from None


def has_torch() -> bool:
    """Whether torch can be imported."""
    try:
        require_torch("")
    except TorchMissingError:
        return False
    return True
