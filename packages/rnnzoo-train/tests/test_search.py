"""Random hyper-parameter search: ranges, reproducibility, choice on validation loss, records."""

import math

import numpy as np
import pytest

from rnnzoo_train.generate import generate
from rnnzoo_train.presets import SEARCH_RANGES, get_preset
from rnnzoo_train.records import HyperParameters, NetworkResult, SearchTrial
from rnnzoo_train.search import choose_trial, draw_hparams, search_specs
from rnnzoo_train.writer import MemoryZooWriter

TINY = get_preset("tiny")


def test_draws_cover_the_paper_ranges():
    draws = draw_hparams(np.random.default_rng(0), 4000)
    for name, (lo, hi, log) in SEARCH_RANGES.items():
        x = np.array([getattr(d, name) for d in draws])
        assert lo <= x.min(), name
        assert x.max() <= hi, name
        values = np.log(x) if log else x
        a, b = (math.log(lo), math.log(hi)) if log else (lo, hi)
        # uniform on the (log) scale: mean and spread of a uniform distribution
        assert values.mean() == pytest.approx((a + b) / 2, abs=0.03 * (b - a)), name
        assert values.std() == pytest.approx((b - a) / math.sqrt(12), rel=0.05), name
    assert min(d.lr for d in draws) < 1e-4
    assert max(d.lr for d in draws) > 0.05


def test_search_specs_are_reproducible_and_distinct_per_configuration():
    plan = TINY.plan("flipflop")
    c0, c1 = plan.configurations[:2]
    a, b = search_specs(plan, c0), search_specs(plan, c0)
    assert a == b
    assert len(a) == plan.n_trials
    assert [s.trial for s in a] == list(range(plan.n_trials))
    assert all(s.role == "trial" and s.iterations == plan.search_iterations for s in a)
    assert len({s.network_id for s in a}) == len(a)
    assert [s.hparams for s in search_specs(plan, c1)] != [s.hparams for s in a]


def _result(spec, val_loss, status="ok"):
    return NetworkResult(
        spec=spec, status=status, params_initial={}, params_final={},
        loss_curve=np.zeros(1), loss_iterations=np.zeros(1, int), train_loss=val_loss,
        val_loss=val_loss, test_loss=val_loss, performance=0.0, solved=False,
        hidden_trained=np.zeros(0), hidden_untrained=np.zeros(0), outputs_trained=np.zeros(0),
    )  # fmt: skip


def test_choice_is_the_lowest_validation_loss_that_did_not_diverge():
    plan = TINY.plan("flipflop")
    specs = search_specs(plan, plan.configurations[0])
    results = [_result(specs[0], 0.5), _result(specs[1], 0.1, status="diverged")]
    trials, hp = choose_trial(results)
    assert hp == specs[0].hparams
    assert [t.chosen for t in trials] == [True, False]
    assert all(isinstance(t, SearchTrial) for t in trials)
    trials, hp = choose_trial([_result(specs[0], 0.5), _result(specs[1], 0.2)])
    assert hp == specs[1].hparams
    assert [t.chosen for t in trials] == [False, True]
    # all diverged: the lowest finite validation loss still wins, so generation can go on
    trials, hp = choose_trial(
        [_result(specs[0], math.nan, "diverged"), _result(specs[1], 3.0, "diverged")]
    )
    assert hp == specs[1].hparams


def test_generation_records_every_trial_and_trains_seeds_with_the_winner():
    writer = MemoryZooWriter()
    report = generate(TINY, ["cdi"], writer, progress=False)
    plan = TINY.plan("cdi")
    trials = writer.search("cdi")
    assert len(trials) == len(plan.configurations) * plan.n_trials
    for config in plan.configurations:
        mine = [t for t in trials if t.config == config]
        chosen = [t for t in mine if t.chosen]
        assert len(chosen) == 1
        finite = [t for t in mine if t.status == "ok"]
        assert chosen[0].val_loss == min(t.val_loss for t in finite)
        seeds = [r for r in writer.results["cdi"].values() if r.spec.config == config]
        assert {r.spec.hparams for r in seeds} == {chosen[0].hparams}
        assert report.chosen["cdi"][config.key] == chosen[0].hparams


def test_resume_reuses_a_recorded_choice():
    writer = MemoryZooWriter()
    plan = TINY.plan("flipflop")
    writer.prepare_task(plan, None)
    recorded = HyperParameters(clip=0.7, lr=0.0123, decay=0.5, momentum=0.5)
    for c in plan.configurations:
        writer.write_search("flipflop", [
            SearchTrial("flipflop", c, 0, 0, recorded, plan.search_iterations, "ok", 0.1, True)
        ])  # fmt: skip
    generate(TINY, ["flipflop"], writer, progress=False)
    assert len(writer.search("flipflop")) == len(plan.configurations)  # no new trials
    assert {r.spec.hparams for r in writer.results["flipflop"].values()} == {recorded}
