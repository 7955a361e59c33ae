"""``rnnzoo-dynamics``: fixed points, linearisations and graphs for every network of a zoo.

    rnnzoo-dynamics analyze ZOO --task flipflop [--workers 2 | --processes 2 | --scheduler ADDR]
    rnnzoo-dynamics summary ZOO --task flipflop
    rnnzoo-dynamics plot ZOO --task sine --out figures/

``--workers N`` (N > 1) runs the analyses on a Dask LocalCluster of N single-threaded worker
processes, ``--processes N`` in a plain pool of N processes, ``--scheduler ADDRESS`` on an
existing Dask cluster (:func:`rnnzoo_train.runners.choose_runner`); by default, in this process.

User mistakes (a missing zoo, an unknown task or network, options that differ from stored
results, a missing analysis, conflicting runner options) print one line on stderr and exit
with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from rnnzoo_train.signals import exit_on_sigterm

EXIT_USAGE = 2


class CLIError(Exception):
    """A user mistake: printed as one line, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rnnzoo-dynamics",
        description="Fixed points, linearisations and fixed-point graphs of every network "
        "in an rnnzoo zoo (paper sections 2.3 and 3).",
    )
    sub = p.add_subparsers(dest="command", required=True)

    a = sub.add_parser("analyze", help="find fixed points and run every analysis; store them")
    a.add_argument("zoo", nargs="+", help="zoo directory, published zip(s) or URL")
    a.add_argument(
        "--task", action="append", help="task to analyse (repeatable; default: all tasks)"
    )
    a.add_argument("--network", action="append", help="only this network id (repeatable)")
    a.add_argument("--starts", type=int, help="initial states per condition (default: per task)")
    a.add_argument("--untrained", action="store_true", help="analyse the initial weights")
    a.add_argument("--unit-size", type=int, default=4, help="networks per work unit (4)")
    a.add_argument("--analysis-store", help="where to store results of a read-only zoo")
    a.add_argument("--force", action="store_true", help="recompute every network")
    a.add_argument("--seed", type=int, default=0, help="seed of the initial states (0)")
    a.add_argument("--quiet", action="store_true", help="no progress bar")
    from rnnzoo_train.runners import add_runner_arguments

    add_runner_arguments(a, default_workers=1)

    s = sub.add_parser("summary", help="per-group counts of a stored analysis")
    s.add_argument("zoo", nargs="+")
    s.add_argument("--task", action="append", help="task (repeatable; default: all analysed)")
    s.add_argument("--untrained", action="store_true")
    s.add_argument("--analysis-store")

    f = sub.add_parser("plot", help="figures of the stored analyses (PNG)")
    f.add_argument("zoo", nargs="+")
    f.add_argument("--task", action="append", help="task (repeatable; default: all)")
    f.add_argument("--out", required=True, help="output directory for the PNG files")
    f.add_argument("--network", help="network for the per-network figure (default: first ok)")
    f.add_argument("--analysis-store")
    return p


def _zoo(args):
    from rnnzoo_train.zoo import ZooError, open_zoo

    for loc in args.zoo:
        if "://" not in loc and not Path(loc).exists():
            raise CLIError(
                f"no zoo at {loc}; create one with `rnnzoo-train generate` or download one "
                "with `rnnzoo-train download`"
            )
    try:
        return open_zoo(
            args.zoo if len(args.zoo) > 1 else args.zoo[0], analysis_store=args.analysis_store
        )
    except (ZooError, OSError) as err:
        raise CLIError(str(err)) from None


def _tasks(args, zoo) -> list[str]:
    tasks = args.task or zoo.tasks
    unknown = [t for t in tasks if t not in zoo.tasks]
    if unknown:
        raise CLIError(
            f"the zoo has no task {unknown[0]!r}; it has: {', '.join(zoo.tasks) or 'none'}"
        )
    return tasks


def _runner(args):
    """The runner of ``--workers`` / ``--processes`` / ``--scheduler`` (not started)."""
    from rnnzoo_train.runners import RunnerOptionError, choose_runner

    try:
        return choose_runner(args.workers, args.processes, args.scheduler, default_workers=1)
    except RunnerOptionError as err:
        raise CLIError(str(err)) from None


def _analyze(args) -> int:
    from rnnzoo_dynamics.analyze import AnalysisError, analyze_zoo
    from rnnzoo_dynamics.population import AnalysisOptions
    from rnnzoo_train.runners import RunnerOptionError, StartOnFirstUse

    zoo = _zoo(args)
    tasks = _tasks(args, zoo)
    if args.starts is not None and args.starts < 1:
        raise CLIError(f"--starts must be >= 1, got {args.starts}")
    options = AnalysisOptions(n_starts=args.starts, seed=args.seed)
    # the cluster starts (and the runner line is printed) when the first networks are sent
    # out, after analyze_zoo has checked networks and stored options: mistakes stay one line
    from tqdm.auto import tqdm

    runner = StartOnFirstUse(_runner(args), lambda line: tqdm.write(line, file=sys.stderr))
    status = 0
    location = args.zoo if len(args.zoo) > 1 else args.zoo[0]
    try:
        for task in tasks:
            try:
                report = analyze_zoo(
                    location,
                    task,
                    options=options,
                    which="initial" if args.untrained else "final",
                    network_ids=args.network,
                    runner=runner,
                    unit_size=args.unit_size,
                    analysis_store=args.analysis_store,
                    force=args.force,
                    progress=not args.quiet,
                )
            except (AnalysisError, RunnerOptionError) as err:  # or an unreachable scheduler
                raise CLIError(str(err)) from None
            for line in report.lines():
                print(line)
            if report.failed:
                status = 1
    finally:
        close = getattr(runner, "close", None)
        if close is not None:
            close()
    return status


def _summary(args) -> int:
    from rnnzoo_dynamics.analyze import AnalysisError, summary_table

    zoo = _zoo(args)
    tasks = _tasks(args, zoo)
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_columns", 20):
        for task in tasks:
            try:
                table = summary_table(zoo, task, "initial" if args.untrained else "final")
            except AnalysisError as err:
                raise CLIError(str(err)) from None
            print(f"== {task}")
            print(table.to_string())
            _print_modal(zoo, task, "-untrained" if args.untrained else "")
    return 0


def _print_modal(zoo, task: str, suffix: str) -> None:
    """Modal node count of each graph analysis, per architecture x activation."""
    from rnnzoo_dynamics.analyze import read_analysis
    from rnnzoo_dynamics.graphs import modal_node_counts

    for name in sorted(zoo.analyses(task)):
        if not name.endswith("graph" + suffix) and "graph-" not in name:
            continue
        if name.endswith("-untrained") != bool(suffix):
            continue
        ds = read_analysis(zoo, task, name, missing_ok=True)
        if ds is None or "graph_n_nodes" not in ds:
            continue
        table = modal_node_counts(ds, by=["arch", "activation"])
        table["non_modal"] = [", ".join(v) for v in table["non_modal"]]
        print(f"-- {name}: modal node count {ds.attrs.get('graph_modal_n_nodes')} over the task")
        print(table.to_string(index=False))


def _plot(args) -> int:
    from rnnzoo_dynamics.plots import plot_zoo

    zoo = _zoo(args)
    tasks = _tasks(args, zoo)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CLIError(f"cannot create {out}: {err.strerror}") from None
    status = 0
    for task in tasks:
        written, missing = plot_zoo(zoo, task, out, network=args.network)
        for path in written:
            print(f"wrote {path}")
        for line in missing:
            print(f"skipped: {line}", file=sys.stderr)
            status = 1
    return status


@exit_on_sigterm("rnnzoo-dynamics")  # SIGTERM: workers stopped, one line, status 143
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rnnzoo-dynamics`` command."""
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(k, "1")
    args = _parser().parse_args(argv)
    import torch

    torch.set_num_threads(1)
    try:
        if args.command == "analyze":
            return _analyze(args)
        if args.command == "summary":
            return _summary(args)
        return _plot(args)
    except CLIError as err:
        print(f"rnnzoo-dynamics: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("rnnzoo-dynamics: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
