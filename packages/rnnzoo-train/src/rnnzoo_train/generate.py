"""Generate a zoo: hyper-parameter search, then seeds, through the ``ZooWriter`` protocol.

For every task of the run, generation

1. builds the task's :class:`~rnnzoo_train.records.TaskPlan` from the preset and calls
   ``writer.prepare_task(plan, task)``;
2. resolves each configuration's hyper-parameters: fixed by the preset (``n_trials == 0``),
   reused from a search the writer already recorded (resume), or found by a random search of
   ``n_trials`` trials over the paper's ranges (:mod:`rnnzoo_train.search`), chosen on
   validation loss and recorded with ``writer.write_search``;
3. trains the configuration's seeds with the chosen hyper-parameters in fixed work units
   (the seeds of every configuration of one shape -- architecture, activation, units -- in
   plan order, chunked to the unit capacity, :func:`unit_capacity`), skipping units whose
   networks ``writer.completed(task)`` already lists (finished: ``ok`` or ``diverged``), and
   writes each finished unit with ``writer.write_results``.

Work units are self-contained and picklable, and :func:`run_unit` is a pure module-level
function, so a runner (serial, processes, Dask) may run them anywhere in any order; a unit's
networks get the same floating-point work whatever the runner (DESIGN.md section 2).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from rnnzoo_train.cells.registry import get_architecture
from rnnzoo_train.presets import Preset
from rnnzoo_train.progress import Progress, SummaryRow, format_table, summarise
from rnnzoo_train.records import (
    Configuration,
    HyperParameters,
    NetworkResult,
    NetworkSpec,
    SearchTrial,
    TaskPlan,
)
from rnnzoo_train.runners import SerialRunner, UnitFailed
from rnnzoo_train.search import choose_trial, search_specs
from rnnzoo_train.signals import deferred_termination
from rnnzoo_train.writer import ZooWriter

#: memory budget of one work unit's training buffers (bytes); units are split to fit
UNIT_MEMORY_BYTES = 768 * 2**20
#: the same on a GPU, where a unit is sized by memory alone (see :func:`unit_capacity`)
GPU_UNIT_MEMORY_BYTES = 16 * 2**30
#: what the GPU's autograd kernel keeps per network, as a multiple of the CPU kernels' buffers
GPU_MEMORY_FACTOR = 3


@dataclass(frozen=True)
class WorkUnit:
    """A population of networks trained together; everything :func:`run_unit` needs.

    Attributes
    ----------
    task_config : dict
        ``Task.config()``; the worker rebuilds the task from it.
    kind : {"search", "seeds"}
    specs : tuple of NetworkSpec
    loss_every, eval_trials : int
    index : int
        Position of the unit in its task's plan (stable across runs).
    device : str
        Where the worker trains it (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
    """

    task_config: dict[str, Any] = field(compare=False)
    kind: Literal["search", "seeds"]
    specs: tuple[NetworkSpec, ...]
    loss_every: int
    eval_trials: int
    index: int = 0
    device: str = "cpu"

    @property
    def task(self) -> str:
        return self.specs[0].task

    @property
    def label(self) -> str:
        first = self.specs[0]
        configs = {s.config for s in self.specs}
        name = first.config.key if len(configs) == 1 else f"{first.config.group} x{len(configs)} L2"
        return f"{first.task}/{name} ({self.kind}, {len(self.specs)})"

    def cost(self) -> float:
        """Relative compute cost (for scheduling the longest units first)."""
        s = self.specs[0]
        gates = get_architecture(s.config.arch).n_gates
        steps = int(self.task_config.get("params", {}).get("n_steps", 100))
        step_iterations = sum(t * k for t, k in s.schedule) if s.schedule else steps * s.iterations
        return len(self.specs) * step_iterations * gates * s.config.units**2


def run_unit(unit: WorkUnit) -> list[NetworkResult]:
    """Train one work unit (pure: the result depends on ``unit`` alone)."""
    from rnnzoo_train.runners import one_thread
    from rnnzoo_train.tasks import get_task
    from rnnzoo_train.training import train_population

    one_thread()
    task = get_task(unit.task_config["name"], **unit.task_config.get("params", {}))
    return train_population(
        list(unit.specs),
        task,
        loss_every=unit.loss_every,
        eval_trials=unit.eval_trials,
        record_probe=unit.kind == "seeds",
        device=unit.device,
    )


def unit_capacity(plan: TaskPlan, config: Configuration, n_steps: int, device: str = "cpu") -> int:
    """Networks per work unit of ``config``'s shape.

    On the CPU: the preset's ``unit_size``, lowered to fit :data:`UNIT_MEMORY_BYTES`. On a
    GPU an iteration's time hardly depends on the population size (it is bound by kernel
    launches: ``docs/benchmarks.md``), so ``unit_size`` is ignored and a unit holds as many
    networks as fit :data:`GPU_UNIT_MEMORY_BYTES`.
    """
    from rnnzoo_train.training.selection import bytes_per_network

    per_net = bytes_per_network(config.arch, config.units, plan.batch_size, n_steps)
    if not str(device).startswith("cpu"):
        return max(1, GPU_UNIT_MEMORY_BYTES // max(GPU_MEMORY_FACTOR * per_net, 1))
    size = int(plan.metadata.get("unit_size", 16))
    return max(1, min(size, UNIT_MEMORY_BYTES // max(per_net, 1)))


def _by_shape(configs: Iterable[Configuration]) -> list[list[Configuration]]:
    """Configurations grouped by shape (arch, activation, units), in first-seen order.

    Networks of one shape can share a population whatever their L2 and hyper-parameters.
    """
    groups: dict[tuple, list[Configuration]] = {}
    for c in configs:
        groups.setdefault((c.arch, c.activation, c.units), []).append(c)
    return list(groups.values())


def _chunks(items: Sequence[Any], size: int) -> list[tuple]:
    return [tuple(items[i : i + size]) for i in range(0, len(items), size)]


def seed_units(
    plan: TaskPlan,
    hparams: dict[Configuration, HyperParameters],
    n_steps: int,
    device: str = "cpu",
) -> list[WorkUnit]:
    """The fixed work units of a plan's zoo networks.

    The seeds of all configurations of one shape, in plan order, chunked to
    :func:`unit_capacity` (which depends on ``device``).
    """
    units = []
    for configs in _by_shape(plan.configurations):
        specs = [
            NetworkSpec(
                task=plan.task,
                config=config,
                seed=s,
                hparams=hparams[config],
                iterations=plan.iterations,
                batch_size=plan.batch_size,
                schedule=plan.schedule,
            )
            for config in configs
            for s in plan.seeds
        ]
        for chunk in _chunks(specs, unit_capacity(plan, configs[0], n_steps, device)):
            units.append(_unit(plan, "seeds", chunk, len(units)))
    return units


def _unit(plan: TaskPlan, kind, specs, index: int) -> WorkUnit:
    return WorkUnit(
        task_config=plan.task_config,
        kind=kind,
        specs=tuple(specs),
        loss_every=plan.loss_every,
        eval_trials=int(plan.metadata.get("eval_trials", 256)),
        index=index,
    )


@dataclass
class GenerationReport:
    """What a generation run did."""

    rows: list[SummaryRow] = field(default_factory=list)
    trained: int = 0
    skipped: int = 0
    failed_units: list[str] = field(default_factory=list)
    seconds: float = 0.0
    chosen: dict[str, dict[str, HyperParameters]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed_units

    def table(self) -> str:
        text = format_table(self.rows)
        if self.skipped:
            text += f"\n{self.skipped} networks were already complete and were skipped."
        if self.failed_units:
            text += f"\n{len(self.failed_units)} work units FAILED: " + "; ".join(self.failed_units)
        return text


def _median_loss(results: list[NetworkResult]) -> float | None:
    losses = sorted(r.train_loss for r in results if math.isfinite(r.train_loss))
    return losses[len(losses) // 2] if losses else None


def generate(
    preset: Preset,
    tasks: Iterable[str],
    writer: ZooWriter,
    runner=None,
    progress: bool = True,
    device: str = "cpu",
) -> GenerationReport:
    """Generate (or resume) the zoo of ``preset`` for ``tasks`` into ``writer``.

    Parameters
    ----------
    preset : Preset
        From :func:`rnnzoo_train.presets.get_preset` or :func:`~rnnzoo_train.presets.load_grid`.
    tasks : iterable of str
        Task names (each must be registered).
    writer : ZooWriter
        Where results go (``ZarrZooWriter``, ``MemoryZooWriter``).
    runner : optional
        ``SerialRunner()`` (default), ``ProcessRunner(n)`` or a ``DaskRunner``.
    progress : bool
        Show a progress bar on stderr.
    device : str
        Where the workers train (``"cpu"``, or ``"cuda"`` for a GPU; a GPU trains with the
        autograd kernel, :mod:`rnnzoo_train.training.device_kernel`). The device changes
        float32 rounding, not the networks' definition (bitwise repeatability holds per
        machine and device). Checked for availability where units run (a unit on a worker
        without it fails with a one-line reason).

    Returns
    -------
    GenerationReport
        Summary rows per configuration, counts, failed units. ``writer.close()`` has been called.
    """
    from rnnzoo_train.tasks import get_task
    from rnnzoo_train.training.device_kernel import parse_device

    started = time.perf_counter()
    # a malformed name is a one-line error before anything is written; whether the device
    # exists is the workers' business (a CPU-only client may drive GPU workers)
    device = str(parse_device(device))
    runner = runner or SerialRunner()
    tasks = list(dict.fromkeys(tasks))
    report = GenerationReport()
    plans: dict[str, TaskPlan] = {}
    task_objs = {}
    try:
        for name in tasks:
            plan = preset.plan(name)
            task = get_task(name, **plan.task_config.get("params", {}))
            with deferred_termination():  # a SIGTERM never cuts a template in half
                writer.prepare_task(plan, task)
            plans[name], task_objs[name] = plan, task
    except BaseException:  # a refused plan, SIGTERM, Ctrl-C: release the zoo's lock now
        with deferred_termination():
            writer.close()
        raise

    # -- phase 1: hyper-parameters (fixed, recorded, or searched) ---------------------------
    chosen: dict[str, dict[Configuration, HyperParameters]] = {t: {} for t in tasks}
    search_todo: list[WorkUnit] = []
    for name, plan in plans.items():
        recorded = defaultdict(list)
        for trial in writer.search(name):
            recorded[trial.config].append(trial)
        to_search = []
        for config in plan.configurations:
            if not plan.n_trials:
                chosen[name][config] = preset.fixed_hparams(config, name)
                continue
            winner = [t for t in recorded.get(config, []) if t.chosen]
            if winner:
                chosen[name][config] = winner[0].hparams
                continue
            to_search.append(config)
        n_steps = task_objs[name].n_steps
        for configs in _by_shape(to_search):  # one shape's trials share populations
            specs = [spec for config in configs for spec in search_specs(plan, config)]
            for chunk in _chunks(specs, unit_capacity(plan, configs[0], n_steps, device)):
                search_todo.append(_unit(plan, "search", chunk, len(search_todo)))

    # -- phase 2 units, to size the progress bar --------------------------------------------
    def pending_seed_units() -> list[WorkUnit]:
        todo = []
        for name, plan in plans.items():
            done = writer.completed(name)
            for unit in seed_units(plan, chosen[name], task_objs[name].n_steps, device):
                if all(s.network_id in done for s in unit.specs):
                    report.skipped += len(unit.specs)
                else:
                    todo.append(unit)
        return todo

    n_seed_networks = sum(len(plan.configurations) * len(plan.seeds) for plan in plans.values())
    total = sum(len(u.specs) for u in search_todo) + n_seed_networks
    bar = Progress(total, enabled=progress)
    try:
        if search_todo:
            bar.phase("search")
            trial_results: dict[tuple[str, Configuration], list[NetworkResult]] = defaultdict(list)
            expected = defaultdict(int)
            for u in search_todo:
                for s in u.specs:
                    expected[(u.task, s.config)] += 1
            with _stop_when_left(
                runner.map_unordered(run_unit, _by_cost(search_todo, device))
            ) as results:
                for unit, out in results:
                    if isinstance(out, UnitFailed):
                        report.failed_units.append(f"{unit.label}: {out}")
                        bar.write(f"work unit {unit.label} failed: {out}")
                        bar.advance(len(unit.specs))
                        continue
                    bar.advance(len(out), _median_loss(out), unit.label)
                    for config in dict.fromkeys(r.spec.config for r in out):
                        key = (unit.task, config)
                        trial_results[key].extend(r for r in out if r.spec.config == config)
                        if len(trial_results[key]) == expected[key]:
                            trials, hp = choose_trial(trial_results[key])
                            with deferred_termination():
                                writer.write_search(unit.task, trials)
                            chosen[unit.task][config] = hp
            missing = [(t, c) for t in tasks for c in plans[t].configurations if c not in chosen[t]]
            if missing:
                report.failed_units.append(
                    f"search incomplete for {len(missing)} configuration(s); their seeds were "
                    "not trained (rerun the same command to resume)"
                )
                for t, c in missing:
                    plans[t] = _drop_config(plans[t], c)

        bar.phase("seeds")
        todo = pending_seed_units()
        if report.skipped:
            bar.advance(report.skipped, None, "already complete")
        results_by_task: dict[str, list[NetworkResult]] = defaultdict(list)
        with _stop_when_left(runner.map_unordered(run_unit, _by_cost(todo, device))) as results:
            for unit, out in results:
                if isinstance(out, UnitFailed):
                    report.failed_units.append(f"{unit.label}: {out}")
                    bar.write(f"work unit {unit.label} failed: {out}")
                    bar.advance(len(unit.specs))
                    continue
                # a unit's rows and then its index rows, whole: a SIGTERM waits for them
                with deferred_termination():
                    writer.write_results(unit.task, out)
                results_by_task[unit.task].extend(out)
                report.trained += len(out)
                bar.advance(len(out), _median_loss(out), unit.label)
    finally:
        bar.close()
        with deferred_termination():
            writer.close()
    for name in tasks:
        report.rows += summarise(name, results_by_task[name], task_objs[name].performance_name)
    report.chosen = {t: {c.key: hp for c, hp in chosen[t].items()} for t in tasks}
    report.seconds = time.perf_counter() - started
    return report


@contextmanager
def _stop_when_left(results: Iterable[Any]):
    """Close a runner's result iterator however the loop over it ends.

    A loop left early (SIGTERM, Ctrl-C, a write error) thereby stops the runner's workers at
    once (their units in flight are abandoned and retrained by the next run) instead of
    whenever the iterator happens to be garbage-collected.
    """
    try:
        yield results
    finally:
        close = getattr(results, "close", None)
        if callable(close):
            close()


def _by_cost(units: list[WorkUnit], device: str = "cpu") -> list[WorkUnit]:
    """Longest units first, so parallel workers finish together; each set to ``device``."""
    from dataclasses import replace

    ordered = sorted(units, key=lambda u: (-u.cost(), u.task, u.index))
    return [replace(u, device=device) for u in ordered]


def _drop_config(plan: TaskPlan, config: Configuration) -> TaskPlan:
    from dataclasses import replace

    return replace(plan, configurations=tuple(c for c in plan.configurations if c != config))


__all__ = [
    "GenerationReport",
    "SearchTrial",
    "WorkUnit",
    "generate",
    "run_unit",
    "seed_units",
    "unit_capacity",
]
