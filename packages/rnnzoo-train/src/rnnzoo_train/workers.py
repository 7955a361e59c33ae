"""What every runner and its workers share: one thread per worker, and a failed unit.

The bottom of the runners' import graph: :mod:`rnnzoo_train.runners` (the local runners and
the choice of runner) and :mod:`rnnzoo_train.distributed` (the Dask runner) both import
this module, and neither imports the other at module level (``runners.choose_runner``
imports the Dask runner only when ``--workers N`` or ``--scheduler`` asks for it).
"""

from __future__ import annotations

import os
from typing import Any

#: environment of worker processes: one BLAS/OpenMP thread each
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


class UnitFailed(Exception):
    """A work unit raised; carries the unit and the original error's one-line description."""

    def __init__(self, unit: Any, error: BaseException):
        super().__init__(f"{type(error).__name__}: {error}")
        self.unit = unit
        self.error = error


def one_thread() -> None:
    """Limit this process to one torch/BLAS thread."""
    for k, v in THREAD_ENV.items():
        os.environ.setdefault(k, v)
    import torch

    torch.set_num_threads(1)
