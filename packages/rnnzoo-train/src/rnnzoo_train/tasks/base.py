"""The task interface shared by training, the zoo store and the dynamics analyses.

A task is a seeded generator of trials. Arrays are NumPy, batch-major:
``inputs`` ``(batch, time, n_inputs)``, ``targets`` and ``mask`` ``(batch, time, n_outputs)``.
Time step index ``t = 1..T`` of the paper is array index ``t - 1``.

Every task provides

- :meth:`Task.sample`: a batch of training/validation/test trials from a NumPy generator;
- :meth:`Task.probe`: one fixed, seeded probe set, identical for every network of a zoo, so
  hidden states are comparable sample by sample across networks;
- :meth:`Task.fixed_point_conditions`: the static inputs ``x*`` (time-varying channels set to
  zero) at which fixed points are sought;
- :meth:`Task.performance`: a task-level score of a network with a stated "solved" threshold;
- :meth:`Task.config`: every parameter as a JSON-serialisable dict, so that
  ``get_task(config["name"], **config["params"])`` rebuilds the identical task.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True)
class TaskBatch:
    """A batch of trials.

    Attributes
    ----------
    inputs : ndarray, shape (batch, time, n_inputs), float32
    targets : ndarray, shape (batch, time, n_outputs), float32
    mask : ndarray, shape (batch, time, n_outputs), bool
        Which target entries count in the loss (all ``True`` for the built-in tasks).
    """

    inputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class ProbeSet(TaskBatch):
    """The fixed probe inputs of a task, with per-trial labels.

    Attributes
    ----------
    labels : dict of str to ndarray, each shape (n_probe,)
        Coordinates of each probe trial, e.g. ``{"omega": ...}`` for the sine task or
        ``{"context": ...}`` for context-dependent integration. May be empty.
    """

    labels: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class FixedPointConditions:
    """Static inputs ``x*`` at which to look for fixed points.

    Attributes
    ----------
    inputs : ndarray, shape (n_conditions, n_inputs), float32
    labels : dict of str to ndarray, each shape (n_conditions,)
        e.g. ``{"omega": ...}`` (sine) or ``{"context": ...}`` (cdi); empty for flip-flop.
    """

    inputs: np.ndarray
    labels: dict[str, np.ndarray] = field(default_factory=dict)


class Task(ABC):
    """Base class of a task.

    Subclasses are registered under entry-point group ``rnnzoo_train.tasks`` (the built-ins
    too) and looked up by :attr:`name`. The task's own dynamics analyses, if any, are a
    plugin of rnnzoo-dynamics registered under ``rnnzoo_dynamics.task_analyses`` with the
    same name (``docs/plugins.md``); a task without one gets the generic analyses.

    Subclasses set the class attributes and implement the abstract methods. Constructor
    keyword arguments are the task's parameters (with the defaults of DESIGN.md section 2)
    and must all appear in :meth:`config`.
    """

    #: registry name, e.g. ``"flipflop"``
    name: ClassVar[str]
    #: name of the score returned by :meth:`performance`, e.g. ``"sign_accuracy"``
    performance_name: ClassVar[str]
    #: a network counts as solved when its score is
    #: ``>= threshold`` if :attr:`higher_is_better` else ``<= threshold``
    performance_threshold: ClassVar[float]
    higher_is_better: ClassVar[bool] = True

    n_inputs: int
    n_outputs: int
    n_steps: int

    @abstractmethod
    def sample(self, batch_size: int, rng: np.random.Generator) -> TaskBatch:
        """Draw ``batch_size`` independent trials using ``rng`` only."""

    @abstractmethod
    def probe(self) -> ProbeSet:
        """The task's fixed probe set (deterministic: same arrays on every call)."""

    @abstractmethod
    def fixed_point_conditions(self) -> FixedPointConditions:
        """The static inputs ``x*`` used by the fixed-point analyses."""

    @abstractmethod
    def performance(self, outputs: np.ndarray, batch: TaskBatch) -> float:
        """Task-level score of one network over a batch.

        Computed from the network's outputs ``(batch, time, n_outputs)``, e.g. the fraction of
        correct signs, a normalised MSE or R^2.
        """

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """``{"name": ..., "params": {...}}``, JSON-serialisable; rebuilds the task exactly."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.config()["params"].items())
        return f"{type(self).__name__}({params})"

    def solved(self, score: float | np.ndarray) -> bool | np.ndarray:
        """Whether a score meets :attr:`performance_threshold`."""
        score = np.asarray(score)
        out = (
            score >= self.performance_threshold
            if self.higher_is_better
            else (score <= self.performance_threshold)
        )
        return out if out.ndim else bool(out)
