"""What a zoo will cost, projected before anything is trained (``generate --dry-run``).

A preset's cost is the sum over its networks (zoo seeds and search trials) of iterations x
the CPU time of one network-iteration of its cell type and width at its task's trial length
``T`` (with a trial-length schedule, ``Preset.task_curricula``: each stage's iterations at
its own ``T``). Those rates were **measured** on the development machine (:data:`CPU_MEASURED` says
when, on which CPU and how) with ``benchmarks/bench_train_cost.py``, one torch/BLAS thread,
through the same ``train_population`` a work unit runs: sampling, forward, loss, BPTT and
the update. Between measured widths the rate is interpolated on a log-log scale (beyond
them, extrapolated along the nearest segment); a task trained at another ``T`` than the one
measured is scaled by the dependence on ``T`` fitted over the three tasks, which were
measured at T = 100, 500 and 30 (:func:`cpu_rate`); a task without measurements (a plugin)
uses that fit directly.

From the per-network costs, :func:`project` gives

- the CPU core-hours (the time on one worker of this machine's kind);
- the wall time on ``N`` workers (a Dask cluster or a process pool of single-threaded
  workers): the work units ``generate`` makes, longest first onto the first free worker, as
  ``generate`` submits them, the search phase before the seed phase;
- the time on one GPU, from the per-work-unit iteration times measured on an NVIDIA H200
  (``docs/benchmarks.md``, "Training on a GPU"; :data:`GPU_MEASURED`): on a GPU an
  iteration's time hardly depends on the population (it is bound by kernel launches), so
  the projection counts the unit-iterations of the GPU's work units, each at a time between
  the task's fastest and slowest measured unit (:func:`gpu_unit_seconds`; only that range
  per task was recorded, so the range is printed too), plus drawing each network's batches
  on one CPU core, measured per network-iteration, which runs in series with the GPU.

These are projections: a busy machine, another CPU, or memory bandwidth shared with other
processes change them (the measured spread is in :data:`CPU_MEASURED`).
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from rnnzoo_train.presets import Preset
from rnnzoo_train.records import Configuration, NetworkSpec, TaskPlan, trial_length_stages


def gate_count(arch: str, default: int) -> int:
    """Gate blocks of ``arch`` from its descriptor (``default`` for one not installed)."""
    from rnnzoo_train.cells.registry import get_architecture

    try:
        return get_architecture(arch).n_gates
    except ValueError:  # an architecture not installed here: a rough cost is enough
        return default


#: where and how :data:`CPU_RATES` were measured
CPU_MEASURED = {
    "date": "2026-12-06",
    "cpu": "AMD EPYC, 2 cores shared with other users (load average 13-29 while measuring)",
    "method": "benchmarks/bench_train_cost.py --population 4 --budget 0.75: train_population "
    "of 4 networks, batch 64, one thread, median CPU time per iteration / 4",
    "noise": "sine at 32 and 64 units measured twice, 20 min apart: the two differed by a "
    "median 1.03x, at most 1.12x; other runs that day by up to 1.2x (e.g. sine T = 500, "
    "32 units: vanilla-tanh 5.3-7.1 ms, lstm-tanh 16.6-19.4 ms); values: the median",
}

#: CPU seconds per network-iteration: task -> (T measured, {cell: {units: seconds}})
CPU_RATES: dict[str, tuple[int, dict[str, dict[int, float]]]] = {
    "flipflop": (
        100,
        {
            "vanilla-tanh": {32: 0.00206, 64: 0.00389, 128: 0.0101, 256: 0.0482},
            "vanilla-relu": {32: 0.00204, 64: 0.00404, 128: 0.0103, 256: 0.0448},
            "ugrnn-tanh": {32: 0.00283, 64: 0.00655, 128: 0.0225, 256: 0.0904},
            "ugrnn-relu": {32: 0.00277, 64: 0.00633, 128: 0.0226, 256: 0.101},
            "gru-tanh": {32: 0.00407, 64: 0.0107, 128: 0.0367, 256: 0.175},
            "gru-relu": {32: 0.00402, 64: 0.0103, 128: 0.0381, 256: 0.177},
            "lstm-tanh": {32: 0.00442, 64: 0.012, 128: 0.0497, 256: 0.188},
            "lstm-relu": {32: 0.00426, 64: 0.0112, 128: 0.0459, 256: 0.201},
        },
    ),
    "sine": (
        500,
        {
            "vanilla-tanh": {32: 0.00572, 64: 0.014, 128: 0.0477, 256: 0.199},
            "vanilla-relu": {32: 0.00563, 64: 0.0141, 128: 0.0499, 256: 0.204},
            "ugrnn-tanh": {32: 0.0092, 64: 0.0275, 128: 0.117, 256: 0.476},
            "ugrnn-relu": {32: 0.00912, 64: 0.026, 128: 0.0975, 256: 0.529},
            "gru-tanh": {32: 0.0149, 64: 0.0432, 128: 0.207, 256: 0.927},
            "gru-relu": {32: 0.0149, 64: 0.0461, 128: 0.207, 256: 0.851},
            "lstm-tanh": {32: 0.0174, 64: 0.0531, 128: 0.22, 256: 1.05},
            "lstm-relu": {32: 0.0158, 64: 0.0543, 128: 0.229, 256: 1.03},
        },
    ),
    "cdi": (
        30,
        {
            "vanilla-tanh": {32: 0.00093, 64: 0.00162, 128: 0.00377, 256: 0.0169},
            "vanilla-relu": {32: 0.000933, 64: 0.00153, 128: 0.00385, 256: 0.017},
            "ugrnn-tanh": {32: 0.0013, 64: 0.0024, 128: 0.00684, 256: 0.0334},
            "ugrnn-relu": {32: 0.00119, 64: 0.00232, 128: 0.00661, 256: 0.0343},
            "gru-tanh": {32: 0.00179, 64: 0.00393, 128: 0.0125, 256: 0.0602},
            "gru-relu": {32: 0.00178, 64: 0.00393, 128: 0.0117, 256: 0.0571},
            "lstm-tanh": {32: 0.00186, 64: 0.00411, 128: 0.0163, 256: 0.0671},
            "lstm-relu": {32: 0.00184, 64: 0.00414, 128: 0.0163, 256: 0.0696},
        },
    ),
}

#: the GPU measurements the projection uses (docs/benchmarks.md, "Training on a GPU")
GPU_MEASURED = {
    "date": "2026-11-28",
    "device": "NVIDIA H200 (torch 2.11.0+cu130), step captured in a CUDA graph",
    "source": "docs/benchmarks.md, 'The paper preset on one GPU' "
    "(benchmarks/bench_train_gpu.py --sections paper)",
}
#: seconds per iteration of one GPU work unit: task -> (T, fastest, slowest) over the shapes
#: of the ``paper`` preset (4 architectures x 64/128/256 units, every unit size it makes)
GPU_UNIT_SECONDS: dict[str, tuple[int, float, float]] = {
    "flipflop": (100, 0.004, 0.079),
    "sine": (500, 0.018, 0.124),
    "cdi": (30, 0.002, 0.024),
}
#: the slowest measured unit of each task: (networks, gates, units) of its LSTM at 256 units
GPU_SLOWEST_UNIT: dict[str, tuple[int, int, int]] = {
    "flipflop": (120, 4, 256),
    "sine": (28, 4, 256),
    "cdi": (120, 4, 256),
}
#: seconds per network-iteration to draw the batches on the GPU machine's one CPU core
GPU_SAMPLING_SECONDS: dict[str, tuple[int, float]] = {
    "flipflop": (100, 0.58e-3),
    "sine": (500, 0.63e-3),
    "cdi": (30, 0.16e-3),
}


class CostError(ValueError):
    """A projection cannot be made (one line saying why)."""


def _interp_units(table: dict[int, float], units: int) -> float:
    """``table[units]``, interpolated log-log between measured widths (extrapolated beyond)."""
    widths = sorted(table)
    if units in table:
        return table[units]
    if len(widths) == 1:
        return table[widths[0]] * (units / widths[0]) ** 2
    i = bisect.bisect_left(widths, units)
    i = min(max(i, 1), len(widths) - 1)
    u0, u1 = widths[i - 1], widths[i]
    slope = math.log(table[u1] / table[u0]) / math.log(u1 / u0)
    return table[u0] * (units / u0) ** slope


def _affine_in_t(cell: str, units: int) -> tuple[float, float]:
    """``(a, b)`` of ``seconds = a + b * T`` at ``units``, fitted to the tasks' measured rates.

    The three tasks were measured at their own ``T`` (30, 100, 500), so the fit separates a
    per-iteration overhead (``a``: the update, the loss, Python) from the cost per time step
    (``b``); least squares over the measured tasks, ``a`` at least 0.
    """
    points = [
        (steps, _interp_units(cells[cell], units))
        for steps, cells in CPU_RATES.values()
        if cell in cells
    ]
    if len(points) < 2:
        steps, rate = points[0]
        return 0.0, rate / steps
    mean_t = sum(t for t, _ in points) / len(points)
    mean_r = sum(r for _, r in points) / len(points)
    b = sum((t - mean_t) * (r - mean_r) for t, r in points) / sum(
        (t - mean_t) ** 2 for t, _ in points
    )
    a = mean_r - b * mean_t
    if a < 0:  # no overhead: proportional to T through the mean
        return 0.0, mean_r / mean_t
    return a, b


def cpu_rate(task: str, cell: str, units: int, n_steps: int) -> float:
    """Projected CPU seconds per network-iteration (one thread).

    The measured rate of ``task`` at ``units`` (interpolated between measured widths), scaled
    to ``n_steps`` by the affine dependence on ``T`` fitted over the three tasks
    (:func:`_affine_in_t`); a task without measurements (a plugin) takes that fit at
    ``n_steps`` directly.

    Parameters
    ----------
    task : str
        Task name.
    cell : str
        ``"<arch>-<activation>"``, e.g. ``"gru-relu"``; an unknown activation takes its
        architecture's first measured one.
    units : int
        Hidden units.
    n_steps : int
        Trial length ``T``.
    """
    if not CPU_RATES:
        raise CostError("no measured CPU rates in rnnzoo_train.cost (run bench_train_cost.py)")
    any_cells = next(iter(CPU_RATES.values()))[1]
    if cell not in any_cells:
        arch = cell.split("-")[0]
        same_arch = [c for c in any_cells if c.split("-")[0] == arch]
        if not same_arch:
            raise CostError(f"no measured CPU rate for cell {cell!r} (a plugin architecture?)")
        cell = same_arch[0]
    a, b = _affine_in_t(cell, units)
    if task not in CPU_RATES or cell not in CPU_RATES[task][1]:
        return a + b * n_steps
    measured_steps, cells = CPU_RATES[task]
    rate = _interp_units(cells[cell], units)
    return rate * (a + b * n_steps) / (a + b * measured_steps)


def gpu_unit_seconds(
    task: str, config: Configuration, networks: int, n_steps: int
) -> tuple[float, float, float]:
    """Seconds per iteration of one GPU work unit: (fastest, estimate, slowest).

    Only each task's fastest and slowest measured unit-iteration are on record
    (:data:`GPU_UNIT_SECONDS`). The estimate takes the fastest as the launch-bound floor
    every unit pays and adds the rest in proportion to the unit's GEMM work (networks x
    gates x units^2) against the slowest measured unit's (:data:`GPU_SLOWEST_UNIT`), capped
    at the slowest time; all three scale with ``n_steps`` against the measured ``T`` (a GPU
    iteration runs its steps one after another).
    """
    steps, lo, hi = GPU_UNIT_SECONDS.get(task, GPU_UNIT_SECONDS["flipflop"])
    p_hi, g_hi, u_hi = GPU_SLOWEST_UNIT.get(task, GPU_SLOWEST_UNIT["flipflop"])
    gates = gate_count(config.arch, 4)
    work = networks * gates * config.units**2 / (p_hi * g_hi * u_hi**2)
    scale = n_steps / steps
    return lo * scale, (lo + (hi - lo) * min(work, 1.0)) * scale, hi * scale


@dataclass
class UnitCost:
    """One work unit as ``generate`` makes it, with its projected cost."""

    task: str
    phase: str  # "search" or "seeds"
    label: str
    networks: int
    iterations: int
    cpu_seconds: float
    order: float  # generate's scheduling key (WorkUnit.cost)


@dataclass
class TaskCost:
    """Projected cost of one task of a preset."""

    task: str
    n_steps: int
    seeds: int  # zoo networks
    trials: int  # search trials
    network_iterations: int
    cpu_seconds: float
    gpu_unit_iterations: int
    gpu_seconds: tuple[float, float, float]  # device time: fastest, estimate, slowest
    gpu_sampling_seconds: float
    #: the trial-length schedule (curriculum) its networks train through, if any
    schedule: tuple[tuple[int, int], ...] = ()


@dataclass
class Projection:
    """What :func:`project` returns; :meth:`lines` prints it."""

    preset: str
    tasks: list[TaskCost]
    units: list[UnitCost] = field(repr=False)

    @property
    def networks(self) -> int:
        return sum(t.seeds + t.trials for t in self.tasks)

    @property
    def cpu_seconds(self) -> float:
        return sum(t.cpu_seconds for t in self.tasks)

    def wall_seconds(self, workers: int) -> float:
        """Wall time on ``workers`` single-threaded workers (search phase, then seeds)."""
        if workers < 1:
            raise CostError(f"workers must be >= 1, got {workers}")
        total = 0.0
        for phase in ("search", "seeds"):
            units = sorted(
                (u for u in self.units if u.phase == phase), key=lambda u: (-u.order, u.task)
            )
            free = [0.0] * min(workers, max(len(units), 1))
            heapq.heapify(free)
            end = 0.0
            for u in units:
                start = heapq.heappop(free)
                end = max(end, start + u.cpu_seconds)
                heapq.heappush(free, start + u.cpu_seconds)
            total += end
        return total

    def gpu_seconds(self) -> tuple[float, float, float]:
        """Seconds on one GPU, sampling included: (fastest, estimate, slowest).

        Every unit-iteration at the task's fastest measured time, at the estimate of
        :func:`gpu_unit_seconds`, and at the slowest measured time.
        """
        return tuple(  # type: ignore[return-value]
            sum(t.gpu_seconds[i] + t.gpu_sampling_seconds for t in self.tasks) for i in range(3)
        )

    def lines(self, workers: Sequence[int] = (16,)) -> list[str]:
        """The dry-run report (one string per line)."""
        out = [
            f"{self.preset}: {self.networks:,} networks to train "
            f"({sum(t.seeds for t in self.tasks):,} zoo networks + "
            f"{sum(t.trials for t in self.tasks):,} search trials)",
            "",
            f"{'task':10s} {'T':>5s} {'networks':>9s} {'trials':>7s} "
            f"{'network-iterations':>19s} {'CPU time':>12s}",
        ]
        for t in self.tasks:
            out.append(
                f"{t.task:10s} {t.n_steps:5d} {t.seeds:9,d} {t.trials:7,d} "
                f"{t.network_iterations:19,d} {_duration(t.cpu_seconds):>12s}"
            )
            if t.schedule:
                steps = " -> ".join(f"T = {n} x {k:,}" for n, k in t.schedule)
                out.append(f"{'':10s} trial-length schedule: {steps} iterations")
        out += [
            "",
            f"projected on this machine's kind of CPU (rates measured {CPU_MEASURED['date']}, "
            f"{CPU_MEASURED['cpu']}; rnnzoo_train.cost.CPU_RATES):",
            f"  one worker:             {_duration(self.wall_seconds(1))} "
            f"({self.cpu_seconds / 86400:,.2f} core-days)",
        ]
        for n in workers:
            out.append(
                f"  {n:3d} workers (Dask/pool): {_duration(self.wall_seconds(n))} "
                f"(work units longest first, search before seeds)"
            )
        lo, mid, hi = self.gpu_seconds()
        sampling = sum(t.gpu_sampling_seconds for t in self.tasks)
        out += [
            f"  one GPU:                {_duration(mid)} (between {_duration(lo)} and "
            f"{_duration(hi)}: {sum(t.gpu_unit_iterations for t in self.tasks):,} "
            f"unit-iterations, incl. {_duration(sampling)} drawing batches on one CPU core)",
            f"    GPU rates: {GPU_MEASURED['device']}, {GPU_MEASURED['date']}, "
            f"{GPU_MEASURED['source']}",
        ]
        return out


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _search_specs(plan: TaskPlan, configs: list[Configuration]) -> list[NetworkSpec]:
    from rnnzoo_train.search import search_specs

    return [spec for c in configs for spec in search_specs(plan, c)]


def _by_shape(configs: Sequence[Configuration]) -> list[list[Configuration]]:
    groups: dict[tuple, list[Configuration]] = {}
    for c in configs:
        groups.setdefault((c.arch, c.activation, c.units), []).append(c)
    return list(groups.values())


def project(preset: Preset, tasks: Sequence[str] | None = None) -> Projection:
    """Project the cost of training ``preset`` (its ``tasks``, default all) from measured rates.

    The work units are those ``rnnzoo-train generate`` makes (``generate.seed_units`` and the
    search units, sized by ``generate.unit_capacity`` for the CPU and for a GPU); nothing is
    trained or written.
    """
    from rnnzoo_train.generate import seed_units, unit_capacity
    from rnnzoo_train.tasks import get_task

    task_costs, unit_costs = [], []
    for name in tasks or preset.tasks:
        plan = preset.plan(name)
        task = get_task(name, **plan.task_config.get("params", {}))
        T = int(task.n_steps)
        fixed = {c: preset.fixed_hparams(c, name) for c in plan.configurations}
        units: list[tuple[str, tuple[NetworkSpec, ...]]] = []
        gpu: list[tuple[NetworkSpec, ...]] = []
        for configs in _by_shape(plan.configurations):
            trials = _search_specs(plan, configs) if plan.n_trials else []
            for device in ("cpu", "cuda"):
                size = unit_capacity(plan, configs[0], T, device)
                chunks = [tuple(trials[i : i + size]) for i in range(0, len(trials), size)]
                if device == "cpu":
                    units += [("search", c) for c in chunks]
                else:
                    gpu += chunks
        units += [("seeds", u.specs) for u in seed_units(plan, fixed, T, "cpu")]
        gpu += [u.specs for u in seed_units(plan, fixed, T, "cuda")]
        cpu_total = 0.0
        net_its = 0
        step_its = 0  # network-iterations x their trial length (drawing batches)
        for phase, specs in units:
            s0 = specs[0]
            cell = f"{s0.config.arch}-{s0.config.activation}"
            stages = trial_length_stages(s0, T)  # a curriculum: each stage at its own T
            seconds = len(specs) * sum(
                k * cpu_rate(name, cell, s0.config.units, t) for t, k in stages
            )
            gates = gate_count(s0.config.arch, 1)
            order = len(specs) * sum(t * k for t, k in stages) * gates * s0.config.units**2
            unit_costs.append(
                UnitCost(
                    name,
                    phase,
                    f"{s0.config.group} ({phase}, {len(specs)})",
                    len(specs),
                    s0.iterations,
                    seconds,
                    order,
                )  # fmt: skip
            )
            cpu_total += seconds
            net_its += sum(s.iterations for s in specs)
            step_its += len(specs) * sum(t * k for t, k in stages)
        s_steps, s_rate = GPU_SAMPLING_SECONDS.get(name, (T, GPU_SAMPLING_SECONDS["sine"][1]))
        gpu_seconds = [0.0, 0.0, 0.0]
        for specs in gpu:
            for t, k in trial_length_stages(specs[0], T):
                times = gpu_unit_seconds(name, specs[0].config, len(specs), t)
                for i in range(3):
                    gpu_seconds[i] += k * times[i]
        n_seeds = len(plan.configurations) * len(plan.seeds)
        n_trials = len(plan.configurations) * plan.n_trials
        task_costs.append(
            TaskCost(
                task=name,
                n_steps=T,
                seeds=n_seeds,
                trials=n_trials,
                network_iterations=net_its,
                cpu_seconds=cpu_total,
                gpu_unit_iterations=sum(specs[0].iterations for specs in gpu),
                gpu_seconds=(gpu_seconds[0], gpu_seconds[1], gpu_seconds[2]),
                gpu_sampling_seconds=step_its * s_rate / s_steps,
                schedule=plan.schedule,
            )
        )
    return Projection(preset.name, task_costs, unit_costs)
