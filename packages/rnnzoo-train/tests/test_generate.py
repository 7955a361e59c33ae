"""Generation: work units, resume, runners, and a real Zarr zoo."""

import pickle

import numpy as np
import pytest

from rnnzoo_train.generate import WorkUnit, generate, run_unit, seed_units
from rnnzoo_train.presets import get_preset, load_grid
from rnnzoo_train.runners import ProcessRunner, SerialRunner, UnitFailed
from rnnzoo_train.writer import MemoryZooWriter

TINY = get_preset("tiny")


def _weights(writer, task):
    return {i: r.params_final for i, r in writer.results[task].items()}


def test_tiny_generation_fills_the_plan():
    writer = MemoryZooWriter()
    report = generate(TINY, ["flipflop", "sine"], writer, progress=False)
    assert writer.closed
    assert report.ok
    for task in ("flipflop", "sine"):
        plan = TINY.plan(task)
        assert set(writer.results[task]) == set(plan.network_ids())
        assert all(r.status == "ok" for r in writer.results[task].values())
    assert report.trained == 2 * len(TINY.plan("flipflop").network_ids())
    assert len(report.rows) == 2 * len(TINY.configurations())
    table = report.table()
    assert "median test loss" in table
    assert "solved" in table


def test_work_units_are_fixed_and_picklable():
    plan = TINY.plan("cdi")
    hp = {c: TINY.fixed_hparams(c) for c in plan.configurations}
    units = seed_units(plan, hp, n_steps=10)
    assert units == seed_units(plan, hp, n_steps=10)
    assert sum(len(u.specs) for u in units) == len(plan.network_ids())
    assert all(len(u.specs) <= TINY.unit_size for u in units)
    clone = pickle.loads(pickle.dumps(units[0]))
    assert isinstance(clone, WorkUnit)
    assert clone.specs == units[0].specs


def test_resume_skips_networks_already_ok_and_retrains_whole_units():
    full = MemoryZooWriter()
    generate(TINY, ["cdi"], full, progress=False)
    partial = MemoryZooWriter()
    generate(TINY, ["cdi"], partial, progress=False)
    # forget one network: its whole unit is retrained, the others are skipped
    victim = sorted(partial.results["cdi"])[0]
    del partial.results["cdi"][victim]
    report = generate(TINY, ["cdi"], partial, progress=False)
    assert report.trained == TINY.unit_size
    assert report.skipped == len(full.results["cdi"]) - 2
    for net_id, params in _weights(full, "cdi").items():
        for name, value in params.items():
            np.testing.assert_array_equal(partial.results["cdi"][net_id].params_final[name], value)


def test_process_runner_gives_bitwise_the_same_zoo():
    serial, parallel = MemoryZooWriter(), MemoryZooWriter()
    generate(TINY, ["flipflop"], serial, runner=SerialRunner(), progress=False)
    generate(TINY, ["flipflop"], parallel, runner=ProcessRunner(2), progress=False)
    key = lambda t: (t.config, t.trial)  # noqa: E731
    assert sorted(serial.search("flipflop"), key=key) == sorted(
        parallel.search("flipflop"), key=key
    )
    for net_id, params in _weights(serial, "flipflop").items():
        for name, value in params.items():
            assert (
                parallel.results["flipflop"][net_id].params_final[name].tobytes() == value.tobytes()
            )


def _boom(unit):
    if unit.specs[0].config.arch == "gru":
        raise RuntimeError("worker lost")
    return run_unit(unit)


class _FlakyRunner(SerialRunner):
    def map_unordered(self, fn, units):
        return super().map_unordered(_boom, units)


def test_a_failing_unit_is_reported_and_the_run_goes_on():
    writer = MemoryZooWriter()
    grid = TINY.__class__(**{**TINY.__dict__, "n_trials": 0})
    report = generate(grid, ["flipflop"], writer, runner=_FlakyRunner(), progress=False)
    assert not report.ok
    assert any("worker lost" in f for f in report.failed_units)
    done = writer.results["flipflop"]
    assert done
    assert all(r.spec.config.arch == "vanilla" for r in done.values())
    assert isinstance(UnitFailed(None, RuntimeError("x")), Exception)


def test_generation_into_a_real_zarr_zoo_and_resume(tmp_path):
    from rnnzoo_train.zoo import ZarrZooWriter, open_zoo

    path = tmp_path / "zoo.zarr"
    report = generate(TINY, ["cdi"], ZarrZooWriter(path), progress=False)
    assert report.ok
    zoo = open_zoo(path)
    index = zoo.index("cdi")
    assert set(index.index) == set(TINY.plan("cdi").network_ids())
    assert (index["status"] == "ok").all()
    net = sorted(index.index)[0]
    w = zoo.weights("cdi", net, which="final")
    assert set(w) >= {"W_x", "W_h", "b", "W_out", "b_out"}
    again = generate(TINY, ["cdi"], ZarrZooWriter(path), progress=False)
    assert again.trained == 0
    assert again.skipped == len(index)


def test_grid_file_generation(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text('base = "tiny"\n[grid]\narch = ["ugrnn"]\nseeds = 1\n[search]\ntrials = 0\n')
    writer = MemoryZooWriter()
    generate(load_grid(path), ["sine"], writer, progress=False)
    assert list(writer.results["sine"]) == ["ugrnn-tanh-u8-l2_1e-04-s000"]
    assert writer.plans["sine"].preset == "g"


@pytest.mark.parametrize("task", ["flipflop", "sine", "cdi"])
def test_run_unit_is_pure(task):
    plan = TINY.plan(task)
    hp = {c: TINY.fixed_hparams(c) for c in plan.configurations}
    unit = seed_units(plan, hp, n_steps=plan.task_config["params"]["n_steps"])[0]
    a, b = run_unit(unit), run_unit(unit)
    assert [r.network_id for r in a] == [s.network_id for s in unit.specs]
    assert all(
        x.params_final["W_h"].tobytes() == y.params_final["W_h"].tobytes()
        for x, y in zip(a, b, strict=True)
    )


def test_units_hold_every_configuration_of_one_shape():
    """Networks differing only in L2 share populations; a GPU ignores unit_size."""
    from dataclasses import replace

    from rnnzoo_train.generate import GPU_UNIT_MEMORY_BYTES, unit_capacity

    preset = replace(TINY, l2=(1e-4, 1e-3), seeds=(0, 1, 2))
    plan = preset.plan("cdi")
    hp = {c: preset.fixed_hparams(c) for c in plan.configurations}
    cpu = seed_units(plan, hp, n_steps=10)
    gpu = seed_units(plan, hp, n_steps=10, device="cuda")
    for units in (cpu, gpu):
        assert sorted(s.network_id for u in units for s in u.specs) == sorted(plan.network_ids())
        for u in units:  # one shape per unit
            assert len({(s.config.arch, s.config.activation, s.config.units) for s in u.specs}) == 1
    assert all(len(u.specs) <= preset.unit_size for u in cpu)
    # 2 architectures x (2 L2 x 3 seeds): on a GPU one unit per shape, mixing the two L2
    assert [len(u.specs) for u in gpu] == [6, 6]
    assert len({s.config.l2 for s in gpu[0].specs}) == 2
    assert "x2 L2" in gpu[0].label
    # the paper's largest networks (LSTM, 256 units, sine T = 500): memory bounds a unit
    paper = get_preset("paper").plan("sine")
    big = next(c for c in paper.configurations if c.arch == "lstm" and c.units == 256)
    on_gpu, on_cpu = unit_capacity(paper, big, 500, "cuda"), unit_capacity(paper, big, 500)
    assert on_cpu < 16 < on_gpu < 120
    assert on_gpu * 256 * 4 * 64 * 500 * 3 <= GPU_UNIT_MEMORY_BYTES


def test_search_units_spanning_configurations_give_the_same_records(monkeypatch):
    """Trials of several L2 settings in one population: the same records as one by one."""
    from dataclasses import replace

    import rnnzoo_train.generate as gen

    preset = replace(TINY, archs=("gru",), l2=(1e-4, 1e-2), seeds=(0,), n_trials=3,
                     search_iterations=10)  # fmt: skip
    shared = MemoryZooWriter()
    report = generate(preset, ["cdi"], shared, progress=False, runner=SerialRunner())
    assert report.ok
    monkeypatch.setattr(gen, "unit_capacity", lambda *a, **k: 1)
    alone = MemoryZooWriter()
    generate(preset, ["cdi"], alone, progress=False)
    key = lambda t: (t.config.key, t.trial)  # noqa: E731
    a, b = sorted(shared.trials["cdi"], key=key), sorted(alone.trials["cdi"], key=key)
    assert len(a) == 2 * 3
    assert [(key(t), t.chosen, t.val_loss) for t in a] == [
        (key(t), t.chosen, t.val_loss) for t in b
    ]
    assert sum(t.chosen for t in a) == 2  # one winner per configuration


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_units_on_a_worker_without_the_device_fail_with_the_reason():
    """A CPU-only client may drive GPU workers, so the device is checked where units run."""
    report = generate(TINY, ["cdi"], MemoryZooWriter(), progress=False, device="cuda")
    assert not report.ok
    assert report.trained == 0
    units = [f for f in report.failed_units if "search incomplete" not in f]
    assert units
    assert all("sees no CUDA GPU; use --device cpu" in f for f in units)
