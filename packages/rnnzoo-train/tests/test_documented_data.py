"""What the docs say the data holds, rebuilt from the docs' recipes alone (issue 10 §7).

docs/cells-and-tasks.md §2 (the flip-flop draws and probe, the scores) and docs/training.md
("Validation and test sets"): an independent re-implementation must get the same numbers.
"""

import zlib

import numpy as np
import pytest

from rnnzoo_train.tasks import get_task
from rnnzoo_train.training.engine import evaluation_set


def _flipflop_from_the_docs(batch, n_steps, rng, flip_prob=0.05, n_bits=3):
    pulse = rng.random((batch, n_steps, n_bits)) < flip_prob
    pulse[:, 0] = True  # the uniforms of t = 1 are drawn and unused
    sign = np.where(rng.random((batch, n_steps, n_bits)) < 0.5, -1.0, 1.0)
    return np.where(pulse, sign, 0.0)


@pytest.mark.parametrize("n_steps", [100, 20])
def test_flipflop_probe_is_default_rng_0_pulses_then_signs(n_steps):
    probe = get_task("flipflop", n_steps=n_steps).probe()
    want = _flipflop_from_the_docs(10, n_steps, np.random.default_rng(0))
    np.testing.assert_array_equal(probe.inputs, want.astype(np.float32))


def test_a_shorter_flipflop_probe_is_another_draw_not_a_prefix():
    long, short = get_task("flipflop").probe(), get_task("flipflop", n_steps=20).probe()
    assert not np.array_equal(long.inputs[:, :20], short.inputs)


@pytest.mark.parametrize("name", ["flipflop", "sine", "cdi"])
@pytest.mark.parametrize(("split", "key"), [("validation", 1), ("test", 2)])
def test_evaluation_sets_are_seeded_as_documented(name, split, key):
    task = get_task(name)
    seeds = np.random.SeedSequence(20191208, spawn_key=(zlib.crc32(name.encode("utf-8")), key))
    want = task.sample(256, np.random.default_rng(seeds))
    got = evaluation_set(task, split, 256)
    np.testing.assert_array_equal(got.inputs, want.inputs)
    np.testing.assert_array_equal(got.targets, want.targets)
    assert zlib.crc32(b"flipflop") == 75067990  # the example in docs/training.md
    # a smaller set is the first trials of a larger one only for sine (one cue per trial)
    prefix = np.array_equal(evaluation_set(task, split, 16).inputs, got.inputs[:16])
    assert prefix == (name == "sine")


def test_normalised_mse_uses_one_mean_over_every_masked_entry():
    task = get_task("sine", n_steps=50)
    batch = task.sample(6, np.random.default_rng(3))
    t = batch.targets.astype(np.float64)
    y = t + 0.2 * np.random.default_rng(4).normal(size=t.shape)
    want = ((y - t) ** 2).sum() / ((t - t.mean()) ** 2).sum()
    # 1 - explained variance: rounding of one subtraction from 1 (|x| <= 1: 1.1e-16)
    assert task.performance(y, batch) == pytest.approx(want, rel=0, abs=1e-15)
    # a constant output at that single mean scores exactly as badly as the mean: 1
    assert task.performance(np.full_like(t, t.mean()), batch) == pytest.approx(1.0, abs=1e-15)
    # not a per-trial or per-step mean: those outputs score below 1
    per_trial = np.broadcast_to(t.mean(axis=(1, 2), keepdims=True), t.shape)
    assert task.performance(per_trial, batch) < 1.0 - 1e-3


def test_r2_is_one_minus_the_same_ratio():
    task = get_task("cdi")
    batch = task.sample(6, np.random.default_rng(5))
    t = batch.targets.astype(np.float64)
    y = t + np.random.default_rng(6).normal(size=t.shape)
    ratio = ((y - t) ** 2).sum() / ((t - t.mean()) ** 2).sum()
    assert task.performance(y, batch) == pytest.approx(1.0 - ratio, rel=0, abs=1e-15)
