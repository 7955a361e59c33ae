"""``rnnzoo-dynamics``: fixed points, linearisations and graphs for every network of a zoo.

    rnnzoo-dynamics analyze ZOO --task flipflop [--workers 2 | --processes 2 | --scheduler ADDR]
    rnnzoo-dynamics summary ZOO --task flipflop
    rnnzoo-dynamics plot ZOO --task sine --out figures/
    rnnzoo-dynamics place --zoo ZOO --task flipflop --model my_rnn.py:make --out placed/

``--workers N`` (N > 1) runs the analyses on a Dask LocalCluster of N single-threaded worker
processes, ``--processes N`` in a plain pool of N processes, ``--scheduler ADDRESS`` on an
existing Dask cluster (:func:`rnnzoo_train.runners.choose_runner`); by default, in this process.

User mistakes (a missing zoo or not a zoo, an unknown task or network, a number out of its
range, options that differ from stored results, a missing analysis, conflicting runner
options, an analysis target that is a file, not an analysis store, read-only, or locked by
another writer) print one line on stderr and exit with status 2, before anything is
computed or written; no traceback. ``analyze`` holds the writer lock of its analysis target
(the zoo's own, or the analysis store's) for the whole run.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

from rnnzoo_dynamics._checks import MAX_SEED, MAX_STARTS, MAX_UNIT_SIZE
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
    a.add_argument(
        "--starts",
        type=int,
        help=f"initial states per condition, 1 to {MAX_STARTS:,} (default: per task)",
    )
    a.add_argument("--untrained", action="store_true", help="analyse the initial weights")
    a.add_argument(
        "--unit-size", type=int, default=4, help=f"networks per work unit, 1 to {MAX_UNIT_SIZE} (4)"
    )
    a.add_argument(
        "--flush-seconds",
        type=float,
        default=300.0,
        help="store merged results at least this often (300; 0: after every work unit)",
    )
    a.add_argument("--analysis-store", help="where to store results of a read-only zoo")
    a.add_argument("--force", action="store_true", help="recompute every network")
    a.add_argument("--seed", type=int, default=0, help="seed of the initial states, >= 0 (0)")
    a.add_argument("--quiet", action="store_true", help="no progress bar")
    from rnnzoo_train.runners import add_runner_arguments

    add_runner_arguments(a, default_workers=1)

    s = sub.add_parser("summary", help="per-group counts of a stored analysis")
    s.add_argument("zoo", nargs="+")
    s.add_argument("--task", action="append", help="task (repeatable; default: all analysed)")
    s.add_argument("--untrained", action="store_true")
    s.add_argument("--analysis-store", help="where the results of a read-only zoo are")

    f = sub.add_parser("plot", help="figures of the stored analyses (PNG)")
    f.add_argument("zoo", nargs="+")
    f.add_argument("--task", action="append", help="task (repeatable; default: all)")
    f.add_argument("--out", required=True, help="output directory for the PNG files")
    f.add_argument("--network", help="network for the per-network figure (default: first ok)")
    f.add_argument("--analysis-store", help="where the results of a read-only zoo are")

    from rnnzoo_dynamics.place_cli import add_parser as add_place_parser

    add_place_parser(sub)  # rnnzoo-dynamics place: your own network among the zoo's
    return p


def _zoo(args, *, writes: bool = False):
    """The zoo of ``args`` (and its analysis store), or a one-line :class:`CLIError`."""
    from rnnzoo_train.zoo import ZooError, open_zoo

    for loc in args.zoo:
        if "://" not in loc and not Path(loc).exists():
            raise CLIError(
                f"no zoo at {loc}; create one with `rnnzoo-train generate` or download one "
                "with `rnnzoo-train download`"
            )
    store = args.analysis_store
    if store is not None and not writes:
        if not Path(store).exists():
            raise CLIError(f"no analysis store at {store}; give the one `analyze` wrote to")
        if not Path(store, "zarr.json").is_file():
            raise CLIError(f"{store} is not an analysis store (no zarr.json)")
    try:
        return open_zoo(args.zoo if len(args.zoo) > 1 else args.zoo[0], analysis_store=store)
    except (ZooError, OSError, ValueError, zipfile.BadZipFile) as err:
        raise CLIError(_one_line(err)) from None


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _tasks(args, zoo, *, analysed_only: bool = False, suffix: str = "") -> list[str]:
    """The tasks asked for (each once), or every task (every analysed one: summary, plot)."""
    from rnnzoo_dynamics.analyze import SUMMARY

    tasks = list(dict.fromkeys(args.task or []))
    unknown = [t for t in tasks if t not in zoo.tasks]
    if unknown:
        raise CLIError(
            f"the zoo has no task {unknown[0]!r}; it has: {', '.join(zoo.tasks) or 'none'}"
        )
    if not analysed_only:
        return tasks or zoo.tasks
    done = [t for t in tasks or zoo.tasks if SUMMARY + suffix in zoo.analyses(t)]
    missing = [t for t in tasks if t not in done]
    if missing or not done:
        which = f"task {missing[0]!r}" if missing else "any task of this zoo"
        flag = " --untrained" if suffix else ""
        raise CLIError(
            f"no dynamics analysis stored for {which}; run `rnnzoo-dynamics analyze ZOO"
            f"{f' --task {missing[0]}' if missing else ''}{flag}` first"
        )
    return done


def _runner(args):
    """The runner of ``--workers`` / ``--processes`` / ``--scheduler`` (not started)."""
    from rnnzoo_train.runners import RunnerOptionError, choose_runner

    most = max(8, 4 * (os.cpu_count() or 1))
    for flag, n in (("--workers", args.workers), ("--processes", args.processes)):
        if n is not None and n > most:
            raise CLIError(
                f"{flag} must be at most {most} (4x this machine's {os.cpu_count()} CPUs: more "
                f"processes than cores only add memory), got {n}"
            )
    try:
        return choose_runner(args.workers, args.processes, args.scheduler, default_workers=1)
    except RunnerOptionError as err:
        raise CLIError(str(err)) from None


def _check_numbers(args) -> None:
    """Refuse a number out of its range, before anything is read or computed."""
    if args.starts is not None and not 1 <= args.starts <= MAX_STARTS:
        raise CLIError(
            f"--starts must be between 1 and {MAX_STARTS:,} (16x the largest default, 1,024: "
            "more starts find no more fixed points and a work unit of 4 networks holds "
            f"~2.7 GB at the bound), got {args.starts}"
        )
    if not 0 <= args.seed <= MAX_SEED:
        raise CLIError(f"--seed must be between 0 and 2**63 - 1, got {args.seed}")
    if not 1 <= args.unit_size <= MAX_UNIT_SIZE:
        raise CLIError(
            f"--unit-size must be between 1 and {MAX_UNIT_SIZE} (a work unit is one batch: its "
            f"memory grows with it, its speed does not), got {args.unit_size}"
        )
    if not (math.isfinite(args.flush_seconds) and args.flush_seconds >= 0):
        raise CLIError(f"--flush-seconds must be a finite number >= 0, got {args.flush_seconds}")


def _check_networks(args, zoo, tasks: list[str]) -> None:
    """Every ``--network`` must be in every task analysed (checked before computing)."""
    for task in tasks:
        index = zoo.index(task).index
        unknown = [n for n in args.network or [] if n not in index]
        if unknown:
            raise CLIError(
                f"no network(s) {', '.join(unknown[:3])} in task {task!r}; see `rnnzoo-train info`"
            )


def _analyze(args) -> int:
    from rnnzoo_dynamics.analyze import AnalysisError, analyze_zoo
    from rnnzoo_dynamics.population import AnalysisOptions
    from rnnzoo_train.runners import RunnerOptionError, StartOnFirstUse

    _check_numbers(args)
    runner = _runner(args)
    zoo = _zoo(args, writes=True)
    tasks = _tasks(args, zoo)
    _check_networks(args, zoo, tasks)
    try:
        options = AnalysisOptions(n_starts=args.starts, seed=args.seed)
    except ValueError as err:
        raise CLIError(str(err)) from None
    # the cluster starts (and the runner line is printed) when the first networks are sent
    # out, after analyze_zoo has checked networks and stored options: mistakes stay one line
    from tqdm.auto import tqdm

    runner = StartOnFirstUse(runner, lambda line: tqdm.write(line, file=sys.stderr))
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
                    flush_seconds=args.flush_seconds,
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
    tasks = _tasks(args, zoo, analysed_only=True, suffix="-untrained" if args.untrained else "")
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
    tasks = _tasks(args, zoo, analysed_only=True)
    if args.network is not None:
        _check_networks(argparse.Namespace(network=[args.network]), zoo, tasks)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} is a file; give a directory for the figures")
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

    from rnnzoo_dynamics.analyze import AnalysisError
    from rnnzoo_train.zoo import ZooError

    torch.set_num_threads(1)
    try:
        if args.command == "analyze":
            return _analyze(args)
        if args.command == "summary":
            return _summary(args)
        if args.command == "place":
            from rnnzoo_dynamics.place_cli import run_place

            return run_place(args)
        return _plot(args)
    except (CLIError, AnalysisError, ZooError) as err:
        # ZooError: every problem of the store a user can act on (one line, by design)
        print(f"rnnzoo-dynamics: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("rnnzoo-dynamics: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `rnnzoo-dynamics summary ZOO | head`
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
