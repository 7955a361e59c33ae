"""Which training kernel trains a population: the one module above the kernels.

:func:`make_kernel` reads the architecture's descriptor
(:func:`rnnzoo_train.cells.get_architecture`) for the kernels it has, and the requested
backend (:func:`.native.resolve_backend`: argument, ``$RNNZOO_KERNELS``, else ``auto``):

- a device other than the CPU, or backend ``autograd``: the
  :class:`~.device_kernel.AutogradKernel` (the cell's own step differentiated by autograd);
- ``native`` (``auto`` for float32 where the C library builds): the architecture's native
  kernel (:mod:`.native`), else its eager one;
- ``eager`` (``auto`` otherwise): its eager kernel (:mod:`.kernels`);
- an architecture without eager and native kernels (a plugin's, typically) trains with the
  autograd kernel whatever the backend asked for.

:mod:`.kernels` and :mod:`.native` do not import this module (nor each other's choice).
"""

from __future__ import annotations

import logging

import torch

from rnnzoo_train.cells.builtin import BUILTIN
from rnnzoo_train.cells.registry import get_architecture

from . import native
from .device_kernel import AutogradKernel, resolve_device
from .kernels import SequenceKernel

log = logging.getLogger(__name__)

#: the built-in architectures' eager kernels (read from their descriptors)
KERNELS: dict[str, type[SequenceKernel]] = {
    name: arch.kernel_class("eager") for name, arch in BUILTIN.items()
}
#: the built-in architectures' native kernels (read from their descriptors)
NATIVE_KERNELS: dict[str, type[SequenceKernel]] = {
    name: arch.kernel_class("native") for name, arch in BUILTIN.items()
}


def kernel_class(arch: str, backend: str) -> type:
    """The kernel class ``backend`` (``"native"``, ``"eager"``, ``"autograd"``) of ``arch``.

    Falls back as :func:`make_kernel` does: native to eager, eager to autograd.
    """
    descriptor = get_architecture(arch)
    order = {"native": ("native", "eager"), "eager": ("eager",), "autograd": ()}[backend]
    for candidate in order:
        cls = descriptor.kernel_class(candidate)
        if cls is not None:
            return cls
    return AutogradKernel


def bytes_per_network(arch: str, n_units: int, batch: int, n_steps: int) -> int:
    """Approximate training memory of one network of ``arch`` (float32), in bytes."""
    descriptor = get_architecture(arch)
    cls = kernel_class(arch, "eager")
    return cls.bytes_per_network(n_units, descriptor.n_gates, batch, n_steps)


def make_kernel(
    cell,
    n_networks: int,
    batch: int,
    n_steps: int,
    dtype: torch.dtype = torch.float32,
    chunk: int | None = None,
    backend: str | None = None,
    device: str | torch.device | None = None,
):
    """The training kernel for ``cell``'s architecture (module docstring).

    ``backend`` is ``"auto"``, ``"eager"``, ``"native"`` or ``"autograd"`` (default: the
    environment variable ``RNNZOO_KERNELS``, else ``"auto"``); see :mod:`.native`. A
    ``device`` other than the CPU (a GPU) always gets the
    :class:`~.device_kernel.AutogradKernel`, and so does an architecture without eager and
    native kernels.
    """
    dev = resolve_device(device)
    requested = native.requested_backend(backend)
    descriptor = get_architecture(cell.arch)
    if dev.type != "cpu" or requested == "autograd" or descriptor.kernels == ("autograd",):
        if dev.type == "cpu" and requested not in ("autograd", "auto"):
            log.info("rnnzoo-train: %s has no %s kernel; autograd kernel", cell.arch, requested)
        return AutogradKernel(cell, n_networks, batch, n_steps, dtype, chunk, device=dev)
    chosen = native.resolve_backend(backend, dtype)
    kernel = kernel_class(cell.arch, chosen)
    if kernel is AutogradKernel:
        return AutogradKernel(cell, n_networks, batch, n_steps, dtype, chunk, device=dev)
    return kernel(cell, n_networks, batch, n_steps, dtype, chunk)
