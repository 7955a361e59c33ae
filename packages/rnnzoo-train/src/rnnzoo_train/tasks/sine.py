"""The frequency-cued sine wave (paper section 2.2; Sussillo and Barak 2013)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ._common import check_number, check_outputs, check_positive_int, explained_variance
from .base import FixedPointConditions, ProbeSet, Task, TaskBatch


class SineWave(Task):
    """Frequency-cued sine wave: a static input sets the frequency of the output's oscillation.

    Definition (DESIGN.md section 2; time steps ``t = 1..T``): one input channel holds
    ``x ~ U(0, 1)`` for the whole trial; the target is ``sin(2 pi omega t)`` with
    ``omega = omega_slope * x + omega_offset`` in cycles per step (paper: ``0.04 x + 0.01``,
    so 0.01-0.05 cycles per step, 5-25 cycles in ``T = 500`` steps). The paper's
    ``dt = 0.01`` only labels the 500 steps as 5 s. All target entries count.

    Parameters
    ----------
    n_steps : int
        Trial length ``T`` (paper: 500).
    omega_slope, omega_offset : float
        ``omega = omega_slope * x + omega_offset`` (paper: 0.04 and 0.01).
    n_probe : int
        Number of probe frequencies: ``x`` evenly spaced over ``[0, 1]`` endpoints included
        (default 8, i.e. ``omega = 0.01, 0.0157, ..., 0.05``; 4,000 hidden-state samples per
        network at ``T = 500``, one fixed point sought per probe frequency as in Fig. 2d).

    Notes
    -----
    Performance is the *normalised MSE*: ``sum (y - target)^2 / sum (target - mean)^2``
    over all masked entries of the batch (0 is perfect, 1 is no better than the mean; lower
    is better). A network is solved when it is ``<= 0.1`` (90% of the target variance
    explained over whole trials, which needs the right frequency *and* phase throughout).

    Fixed points are sought at each probe frequency's static input ``x`` (labels ``omega``).
    """

    name: ClassVar[str] = "sine"
    performance_name: ClassVar[str] = "normalised_mse"
    performance_threshold: ClassVar[float] = 0.1
    higher_is_better: ClassVar[bool] = False

    def __init__(
        self,
        n_steps: int = 500,
        omega_slope: float = 0.04,
        omega_offset: float = 0.01,
        n_probe: int = 8,
    ):
        self.n_steps = check_positive_int("n_steps", n_steps)
        self.omega_slope = check_number("omega_slope", omega_slope, 0.0, 0.5)
        self.omega_offset = check_number("omega_offset", omega_offset, 0.0, 0.5)
        self.n_probe = check_positive_int("n_probe", n_probe, minimum=2)
        self.n_inputs = 1
        self.n_outputs = 1

    def omega(self, x: np.ndarray) -> np.ndarray:
        """Frequency in cycles per step cued by input value(s) ``x``."""
        return self.omega_slope * np.asarray(x, dtype=np.float64) + self.omega_offset

    def trials(self, x: np.ndarray) -> TaskBatch:
        """The trials cued by the given input values ``x`` ``(batch,)``."""
        x = np.asarray(x, dtype=np.float64)
        t = np.arange(1, self.n_steps + 1, dtype=np.float64)
        targets = np.sin(2.0 * np.pi * self.omega(x)[:, None] * t[None, :])[..., None]
        inputs = np.broadcast_to(x[:, None, None], (x.size, self.n_steps, 1))
        return TaskBatch(
            inputs=np.ascontiguousarray(inputs, dtype=np.float32),
            targets=targets.astype(np.float32),
            mask=np.ones(targets.shape, dtype=bool),
        )

    def sample(self, batch_size: int, rng: np.random.Generator) -> TaskBatch:
        """Draw ``batch_size`` cue values ``x ~ U(0, 1)`` from ``rng``."""
        return self.trials(rng.random(check_positive_int("batch_size", batch_size)))

    def probe_x(self) -> np.ndarray:
        """The probe set's static inputs, evenly spaced over ``[0, 1]``."""
        return np.linspace(0.0, 1.0, self.n_probe)

    def probe(self) -> ProbeSet:
        """One trial per probe frequency; labels ``omega`` (cycles per step)."""
        x = self.probe_x()
        batch = self.trials(x)
        return ProbeSet(
            inputs=batch.inputs,
            targets=batch.targets,
            mask=batch.mask,
            labels={"omega": self.omega(x)},
        )

    def fixed_point_conditions(self) -> FixedPointConditions:
        """One condition per probe frequency: the static input ``x``; labels ``omega``."""
        x = self.probe_x()
        return FixedPointConditions(
            inputs=x[:, None].astype(np.float32), labels={"omega": self.omega(x)}
        )

    def performance(self, outputs: np.ndarray, batch: TaskBatch) -> float:
        """Normalised MSE of the outputs (lower is better)."""
        outputs = check_outputs(outputs, batch.targets)
        return 1.0 - explained_variance(outputs, batch.targets, batch.mask)

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "params": {
                "n_steps": self.n_steps,
                "omega_slope": self.omega_slope,
                "omega_offset": self.omega_offset,
                "n_probe": self.n_probe,
            },
        }
