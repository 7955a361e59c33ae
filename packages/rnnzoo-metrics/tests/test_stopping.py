"""Workers end with their parent; SIGTERM stops ``rnnzoo-metrics pairwise`` cleanly.

Real processes throughout. ``python -m rnnzoo_metrics pairwise <folder> -m cka --jobs 2``
runs in a subprocess; its worker processes are taken (from ``/proc``, so that psutil is not
needed) while they compute, before the signal, and each must be gone within a few seconds
of it.

- SIGKILL of the parent (it cannot clean up): the workers end by the kernel's parent-death
  signal or, everywhere, by watching their parent (``stopping.die_with_parent``).
- SIGTERM (a batch scheduler's walltime), to the command alone or to its process group:
  exit status 143, one line on stderr, no traceback, every worker stopped, nothing at
  ``--out``; rerunning the same command with the same ``--store`` computes only the
  missing tiles and gives the matrix of an uninterrupted run, bitwise.
- ``pairwise(..., n_jobs=2)`` left early (an error in a tile or in preparing a network,
  Ctrl-C, SIGTERM) kills its workers at once instead of waiting for their running tiles.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import rnnzoo_metrics as rm
from rnnzoo_metrics.cli import main
from rnnzoo_metrics.io import read_result
from rnnzoo_metrics.stopping import MESSAGE, ORPHAN_EXIT_STATUS, exit_on_sigterm

pytestmark = [
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)"),
    pytest.mark.skipif(
        "fork" not in __import__("multiprocessing").get_all_start_methods(),
        reason="the engine's pool needs fork",
    ),
]

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
#: how long the workers of a killed or terminated command may outlive it
GONE_WITHIN_S = 5.0


# -- processes from /proc -------------------------------------------------------------------


class Proc:
    """A process, identified by pid and start time (a pid may be reused)."""

    def __init__(self, pid: int):
        self.pid = pid
        self.start = _stat(pid)[19]

    def alive(self) -> bool:
        try:
            fields = _stat(self.pid)
        except (FileNotFoundError, ProcessLookupError):
            return False
        return fields[19] == self.start and fields[0] not in ("Z", "X")

    def cpu_ticks(self) -> int:
        fields = _stat(self.pid)
        return int(fields[11]) + int(fields[12])  # utime + stime

    def kill(self) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)


def _stat(pid: int) -> list[str]:
    """Fields of ``/proc/PID/stat`` after the command name: state, ppid, ..."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def _children(pid: int) -> list[Proc]:
    """Every living process below ``pid``."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents.setdefault(int(_stat(int(entry))[1]), []).append(int(entry))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
    out, todo = [], list(parents.get(pid, []))
    while todo:
        child = todo.pop()
        try:
            out.append(Proc(child))
        except (FileNotFoundError, ProcessLookupError):
            continue
        todo.extend(parents.get(child, []))
    return [p for p in out if p.alive()]


def _wait_gone(procs: list[Proc], timeout: float = GONE_WITHIN_S) -> list[int]:
    """The pids of ``procs`` still running after ``timeout`` seconds (then killed)."""
    deadline = time.monotonic() + timeout
    while any(p.alive() for p in procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [p for p in procs if p.alive()]
    for p in left:  # leave nothing behind on failure
        p.kill()
    return [p.pid for p in left]


class Computing:
    """Readiness: two workers of the tile phase have each computed ``cpu_s`` s since seen.

    ``pairwise`` first prepares the networks in one pool, then computes the tiles in a new
    one: the tile phase's workers are the second generation of children (a generation
    begins when none of the previous one is left).
    """

    def __init__(self, cpu_s: float = 0.2):
        self.ticks = cpu_s * os.sysconf("SC_CLK_TCK")
        self.first: dict[tuple[int, str], int] = {}
        self.generations: list[set[int]] = []

    def __call__(self, workers: list[Proc], stderr: Path) -> bool:
        pids = {w.pid for w in workers}
        new = pids - set().union(*self.generations)
        if new:
            if not self.generations or not (pids & self.generations[-1]):
                self.generations.append(set())
            self.generations[-1] |= new
        if len(self.generations) < 2:
            return False
        progressed = 0
        for w in workers:
            if w.pid not in self.generations[1]:
                continue
            try:
                ticks = w.cpu_ticks()
            except (FileNotFoundError, ProcessLookupError):
                continue
            progressed += ticks - self.first.setdefault((w.pid, w.start), ticks) >= self.ticks
        return progressed >= 2


def _tiles_done(store: Path) -> list[Path]:
    """The marks of finished tiles (chunks of ``tile_done``; unfinished ones are not written)."""
    marks = store / "tile_done" / "c"
    return sorted(p for p in marks.rglob("*") if p.is_file()) if marks.exists() else []


def start_then_signal(
    cmd: list[str],
    sig: int,
    ready: Callable[[list[Proc], Path], bool],
    stderr: Path,
    *,
    group: bool = False,
    timeout: float = 120,
) -> tuple[subprocess.Popen, list[Proc], float]:
    """Start ``cmd``, wait until ``ready(workers, stderr)``, send ``sig`` to it alone (or,
    with ``group``, to its whole process group, as SLURM does at walltime).

    Returns the process (exited), its workers taken just before the signal, and the
    seconds from the signal to its exit.
    """
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=err, start_new_session=group
        )
    deadline = time.monotonic() + timeout
    try:
        while True:
            assert proc.poll() is None, f"exited early ({proc.returncode}): {stderr.read_text()}"
            assert time.monotonic() < deadline, "never got ready: " + stderr.read_text()
            workers = _children(proc.pid)
            if ready(workers, stderr):
                break
            time.sleep(0.02)
        t0 = time.monotonic()
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        proc.wait(timeout=60)
        return proc, workers, time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- data -----------------------------------------------------------------------------------


def _folder(path: Path, n: int, units: int) -> Path:
    path.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        np.save(path / f"net{i:03d}.npy", rng.standard_normal((2000, units), dtype=np.float32))
    return path


@pytest.fixture(scope="module")
def long_folder(tmp_path_factory) -> Path:
    """80 networks x 128 units: 3,160 pairs of ~65 MFLOP each (linear CKA), several seconds
    of work for each of two workers. Never run to the end, so its size costs no test time;
    with 40 networks the job once ended, at twice CI's load, before the harness saw both
    workers progress ("exited early (0)")."""
    return _folder(tmp_path_factory.mktemp("long") / "nets", 80, 128)


@pytest.fixture(scope="module")
def short_folder(tmp_path_factory) -> Path:
    """20 networks x 64 units in tiles of 2: 55 tiles, well under a second of work."""
    return _folder(tmp_path_factory.mktemp("short") / "nets", 20, 64)


def _pairwise(folder: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "rnnzoo_metrics",
        "pairwise",
        str(folder),
        "-m",
        "cka",
        "--jobs",
        "2",
        "--tile",
        "2",
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]


# -- SIGKILL: the parent cannot clean up ----------------------------------------------------


def test_sigkill_of_pairwise_ends_every_worker(long_folder, tmp_path):
    cmd = _pairwise(long_folder, tmp_path / "d.nc")
    proc, workers, _ = start_then_signal(cmd, signal.SIGKILL, Computing(), tmp_path / "err")
    assert proc.returncode == -signal.SIGKILL
    assert len(workers) >= 2
    assert _wait_gone(workers) == [], "workers outlived their SIGKILLed parent"
    assert not (tmp_path / "d.nc").exists()


def _orphan(script: str, tmp_path: Path) -> tuple[subprocess.Popen, Proc]:
    """A middle process that starts ``script`` as its child, and that child."""
    child_file = tmp_path / "child.pid"
    middle = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            f"c = subprocess.Popen([sys.executable, '-c', {script!r}])\n"
            f"open({str(child_file)!r}, 'w').write(str(c.pid))\n"
            "time.sleep(120)\n",
        ],
        env=ENV,
    )
    deadline = time.monotonic() + 60
    while not (child_file.exists() and child_file.read_text()):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return middle, Proc(int(child_file.read_text()))


def test_without_the_kernel_signal_a_worker_notices_its_parent_died(tmp_path):
    """The portable fallback alone: a thread that watches the parent, also mid-computation."""
    ready = tmp_path / "ready"
    script = (
        "import os, pathlib\n"
        "from rnnzoo_metrics.stopping import die_with_parent\n"
        "die_with_parent(os.getppid(), kernel_signal=False)\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "while True:\n    sum(range(10000))\n"  # busy, as a worker computing a tile is
    )
    middle, child = _orphan(script, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert time.monotonic() < deadline
            assert child.alive()
            time.sleep(0.02)
    finally:
        middle.kill()
        middle.wait()
    assert _wait_gone([child]) == []


def test_a_worker_whose_parent_is_already_gone_ends_at_once():
    """The start-up race: the parent died before the death signal was set."""
    not_the_parent = os.getpid()  # this test process is the child's grandparent
    code = (
        "from rnnzoo_metrics.stopping import die_with_parent\n"
        f"die_with_parent({not_the_parent})\n"
        "print('survived')\n"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys; sys.exit(subprocess.call([sys.executable, '-c', {code!r}]))",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )
    assert out.returncode == ORPHAN_EXIT_STATUS, out.stderr
    assert "survived" not in out.stdout


# -- SIGTERM: stop cleanly, resume identically ------------------------------------------


def _check_terminated(proc, workers, seconds: float, stderr: Path, out: Path) -> None:
    text = stderr.read_text()
    assert proc.returncode == 128 + signal.SIGTERM, text
    assert text.splitlines() == [f"rnnzoo-metrics: {MESSAGE}"], text
    assert seconds < 30, f"took {seconds:.1f} s to stop"
    assert len(workers) >= 2
    assert _wait_gone(workers) == [], "workers outlived their terminated parent"
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}*")), "a temporary output was left behind"


@pytest.mark.parametrize("group", [False, True], ids=["command", "process-group"])
def test_sigterm_of_pairwise_stops_it_and_every_worker(group, long_folder, tmp_path):
    """To the command alone, or to its whole process group (SLURM's walltime signal), while
    the workers compute tiles."""
    out = tmp_path / "d.nc"
    err = tmp_path / "err"
    proc, workers, seconds = start_then_signal(
        _pairwise(long_folder, out), signal.SIGTERM, Computing(), err, group=group
    )
    _check_terminated(proc, workers, seconds, err, out)


def _blocked_in_pipe_write(proc: Proc) -> bool:
    """Whether ``proc`` waits in the kernel to write to a full pipe (``pipe_write``, or
    ``anon_pipe_write`` on newer kernels; an idle worker waits in ``*pipe_read``)."""
    try:
        return "pipe_write" in Path(f"/proc/{proc.pid}/wchan").read_text()
    except OSError:
        return False


@pytest.mark.parametrize("sigterm", ["running", "stopped"])
def test_a_sigterm_while_a_worker_sends_a_prepared_network_still_stops_at_once(
    sigterm, long_folder, tmp_path
):
    """A worker killed half-way through sending its result leaves half a message in the
    pool's result pipe (a prepared network here is 2 MB, the pipe holds 64 KB).

    Made certain: the command is stopped (SIGSTOP) while it prepares the networks, so that
    a worker blocks in the middle of writing its result; that worker is stopped too, and
    the command continued and sent SIGTERM (``running``), or sent SIGTERM while stopped,
    which the kernel may then deliver to any of its threads (``stopped``).
    """
    out, err = tmp_path / "d.nc", tmp_path / "err"
    with err.open("w") as stderr:
        proc = subprocess.Popen(
            _pairwise(long_folder, out), env=ENV, stdout=subprocess.DEVNULL, stderr=stderr
        )
    workers: list[Proc] = []
    try:
        deadline = time.monotonic() + 60
        while len(workers) < 2:  # the first pool: preparing the networks
            assert proc.poll() is None, err.read_text()
            assert time.monotonic() < deadline, "no workers: " + err.read_text()
            workers = _children(proc.pid)
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while not (sending := [w for w in workers if _blocked_in_pipe_write(w)]):
            if time.monotonic() > deadline:
                pytest.skip("cannot see a worker blocked in a pipe write (/proc/PID/wchan)")
            time.sleep(0.01)
        os.kill(sending[0].pid, signal.SIGSTOP)  # half a message stays in the pipe
        t0 = time.monotonic()
        if sigterm == "running":
            os.kill(proc.pid, signal.SIGCONT)
            time.sleep(0.2)
            os.kill(proc.pid, signal.SIGTERM)
        else:
            os.kill(proc.pid, signal.SIGTERM)
            os.kill(proc.pid, signal.SIGCONT)
        proc.wait(timeout=30)
        seconds = time.monotonic() - t0
    finally:
        if proc.poll() is None:  # failed: leave nothing behind
            proc.kill()
            proc.wait()
            for w in workers:
                w.kill()
    _check_terminated(proc, workers, seconds, err, out)


def test_sigterm_mid_run_keeps_finished_tiles_and_a_rerun_gives_the_same_matrix(
    short_folder, tmp_path
):
    pytest.importorskip("zarr")
    store, out, err = tmp_path / "tiles.zarr", tmp_path / "d.nc", tmp_path / "err"
    cmd = _pairwise(short_folder, out, "--store", str(store))
    proc, workers, seconds = start_then_signal(
        cmd, signal.SIGTERM, lambda w, e: len(_tiles_done(store)) >= 1, err
    )
    _check_terminated(proc, workers, seconds, err, out)
    finished = {p: p.stat().st_mtime_ns for p in _tiles_done(store)}
    n_tiles = len(rm.engine.tiles(20, 2))
    assert 1 <= len(finished) < n_tiles, "the SIGTERM must land in the middle of the tiles"

    assert main(cmd[3:]) == 0  # the same command (in this process: no start-up cost)
    assert len(_tiles_done(store)) == n_tiles
    assert {p: p.stat().st_mtime_ns for p in finished} == finished, "finished tiles recomputed"

    clean = tmp_path / "clean.nc"
    assert main([*_pairwise(short_folder, clean)[3:]]) == 0  # uninterrupted, no store
    resumed, expected = read_result(out), read_result(clean)
    np.testing.assert_array_equal(resumed.values, expected.values)
    assert list(resumed["network"].values) == list(expected["network"].values)


# -- in this process: a pool left early does not wait for its running tiles -----------------


class Slow(rm.Metric):
    """A metric whose work takes a minute, except what ``fail`` names, which raises.

    A network's cache is its number (networks are filled with it). ``fail``: ``"prepare"``
    fails network 0, ``"tile"`` fails the tile of networks 0 and 1, ``None`` fails nothing.
    """

    name = "slow-test"
    kind = "distance"
    summary = "test metric that sleeps"
    parameters = {"fail": ""}

    def prepare(self, x):
        number = int(x[0, 0])
        if self.params["fail"] == "prepare":
            if number == 0:
                time.sleep(0.5)  # both workers are busy by then
                raise ValueError("network 0 cannot be prepared")
            time.sleep(60)
        return number

    def pair(self, a, b):
        return float(self.block([a], [b])[0, 0])

    def block(self, rows, cols):
        if self.params["fail"] == "tile" and rows[0] == 0 and cols[0] == 0:
            time.sleep(0.5)
            raise ValueError("tile of networks 0 and 1 failed")
        time.sleep(60)
        return np.zeros((len(rows), len(cols)))


def _numbered(n: int) -> list[np.ndarray]:
    """Networks of 10 samples x 3 units whose first value is their number."""
    nets = [np.full((10, 3), float(i)) for i in range(n)]
    for x in nets:
        x[1:] += np.eye(9, 3)
    return nets


class SignalWhenBusy(threading.Thread):
    """Sends ``sig`` to this process once two new child processes have run 0.3 s."""

    def __init__(self, sig: int):
        super().__init__(daemon=True)
        self.sig = sig
        self.before = {p.pid for p in _children(os.getpid())}
        self.workers: list[Proc] = []

    def run(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.workers = [p for p in _children(os.getpid()) if p.pid not in self.before]
            if len(self.workers) >= 2:
                break
            time.sleep(0.02)
        time.sleep(0.3)
        os.kill(os.getpid(), self.sig)


def _new_workers(before: set[int]) -> list[Proc]:
    return [p for p in _children(os.getpid()) if p.pid not in before]


@pytest.mark.parametrize("phase", ["prepare", "tile"])
def test_an_error_in_a_worker_kills_the_others_at_once(phase):
    before = {p.pid for p in _children(os.getpid())}
    t0 = time.monotonic()
    with pytest.raises(rm.PluginError, match="cannot be prepared|failed"):
        rm.pairwise(_numbered(6), Slow(fail=phase), tile=2, n_jobs=2, progress=False)
    assert time.monotonic() - t0 < 10, "waited for the running work of the other worker"
    assert _new_workers(before) == []


@pytest.fixture
def default_ctrl_c():
    """Python's own Ctrl-C handler for the test, whatever this process started with.

    A suite started as a background job of a non-interactive shell (``nox -s tests &`` in a
    script) has SIGINT ignored from the start, in pytest-xdist's workers too, and Python
    keeps it ignored: without this no KeyboardInterrupt can arise ('DID NOT RAISE'; no test
    of the suite leaves SIGINT changed: tests/test_signal_handlers_restored.py)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_kills_the_workers_at_once(default_ctrl_c):
    sender = SignalWhenBusy(signal.SIGINT)
    sender.start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        rm.pairwise(_numbered(6), Slow(), tile=2, n_jobs=2, progress=False)
    sender.join()
    assert time.monotonic() - t0 < 10, "waited for the running tiles"
    assert len(sender.workers) >= 2
    assert _wait_gone(sender.workers, 0.5) == []


def test_sigterm_in_this_process_is_one_line_and_status_143(capsys):
    handler = signal.getsignal(signal.SIGTERM)

    @exit_on_sigterm("rnnzoo-metrics")
    def run() -> int:
        rm.pairwise(_numbered(6), Slow(), tile=2, n_jobs=2, progress=False)
        return 0

    sender = SignalWhenBusy(signal.SIGTERM)
    sender.start()
    t0 = time.monotonic()
    assert run() == 143
    sender.join()
    assert time.monotonic() - t0 < 10
    assert capsys.readouterr().err == f"rnnzoo-metrics: {MESSAGE}\n"
    assert _wait_gone(sender.workers, 0.5) == []
    assert signal.getsignal(signal.SIGTERM) is handler  # restored


class _SwallowsCtrlC:
    """Receives a Ctrl-C in its finalizer, where Python prints "Exception ignored" for it."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)  # the handler runs here: its KeyboardInterrupt dies with __del__


def test_a_ctrl_c_lost_in_a_finalizer_still_stops_the_pool(default_ctrl_c):
    """The default handler's KeyboardInterrupt, raised inside a ``__del__``, is lost; the
    pool's handler remembers the Ctrl-C and the wait loop raises it (without: 5 s of work
    run to the end and no KeyboardInterrupt)."""
    from rnnzoo_metrics.stopping import wait_any, worker_pool

    def run() -> None:
        with worker_pool(1) as ex:
            fut = ex.submit(time.sleep, 5)
            obj = _SwallowsCtrlC()
            del obj  # the finalizer runs now and swallows the KeyboardInterrupt
            while not wait_any([fut]):
                pass

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run()
    assert time.monotonic() - t0 < 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -- a signal anywhere in the wait leaves no future's lock held -------------------------------


@pytest.mark.parametrize("which", ["sigterm", "ctrl-c"])
def test_a_signal_anywhere_in_wait_any_leaves_no_future_locked(which, monkeypatch):
    """``concurrent.futures.wait`` takes the futures' locks in a Python loop: an exception
    between two of them left the first held, the pool's manager thread then waited on them
    for ever, and a SIGTERMed command hung in its pool's shutdown (seen in rnnzoo-train's
    twin, with the threads' stacks). ``wait_any`` is called with the signal delivered (the
    command's real handler called) at its k-th line event, in any function it calls, for
    k = 1, 2, ... until a call ends unharmed: each call must end with the signal's exception
    and no future's lock held."""
    from concurrent.futures import Future

    from rnnzoo_metrics import stopping

    monkeypatch.setattr(stopping, "WAKE_SECONDS", 0.001)
    monkeypatch.setattr(stopping, "_state", stopping._State())
    if which == "sigterm":
        handler, error = functools.partial(stopping._handler, signal.SIGTERM), stopping.Terminated
    else:
        handler, error = (
            functools.partial(stopping._interrupt_handler, signal.SIGINT),
            (KeyboardInterrupt),
        )
    k = 0
    while True:
        k += 1
        futures = [Future() for _ in range(4)]
        stopping._state.received, stopping._state.raised = None, False
        stopping._INTERRUPTED.clear()
        stopping._DEFERRED_INTERRUPT.clear()
        delivered = False
        seen = 0

        def tracer(frame, event, arg, k=k):
            nonlocal seen, delivered
            if event == "line":
                seen += 1
                if seen == k:
                    delivered = True
                    handler(frame)
            return tracer

        def traced_wait(futures=futures):
            sys.settrace(tracer)
            try:
                stopping.wait_any(futures)
                raised = False
            except error:
                raised = True
            finally:
                sys.settrace(None)
            yield raised

        # in a generator, which has its own exception state: a trace function that raises
        # while another exception is being handled (in contextlib.suppress's __exit__) leaves
        # that one as the thread's handled exception (CPython 3.11), and every later error of
        # this pytest worker then showed it as its context; the generator's state ends with it
        raised = next(traced_wait())
        held = [f for f in futures if f._condition._is_owned()]
        assert not held, f"a signal at line {k} of the wait left {len(held)} future(s) locked"
        assert stopping._state.deferring == 0
        if not delivered:  # the call ended before line k
            break
        assert raised, f"a signal at line {k} of the wait was never raised"
    stopping._INTERRUPTED.clear()
    assert k > 10
    assert sys.exc_info() == (None, None, None)  # no exception left as if being handled
