"""A task not in the paper: head-direction (angular-velocity) integration.

Animals keep track of which way they face by integrating their angular velocity: the
head-direction cells of the rodent thalamus and the fly's ellipsoid body hold the heading
as a bump on a ring attractor (Skaggs et al. 1995; Seelig and Jayaraman 2015), and RNNs
trained to integrate angular velocity grow one (Cueva and Wei 2018; Cueva et al. 2020).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from rnnzoo_train.tasks import FixedPointConditions, ProbeSet, Task, TaskBatch

__all__ = ["HeadDirection"]


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _positive_float(name: str, value: object) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        out = float("nan")
    if not (0.0 < out < np.inf):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return out


class HeadDirection(Task):
    """Integrate angular velocity into a heading, reported as ``(cos θ, sin θ)``.

    Definition (time steps ``t = 1..T``): three input channels. Channel 0 is the angular
    velocity ``v_t ~ N(0, velocity_std²)`` i.i.d. per step (radians per step); channels 1
    and 2 carry the initial heading as ``(cos θ₀, sin θ₀)`` at ``t = 1`` only (zero
    afterwards), ``θ₀ ~ U(0, 2π)``. The two outputs' targets are ``(cos θ_t, sin θ_t)``
    with ``θ_t = θ₀ + Σ_{s ≤ t} v_s``. All target entries count.

    Parameters
    ----------
    n_steps : int
        Trial length ``T`` (default 50).
    velocity_std : float
        Standard deviation of the angular velocity per step (default 0.1 rad: the heading
        drifts by about ``0.1 √T`` radians over a trial).
    n_probe : int
        Number of probe headings ``θ₀``, evenly spaced over the circle (default 8).

    Notes
    -----
    Probe set: for each probe heading, one trial that holds it (``v = 0``) and one that
    turns at the constant velocity ``2π / T`` (a full turn per trial); labels ``heading0``
    and ``velocity``. Performance is the mean absolute heading error ``|wrap(φ_t − θ_t)|``
    of the decoded heading ``φ_t = atan2(y₂, y₁)`` over all steps (radians; lower is
    better); a network is solved when it is below 0.25 rad (14°).

    Fixed points are sought at zero input (one condition): an integrator must hold any
    heading when the velocity is zero, so its fixed points should form a ring.
    """

    name: ClassVar[str] = "head_direction"
    performance_name: ClassVar[str] = "heading_error"
    performance_threshold: ClassVar[float] = 0.25
    higher_is_better: ClassVar[bool] = False

    def __init__(self, n_steps: int = 50, velocity_std: float = 0.1, n_probe: int = 8):
        self.n_steps = _positive_int("n_steps", n_steps)
        self.velocity_std = _positive_float("velocity_std", velocity_std)
        self.n_probe = _positive_int("n_probe", n_probe, minimum=3)
        self.n_inputs = 3
        self.n_outputs = 2

    def trials(self, heading0: np.ndarray, velocity: np.ndarray) -> TaskBatch:
        """Trials for initial headings ``(batch,)`` and velocities ``(batch, T)``."""
        heading0 = np.asarray(heading0, dtype=np.float64)
        velocity = np.asarray(velocity, dtype=np.float64)
        B, T = velocity.shape
        inputs = np.zeros((B, T, 3))
        inputs[:, :, 0] = velocity
        inputs[:, 0, 1] = np.cos(heading0)
        inputs[:, 0, 2] = np.sin(heading0)
        theta = heading0[:, None] + np.cumsum(velocity, axis=1)
        targets = np.stack([np.cos(theta), np.sin(theta)], axis=-1)
        return TaskBatch(
            inputs=inputs.astype(np.float32),
            targets=targets.astype(np.float32),
            mask=np.ones(targets.shape, dtype=bool),
        )

    def sample(self, batch_size: int, rng: np.random.Generator) -> TaskBatch:
        """Draw the initial headings, then the velocities, from ``rng``."""
        B = _positive_int("batch_size", batch_size)
        heading0 = rng.uniform(0.0, 2 * np.pi, size=B)
        velocity = self.velocity_std * rng.standard_normal((B, self.n_steps))
        return self.trials(heading0, velocity)

    def probe(self) -> ProbeSet:
        """Hold and turn trials from ``n_probe`` headings; labels ``heading0``, ``velocity``."""
        heading0 = np.tile(np.arange(self.n_probe) * 2 * np.pi / self.n_probe, 2)
        turn = 2 * np.pi / self.n_steps
        speed = np.repeat([0.0, turn], self.n_probe)
        batch = self.trials(heading0, np.repeat(speed[:, None], self.n_steps, axis=1))
        return ProbeSet(
            inputs=batch.inputs,
            targets=batch.targets,
            mask=batch.mask,
            labels={"heading0": heading0, "velocity": speed},
        )

    def fixed_point_conditions(self) -> FixedPointConditions:
        """Zero input (one condition, no labels)."""
        return FixedPointConditions(inputs=np.zeros((1, 3), dtype=np.float32))

    def performance(self, outputs: np.ndarray, batch: TaskBatch) -> float:
        """Mean absolute heading error (radians) of the decoded heading."""
        outputs = np.asarray(outputs, dtype=np.float64)
        if outputs.shape != batch.targets.shape:
            raise ValueError(
                f"outputs have shape {outputs.shape} but the batch's targets have shape "
                f"{batch.targets.shape}"
            )
        decoded = np.arctan2(outputs[..., 1], outputs[..., 0])
        target = np.arctan2(batch.targets[..., 1], batch.targets[..., 0])
        error = np.angle(np.exp(1j * (decoded - target)))
        return float(np.abs(error).mean())

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "params": {
                "n_steps": self.n_steps,
                "velocity_std": self.velocity_std,
                "n_probe": self.n_probe,
            },
        }
