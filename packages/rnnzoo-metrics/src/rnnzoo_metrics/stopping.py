"""Stopping cleanly: worker processes end with their parent, SIGTERM ends a command.

The engine's process pool (``pairwise(..., n_jobs=N)``, ``rnnzoo-metrics pairwise --jobs
N``) is made by :func:`worker_pool`:

- Its workers **end with their parent**, even when the parent is SIGKILLed and can clean
  up nothing (:func:`die_with_parent`): each asks the Linux kernel for SIGKILL when its
  parent dies (``prctl(PR_SET_PDEATHSIG)``) and, on every platform, watches its parent from
  a thread every :data:`PARENT_POLL_SECONDS`, also while it computes.
- A pool that is **left early** (an error, Ctrl-C, SIGTERM) kills its workers at once:
  their tiles in flight are abandoned, and a rerun with the same ``--store`` computes them
  again. A pool that finishes is shut down normally.
- Workers ignore Ctrl-C (SIGINT reaches the whole process group; the parent stops them)
  and take SIGTERM by the default action (they hold nothing to clean up).

The ``rnnzoo-metrics`` command wraps its ``main`` in :func:`exit_on_sigterm`: the first
SIGTERM (a batch scheduler's walltime) becomes a :class:`Terminated` exception in the main
thread, which unwinds like Ctrl-C, and the command prints one line::

    rnnzoo-metrics: terminated; rerun the same command to resume

and exits with status 143 (128 + SIGTERM). Writes to the tile store run inside
:func:`deferred_termination`, so a SIGTERM never cuts a tile in half.

This is a twin of ``rnnzoo_train.runners`` (``die_with_parent``, ``stop_workers``) and
``rnnzoo_train.signals`` (``exit_on_sigterm``), duplicated on purpose: rnnzoo-metrics depends
on no other rnnzoo package (DESIGN.md section 1). A change to one belongs in the other too.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import weakref
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: seconds between a worker's checks that its parent is alive (the portable fallback)
PARENT_POLL_SECONDS = 0.5
#: exit status of a worker that ends because its parent is gone
ORPHAN_EXIT_STATUS = 70
#: longest time the main thread waits for workers without running Python code (see wait_any)
WAKE_SECONDS = 0.2
#: what the command prints (after its program name) when a SIGTERM stopped it
MESSAGE = "terminated; rerun the same command to resume"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


# -- workers end with their parent (twin of rnnzoo_train.runners) --------------------------


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
    closes when the parent dies).
    """
    if os.getppid() != parent_pid:
        return False
    parent = mp.parent_process()
    return parent is None or parent.is_alive()


def _watch_parent(parent_pid: int) -> None:
    parent = mp.parent_process()
    while True:
        if parent is not None:
            parent.join(PARENT_POLL_SECONDS)  # returns at once when the parent dies
        else:
            threading.Event().wait(PARENT_POLL_SECONDS)
        if not parent_alive(parent_pid):
            os._exit(ORPHAN_EXIT_STATUS)


def die_with_parent(parent_pid: int, *, kernel_signal: bool = True) -> None:
    """End this (worker) process when its parent ends, even if the parent is SIGKILLed.

    Two mechanisms, either of which suffices: on Linux the kernel's parent-death signal
    (SIGKILL: a worker holds nothing to clean up; the parent alone writes results), and
    everywhere a daemon thread that checks :func:`parent_alive` every
    :data:`PARENT_POLL_SECONDS` and exits with :data:`ORPHAN_EXIT_STATUS`. A parent that
    died while the worker started (before the death signal was set) is caught by checking
    ``parent_pid`` right after setting it: the worker exits at once.

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


def _worker_init(parent_pid: int) -> None:
    """Initializer of a pool worker: end with the parent, default signals, one thread.

    A forked worker inherits the parent's Python signal handlers: Ctrl-C is ignored (the
    parent stops its workers) and SIGTERM gets the default action again (not the command's
    :class:`Terminated`, which would be reported back as a failed tile).
    """
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass


#: pools in use (for :func:`stop_workers`)
_LIVE_POOLS: weakref.WeakSet[ProcessPoolExecutor] = weakref.WeakSet()


def kill_pool(pool: ProcessPoolExecutor) -> None:
    """Kill a pool's worker processes now (abandoning their work) and shut it down.

    A worker killed while it sends a result (a prepared network is megabytes) leaves half a
    message in the result pipe, and the pool's manager thread would wait forever for the
    rest (the shutdown, and the interpreter's exit, with it). This process's copy of the
    pipe's write end is closed, so that the read ends (EOF, a broken pool) once the killed
    workers are gone. The pool's futures are not cancelled here: the manager thread marks
    them broken, and cancelling them as well makes it print an ``InvalidStateError``
    traceback (CPython 3.11).
    """
    _LIVE_POOLS.discard(pool)
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


def stop_workers() -> None:
    """Kill the workers of every pool of :func:`worker_pool` still in use in this process.

    A pool left early kills its workers itself; this is the command's last resort after a
    SIGTERM (:func:`exit_on_sigterm` calls it).
    """
    for pool in list(_LIVE_POOLS):
        kill_pool(pool)


#: a token per finished future that :func:`wait_any` watches (put by the pool's thread)
_FINISHED: queue.SimpleQueue[None] = queue.SimpleQueue()
#: the futures :func:`wait_any` has put a done-callback on (once each)
_WATCHED: weakref.WeakSet[Future] = weakref.WeakSet()


def _notify(_: Future) -> None:
    _FINISHED.put(None)


def wait_any(futures: Collection[Future]) -> set[Future]:
    """The finished ones of ``futures``, after waiting at most :data:`WAKE_SECONDS`.

    Call it in a loop rather than waiting without a limit: a signal (SIGTERM, Ctrl-C) that
    the kernel delivered to another thread of this process (the pool's own threads) is
    handled only when the main thread runs Python code again, which a wait without a limit
    would put off until a worker finishes, possibly never.

    A signal can never leave a pending future's lock held by the main thread. The pool's
    manager thread takes those locks to mark the futures broken when the workers are
    killed; one left held would make it wait for ever, and the command hang in
    :func:`kill_pool`'s shutdown. ``concurrent.futures.wait`` takes all the futures' locks one
    by one in a Python loop, and a :class:`Terminated` raised between two of them did just
    that (seen once in ~100 runs of rnnzoo-train's twin SIGTERM test under load, with the
    threads' stacks). Here the main thread touches the futures' locks only inside
    :func:`deferred_termination` (a SIGTERM or Ctrl-C there is raised when it ends), and waits
    on a queue that each future's done-callback puts a token in (no Python lock at all).
    """
    _raise_if_interrupted()
    with deferred_termination():
        for fut in futures:
            if fut not in _WATCHED:
                _WATCHED.add(fut)
                fut.add_done_callback(_notify)
        done = {fut for fut in futures if fut.done()}
    if not done:
        with contextlib.suppress(queue.Empty):
            _FINISHED.get(timeout=WAKE_SECONDS)
        with deferred_termination():
            done = {fut for fut in futures if fut.done()}
    with contextlib.suppress(queue.Empty):
        while True:  # the tokens of futures seen done (or of others': a spare wake-up)
            _FINISHED.get_nowait()
    _raise_if_interrupted()
    return done


#: set by :func:`_interrupt_handler` while a pool runs: a Ctrl-C is never lost
_INTERRUPTED = threading.Event()
#: a Ctrl-C that arrived inside :func:`deferred_termination`, raised when it ends
_DEFERRED_INTERRUPT = threading.Event()


def _interrupt_handler(signum: int, frame: Any) -> None:
    """Ctrl-C while a pool runs: remember it, then raise ``KeyboardInterrupt`` as usual.

    The default handler only raises, at the main thread's next bytecode; when that happens
    to be inside a finalizer (a ``__del__`` run by the garbage collector) Python prints
    "Exception ignored" and the interrupt is lost, and the command would run on. The flag
    makes :func:`wait_any` raise it again.
    """
    _INTERRUPTED.set()
    if _state.deferring:
        _DEFERRED_INTERRUPT.set()  # raised when the block ends (deferred_termination)
        return
    raise KeyboardInterrupt


def _raise_if_interrupted() -> None:
    if _INTERRUPTED.is_set():
        _INTERRUPTED.clear()
        raise KeyboardInterrupt


@contextlib.contextmanager
def _remembered_interrupts() -> Iterator[None]:
    """Install :func:`_interrupt_handler` for the block (main thread, default handler only)."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    _INTERRUPTED.clear()
    signal.signal(signal.SIGINT, _interrupt_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _INTERRUPTED.clear()


@contextlib.contextmanager
def worker_pool(n_jobs: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``n_jobs`` forked worker processes that end with this process.

    Leaving the block normally waits for the pool to finish; leaving it by any exception
    (including ``GeneratorExit``, ``KeyboardInterrupt`` and :class:`Terminated`) kills the
    workers at once instead of waiting for their running work.

    Parameters
    ----------
    n_jobs : int
        Number of worker processes (forked, so they share the parent's memory
        copy-on-write; one BLAS thread each).
    """
    pool = ProcessPoolExecutor(
        n_jobs,
        mp_context=mp.get_context("fork"),
        initializer=_worker_init,
        initargs=(os.getpid(),),
    )
    _LIVE_POOLS.add(pool)
    try:
        with _remembered_interrupts():
            yield pool
            pool.shutdown(wait=True)
        _LIVE_POOLS.discard(pool)
    except BaseException:
        kill_pool(pool)
        raise


# -- SIGTERM ends a command cleanly (twin of rnnzoo_train.signals) -------------------------


class Terminated(BaseException):
    """Raised in the main thread by the first SIGTERM (see :func:`exit_on_sigterm`).

    A ``BaseException`` like ``KeyboardInterrupt``, so that ``except Exception`` does not
    swallow it.

    Attributes
    ----------
    signum : int
        The signal received (``signal.SIGTERM``).
    """

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(f"terminated by signal {signum}")
        self.signum = int(signum)


class _State:
    """What the handler has seen; touched only from the main thread."""

    def __init__(self) -> None:
        self.received: int | None = None  # the signal, once one arrived
        self.raised = False  # Terminated was raised for it
        self.deferring = 0  # depth of deferred_termination blocks


_state = _State()


def _handler(signum: int, frame: Any) -> None:
    if _state.received is not None:
        return  # already stopping: let the cleanup finish
    _state.received = signum
    if _state.deferring == 0:
        _state.raised = True
        raise Terminated(signum)


def termination_requested() -> bool:
    """Whether a SIGTERM arrived since :func:`exit_on_sigterm`'s command started."""
    return _state.received is not None


@contextlib.contextmanager
def deferred_termination() -> Iterator[None]:
    """Run a block that a SIGTERM must not cut: the signal takes effect when it ends.

    So does a Ctrl-C while a pool runs (:func:`_remembered_interrupts`): the block may hold
    a lock the pool's threads need (:func:`wait_any`), and an exception raised there would
    leave it held.

    Has no effect outside the main thread or when no :func:`exit_on_sigterm` handler is
    installed (a library caller keeps its own SIGTERM handling).

    Raises
    ------
    Terminated
        When the outermost block ends normally after a SIGTERM arrived inside it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _state.deferring += 1
    try:
        yield
    finally:
        _state.deferring -= 1
    if _state.deferring == 0 and _state.received is not None and not _state.raised:
        _state.raised = True
        raise Terminated(_state.received)
    if _state.deferring == 0 and _DEFERRED_INTERRUPT.is_set():
        _DEFERRED_INTERRUPT.clear()
        raise KeyboardInterrupt


def exit_on_sigterm(prog: str) -> Callable[[F], F]:
    """Decorate a command's ``main``: SIGTERM stops it cleanly with status 143.

    While ``main`` runs, the first SIGTERM raises :class:`Terminated` in the main thread
    (deferred inside :func:`deferred_termination`); further ones are ignored, so the
    cleanup is not cut short. When ``main`` has unwound, every worker still running is
    killed (:func:`stop_workers`), the line ``PROG: terminated; rerun the same command to
    resume`` goes to stderr and the wrapper returns ``128 + signum``. The previous handler
    is restored after. Outside the main thread ``main`` runs unchanged.

    Parameters
    ----------
    prog : str
        The program name that starts the line, e.g. ``"rnnzoo-metrics"``.
    """

    def decorate(main: F) -> F:
        @functools.wraps(main)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is not threading.main_thread():
                return main(*args, **kwargs)
            previous = signal.getsignal(signal.SIGTERM)
            outer = (_state.received, _state.raised, _state.deferring)
            _state.received, _state.raised, _state.deferring = None, False, 0
            signal.signal(signal.SIGTERM, _handler)
            try:
                try:
                    status = main(*args, **kwargs)
                except Terminated as err:
                    status, signum = None, err.signum
                else:
                    signum = _state.received
                if signum is None:
                    return status
                _state.received = signum  # from here on, a further SIGTERM is ignored
                stop_workers()
                print(f"{prog}: {MESSAGE}", file=sys.stderr, flush=True)
                return 128 + signum
            finally:
                signal.signal(signal.SIGTERM, previous)
                _state.received, _state.raised, _state.deferring = outer

        return wrapper  # type: ignore[return-value]

    return decorate
