"""Workers end with their parent; SIGTERM stops ``rnnzoo-train generate`` cleanly.

Real processes throughout: the console script runs in a subprocess, its worker processes are
taken with psutil before the signal, and each must be gone within a few seconds of it.

- SIGKILL of the parent (it cannot clean up): the workers end by the kernel's parent-death
  signal or, everywhere, by watching their parent (``runners.die_with_parent``).
- SIGTERM (a batch scheduler's walltime): exit status 143, one line on stderr, every worker
  stopped, and rerunning the same command gives the zoo of an uninterrupted run, bitwise.
- A SIGTERM in the middle of writing a unit waits until the unit is written whole.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psutil
import pytest
import zarr

from rnnzoo_train.cli import main
from rnnzoo_train.generate import generate
from rnnzoo_train.presets import load_grid
from rnnzoo_train.runners import ORPHAN_EXIT_STATUS, SerialRunner
from rnnzoo_train.signals import MESSAGE, exit_on_sigterm
from rnnzoo_train.zoo import ZarrZooWriter, open_zoo
from rnnzoo_train.zoo.store import LOCK_NAME
from rnnzoo_train.zoo.testing import zoo_differences
from rnnzoo_train.zoo.verify import verify_zoo

BIN = Path(sys.executable).parent
RNNZOO_TRAIN = shutil.which("rnnzoo-train", path=str(BIN)) or "rnnzoo-train"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
#: how long the workers of a killed or terminated command may outlive it
GONE_WITHIN_S = 5.0

#: work units of minutes each: any moment after the workers have started is mid-unit
LONG = """
name = "signal-long"
base = "tiny"
[grid]
arch = ["vanilla", "gru"]
seeds = 2
tasks = ["flipflop"]
[training]
iterations = 20000
unit_size = 1
[search]
trials = 0
"""

#: six one-network units of a fraction of a second: a SIGTERM lands between finished ones
SHORT = """
name = "signal-short"
base = "tiny"
[grid]
arch = ["vanilla", "gru"]
seeds = 3
tasks = ["flipflop"]
[training]
iterations = 100
unit_size = 1
[search]
trials = 0
"""

#: four units of two networks (for a SIGTERM between the two networks of a unit)
PAIRS = (
    SHORT.replace("unit_size = 1", "unit_size = 2")
    .replace("seeds = 3", "seeds = 4")
    .replace("signal-short", "signal-pairs")
)


@pytest.fixture(scope="module")
def grids(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("grids")
    out = {}
    for name, text in (("long", LONG), ("short", SHORT), ("pairs", PAIRS)):
        out[name] = folder / f"{name}.toml"
        out[name].write_text(text)
    return out


@pytest.fixture(scope="module")
def clean_short(grids, tmp_path_factory) -> Path:
    """SHORT generated without interruption (in this process, serially)."""
    out = tmp_path_factory.mktemp("clean") / "zoo.zarr"
    assert (
        main(["generate", "--config", str(grids["short"]), "--out", str(out), "--no-progress"]) == 0
    )
    return out


# -- helpers ------------------------------------------------------------------------------


def _n_ok(path: Path) -> int:
    try:
        status = zarr.open_group(path, mode="r", use_consolidated=False)["flipflop/index/status"]
        return int(np.sum(status[:] == "ok"))
    except (FileNotFoundError, KeyError, ValueError):
        return 0


def _workers(proc: subprocess.Popen) -> list[psutil.Process]:
    """Every process below ``proc`` (pool or cluster workers, multiprocessing's helpers)."""
    try:
        return psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


class Computing:
    """Readiness: the command printed its runner line, then two workers computed 1 s more.

    A LocalCluster's workers are busy starting (imports) before that line; a pool's are
    spawned after it. Either way the signal then lands in the middle of a unit.
    """

    def __init__(self, stderr: Path, cpu_s: float = 1.0):
        self.stderr = stderr
        self.cpu_s = cpu_s
        self.start: dict[int, float] = {}

    def __call__(self, proc: subprocess.Popen, workers: list[psutil.Process]) -> bool:
        if "runner:" not in self.stderr.read_text():
            return False
        progressed = 0
        for w in workers:
            try:
                cpu = sum(w.cpu_times()[:2])
            except psutil.NoSuchProcess:
                continue
            progressed += cpu - self.start.setdefault(w.pid, cpu) >= self.cpu_s
        return progressed >= 2


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def _wait_gone(procs: list[psutil.Process], timeout: float = GONE_WITHIN_S) -> list[psutil.Process]:
    """The processes of ``procs`` still running after ``timeout`` seconds (then killed)."""
    deadline = time.monotonic() + timeout
    while _alive(procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = _alive(procs)
    for p in left:  # leave nothing behind on failure
        p.kill()
    return left


def start_then_signal(
    cmd: list[str],
    sig: int,
    ready: Callable[[subprocess.Popen, list[psutil.Process]], bool],
    stderr: Path,
    timeout: float = 240,
    group: bool = False,
) -> tuple[subprocess.Popen, list[psutil.Process], float]:
    """Start ``cmd``, wait until ``ready(proc, workers)``, send ``sig`` to it alone (or, with
    ``group``, to its whole process group, as a batch scheduler does at walltime).

    Returns the process (exited), its worker processes taken just before the signal, and
    the seconds from the signal to its exit.
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
            workers = _workers(proc)
            if ready(proc, workers):
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


def _generate(grid: Path, out: Path, *runner: str) -> list[str]:
    return [
        RNNZOO_TRAIN,
        "generate",
        "--config",
        str(grid),
        "--out",
        str(out),
        "--no-progress",
        *runner,
    ]


# -- SIGKILL: the parent cannot clean up ----------------------------------------------------


def test_sigkill_of_generate_ends_every_pool_worker(grids, tmp_path):
    cmd = _generate(grids["long"], tmp_path / "zoo.zarr", "--processes", "2")
    err = tmp_path / "err"
    proc, workers, _ = start_then_signal(cmd, signal.SIGKILL, Computing(err), err)
    assert proc.returncode == -signal.SIGKILL
    assert len(workers) >= 2
    assert _wait_gone(workers) == [], "workers outlived their SIGKILLed parent"


def _orphan(script: str, tmp_path: Path) -> tuple[subprocess.Popen, psutil.Process]:
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
    return middle, psutil.Process(int(child_file.read_text()))


def test_without_the_kernel_signal_a_worker_notices_its_parent_died(tmp_path):
    """The portable fallback alone: a thread that watches the parent, also mid-computation."""
    ready = tmp_path / "ready"
    script = (
        "import os, pathlib\n"
        "from rnnzoo_train.runners import die_with_parent\n"
        "die_with_parent(os.getppid(), kernel_signal=False)\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "while True:\n    sum(range(10000))\n"  # busy, as a training worker is
    )
    middle, child = _orphan(script, tmp_path)
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert time.monotonic() < deadline
        assert child.is_running()
        time.sleep(0.02)
    middle.kill()
    middle.wait()
    assert _wait_gone([child]) == []


def test_a_worker_whose_parent_is_already_gone_ends_at_once():
    """The start-up race: the parent died before the death signal was set."""
    not_the_parent = os.getpid()  # this test process is the child's grandparent
    code = (
        "import os, sys\n"
        "from rnnzoo_train.runners import die_with_parent\n"
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


def _check_terminated(proc, workers, seconds: float, stderr: Path, prog: str = "rnnzoo-train"):
    text = stderr.read_text()
    assert proc.returncode == 128 + signal.SIGTERM, text
    assert text.strip().splitlines()[-1] == f"{prog}: {MESSAGE}", text
    assert "Traceback" not in text, text
    assert "WARNING" not in text, text
    assert seconds < 30, f"took {seconds:.1f} s to stop"
    assert _wait_gone(workers) == [], "workers outlived their terminated parent"


@pytest.mark.parametrize("runner", [["--processes", "2"], []], ids=["processes", "serial"])
def test_sigterm_mid_run_stops_cleanly_and_a_rerun_gives_the_clean_zoo(
    runner, grids, clean_short, tmp_path, capsys
):
    out = tmp_path / "zoo.zarr"
    total = len(open_zoo(clean_short).index("flipflop"))
    cmd = _generate(grids["short"], out, *runner)
    proc, workers, seconds = start_then_signal(
        cmd, signal.SIGTERM, lambda p, w: _n_ok(out) >= 1, tmp_path / "err"
    )
    _check_terminated(proc, workers, seconds, tmp_path / "err")
    if runner:
        assert len(workers) >= 2
    n_before = _n_ok(out)
    assert 1 <= n_before < total, "the SIGTERM must land in the middle of the seeds phase"
    assert verify_zoo(out).ok

    assert main(cmd[1:]) == 0  # the same command (here in this process: no start-up cost)
    skipped = f"{n_before} networks were already complete and were skipped"
    assert skipped in capsys.readouterr().out
    assert zoo_differences(out, clean_short) == []


@pytest.mark.parametrize(
    "runner",
    [
        pytest.param(["--processes", "2"], id="processes"),
        pytest.param(["--workers", "2"], id="local-cluster", marks=pytest.mark.network),
    ],
)
def test_sigterm_to_the_whole_process_group_stops_cleanly(runner, grids, tmp_path):
    """SLURM's walltime SIGTERM reaches every process of the job, the workers too."""
    err = tmp_path / "err"
    cmd = _generate(grids["long"], tmp_path / "zoo.zarr", *runner)
    proc, workers, seconds = start_then_signal(cmd, signal.SIGTERM, Computing(err), err, group=True)
    _check_terminated(proc, workers, seconds, err)
    assert "failed" not in err.read_text()  # no unit reported failed for its killed worker


class SigtermMidUnit(ZarrZooWriter):
    """The real zoo writer, sent a real SIGTERM between the two networks of one unit."""

    def __init__(self, path: Path, at_unit: int):
        super().__init__(path)
        self.at_unit = at_unit
        self.units = 0

    def write_results(self, task, results):
        self.units += 1
        if self.units != self.at_unit:
            return super().write_results(task, results)
        assert len(results) == 2
        super().write_results(task, results[:1])
        os.kill(os.getpid(), signal.SIGTERM)
        super().write_results(task, results[1:])


def test_a_sigterm_while_a_unit_is_written_waits_for_the_whole_unit(grids, tmp_path, capsys):
    preset = load_grid(grids["pairs"])
    handler = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "zoo.zarr"
    writer = SigtermMidUnit(out, at_unit=2)

    @exit_on_sigterm("rnnzoo-train")
    def run() -> int:
        generate(preset, ["flipflop"], writer, runner=SerialRunner(), progress=False)
        return 0

    assert run() == 143
    assert capsys.readouterr().err.strip() == f"rnnzoo-train: {MESSAGE}"
    assert writer.units == 2, "the run goes on after the unit it was writing"
    index = open_zoo(out).index("flipflop")
    assert (index["status"] == "ok").sum() == 4, "both units written whole, nothing more"
    assert verify_zoo(out).ok
    assert signal.getsignal(signal.SIGTERM) is handler  # restored

    clean = tmp_path / "clean.zarr"
    args = ["generate", "--config", str(grids["pairs"]), "--no-progress", "--out"]
    assert main([*args, str(clean)]) == 0
    assert main([*args, str(out)]) == 0
    assert zoo_differences(out, clean) == []


# -- the Dask LocalCluster -------------------------------------------------------------------


@pytest.mark.network
def test_sigkill_of_generate_ends_every_local_cluster_worker(grids, tmp_path):
    cmd = _generate(grids["long"], tmp_path / "zoo.zarr", "--workers", "2")
    err = tmp_path / "err"
    proc, workers, _ = start_then_signal(cmd, signal.SIGKILL, Computing(err), err)
    assert proc.returncode == -signal.SIGKILL
    assert len(workers) >= 2
    assert _wait_gone(workers) == [], "cluster workers outlived their SIGKILLed parent"


@pytest.mark.network
def test_sigterm_of_generate_on_a_local_cluster_stops_it_and_a_rerun_resumes(
    grids, clean_short, tmp_path
):
    out = tmp_path / "zoo.zarr"
    cmd = _generate(grids["short"], out, "--workers", "2")
    proc, workers, seconds = start_then_signal(
        cmd, signal.SIGTERM, lambda p, w: _n_ok(out) >= 1, tmp_path / "err"
    )
    _check_terminated(proc, workers, seconds, tmp_path / "err")
    assert len(workers) >= 2
    # resumed here, serially (the runner does not change the zoo; no second cluster to start)
    assert main(_generate(grids["short"], out)[1:]) == 0
    assert zoo_differences(out, clean_short) == []


class SigtermInPrepare(ZarrZooWriter):
    """The real zoo writer, sent a real SIGTERM while it writes a task's template."""

    def prepare_task(self, plan, task):
        os.kill(os.getpid(), signal.SIGTERM)
        super().prepare_task(plan, task)


def test_a_sigterm_while_the_template_is_written_leaves_a_whole_closed_zoo(grids, tmp_path, capsys):
    out = tmp_path / "zoo.zarr"

    @exit_on_sigterm("rnnzoo-train")
    def run() -> int:
        writer = SigtermInPrepare(out)
        generate(load_grid(grids["short"]), ["flipflop"], writer, progress=False)
        return 0

    assert run() == 143
    assert capsys.readouterr().err.strip() == f"rnnzoo-train: {MESSAGE}"
    assert not (out / LOCK_NAME).exists(), "the writer was closed"
    index = open_zoo(out).index("flipflop")  # the template is whole: every network pending
    assert set(index["status"]) == {"pending"}
    assert (
        main(["generate", "--config", str(grids["short"]), "--out", str(out), "--no-progress"]) == 0
    )


#: a command whose two workers each return 16 MB (a pipe holds 64 KB): a worker stopped
#: while it sends leaves half a message in the pool's result pipe
HALF_SENT = """
import faulthandler, signal, sys, time
from rnnzoo_train.runners import ProcessRunner

faulthandler.register(signal.SIGUSR1, all_threads=True)  # the test's report if it hangs
from rnnzoo_train.signals import exit_on_sigterm

def big(unit):
    time.sleep(0.3)
    return b"x" * 16_000_000

@exit_on_sigterm("half-sent")
def main():
    for _ in ProcessRunner(2).map_unordered(big, range(8)):
        pass
    return 0

if __name__ == "__main__":
    sys.exit(main())
"""


def _blocked_in_pipe_write(pid: int) -> bool:
    """Whether ``pid`` waits in the kernel to write to a full pipe (``*pipe_write``)."""
    try:
        return "pipe_write" in Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False


def test_a_sigterm_while_a_worker_sends_its_result_still_stops_at_once(tmp_path):
    """The command is stopped (SIGSTOP) until a worker blocks half-way through writing its
    result, that worker is stopped too, and the command continued and sent SIGTERM: the
    pool's reader would wait forever for the rest of the message unless the pool's own copy
    of the pipe's write end is closed when its workers are killed."""
    script = tmp_path / "half_sent.py"
    script.write_text(HALF_SENT)
    proc = subprocess.Popen(
        [sys.executable, str(script)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    workers: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        sending: list[psutil.Process] = []
        while not sending:
            assert proc.poll() is None
            assert time.monotonic() < deadline, "no worker ever blocked writing its result"
            workers = [
                c for c in psutil.Process(proc.pid).children(recursive=True) if c.pid != proc.pid
            ]
            if any(_blocked_in_pipe_write(w.pid) for w in workers):
                os.kill(proc.pid, signal.SIGSTOP)
                time.sleep(0.05)
                sending = [w for w in workers if _blocked_in_pipe_write(w.pid)]
                if not sending:
                    os.kill(proc.pid, signal.SIGCONT)
            time.sleep(0.005)
        os.kill(sending[0].pid, signal.SIGSTOP)  # half a message stays in the pipe
        os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.2)
        os.kill(proc.pid, signal.SIGTERM)
        try:  # stderr drained while waiting: a full stderr pipe cannot stall the command
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGUSR1)  # every thread's stack, to say where it hangs
            time.sleep(1)
            proc.kill()
            _, err = proc.communicate()
            hung = err.decode(errors="replace")[-20000:]
            raise AssertionError(f"no exit within 30 s of SIGTERM; stderr:\n{hung}") from None
    finally:
        if proc.poll() is None:  # failed: leave nothing behind
            proc.kill()
            proc.wait()
        for w in workers:
            with contextlib.suppress(psutil.NoSuchProcess):
                w.kill()
    stderr = err.decode()
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines()[-1] == f"half-sent: {MESSAGE}", stderr


def test_a_sigterm_anywhere_in_wait_any_leaves_no_future_locked(monkeypatch):
    """``concurrent.futures.wait`` takes the futures' locks in a Python loop: a Terminated
    between two of them left the first held, the pool's manager thread then waited on them
    for ever, and the command hung in ``_kill_pool``'s shutdown (seen once in ~100 runs of
    the half-sent test above under load, with the threads' stacks). ``wait_any`` is called
    with a SIGTERM delivered (the command's real handler called) at its k-th line event, in
    any function it calls, for k = 1, 2, ... until a call ends unharmed: each call must end
    with ``Terminated`` and no future's lock held."""
    from concurrent.futures import Future

    from rnnzoo_train import runners, signals

    monkeypatch.setattr(runners, "WAKE_SECONDS", 0.001)
    monkeypatch.setattr(signals, "_state", signals._State())
    k = 0
    while True:
        k += 1
        futures = [Future() for _ in range(4)]
        signals._state.received, signals._state.raised = None, False
        seen = 0

        def tracer(frame, event, arg, k=k):
            nonlocal seen
            if event == "line":
                seen += 1
                if seen == k:
                    signals._handler(signal.SIGTERM, frame)
            return tracer

        def traced_wait(futures=futures):
            sys.settrace(tracer)
            try:
                runners.wait_any(futures)
            except signals.Terminated:
                pass
            finally:
                sys.settrace(None)
            yield

        # in a generator, which has its own exception state: a trace function that raises
        # while another exception is being handled (in contextlib.suppress's __exit__) leaves
        # that one as the thread's handled exception (CPython 3.11), and every later error of
        # this pytest worker then showed it as its context; the generator's state ends with it
        next(traced_wait())
        held = [f for f in futures if f._condition._is_owned()]
        assert not held, f"a SIGTERM at line {k} of the wait left {len(held)} future(s) locked"
        assert signals._state.deferring == 0
        if signals._state.received is None:  # the call ended before line k
            break
        assert signals._state.raised, f"a SIGTERM at line {k} was never raised"
    assert k > 10
    assert sys.exc_info() == (None, None, None)  # no exception left as if being handled
