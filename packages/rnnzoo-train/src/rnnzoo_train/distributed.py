"""``DaskRunner``: run generation's work units on a Dask cluster.

>>> runner = DaskRunner(n_workers=4)                  # a LocalCluster of 4 processes
>>> runner = DaskRunner(address="tcp://head:8786")    # an existing cluster (dask-jobqueue...)
>>> generate(preset, tasks, ZarrZooWriter("zoo.zarr"), runner=runner)

The command lines make the first with ``--workers 4`` and the second with ``--scheduler
tcp://head:8786`` (:func:`rnnzoo_train.runners.choose_runner`).

Like the other runners (:mod:`rnnzoo_train.runners`) it maps the pure ``run_unit`` over
picklable work units and yields ``(unit, result)`` as units finish. Workers only train; the
results come back to the client, which is the zoo's only writer (``docs/scaling.md`` says
why). A unit that raises is retried ``retries`` times; a unit whose worker dies is
rescheduled on another worker by the scheduler (up to Dask's
``distributed.scheduler.allowed-failures``), so killing a worker loses nothing. A unit that
still fails is yielded as a :class:`~rnnzoo_train.runners.UnitFailed`, and generation
reports it and goes on (rerunning the same command retrains it).

Stopping: a LocalCluster's worker processes end with this process, even when it is
SIGKILLed (Dask's nanny gives each worker a pipe from its parent and the worker exits when
the pipe closes; ``docs/scaling.md`` has the measurement). A ``map_unordered`` left early
cancels its units. After a SIGTERM (:mod:`rnnzoo_train.signals`), :meth:`DaskRunner.close`
kills the LocalCluster's worker processes instead of waiting for the units they are
computing (Dask's graceful close waits up to 4 s per busy worker, then kills it anyway, and
logs warnings on the way).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import logging
import os
import signal
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from distributed.diagnostics.plugin import WorkerPlugin

from rnnzoo_train.workers import THREAD_ENV, UnitFailed, one_thread

U = TypeVar("U")
R = TypeVar("R")


class SchedulerUnreachable(ConnectionError, ValueError):
    """The Dask scheduler cannot be reached (a ``ValueError`` too: a user-correctable input)."""


class OneThreadPlugin(WorkerPlugin):
    """Dask worker plugin: one torch/BLAS thread in every worker, also after a restart."""

    name = "rnnzoo-one-thread"

    def setup(self, worker: Any) -> None:
        one_thread()


class DaskRunner:
    """Run work units on a Dask cluster.

    Parameters
    ----------
    n_workers : int, optional
        Start a :class:`distributed.LocalCluster` of this many single-threaded worker
        processes (default 1 when no ``address`` is given).
    address : str, optional
        Connect to the scheduler at this address instead (``tcp://host:8786``; a
        ``dask-jobqueue`` SLURM/PBS cluster, Kubernetes, ``dask scheduler`` + ``dask worker``).
        Workers there should run one thread each (``--nthreads 1``); every unit limits torch
        to one thread in any case.
    retries : int
        Extra attempts for a unit that raises (default 2).
    memory_limit : str or int
        Per-worker memory limit of a LocalCluster (Dask's ``"auto"``: RAM / workers).
    connect_timeout : str
        How long to try reaching ``address`` before raising :class:`SchedulerUnreachable`,
        and how long a LocalCluster's workers may take to start.
    dashboard_address : str
        Where a LocalCluster's scheduler serves HTTP: Dask's dashboard when ``bokeh`` is
        installed (the dashboard needs it), else only a page saying so. Default: a free port
        on 127.0.0.1 (Dask's usual ``:8787`` clashes when several clusters run at once).
    """

    def __init__(
        self,
        n_workers: int | None = None,
        address: str | None = None,
        *,
        retries: int = 2,
        memory_limit: str | int = "auto",
        connect_timeout: str = "30s",
        dashboard_address: str = "127.0.0.1:0",
    ):
        if n_workers is not None and address is not None:
            raise ValueError("give n_workers (a local cluster) or address (an existing one)")
        if n_workers is not None and int(n_workers) < 1:
            raise ValueError(f"--workers must be >= 1, got {n_workers}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.n_workers = None if address else int(n_workers or 1)
        self.address = address
        self.retries = int(retries)
        self.memory_limit = memory_limit
        self.connect_timeout = connect_timeout
        self.dashboard_address = dashboard_address
        self._cluster = None
        self._client = None

    # -- the cluster -------------------------------------------------------------------------
    @property
    def client(self):
        """The :class:`distributed.Client` (started or connected on first use)."""
        if self._client is None:
            self._connect()
        return self._client

    def _connect(self) -> None:
        from distributed import Client, LocalCluster

        if self.address is not None:
            try:
                self._client = Client(self.address, timeout=self.connect_timeout)
            except OSError as err:
                raise SchedulerUnreachable(
                    f"cannot connect to the Dask scheduler at {self.address} ({err}); "
                    "check --scheduler, or use --workers N for a local cluster"
                ) from None
        else:
            self._cluster = LocalCluster(
                n_workers=self.n_workers,
                threads_per_worker=1,
                processes=True,
                memory_limit=self.memory_limit,
                dashboard_address=self.dashboard_address,
                env=dict(THREAD_ENV),
            )
            self._client = Client(self._cluster)
            from dask.utils import parse_timedelta

            self._client.wait_for_workers(
                self.n_workers, timeout=parse_timedelta(self.connect_timeout)
            )
        self._client.register_plugin(OneThreadPlugin(), name=OneThreadPlugin.name)
        if self._cluster is not None:
            from rnnzoo_train.signals import on_termination

            on_termination(self._expect_the_end)
        atexit.register(self.close)

    def start(self) -> None:
        """Start the LocalCluster (or connect to ``address``) now rather than on first use.

        Raises
        ------
        SchedulerUnreachable
            ``address`` cannot be reached within ``connect_timeout``.
        """
        self.client  # noqa: B018

    @property
    def dashboard_link(self) -> str | None:
        """The URL of Dask's dashboard, or None without one (starts the cluster)."""
        if self.address is None and importlib.util.find_spec("bokeh") is None:
            return None  # the local scheduler serves only Dask's "install bokeh" page
        try:
            link = self.client.dashboard_link
        except (KeyError, AttributeError):  # the scheduler serves no dashboard
            return None
        return link or None

    def describe(self) -> str:
        """One line for users: the cluster, its workers and threads, the dashboard.

        Counts are the scheduler's, read now (this starts or connects to the cluster).
        """
        workers = self.client.scheduler_info(n_workers=-1)["workers"].values()
        threads = sorted({w["nthreads"] for w in workers})
        per = "/".join(map(str, threads)) or "0"
        s = "" if len(workers) == 1 else "s"
        t = "" if threads == [1] else "s"
        what = "Dask LocalCluster" if self.address is None else "Dask cluster"
        link = self.dashboard_link
        board = f"dashboard {link}" if link else "no dashboard (install bokeh for one)"
        return (
            f"{what}: {len(workers)} worker{s} x {per} thread{t}, "
            f"scheduler {self.client.scheduler.address}, {board}"
        )

    def close(self) -> None:
        """Disconnect (and stop the LocalCluster this runner started).

        Once the command received SIGTERM (:mod:`rnnzoo_train.signals`), the LocalCluster's
        worker processes are killed first: their units are abandoned (a rerun computes them
        again), and the cluster closes at once (a graceful close waits up to 4 s for each
        busy worker, then kills it anyway, and logs warnings from the workers and nannies).
        """
        from rnnzoo_train.signals import termination_requested

        if termination_requested() and self._cluster is not None:
            self._kill_local_workers()
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def _expect_the_end(self) -> None:
        """On SIGTERM (called in the signal handler): prepare the LocalCluster to stop.

        Its nannies stop restarting workers (a batch scheduler's SIGTERM often reaches the
        workers too, and a nanny would restart them, with a warning), and Dask's and
        asyncio's loggers are silenced for the rest of the process: stopping breaks the
        cluster's connections, which the scheduler would report as errors with tracebacks
        about our own deliberate stop, nothing a user can act on.
        """
        for name in ("distributed", "asyncio"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        for nanny in list(getattr(self._cluster, "workers", {}).values()):
            close_gracefully = getattr(nanny, "close_gracefully", None)
            if callable(close_gracefully):
                close_gracefully()  # marks the nanny as closing: no restart of its worker

    def _kill_local_workers(self) -> None:
        """SIGKILL the LocalCluster's worker processes (after :meth:`_expect_the_end`)."""
        self._expect_the_end()
        for nanny in list(getattr(self._cluster, "workers", {}).values()):
            pid = getattr(nanny, "pid", None)
            if pid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))

    def __enter__(self) -> DaskRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = f"address={self.address!r}" if self.address else f"n_workers={self.n_workers}"
        return f"DaskRunner({where}, retries={self.retries})"

    # -- Runner ------------------------------------------------------------------------------
    def map_unordered(
        self, fn: Callable[[U], R], units: Iterable[U]
    ) -> Iterator[tuple[U, R | UnitFailed]]:
        """Yield ``(unit, fn(unit))`` as units finish, or ``(unit, UnitFailed)``."""
        from distributed import as_completed

        units = list(units)
        if not units:
            return
        client = self.client
        run = uuid.uuid4().hex[:8]
        keys = [f"{getattr(fn, '__name__', 'unit')}-{run}-{i}" for i in range(len(units))]
        futures = client.map(fn, units, key=keys, pure=False, retries=self.retries)
        unit_of = {f.key: u for f, u in zip(futures, units, strict=True)}
        try:
            for future in as_completed(futures):
                unit = unit_of[future.key]
                if future.status == "error":
                    yield unit, UnitFailed(unit, future.exception())
                else:
                    yield unit, future.result()
                future.release()
        finally:
            client.cancel([f for f in futures if not f.done()])


__all__ = ["DaskRunner", "OneThreadPlugin", "SchedulerUnreachable"]
