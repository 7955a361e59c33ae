"""The ``rnnzoo-metrics`` command line: ``list``, ``pairwise``, ``embed``, ``plot``.

User mistakes print one line ``rnnzoo-metrics: error: ...`` and exit with status 2,
without a traceback. SIGTERM (a batch scheduler's walltime) stops a command with the one
line ``rnnzoo-metrics: terminated; rerun the same command to resume`` and status 143; its
worker processes are stopped, and finished tiles stay in ``--store``
(:mod:`rnnzoo_metrics.stopping`).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from .errors import MetricsError, require
from .stopping import Terminated, exit_on_sigterm, termination_requested


def _params(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise MetricsError(f"--param {item!r}: use --param name=value")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def cmd_list(args: argparse.Namespace) -> int:
    from .registry import available_input_kinds, available_metrics, plugin_failures

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        infos = available_metrics()
        kinds = available_input_kinds()
        failures = plugin_failures()
    if args.json:
        rows = [info.__dict__ for info in infos]
        print(
            json.dumps(
                {
                    "metrics": rows,
                    "input_kinds": kinds,
                    "failed_plugins": [str(f) for f in failures],
                },
                indent=2,
                default=str,
            )
        )
        return 0
    head = ("name", "input", "kind", "true metric", "deterministic", "provided by")
    rows = [
        (
            i.name,
            i.input_kind,
            i.kind,
            "yes" if i.is_metric else "no",
            "yes" if i.deterministic else "seeded",
            i.provider,
        )
        for i in infos
    ]
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    print(fmt.format(*head))
    for r, info in zip(rows, infos, strict=True):
        print(fmt.format(*r))
        params = ", ".join(f"{k}={v!r}" for k, v in info.parameters.items())
        print(f"    {info.summary}" + (f" [{params}]" if params else ""))
    for f in failures:
        print(f"failed plugin: {f}", file=sys.stderr)
    return 0


def _same_path(a: str | Path, b: str | Path) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def cmd_pairwise(args: argparse.Namespace) -> int:
    from .engine import pairwise
    from .inputs import as_networks
    from .io import check_result_target, read_networks, write_result
    from .registry import get_metric
    from .targets import check_store

    params = _params(args.param)
    metric = get_metric(args.metric, **params)  # unknown metric or parameter: refuse first
    # every output is checked (kind, --overwrite, writable) before anything is read or computed
    check_result_target(args.out, "pairwise", overwrite=args.overwrite)
    if args.store:
        if _same_path(args.store, args.out):
            raise MetricsError("--store and --out must be different paths")
        check_store(args.store)
        require("zarr", "zoo", "a resumable tile store (--store)")
    data = read_networks(
        args.input, group=args.group, variable=args.variable, kind=metric.input_kind
    )
    nets = as_networks(data, metric.input_kind, args.variable)
    if len(nets) < 2:
        raise MetricsError(
            f"{args.input!r} holds {len(nets)} network{'s' if len(nets) != 1 else ''}; "
            "pairwise needs at least 2"
        )
    client = None
    if args.scheduler:
        distributed = require("distributed", "dask", "--scheduler")
        client = distributed.Client(args.scheduler)
    try:
        d = pairwise(
            nets,
            metric,
            variable=args.variable,
            tile=args.tile,
            n_jobs=args.jobs,
            client=client,
            store=args.store,
            progress=not args.no_progress,
        )
    finally:
        if client is not None:
            client.close()
    out = write_result(d, args.out, overwrite=args.overwrite)
    n = d.sizes["network"]
    print(f"{d.attrs['metric']}: {n} networks, {n * (n - 1) // 2} pairs -> {out}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from .embedding import drop_incomparable, embed
    from .io import check_result_target, read_result, write_result

    if _same_path(args.matrix, args.out):
        raise MetricsError("--out must differ from the input matrix")
    check_result_target(args.out, "embedding", overwrite=args.overwrite)
    d = read_result(args.matrix, "pairwise")
    if args.drop_nan:
        d = drop_incomparable(d)
    e = embed(d, args.method, args.components, seed=args.seed)
    out = write_result(e, args.out, overwrite=args.overwrite)
    print(f"{args.method} MDS of {d.sizes['network']} networks -> {out}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .io import read_result
    from .plotting import plot_distance_matrix, plot_embedding, save_png
    from .targets import check_output

    check_output(args.out, "figure", overwrite=args.overwrite, suffixes=(".png",))
    obj = read_result(args.result)
    require("matplotlib", "plot", "plotting")
    if "component" in obj.dims:
        color = args.color_by
        if color is None:  # default: architecture when the networks carry it
            color = "arch" if "arch" in obj.coords else None
        fig = plot_embedding(obj, color, title=args.title)
    else:
        sort_by = [s.strip() for s in (args.sort_by or "arch,activation").split(",") if s.strip()]
        if args.sort_by is not None:  # named explicitly: every coordinate must exist
            from .plotting import _coord

            for name in sort_by:
                _coord(obj, name)
        fig = plot_distance_matrix(obj, sort_by, title=args.title)
    out = save_png(fig, args.out, overwrite=args.overwrite)
    print(f"figure -> {out}")
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


_OVERWRITE = (
    "replace a previous result of the same kind at --out (atomically); anything else at "
    "--out is never replaced"
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="rnnzoo-metrics",
        description="All-pairs similarity between networks (SVCCA, CKA, Procrustes, "
        "fixed-point graphs...), MDS embeddings and plots. Metrics are plugins.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("list", help="every metric, its properties and its provider")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("pairwise", help="all pairwise values -> (network, network_to) matrix")
    s.add_argument("input", help="folder of .npy, .npz, .npy (3-D), .nc, or a .zarr zoo store")
    s.add_argument("--metric", "-m", default="svcca", help="metric name (see `list`)")
    s.add_argument(
        "--param",
        "-p",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="metric parameter, repeatable (e.g. threshold=0.99)",
    )
    s.add_argument("--out", "-o", required=True, help="output .nc or .zarr")
    s.add_argument(
        "--group", help="group inside a store, e.g. flipflop or flipflop/analysis/graphs"
    )
    s.add_argument("--variable", help="activations variable (default hidden_trained)")
    s.add_argument(
        "--tile", type=_positive, help="networks per tile side (default: by memory and --jobs)"
    )
    s.add_argument("--jobs", "-j", type=_positive, default=1, help="worker processes")
    s.add_argument("--scheduler", help="address of a Dask scheduler to compute tiles on")
    s.add_argument("--store", help="resumable Zarr store for finished tiles")
    s.add_argument("--overwrite", action="store_true", help=_OVERWRITE)
    s.add_argument("--no-progress", action="store_true", help="no progress bars")
    s.set_defaults(func=cmd_pairwise)

    s = sub.add_parser("embed", help="MDS embedding of a distance matrix")
    s.add_argument("matrix", help="result of `pairwise` (.nc or .zarr)")
    s.add_argument("--method", choices=("classical", "metric"), default="metric")
    s.add_argument("--components", type=_positive, default=2)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--drop-nan",
        action="store_true",
        help="first drop networks with NaN distances (e.g. other node counts)",
    )
    s.add_argument("--out", "-o", required=True, help="output .nc or .zarr")
    s.add_argument("--overwrite", action="store_true", help=_OVERWRITE)
    s.set_defaults(func=cmd_embed)

    s = sub.add_parser("plot", help="PNG of a matrix (heat map) or an embedding (scatter)")
    s.add_argument("result", help="result of `pairwise` or `embed`")
    s.add_argument("--out", "-o", required=True, help="output .png")
    s.add_argument("--color-by", help="coordinate colouring an embedding (default: arch)")
    s.add_argument(
        "--sort-by", help="coordinates sorting a matrix (default: arch,activation where present)"
    )
    s.add_argument("--title")
    s.add_argument(
        "--overwrite", action="store_true", help="replace a figure written by rnnzoo-metrics"
    )
    s.set_defaults(func=cmd_plot)
    return p


@exit_on_sigterm("rnnzoo-metrics")  # SIGTERM: workers stopped, one line, status 143
def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rnnzoo-metrics`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (MetricsError, OSError) as exc:  # OSError: e.g. the disk filled up
        if termination_requested():  # e.g. a worker ended by the same SIGTERM (process group)
            raise Terminated() from None
        print(f"rnnzoo-metrics: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rnnzoo-metrics: interrupted (finished tiles are kept in --store)", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
