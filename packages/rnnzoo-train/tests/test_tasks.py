"""The three built-in tasks checked against their definitions (DESIGN.md section 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnnzoo_train.tasks import (
    ContextDependentIntegration,
    FlipFlop,
    ProbeSet,
    SineWave,
    TaskBatch,
    get_task,
)

TASKS = ["flipflop", "sine", "cdi"]


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# -- every task -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", TASKS)
def test_batch_shapes_and_dtypes(name):
    task = get_task(name)
    batch = task.sample(5, rng())
    T = task.n_steps
    assert isinstance(batch, TaskBatch)
    assert batch.inputs.shape == (5, T, task.n_inputs)
    assert batch.targets.shape == (5, T, task.n_outputs)
    assert batch.mask.shape == batch.targets.shape
    assert batch.inputs.dtype == np.float32
    assert batch.targets.dtype == np.float32
    assert batch.mask.dtype == np.bool_
    assert batch.mask.all()


@pytest.mark.parametrize("name", TASKS)
def test_sampling_is_a_function_of_the_generator_only(name):
    task = get_task(name)
    np.random.seed(1)  # noqa: NPY002 - the legacy global RNG must not matter
    a = task.sample(8, rng(42))
    np.random.seed(2)  # noqa: NPY002
    b = task.sample(8, rng(42))
    c = task.sample(8, rng(43))
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.targets, b.targets)
    assert not np.array_equal(a.inputs, c.inputs)
    # a batch of 8 from one stream is not 8 independent streams glued together, but two
    # successive batches from one generator differ
    g = rng(42)
    first, second = task.sample(8, g), task.sample(8, g)
    assert not np.array_equal(first.inputs, second.inputs)


@pytest.mark.parametrize("name", TASKS)
def test_probe_set_is_fixed(name):
    task = get_task(name)
    p1, p2 = task.probe(), get_task(name).probe()
    assert isinstance(p1, ProbeSet)
    np.testing.assert_array_equal(p1.inputs, p2.inputs)
    np.testing.assert_array_equal(p1.targets, p2.targets)
    assert p1.inputs.shape[1:] == (task.n_steps, task.n_inputs)
    assert p1.targets.shape[1:] == (task.n_steps, task.n_outputs)
    for label in p1.labels.values():
        assert label.shape == (p1.inputs.shape[0],)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("flipflop", {"n_steps": 20, "n_bits": 2, "flip_prob": 0.1, "n_probe": 3, "probe_seed": 7}),
        ("sine", {"n_steps": 40, "omega_slope": 0.02, "omega_offset": 0.02, "n_probe": 4}),
        ("cdi", {"n_steps": 12, "n_contexts": 3, "noise_std": 0.5, "mu_max": 2.0, "n_probe_mu": 5}),
    ],
)
def test_config_round_trips_through_json(name, params):
    task = get_task(name, **params)
    config = json.loads(json.dumps(task.config()))
    assert config["name"] == name
    assert config["params"] == {**get_task(name).config()["params"], **params}
    rebuilt = get_task(config["name"], **config["params"])
    assert rebuilt.config() == task.config()
    assert repr(rebuilt) == repr(task)
    a, b = task.sample(3, rng(5)), rebuilt.sample(3, rng(5))
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(task.probe().inputs, rebuilt.probe().inputs)
    assert task.n_steps == params["n_steps"]


def test_defaults_are_the_papers():
    assert get_task("flipflop").config()["params"] == {
        "n_bits": 3, "n_steps": 100, "flip_prob": 0.05, "n_probe": 10, "probe_seed": 0,
    }  # fmt: skip
    sine = get_task("sine")
    assert (sine.n_steps, sine.omega_slope, sine.omega_offset) == (500, 0.04, 0.01)
    cdi = get_task("cdi")
    assert (cdi.n_contexts, cdi.n_steps, cdi.noise_std, cdi.mu_max) == (2, 30, 1.0, 1.0)
    assert (cdi.n_inputs, cdi.n_outputs) == (4, 1)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("flipflop", {"n_steps": 0}, "n_steps must be an integer >= 1, got 0"),
        ("flipflop", {"flip_prob": 1.5}, r"flip_prob must be a number in \[0.0, 1.0\], got 1.5"),
        ("sine", {"n_probe": 1}, "n_probe must be an integer >= 2"),
        ("cdi", {"n_steps": 2.5}, "n_steps must be an integer >= 1, got 2.5"),
        ("cdi", {"noise_std": "loud"}, "noise_std must be a number"),
    ],
)
def test_bad_parameters_give_one_line_errors(name, params, message):
    with pytest.raises(ValueError, match=message) as info:
        get_task(name, **params)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", TASKS)
def test_performance_of_the_targets_is_solved_and_of_zeros_is_not(name):
    task = get_task(name)
    batch = task.sample(16, rng(3))
    perfect = task.performance(batch.targets, batch)
    assert task.solved(perfect)
    assert not task.solved(task.performance(np.zeros_like(batch.targets), batch))
    with pytest.raises(ValueError, match="outputs have shape"):
        task.performance(batch.targets[:, :-1], batch)


# -- flip-flop --------------------------------------------------------------------------------


def test_flipflop_targets_hold_the_last_pulse():
    task = FlipFlop()
    batch = task.sample(64, rng(1))
    x, y = batch.inputs, batch.targets
    assert set(np.unique(x)) <= {-1.0, 0.0, 1.0}
    assert np.all(x[:, 0] != 0)  # every channel gets a pulse at t = 1
    # written-out reference: walk forward, remember the last nonzero input
    held = np.zeros(x.shape[::2], dtype=np.float32)  # (batch, K)
    for t in range(task.n_steps):
        held = np.where(x[:, t] != 0, x[:, t], held)
        np.testing.assert_array_equal(y[:, t], held)
    assert set(np.unique(y)) == {-1.0, 1.0}


def test_flipflop_pulse_statistics():
    task = FlipFlop()
    x = task.sample(2000, rng(2)).inputs
    later = x[:, 1:]
    rate = np.mean(later != 0)
    assert abs(rate - 0.05) < 0.003  # 594,000 Bernoulli(0.05) draws: 5 sigma = 0.0014
    assert abs(np.mean(later[later != 0] > 0) - 0.5) < 0.01
    assert abs(np.mean(x[:, 0] > 0) - 0.5) < 0.03
    # channels are independent: joint pulse rate is the product
    both = np.mean((later[..., 0] != 0) & (later[..., 1] != 0))
    assert abs(both - rate**2) < 0.001


def test_flipflop_sign_accuracy_counts_steps_with_every_output_right():
    task = FlipFlop(n_steps=10, n_bits=3)
    batch = task.sample(2, rng(0))
    out = batch.targets.copy()
    assert task.performance(out, batch) == 1.0
    out[0, 3, 1] *= -1  # one wrong output at one step: that step is wrong
    assert task.performance(out, batch) == pytest.approx(19 / 20)
    out[0, 3, 2] *= -1  # a second wrong output at the same step: still one wrong step
    assert task.performance(out, batch) == pytest.approx(19 / 20)
    out[1, 0, 0] = 0.0  # an output of exactly zero has no sign: wrong
    assert task.performance(out, batch) == pytest.approx(18 / 20)
    out = 0.01 * batch.targets  # the magnitude does not matter, only the sign
    assert task.performance(out, batch) == 1.0
    assert task.solved(0.98)
    assert not task.solved(0.979)


def test_flipflop_probe_and_fixed_point_conditions():
    task = FlipFlop()
    probe = task.probe()
    assert probe.inputs.shape == (10, 100, 3)
    assert probe.labels == {}
    np.testing.assert_array_equal(probe.targets, FlipFlop.hold_last_pulse(probe.inputs))
    other = FlipFlop(probe_seed=1).probe()
    assert not np.array_equal(probe.inputs, other.inputs)
    fpc = task.fixed_point_conditions()
    np.testing.assert_array_equal(fpc.inputs, np.zeros((1, 3), dtype=np.float32))


# -- sine ------------------------------------------------------------------------------------


def _frequency_from_zero_crossings(y: np.ndarray) -> float:
    """Cycles per step from the sign changes of a sampled sinusoid (two per cycle)."""
    s = np.sign(y)
    idx = np.flatnonzero(s[:-1] * s[1:] < 0)
    # interpolate crossing times linearly between samples; time of sample i is i + 1
    t = idx + 1 + y[idx] / (y[idx] - y[idx + 1])
    return float((len(t) - 1) / (2.0 * (t[-1] - t[0])))


def test_sine_frequency_from_zero_crossings_matches_the_cue():
    task = SineWave()
    batch = task.sample(32, rng(4))
    x = batch.inputs[:, 0, 0].astype(np.float64)
    assert np.all(batch.inputs == batch.inputs[:, :1])  # static input
    assert np.all((x >= 0) & (x < 1))
    for xi, yi in zip(x, batch.targets[..., 0].astype(np.float64), strict=True):
        omega = 0.04 * xi + 0.01
        assert _frequency_from_zero_crossings(yi) == pytest.approx(omega, rel=2e-3)
        # unit amplitude, starts at t = 1 (not t = 0): y_1 = sin(2 pi omega)
        assert yi[0] == pytest.approx(np.sin(2 * np.pi * omega), abs=1e-6)
        assert np.abs(yi).max() == pytest.approx(1.0, abs=2e-3)


def test_sine_probe_spans_the_frequency_range():
    task = SineWave()
    probe = task.probe()
    omega = probe.labels["omega"]
    np.testing.assert_allclose(omega, np.linspace(0.01, 0.05, 8))
    for om, yi in zip(omega, probe.targets[..., 0].astype(np.float64), strict=True):
        assert _frequency_from_zero_crossings(yi) == pytest.approx(om, rel=2e-3)
    fpc = task.fixed_point_conditions()
    np.testing.assert_array_equal(fpc.inputs, probe.inputs[:, 0, :])
    np.testing.assert_array_equal(fpc.labels["omega"], omega)


def test_sine_normalised_mse():
    task = SineWave(n_steps=200)
    batch = task.sample(8, rng(0))
    assert task.performance(batch.targets, batch) == pytest.approx(0.0, abs=1e-12)
    assert task.performance(np.zeros_like(batch.targets), batch) == pytest.approx(1.0, abs=0.02)
    half = 0.5 * batch.targets  # residual is half the target: NMSE 0.25
    assert task.performance(half, batch) == pytest.approx(0.25, abs=0.01)
    assert task.solved(0.1)
    assert not task.solved(0.11)


# -- context-dependent integration ----------------------------------------------------------


def test_cdi_target_is_the_running_sum_of_the_cued_stream_and_ignores_the_other():
    task = ContextDependentIntegration()
    batch = task.sample(256, rng(6))
    x, y = batch.inputs.astype(np.float64), batch.targets[..., 0].astype(np.float64)
    context = x[:, :, :2]
    assert np.all(context == context[:, :1])  # static
    assert np.all(context.sum(-1) == 1)  # one-hot
    cue = context[:, 0].argmax(-1)
    assert 0.4 < cue.mean() < 0.6
    streams = x[:, :, 2:]
    for b in range(256):
        running = 0.0
        for t in range(task.n_steps):
            running += streams[b, t, cue[b]]
            assert y[b, t] == pytest.approx(running, abs=1e-4)
    # changing the ignored stream leaves the target unchanged; changing the cued one does not
    rebuilt = task.trials(cue, streams.copy())
    altered = streams.copy()
    altered[np.arange(256), :, 1 - cue] += 5.0
    np.testing.assert_array_equal(task.trials(cue, altered).targets, rebuilt.targets)
    altered[np.arange(256), 10, cue] += 1.0  # a unit pulse moves the target by exactly 1
    diff = task.trials(cue, altered).targets[..., 0] - rebuilt.targets[..., 0]
    np.testing.assert_allclose(diff[:, 10:], 1.0, atol=1e-5)
    np.testing.assert_allclose(diff[:, :10], 0.0)


def test_cdi_noise_statistics():
    task = ContextDependentIntegration()
    x = task.sample(4000, rng(7)).inputs.astype(np.float64)[:, :, 2:]
    mu = x.mean(axis=1)  # per-trial mean of each stream (30 samples)
    residual = x - mu[:, None, :]
    assert residual.std() * np.sqrt(30 / 29) == pytest.approx(1.0, abs=0.01)
    # trial means are U(-1, 1) plus N(0, 1/30) sampling noise: variance 1/3 + 1/30
    assert mu.var() == pytest.approx(1 / 3 + 1 / 30, abs=0.02)
    assert abs(np.corrcoef(mu[:, 0], mu[:, 1])[0, 1]) < 0.05


def test_cdi_probe_and_fixed_point_conditions():
    task = ContextDependentIntegration()
    probe = task.probe()
    assert probe.inputs.shape == (18, 30, 4)
    np.testing.assert_array_equal(probe.labels["context"], np.repeat([0, 1], 9))
    np.testing.assert_allclose(probe.labels["mu"], np.tile(np.linspace(-1, 1, 9), 2))
    for i in range(18):
        c, mu = probe.labels["context"][i], probe.labels["mu"][i]
        np.testing.assert_array_equal(probe.inputs[i, :, c], 1.0)
        np.testing.assert_allclose(probe.inputs[i, :, 2 + c], mu)  # cued stream: constant mu
        np.testing.assert_allclose(probe.inputs[i, :, 3 - c], -mu)  # ignored: constant -mu
        np.testing.assert_allclose(probe.targets[i, :, 0], mu * np.arange(1, 31), atol=1e-5)
    fpc = task.fixed_point_conditions()
    np.testing.assert_array_equal(fpc.inputs, [[1, 0, 0, 0], [0, 1, 0, 0]])
    np.testing.assert_array_equal(fpc.labels["context"], [0, 1])


def test_cdi_r2():
    task = ContextDependentIntegration()
    batch = task.sample(64, rng(8))
    y = batch.targets.astype(np.float64)
    assert task.performance(y, batch) == pytest.approx(1.0)
    assert task.performance(np.full_like(y, y.mean()), batch) == pytest.approx(0.0, abs=1e-9)
    assert task.performance(0.5 * y + 0.5 * y.mean(), batch) == pytest.approx(0.75, abs=1e-9)
    assert task.solved(0.9)
    assert not task.solved(0.89)
