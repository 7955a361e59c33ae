"""``rnnzoo-paper``: the reproduction's command line.

``synthetic``: the interim metrics demo (two synthetic families -> SVCCA/CKA -> MDS).
``demo``: for now runs the synthetic demo; the full paper pipeline will replace it.
"""

from __future__ import annotations

import argparse
import sys

from rnnzoo_metrics import MetricsError


def _synthetic(args: argparse.Namespace) -> int:
    from .synthetic import run

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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rnnzoo-paper", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name, helptext in (
        ("synthetic", "synthetic two-family metrics demo"),
        ("demo", "the demo (for now: the synthetic metrics demo)"),
    ):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("--out", default="results/demo", help="output folder")
        s.add_argument("--per-family", type=int, default=12, help="networks per family")
        s.add_argument("--samples", type=int, default=400, help="probe samples per network")
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--no-progress", action="store_true")
        s.set_defaults(func=_synthetic)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rnnzoo-paper`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MetricsError as exc:
        print(f"rnnzoo-paper: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
