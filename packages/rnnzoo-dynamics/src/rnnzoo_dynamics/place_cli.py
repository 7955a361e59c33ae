r"""``rnnzoo-dynamics place``: where a network of your own sits among a zoo's networks.

    rnnzoo-dynamics place --zoo ZOO --task flipflop --model my_rnn.py:make \
        --weights my_rnn.pt --rnn rnn --readout readout --out placed/

The work is :func:`rnnzoo_dynamics.place.place_model`; the model is loaded by
:func:`rnnzoo_dynamics.model_files.load_model` (formats and why: that module's docstring).
User mistakes are one line on stderr and exit status 2, checked before anything is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rnnzoo_dynamics.model_files import SPEC

EXIT_USAGE = 2

MODEL_HELP = (
    "your trained network: 'package.module:factory' or 'path/to/file.py:factory' (a callable "
    "returning the model, or (model, readout); load weights with --weights) or a TorchScript "
    "file (torch.jit.save). These are what networks in this field come as: a model class plus a "
    "state_dict checkpoint (PyTorch's recommended way to save, and the only one that rebuilds "
    "any step function F(h, x) -> h), or a self-contained TorchScript file that needs no code. "
    "A torch.export .pt2 file of a step function (dynamic batch) works too. "
    "Pickled whole modules (torch.save(model)) are refused: loading one runs arbitrary code. "
    "The model: nn.RNN/GRU/LSTM (one layer) or their Cells, or a step function F(h, x) -> h"
)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``place`` subcommand to ``rnnzoo-dynamics``' subparsers."""
    p = sub.add_parser(
        "place",
        help="where your own network sits among a zoo's: distances, MDS figure, nearest types",
        description="Compare your own trained recurrent network with every network of one task "
        "of a zoo: SVCCA and CKA (geometry) and fixed-point graph distances (topology), its "
        "place in the zoo's MDS (a PNG), and the nearest cell types (a table). Results go to "
        "--out, never into the zoo (a downloaded, read-only zoo works).",
    )
    p.add_argument(
        "--zoo",
        action="append",
        required=True,
        help="zoo directory, published zip or URL (repeatable: one per task)",
    )
    p.add_argument("--task", required=True, help="the zoo's task your network was trained on")
    p.add_argument("--model", required=True, metavar="SPEC", help=MODEL_HELP)
    p.add_argument(
        "--weights",
        metavar="FILE",
        help="state_dict for the factory's module (torch.save(model.state_dict(), FILE); a "
        "checkpoint dict with 'state_dict' or 'model_state_dict' works too)",
    )
    p.add_argument(
        "--rnn",
        metavar="ATTR",
        help="attribute (dotted path) of the recurrent part in the loaded module, e.g. 'rnn' "
        "(default: the whole module)",
    )
    p.add_argument(
        "--readout",
        metavar="ATTR",
        help="attribute (dotted path) of the readout (nn.Linear) in the loaded module, e.g. "
        "'readout'; needed for the topology distances",
    )
    p.add_argument(
        "--out", required=True, metavar="DIR", help="output folder (new, empty or an earlier one)"
    )
    p.add_argument("--name", help="label of your network (default: from --model)")
    p.add_argument(
        "--analysis-store", metavar="STORE", help="where the analyses of a read-only zoo are stored"
    )
    p.add_argument(
        "--jobs", type=int, default=1, metavar="N", help="processes for the distances (1)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def default_name(spec: str) -> str:
    """``make`` for ``pkg.mod:make``, ``my_rnn`` for ``my_rnn.pt``."""
    m = SPEC.match(spec)
    if m is not None and not Path(spec).is_file():
        return m["attr"].rsplit(".", 1)[-1]
    return Path(spec).stem or spec


def run_place(args: argparse.Namespace) -> int:
    """Run ``place``; one line on stderr and status 2 for a user mistake."""
    from rnnzoo_dynamics.model_files import ModelFileError, load_model
    from rnnzoo_dynamics.place import PlacementError, _open_zoo, check_out, place_model
    from rnnzoo_train.zoo import ZooError

    try:
        if args.jobs < 1:
            raise PlacementError(f"--jobs must be >= 1, got {args.jobs}")
        if args.analysis_store is not None and not Path(args.analysis_store, "zarr.json").is_file():
            raise PlacementError(
                f"{args.analysis_store} is not an analysis store (no zarr.json); give the one "
                "`rnnzoo-dynamics analyze --analysis-store` wrote to"
            )
        zoo, paths = _open_zoo(args.zoo if len(args.zoo) > 1 else args.zoo[0], args.analysis_store)
        if args.task not in zoo.tasks:
            raise PlacementError(
                f"the zoo has no task {args.task!r}; it has: {', '.join(zoo.tasks) or 'none'}"
            )
        check_out(args.out, paths)  # before the user's code runs
        model, readout = load_model(args.model, args.weights, args.rnn, args.readout)
        placement = place_model(
            model,
            zoo,
            args.task,
            args.out,
            readout=readout,
            name=args.name or default_name(args.model),
            n_jobs=args.jobs,
            progress=not args.quiet,
        )
    except (PlacementError, ModelFileError, ZooError) as err:
        text = str(err).strip().splitlines()
        print(f"rnnzoo-dynamics: error: {text[0] if text else err}", file=sys.stderr)
        return EXIT_USAGE
    print(placement.table())
    for note in placement.notes:
        print(f"note: {note}", file=sys.stderr)
    for path in placement.files:
        print(f"wrote {path}")
    return 0
