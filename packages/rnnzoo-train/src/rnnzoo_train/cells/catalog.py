"""The cells' names, parameter shapes and colours, without torch.

The zoo writer, the presets and torch-free tools need these; the cells themselves
(:mod:`rnnzoo_train.cells.base` and the concrete cells) need torch. Everything here is read
from the architecture descriptors (:mod:`.builtin`, :mod:`.registry`): ``ARCHITECTURES``,
``DISPLAY_NAMES`` and ``N_GATES`` are the built-ins' (the paper's four), and
:func:`param_shapes` also knows the architectures registered by plugins. Shapes are those of
``get_cell(arch, ...).param_shapes()`` (a test checks every architecture).
"""

from __future__ import annotations

from .architecture import Architecture
from .builtin import ACTIVATIONS, BUILTIN, PALETTE
from .registry import (
    GROUP,
    ArchitecturePluginError,
    available_architectures,
    colour,
    display_name,
    get_architecture,
    is_registered,
)

#: the built-in architectures, in the paper's order (plugins: :func:`available_architectures`)
ARCHITECTURES: tuple[str, ...] = tuple(BUILTIN)
#: display names used in figures and reports (paper's spelling)
DISPLAY_NAMES: dict[str, str] = {a.name: a.display_name for a in BUILTIN.values()}
#: number of packed gate blocks ``G`` of each architecture (``W_x`` is ``(M, G*N)``)
N_GATES: dict[str, int] = {a.name: a.n_gates for a in BUILTIN.values()}


def param_shapes(
    arch: str, n_units: int, n_inputs: int, n_outputs: int
) -> dict[str, tuple[int, ...]]:
    """Shape of every parameter of one network of ``arch``, by name, in stored order.

    Raises
    ------
    ValueError
        For an unknown architecture (the message lists the valid ones).
    """
    return get_architecture(arch).param_shapes(n_units, n_inputs, n_outputs)


__all__ = [
    "ACTIVATIONS",
    "ARCHITECTURES",
    "DISPLAY_NAMES",
    "GROUP",
    "N_GATES",
    "PALETTE",
    "Architecture",
    "ArchitecturePluginError",
    "available_architectures",
    "colour",
    "display_name",
    "get_architecture",
    "is_registered",
    "param_shapes",
]
