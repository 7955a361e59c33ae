"""A network is a pure function of (task, config, hyper-parameters, seed, package version)."""

import numpy as np
import pytest

from rnnzoo_train.presets import get_preset
from rnnzoo_train.records import NetworkSpec
from rnnzoo_train.tasks import get_task
from rnnzoo_train.training import train_network, train_population
from rnnzoo_train.training.seeding import network_streams

PRESET = get_preset("tiny")


def _specs(task_name, arch, seeds):
    plan = PRESET.plan(task_name)
    config = next(c for c in plan.configurations if c.arch == arch)
    hp = PRESET.fixed_hparams(config)
    return [
        NetworkSpec(task_name, config, s, hp, plan.iterations, plan.batch_size) for s in seeds
    ], get_task(task_name, **plan.task_config["params"])


@pytest.mark.parametrize(("task_name", "arch"), [("flipflop", "gru"), ("cdi", "vanilla")])
def test_same_network_alone_or_in_a_population_of_16(task_name, arch):
    specs, task = _specs(task_name, arch, range(16))
    population = train_population(specs, task, eval_trials=16)
    for i in (0, 7, 15):
        alone = train_network(specs[i], task, eval_trials=16)
        together = population[i]
        assert together.spec == alone.spec
        for name in alone.params_final:
            np.testing.assert_allclose(
                together.params_final[name], alone.params_final[name], rtol=0, atol=1e-5
            )
            np.testing.assert_array_equal(together.params_initial[name], alone.params_initial[name])
        np.testing.assert_allclose(together.loss_curve, alone.loss_curve, rtol=1e-5, atol=1e-6)
        assert together.test_loss == pytest.approx(alone.test_loss, rel=1e-5, abs=1e-6)
    # different seeds really are different networks
    assert not np.allclose(population[0].params_final["W_h"], population[1].params_final["W_h"])


def test_bitwise_repeatable():
    specs, task = _specs("sine", "gru", [3, 4])
    a = train_population(specs, task, eval_trials=16)
    b = train_population(specs, task, eval_trials=16)
    for ra, rb in zip(a, b, strict=True):
        for name in ra.params_final:
            assert ra.params_final[name].tobytes() == rb.params_final[name].tobytes()
        assert ra.loss_curve.tobytes() == rb.loss_curve.tobytes()
        assert ra.hidden_trained.tobytes() == rb.hidden_trained.tobytes()
        assert ra.test_loss == rb.test_loss


def test_order_in_population_does_not_matter():
    specs, task = _specs("flipflop", "vanilla", [0, 1, 2])
    fwd = train_population(specs, task, eval_trials=16)
    rev = train_population(specs[::-1], task, eval_trials=16)[::-1]
    for ra, rb in zip(fwd, rev, strict=True):
        for name in ra.params_final:
            np.testing.assert_allclose(ra.params_final[name], rb.params_final[name], atol=1e-6)


def test_streams_depend_on_task_config_role_and_seed():
    specs, _ = _specs("flipflop", "gru", [0, 1])
    draw = lambda s: network_streams(s)[1].random()  # noqa: E731
    init = lambda s: network_streams(s)[0].initial_seed()  # noqa: E731
    assert draw(specs[0]) == draw(specs[0])
    assert draw(specs[0]) != draw(specs[1])
    assert init(specs[0]) != init(specs[1])
    other_task = NetworkSpec("cdi", specs[0].config, 0, specs[0].hparams, 10)
    trial = NetworkSpec("flipflop", specs[0].config, 0, specs[0].hparams, 10, role="trial", trial=0)
    assert draw(other_task) != draw(specs[0])
    assert draw(trial) != draw(specs[0])
    # hyper-parameters and iterations do not change the streams (init and data are shared)
    longer = NetworkSpec("flipflop", specs[0].config, 0, specs[0].hparams, 999)
    assert draw(longer) == draw(specs[0])
    assert init(longer) == init(specs[0])


def test_mixed_configurations_of_one_shape_in_one_population():
    """Seeds, search trials, L2 values and hyper-parameters can share a population."""
    from rnnzoo_train.records import Configuration, HyperParameters

    plan = PRESET.plan("cdi")
    task = get_task("cdi", **plan.task_config["params"])
    a = Configuration("lstm", "tanh", 8, 1e-4)
    b = Configuration("lstm", "tanh", 8, 1e-2)
    hp1 = HyperParameters(clip=1.0, lr=0.05, decay=0.5, momentum=0.9)
    hp2 = HyperParameters(clip=0.3, lr=0.01, decay=0.9, momentum=0.5)
    specs = [
        NetworkSpec("cdi", a, 0, hp1, 15, 16),
        NetworkSpec("cdi", b, 0, hp2, 15, 16),
        NetworkSpec("cdi", a, 3, hp2, 15, 16, role="trial", trial=3),
    ]
    together = train_population(specs, task, eval_trials=16)
    for spec, r in zip(specs, together, strict=True):
        alone = train_network(spec, task, eval_trials=16)
        for name in alone.params_final:
            np.testing.assert_allclose(r.params_final[name], alone.params_final[name], atol=1e-5)
    assert not np.allclose(together[0].params_final["W_h"], together[1].params_final["W_h"])
