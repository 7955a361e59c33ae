"""Runners: map a pure function over work units, yielding ``(unit, result)`` as they finish.

``SerialRunner`` runs in this process; ``ProcessRunner`` uses a pool of spawned worker
processes, each with one torch/BLAS thread (DESIGN.md section 5: parallelism comes from
processes). ``rnnzoo_train.distributed.DaskRunner`` has the same method for a Dask cluster.
A runner never changes results: units are self-contained and :func:`run_unit` is pure.
This module is the one above both kinds of runner: it imports the Dask runner only when
:func:`choose_runner` is asked for one, and :mod:`rnnzoo_train.distributed` imports only
what they share (:mod:`rnnzoo_train.workers`), not this module.

The command lines (``rnnzoo-train generate``, ``rnnzoo-dynamics analyze``, ``rnnzoo-paper
demo``) share one choice of runner, :func:`add_runner_arguments` + :func:`choose_runner`:

============================  ==========================================================
``--workers 1`` (default)     ``SerialRunner()``: this process
``--workers N`` (N > 1)       ``DaskRunner(n_workers=N)``: a Dask LocalCluster of N
                              single-threaded worker processes
``--processes N``             ``ProcessRunner(N)``: a plain pool of N spawned processes
``--scheduler ADDRESS``       ``DaskRunner(address=ADDRESS)``: an existing Dask cluster
============================  ==========================================================

Workers end with their parent. A ``ProcessRunner`` worker gets the kernel's parent-death
signal (Linux) and watches its parent from a thread (everywhere), so it ends within
:data:`PARENT_POLL_SECONDS` of its parent's death even when the parent was SIGKILLed
(:func:`die_with_parent`); a LocalCluster's workers do the same by Dask's own mechanism. A
``map_unordered`` that is left early (an exception in the caller, SIGTERM:
:mod:`rnnzoo_train.signals`, Ctrl-C) kills its pool's workers at once: their units in flight
are abandoned, and a rerun computes them again.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import multiprocessing
import os
import queue
import signal
import sys
import threading
import weakref
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Protocol, TypeVar

from rnnzoo_train.signals import deferred_termination
from rnnzoo_train.workers import THREAD_ENV, UnitFailed, one_thread  # shared with distributed

U = TypeVar("U")
R = TypeVar("R")


class Runner(Protocol):
    """Anything with ``map_unordered(fn, units)`` yielding ``(unit, fn(unit))``.

    The built-in runners also have ``start()`` (start or connect to workers now, so that a
    bad address fails before anything is written) and ``describe()`` (one line for users);
    :func:`start_runner` and :func:`describe_runner` accept runners without them.
    """

    def map_unordered(self, fn: Callable[[Any], Any], units: Iterable[Any]) -> Iterator[tuple]: ...


class RunnerOptionError(ValueError):
    """Invalid or conflicting ``--workers`` / ``--processes`` / ``--scheduler`` (one line)."""


# -- workers end with their parent ----------------------------------------------------------

#: seconds between a worker's checks that its parent is alive (the portable fallback)
PARENT_POLL_SECONDS = 0.5
#: exit status of a worker that ends because its parent is gone
ORPHAN_EXIT_STATUS = 70
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def set_parent_death_signal(signum: int = signal.SIGKILL) -> bool:
    """Ask the Linux kernel to send ``signum`` to this process when its parent dies.

    ``prctl(PR_SET_PDEATHSIG)`` through ``ctypes``. The "parent" is the *thread* that
    started this process. Returns whether it took effect (``False`` off Linux).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - no libc symbols
        return False
    args = (_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    return prctl(*(ctypes.c_ulong(a) for a in args)) == 0


def parent_alive(parent_pid: int) -> bool:
    """Whether the process ``parent_pid`` is still this process's parent and alive.

    ``os.getppid()`` changes when the parent dies (the orphan is re-parented) on POSIX; a
    process started by ``multiprocessing`` also checks its parent's sentinel (a pipe that
    closes when the parent dies, on every platform).
    """
    if os.getppid() != parent_pid:
        return False
    parent = multiprocessing.parent_process()
    return parent is None or parent.is_alive()


def _watch_parent(parent_pid: int) -> None:
    parent = multiprocessing.parent_process()
    while True:
        if parent is not None:
            parent.join(PARENT_POLL_SECONDS)  # returns at once when the parent dies
        else:  # pragma: no cover - not started by multiprocessing
            threading.Event().wait(PARENT_POLL_SECONDS)
        if not parent_alive(parent_pid):
            os._exit(ORPHAN_EXIT_STATUS)


def die_with_parent(parent_pid: int, *, kernel_signal: bool = True) -> None:
    """End this (worker) process when its parent ends, even if the parent is SIGKILLed.

    A SIGKILLed parent cannot stop its workers, which would otherwise train on at full CPU
    for minutes. Two mechanisms, either of which suffices:

    1. on Linux, the kernel's parent-death signal (:func:`set_parent_death_signal`,
       SIGKILL: a worker holds nothing to clean up, the parent is the zoo's only writer);
    2. everywhere, a daemon thread that checks :func:`parent_alive` every
       :data:`PARENT_POLL_SECONDS` (while the worker computes too) and exits with
       :data:`ORPHAN_EXIT_STATUS`.

    A parent that died while the worker started (before the death signal was set) is
    caught by checking ``parent_pid`` right after setting it: the worker exits at once.

    Parameters
    ----------
    parent_pid : int
        ``os.getpid()`` of the parent, taken in the parent when it made the pool.
    kernel_signal : bool
        Use the kernel's parent-death signal where there is one (``False``: the watching
        thread only; for tests of that fallback).
    """
    if kernel_signal:
        set_parent_death_signal()
    if not parent_alive(parent_pid):
        os._exit(ORPHAN_EXIT_STATUS)
    threading.Thread(
        target=_watch_parent, args=(parent_pid,), name="rnnzoo-watch-parent", daemon=True
    ).start()


def _init_worker(parent_pid: int) -> None:
    """Initializer of a ``ProcessRunner`` worker: end with the parent, one thread.

    Ctrl-C reaches the whole process group; the parent stops its workers itself, so they
    ignore SIGINT (instead of printing tracebacks of their own).
    """
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    one_thread()


#: pools whose ``map_unordered`` is running (for :func:`stop_workers`)
_LIVE_POOLS: weakref.WeakSet[ProcessPoolExecutor] = weakref.WeakSet()


#: longest wait of the main thread for a unit, so that a signal is handled promptly
WAKE_SECONDS = 0.2


def _kill_pool(pool: ProcessPoolExecutor) -> None:
    """Kill a pool's worker processes now (abandoning their units) and shut it down.

    A worker killed while it sends a result (a unit's networks and hidden states are
    megabytes) leaves half a message in the result pipe, and the pool's manager thread
    would wait forever for the rest (the shutdown, and the interpreter's exit, with it).
    This process's copy of the pipe's write end is closed, so that the read ends (EOF, a
    broken pool) once the killed workers are gone. The futures are not cancelled: the
    manager thread marks them broken, and cancelling them as well makes it print an
    ``InvalidStateError`` traceback (CPython 3.11). The twin of
    ``rnnzoo_metrics.stopping.kill_pool`` (rnnzoo-metrics cannot depend on rnnzoo-train).
    """
    _LIVE_POOLS.discard(pool)
    kill = getattr(pool, "kill_workers", None)  # Python >= 3.14
    if callable(kill):  # pragma: no cover - newer Python
        kill()
        return
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for p in processes:
        with contextlib.suppress(Exception):  # already gone
            p.kill()
    writer = getattr(getattr(pool, "_result_queue", None), "_writer", None)
    if writer is not None:
        with contextlib.suppress(OSError):
            writer.close()
    pool.shutdown(wait=True)
    for p in processes:
        with contextlib.suppress(Exception):
            p.join(timeout=5)


#: a token per finished future that :func:`wait_any` watches (put by the pool's thread)
_FINISHED: queue.SimpleQueue[None] = queue.SimpleQueue()
#: the futures :func:`wait_any` has put a done-callback on (once each)
_WATCHED: weakref.WeakSet[Future] = weakref.WeakSet()


def _notify(_: Future) -> None:
    _FINISHED.put(None)


def wait_any(futures: Collection[Future]) -> set[Future]:
    """The finished ones of ``futures``, after waiting at most :data:`WAKE_SECONDS`.

    A signal can never leave a pending future's lock held by the main thread. The pool's
    manager thread takes those locks to mark the futures broken when :func:`_kill_pool`
    kills the workers; one left held would make it wait for ever, and the command hang in
    the pool's shutdown. ``concurrent.futures.wait`` takes all the futures' locks one by one
    in a Python loop, and a SIGTERM's ``Terminated`` raised between two of them did just
    that (seen once in ~100 runs of
    ``test_a_sigterm_while_a_worker_sends_its_result_still_stops_at_once`` under load, with
    the threads' stacks). Here the main thread touches the futures' locks only inside
    :func:`_signals_recorded` (a SIGTERM or Ctrl-C there is raised when it ends), and waits
    on a queue that each future's done-callback puts a token in (no Python lock at all).
    The twin of ``rnnzoo_metrics.stopping.wait_any``.
    """
    with _signals_recorded():
        for fut in futures:
            if fut not in _WATCHED:
                _WATCHED.add(fut)
                fut.add_done_callback(_notify)
        done = {fut for fut in futures if fut.done()}
    if not done:
        with contextlib.suppress(queue.Empty):
            _FINISHED.get(timeout=WAKE_SECONDS)
        with _signals_recorded():
            done = {fut for fut in futures if fut.done()}
    with contextlib.suppress(queue.Empty):
        while True:  # the tokens of futures seen done (or of others': a spare wake-up)
            _FINISHED.get_nowait()
    return done


@contextlib.contextmanager
def _signals_recorded() -> Iterator[None]:
    """A SIGTERM or Ctrl-C inside the block is recorded, and raised when it ends.

    For the few lines that take a pending future's lock (its done-callbacks, its state): an
    exception raised while one is held would leave it held for good. Ctrl-C is recorded only
    in the main thread while Python's default SIGINT handler is installed.
    """
    interrupted: list[bool] = []
    with deferred_termination():  # first: a SIGTERM cannot cut the lines below in two
        swap = (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        )
        if swap:
            signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))
        try:
            yield
        finally:
            if swap:
                signal.signal(signal.SIGINT, signal.default_int_handler)
    if interrupted:
        raise KeyboardInterrupt


def stop_workers() -> None:
    """Kill the workers of every ``ProcessRunner`` pool still running in this process.

    ``map_unordered`` does this itself when it is left early; this is for a caller that
    stops while still holding the unfinished iterator (:func:`rnnzoo_train.signals.exit_on_sigterm`
    calls it on SIGTERM).
    """
    for pool in list(_LIVE_POOLS):
        _kill_pool(pool)


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
        """Yield ``(unit, fn(unit))`` as units finish, or ``(unit, UnitFailed)``.

        The workers end with this process (:func:`die_with_parent`); leaving the iteration
        early (``close()``, an exception in the caller) kills them at once.
        """
        units = list(units)
        if not units:
            return
        saved = {k: os.environ.get(k) for k in THREAD_ENV}
        os.environ.update(THREAD_ENV)  # inherited by the spawned workers before torch loads
        try:
            pool = ProcessPoolExecutor(
                max_workers=min(self.n_workers, len(units)),
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(os.getpid(),),
            )
            _LIVE_POOLS.add(pool)
            finished = False
            try:
                pending: dict[Future, Any] = {pool.submit(fn, u): u for u in units}
                while pending:
                    # at most WAKE_SECONDS at a time: a SIGTERM the kernel handed to one of
                    # the pool's threads is acted on only when this thread runs Python again
                    done = wait_any(pending)
                    for fut in done:
                        unit = pending.pop(fut)
                        err = fut.exception()
                        yield unit, (UnitFailed(unit, err) if err is not None else fut.result())
                finished = True
            finally:
                if finished:
                    _LIVE_POOLS.discard(pool)
                    pool.shutdown(wait=True)
                else:  # abandoned: do not wait for units in flight
                    _kill_pool(pool)
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
