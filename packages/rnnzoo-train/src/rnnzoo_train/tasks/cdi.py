"""Context-dependent integration (paper section 2.2; Mante, Sussillo et al. 2013)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ._common import check_number, check_outputs, check_positive_int, explained_variance
from .base import FixedPointConditions, ProbeSet, Task, TaskBatch


class ContextDependentIntegration(Task):
    """Integrate the one noisy stream that a one-hot context cues; ignore the others.

    Definition (DESIGN.md section 2; time steps ``t = 1..T``): inputs are ``K`` static
    one-hot context channels (``inputs[..., :K]``) followed by ``K`` noise streams
    (``inputs[..., K:]``); stream ``k`` is drawn i.i.d. ``N(mu_k, noise_std^2)`` per step with
    ``mu_k ~ U(-mu_max, mu_max)`` per trial (paper: ``K = 2``, ``N(mu, 1)``, ``mu ~ U(-1, 1)``).
    The single output's target at step ``t`` is the plain running sum of the cued stream over
    steps ``1..t`` (no scaling: a unit pulse on the cued stream moves the target by exactly
    1, which Fig. 3f relies on). The context is uniform over the ``K`` channels. All target
    entries count.

    Parameters
    ----------
    n_contexts : int
        ``K``, the number of contexts and of noise streams (paper: 2).
    n_steps : int
        Trial length ``T`` (paper: 30).
    noise_std : float
        Standard deviation of each stream around its mean (paper: 1).
    mu_max : float
        Stream means are drawn from ``U(-mu_max, mu_max)`` (paper: 1).
    n_probe_mu : int
        Number of probe means per context, evenly spaced over ``[-mu_max, mu_max]`` (default
        9, including 0): ``K x 9`` probe trials, 540 hidden-state samples per network at
        ``T = 30``, enough to trace each context's line attractor (Fig. 3b) and more than
        twice the widest network's units.

    Notes
    -----
    Probe trials are noise-free: in context ``c`` with mean ``mu``, the cued stream is the
    constant ``mu`` and every other stream the constant ``-mu`` (conflicting evidence that
    must be ignored); the target is ``mu * t``. Labels ``context`` and ``mu``.

    Performance is ``R^2 = 1 - SS_res / SS_tot`` of the output against the target over all
    masked entries of the batch (higher is better); a network is solved when ``R^2 >= 0.9``.

    Fixed points are sought per context: the one-hot context input with all streams at 0
    (labels ``context``).
    """

    name: ClassVar[str] = "cdi"
    performance_name: ClassVar[str] = "r2"
    performance_threshold: ClassVar[float] = 0.9
    higher_is_better: ClassVar[bool] = True

    def __init__(
        self,
        n_contexts: int = 2,
        n_steps: int = 30,
        noise_std: float = 1.0,
        mu_max: float = 1.0,
        n_probe_mu: int = 9,
    ):
        self.n_contexts = check_positive_int("n_contexts", n_contexts)
        self.n_steps = check_positive_int("n_steps", n_steps)
        self.noise_std = check_number("noise_std", noise_std, 0.0, np.inf)
        self.mu_max = check_number("mu_max", mu_max, 0.0, np.inf)
        self.n_probe_mu = check_positive_int("n_probe_mu", n_probe_mu, minimum=2)
        self.n_inputs = 2 * self.n_contexts
        self.n_outputs = 1

    def trials(self, context: np.ndarray, streams: np.ndarray) -> TaskBatch:
        """Trials for given contexts ``(batch,)`` and noise streams ``(batch, T, K)``."""
        K = self.n_contexts
        context = np.asarray(context, dtype=np.int64)
        one_hot = np.eye(K)[context]  # (batch, K)
        contexts = np.broadcast_to(one_hot[:, None, :], (context.size, self.n_steps, K))
        inputs = np.concatenate([contexts, streams], axis=-1)
        cued = np.take_along_axis(streams, context[:, None, None], axis=-1)  # (batch, T, 1)
        targets = np.cumsum(cued, axis=1)
        return TaskBatch(
            inputs=inputs.astype(np.float32),
            targets=targets.astype(np.float32),
            mask=np.ones(targets.shape, dtype=bool),
        )

    def sample(self, batch_size: int, rng: np.random.Generator) -> TaskBatch:
        """Draw contexts, then means, then the noise from ``rng``."""
        B = check_positive_int("batch_size", batch_size)
        K = self.n_contexts
        context = rng.integers(0, K, size=B)
        mu = rng.uniform(-self.mu_max, self.mu_max, size=(B, K))
        noise = rng.standard_normal((B, self.n_steps, K))
        return self.trials(context, mu[:, None, :] + self.noise_std * noise)

    def probe_mu(self) -> np.ndarray:
        """The probe means, evenly spaced over ``[-mu_max, mu_max]``."""
        return np.linspace(-self.mu_max, self.mu_max, self.n_probe_mu)

    def probe(self) -> ProbeSet:
        """Noise-free trials for every (context, mu); labels ``context`` and ``mu``."""
        K = self.n_contexts
        mu_values = self.probe_mu()
        context = np.repeat(np.arange(K), mu_values.size)
        mu = np.tile(mu_values, K)
        levels = np.where(np.arange(K)[None, :] == context[:, None], mu[:, None], -mu[:, None])
        streams = np.broadcast_to(levels[:, None, :], (context.size, self.n_steps, K))
        batch = self.trials(context, streams)
        return ProbeSet(
            inputs=batch.inputs,
            targets=batch.targets,
            mask=batch.mask,
            labels={"context": context, "mu": mu},
        )

    def fixed_point_conditions(self) -> FixedPointConditions:
        """One condition per context: its one-hot input, streams at 0; labels ``context``."""
        K = self.n_contexts
        inputs = np.concatenate([np.eye(K), np.zeros((K, K))], axis=1).astype(np.float32)
        return FixedPointConditions(inputs=inputs, labels={"context": np.arange(K)})

    def performance(self, outputs: np.ndarray, batch: TaskBatch) -> float:
        """``R^2`` of the outputs against the targets."""
        outputs = check_outputs(outputs, batch.targets)
        return explained_variance(outputs, batch.targets, batch.mask)

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "params": {
                "n_contexts": self.n_contexts,
                "n_steps": self.n_steps,
                "noise_std": self.noise_std,
                "mu_max": self.mu_max,
                "n_probe_mu": self.n_probe_mu,
            },
        }
