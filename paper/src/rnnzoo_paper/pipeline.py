"""The reproduction as resumable steps: zoo -> dynamics -> distances -> figures -> report.

``run_pipeline(options)`` (CLI: ``rnnzoo-paper demo``):

1. **zoo**: generate the preset's zoo into ``<out>/zoo.zarr`` (``rnnzoo_train.generate``), or
   open the one given with ``--zoo`` (a directory, published zips or a URL). Generation
   resumes: networks already ``ok`` are not retrained.
2. **dynamics**: every dynamics analysis of every task (``rnnzoo_dynamics.analyze``), stored
   in the zoo (or, for a read-only zoo, in ``<out>/analyses.zarr``); networks already
   analysed are skipped.
3. **distances**: SVCCA, CKA, fixed-point-graph distances and their MDS embeddings
   (``rnnzoo_metrics``), stored beside the analyses and reused while their inputs are
   unchanged (:mod:`rnnzoo_paper.distances`).
   **dynamical similarity** (beyond the paper): DSA matrices, embeddings and the report's
   questions about them (:mod:`rnnzoo_paper.dynamical_similarity`).
4. **figures**: Figs 1-4 and Appendix C/E as PNG in ``<out>``.
5. **report**: ``<out>/findings.json`` and ``<out>/report.md`` (figures inline).

The same steps run in this process (``--workers 1``), on a Dask LocalCluster of N
single-threaded worker processes (``--workers N``, default 2), in a plain pool of N processes
(``--processes N``) or on an existing Dask cluster (``--scheduler ADDRESS``); the choice is
rnnzoo-train's (:func:`rnnzoo_train.runners.choose_runner`). Only the public APIs of
rnnzoo-train, rnnzoo-dynamics and rnnzoo-metrics are used.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .outdir import OutputError, check_out, make_out

ZOO_DIR = "zoo.zarr"
ANALYSIS_STORE = "analyses.zarr"
#: populations from which distance matrices are computed in worker processes
PARALLEL_FROM = 200
#: ``--workers`` of ``rnnzoo-paper demo`` when none of the runner options is given
DEFAULT_WORKERS = 2
#: steps of a run (zoo, dynamics, distances, dynamical similarity, figures, report)
N_STEPS = 6


class PipelineError(Exception):
    """A user mistake (one line: what is wrong and what to do)."""


@dataclass
class PipelineOptions:
    """What ``rnnzoo-paper demo`` was asked to do.

    Attributes
    ----------
    out : Path
        Output folder (figures, report; the generated zoo in ``out/zoo.zarr``).
    zoo : str, optional
        An existing zoo (directory, zip(s) comma-separated, or URL): no generation.
    preset : str
        Preset to generate when ``zoo`` is not given (``tiny``, ``demo``, ``paper``).
    config : Path, optional
        A grid file instead of a preset (``docs/training.md``).
    tasks : tuple of str, optional
        Tasks to run (default: all of the preset or the zoo).
    workers : int, optional
        ``N > 1``: a Dask LocalCluster of N single-threaded worker processes; ``1``: this
        process. ``None``: 2, unless ``processes`` or ``scheduler`` is given.
    processes : int, optional
        A plain pool of this many worker processes instead (no Dask scheduler).
    scheduler : str, optional
        Address of an existing Dask scheduler.
    starts : int, optional
        Initial states per condition of the fixed-point finder (default: rnnzoo-dynamics').
    progress : bool
        Progress bars on stderr.
    dsa_search : str
        rnnzoo-metrics' Procrustes search for the *dynamical similarity* step: ``thorough``
        (default; never worse than ``dsa-metric`` on every pair compared) or ``fast`` (~10-20x
        cheaper: for paper-sized zoos, all pairs of 2,880 networks in an hour on 2 cores).
    """

    out: Path
    zoo: str | None = None
    preset: str = "demo"
    config: Path | None = None
    tasks: tuple[str, ...] | None = None
    workers: int | None = None
    processes: int | None = None
    scheduler: str | None = None
    starts: int | None = None
    progress: bool = True
    dsa_search: str = "thorough"


@dataclass
class StepRecord:
    """Wall time and a one-line summary of one pipeline step."""

    name: str
    seconds: float
    summary: str


@dataclass
class PipelineResult:
    """What a run produced."""

    out: Path
    zoo_location: str
    tasks: list[str]
    steps: list[StepRecord] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    figure_errors: list[str] = field(default_factory=list)
    findings: list[Any] = field(default_factory=list)
    report: Path | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.figure_errors


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _is_remote(location: str) -> bool:
    return "://" in location or location.endswith(".zip") or "," in location


def _runner(opt: PipelineOptions):
    """The runner of ``workers`` / ``processes`` / ``scheduler`` (not started)."""
    from rnnzoo_train.runners import RunnerOptionError, choose_runner

    try:
        return choose_runner(
            opt.workers, opt.processes, opt.scheduler, default_workers=DEFAULT_WORKERS
        )
    except RunnerOptionError as err:
        raise PipelineError(str(err)) from None


def _start(runner: Any) -> None:
    """Start the runner's workers (or reach its scheduler) and say which runner it is."""
    from rnnzoo_train.runners import RunnerOptionError, describe_runner, start_runner

    try:
        start_runner(runner)
    except RunnerOptionError as err:  # an unreachable scheduler
        raise PipelineError(str(err)) from None
    _log(f"runner: {describe_runner(runner)}")


def check_options(opt: PipelineOptions):
    """Refuse every user mistake before anything is created; returns the runner (not started).

    Checks the output folder (:func:`rnnzoo_paper.outdir.check_out`), the preset or grid
    file, the tasks (known to rnnzoo-train, and in the preset or the given zoo), the zoo
    given with ``--zoo`` (it must open), ``--starts``, ``--dsa-search`` and the runner options.

    Raises
    ------
    PipelineError
    """
    from rnnzoo_train.tasks import available_tasks

    try:
        check_out(Path(opt.out), "demo")
    except OutputError as err:
        raise PipelineError(str(err)) from None
    if opt.starts is not None and opt.starts < 1:
        raise PipelineError(f"--starts must be >= 1, got {opt.starts}")
    from rnnzoo_metrics.dsa import SEARCHES

    if opt.dsa_search not in SEARCHES:
        raise PipelineError(
            f"--dsa-search must be one of {', '.join(SEARCHES)}, got {opt.dsa_search!r}"
        )
    if opt.tasks is not None and not opt.tasks:
        raise PipelineError("--task is empty; give task names or 'all'")
    if opt.zoo is None:
        known = available_tasks()
        for t in opt.tasks or ():
            if t not in known:
                raise PipelineError(f"unknown task {t!r}; choose from {', '.join(known)} or 'all'")
        _preset(opt)
    else:
        location, store = _location(opt)
        _tasks(opt, _open(location, store))
    return _runner(opt)


def _preset(opt: PipelineOptions):
    from rnnzoo_train.presets import PresetError, get_preset, load_grid

    try:
        if opt.config is not None:
            if not Path(opt.config).is_file():
                raise PipelineError(f"no grid file {opt.config}; see docs/training.md")
            return load_grid(opt.config)
        return get_preset(opt.preset)
    except PresetError as err:
        raise PipelineError(str(err)) from None


def _location(opt: PipelineOptions) -> tuple[str | list[str], str | None]:
    """The zoo to open (and the analysis store when it is read-only)."""
    if opt.zoo is None:
        return str(opt.out / ZOO_DIR), None
    parts = [p for p in opt.zoo.split(",") if p]
    for p in parts:
        if "://" not in p and not Path(p).exists():
            raise PipelineError(
                f"no zoo at {p}; give a zoo directory, published zip(s) or a URL "
                "(or leave --zoo out to generate the demo zoo)"
            )
    loc: str | list[str] = parts if len(parts) > 1 else parts[0]
    store = str(opt.out / ANALYSIS_STORE) if _is_remote(opt.zoo) else None
    return loc, store


def step_zoo(opt: PipelineOptions, runner: Any) -> tuple[str | list[str], str | None, str]:
    """Generate (or resume) the zoo, or check the given one; returns location and summary."""
    location, store = _location(opt)
    if opt.zoo is not None:
        zoo = _open(location, store)
        n = sum(len(zoo.index(t)) for t in zoo.tasks)
        return location, store, f"using {opt.zoo}: {len(zoo.tasks)} task(s), {n} networks"
    from rnnzoo_train.generate import generate
    from rnnzoo_train.zoo import ZarrZooWriter, ZooError

    preset = _preset(opt)
    tasks = list(opt.tasks or preset.tasks)
    finished = _finished(str(location), preset, tasks)
    if finished is not None:
        return location, store, finished
    try:
        report = generate(
            preset, tasks, ZarrZooWriter(str(location)), runner=runner, progress=opt.progress
        )
    except ZooError as err:  # e.g. the folder holds a zoo of another preset
        raise PipelineError(str(err)) from None
    for line in report.table().splitlines():
        _log(f"  {line}")
    summary = (
        f"preset {preset.name}: {report.trained} network(s) trained, {report.skipped} reused "
        f"({len(tasks)} task(s))"
    )
    if report.failed_units:
        summary += f"; {len(report.failed_units)} work unit(s) FAILED (rerun to resume)"
    return location, store, summary


#: training statuses that are final: rerunning generation would only repeat them
FINAL = ("ok", "diverged")


def _finished(location: str, preset, tasks: list[str]) -> str | None:
    """A summary if ``location`` holds this preset's finished zoo for ``tasks``, else None.

    Finished means every network is ``ok`` or ``diverged`` (training is deterministic, so a
    diverged network would diverge again); the trainer's resume would retrain the work units
    of diverged networks. Plans are compared so that a changed preset is not mistaken for a
    finished one.
    """
    if not (Path(location) / "zarr.json").is_file():
        return None
    from rnnzoo_train.zoo import ZooError, open_zoo

    try:
        zoo = open_zoo(location)
    except (ZooError, OSError, ValueError):
        return None  # let generation report what is wrong with it
    try:
        n = 0
        for task in tasks:
            if task not in zoo.tasks or zoo.plan(task) != preset.plan(task):
                return None
            status = zoo.index(task)["status"].astype(str)
            if not status.isin(FINAL).all():
                return None
            n += len(status)
        return f"reused the finished {preset.name} zoo ({n} networks, {len(tasks)} task(s))"
    finally:
        zoo.close()


def _open(location: str | list[str], store: str | None):
    from rnnzoo_train.zoo import ZooError, open_zoo

    try:
        return open_zoo(location, analysis_store=store)
    except (ZooError, OSError, ValueError) as err:
        raise PipelineError(f"cannot open the zoo: {err}") from None


def _tasks(opt: PipelineOptions, zoo) -> list[str]:
    tasks = list(opt.tasks or zoo.tasks)
    unknown = [t for t in tasks if t not in zoo.tasks]
    if unknown:
        raise PipelineError(
            f"the zoo has no task {unknown[0]!r}; it has: {', '.join(zoo.tasks) or 'none'}"
        )
    return tasks


def step_dynamics(opt: PipelineOptions, location, store, tasks: list[str], runner: Any) -> str:
    """Every dynamics analysis of every task (resumes per network)."""
    from rnnzoo_dynamics.analyze import AnalysisError, analyze_zoo
    from rnnzoo_dynamics.population import AnalysisOptions

    options = AnalysisOptions(n_starts=opt.starts)
    lines = []
    for task in tasks:
        try:
            report = analyze_zoo(
                location,
                task,
                options=options,
                runner=runner,
                analysis_store=store,
                progress=opt.progress,
            )
        except AnalysisError as err:
            raise PipelineError(str(err)) from None
        for line in report.lines():
            _log(f"  {line}")
        lines.append(
            f"{task} {report.analysed} analysed / {report.resumed} reused"
            + (f" / {len(report.failed)} failed" if report.failed else "")
        )
    return "; ".join(lines)


def step_distances(zoo, tasks: list[str], runner: Any, opt: PipelineOptions):
    """Distance matrices and embeddings of every task, and Fig. 4's trained/untrained SVCCA."""
    from rnnzoo_train.runners import ProcessRunner

    from . import distances as dist

    # a Dask runner (--workers N > 1, --scheduler) computes the tiles on its workers; a
    # process pool (--processes N) only for large populations: below PARALLEL_FROM networks
    # starting its processes costs more than the whole matrix
    client = getattr(runner, "client", None) if hasattr(type(runner), "client") else None
    n_networks = max((len(zoo.index(t)) for t in tasks), default=0)
    pool = isinstance(runner, ProcessRunner) and n_networks >= PARALLEL_FROM
    compute = dist.Compute(
        n_jobs=runner.n_workers if client is None and pool else 1,
        client=client,
        progress=opt.progress,
    )
    matrices: dict[str, dict] = {}
    embeddings: dict[str, dict] = {}
    for task in tasks:
        t0 = time.perf_counter()
        matrices[task] = dist.task_distances(zoo, task, compute)
        _log(
            f"  {task}: {', '.join(matrices[task]) or 'no'} distances "
            f"({time.perf_counter() - t0:.1f} s)"
        )
        embeddings[task] = {
            k: e
            for k, d in matrices[task].items()
            if (e := dist.embedding(zoo, task, k, d)) is not None
        }
    fig4 = dist.trained_untrained_distance(zoo, compute) if "cdi" in tasks else None
    fig4_emb = dist.embedding(zoo, dist.FIG4_TASK, dist.FIG4.key, fig4)
    n = sum(len(m) for m in matrices.values()) + (fig4 is not None)
    return matrices, embeddings, fig4, fig4_emb, f"{n} distance matrices"


def step_figures(ctx, out: Path) -> tuple[list[Path], list[str]]:
    """Draw every figure; a figure that fails is reported and the others still drawn."""
    from .figures import figure_list

    written, errors = [], []
    todo = [f for f in figure_list() if f[3] is None or f[3] in ctx.tasks]
    for k, (name, draw, _caption, _task) in enumerate(todo, 1):
        # figures whose task is not in this run are skipped (the report says why)
        t0 = time.perf_counter()
        try:
            written.append(draw(ctx, out / name))
            _log(f"  [{k}/{len(todo)}] wrote {out / name} ({time.perf_counter() - t0:.1f} s)")
        except Exception as err:  # a figure bug must not lose the report
            errors.append(f"{name}: {type(err).__name__}: {err}")
            _log(f"  FAILED {name}:\n{traceback.format_exc()}")
    return written, errors


def _timed(result: PipelineResult, name: str, fn: Callable[[], Any]) -> Any:
    _log(f"[{len(result.steps) + 1}/{N_STEPS}] {name} ...")
    t0 = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - t0
    summary = value[-1] if isinstance(value, tuple) else str(value or "")
    result.steps.append(StepRecord(name, seconds, summary))
    _log(f"[{len(result.steps)}/{N_STEPS}] {name}: {summary} ({seconds:.1f} s)")
    return value


def run_pipeline(opt: PipelineOptions) -> PipelineResult:
    """Run every step (module docstring); returns what was produced.

    Raises
    ------
    PipelineError
        For user mistakes (unknown preset or task, missing zoo, unwritable output).
    """
    from . import report as report_mod
    from .figures.common import FigureContext
    from .findings import all_findings

    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(k, "1")
    import torch

    torch.set_num_threads(1)
    out = Path(opt.out)
    # user mistakes fail before anything is created or runs
    runner = check_options(opt)
    try:
        make_out(out, "demo")
    except OutputError as err:
        raise PipelineError(str(err)) from None
    started = time.perf_counter()
    result = PipelineResult(out=out, zoo_location="", tasks=[])
    try:
        _start(runner)
        location, store, _ = _timed(result, "zoo", lambda: step_zoo(opt, runner))
        result.zoo_location = location if isinstance(location, str) else ",".join(location)
        zoo = _open(location, store)
        tasks = _tasks(opt, zoo)
        result.tasks = tasks
        _timed(result, "dynamics", lambda: step_dynamics(opt, location, store, tasks, runner))
        zoo = _open(location, store)
        matrices, embeddings, fig4, fig4_emb, _ = _timed(
            result, "distances", lambda: step_distances(zoo, tasks, runner, opt)
        )
        from .dynamical_similarity import step as step_dsa

        dsa, _ = _timed(
            result,
            "dynamical similarity",
            lambda: step_dsa(zoo, tasks, runner, opt, matrices, fig4),
        )
    finally:
        close = getattr(runner, "close", None)
        if close is not None:
            close()
    ctx = FigureContext(zoo, tasks, matrices, embeddings, fig4, fig4_emb, dsa=dsa)

    def figures() -> tuple[list[Path], list[str], str]:
        written, errors = step_figures(ctx, out)
        return (
            written,
            errors,
            f"{len(written)} figure(s)" + (f", {len(errors)} FAILED" if errors else ""),
        )

    result.figures, result.figure_errors, _ = _timed(result, "figures", figures)

    def findings() -> tuple[list, Path, str]:
        found = all_findings(zoo, tasks, matrices, fig4)
        (out / "findings.json").write_text(
            json.dumps([f.to_dict() for f in found], indent=1, ensure_ascii=False)
        )
        result.findings = found
        path = report_mod.write_report(result, zoo, ctx, time.perf_counter() - started)
        return found, path, f"{len(found)} findings"

    _, result.report, _ = _timed(result, "report", findings)
    # the report's timing table needs the report step too: rewrite it with all five
    report_mod.write_report(result, zoo, ctx, time.perf_counter() - started)
    return result
