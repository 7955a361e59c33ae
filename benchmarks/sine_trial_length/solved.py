"""How many networks of each cell type a zoo's task solved, checked against expectations.

The benchmark check of issue 14 section 3 ("trainable at T = 500 for every cell type"): after
``rnnzoo-train generate --config t500_relu.toml ...`` (or ``t500_curriculum.toml``), it reads
the zoo's index (``solved``, ``performance``, ``status``; ``docs/zoo-format.md``) and prints,
per cell type, the networks solved, their scores and the CPU seconds per network. With
``--expect CELL=N ...`` it exits with status 1 when a cell type solved fewer than ``N``, so
a change that stops the relu cells training at T = 500 fails the benchmark.

    python benchmarks/sine_trial_length/solved.py /tmp/sine-t500-relu/zoo.zarr --task sine \\
        --expect vanilla-relu=4 ugrnn-relu=4 gru-relu=4
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import xarray as xr


def solved_per_cell(zoo: str, task: str) -> dict[str, dict]:
    """Per ``arch-activation``: networks, solved, scores and training seconds."""
    index = xr.open_zarr(zoo, group=f"{task}/index", consolidated=False)
    cells = [
        f"{a}-{b}" for a, b in zip(index["arch"].values, index["activation"].values, strict=True)
    ]
    out: dict[str, dict] = {}
    for k, cell in enumerate(cells):
        row = out.setdefault(
            cell, {"networks": 0, "finished": 0, "solved": 0, "scores": [], "seconds": []}
        )
        row["networks"] += 1
        if str(index["status"].values[k]) in ("ok", "diverged"):
            row["finished"] += 1
        row["solved"] += bool(index["solved"].values[k])
        row["scores"].append(float(index["performance"].values[k]))
        row["seconds"].append(float(index["train_seconds"].values[k]))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("zoo", help="a zoo store")
    p.add_argument("--task", default="sine")
    p.add_argument(
        "--expect", nargs="*", default=[], metavar="CELL=N", help="e.g. gru-relu=4 (at least)"
    )
    args = p.parse_args(argv)
    expect = {}
    for item in args.expect:
        cell, _, n = item.partition("=")
        if not n.isdigit():
            print(f"solved.py: --expect {item!r} is not CELL=N, e.g. gru-relu=4", file=sys.stderr)
            return 2
        expect[cell] = int(n)
    rows = solved_per_cell(args.zoo, args.task)
    short = []
    for cell, row in rows.items():
        scores = np.array(row["scores"])
        print(
            f"{cell}: solved {row['solved']} of {row['networks']} ({row['finished']} finished); "
            f"scores {np.array2string(np.round(scores, 3), separator=', ')}; "
            f"{np.nanmean(row['seconds']):.1f} s per network"
        )
    for cell, n in expect.items():
        got = rows.get(cell, {"solved": 0})["solved"]
        if got < n:
            short.append(f"{cell} solved {got}, expected at least {n}")
    if short:
        print("FAIL: " + "; ".join(short))
        return 1
    if expect:
        print("PASS: every expectation met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
