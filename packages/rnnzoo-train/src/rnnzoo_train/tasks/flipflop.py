"""The K-bit flip-flop (paper section 2.2; Sussillo and Barak 2013)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ._common import check_number, check_outputs, check_positive_int
from .base import FixedPointConditions, ProbeSet, Task, TaskBatch


class FlipFlop(Task):
    """K-bit flip-flop: each output remembers the sign of the last pulse on its input.

    Definition (DESIGN.md section 2; time steps ``t = 1..T``): every input channel ``k`` gets a
    pulse of random sign (±1, equal odds) at ``t = 1``; at each later step each channel is
    independently ``±1`` (equal odds) with probability ``flip_prob`` and ``0`` otherwise. The
    target of output ``k`` at step ``t`` is the last nonzero value of input ``k`` at steps
    ``<= t`` (so a pulse at ``t`` sets the target at ``t`` itself). Because of the pulse at
    ``t = 1`` the target is always ±1. All target entries count (mask all ``True``).

    Parameters
    ----------
    n_bits : int
        Number ``K`` of input and output channels (paper: 3).
    n_steps : int
        Trial length ``T`` (paper: 100).
    flip_prob : float
        Probability of a pulse per channel and step after the first (paper: 0.05).
    n_probe : int
        Number of probe trials (default 10, i.e. 1,000 samples of the hidden state per
        network at ``T = 100``: several times the widest network's 256 units, as SVCCA and
        CKA need, while storing ``2 x 10 x 100 x N`` floats per network).
    probe_seed : int
        Seed of the probe trials (fixed, so every network sees the same probe inputs).

    Notes
    -----
    Performance is the *sign accuracy*: the fraction of (trial, step) pairs at which the signs
    of all ``K`` outputs equal the targets' (an output of exactly 0 counts as wrong), over all
    steps including those with a pulse. A network is solved when it is ``>= 0.98``: it holds
    all bits and flips within the pulse's own step at least 98% of the time.

    Fixed points are sought at zero input (all channels are pulse channels, so ``x* = 0``).
    """

    name: ClassVar[str] = "flipflop"
    performance_name: ClassVar[str] = "sign_accuracy"
    performance_threshold: ClassVar[float] = 0.98
    higher_is_better: ClassVar[bool] = True

    def __init__(
        self,
        n_bits: int = 3,
        n_steps: int = 100,
        flip_prob: float = 0.05,
        n_probe: int = 10,
        probe_seed: int = 0,
    ):
        self.n_bits = check_positive_int("n_bits", n_bits)
        self.n_steps = check_positive_int("n_steps", n_steps)
        self.flip_prob = check_number("flip_prob", flip_prob, 0.0, 1.0)
        self.n_probe = check_positive_int("n_probe", n_probe)
        self.probe_seed = check_positive_int("probe_seed", probe_seed, minimum=0)
        self.n_inputs = self.n_bits
        self.n_outputs = self.n_bits

    def sample(self, batch_size: int, rng: np.random.Generator) -> TaskBatch:
        """Draw ``batch_size`` trials from ``rng`` (uniforms for pulses, then signs)."""
        shape = (check_positive_int("batch_size", batch_size), self.n_steps, self.n_bits)
        pulse = rng.random(shape) < self.flip_prob
        pulse[:, 0] = True
        sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
        inputs = np.where(pulse, sign, 0.0)
        targets = self.hold_last_pulse(inputs)
        return TaskBatch(
            inputs=inputs.astype(np.float32),
            targets=targets.astype(np.float32),
            mask=np.ones(shape, dtype=bool),
        )

    @staticmethod
    def hold_last_pulse(inputs: np.ndarray) -> np.ndarray:
        """The last nonzero value of each channel up to each step, ``(batch, time, K)``."""
        steps = np.arange(inputs.shape[1])[None, :, None]
        last = np.maximum.accumulate(np.where(inputs != 0, steps, -1), axis=1)
        held = np.take_along_axis(inputs, np.maximum(last, 0), axis=1)
        return np.where(last >= 0, held, 0.0)

    def probe(self) -> ProbeSet:
        """``n_probe`` random flip-flop trials drawn with ``probe_seed``; no labels."""
        batch = self.sample(self.n_probe, np.random.default_rng(self.probe_seed))
        return ProbeSet(inputs=batch.inputs, targets=batch.targets, mask=batch.mask, labels={})

    def fixed_point_conditions(self) -> FixedPointConditions:
        """One condition: zero input."""
        return FixedPointConditions(inputs=np.zeros((1, self.n_inputs), dtype=np.float32))

    def performance(self, outputs: np.ndarray, batch: TaskBatch) -> float:
        """Sign accuracy: fraction of (trial, step) with every output's sign correct."""
        outputs = check_outputs(outputs, batch.targets)
        correct = (np.sign(outputs) == np.sign(batch.targets)) | ~batch.mask
        return float(np.mean(np.all(correct, axis=-1)))

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "params": {
                "n_bits": self.n_bits,
                "n_steps": self.n_steps,
                "flip_prob": self.flip_prob,
                "n_probe": self.n_probe,
                "probe_seed": self.probe_seed,
            },
        }
