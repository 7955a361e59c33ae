"""The ``rnnzoo-train`` command line.

Subcommands are registered, so other modules add their own without editing this file::

    from rnnzoo_train.cli import CLIError, register

    def add_arguments(parser): parser.add_argument("path")
    def run(args) -> int: ...; return 0

    register("verify", "check a zoo's checksums", add_arguments, run)

Modules listed in :data:`SUBCOMMAND_MODULES` are imported (if installed) before parsing, so
their ``register`` calls take effect. A ``run`` function signals a user mistake by raising
:class:`CLIError` (or ``PresetError``): the command prints one line ``rnnzoo-train: error:
...`` and exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rnnzoo_train.signals import exit_on_sigterm

PROG = "rnnzoo-train"

#: modules that register further subcommands when imported (skipped if absent)
SUBCOMMAND_MODULES = ["rnnzoo_train.zoo.cli"]


class CLIError(Exception):
    """A user mistake: printed as one line, exit status 2."""


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]


_REGISTRY: dict[str, Subcommand] = {}


def register(
    name: str,
    help: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run: Callable[[argparse.Namespace], int | None],
) -> None:
    """Add (or replace) the subcommand ``name``."""
    _REGISTRY[name] = Subcommand(name, help, add_arguments, run)


def subcommands() -> dict[str, Subcommand]:
    """Registered subcommands, after importing :data:`SUBCOMMAND_MODULES`."""
    for module in SUBCOMMAND_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name is None or not module.startswith(err.name):
                raise
    return dict(_REGISTRY)


# -- generate -----------------------------------------------------------------------------


def _generate_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", default=None, help="tiny, demo (default) or paper")
    src.add_argument("--config", metavar="GRID.toml", help="a grid file (see docs/training.md)")
    p.add_argument(
        "--task",
        default="all",
        help="task name(s), comma-separated, or 'all' (the preset's tasks; default)",
    )
    p.add_argument("--out", metavar="PATH", help="zoo store to create or resume (required)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="train nothing: print the number of networks and the projected cost on this "
        "machine's CPU, on N workers (--workers/--processes N, else 16) and on one GPU",
    )
    p.add_argument(
        "--device",
        default="cpu",
        help="where workers train: cpu (default) or cuda[:N] (a GPU; see docs/training.md)",
    )
    from rnnzoo_train.runners import add_runner_arguments

    add_runner_arguments(p, default_workers=1)


def resolve_tasks(spec: str, default: Sequence[str]) -> list[str]:
    """Task names from ``--task`` (``all`` -> ``default``); unknown names raise CLIError."""
    from rnnzoo_train.tasks import available_tasks

    known = available_tasks()
    names = list(default) if spec.strip() == "all" else [t.strip() for t in spec.split(",")]
    names = [n for n in names if n]
    if not names:
        raise CLIError("--task is empty; give task names or 'all'")
    for n in names:
        if n not in known:
            raise CLIError(f"unknown task {n!r}; choose from {', '.join(known)} or 'all'")
    return names


def check_writable(path: Path) -> None:
    """Raise CLIError unless ``path`` is, or can be created as, a directory we may write.

    The test is an actual write: a file is created (and removed) in ``path``, or in its
    nearest existing ancestor, since mode bits do not stop root and a read-only file system
    or an immutable folder (``chattr +i``) refuses it anyway. Nothing is left behind.
    """
    if path.exists() and not path.is_dir():
        raise CLIError(f"output {str(path)!r} exists and is not a directory; choose another --out")
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise CLIError(f"cannot create output {str(path)!r}: {str(ancestor)!r} is not a directory")
    from rnnzoo_train.zoo.targets import unwritable

    reason = unwritable(ancestor)
    if reason is not None:
        raise CLIError(f"cannot write to {str(ancestor)!r} ({reason}); choose another --out")


def make_runner(args: argparse.Namespace):
    """The runner chosen by ``--workers`` / ``--processes`` / ``--scheduler``, not started.

    ``--workers N`` (N > 1): a Dask LocalCluster; ``--processes N``: a process pool;
    ``--scheduler ADDRESS``: an existing Dask cluster; else this process
    (:func:`rnnzoo_train.runners.choose_runner`). Conflicting options raise CLIError.
    """
    from rnnzoo_train.runners import RunnerOptionError, choose_runner

    try:
        return choose_runner(args.workers, args.processes, args.scheduler, default_workers=1)
    except RunnerOptionError as err:
        raise CLIError(str(err)) from None


def check_device(device: str, local: bool) -> None:
    """Raise CLIError for a malformed ``--device``, or, for local workers, a missing GPU."""
    from rnnzoo_train.training.device_kernel import parse_device, resolve_device

    try:
        (resolve_device if local else parse_device)(device)
    except ValueError as err:
        raise CLIError(str(err)) from None


def open_writer(path: Path):
    """The Zarr zoo writer for ``--out``."""
    try:
        from rnnzoo_train.zoo import ZarrZooWriter
    except ImportError as err:
        raise CLIError(f"the Zarr zoo store is not available ({err})") from None
    return ZarrZooWriter(path)


def check_output(writer, preset, tasks: Sequence[str]) -> None:
    """Raise CLIError for an output ``generate`` cannot use, reading only.

    A path that is not a zoo, a zoo of another plan or version, a damaged index or search
    table: refused with one line before anything is printed, started or written.
    """
    from rnnzoo_train.tasks import get_task
    from rnnzoo_train.zoo.errors import ZooError

    check = getattr(writer, "check", None)
    if check is None:
        return
    for name in tasks:
        plan = preset.plan(name)
        try:
            check(plan, get_task(name, **plan.task_config.get("params", {})))
        except (ValueError, ZooError) as err:
            raise CLIError(str(err)) from None


def _generate_run(args: argparse.Namespace) -> int:
    from rnnzoo_train.optional import TorchMissingError, require_torch

    try:  # before anything else: training needs torch (an extra of rnnzoo-train)
        require_torch("rnnzoo-train generate (training networks)")
    except TorchMissingError as err:
        raise CLIError(str(err)) from None
    from rnnzoo_train.generate import generate
    from rnnzoo_train.presets import get_preset, load_grid
    from rnnzoo_train.runners import describe_runner, start_runner
    from rnnzoo_train.zoo.errors import ZooError

    preset = load_grid(args.config) if args.config else get_preset(args.preset or "demo")
    tasks = resolve_tasks(args.task, preset.tasks)
    if args.dry_run:
        return _dry_run(args, preset, tasks)
    if args.out is None:
        raise CLIError("--out is required: the zoo store to create or resume (or use --dry-run)")
    out = Path(args.out)
    check_writable(out)
    runner = make_runner(args)
    check_device(args.device, local=not args.scheduler)
    writer = open_writer(out)
    check_output(writer, preset, tasks)  # not a zoo, another plan, damaged: one line, now
    try:
        # start the local cluster (or connect to the scheduler) before anything is written;
        # an unreachable scheduler is a RunnerOptionError (a ValueError)
        start_runner(runner)
        print(preset.summary(), file=sys.stderr)
        print(f"tasks: {', '.join(tasks)}; output: {out}", file=sys.stderr)
        print(f"runner: {describe_runner(runner)}", file=sys.stderr, flush=True)
        report = generate(
            preset,
            tasks,
            writer,
            runner=runner,
            progress=not args.no_progress,
            device=args.device,
        )
    except (ValueError, ZooError) as err:  # a different plan, a damaged zoo (one line each)
        raise CLIError(str(err)) from None
    finally:  # disconnect from a Dask scheduler / stop the local cluster now, not at exit
        close = getattr(runner, "close", None)
        if callable(close):
            close()
    print(report.table())
    print(f"done in {report.seconds:.0f} s; zoo at {out}")
    return 1 if report.failed_units else 0


def _dry_run(args: argparse.Namespace, preset, tasks: Sequence[str]) -> int:
    """``generate --dry-run``: the plan's size and projected cost; nothing is trained."""
    from rnnzoo_train.cost import CostError, project

    make_runner(args)  # the same option checks as a real run (one line each)
    n = args.processes or (args.workers if args.workers and args.workers > 1 else None)
    try:
        projection = project(preset, tasks)
    except CostError as err:
        raise CLIError(str(err)) from None
    print(preset.summary())
    print(f"tasks: {', '.join(tasks)}")
    print("\n".join(projection.lines(workers=(n or 16,))))
    print("dry run: nothing was trained or written")
    return 0


def _presets_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="show one preset")


def _presets_run(args: argparse.Namespace) -> int:
    from rnnzoo_train.presets import available_presets, get_preset

    for name in [args.name] if args.name else available_presets():
        print(get_preset(name).summary())
    return 0


register(
    "generate",
    "train a zoo (search, then seeds) into a Zarr store",
    _generate_arguments,
    _generate_run,
)
register("presets", "describe the built-in presets", _presets_arguments, _presets_run)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered subcommand."""
    from rnnzoo_train import __version__

    parser = argparse.ArgumentParser(
        prog=PROG, description="Train populations of recurrent networks into a versioned zoo."
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for cmd in subcommands().values():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(p)
        p.set_defaults(_run=cmd.run)
    return parser


@exit_on_sigterm(PROG)  # SIGTERM: workers stopped, one line, status 143; a rerun resumes
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rnnzoo-train``; returns the exit status."""
    from rnnzoo_train.presets import PresetError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args._run(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
    except BrokenPipeError:  # `rnnzoo-train info | head`: the reader left; end quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        return 141  # 128 + SIGPIPE, what a shell reports for a Unix tool in this case
    except (CLIError, PresetError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return int(status or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
