"""Presets tiny/demo/paper and TOML grid files."""

import pytest

from rnnzoo_train.cells import ACTIVATIONS, ARCHITECTURES
from rnnzoo_train.presets import (
    PresetError,
    available_presets,
    get_preset,
    load_grid,
)
from rnnzoo_train.records import HyperParameters


def test_available_presets():
    assert available_presets() == ["tiny", "demo", "paper", "paper-core"]
    with pytest.raises(
        PresetError, match="unknown preset 'huge'; choose one of tiny, demo, paper, paper-core"
    ):
        get_preset("huge")


def test_paper_preset_is_the_paper():
    p = get_preset("paper")
    configs = p.configurations()
    assert len(configs) == 96
    assert {c.arch for c in configs} == set(ARCHITECTURES)
    assert {c.activation for c in configs} == set(ACTIVATIONS)
    assert {c.units for c in configs} == {64, 128, 256}
    assert {c.l2 for c in configs} == {1e-5, 1e-4, 1e-3, 1e-2}
    assert len(p.seeds) == 30
    assert p.iterations == 20_000
    assert p.batch_size == 64
    assert p.n_trials > 0
    assert p.departures == ()
    plan = p.plan("flipflop")
    assert plan.n_trials == p.n_trials
    assert plan.iterations == 20_000
    assert len(plan.network_ids()) == 96 * 30
    assert plan.task_config["params"]["n_steps"] == 100


def test_demo_covers_every_task_and_cell_with_five_seeds_and_documents_departures():
    p = get_preset("demo")
    assert set(p.tasks) == {"flipflop", "sine", "cdi"}
    assert {(c.arch, c.activation) for c in p.configurations()} == {
        (a, f) for a in ARCHITECTURES for f in ACTIVATIONS
    }
    assert len(p.seeds) >= 5
    for task in p.tasks:
        plan = p.plan(task)
        meta = plan.metadata
        assert meta["departures_from_paper"] == list(p.departures)
        assert any("iterations" in d for d in p.departures)
        assert any("units" in d for d in p.departures)
        if plan.n_trials == 0:
            assert set(meta["fixed_hparams"]) == {c.key for c in plan.configurations}


def test_tiny_is_small():
    p = get_preset("tiny")
    assert p.n_networks() <= 12
    assert p.iterations <= 50


def test_grid_overrides_a_subset(tmp_path):
    path = tmp_path / "mygrid.toml"
    path.write_text(
        """
base = "tiny"
[grid]
arch = ["lstm"]
l2 = [1e-3, 1e-2]
seeds = 3
[training]
iterations = 7
[search]
trials = 0
[hparams]
clip = 2.0
lr = 0.01
decay = 0.5
momentum = 0.8
[hparams.lstm-tanh]
clip = 3.0
lr = 0.02
decay = 0.5
momentum = 0.8
[tasks.sine]
n_steps = 40
[task_iterations]
cdi = 11
"""
    )
    g = load_grid(path)
    assert g.name == "mygrid"
    assert g.archs == ("lstm",)
    assert g.activations == ("tanh",)
    assert g.l2 == (1e-3, 1e-2)
    assert g.seeds == (0, 1, 2)
    assert g.iterations == 7
    assert g.iterations_for("cdi") == 11
    assert g.n_trials == 0
    c = g.configurations()[0]
    assert g.fixed_hparams(c) == HyperParameters(3.0, 0.02, 0.5, 0.8)
    assert g.plan("sine").task_config["params"]["n_steps"] == 40
    assert g.plan("cdi").iterations == 11
    assert any("grid file" in d for d in g.departures)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[grid]\narhc = ['gru']", r"unknown key 'arhc' \(valid keys: activation, arch, "),
        ("[grid]\narch = ['grux']", "unknown arch 'grux'"),
        ("[grid]\nunits = ['big']", r"grid.units: expected int value\(s\), got 'big'"),
        ("[grid]\nunits = []", "units must not be empty"),
        ("[training]\niterations = -5", "iterations must be a positive integer"),
        ("base = 'huge'", "base = 'huge' is not a preset"),
        ("[hparams]\nclip = 1.0\nlr = 0.1\ndecay = 0.5", "missing momentum"),
        ("[hparams]\nclip = 1.0\nlr = 0.1\ndecay = 0.5\nmomentum = 1.5", "momentum = 1.5 is out"),
        ("colour = 'red'", "unknown key 'colour'"),
        ("[grid\narch = 1", "not valid TOML"),
        ("[tasks.sine]\nn_stepz = 3", "task 'sine': .*n_stepz"),
        ("[tasks.sine]\nn_steps = -3", "task 'sine': "),
        ("[grid]\ntasks = ['juggling']", "task 'juggling': unknown task"),
    ],
)
def test_bad_grid_files_give_one_line_errors(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(PresetError, match=message) as info:
        load_grid(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_missing_grid_file(tmp_path):
    with pytest.raises(PresetError, match="does not exist"):
        load_grid(tmp_path / "nope.toml")


def test_task_specific_fixed_hparams(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text(
        """
base = "tiny"
[hparams]
clip = 1.0
lr = 0.1
decay = 0.5
momentum = 0.9
[hparams.cdi]
clip = 2.0
lr = 0.05
decay = 0.5
momentum = 0.9
[hparams."cdi/gru-tanh"]
clip = 3.0
lr = 0.01
decay = 0.5
momentum = 0.9
"""
    )
    g = load_grid(path)
    vanilla, gru = g.configurations()
    assert g.fixed_hparams(gru, "cdi").clip == 3.0
    assert g.fixed_hparams(vanilla, "cdi").clip == 2.0
    assert g.fixed_hparams(gru, "sine").clip == 1.0
    assert g.fixed_hparams(gru).clip == 1.0
    assert g.plan("cdi").metadata["fixed_hparams"][gru.key]["lr"] == 0.01
    bad = tmp_path / "bad.toml"
    bad.write_text('[hparams."cdi/gruu"]\nclip = 1.0\nlr = 0.1\ndecay = 0.5\nmomentum = 0.9\n')
    with pytest.raises(PresetError, match="must be keyed by task"):
        load_grid(bad)
