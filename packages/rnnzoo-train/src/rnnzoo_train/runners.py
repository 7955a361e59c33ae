"""Runners: map a pure function over work units, yielding ``(unit, result)`` as they finish.

``SerialRunner`` runs in this process; ``ProcessRunner`` uses a pool of spawned worker
processes, each with one torch/BLAS thread (DESIGN.md section 5: parallelism comes from
processes). ``rnnzoo_train.distributed.DaskRunner`` has the same method for a Dask cluster.
A runner never changes results: units are self-contained and :func:`run_unit` is pure.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol, TypeVar

U = TypeVar("U")
R = TypeVar("R")

#: environment of worker processes: one BLAS/OpenMP thread each
THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


class Runner(Protocol):
    """Anything with ``map_unordered(fn, units)`` yielding ``(unit, fn(unit))``."""

    def map_unordered(self, fn: Callable[[Any], Any], units: Iterable[Any]) -> Iterator[tuple]: ...


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


class SerialRunner:
    """Run every unit in this process, in order (one torch thread)."""

    def map_unordered(
        self, fn: Callable[[U], R], units: Iterable[U]
    ) -> Iterator[tuple[U, R | UnitFailed]]:
        one_thread()
        for unit in units:
            try:
                yield unit, fn(unit)
            except Exception as err:  # reported per unit; the run goes on
                yield unit, UnitFailed(unit, err)

    def __repr__(self) -> str:
        return "SerialRunner()"


class ProcessRunner:
    """Run units in ``n_workers`` spawned processes with one torch thread each.

    Parameters
    ----------
    n_workers : int
        Number of worker processes (>= 1).
    """

    def __init__(self, n_workers: int = 2):
        if int(n_workers) < 1:
            raise ValueError(f"--workers must be >= 1, got {n_workers}")
        self.n_workers = int(n_workers)

    def map_unordered(
        self, fn: Callable[[U], R], units: Iterable[U]
    ) -> Iterator[tuple[U, R | UnitFailed]]:
        units = list(units)
        if not units:
            return
        saved = {k: os.environ.get(k) for k in THREAD_ENV}
        os.environ.update(THREAD_ENV)  # inherited by the spawned workers before torch loads
        try:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(
                max_workers=min(self.n_workers, len(units)), mp_context=ctx, initializer=one_thread
            ) as pool:
                pending: dict[Future, Any] = {pool.submit(fn, u): u for u in units}
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        unit = pending.pop(fut)
                        err = fut.exception()
                        yield unit, (UnitFailed(unit, err) if err is not None else fut.result())
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def __repr__(self) -> str:
        return f"ProcessRunner(n_workers={self.n_workers})"
