"""Runners: map a pure function over work units, yielding ``(unit, result)`` as they finish.

``SerialRunner`` runs in this process; ``ProcessRunner`` uses a pool of spawned worker
processes, each with one torch/BLAS thread (DESIGN.md section 5: parallelism comes from
processes). ``rnnzoo_train.distributed.DaskRunner`` has the same method for a Dask cluster.
A runner never changes results: units are self-contained and :func:`run_unit` is pure.

The command lines (``rnnzoo-train generate``, ``rnnzoo-dynamics analyze``, ``rnnzoo-paper
demo``) share one choice of runner, :func:`add_runner_arguments` + :func:`choose_runner`:

============================  ==========================================================
``--workers 1`` (default)     ``SerialRunner()``: this process
``--workers N`` (N > 1)       ``DaskRunner(n_workers=N)``: a Dask LocalCluster of N
                              single-threaded worker processes
``--processes N``             ``ProcessRunner(N)``: a plain pool of N spawned processes
``--scheduler ADDRESS``       ``DaskRunner(address=ADDRESS)``: an existing Dask cluster
============================  ==========================================================
"""

from __future__ import annotations

import argparse
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
    """Anything with ``map_unordered(fn, units)`` yielding ``(unit, fn(unit))``.

    The built-in runners also have ``start()`` (start or connect to workers now, so that a
    bad address fails before anything is written) and ``describe()`` (one line for users);
    :func:`start_runner` and :func:`describe_runner` accept runners without them.
    """

    def map_unordered(self, fn: Callable[[Any], Any], units: Iterable[Any]) -> Iterator[tuple]: ...


class RunnerOptionError(ValueError):
    """Invalid or conflicting ``--workers`` / ``--processes`` / ``--scheduler`` (one line)."""


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

    def start(self) -> None:
        """Nothing to start: units run in this process."""

    def describe(self) -> str:
        """One line for users: where units run."""
        return "this process (serial, 1 thread)"

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
            raise ValueError(f"--processes must be >= 1, got {n_workers}")
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

    def start(self) -> None:
        """Nothing to start ahead: each ``map_unordered`` call spawns its pool."""

    def describe(self) -> str:
        """One line for users: where units run."""
        s = "" if self.n_workers == 1 else "es"
        return f"{self.n_workers} worker process{s} x 1 thread (a process pool, no Dask)"

    def __repr__(self) -> str:
        return f"ProcessRunner(n_workers={self.n_workers})"


# -- the command lines' choice of runner --------------------------------------------------


def add_runner_arguments(parser: argparse.ArgumentParser, *, default_workers: int = 1) -> None:
    """Add ``--workers``, ``--processes`` and ``--scheduler`` (see :func:`choose_runner`).

    ``--workers`` defaults to ``None`` in the parsed namespace, so that an explicit value can
    be told from the default; pass ``default_workers`` again to :func:`choose_runner`.
    """
    g = parser.add_argument_group(
        "where the work runs (give at most one of --workers N>1, --processes, --scheduler)"
    )
    g.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="N > 1: a Dask LocalCluster of N single-threaded worker processes; "
        f"1: this process (default {default_workers})",
    )
    g.add_argument(
        "--processes",
        type=int,
        metavar="N",
        help="a plain pool of N worker processes, one thread each (no Dask scheduler)",
    )
    g.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="an existing Dask cluster's scheduler, e.g. tcp://head:8786",
    )


def choose_runner(
    workers: int | None = None,
    processes: int | None = None,
    scheduler: str | None = None,
    *,
    default_workers: int = 1,
) -> Any:
    """The runner asked for by ``--workers`` / ``--processes`` / ``--scheduler``.

    Parameters
    ----------
    workers : int, optional
        ``N > 1``: ``DaskRunner(n_workers=N)``, a Dask LocalCluster of N single-threaded
        worker processes; ``1``: ``SerialRunner()``. ``None``: ``default_workers``.
    processes : int, optional
        ``ProcessRunner(processes)``: a plain process pool.
    scheduler : str, optional
        ``DaskRunner(address=scheduler)``: an existing Dask cluster.
    default_workers : int
        ``workers`` when neither ``workers``, ``processes`` nor ``scheduler`` is given.

    Returns
    -------
    SerialRunner, ProcessRunner or rnnzoo_train.distributed.DaskRunner
        Not started yet: call :func:`start_runner` before writing anything.

    Raises
    ------
    RunnerOptionError
        A count below 1, or more than one of ``workers > 1``, ``processes``, ``scheduler``.
    """
    for flag, n in (("--workers", workers), ("--processes", processes)):
        if n is not None and n < 1:
            raise RunnerOptionError(f"{flag} must be >= 1, got {n}")
    asked = [
        f"--workers {workers} (a Dask LocalCluster)" if workers is not None and workers > 1 else "",
        f"--processes {processes} (a process pool)" if processes is not None else "",
        f"--scheduler {scheduler} (an existing Dask cluster)" if scheduler else "",
    ]
    asked = [a for a in asked if a]
    if len(asked) > 1:
        raise RunnerOptionError(f"{' and '.join(asked)} exclude each other; give only one")
    if processes is not None:
        return ProcessRunner(processes)
    n = default_workers if workers is None else workers
    if not scheduler and n == 1:
        return SerialRunner()
    try:
        from rnnzoo_train.distributed import DaskRunner
    except ImportError as err:  # pragma: no cover - dask[distributed] is a dependency
        raise RunnerOptionError(
            f"Dask is not available ({err}); install dask[distributed] or use --processes N"
        ) from None
    return DaskRunner(address=scheduler) if scheduler else DaskRunner(n_workers=n)


def start_runner(runner: Any) -> None:
    """Start a runner's workers (or connect to its scheduler) now, if it has ``start()``.

    Raises
    ------
    RunnerOptionError
        The Dask scheduler cannot be reached (a one-line message saying what to check).
    """
    start = getattr(runner, "start", None)
    if not callable(start):
        return
    try:
        start()
    except ValueError as err:  # distributed.SchedulerUnreachable is a ValueError
        raise RunnerOptionError(str(err)) from None


def describe_runner(runner: Any) -> str:
    """One line saying where units run (``runner.describe()``, else its ``repr``)."""
    describe = getattr(runner, "describe", None)
    return describe() if callable(describe) else repr(runner)


class StartOnFirstUse:
    """A runner that starts ``runner`` and says which it is when the first units arrive.

    For commands whose user mistakes surface inside the library call (an unknown network,
    options that differ from stored results): they stay one-line errors, and no cluster is
    started for a run with nothing to do. Nothing may be written before the first
    ``map_unordered`` call, which raises :class:`RunnerOptionError` for an unreachable
    scheduler. Other attributes (``close``, ``client``...) are the wrapped runner's.

    Parameters
    ----------
    runner
        The runner to start and use.
    say : callable
        Called once with ``"runner: " + describe_runner(runner)``.
    """

    def __init__(self, runner: Any, say: Callable[[str], None]):
        self.runner = runner
        self.say = say
        self.started = False

    def map_unordered(self, fn: Callable[[U], R], units: Iterable[U]) -> Iterator[tuple]:
        units = list(units)
        if units and not self.started:
            start_runner(self.runner)
            self.started = True
            self.say(f"runner: {describe_runner(self.runner)}")
        return self.runner.map_unordered(fn, units)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.runner, name)

    def __repr__(self) -> str:
        return f"StartOnFirstUse({self.runner!r})"
