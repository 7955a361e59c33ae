"""The projected cost of a preset (``rnnzoo_train.cost``, ``generate --dry-run``)."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from rnnzoo_train import cost
from rnnzoo_train.cli import main
from rnnzoo_train.presets import PAPER_CORE, TINY, get_preset


def test_rates_are_the_measured_ones_at_measured_widths():
    steps, cells = cost.CPU_RATES["sine"]
    assert steps == 500
    for cell, table in cells.items():
        for units, seconds in table.items():
            assert cost.cpu_rate("sine", cell, units, steps) == pytest.approx(seconds)


def test_rates_grow_with_width_and_trial_length():
    for cell in ("vanilla-tanh", "gru-relu", "lstm-tanh"):
        by_width = [cost.cpu_rate("sine", cell, u, 500) for u in (16, 32, 48, 64, 200, 512)]
        assert all(a < b for a, b in zip(by_width, by_width[1:], strict=False))
        by_t = [cost.cpu_rate("sine", cell, 32, t) for t in (50, 100, 500, 1000)]
        assert all(a < b for a, b in zip(by_t, by_t[1:], strict=False))


def test_a_task_without_measurements_uses_the_fit_over_trial_length():
    rates = [cost.cpu_rate("mytask", "gru-tanh", 64, t) for t in (100, 200, 300)]
    assert rates[2] - rates[1] == pytest.approx(rates[1] - rates[0])  # affine in T
    assert rates[0] > 0
    # the fit passes near every measured task (the tasks differ only in inputs and sampling)
    for task, (steps, _) in cost.CPU_RATES.items():
        measured = cost.cpu_rate(task, "gru-tanh", 64, steps)
        assert cost.cpu_rate("mytask", "gru-tanh", 64, steps) == pytest.approx(measured, rel=0.5)


def test_paper_core_projection_counts_every_network_and_iteration():
    p = cost.project(PAPER_CORE)
    cells = len(PAPER_CORE.configurations())
    assert cells == 8
    for t in p.tasks:
        assert (t.seeds, t.trials) == (8 * 20, 8 * 20)
        assert t.network_iterations == (t.seeds + t.trials) * 20_000
    assert p.networks == 3 * 8 * 40
    assert [t.n_steps for t in p.tasks] == [100, 500, 30]
    # sine's T = 500 dominates, as docs/benchmarks.md says of the paper preset
    by_task = {t.task: t.cpu_seconds for t in p.tasks}
    assert by_task["sine"] > by_task["flipflop"] + by_task["cdi"]


def test_wall_time_on_n_workers_is_bounded_by_the_total_and_the_longest_unit():
    p = cost.project(PAPER_CORE)
    assert p.wall_seconds(1) == pytest.approx(p.cpu_seconds)
    longest = {
        ph: max(u.cpu_seconds for u in p.units if u.phase == ph) for ph in ("search", "seeds")
    }
    previous = p.wall_seconds(1)
    for n in (2, 4, 16, 64, 1000):
        wall = p.wall_seconds(n)
        assert wall <= previous + 1e-6
        assert wall >= p.cpu_seconds / n - 1e-6
        assert wall >= longest["search"] + longest["seeds"] - 1e-6
        previous = wall
    with pytest.raises(cost.CostError):
        p.wall_seconds(0)


def test_gpu_projection_is_a_range_plus_sampling():
    p = cost.project(PAPER_CORE)
    lo, mid, hi = p.gpu_seconds()
    sampling = sum(t.gpu_sampling_seconds for t in p.tasks)
    assert 0 < sampling < lo < mid < hi
    # the GPU holds a whole shape's seeds (or search trials) in one unit at 64 units
    for t in p.tasks:
        assert t.gpu_unit_iterations == 8 * 2 * 20_000


def test_projection_of_a_zoo_without_search_and_of_part_of_the_tasks():
    demo = get_preset("demo")
    p = cost.project(demo, ["sine"])
    assert [t.task for t in p.tasks] == ["sine"]
    assert p.tasks[0].trials == 0
    assert p.tasks[0].seeds == 40
    assert p.tasks[0].network_iterations == 40 * demo.iterations_for("sine")
    assert all(u.phase == "seeds" for u in p.units)


def test_dry_run_prints_the_projection_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["generate", "--preset", "paper-core", "--dry-run", "--workers", "8"]) == 0
    out = capsys.readouterr().out
    assert "960 networks to train (480 zoo networks + 480 search trials)" in out
    for text in ("core-days", "  8 workers", "one GPU", "NVIDIA H200", "nothing was trained"):
        assert text in out
    assert os.listdir(tmp_path) == []


def test_dry_run_default_cluster_size_and_a_grid_file(tmp_path, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text('base = "tiny"\n[tasks.sine]\nn_steps = 500\n', encoding="utf-8")
    assert main(["generate", "--config", str(grid), "--task", "sine", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert " 16 workers" in out
    assert "sine " in out
    assert " 500 " in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.toml"]


def test_gpu_unit_estimate_is_between_the_measured_extremes():
    from rnnzoo_train.records import Configuration

    small = cost.gpu_unit_seconds("sine", Configuration("vanilla", "tanh", 64, 1e-4), 20, 500)
    big = cost.gpu_unit_seconds("sine", Configuration("lstm", "tanh", 256, 1e-4), 28, 500)
    assert small[0] < small[1] < small[2]
    assert big[1] == pytest.approx(big[2])  # the slowest measured unit itself
    half = cost.gpu_unit_seconds("sine", Configuration("lstm", "tanh", 256, 1e-4), 28, 250)
    assert half == pytest.approx(tuple(x / 2 for x in big))


def test_gpu_model_reproduces_the_documented_paper_projection():
    """docs/benchmarks.md: the paper preset on one H200, 3.5 GPU-days (1.5 of them sampling)."""
    p = cost.project(get_preset("paper"))
    lo, mid, hi = (s / 86400 for s in p.gpu_seconds())
    sampling = sum(t.gpu_sampling_seconds for t in p.tasks) / 86400
    assert sampling == pytest.approx(1.5, rel=0.05)
    assert mid == pytest.approx(3.5, rel=0.1)
    assert lo < mid < hi


def test_tiny_projection_is_small():
    p = cost.project(replace(TINY, tasks=("flipflop",)))
    assert 0 < p.cpu_seconds < 60
