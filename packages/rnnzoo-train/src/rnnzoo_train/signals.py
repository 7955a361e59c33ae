"""SIGTERM: stop a command cleanly, so that rerunning it resumes.

A batch scheduler ends a job at its walltime with SIGTERM (and SIGKILL a grace period later).
Python's default is to die at once, which leaves a process pool's workers training on for
minutes. The command lines (``rnnzoo-train``, ``rnnzoo-dynamics``, ``rnnzoo-paper``) wrap
their ``main`` in :func:`exit_on_sigterm`, which turns the first SIGTERM into a
:class:`Terminated` exception in the main thread. It unwinds like Ctrl-C: in-flight work
units are abandoned, every runner stops its workers (:mod:`rnnzoo_train.runners`), writers
close, and the command prints one line::

    rnnzoo-train: terminated; rerun the same command to resume

and exits with status 143 (128 + SIGTERM, the shell's convention). Writes that must not be
cut in the middle run inside :func:`deferred_termination`: a SIGTERM that arrives there
takes effect when the block ends. A second SIGTERM while the command is already stopping is
ignored, so cleanup is not cut short (SIGKILL still ends everything, and every store is safe
against SIGKILL too). :func:`on_termination` lets a runner prepare the moment the signal
arrives (a Dask LocalCluster stops restarting the workers the same SIGTERM may have ended).

Worker processes do not rely on any of this: they end with their parent even when it is
SIGKILLed (:func:`rnnzoo_train.runners.die_with_parent`).
"""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: what the command prints (after its program name) when a SIGTERM stopped it
MESSAGE = "terminated; rerun the same command to resume"


class Terminated(BaseException):
    """Raised in the main thread by the first SIGTERM (see :func:`exit_on_sigterm`).

    A ``BaseException`` like ``KeyboardInterrupt``, so that code that reports a failing unit
    and goes on (``except Exception``) does not swallow it.

    Attributes
    ----------
    signum : int
        The signal received (``signal.SIGTERM``).
    """

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(f"terminated by signal {signum}")
        self.signum = int(signum)

    @property
    def exit_status(self) -> int:
        """``128 + signum``: 143 for SIGTERM."""
        return 128 + self.signum


class _State:
    """What the handler has seen; touched only from the main thread."""

    def __init__(self) -> None:
        self.received: int | None = None  # the signal, once one arrived
        self.raised = False  # Terminated was raised for it
        self.deferring = 0  # depth of deferred_termination blocks


_state = _State()
_callbacks: list[weakref.WeakMethod] = []


def on_termination(callback: Callable[[], None]) -> None:
    """Call the bound method ``callback`` the moment a SIGTERM arrives (held weakly).

    It runs inside the signal handler, in the main thread, before anything unwinds: for
    quick preparations only (a Dask LocalCluster stops restarting workers that the same
    SIGTERM may have ended, and silences its loggers). Errors in it are ignored.
    """
    _callbacks.append(weakref.WeakMethod(callback))  # type: ignore[arg-type]


def _handler(signum: int, frame: Any) -> None:
    if _state.received is not None:
        return  # already stopping: let the cleanup finish
    _state.received = signum
    for ref in list(_callbacks):
        callback = ref()
        if callback is None:
            _callbacks.remove(ref)
            continue
        with contextlib.suppress(Exception):  # a preparation must not stop the stopping
            callback()
    if _state.deferring == 0:
        _state.raised = True
        raise Terminated(signum)


def termination_requested() -> bool:
    """Whether a SIGTERM arrived since :func:`exit_on_sigterm`'s command started."""
    return _state.received is not None


@contextlib.contextmanager
def deferred_termination() -> Iterator[None]:
    """Run a block that a SIGTERM must not cut: the signal takes effect when it ends.

    Wrap writes that belong together (a work unit's rows and its index update), so that a
    SIGTERM never leaves them half done. Has no effect outside the main thread or when no
    :func:`exit_on_sigterm` handler is installed (a library caller keeps Python's default).

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


def exit_on_sigterm(prog: str) -> Callable[[F], F]:
    """Decorate a command's ``main``: SIGTERM stops it cleanly with status 143.

    While ``main`` runs, the first SIGTERM raises :class:`Terminated` in the main thread
    (deferred inside :func:`deferred_termination`). When it has unwound ``main`` (runners
    closed, writers closed), every worker process still running is stopped
    (:func:`rnnzoo_train.runners.stop_workers`), one line ``PROG: terminated; rerun the same
    command to resume`` goes to stderr and the wrapper returns ``128 + signum``. A SIGTERM
    whose exception never surfaced (it came during a deferred block that then failed, or at
    the very end) gives the same line and status. The previous handler is restored after.
    Outside the main thread (no signal handlers there) ``main`` runs unchanged.

    Parameters
    ----------
    prog : str
        The program name that starts the line, e.g. ``"rnnzoo-train"``.
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
                from rnnzoo_train.runners import stop_workers

                stop_workers()
                print(f"{prog}: {MESSAGE}", file=sys.stderr, flush=True)
                return 128 + signum
            finally:
                signal.signal(signal.SIGTERM, previous)
                _state.received, _state.raised, _state.deferring = outer

        return wrapper  # type: ignore[return-value]

    return decorate


__all__ = [
    "MESSAGE",
    "Terminated",
    "deferred_termination",
    "exit_on_sigterm",
    "on_termination",
    "termination_requested",
]
