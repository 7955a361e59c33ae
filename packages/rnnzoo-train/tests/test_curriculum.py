"""Trial-length schedules (a curriculum over T, issue 14 section 3): ``Preset.task_curricula``.

A network trains its stages one after another (same parameters, optimiser and learning-rate
schedule), is evaluated and stored at the last stage's T (the task's), the zoo records the
schedule, a killed run resumes to the same zoo, ``generate --dry-run`` prices each stage at
its own T, and a bad schedule is a one-line error.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import zarr

from rnnzoo_train.cost import cpu_rate, project
from rnnzoo_train.generate import generate
from rnnzoo_train.presets import TINY, PresetError, load_grid
from rnnzoo_train.records import Configuration, HyperParameters, NetworkSpec
from rnnzoo_train.tasks import get_task
from rnnzoo_train.training import train_population
from rnnzoo_train.zoo import ZarrZooWriter, open_zoo
from rnnzoo_train.zoo.testing import zoo_differences
from rnnzoo_train.zoo.verify import verify_zoo

RNNZOO_TRAIN = shutil.which("rnnzoo-train", path=str(Path(sys.executable).parent)) or "rnnzoo-train"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
HP = HyperParameters(clip=1.0, lr=0.05, decay=0.2, momentum=0.9)
GRU = Configuration("gru", "tanh", 8, 1e-4)

#: a two-stage schedule on a tiny sine preset: 12 iterations at T = 10, then 8 at T = 30
TWO_STAGES = ((10, 12), (30, 8))
CURRICULUM = replace(
    TINY,
    name="tiny-curriculum",
    tasks=("sine",),
    n_trials=0,
    search_iterations=0,
    task_params={},
    task_curricula={"sine": TWO_STAGES},
)


def _spec(schedule=(), iterations=20) -> NetworkSpec:
    return NetworkSpec("sine", GRU, 0, HP, iterations, 16, schedule=schedule)


def test_the_first_stage_trains_at_its_own_trial_length_then_the_task_s():
    task30, task10 = get_task("sine", n_steps=30), get_task("sine", n_steps=10)
    staged = train_population([_spec(TWO_STAGES)], task30, loss_every=4, eval_trials=16)[0]
    # the same network and data stream at T = 10 for all 20 iterations: identical (bitwise)
    # while the schedule is in its first stage (k = 0, 4, 8), different once it is at T = 30
    short = train_population([_spec(((10, 20),))], task10, loss_every=4, eval_trials=16)[0]
    assert np.array_equal(staged.loss_curve[:3], short.loss_curve[:3])
    assert not np.array_equal(staged.loss_curve[3:], short.loss_curve[3:])
    assert staged.status == "ok"
    assert len(staged.loss_curve) == 20 // 4 + 1
    # evaluated and recorded at the task's T, the last stage's
    assert staged.hidden_trained.shape == (task30.n_probe, 30, 8)
    assert staged.outputs_trained.shape == (task30.n_probe, 30, 1)


def test_a_schedule_that_does_not_fit_the_network_or_task_is_refused():
    task30 = get_task("sine", n_steps=30)
    with pytest.raises(ValueError, match="has 19 iterations, the network 20"):
        train_population([_spec(((10, 11), (30, 8)))], task30, eval_trials=16)
    with pytest.raises(ValueError, match="ends at T = 20, but the task's trials have T = 30"):
        train_population([_spec(((10, 12), (20, 8)))], task30, eval_trials=16)
    with pytest.raises(ValueError, match="needs n_steps >= 1 and iterations >= 1"):
        train_population([_spec(((10, 0), (20, 12), (30, 8)))], task30, eval_trials=16)
    with pytest.raises(ValueError, match="trial-length schedule must agree"):
        train_population([_spec(TWO_STAGES), _spec()], task30, eval_trials=16)


def test_the_zoo_stores_the_final_trial_length_and_records_the_schedule(tmp_path):
    out = tmp_path / "zoo.zarr"
    with ZarrZooWriter(out) as writer:
        report = generate(CURRICULUM, ["sine"], writer, progress=False)
    assert report.ok
    assert report.trained == 4
    zoo = open_zoo(out)
    plan = zoo.plan("sine")
    assert plan.metadata["trial_length_schedule"] == [[10, 12], [30, 8]]
    assert plan.schedule == TWO_STAGES
    assert plan.iterations == 20
    assert plan.task_config["params"]["n_steps"] == 30
    assert zoo.task("sine").n_steps == 30
    index = zoo.index("sine")
    assert set(index["status"].values) == {"ok"}
    tree = zoo.hidden_states("sine")
    for group in ("vanilla-tanh-u8", "gru-tanh-u8"):
        assert tree[group].dataset["hidden_trained"].sizes["time"] == 30
    assert verify_zoo(out).ok


def test_a_curriculum_run_is_reproducible_network_by_network(tmp_path):
    a, b = tmp_path / "a.zarr", tmp_path / "b.zarr"
    for out in (a, b):
        with ZarrZooWriter(out) as writer:
            generate(CURRICULUM, ["sine"], writer, progress=False)
    assert zoo_differences(a, b) == []


def test_dry_run_prices_each_stage_at_its_own_trial_length():
    cost = project(CURRICULUM, ["sine"])
    per_network = {
        cell: sum(k * cpu_rate("sine", cell, 8, t) for t, k in TWO_STAGES)
        for cell in ("vanilla-tanh", "gru-tanh")
    }
    expected = sum(per_network.values()) * len(CURRICULUM.seeds)
    assert cost.cpu_seconds == pytest.approx(expected, rel=1e-12)
    (task_cost,) = cost.tasks
    assert task_cost.n_steps == 30
    assert task_cost.schedule == TWO_STAGES
    assert task_cost.network_iterations == 20 * 4
    # all 20 iterations at T = 30 cost more
    plain = replace(CURRICULUM, task_curricula={}, task_params={"sine": {"n_steps": 30}})
    assert project(plain, ["sine"]).cpu_seconds > cost.cpu_seconds
    assert any("trial-length schedule: T = 10 x 12 -> T = 30 x 8" in line for line in cost.lines())
    summary = CURRICULUM.summary()
    assert "sine: trial-length schedule T = 10 x 12 -> T = 30 x 8 iterations" in summary


def test_a_grid_file_sets_a_schedule_over_its_base_s_trial_length(tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text(
        'base = "demo"\n[grid]\ntasks = ["sine"]\n'
        "[task_curricula]\nsine = [[50, 1500], [100, 300], [500, 300]]\n"
    )
    preset = load_grid(grid)  # demo's sine T = 50 and 1,500 iterations give way
    plan = preset.plan("sine")
    assert plan.task_config["params"]["n_steps"] == 500
    assert plan.iterations == 2100
    assert plan.schedule == ((50, 1500), (100, 300), (500, 300))


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("sine = [[500, 300], [50, 1500]]", "n_steps must increase from stage to stage"),
        ("sine = [[50, 0], [500, 300]]", "stage [50, 0] is not two positive integers"),
        ("sine = [[50, 1.5], [500, 300]]", "is not two positive integers"),
        ("sine = [[50, 100, 3]]", "is not two positive integers"),
        ("sine = []", "expected a list of [n_steps, iterations] stages"),
        ("sine = 500", "expected a list of [n_steps, iterations] stages"),
        ("sine = [[50, 100], [200000, 10]]", "n_steps = 200,000 is more than"),
        ("juggling = [[5, 10], [10, 10]]", "task 'juggling'"),
    ],
)
def test_a_bad_schedule_is_a_one_line_error(tmp_path, table, message):
    grid = tmp_path / "g.toml"
    grid.write_text(f'base = "demo"\n[grid]\ntasks = ["sine"]\n[task_curricula]\n{table}\n')
    with pytest.raises(PresetError) as err:
        load_grid(grid)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_schedule_disagreeing_with_the_file_s_own_t_or_iterations_is_refused(tmp_path):
    grid = tmp_path / "g.toml"
    head = 'base = "demo"\n[task_curricula]\nsine = [[50, 100], [500, 300]]\n'
    grid.write_text(head + "[tasks.sine]\nn_steps = 200\n")
    with pytest.raises(PresetError, match="last stage has n_steps = 500, but"):
        load_grid(grid)
    grid.write_text(head + "[task_iterations]\nsine = 1000\n")
    with pytest.raises(PresetError, match="add up to 400 iterations, but task_iterations"):
        load_grid(grid)


def test_generate_dry_run_with_a_bad_schedule_exits_with_one_line(tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text('base = "demo"\n[task_curricula]\nsine = [[500, 300], [50, 10]]\n')
    proc = subprocess.run(
        [RNNZOO_TRAIN, "generate", "--config", str(grid), "--dry-run"],
        capture_output=True, text=True, env=ENV, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("rnnzoo-train: error: ")
    assert "n_steps must increase" in lines[0]


#: the curriculum preset as a grid file, 3 one-network work units slow enough to be killed
GRID = """
name = "curriculum-resume"
base = "tiny"
[grid]
arch = ["gru"]
seeds = 3
tasks = ["sine"]
[training]
unit_size = 1
[search]
trials = 0
[hparams]
clip = 1.0
lr = 0.05
decay = 0.2
momentum = 0.9
[task_curricula]
sine = [[10, 150], [30, 150]]
"""


def _generate(grid: Path, out: Path) -> subprocess.CompletedProcess:
    cmd = [RNNZOO_TRAIN, "generate", "--config", str(grid), "--out", str(out), "--no-progress"]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)


def _n_ok(path: Path) -> int:
    try:
        status = zarr.open_group(path, mode="r", use_consolidated=False)["sine/index/status"]
        return int(np.sum(status[:] == "ok"))
    except (FileNotFoundError, KeyError, ValueError):
        return 0


@pytest.mark.slow
def test_sigkill_mid_curriculum_run_then_resume_equals_a_clean_run(tmp_path):
    grid = tmp_path / "curriculum.toml"
    grid.write_text(GRID)
    clean, killed = tmp_path / "clean.zarr", tmp_path / "killed.zarr"
    done = _generate(grid, clean)
    assert done.returncode == 0, done.stderr

    cmd = [RNNZOO_TRAIN, "generate", "--config", str(grid), "--out", str(killed), "--no-progress"]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while _n_ok(killed) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    n_before = _n_ok(killed)
    assert 1 <= n_before < 3, "the kill must land in the middle of the run"

    again = _generate(grid, killed)
    assert again.returncode == 0, again.stderr
    assert f"{n_before} networks were already complete and were skipped" in again.stdout
    assert zoo_differences(killed, clean) == []

    # resuming with another schedule would mix networks of two definitions: refused
    grid.write_text(GRID.replace("[[10, 150], [30, 150]]", "[[15, 150], [30, 150]]"))
    other = _generate(grid, killed)
    assert other.returncode == 2
    assert "trial_length_schedule" in other.stderr.strip().splitlines()[-1]
    assert "Traceback" not in other.stderr


def test_search_trials_train_the_same_schedule():
    from rnnzoo_train.search import search_specs

    searched = replace(CURRICULUM, n_trials=2, search_iterations=5)
    plan = searched.plan("sine")
    assert plan.search_iterations == 20
    trials = search_specs(plan, plan.configurations[0])
    assert [t.schedule for t in trials] == [TWO_STAGES, TWO_STAGES]
    assert {t.iterations for t in trials} == {20}
