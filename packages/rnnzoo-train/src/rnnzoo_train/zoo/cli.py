"""The zoo subcommands of ``rnnzoo-train``: ``verify``, ``info``, ``publish``, ``download``.

Registered with :func:`rnnzoo_train.cli.register` when the CLI imports this module. User
mistakes raise :class:`~rnnzoo_train.cli.CLIError`: one line, exit status 2, no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

from rnnzoo_train.cli import PROG, CLIError, register

from .errors import ZooError


def _verify_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "path", help="zoo directory, published zip, http(s) URL, or a separate analysis store"
    )
    p.add_argument(
        "--quick", action="store_true", help="check that every chunk exists, without reading it"
    )
    p.add_argument(
        "--repair",
        action="store_true",
        help="make a damaged zoo consistent under the writer lock: restore what the plan fixes, "
        "mark networks that lost values 'failed' (rerunning generate retrains them), "
        "re-consolidate metadata, remove *.partial leftovers",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _verify_run(args: argparse.Namespace) -> int:
    from .verify import verify_zoo

    try:
        report = verify_zoo(
            args.path,
            checksums=not args.quick,
            repair=args.repair,
            # a bar only on a terminal: piped stderr gets the one-line verdict alone
            progress=not args.no_progress and sys.stderr.isatty(),
        )
    except (ZooError, FileNotFoundError) as err:
        raise CLIError(str(err)) from None
    print(report.format(), flush=True)
    if report.ok:
        return 0
    n = len(report.problems)
    if args.repair:
        hint = "left after the repair (listed above)"
    elif report.kind == "zoo" and not args.path.endswith(".zip") and "://" not in args.path:
        hint = (
            f"(listed above); `{PROG} verify --repair {args.path}` makes it consistent, then "
            f"`{PROG} generate` with the same options restores every lost network"
        )
    else:
        hint = "(listed above); repair the original zoo directory and publish it again"
    print(f"{PROG}: error: {n} problem(s) in {args.path} {hint}", file=sys.stderr)
    return 1


def _info_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="zoo directory, published zip, or http(s) URL")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")


def _info_run(args: argparse.Namespace) -> int:
    from .info import format_summary, zoo_summary
    from .reader import open_zoo

    try:
        with open_zoo(args.path) as zoo:
            summary = zoo_summary(zoo)
    except (ZooError, FileNotFoundError, KeyError) as err:
        raise CLIError(str(err).strip("'\"")) from None
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary), flush=True)
    damaged = sum(len(t.get("damaged", [])) for t in summary["tasks"].values())
    if damaged:
        print(
            f"{PROG}: error: {damaged} network(s) with status ok have missing chunks in "
            f"{args.path} (not counted ok above); run `{PROG} verify {args.path}`",
            file=sys.stderr,
        )
        return 1
    return 0


def _publish_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="the zoo directory to publish")
    p.add_argument("--out", required=True, metavar="DIR", help="where to write the zips")
    p.add_argument("--name", help="published name (default: the directory name)")
    p.add_argument("--version", help="published version (default: the creation date)")
    p.add_argument(
        "--allow-incomplete", action="store_true", help="publish even with pending networks"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _publish_run(args: argparse.Namespace) -> int:
    from .publish import publish_zoo

    try:
        pub = publish_zoo(
            args.path,
            args.out,
            name=args.name,
            version=args.version,
            allow_incomplete=args.allow_incomplete,
            progress=not args.no_progress,
        )
    except (ZooError, OSError) as err:
        raise CLIError(_one_line(err)) from None
    if pub.unchanged:
        print(
            f"{pub.name}@{pub.version} is already published in {args.out} with identical "
            "content; nothing written"
        )
        return 0
    for task, path in pub.files.items():
        print(f"{task}: {path} ({path.stat().st_size:,} bytes) sha256:{pub.sha256[task]}")
    print(f"registry: {pub.registry} (upload {args.out} as it is; then")
    print(f"  RNNZOO_ZOO_URL=<its URL> rnnzoo-train download {pub.name}@{pub.version})")
    return 0


def _download_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="NAME[@VERSION]", help="a published zoo (latest version)")
    p.add_argument("--task", default=None, help="task(s) to fetch, comma-separated (default all)")
    p.add_argument("--url", default=None, help="server base URL (default $RNNZOO_ZOO_URL)")
    p.add_argument("--cache", default=None, help="cache directory (default $RNNZOO_CACHE)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _download_run(args: argparse.Namespace) -> int:
    import warnings

    from .download import ZooOfflineWarning, download_files
    from .info import format_summary, zoo_summary
    from .reader import open_zoo

    tasks = [t.strip() for t in args.task.split(",") if t.strip()] if args.task else None
    try:
        with warnings.catch_warnings(record=True) as notes:
            warnings.simplefilter("always", ZooOfflineWarning)
            files = download_files(
                args.spec,
                tasks=tasks,
                url=args.url,
                cache=args.cache,
                progress=not args.no_progress,
            )
        for note in notes:
            if issubclass(note.category, ZooOfflineWarning):
                print(f"{PROG}: note: {note.message}", file=sys.stderr)
            else:
                warnings.showwarning(
                    note.message, note.category, note.filename, note.lineno, note.file
                )
        with open_zoo(list(files.values())) as zoo:
            summary = zoo_summary(zoo)
    except (ZooError, OSError) as err:
        raise CLIError(_one_line(err)) from None
    for task, path in files.items():
        print(f"{task}: {path}", file=sys.stderr)
    print(format_summary(summary))
    paths = ", ".join(repr(str(p)) for p in files.values())
    print(f"\nopen it with: rnnzoo_train.zoo.open_zoo([{paths}])")
    return 0


def _one_line(err: BaseException) -> str:
    """An error as one line (an ``OSError`` such as a full disk names its file)."""
    if isinstance(err, ZooError) or not getattr(err, "strerror", None):
        return " ".join(str(err).split()) or type(err).__name__
    where = f": {err.filename}" if getattr(err, "filename", None) else ""
    return f"{err.strerror}{where}"


register(
    "verify", "check a zoo: schema, completeness and checksums", _verify_arguments, _verify_run
)
register("info", "summarise a zoo: networks, status, losses, versions", _info_arguments, _info_run)
register(
    "publish",
    "pack a zoo as one uncompressed zip per task, with sha256 registry lines",
    _publish_arguments,
    _publish_run,
)
register(
    "download",
    "fetch a published zoo (pooch, sha256-verified, cached) and summarise it",
    _download_arguments,
    _download_run,
)
