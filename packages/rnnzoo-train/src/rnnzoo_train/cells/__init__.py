"""Recurrent cells: Vanilla, UGRNN, GRU, LSTM x {tanh, relu} as pure batched functions.

>>> cell = get_cell("gru", "relu", n_units=64, n_inputs=3, n_outputs=3)
>>> params = cell.init_params(torch.Generator().manual_seed(0))

See :mod:`rnnzoo_train.cells.base` for the shapes and ``docs/cells-and-tasks.md`` for the
equations, packed gate orders, the GRU convention and the initialisation scheme.
"""

from __future__ import annotations

from .base import (
    ACTIVATIONS,
    ARCHITECTURES,
    DISPLAY_NAMES,
    Cell,
    Params,
    stack_params,
    unsqueeze_params,
)
from .gru import GRUCell
from .lstm import LSTMCell
from .packed import PackedCell
from .ugrnn import UGRNNCell
from .vanilla import VanillaCell

#: the cell class of each architecture
CELL_CLASSES: dict[str, type[PackedCell]] = {
    "vanilla": VanillaCell,
    "ugrnn": UGRNNCell,
    "gru": GRUCell,
    "lstm": LSTMCell,
}


def get_cell(arch: str, activation: str, n_units: int, n_inputs: int, n_outputs: int) -> Cell:
    """The cell of architecture ``arch`` with non-gate nonlinearity ``activation``.

    Parameters
    ----------
    arch : {"vanilla", "ugrnn", "gru", "lstm"}
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
    """
    if arch not in CELL_CLASSES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    return CELL_CLASSES[arch](n_units, n_inputs, n_outputs, activation)


__all__ = [
    "ACTIVATIONS",
    "ARCHITECTURES",
    "CELL_CLASSES",
    "DISPLAY_NAMES",
    "Cell",
    "GRUCell",
    "LSTMCell",
    "PackedCell",
    "Params",
    "UGRNNCell",
    "VanillaCell",
    "get_cell",
    "stack_params",
    "unsqueeze_params",
]
