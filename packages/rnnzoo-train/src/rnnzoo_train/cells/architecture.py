"""The architecture descriptor: everything rnnzoo knows about one cell type, in one place.

An :class:`Architecture` names the cell class, its packed gates and parameter layout, its
display name and colour, which training kernels it has and whether its cell has closed-form
Jacobians. Training (kernel choice, work-unit sizes), the zoo writer (parameter shapes) and
reader (the cell of a stored network), the dynamics package and the paper's figures (names,
colours) all read it from :func:`rnnzoo_train.cells.registry.get_architecture`. The four
built-in descriptors are in :mod:`rnnzoo_train.cells.builtin`; a package adds one through
the entry-point group ``rnnzoo_train.cells`` (:mod:`rnnzoo_train.cells.registry`).

This module needs no torch: names, shapes and colours are read by torch-free tools (the
zoo reader and writer); the cell and kernel classes are imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: the training kernels an architecture can have; every architecture has "autograd"
KERNEL_BACKENDS = ("native", "eager", "autograd")
#: the colour of an architecture that declares none
FALLBACK_COLOUR = "#555555"


def resolve(target: Any) -> Any:
    """``target`` itself, or the object a ``"package.module:attribute"`` string names."""
    if not isinstance(target, str):
        return target
    module, _, attribute = target.partition(":")
    obj = importlib.import_module(module)
    for part in attribute.split(".") if attribute else ():
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Architecture:
    """One architecture (cell type), declared once.

    Parameters
    ----------
    name : str
        The name stored in zoos and used in grids (``"gru"``); lower case, no ``-`` or ``/``.
    cell : str or type
        The :class:`~rnnzoo_train.cells.base.Cell` subclass, or ``"module:Class"`` (imported
        on first use, so that this descriptor needs no torch). ``cell.arch`` must be ``name``.
    gates : tuple of str
        The packed gate blocks in order: ``W_x`` is ``(M, G*N)``, ``W_h`` ``(N, G*N)``, ``b``
        ``(G*N,)`` with ``G = len(gates)``.
    display_name : str, optional
        The name in figures and reports (default: ``name`` upper-cased).
    colour : str, optional
        Its colour in every figure (a matplotlib colour; default grey).
    extra_params : tuple of (str, int), optional
        Parameters beyond the packed ones and the readout, as ``(name, multiple)``: a vector
        of ``multiple * N`` values (the GRU's ``("b_hn", 1)``), stored after ``b``.
    state_factor : int
        The state size ``S`` in units of ``N`` (2 for the LSTM's ``concat[h, c]``).
    eager_kernel, native_kernel : str or type, optional
        The training kernels (``"module:Class"``) of the ``eager`` and ``native`` backends,
        if the architecture has them. Without them it trains with the ``autograd`` kernel
        (:class:`~rnnzoo_train.training.device_kernel.AutogradKernel`), which every cell has.
    closed_form_jacobians : bool
        Whether the cell's ``jacobian_h`` and ``jacobian_x`` are closed forms; otherwise
        they are autograd Jacobians of ``step`` (slower; the same function).
    layout : callable, optional
        ``layout(n_units, n_inputs, n_outputs) -> {name: shape}``, for a cell whose
        parameters are not the packed layout; replaces ``gates`` and ``extra_params``.
    plugin : str, optional
        The distribution that provides the architecture (``None`` for the built-ins; the
        registry fills it in for entry points). Zoos record it, so that a zoo whose
        architecture is not installed names the package to install.
    """

    name: str
    cell: str | type
    gates: tuple[str, ...] = ("candidate",)
    display_name: str = ""
    colour: str = FALLBACK_COLOUR
    extra_params: tuple[tuple[str, int], ...] = ()
    state_factor: int = 1
    eager_kernel: str | type | None = None
    native_kernel: str | type | None = None
    closed_form_jacobians: bool = False
    layout: Callable[[int, int, int], dict[str, tuple[int, ...]]] | None = None
    plugin: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.lower() or any(c in self.name for c in "-/ "):
            raise ValueError(
                f"architecture name {self.name!r} must be lower case without '-', '/' or spaces"
            )
        if not self.display_name:
            object.__setattr__(self, "display_name", self.name.upper())
        object.__setattr__(self, "gates", tuple(self.gates))
        object.__setattr__(self, "extra_params", tuple(tuple(e) for e in self.extra_params))

    # -- shapes (no torch) ------------------------------------------------------------------
    @property
    def n_gates(self) -> int:
        """Number ``G`` of packed gate blocks."""
        return len(self.gates)

    @property
    def kernels(self) -> tuple[str, ...]:
        """The training backends this architecture has, from :data:`KERNEL_BACKENDS`."""
        have = {"native": self.native_kernel, "eager": self.eager_kernel, "autograd": True}
        return tuple(b for b in KERNEL_BACKENDS if have[b] is not None)

    def param_shapes(
        self, n_units: int, n_inputs: int, n_outputs: int
    ) -> dict[str, tuple[int, ...]]:
        """Shape of every parameter of one network, by name, in stored order."""
        n, m, k = int(n_units), int(n_inputs), int(n_outputs)
        if self.layout is not None:
            return {str(name): tuple(shape) for name, shape in self.layout(n, m, k).items()}
        gn = self.n_gates * n
        shapes: dict[str, tuple[int, ...]] = {"W_x": (m, gn), "W_h": (n, gn), "b": (gn,)}
        for name, multiple in self.extra_params:
            shapes[name] = (int(multiple) * n,)
        shapes["W_out"] = (n, k)
        shapes["b_out"] = (k,)
        return shapes

    def state_size(self, n_units: int) -> int:
        """The size ``S`` of the state of a network of ``n_units`` units."""
        return self.state_factor * int(n_units)

    # -- classes (need torch) ---------------------------------------------------------------
    def cell_class(self) -> type:
        """The cell class (imports it: needs torch)."""
        cls = resolve(self.cell)
        if getattr(cls, "arch", None) != self.name:
            raise TypeError(
                f"architecture {self.name!r}{self._from()}: its cell class "
                f"{getattr(cls, '__qualname__', cls)!r} has arch "
                f"{getattr(cls, 'arch', None)!r}, not {self.name!r}"
            )
        return cls

    def kernel_class(self, backend: str) -> type | None:
        """The training kernel class of ``backend`` (``"eager"``, ``"native"``), or None.

        ``"autograd"`` is the same class for every architecture
        (:class:`~rnnzoo_train.training.device_kernel.AutogradKernel`) and returns None here.
        """
        if backend not in KERNEL_BACKENDS:
            raise ValueError(f"unknown kernel backend {backend!r}; one of {KERNEL_BACKENDS}")
        target = {"native": self.native_kernel, "eager": self.eager_kernel}.get(backend)
        return None if target is None else resolve(target)

    def _from(self) -> str:
        return f" (from plugin {self.plugin})" if self.plugin else ""
