"""The ``paper-core`` preset (the paper's per-network settings) and sine at T = 500."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from rnnzoo_train import cost
from rnnzoo_train.generate import generate
from rnnzoo_train.presets import PAPER_CORE, SEARCH_RANGES, get_preset
from rnnzoo_train.search import search_specs
from rnnzoo_train.tasks import get_task
from rnnzoo_train.training import train_population
from rnnzoo_train.writer import MemoryZooWriter

#: paper section 2.1 and 2.2, typed in from the paper (not from the package)
PAPER_RANGES = {
    "clip": (0.1, 10.0, True),
    "lr": (1e-5, 0.1, True),
    "decay": (0.1, 0.9, False),
    "momentum": (0.0, 1.0, False),
}
PAPER_T = {"flipflop": 100, "sine": 500, "cdi": 30}


def test_paper_core_uses_the_papers_per_network_settings():
    assert get_preset("paper-core") is PAPER_CORE
    assert SEARCH_RANGES == PAPER_RANGES
    for task in PAPER_CORE.tasks:
        plan = PAPER_CORE.plan(task)
        assert plan.task_config["params"]["n_steps"] == PAPER_T[task]
        assert plan.iterations == 20_000
        assert plan.batch_size == 64
        assert plan.n_trials > 0
        assert plan.search_iterations == 20_000
        assert all(c.units >= 64 for c in plan.configurations)
        cells = {(c.arch, c.activation) for c in plan.configurations}
        assert len(cells) == 8 == len(plan.configurations)  # one configuration per cell type
        assert len(plan.seeds) == 20
        assert plan.metadata["search_ranges"] == {k: list(v) for k, v in PAPER_RANGES.items()}
        assert any("seeds" in d for d in plan.metadata["departures_from_paper"])


def test_a_sine_search_trial_at_t500_is_built_and_trains():
    plan = PAPER_CORE.plan("sine")
    config = next(c for c in plan.configurations if c.arch == "gru" and c.activation == "relu")
    trials = search_specs(plan, config)
    assert len(trials) == plan.n_trials
    assert {t.role for t in trials} == {"trial"}
    for t in trials:  # every draw inside the paper's ranges
        for name, (lo, hi, _) in PAPER_RANGES.items():
            assert lo <= getattr(t.hparams, name) <= hi
    task = get_task("sine", **plan.task_config["params"])
    assert task.n_steps == 500
    short = [replace(t, iterations=3) for t in trials[:2]]
    results = train_population(short, task, loss_every=1, eval_trials=8, record_probe=True)
    for r in results:
        assert r.status == "ok"
        assert np.isfinite(r.loss_curve).all()
        assert r.hidden_trained.shape == (task.n_probe, 500, 64)
        assert math.isfinite(r.val_loss)


def test_a_slice_of_paper_core_generates_one_configuration():
    """One configuration of the preset at its own settings, a few hundred iterations."""
    piece = replace(
        PAPER_CORE,
        archs=("vanilla",),
        activations=("tanh",),
        seeds=(0,),
        iterations=200,
        n_trials=2,
        search_iterations=50,
        tasks=("sine",),
        eval_trials=64,
    )
    writer = MemoryZooWriter()
    report = generate(piece, ["sine"], writer, progress=False)
    assert report.ok
    assert report.trained == 1
    assert len(writer.trials["sine"]) == 2
    assert sum(t.chosen for t in writer.trials["sine"]) == 1
    (net,) = writer.results["sine"].values()
    chosen = next(t for t in writer.trials["sine"] if t.chosen)
    assert net.spec.hparams == chosen.hparams
    assert net.spec.iterations == 200
    assert net.spec.batch_size == 64
    assert net.spec.config.units == 64
    assert net.hidden_trained.shape == (8, 500, 64)
    assert writer.plans["sine"].task_config["params"]["n_steps"] == 500
    projected = cost.project(piece)
    assert projected.networks == 3
    assert projected.tasks[0].network_iterations == 200 + 2 * 50
