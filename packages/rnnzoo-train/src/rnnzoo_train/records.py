"""Plain records that travel between the trainer, the zoo store and the analyses.

These are the vocabulary of the writer interface (:mod:`rnnzoo_train.writer`). They hold
NumPy arrays and Python scalars only, so they pickle cheaply to Dask workers and do not
depend on torch. Change them only additively: the zoo store and other packages read them.

Naming (paper section 2.1): a *configuration* is one of the paper's
architecture x activation x units x L2 combinations; each configuration gets a random
hyper-parameter *search* (trials), then ``N`` *seeds* trained with the winning
hyper-parameters. Networks that share a cell type and width (and so array shapes) form a
*group*; one zoo group per (arch, activation, units).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Status = Literal["ok", "diverged", "failed", "pending"]
STATUSES: tuple[str, ...] = ("ok", "diverged", "failed", "pending")


@dataclass(frozen=True, order=True)
class Configuration:
    """One network configuration: architecture, activation, width and L2 penalty."""

    arch: str
    activation: str
    units: int
    l2: float

    @property
    def group(self) -> str:
        """Name of the zoo group holding this configuration (shared cell and shapes)."""
        return f"{self.arch}-{self.activation}-u{self.units}"

    @property
    def key(self) -> str:
        """Unique, readable key, e.g. ``gru-tanh-u64-l2_1e-04``."""
        return f"{self.group}-l2_{self.l2:.0e}"


@dataclass(frozen=True)
class HyperParameters:
    """Optimiser hyper-parameters searched per configuration (paper section 2.1).

    Attributes
    ----------
    clip : float
        Gradient-norm clipping threshold (search: log-uniform 0.1-10).
    lr : float
        Initial learning rate (search: 1e-5-0.1).
    decay : float
        Exponential learning-rate decay rate (search: 0.1-0.9); the trainer documents the
        number of iterations over which the rate is multiplied by ``decay``.
    momentum : float
        SGD momentum (search: 0-1).
    """

    clip: float
    lr: float
    decay: float
    momentum: float


@dataclass(frozen=True)
class NetworkSpec:
    """Everything a network is a pure function of (with the package version)."""

    task: str
    config: Configuration
    seed: int
    hparams: HyperParameters
    iterations: int
    batch_size: int = 64
    #: ``"seed"``: a network of the zoo; ``"trial"``: a hyper-parameter search trial
    role: Literal["seed", "trial"] = "seed"
    #: index of the search trial (``role == "trial"``), else -1
    trial: int = -1
    #: trial-length schedule (a curriculum over ``T``): ``((n_steps, iterations), ...)``
    #: stages trained one after another by the same network and optimiser, the learning
    #: rate decaying over all ``iterations`` (their sum); the last stage's ``n_steps`` is the
    #: task's. Empty: the task's own ``T`` throughout. See :func:`trial_length_stages`.
    schedule: tuple[tuple[int, int], ...] = ()

    @property
    def network_id(self) -> str:
        """Unique id within a task, e.g. ``gru-tanh-u64-l2_1e-04-s003``."""
        if self.role == "trial":
            return f"{self.config.key}-t{self.trial:02d}"
        return f"{self.config.key}-s{self.seed:03d}"


def trial_length_stages(spec: NetworkSpec, n_steps: int) -> tuple[tuple[int, int], ...]:
    """The ``(n_steps, iterations)`` stages ``spec`` trains through on a task of ``n_steps``.

    ``spec.schedule`` if it has one (checked: its iterations add up to ``spec.iterations``
    and its last stage is at ``n_steps``), else the single stage ``(n_steps, iterations)``.

    Raises
    ------
    ValueError
        If the schedule does not fit the spec or the task.
    """
    if not spec.schedule:
        return ((int(n_steps), int(spec.iterations)),)
    stages = tuple((int(t), int(k)) for t, k in spec.schedule)
    if any(t < 1 or k < 1 for t, k in stages):
        raise ValueError(
            f"network {spec.network_id}: every stage of the trial-length schedule "
            f"{list(stages)} needs n_steps >= 1 and iterations >= 1"
        )
    if sum(k for _, k in stages) != spec.iterations:
        raise ValueError(
            f"network {spec.network_id}: the trial-length schedule {list(stages)} has "
            f"{sum(k for _, k in stages)} iterations, the network {spec.iterations}"
        )
    if stages[-1][0] != n_steps:
        raise ValueError(
            f"network {spec.network_id}: the trial-length schedule ends at T = "
            f"{stages[-1][0]}, but the task's trials have T = {n_steps}"
        )
    return stages


@dataclass
class NetworkResult:
    """What training one network produced; the unit the zoo store writes.

    Arrays are float32 unless stated. ``hidden_*`` are readout-facing states ``h`` (the
    LSTM's ``h``, not ``c``) on the task's probe inputs, ``(probe, time, units)``.
    """

    spec: NetworkSpec
    status: Status
    params_initial: dict[str, np.ndarray]
    params_final: dict[str, np.ndarray]
    #: training loss logged every ``loss_every`` iterations, NaN after divergence
    loss_curve: np.ndarray
    loss_iterations: np.ndarray  # int, the iteration of each logged loss
    train_loss: float
    val_loss: float
    test_loss: float
    performance: float
    solved: bool
    hidden_trained: np.ndarray
    hidden_untrained: np.ndarray
    outputs_trained: np.ndarray  # (probe, time, n_outputs)
    last_finite_loss: float = float("nan")
    #: iteration at which the loss became NaN/inf (-1: never)
    diverged_at: int = -1
    message: str = ""
    train_seconds: float = float("nan")

    @property
    def network_id(self) -> str:
        return self.spec.network_id


@dataclass(frozen=True)
class SearchTrial:
    """One trial of a configuration's random hyper-parameter search, kept on record."""

    task: str
    config: Configuration
    trial: int
    seed: int
    hparams: HyperParameters
    iterations: int
    status: Status
    val_loss: float
    chosen: bool = False


@dataclass(frozen=True)
class TaskPlan:
    """The networks to generate for one task.

    Attributes
    ----------
    task : str
        Task name.
    task_config : dict
        ``Task.config()`` of the task the networks are trained on.
    preset : str
        Preset (or config-file) name the plan came from.
    configurations : tuple of Configuration
    seeds : tuple of int
        Seeds trained per configuration with the chosen hyper-parameters.
    iterations : int
        Training iterations per network.
    n_trials : int
        Random-search trials per configuration (0: hyper-parameters are fixed by the preset).
    search_iterations : int
        Iterations per search trial.
    loss_every : int
        Log the training loss every this many iterations.
    metadata : dict
        JSON-serialisable extras recorded in the zoo (e.g. departures from the paper).
    """

    task: str
    task_config: dict[str, Any]
    preset: str
    configurations: tuple[Configuration, ...]
    seeds: tuple[int, ...]
    iterations: int
    n_trials: int = 0
    search_iterations: int = 0
    batch_size: int = 64
    loss_every: int = 10
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def schedule(self) -> tuple[tuple[int, int], ...]:
        """The trial-length schedule of the plan's networks.

        ``metadata["trial_length_schedule"]`` as ``((n_steps, iterations), ...)``; empty: the
        task's own ``T`` throughout.
        """
        return tuple((int(t), int(k)) for t, k in self.metadata.get("trial_length_schedule", ()))

    def network_ids(self) -> list[str]:
        """Ids of every zoo network of the plan, in index order."""
        return [f"{c.key}-s{s:03d}" for c in self.configurations for s in self.seeds]

    @property
    def n_logged(self) -> int:
        """Length of every network's loss curve."""
        return self.iterations // self.loss_every + 1
