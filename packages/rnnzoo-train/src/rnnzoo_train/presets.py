"""Presets (``tiny``, ``demo``, ``paper``) and config-file grids: what a zoo contains.

A :class:`Preset` names the configurations (architecture x activation x units x L2), the
seeds, the training length, the hyper-parameter search (or fixed hyper-parameters), the task
parameters and every departure from the paper (paper section 2.1). ``Preset.plan(task)``
turns it into the :class:`~rnnzoo_train.records.TaskPlan` that generation and the zoo store
use; the departures and the fixed hyper-parameters travel in ``TaskPlan.metadata``.

- ``paper``: 4 architectures x 2 activations x units (64, 128, 256) x L2 (1e-5 .. 1e-2) =
  96 configurations, 30 seeds, 20,000 iterations, batch 64, a random search per
  configuration. A cluster or GPU job.
- ``paper-core``: every network exactly as the paper trains it (64 units, 20,000
  iterations, batch 64, the tasks' own T, a 20-trial random search per configuration in the
  paper's ranges), one configuration (64 units, L2 1e-4) per cell type and
  :data:`PAPER_CORE_SEEDS` seeds: a workstation or Dask-cluster job
  (``rnnzoo-train generate --preset paper-core --dry-run`` prints its projected cost).
- ``demo``: all 3 tasks x 8 cell types, 5 seeds, fewer units and iterations and fixed
  hyper-parameters chosen by a recorded search (see :data:`DEMO_HPARAMS`), so that the whole
  ``nox -s demo`` pipeline runs in minutes on 2 cores and the networks still solve the tasks.
- ``tiny``: for tests; seconds per task.

A grid file (TOML) can override any subset of a preset: see :func:`load_grid` and
``docs/training.md``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rnnzoo_train.cells.catalog import (
    ACTIVATIONS,
    ARCHITECTURES,
    available_architectures,
    is_registered,
)
from rnnzoo_train.records import Configuration, HyperParameters, TaskPlan

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

#: the tasks of the paper, in the order generation runs them
PAPER_TASKS = ("flipflop", "sine", "cdi")

#: paper section 2.1 search ranges: (low, high, log-scale)
SEARCH_RANGES: dict[str, tuple[float, float, bool]] = {
    "clip": (0.1, 10.0, True),
    "lr": (1e-5, 0.1, True),
    "decay": (0.1, 0.9, False),
    "momentum": (0.0, 1.0, False),
}

#: a sensible default when a grid fixes hyper-parameters without saying which
DEFAULT_HPARAMS = HyperParameters(clip=1.0, lr=0.05, decay=0.3, momentum=0.95)


#: upper bounds no sensible grid reaches (the paper's values are far below them), so that a
#: typo such as ``units = 100000000`` is refused at once instead of failing hours later (or
#: filling the disk): units 4,096 is 16x the paper's widest network, 10 million iterations
#: 500x its training length
LIMITS: dict[str, int | float] = {
    "units": 4096,
    "iterations": 10_000_000,
    "search_iterations": 10_000_000,
    "loss_every": 10_000_000,
    "batch_size": 65_536,
    "eval_trials": 1_000_000,
    "unit_size": 100_000,
    "n_trials": 10_000,
    "seeds": 100_000,  # seeds per configuration
    "seed": 2**31 - 1,
    "l2": 1.0,
    "n_steps": 100_000,  # time steps of a task's trials
}


class PresetError(ValueError):
    """A preset or grid file is invalid (the message is one line saying what and how to fix)."""


@dataclass(frozen=True)
class Preset:
    """Everything that defines a zoo's networks, for every task.

    Attributes
    ----------
    name, description : str
    archs, activations : tuple of str
    units : tuple of int
    l2 : tuple of float
    seeds : tuple of int
        Seeds trained per configuration with the chosen hyper-parameters.
    iterations : int
        SGD iterations per network (paper: 20,000).
    batch_size : int
        Trials per SGD batch (paper: 64).
    n_trials : int
        Random-search trials per configuration; 0 fixes hyper-parameters (``hparams``).
    search_iterations : int
        Iterations per search trial.
    loss_every : int
        Training-loss logging interval.
    eval_trials : int
        Trials in each fixed validation and test set.
    unit_size : int
        Networks per work unit (one population); generation may lower it to fit memory.
    hparams : mapping
        Fixed hyper-parameters by key (see :meth:`fixed_hparams`), e.g. ``"default"``,
        ``"gru"``, ``"lstm-relu"``, ``"cdi"`` or ``"flipflop/vanilla-relu"``.
    task_params : mapping
        Task constructor parameters by task name (``get_task(name, **params)``).
    task_iterations : mapping
        Per-task override of ``iterations`` (and ``search_iterations``), by task name.
    task_curricula : mapping
        Per-task trial-length schedule (a curriculum over ``T``, Bengio et al. 2009), by
        task name: ``((n_steps, iterations), ...)`` stages with increasing ``n_steps``,
        trained one after another by the same network and optimiser, the learning rate
        decaying over the whole run. The last stage's ``n_steps`` is the task's ``T`` (where
        the networks are evaluated and their probe states recorded) and the stages'
        iterations add up to the task's iterations (search trials train the same schedule).
        A task's ``task_params`` ``n_steps`` and ``task_iterations``, if given, must agree.
    departures : tuple of str
        Every way this preset departs from the paper, recorded in the zoo.
    """

    name: str
    description: str
    archs: tuple[str, ...] = ARCHITECTURES
    activations: tuple[str, ...] = ("tanh", "relu")
    units: tuple[int, ...] = (64, 128, 256)
    l2: tuple[float, ...] = (1e-5, 1e-4, 1e-3, 1e-2)
    seeds: tuple[int, ...] = tuple(range(30))
    iterations: int = 20_000
    batch_size: int = 64
    n_trials: int = 20
    search_iterations: int = 20_000
    loss_every: int = 100
    eval_trials: int = 1024
    unit_size: int = 16
    tasks: tuple[str, ...] = PAPER_TASKS
    hparams: Mapping[str, HyperParameters] = field(default_factory=dict)
    task_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    task_iterations: Mapping[str, int] = field(default_factory=dict)
    task_curricula: Mapping[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    departures: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _validate(self)

    # -- derived ---------------------------------------------------------------------------
    def configurations(self) -> tuple[Configuration, ...]:
        """Every configuration, in plan order (arch, activation, units, L2)."""
        return tuple(
            Configuration(a, f, int(u), float(l2))
            for a in self.archs
            for f in self.activations
            for u in self.units
            for l2 in self.l2
        )

    def iterations_for(self, task: str) -> int:
        """Training iterations for ``task``.

        Its curriculum's total, else a per-task override, else :attr:`iterations`.
        """
        if task in self.task_curricula:
            return sum(int(k) for _, k in self.task_curricula[task])
        return int(self.task_iterations.get(task, self.iterations))

    def task_parameters(self, task: str) -> dict[str, Any]:
        """Constructor parameters of ``task``.

        :attr:`task_params`, with ``n_steps`` the last stage's of its curriculum if it has one.
        """
        params = dict(self.task_params.get(task, {}))
        if task in self.task_curricula:
            params["n_steps"] = int(self.task_curricula[task][-1][0])
        return params

    def fixed_hparams(self, config: Configuration, task: str | None = None) -> HyperParameters:
        """The fixed hyper-parameters of ``config`` on ``task`` (used when ``n_trials`` is 0).

        The most specific key of :attr:`hparams` wins: ``"task/arch-activation"``,
        ``"task/arch"``, ``"task"``, ``"arch-activation"``, ``"arch"``, ``"default"``.
        """
        cell_keys = (f"{config.arch}-{config.activation}", config.arch)
        keys = [f"{task}/{k}" for k in cell_keys] + [task] if task else []
        for key in (*keys, *cell_keys, "default"):
            if key in self.hparams:
                return self.hparams[key]
        return DEFAULT_HPARAMS

    def plan(self, task_name: str) -> TaskPlan:
        """The :class:`TaskPlan` of ``task_name`` (rebuilds the task to record its config)."""
        from rnnzoo_train.tasks import get_task

        task = get_task(task_name, **self.task_parameters(task_name))
        iterations = self.iterations_for(task_name)
        search_iterations = min(self.search_iterations, iterations) if self.n_trials else 0
        curriculum = self.task_curricula.get(task_name)
        if curriculum and self.n_trials:  # search trials train the same schedule
            search_iterations = iterations
        metadata: dict[str, Any] = {
            "preset_description": self.description,
            "departures_from_paper": list(self.departures),
            "eval_trials": self.eval_trials,
            "unit_size": self.unit_size,
            "lr_schedule": "lr0 * decay ** (k / iterations)",
            "optimiser": "SGD with momentum, global-norm clipping, L2 on weights (not biases)",
            "search_ranges": {k: list(v) for k, v in SEARCH_RANGES.items()},
        }
        if curriculum:
            metadata["trial_length_schedule"] = [[int(t), int(k)] for t, k in curriculum]
            metadata["lr_schedule"] += " (k and iterations over all stages of the schedule)"
        if not self.n_trials:
            metadata["fixed_hparams"] = {
                c.key: _hp_dict(self.fixed_hparams(c, task_name)) for c in self.configurations()
            }
        return TaskPlan(
            task=task_name,
            task_config=task.config(),
            preset=self.name,
            configurations=self.configurations(),
            seeds=tuple(int(s) for s in self.seeds),
            iterations=iterations,
            n_trials=self.n_trials,
            search_iterations=search_iterations,
            batch_size=self.batch_size,
            loss_every=self.loss_every,
            metadata=metadata,
        )

    def n_networks(self, tasks: tuple[str, ...] | None = None) -> int:
        """Zoo networks across ``tasks`` (default: the preset's tasks)."""
        return len(self.configurations()) * len(self.seeds) * len(tasks or self.tasks)

    def summary(self) -> str:
        """A few human-readable lines describing the preset."""
        search = (
            f"random search of {self.n_trials} trials x {self.search_iterations} iterations"
            if self.n_trials
            else "fixed hyper-parameters"
        )
        lines = [
            f"{self.name}: {self.description}",
            f"  {len(self.configurations())} configurations x {len(self.seeds)} seeds x "
            f"{len(self.tasks)} tasks = {self.n_networks()} networks",
            f"  archs {', '.join(self.archs)}; activations {', '.join(self.activations)}; "
            f"units {', '.join(map(str, self.units))}; l2 {', '.join(f'{x:g}' for x in self.l2)}",
            f"  {self.iterations} iterations (per task: {dict(self.task_iterations) or '-'}), "
            f"batch {self.batch_size}, {search}",
        ]
        for task, stages in self.task_curricula.items():
            steps = " -> ".join(f"T = {t} x {k}" for t, k in stages)
            lines.append(f"  {task}: trial-length schedule {steps} iterations")
        lines += [f"  departs from the paper: {d}" for d in self.departures]
        return "\n".join(lines)


def _hp_dict(hp: HyperParameters) -> dict[str, float]:
    return {"clip": hp.clip, "lr": hp.lr, "decay": hp.decay, "momentum": hp.momentum}


def _fail(where: str, message: str) -> PresetError:
    return PresetError(f"{where}: {message}")


def _validate(p: Preset) -> None:
    where = f"preset {p.name!r}"
    if not p.name or not isinstance(p.name, str):
        raise _fail(where, "name must be a non-empty string")
    for a in p.archs:
        if not is_registered(a):  # the built-ins or a plugin's (rnnzoo_train.cells.registry)
            names = ", ".join(available_architectures())
            raise _fail(where, f"unknown arch {a!r} (choose from {names})")
    for a in p.activations:
        if a not in ACTIVATIONS:
            raise _fail(where, f"unknown activation {a!r} (choose from {', '.join(ACTIVATIONS)})")
    for name in ("archs", "activations", "units", "l2", "seeds", "tasks"):
        values = getattr(p, name)
        if not values:
            raise _fail(where, f"{name} must not be empty")
        if len(set(values)) != len(values):
            raise _fail(where, f"{name} has duplicates: {list(values)}")
    for u in p.units:
        if not _is_int(u) or u < 1:
            raise _fail(where, f"units must be positive integers, got {u!r}")
        _at_most(where, "units", u, LIMITS["units"])
    for x in p.l2:
        if not _is_number(x) or not math.isfinite(x) or x < 0:
            raise _fail(where, f"l2 must be non-negative numbers, got {x!r}")
        _at_most(where, "l2", x, LIMITS["l2"])
    _at_most(where, "seeds per configuration", len(p.seeds), LIMITS["seeds"])
    for s in p.seeds:
        if not _is_int(s) or s < 0:
            raise _fail(where, f"seeds must be non-negative integers, got {s!r}")
        _at_most(where, "seeds: a seed", s, LIMITS["seed"])
    positive = ("iterations", "batch_size", "loss_every", "eval_trials", "unit_size")
    for name in positive:
        v = getattr(p, name)
        if not _is_int(v) or v < 1:
            raise _fail(where, f"{name} must be a positive integer, got {v!r}")
        _at_most(where, name, v, LIMITS[name])
    for name in ("n_trials", "search_iterations"):
        v = getattr(p, name)
        if not _is_int(v) or v < 0:
            raise _fail(where, f"{name} must be a non-negative integer, got {v!r}")
        _at_most(where, name, v, LIMITS[name])
    if p.n_trials and p.search_iterations < 1:
        raise _fail(where, "a search (trials > 0) needs search iterations > 0")
    for task, v in p.task_iterations.items():
        if not _is_int(v) or v < 1:
            raise _fail(where, f"iterations for task {task!r} must be a positive integer")
        _at_most(where, f"iterations for task {task!r}", v, LIMITS["iterations"])
    for key, hp in p.hparams.items():
        check_hparams(hp, f"{where}: hparams {key!r}")
    for task, stages in p.task_curricula.items():
        check_curriculum(p, task, stages, where)


def check_curriculum(p: Preset, task: str, stages: Any, where: str) -> None:
    """Raise :class:`PresetError` unless ``stages`` is a usable trial-length schedule.

    ``stages`` is ``task``'s schedule in preset ``p`` (see :attr:`Preset.task_curricula`).
    """
    what = f"{where}: trial-length schedule of task {task!r}"
    form = (
        "give [[n_steps, iterations], ...] with increasing n_steps, e.g. [[50, 1500], [500, 300]]"
    )
    if not isinstance(stages, (tuple, list)) or not stages:
        raise _fail(what, f"expected a list of [n_steps, iterations] stages; {form}")
    for stage in stages:
        ok = isinstance(stage, (tuple, list)) and len(stage) == 2
        if not ok or not all(_is_int(v) and v >= 1 for v in stage):
            shown = list(stage) if isinstance(stage, tuple) else stage
            raise _fail(what, f"stage {shown!r} is not two positive integers; {form}")
        _at_most(what, "n_steps", stage[0], LIMITS["n_steps"])
        _at_most(what, "iterations", stage[1], LIMITS["iterations"])
    steps = [t for t, _ in stages]
    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        raise _fail(what, f"n_steps must increase from stage to stage, got {steps}; {form}")
    total = sum(k for _, k in stages)
    _at_most(what, "iterations in all", total, LIMITS["iterations"])
    given_t = dict(p.task_params.get(task, {})).get("n_steps")
    if given_t is not None and given_t != steps[-1]:
        raise _fail(
            what,
            f"its last stage has n_steps = {steps[-1]}, but [tasks.{task}] n_steps = "
            f"{given_t!r}; the last stage is the task's T (drop one or make them agree)",
        )
    given_k = p.task_iterations.get(task)
    if given_k is not None and given_k != total:
        raise _fail(
            what,
            f"its stages add up to {total} iterations, but task_iterations.{task} = "
            f"{given_k!r} (drop one or make them agree)",
        )


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _at_most(where: str, what: str, value: int | float, limit: int | float) -> None:
    if value > limit:
        raise _fail(
            where, f"{what} = {value:,} is more than {limit:,}, far beyond the paper (a typo?)"
        )


def check_hparams(hp: HyperParameters, where: str) -> None:
    """Raise :class:`PresetError` unless ``hp`` is usable (positive clip and lr, etc.)."""
    checks = (
        ("clip", hp.clip > 0),
        ("lr", hp.lr > 0),
        ("decay", 0 < hp.decay <= 1),
        ("momentum", 0 <= hp.momentum < 1),
    )
    for name, ok in checks:
        value = getattr(hp, name)
        if not (_is_number(value) and math.isfinite(value) and ok):
            raise PresetError(
                f"{where}: {name} = {value!r} is out of range "
                "(clip > 0, lr > 0, 0 < decay <= 1, 0 <= momentum < 1)"
            )


# -- the built-in presets -------------------------------------------------------------------

#: Fixed demo hyper-parameters per task, all inside the paper's search ranges. Chosen from
#: a grid around the high-momentum corner of those ranges (clip 0.3-10, lr 0.02-0.2,
#: momentum 0.9-0.99, decay 0.2-0.5), trained with the demo's width and lengths on every
#: task, 1-2 seeds per setting (docs/training.md). What decided it: flip-flop at lr 0.1,
#: momentum 0.9 solved every cell type in 600 iterations (lr 0.05: 3 of 4 short of 98%);
#: cdi at lr 0.05, momentum 0.9 solved vanilla-relu and LSTM-relu (R^2 0.996), which failed
#: at higher effective rates; on sine, vanilla (tanh and relu) solved only with T = 50 at
#: lr 0.05, momentum 0.9 (at T = 100 it stayed at normalised MSE 0.2-0.8 after 2,000
#: iterations; retried 2026-11-28 at T = 100 with 3,000 iterations, 5 seeds: vanilla 8 of 10
#: solved, NMSE 0.01-0.77, and one GRU-relu diverged, against 40 of 40 at T = 50), which the
#: gated cells also solve. cdi trains 1,500 iterations (was 500): with
#: the same settings every network solved it at 500 (R^2 median 0.996), but only 4 of 20 relu
#: networks had formed a line attractor in both contexts; at 1,500, 12 of 20 (R^2 0.999).
DEMO_HPARAMS: dict[str, HyperParameters] = {
    "flipflop": HyperParameters(clip=1.0, lr=0.1, decay=0.2, momentum=0.9),
    # sine at T = 500 through its trial-length schedule (DEMO.task_curricula): clip 0.3,
    # lr 0.03, decay 0.1 (issue 14; docs/reproducing.md, "Sine at the paper's trial length":
    # with the T = 50 settings, clip 1, lr 0.05, decay 0.2, the same schedule solved 1 of 16)
    "sine": HyperParameters(clip=0.3, lr=0.03, decay=0.1, momentum=0.9),
    "cdi": HyperParameters(clip=1.0, lr=0.05, decay=0.2, momentum=0.9),
    "default": HyperParameters(clip=1.0, lr=0.05, decay=0.2, momentum=0.9),
}

PAPER = Preset(
    name="paper",
    description="the paper's zoo: 96 configurations x 30 seeds x 20,000 iterations, full search",
)

#: Seeds per cell type of ``paper-core``. The demo's borderline findings (5 networks per
#: cell type; docs/reproducing.md) had p = 0.05-0.09 (sine's per-architecture frequency
#: bias, p = 0.057 and 0.085 on two CPUs; cdi's mode ablation, p = 0.029 and 0.052). A test
#: statistic grows as sqrt(n), so a finding seen at p on n0 networks per group is expected
#: to reach significance (two-sided 0.05) with power 0.95, i.e. firmly, at about
#: n0 * ((1.96 + 1.645) / z_p)^2 networks, z_p the normal quantile of p: 5 * (3.6 / 1.90)^2
#: = 18 for p = 0.057 and 5 * (3.6 / 1.72)^2 = 22 for p = 0.085. 20 per cell type covers
#: the typical borderline finding; rnnzoo-paper's networks-needed estimate says which need
#: more on a given zoo.
PAPER_CORE_SEEDS = 20

PAPER_CORE = Preset(
    name="paper-core",
    description=(
        "the paper's per-network settings (64 units, 20,000 iterations, batch 64, T = 100 / "
        "500 / 30, a random search per configuration in the paper's ranges) at one "
        f"configuration per cell type, {PAPER_CORE_SEEDS} seeds: a workstation or Dask job"
    ),
    units=(64,),
    l2=(1e-4,),
    seeds=tuple(range(PAPER_CORE_SEEDS)),
    iterations=20_000,
    batch_size=64,
    n_trials=20,
    search_iterations=20_000,
    eval_trials=1024,
    # 4 networks per work unit (paper: 16): with one configuration per cell type, units of 16
    # would leave most workers of a cluster idle (the longest unit, 16 sine LSTMs x 20,000
    # iterations, takes ~5 h); 4 per unit lets 64 workers share the work
    unit_size=4,
    departures=(
        "one configuration per cell type: 64 units and L2 1e-4 (paper: 64, 128, 256 units x "
        "L2 1e-5 .. 1e-2, 12 configurations per cell type)",
        f"{PAPER_CORE_SEEDS} seeds per configuration (paper: 30), chosen so that the demo's "
        "borderline findings are expected to be decided (rnnzoo_train.presets.PAPER_CORE_SEEDS)",
    ),
)

DEMO = Preset(
    name="demo",
    description="all 3 tasks x 8 cell types x 5 seeds, small and short enough for 2 cores",
    units=(32,),
    l2=(1e-4,),
    seeds=(0, 1, 2, 3, 4),
    iterations=800,
    task_iterations={"flipflop": 800, "cdi": 1500},
    # sine at the paper's T = 500, reached through a curriculum over T (2,400 iterations)
    task_curricula={"sine": ((50, 1500), (100, 300), (200, 300), (500, 300))},
    n_trials=0,
    search_iterations=0,
    loss_every=10,
    eval_trials=256,
    unit_size=5,
    hparams=DEMO_HPARAMS,
    departures=(
        "width 32 units (paper: 64, 128, 256) and one L2 value 1e-4 (paper: 1e-5 .. 1e-2)",
        "5 seeds per configuration (paper: 30)",
        "800 / 2,400 / 1,500 SGD iterations for flip-flop / sine / cdi (paper: 20,000); the "
        "learning rate decays by the same factor over the shorter run",
        "hyper-parameters fixed per task from a recorded search on the demo settings, inside "
        "the paper's ranges (paper: a random search per configuration)",
        "sine task at the paper's T = 500, reached through a trial-length schedule (a "
        "curriculum, Bengio et al. 2009: 1,500 iterations at T = 50, then 300 each at T = 100, "
        "200 and 500, the same network and optimiser; paper: T = 500 from the start, with a "
        "search per configuration); traded for it: ~3 more minutes of the demo, and the relu "
        "networks, most of which do not reach the solved threshold at T = 500 in these 2,400 "
        "iterations (3 of 20). A 7,500-iteration schedule trains 12 of 15 Vanilla-, UGRNN- "
        "and GRU-relu networks at 5-6x the CPU time, beyond the demo's budget "
        "(benchmarks/sine_trial_length/t500_relu.toml); the paper's own LSTM-relu did not "
        "train",
        "fixed validation and test sets of 256 trials",
    ),
)

TINY = Preset(
    name="tiny",
    description="for tests: 2 architectures, 8 units, a few iterations",
    archs=("vanilla", "gru"),
    activations=("tanh",),
    units=(8,),
    l2=(1e-4,),
    seeds=(0, 1),
    iterations=20,
    batch_size=16,
    n_trials=2,
    search_iterations=10,
    loss_every=5,
    eval_trials=16,
    unit_size=2,
    task_params={"flipflop": {"n_steps": 20}, "sine": {"n_steps": 30}, "cdi": {"n_steps": 10}},
    departures=("a test preset: tiny widths, batches, sequences and runs",),
)

PRESETS: dict[str, Preset] = {p.name: p for p in (TINY, DEMO, PAPER, PAPER_CORE)}


def available_presets() -> list[str]:
    """Names of the built-in presets."""
    return list(PRESETS)


def get_preset(name: str) -> Preset:
    """The built-in preset ``name`` (``tiny``, ``demo``, ``paper``, ``paper-core``)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise PresetError(
            f"unknown preset {name!r}; choose one of {', '.join(PRESETS)} "
            "or give a grid file with --config"
        ) from None


# -- grid files -----------------------------------------------------------------------------

_GRID_KEYS = {
    "grid": {"arch": "archs", "activation": "activations", "units": "units", "l2": "l2",
             "seeds": "seeds", "tasks": "tasks"},
    "training": {"iterations": "iterations", "batch_size": "batch_size",
                 "loss_every": "loss_every", "eval_trials": "eval_trials",
                 "unit_size": "unit_size"},
    "search": {"trials": "n_trials", "iterations": "search_iterations"},
}  # fmt: skip
_TOP_KEYS = {"name", "description", "base", "departures", "grid", "training", "search",
             "hparams", "tasks", "task_iterations", "task_curricula"}  # fmt: skip


def _as_tuple(where: str, value: Any, kind: type | tuple[type, ...]) -> tuple:
    values = value if isinstance(value, list) else [value]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, kind):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise PresetError(f"{where}: expected {names} value(s), got {v!r}")
    return tuple(values)


def _check_keys(where: str, table: Any, allowed: set[str] | dict) -> dict:
    if not isinstance(table, dict):
        raise PresetError(f"{where}: expected a table, got {table!r}")
    for key in table:
        if key not in allowed:
            raise PresetError(
                f"{where}: unknown key {key!r} (valid keys: {', '.join(sorted(allowed))})"
            )
    return table


def _hparams_from(where: str, table: dict) -> HyperParameters:
    _check_keys(where, table, {"clip", "lr", "decay", "momentum"})
    missing = [k for k in ("clip", "lr", "decay", "momentum") if k not in table]
    if missing:
        raise PresetError(f"{where}: missing {', '.join(missing)}")
    for k, v in table.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise PresetError(f"{where}.{k}: expected a number, got {v!r}")
    hp = HyperParameters(**{k: float(v) for k, v in table.items()})
    check_hparams(hp, where)
    return hp


def preset_from_dict(data: Mapping[str, Any], source: str = "grid") -> Preset:
    """Build a :class:`Preset` from the parsed contents of a grid file (see :func:`load_grid`)."""
    data = _check_keys(source, dict(data), _TOP_KEYS)
    base_name = data.get("base", "demo")
    if base_name not in PRESETS:
        raise PresetError(
            f"{source}: base = {base_name!r} is not a preset (choose one of {', '.join(PRESETS)})"
        )
    base = PRESETS[base_name]
    changes: dict[str, Any] = {"name": data.get("name", Path(source).stem or "grid")}
    if not isinstance(changes["name"], str) or not changes["name"]:
        raise PresetError(f"{source}: name must be a non-empty string")
    changes["description"] = str(data.get("description", f"grid from {source}"))
    kinds: dict[str, Any] = {
        "archs": str, "activations": str, "units": int, "l2": (int, float), "seeds": int,
        "tasks": str,
    }  # fmt: skip
    for section, keys in _GRID_KEYS.items():
        table = _check_keys(f"{source}: [{section}]", data.get(section, {}), keys)
        for key, value in table.items():
            attr = keys[key]
            where = f"{source}: {section}.{key}"
            if attr in kinds:
                if attr == "seeds" and isinstance(value, int) and not isinstance(value, bool):
                    if not 1 <= value <= LIMITS["seeds"]:
                        raise PresetError(
                            f"{where}: the number of seeds must be from 1 to {LIMITS['seeds']}, "
                            f"got {value}"
                        )
                    changes[attr] = tuple(range(value))
                    continue
                vals = _as_tuple(where, value, kinds[attr])
                changes[attr] = tuple(float(v) for v in vals) if attr == "l2" else vals
            else:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise PresetError(f"{where}: expected an integer, got {value!r}")
                changes[attr] = value
    if "hparams" in data:
        table = data["hparams"]
        if not isinstance(table, dict):
            raise PresetError(f"{source}: [hparams] must be a table")
        flat = {k: v for k, v in table.items() if not isinstance(v, dict)}
        hps = {}
        if flat:
            hps["default"] = _hparams_from(f"{source}: hparams", flat)
        for key, sub in table.items():
            if isinstance(sub, dict):
                cell_key = key.split("/")[-1]
                if "/" not in key and not is_registered(cell_key.split("-")[0]):
                    hps[key] = _hparams_from(f"{source}: hparams.{key}", sub)  # a task name
                    continue
                if not is_registered(cell_key.split("-")[0]):
                    raise PresetError(
                        f"{source}: [hparams.{key!r}] must be keyed by task, arch, "
                        "arch-activation or task/arch(-activation)"
                    )
                hps[key] = _hparams_from(f"{source}: hparams.{key}", sub)
        changes["hparams"] = hps
        changes.setdefault("n_trials", 0)
    if "tasks" in data:
        tables = _check_keys(f"{source}: [tasks]", data["tasks"], set(data["tasks"]))
        for k, v in tables.items():
            if not isinstance(v, dict):
                raise PresetError(f"{source}: [tasks.{k}] must be a table of task parameters")
        changes["task_params"] = {k: dict(v) for k, v in tables.items()}
    if "task_iterations" in data:
        ti = _check_keys(
            f"{source}: [task_iterations]", data["task_iterations"], set(data["task_iterations"])
        )
        changes["task_iterations"] = dict(ti)
    if "task_curricula" in data:
        tc = _check_keys(
            f"{source}: [task_curricula]", data["task_curricula"], set(data["task_curricula"])
        )
        curricula = dict(base.task_curricula)
        params = {k: dict(v) for k, v in changes.get("task_params", base.task_params).items()}
        iterations = dict(changes.get("task_iterations", base.task_iterations))
        for task, stages in tc.items():
            if isinstance(stages, list) and all(isinstance(x, list) for x in stages):
                stages = tuple(tuple(x) for x in stages)
            curricula[task] = stages
            # the schedule sets the task's T and iterations: the base's values give way,
            # the file's own must agree (checked with the preset)
            if "n_steps" not in data.get("tasks", {}).get(task, {}):
                params.get(task, {}).pop("n_steps", None)
            if task not in data.get("task_iterations", {}):
                iterations.pop(task, None)
        changes["task_curricula"] = curricula
        changes["task_params"] = params
        changes["task_iterations"] = iterations
    departures = data.get("departures")
    if departures is not None:
        changes["departures"] = _as_tuple(f"{source}: departures", departures, str)
    else:
        changes["departures"] = (*base.departures, f"grid file {source} based on {base_name!r}")
    try:
        preset = replace(base, **changes)
    except PresetError as err:
        raise PresetError(f"{source}: {str(err).split(': ', 1)[-1]}") from None
    _check_tasks(preset, source)
    return preset


def _check_tasks(preset: Preset, source: str) -> None:
    """Every task of ``preset`` must exist and accept its parameters (one-line errors)."""
    from rnnzoo_train.tasks import get_task

    names = [*preset.tasks, *preset.task_params, *preset.task_iterations, *preset.task_curricula]
    for name in dict.fromkeys(names):
        try:
            task = get_task(name, **preset.task_parameters(name))
            for t, _ in preset.task_curricula.get(name, ())[:-1]:
                get_task(name, **{**preset.task_parameters(name), "n_steps": t})
        except (TypeError, ValueError, LookupError) as err:
            raise PresetError(f"{source}: task {name!r}: {err}") from None
        n_steps = getattr(task, "n_steps", 1)
        if _is_int(n_steps) and n_steps > LIMITS["n_steps"]:
            raise PresetError(
                f"{source}: task {name!r}: n_steps = {n_steps} is more than "
                f"{LIMITS['n_steps']:,} time steps per trial"
            )


def load_grid(path: str | Path) -> Preset:
    """Read a TOML grid file into a :class:`Preset`.

    Any subset of these keys may be given; the rest come from ``base`` (default ``demo``)::

        name = "my-grid"
        base = "demo"                     # tiny, demo or paper
        [grid]
        arch = ["gru", "lstm"]            # vanilla, ugrnn, gru, lstm
        activation = ["tanh"]             # tanh, relu
        units = [64]
        l2 = [1e-4]
        seeds = 5                         # a count, or a list of seeds
        [training]
        iterations = 2000
        batch_size = 64
        [search]
        trials = 8                        # 0: use [hparams]
        iterations = 500
        [hparams]                         # fixed hyper-parameters (all archs), or
        clip = 1.0                        # [hparams.gru] / [hparams.gru-relu] tables
        lr = 0.1
        decay = 0.2
        momentum = 0.95
        [tasks.sine]                      # task parameters
        n_steps = 200
        [task_iterations]
        sine = 3000
        [task_curricula]                  # trial-length schedules: [n_steps, iterations]
        sine = [[50, 1500], [100, 300], [500, 300]]   # stages; the last is the task's T

    Raises
    ------
    PresetError
        One line naming the file and the bad key or value.
    """
    path = Path(path)
    if path.exists() and not path.is_file():
        raise PresetError(f"grid file {str(path)!r} is not a file; give a TOML grid file")
    if not path.is_file():
        raise PresetError(f"grid file {str(path)!r} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        gist = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise PresetError(f"{path}: not valid TOML ({gist})") from None
    except OSError as err:
        raise PresetError(f"grid file {str(path)!r} cannot be read ({err.strerror})") from None
    if not data:
        raise PresetError(
            f"{path}: the grid file is empty; give at least one of [grid], [training], "
            "[search], [hparams] (docs/training.md), or use --preset"
        )
    return preset_from_dict(data, source=str(path))
