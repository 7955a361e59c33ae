"""Resume and faults through the real ``rnnzoo-train generate`` CLI.

SIGKILL the CLI in the middle of a run, rerun the same command, and compare every array
with a clean, uninterrupted run. Also: a bad configuration leaves nothing behind, a foreign
or busy output is refused in one line.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from rnnzoo_train.zoo import ZarrZooWriter, open_zoo
from rnnzoo_train.zoo.testing import zoo_differences
from rnnzoo_train.zoo.verify import verify_zoo

pytestmark = pytest.mark.slow

RNNZOO_TRAIN = shutil.which("rnnzoo-train", path=str(Path(sys.executable).parent)) or "rnnzoo-train"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}

#: a search phase and then 6 one-network work units, slow enough to be killed mid-run
GRID = """
name = "resume-test"
base = "tiny"
[grid]
arch = ["vanilla", "gru"]
seeds = 3
tasks = ["flipflop"]
[training]
iterations = 200
unit_size = 1
[search]
trials = 2
iterations = 20
"""


def _generate(grid: Path, out: Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [RNNZOO_TRAIN, "generate", "--config", str(grid), "--out", str(out), "--no-progress"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
        **kw,
    )


def _n_ok(path: Path) -> int:
    try:
        status = zarr.open_group(path, mode="r", use_consolidated=False)["flipflop/index/status"]
        return int(np.sum(status[:] == "ok"))
    except (FileNotFoundError, KeyError, ValueError):
        return 0


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("grid") / "resume.toml"
    path.write_text(GRID)
    return path


def test_sigkill_mid_run_then_resume_equals_a_clean_run(grid, tmp_path):
    clean, killed = tmp_path / "clean.zarr", tmp_path / "killed.zarr"
    done = _generate(grid, clean)
    assert done.returncode == 0, done.stderr
    total = len(open_zoo(clean).index("flipflop"))

    cmd = [RNNZOO_TRAIN, "generate", "--config", str(grid), "--out", str(killed), "--no-progress"]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while _n_ok(killed) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    n_before = _n_ok(killed)
    assert 2 <= n_before < total, "the kill must land in the middle of the seeds phase"

    again = _generate(grid, killed)
    assert again.returncode == 0, again.stderr
    assert f"{n_before} networks were already complete and were skipped" in again.stdout
    assert zoo_differences(killed, clean) == []
    assert verify_zoo(killed).ok


def test_a_bad_configuration_leaves_no_store(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('base = "tiny"\n[grid]\narch = ["transformer"]\n')
    out = tmp_path / "out.zarr"
    proc = _generate(bad, out)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("rnnzoo-train: error:")
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_a_foreign_or_busy_output_is_refused_in_one_line(grid, tmp_path):
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"\xff\xd8")
    proc = _generate(grid, foreign)
    assert proc.returncode == 2
    assert "exists and is not an rnnzoo zoo" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in foreign.iterdir()) == ["cat.jpg"]

    from rnnzoo_train.presets import load_grid
    from rnnzoo_train.tasks import get_task

    plan = load_grid(grid).plan("flipflop")
    busy = tmp_path / "busy.zarr"
    with ZarrZooWriter(busy) as writer:  # another generation holds the zoo
        writer.prepare_task(plan, get_task("flipflop", **plan.task_config["params"]))
        proc = _generate(grid, busy)
    assert proc.returncode == 2
    assert f"is being written by pid {os.getpid()}" in proc.stderr
    assert "Traceback" not in proc.stderr
