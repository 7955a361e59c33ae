"""``rnnzoo-train generate / presets / verify / info``: every malformed input gets one line.

Rows run through the shared harness (``conftest.py``): exit status != 0, exactly one line on
stderr naming the problem, no traceback, and the sandbox unchanged (nothing written, nothing
removed, not even in someone else's store). Publish and download rows are in
``test_train_distribution_cli.py``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ZOO = "zoo.zarr"
TASK = "flipflop"
GROUP = "vanilla-tanh-u8"  # the sandbox zoo: tiny preset, vanilla-tanh, 8 units, seeds 0 and 1


def _script_path(script: str) -> str:
    return str(Path(sys.executable).parent / script)


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


UNREACHABLE = f"http://127.0.0.1:{_closed_port()}/zoo.zarr"

#: a grid file describing the sandbox zoo exactly (so that generate resumes it)
SANDBOX_GRID = """\
base = "tiny"
[grid]
arch = ["vanilla"]
activation = ["tanh"]
seeds = [0, 1]
tasks = ["flipflop", "cdi"]
[training]
iterations = 20
[search]
trials = 0
iterations = 0
"""


# -- setups: damage and user files, made before the sandbox snapshot ----------------------------
def _file(name: str, text: str | bytes):
    def setup(root: Path) -> None:
        data = text.encode() if isinstance(text, str) else text
        (root / name).write_bytes(data)

    return setup


def _grid(body: str):
    return _file("grid.toml", body)


def _chunk(root: Path, array: str) -> Path:
    base = root / ZOO / TASK / array / "c"
    return next(p for p in sorted(base.rglob("*")) if p.is_file())


def _delete(array: str):
    def setup(root: Path) -> None:
        _chunk(root, array).unlink()

    return setup


def _corrupt(array: str):
    def setup(root: Path) -> None:
        chunk = _chunk(root, array)
        data = bytearray(chunk.read_bytes())
        data[len(data) // 2] ^= 0xFF
        chunk.write_bytes(bytes(data))

    return setup


def _truncate(node: str):
    def setup(root: Path) -> None:
        meta = root / ZOO / node / "zarr.json"
        meta.write_bytes(meta.read_bytes()[: meta.stat().st_size // 2])

    return setup


def _both(*setups):
    def setup(root: Path) -> None:
        for s in setups:
            s(root)

    return setup


RT = "rnnzoo-train"
GEN = [RT, "generate", "--no-progress"]
TINY = [*GEN, "--preset", "tiny"]
RESUME = [*GEN, "--config", "grid.toml", "--task", TASK, "--out", ZOO]

CASES = [
    # -- generate: where it writes -----------------------------------------------------------
    pytest.param([*TINY, "--out", "/proc/x.zarr"], ("/proc",), {}, id="gen-out-proc"),
    pytest.param([*TINY, "--out", "text.txt"], ("not a directory",), {}, id="gen-out-file"),
    pytest.param(
        [*TINY, "--out", "text.txt/x.zarr"], ("not a directory",), {}, id="gen-out-under-file"
    ),
    pytest.param(
        [*TINY, "--out", "notzoo.zarr"], ("not an rnnzoo zoo",), {}, id="gen-out-foreign-zarr"
    ),
    pytest.param([*TINY, "--out", "notes"], ("not an rnnzoo zoo",), {}, id="gen-out-user-folder"),
    pytest.param(
        [*TINY, "--out", "notes.zarr"], ("not an rnnzoo zoo",), {}, id="gen-out-user-folder-zarr"
    ),
    pytest.param([*TINY, "--out", "truncated.zarr"], ("zarr.json",), {}, id="gen-out-truncated"),
    pytest.param([*TINY, "--out", "fake.zip"], ("not a directory",), {}, id="gen-out-zip-file"),
    pytest.param(
        [*TINY, "--out", ZOO], ("cannot write",), {"read_only": (ZOO,)}, id="gen-out-read-only"
    ),
    pytest.param(
        [*TINY, "--out", "notes/new.zarr"],
        ("cannot write",),
        {"read_only": ("notes",)},
        id="gen-out-parent-read-only",
    ),
    pytest.param(
        [*GEN, "--preset", "demo", "--out", ZOO], ("different plan",), {}, id="gen-other-plan"
    ),
    # -- generate: resuming a damaged zoo names the array and says to run verify --------------
    pytest.param(
        RESUME,
        ("index/status", "corrupt", "verify"),
        {"setup": _both(_grid(SANDBOX_GRID), _corrupt("index/status"))},
        id="gen-corrupt-index-chunk",
    ),
    pytest.param(
        RESUME,
        ("index/test_loss", "missing", "verify"),
        {"setup": _both(_grid(SANDBOX_GRID), _delete("index/test_loss"))},
        id="gen-missing-index-chunk",
    ),
    pytest.param(
        RESUME,
        ("index/group", "verify"),
        {"setup": _both(_grid(SANDBOX_GRID), _delete("index/group"))},
        id="gen-missing-index-coordinate",
    ),
    pytest.param(
        RESUME,
        ("zarr.json", "verify"),
        {"setup": _both(_grid(SANDBOX_GRID), _truncate(f"{TASK}/index/test_loss"))},
        id="gen-truncated-array-metadata",
    ),
    # -- generate: presets, tasks, grid files -------------------------------------------------
    pytest.param(
        [*GEN, "--preset", "nosuch", "--out", "x.zarr"],
        ("unknown preset",),
        {},
        id="gen-unknown-preset",
    ),
    pytest.param(
        [*TINY, "--task", "nosuch", "--out", "x.zarr"], ("unknown task",), {}, id="gen-unknown-task"
    ),
    pytest.param(
        [*TINY, "--task", ",", "--out", "x.zarr"], ("--task is empty",), {}, id="gen-empty-task"
    ),
    pytest.param([*TINY, "--device", "tpu", "--out", "x.zarr"], ("tpu",), {}, id="gen-bad-device"),
    pytest.param(
        [*GEN, "--config", "nosuch.toml", "--out", "x.zarr"],
        ("does not exist",),
        {},
        id="grid-missing",
    ),
    pytest.param(
        [*GEN, "--config", "notes", "--out", "x.zarr"], ("not a file",), {}, id="grid-is-a-folder"
    ),
    pytest.param(
        [*GEN, "--config", "grid.toml", "--out", "x.zarr"],
        ("empty",),
        {"setup": _grid("")},
        id="grid-empty",
    ),
    pytest.param(
        [*GEN, "--config", "grid.toml", "--out", "x.zarr"],
        ("empty",),
        {"setup": _grid("# only a comment\n")},
        id="grid-only-comments",
    ),
    pytest.param(
        [*GEN, "--config", "grid.toml", "--out", "x.zarr"],
        ("not valid TOML",),
        {"setup": _grid("units = [64\n[grid")},
        id="grid-garbage",
    ),
    pytest.param(
        [*GEN, "--config", "grid.toml", "--out", "x.zarr"],
        ("not valid TOML",),
        {"setup": _file("grid.toml", b"\xff\xfe\x00binary")},
        id="grid-binary",
    ),
]

_GRID_ROWS = [
    ("units = 100000000", "units", "grid-units-1e8-int"),
    ("units = 1e8", "units", "grid-units-1e8-float"),
    ("units = [0]", "units", "grid-units-zero"),
    ('units = ["64"]', "units", "grid-units-string"),
    ("seeds = [-1]", "seeds", "grid-negative-seed"),
    ("seeds = 0", "seeds", "grid-no-seeds"),
    ("seeds = 100000000", "seeds", "grid-seed-count-absurd"),
    ("seeds = [10000000000000]", "seeds", "grid-seed-absurd"),
    ("l2 = [1e8]", "l2", "grid-l2-absurd"),
    ("l2 = [-1e-4]", "l2", "grid-l2-negative"),
    ('l2 = ["nan"]', "l2", "grid-l2-string"),
    ('arch = ["transformer"]', "arch", "grid-unknown-arch"),
    ('activation = ["gelu"]', "activation", "grid-unknown-activation"),
    ('tasks = ["nosuch"]', "nosuch", "grid-unknown-task"),
    ("tasks = []", "tasks", "grid-no-tasks"),
    ("colour = 1", "unknown key", "grid-unknown-key"),
]
_TRAINING_ROWS = [
    ("iterations = 1000000000000", "iterations", "grid-iterations-absurd"),
    ("iterations = 0", "iterations", "grid-iterations-zero"),
    ("iterations = 2.5", "iterations", "grid-iterations-float"),
    ("batch_size = 0", "batch_size", "grid-batch-zero"),
    ("batch_size = 100000000", "batch_size", "grid-batch-absurd"),
    ("eval_trials = 1000000000", "eval_trials", "grid-eval-trials-absurd"),
    ("loss_every = -5", "loss_every", "grid-loss-every-negative"),
    ("unit_size = 100000000", "unit_size", "grid-unit-size-absurd"),
]
for body, word, name in _GRID_ROWS:
    CASES.append(
        pytest.param(
            [*GEN, "--config", "grid.toml", "--out", "x.zarr"],
            (word,),
            {"setup": _grid(f"[grid]\n{body}\n")},
            id=name,
        )
    )
for body, word, name in _TRAINING_ROWS:
    CASES.append(
        pytest.param(
            [*GEN, "--config", "grid.toml", "--out", "x.zarr"],
            (word,),
            {"setup": _grid(f"[training]\n{body}\n")},
            id=name,
        )
    )
CASES += [
    pytest.param(
        [*GEN, "--config", "grid.toml", "--out", "x.zarr"],
        ("trials",),
        {"setup": _grid("[search]\ntrials = 100000000\niterations = 10\n")},
        id="grid-trials-absurd",
    ),
    pytest.param(
        [*GEN, "--config", "grid.toml", "--out", "x.zarr"],
        ("n_steps",),
        {"setup": _grid("[tasks.sine]\nn_steps = 1000000000\n")},
        id="grid-task-steps-absurd",
    ),
    pytest.param(
        [*GEN, "--config", "grid.toml", "--out", "x.zarr"],
        ("n_steps",),
        {"setup": _grid("[tasks.sine]\nn_steps = -3\n")},
        id="grid-task-steps-negative",
    ),
    pytest.param(
        [*GEN, "--config", "grid.toml", "--out", "x.zarr"],
        ("sine",),
        {"setup": _grid("[task_iterations]\nsine = 1000000000000\n")},
        id="grid-task-iterations-absurd",
    ),
    pytest.param(
        [*GEN, "--config", "grid.toml", "--out", "x.zarr"],
        ("momentum",),
        {"setup": _grid("[hparams]\nclip = 1.0\nlr = 0.1\ndecay = 0.5\nmomentum = 1.5\n")},
        id="grid-hparams-out-of-range",
    ),
    pytest.param(
        [*GEN, "--config", "grid.toml", "--out", "x.zarr"],
        ("lr",),
        {"setup": _grid('[hparams]\nclip = 1.0\nlr = "fast"\ndecay = 0.5\nmomentum = 0.9\n')},
        id="grid-hparams-ill-typed",
    ),
    pytest.param(
        [*GEN, "--config", "grid.toml", "--out", "x.zarr"],
        ("base",),
        {"setup": _grid('base = "nosuch"\n')},
        id="grid-unknown-base",
    ),
    pytest.param(
        [*GEN, "--config", "grid.toml", "--out", "x.zarr"],
        ("name",),
        {"setup": _grid("name = 5\n")},
        id="grid-name-not-a-string",
    ),
    # -- presets ------------------------------------------------------------------------------
    pytest.param([RT, "presets", "nosuch"], ("unknown preset",), {}, id="presets-unknown"),
    # -- verify -------------------------------------------------------------------------------
    pytest.param([RT, "verify", "nosuch.zarr"], ("does not exist",), {}, id="verify-missing"),
    pytest.param(
        [RT, "verify", "--repair", "nosuch.zarr"], ("does not exist",), {}, id="repair-missing"
    ),
    pytest.param([RT, "verify", "fake.zip"], ("not a zip",), {}, id="verify-not-a-zip"),
    pytest.param([RT, "verify", "text.txt"], ("file",), {}, id="verify-a-file"),
    pytest.param([RT, "verify", "notes"], ("not a zarr",), {}, id="verify-user-folder"),
    pytest.param([RT, "verify", "notzoo.zarr"], ("not an rnnzoo zoo",), {}, id="verify-foreign"),
    pytest.param(
        [RT, "verify", "--repair", "notzoo.zarr"], ("not an rnnzoo zoo",), {}, id="repair-foreign"
    ),
    pytest.param([RT, "verify", "truncated.zarr"], ("zarr.json",), {}, id="verify-truncated"),
    pytest.param(
        [RT, "verify", "--repair", "truncated.zarr"], ("zarr.json",), {}, id="repair-truncated"
    ),
    pytest.param([RT, "verify", UNREACHABLE], ("cannot read",), {}, id="verify-unreachable"),
    pytest.param([RT, "verify", "--repair", UNREACHABLE], ("read-only",), {}, id="repair-url"),
    pytest.param([RT, "verify", "--repair", "fake.zip"], ("read-only",), {}, id="repair-fake-zip"),
    pytest.param(
        [RT, "verify", "--no-progress", ZOO],
        ("1 problem", "--repair"),
        {"setup": _delete("index/test_loss")},
        id="verify-finds-damage",
    ),
    pytest.param(
        [RT, "verify", ZOO],
        ("1 problem", "--repair"),
        {"setup": _corrupt(f"networks/{GROUP}/hidden_trained"), "subprocess": True},
        id="verify-piped-stderr-no-bar",
    ),
    pytest.param(
        [RT, "verify", "--no-progress", "--quick", ZOO],
        ("problem",),
        {"setup": _delete(f"networks/{GROUP}/final_W_h")},
        id="verify-quick-finds",
    ),
    pytest.param(
        [RT, "verify", "--no-progress", ZOO],
        ("problem",),
        {"setup": _corrupt("probe/inputs")},
        id="verify-corrupt-probe",
    ),
    pytest.param(
        [RT, "verify", "--no-progress", ZOO],
        ("problem",),
        {"setup": _truncate(f"{TASK}/index/test_loss")},
        id="verify-truncated-array",
    ),
    pytest.param(
        [RT, "verify", "--repair", "--no-progress", ZOO],
        ("writer lock",),
        {"read_only": (ZOO,)},
        id="repair-read-only",
    ),
    pytest.param(
        [RT, "verify", "--repair", "--no-progress", ZOO],
        ("cannot be written",),
        {"setup": _delete("index/test_loss"), "read_only": (f"{ZOO}/{TASK}/index/test_loss/c",)},
        id="repair-read-only-inside",
    ),
    # -- info ---------------------------------------------------------------------------------
    pytest.param([RT, "info", "nosuch.zarr"], ("no zoo",), {}, id="info-missing"),
    pytest.param([RT, "info", "fake.zip"], ("not a zip",), {}, id="info-not-a-zip"),
    pytest.param([RT, "info", "text.txt"], ("text.txt",), {}, id="info-a-file"),
    pytest.param([RT, "info", "notes"], ("not a zarr",), {}, id="info-user-folder"),
    pytest.param([RT, "info", "notzoo.zarr"], ("not an rnnzoo zoo",), {}, id="info-foreign"),
    pytest.param([RT, "info", "truncated.zarr"], ("cannot read",), {}, id="info-truncated"),
    pytest.param([RT, "info", UNREACHABLE], ("cannot read",), {}, id="info-unreachable"),
    pytest.param(
        [RT, "info", ZOO],
        ("index/test_loss", "missing", "verify"),
        {"setup": _delete("index/test_loss")},
        id="info-missing-index-chunk",
    ),
    pytest.param(
        [RT, "info", ZOO],
        ("index/status", "corrupt", "verify"),
        {"setup": _corrupt("index/status")},
        id="info-corrupt-index-chunk",
    ),
    pytest.param(
        [RT, "info", ZOO],
        ("index/network", "verify"),
        {"setup": _delete("index/network")},
        id="info-missing-index-ids",
    ),
    pytest.param(
        [RT, "info", ZOO],
        ("missing chunks", "verify"),
        {"setup": _delete(f"networks/{GROUP}/final_W_h")},
        id="info-damaged-network",
    ),
]


@pytest.mark.parametrize(("argv", "expect", "options"), CASES)
def test_refused(refused, argv, expect, options):
    refused(argv, expect, **options)


def test_repair_is_refused_while_generate_holds_the_lock(refused):
    """A real process holds the writer lock (as a running generate does)."""
    holders: list[subprocess.Popen] = []

    def hold(root: Path) -> None:
        code = (
            "import sys, time; from pathlib import Path; "
            "from rnnzoo_train.zoo.store import WriterLock; "
            f"lock = WriterLock(Path({str(root / ZOO)!r})); lock.acquire(); "
            "print('held', flush=True); time.sleep(120)"
        )
        p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        holders.append(p)
        assert p.stdout.readline().strip() == "held"
        _delete("index/test_loss")(root)

    try:
        refused(
            [RT, "verify", "--repair", "--no-progress", ZOO], ("being written by pid",), setup=hold
        )
    finally:
        for p in holders:
            p.kill()
            p.wait()


@pytest.mark.parametrize("command", [["info", ZOO], ["presets"]], ids=["info", "presets"])
def test_a_closed_pipe_ends_quietly(sandbox, command):
    """``rnnzoo-train info | head``: the reader goes away; no traceback, like Unix tools."""
    proc = subprocess.Popen(
        [_script_path(RT), *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=sandbox,
    )
    proc.stdout.close()  # before anything is written: the first write meets a closed pipe
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=5) == 141, err  # 128 + SIGPIPE, as a shell reports `yes | head`
    assert err == "", err


def test_info_through_head_prints_the_first_lines(sandbox):
    """The same with a real shell pipeline."""
    r = subprocess.run(
        f"{_script_path(RT)} info {ZOO} | head -n 1",
        shell=True,
        capture_output=True,
        text=True,
        cwd=sandbox,
        timeout=120,
    )
    assert r.stdout.startswith("zoo zoo.zarr")
    assert r.stderr == ""
