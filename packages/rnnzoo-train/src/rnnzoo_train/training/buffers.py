"""Large training buffers backed by transparent huge pages where the OS offers them.

A population's stored activations are tens to hundreds of MB that every time step touches in
``(networks, ...)`` slices. With 4 KiB pages each slice walks through many pages, and the
page-table walks (TLB misses) cost more than the arithmetic: measured on the development
machine, a strided pass over the stored outputs of 16 LSTMs took 17 ms on 4 KiB pages and
1 ms on 2 MiB pages. :func:`empty` therefore maps large buffers privately, 2 MiB-aligned, and
asks for huge pages (``madvise(MADV_HUGEPAGE)``, honoured when
``/sys/kernel/mm/transparent_hugepage/enabled`` is ``always`` or ``madvise``). Elsewhere
(no ``mmap.MADV_HUGEPAGE``, e.g. macOS or Windows) it is ``torch.empty``.

The memory is returned to the OS when the last tensor viewing it is freed.
"""

from __future__ import annotations

import ctypes
import math
import mmap

import torch
from torch import Tensor

#: buffers at least this large get their own huge-page mapping
HUGE_PAGE = 2 << 20


def _huge_pages_available() -> bool:
    return hasattr(mmap, "MADV_HUGEPAGE") and hasattr(mmap, "MAP_PRIVATE")


def empty(*shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """An uninitialised tensor; large ones on huge pages where available (module docstring)."""
    count = math.prod(shape)
    nbytes = count * torch.empty((), dtype=dtype).element_size()
    if nbytes < HUGE_PAGE or not _huge_pages_available():
        return torch.empty(*shape, dtype=dtype)
    try:
        region = mmap.mmap(-1, nbytes + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        region.madvise(mmap.MADV_HUGEPAGE)
    except (OSError, ValueError):
        return torch.empty(*shape, dtype=dtype)
    address = ctypes.addressof(ctypes.c_char.from_buffer(region))
    offset = (-address) % HUGE_PAGE
    # the tensor keeps ``region`` alive; it is unmapped when the last view is freed
    return torch.frombuffer(region, dtype=dtype, count=count, offset=offset).view(*shape)


def zeros(*shape: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Like :func:`empty`, filled with zeros."""
    return empty(*shape, dtype=dtype).zero_()
