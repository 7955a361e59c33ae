"""Recurrent cells: Vanilla, UGRNN, GRU, LSTM x {tanh, relu} as pure batched functions.

>>> cell = get_cell("gru", "relu", n_units=64, n_inputs=3, n_outputs=3)
>>> params = cell.init_params(torch.Generator().manual_seed(0))

See :mod:`rnnzoo_train.cells.base` for the shapes and ``docs/cells-and-tasks.md`` for the
equations, packed gate orders, the GRU convention and the initialisation scheme.

Each architecture is declared once, by an :class:`Architecture` descriptor
(:mod:`.architecture`; the built-ins in :mod:`.builtin`), and found by name in the registry
(:mod:`.registry`: the built-ins plus the entry-point group ``rnnzoo_train.cells``, through
which a package adds its own cell; see ``docs/plugins.md``).

The cells need torch (``pip install "rnnzoo-train[torch]"``); their names, parameter
shapes and colours (:mod:`.catalog`) do not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rnnzoo_train.optional import require_torch

from .architecture import Architecture
from .catalog import (
    ACTIVATIONS,
    ARCHITECTURES,
    DISPLAY_NAMES,
    GROUP,
    N_GATES,
    PALETTE,
    ArchitecturePluginError,
    available_architectures,
    colour,
    display_name,
    get_architecture,
    param_shapes,
)

if TYPE_CHECKING:
    from .base import Cell, Params, stack_params, unsqueeze_params
    from .gru import GRUCell
    from .lstm import LSTMCell
    from .packed import PackedCell
    from .ugrnn import UGRNNCell
    from .vanilla import VanillaCell

#: names of this package that need torch, and the module of each: imported on first use,
#: so that the catalog (names, shapes) is torch-free and importing it never loads torch
_LAZY = {
    "Cell": "base",
    "Params": "base",
    "stack_params": "base",
    "unsqueeze_params": "base",
    "GRUCell": "gru",
    "LSTMCell": "lstm",
    "PackedCell": "packed",
    "UGRNNCell": "ugrnn",
    "VanillaCell": "vanilla",
}


def __getattr__(name: str):
    if name == "CELL_CLASSES":
        value = _cell_classes()
    elif name in _LAZY:
        require_torch(f"rnnzoo_train.cells.{name}")
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def _cell_classes() -> dict[str, type[PackedCell]]:
    """The cell class of each built-in architecture (``CELL_CLASSES``; needs torch)."""
    require_torch("rnnzoo_train.cells.CELL_CLASSES")
    return {name: get_architecture(name).cell_class() for name in ARCHITECTURES}


def get_cell(arch: str, activation: str, n_units: int, n_inputs: int, n_outputs: int) -> Cell:
    """The cell of architecture ``arch`` with non-gate nonlinearity ``activation``.

    Parameters
    ----------
    arch : str
        ``"vanilla"``, ``"ugrnn"``, ``"gru"``, ``"lstm"`` or an architecture registered by a
        plugin (:func:`available_architectures`).
    activation : {"tanh", "relu"}
    n_units, n_inputs, n_outputs : int
        Width ``N``, input size ``M`` and readout size ``K``.

    Returns
    -------
    Cell

    Raises
    ------
    ValueError
        For an unknown architecture or activation (the message lists the valid ones).
    ArchitecturePluginError
        For a plugin architecture that cannot be loaded (the message names the plugin).
    TorchMissingError
        Where torch is not installed (``pip install "rnnzoo-train[torch]"``).
    """
    descriptor = get_architecture(arch)
    require_torch("a network's cell (rnnzoo_train.cells.get_cell)")
    try:
        cls = descriptor.cell_class()
    except (ImportError, AttributeError, TypeError) as exc:
        raise ArchitecturePluginError(
            f"the cell of architecture {arch!r}"
            + (f" (plugin {descriptor.plugin})" if descriptor.plugin else "")
            + f" cannot be loaded: {type(exc).__name__}: {exc}"
        ) from exc
    return cls(n_units, n_inputs, n_outputs, activation)


__all__ = [
    "ACTIVATIONS",
    "ARCHITECTURES",
    "CELL_CLASSES",
    "DISPLAY_NAMES",
    "GROUP",
    "N_GATES",
    "PALETTE",
    "Architecture",
    "ArchitecturePluginError",
    "Cell",
    "GRUCell",
    "LSTMCell",
    "PackedCell",
    "Params",
    "UGRNNCell",
    "VanillaCell",
    "available_architectures",
    "colour",
    "display_name",
    "get_architecture",
    "get_cell",
    "param_shapes",
    "stack_params",
    "unsqueeze_params",
]
