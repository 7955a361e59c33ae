"""``rnnzoo-paper``: the reproduction's command line.

``demo``: the paper end to end — generate (or open) a zoo, run every dynamics and metrics
analysis, write every figure and ``report.md`` (see :mod:`rnnzoo_paper.pipeline`).
``synthetic``: the metrics-only demo on two synthetic families (no zoo, seconds).
``compare-verdicts A B``: two demo output folders' verdict tables side by side, flagging
opposite firm verdicts (exit status 1 when there is one; :mod:`rnnzoo_paper.compare`).

User mistakes (an unknown preset or task, a missing zoo, an unwritable output folder) print
one line ``rnnzoo-paper: error: ...`` and exit with status 2, without a traceback; rerunning
the same command resumes from what is already stored.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rnnzoo_metrics import MetricsError
from rnnzoo_train.signals import exit_on_sigterm

from .pipeline import PipelineError

EXIT_USAGE = 2


def _synthetic(args: argparse.Namespace) -> int:
    from .outdir import check_out
    from .synthetic import MIN_SAMPLES, run

    if args.per_family < 2:
        raise PipelineError(f"--per-family must be >= 2 networks, got {args.per_family}")
    if args.samples < MIN_SAMPLES:
        raise PipelineError(f"--samples must be >= {MIN_SAMPLES}, got {args.samples}")
    check_out(Path(args.out), "synthetic")

    summary = run(
        args.out,
        per_family=args.per_family,
        samples=args.samples,
        seed=args.seed,
        progress=not args.no_progress,
    )
    for metric in ("svcca", "cka"):
        s = summary[metric]
        print(
            f"{metric}: mean distance within families {s['within']:.3f}, between "
            f"{s['between']:.3f} ({s['ratio']:.1f}x)"
        )
    print(f"figures and matrices in {args.out}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .pipeline import PipelineOptions, run_pipeline

    tasks = None
    if args.task and args.task != "all":
        tasks = tuple(t.strip() for t in args.task.split(",") if t.strip())
    opt = PipelineOptions(
        out=Path(args.out),
        zoo=args.zoo,
        preset=args.preset,
        config=Path(args.config) if args.config else None,
        tasks=tasks,
        workers=args.workers,
        processes=args.processes,
        scheduler=args.scheduler,
        starts=args.starts,
        progress=not args.no_progress,
        dsa_search=args.dsa_search,
    )
    result = run_pipeline(opt)
    counts: dict[str, int] = {}
    for f in result.findings:
        counts[f.verdict] = counts.get(f.verdict, 0) + 1
    print(
        f"{len(result.figures)} figures and report {result.report} "
        f"({len(result.findings)} findings: "
        + ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
        + ")"
    )
    for s in result.steps:
        print(f"  {s.name:<10} {s.seconds:8.1f} s  {s.summary}")
    for e in result.figure_errors:
        print(f"rnnzoo-paper: figure failed: {e}", file=sys.stderr)
    return 0 if result.ok else 1


def _compare(args: argparse.Namespace) -> int:
    from .compare import run

    text, opposite = run(args.a, args.b)
    print(text, end="")
    return 1 if opposite else 0


def build_parser() -> argparse.ArgumentParser:
    from rnnzoo_train.runners import add_runner_arguments

    from .pipeline import DEFAULT_WORKERS

    p = argparse.ArgumentParser(prog="rnnzoo-paper", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser(
        "demo",
        help="the paper end to end: zoo, dynamics, metrics, figures, report",
        description="Generate the demo zoo (or open --zoo), run every analysis, and write the "
        "figures and report.md to --out. Rerunning resumes.",
    )
    d.add_argument("--out", default="results/demo", help="output folder (results/demo)")
    d.add_argument("--zoo", help="use this zoo (directory, zip(s) comma-separated, or URL)")
    d.add_argument("--preset", default="demo", help="preset to generate: tiny, demo, paper")
    d.add_argument("--config", metavar="GRID.toml", help="a grid file instead of --preset")
    d.add_argument("--task", default="all", help="task(s), comma-separated, or 'all'")
    d.add_argument("--starts", type=int, help="fixed-point finder initial states per condition")
    d.add_argument("--no-progress", action="store_true", help="no progress bars")
    d.add_argument(
        "--dsa-search",
        default="thorough",
        help="DSA's Procrustes search: thorough (default; never worse than dsa-metric on every "
        "pair compared) or fast (~10-20x cheaper, for paper-sized zoos: all pairs of 2,880 "
        "networks in an hour on 2 cores; a worse local optimum in a share of pairs)",
    )
    add_runner_arguments(d, default_workers=DEFAULT_WORKERS)
    d.set_defaults(func=_demo)

    s = sub.add_parser("synthetic", help="synthetic two-family metrics demo (no zoo)")
    s.add_argument("--out", default="results/synthetic", help="output folder")
    s.add_argument("--per-family", type=int, default=12, help="networks per family")
    s.add_argument("--samples", type=int, default=400, help="probe samples per network")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=_synthetic)

    c = sub.add_parser(
        "compare-verdicts",
        help="two demo output folders' verdicts side by side; flags opposite firm verdicts",
        description="Print the verdict tables of two rnnzoo-paper demo output folders side by "
        "side (Markdown) and flag every finding that firmly agrees in one and firmly differs "
        "in the other. Exit status 1 when there is such a finding.",
    )
    c.add_argument("a", metavar="A", help="first output folder (holds findings.json)")
    c.add_argument("b", metavar="B", help="second output folder")
    c.set_defaults(func=_compare)
    return p


@exit_on_sigterm("rnnzoo-paper")  # SIGTERM: workers stopped, one line, status 143
def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rnnzoo-paper`` console script."""
    from rnnzoo_train.zoo import ZooError

    from .compare import CompareError
    from .outdir import OutputError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (MetricsError, PipelineError, OutputError, ZooError, CompareError) as exc:
        print(f"rnnzoo-paper: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("rnnzoo-paper: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
