"""Training: SGD with momentum, decay, clipping, L2 against a plain autograd reference;
divergence handling; what a NetworkResult holds."""

import math

import numpy as np
import pytest
import torch

from rnnzoo_train.cells import get_cell, unsqueeze_params
from rnnzoo_train.records import Configuration, HyperParameters, NetworkSpec
from rnnzoo_train.tasks import get_task
from rnnzoo_train.training import exponential_decay, train_network, train_population
from rnnzoo_train.training.seeding import network_streams

TASK = get_task("flipflop", n_steps=15)
HP = HyperParameters(clip=0.5, lr=0.2, decay=0.3, momentum=0.9)


def spec(arch="gru", act="tanh", seed=0, hp=HP, iterations=12, l2=1e-3, units=8):
    return NetworkSpec("flipflop", Configuration(arch, act, units, l2), seed, hp, iterations, 16)


def reference_training(s: NetworkSpec, task):
    """The paper's procedure written plainly: autograd through Cell.step, torch ops only."""
    cell = get_cell(s.config.arch, s.config.activation, s.config.units, task.n_inputs,
                    task.n_outputs)  # fmt: skip
    gen, rng = network_streams(s)
    params = {
        k: v.clone().requires_grad_() for k, v in unsqueeze_params(cell.init_params(gen)).items()
    }
    velocity = {k: torch.zeros_like(v) for k, v in params.items()}
    losses = []
    for k in range(s.iterations):
        batch = task.sample(s.batch_size, rng)
        x = torch.from_numpy(batch.inputs)[None]
        y_true = torch.from_numpy(batch.targets)[None]
        mask = torch.from_numpy(batch.mask)[None].float()
        h = cell.initial_state(1, s.batch_size)
        outs = []
        for t in range(task.n_steps):
            h = cell.step(params, h, x[:, :, t])
            outs.append(cell.readout(params, h))
        y = torch.stack(outs, 2)
        mse = (((y - y_true) ** 2) * mask).sum() / mask.sum()
        losses.append(mse.item())
        grads = torch.autograd.grad(mse, list(params.values()))
        grads = dict(zip(params, grads, strict=True))
        with torch.no_grad():
            for name in ("W_x", "W_h", "W_out"):
                grads[name] = grads[name] + 2 * s.config.l2 * params[name]
            norm = torch.sqrt(sum((g**2).sum() for g in grads.values()))
            scale = min(1.0, s.hparams.clip / norm.item())
            lr = s.hparams.lr * s.hparams.decay ** (k / s.iterations)
            for name, p in params.items():
                velocity[name] = s.hparams.momentum * velocity[name] + scale * grads[name]
                p -= lr * velocity[name]
    return {k: v.detach()[0].numpy() for k, v in params.items()}, losses


@pytest.mark.parametrize("backend", [None, "autograd"])  # autograd: the GPU code path
@pytest.mark.parametrize("arch", ["vanilla", "ugrnn", "gru", "lstm"])
def test_training_matches_plain_autograd_reference(arch, backend):
    s = spec(arch=arch, act="relu" if arch == "ugrnn" else "tanh")
    result = train_network(s, TASK, loss_every=1, eval_trials=8, backend=backend)
    ref_params, ref_losses = reference_training(s, TASK)
    assert result.status == "ok"
    np.testing.assert_allclose(result.loss_curve[:-1], ref_losses, rtol=1e-5, atol=1e-6)
    for name, ref in ref_params.items():
        np.testing.assert_allclose(result.params_final[name], ref, rtol=0, atol=2e-5, err_msg=name)
    # training moved the weights; the initial weights are kept
    assert not np.allclose(result.params_initial["W_h"], result.params_final["W_h"])


def test_clipping_is_active_in_the_reference_comparison():
    """With a tiny clip the update is bounded by lr * clip (per step, no momentum)."""
    hp = HyperParameters(clip=1e-3, lr=0.1, decay=1.0, momentum=0.0)
    s = spec(hp=hp, iterations=1)
    r = train_network(s, TASK, eval_trials=8)
    step = np.sqrt(
        sum(((r.params_final[k] - r.params_initial[k]) ** 2).sum() for k in r.params_final)
    )
    assert step == pytest.approx(0.1 * 1e-3, rel=1e-3)


def test_exponential_decay_schedule():
    lr = exponential_decay(torch.tensor([0.1, 0.01]), torch.tensor([0.5, 0.2]), 50, 100)
    torch.testing.assert_close(lr, torch.tensor([0.1 * 0.5**0.5, 0.01 * 0.2**0.5]))
    assert exponential_decay(
        torch.tensor([0.3]), torch.tensor([0.1]), 0, 10
    ).item() == pytest.approx(0.3)


def test_training_reduces_the_loss():
    s = spec(iterations=60, hp=HyperParameters(clip=1.0, lr=0.2, decay=0.5, momentum=0.9))
    r = train_network(s, TASK, loss_every=10, eval_trials=32)
    assert r.loss_curve[-1] < 0.7 * r.loss_curve[0]
    assert r.test_loss < 0.8


@pytest.mark.parametrize("backend", [None, "autograd"])
def test_divergence_freezes_one_network_and_spares_the_others(backend):
    bad = HyperParameters(clip=1e9, lr=1e6, decay=1.0, momentum=0.9)
    good = [spec(arch="vanilla", act="relu", seed=s, iterations=20) for s in (1, 2)]
    diverging = spec(arch="vanilla", act="relu", seed=3, hp=bad, iterations=20)
    kw = {"loss_every": 1, "eval_trials": 8, "backend": backend}
    results = train_population([good[0], diverging, good[1]], TASK, **kw)
    r = results[1]
    assert r.status == "diverged"
    assert 0 <= r.diverged_at < 20
    assert math.isfinite(r.last_finite_loss)
    assert "NaN/inf" in r.message
    assert np.isnan(r.loss_curve[r.diverged_at :]).all()
    assert np.isfinite(r.loss_curve[: r.diverged_at]).all()
    assert r.last_finite_loss == pytest.approx(float(r.loss_curve[r.diverged_at - 1]), rel=1e-6)
    assert not r.solved
    for p in r.params_final.values():  # frozen before the non-finite update
        assert np.isfinite(p).all()
    for g, res in zip(good, (results[0], results[2]), strict=True):
        alone = train_network(g, TASK, **kw)
        assert res.status == "ok"
        for name in alone.params_final:
            np.testing.assert_array_equal(res.params_final[name], alone.params_final[name])


def test_result_contents():
    s = spec(arch="lstm", iterations=10)
    r = train_network(s, TASK, loss_every=5, eval_trials=8)
    probe = TASK.probe()
    n_probe, T = probe.inputs.shape[:2]
    assert r.hidden_trained.shape == (n_probe, T, 8)  # h only, not the LSTM's c
    assert r.hidden_untrained.shape == (n_probe, T, 8)
    assert r.outputs_trained.shape == (n_probe, T, TASK.n_outputs)
    assert list(r.loss_iterations) == [0, 5, 10]
    assert r.loss_curve.shape == (3,)
    assert r.train_loss == pytest.approx(float(r.loss_curve[-1]))
    assert set(r.params_final) == set(get_cell("lstm", "tanh", 8, 3, 3).param_shapes())
    assert 0.0 <= r.performance <= 1.0
    assert r.solved == TASK.solved(r.performance)
    assert r.train_seconds > 0
    assert not np.array_equal(r.hidden_trained, r.hidden_untrained)


def test_population_must_share_shapes():
    with pytest.raises(ValueError, match="cannot share a population"):
        train_population([spec(units=8), spec(units=9, seed=1)], TASK)
    with pytest.raises(ValueError, match="duplicate"):
        train_population([spec(), spec()], TASK)


def test_demo_hyper_parameters_solve_cdi_quickly():
    """End to end: SGD with the demo's cdi settings takes a small GRU past the R² threshold."""
    from rnnzoo_train.presets import get_preset

    demo = get_preset("demo")
    task = get_task("cdi")
    config = Configuration("gru", "tanh", 16, 1e-4)
    hp = demo.fixed_hparams(config, "cdi")
    specs = [NetworkSpec("cdi", config, s, hp, 300) for s in range(2)]
    for r in train_population(specs, task, eval_trials=64):
        assert r.status == "ok"
        assert r.solved, r.performance
        assert r.performance >= task.performance_threshold


def test_training_flushes_subnormal_numbers_and_restores_the_mode_after():
    """Subnormal float32 numbers cost a microcode assist per operation on Intel CPUs: the
    demo's sine relu networks (T = 500) trained up to 2.6x slower with them. Training runs
    with them flushed to zero, and leaves the thread's mode as it found it (off)."""
    from rnnzoo_train.training.engine import denormals_flushed

    tiny = torch.tensor([1e-39], dtype=torch.float32)  # subnormal: below 1.18e-38
    assert float(tiny * 1.0) != 0.0
    with denormals_flushed() as supported:
        if not supported:
            pytest.skip("this CPU has no flush-to-zero mode")
        assert float(tiny * 1.0) == 0.0
    seen = []

    def callback(k, iterations, losses):
        seen.append(float(tiny * 1.0))

    train_population([spec(iterations=4)], TASK, loss_every=1, callback=callback, eval_trials=8)
    assert len(seen) == 5
    assert all(v == 0.0 for v in seen)  # flushed during training
    assert float(tiny * 1.0) != 0.0  # and not after
