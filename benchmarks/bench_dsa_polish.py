"""The DSA search's float64 stage: Newton's method against the gradient ascent it replaced.

Side by side in one process, on the same operators, each variant timed twice (CPU time,
one BLAS thread):

* ``ascent``: the search as it was before the Newton polish (every preset's float32 stage
  stopping at 1e-4, the float64 stage by the Riemannian gradient ascent to ``gtol``);
* ``newton``: the float64 stage by :func:`rnnzoo_metrics.dsa_newton.newton_polish`, the
  float32 stops unchanged (1e-4);
* ``default``: the search as it is now (``thorough``'s float32 stage stopping at 1e-3).

Values: the angle of each variant minus the ``ascent`` one's, per pair (positive: a worse
optimum than the old search's).

    python benchmarks/bench_dsa_polish.py --networks 40                    # synthetic
    python benchmarks/bench_dsa_polish.py --zoo results/demo/zoo.zarr --task sine \\
        --networks 40 --n-delays 11 --delay-interval 5 --rank 6
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from rnnzoo_metrics import dsa
from rnnzoo_metrics.builtin.dsa import DSA


def _ascent_polish(a, b, c, max_iter, gtol):
    _, c, steps = dsa._ascend(a, b, c, max_iter, gtol)
    return c, steps


def _with_stop(stop: float | None) -> dict:
    if stop is None:
        return dict(dsa.SEARCHES)
    return {name: (*spec[:3], stop) for name, spec in dsa.SEARCHES.items()}


VARIANTS = {
    "ascent": (_ascent_polish, 1e-4),
    "newton": (dsa._polish, 1e-4),
    "default": (dsa._polish, None),
}


def operators(args) -> list:
    metric = DSA(n_delays=args.n_delays, delay_interval=args.delay_interval, rank=args.rank)
    if args.zoo is None:
        sys.path.insert(0, os.path.dirname(__file__))
        from bench_metrics import rnn_trajectories

        return [metric.prepare(rnn_trajectories(i)) for i in range(args.networks)]
    import xarray as xr

    import rnnzoo_metrics as rm

    nets = rm.as_networks(xr.open_datatree(args.zoo, engine="zarr")[args.task], "trajectories")
    ops = []
    for i in np.unique(np.linspace(0, len(nets) - 1, args.networks).astype(int)):
        try:
            ops.append(metric.prepare(nets.load(int(i))))
        except rm.InputError as err:  # diverged networks: the pipeline leaves them out too
            print(f"  left out network {i}: {err}")
    return ops


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zoo", help="a zoo store (default: the synthetic networks of bench_metrics)")
    ap.add_argument("--task", default="flipflop")
    ap.add_argument("--networks", type=int, default=40)
    ap.add_argument("--n-delays", type=int, default=10)
    ap.add_argument("--delay-interval", type=int, default=1)
    ap.add_argument("--rank", type=int, default=10)
    ap.add_argument("--search", default="thorough,fast")
    args = ap.parse_args()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if "model name" in line)
    except (OSError, StopIteration):
        pass
    ops = operators(args)
    i, j = np.triu_indices(len(ops), 1)
    oa, ob = [ops[k] for k in i], [ops[k] for k in j]
    where = args.zoo and f"{args.zoo} {args.task}" or "synthetic"
    print(
        f"{cpu}; {where}, {len(ops)} networks ({len(oa)} pairs), rank {args.rank}, "
        f"{args.n_delays} delays x {args.delay_interval}"
    )
    for search in args.search.split(","):
        values, times = {}, {name: [] for name in VARIANTS}
        for _ in range(2):
            for name, (polish, stop) in VARIANTS.items():
                saved = dsa._polish, dsa.SEARCHES
                dsa._polish, dsa.SEARCHES = polish, _with_stop(stop)
                try:
                    t = time.process_time()
                    values[name] = dsa.distances(oa, ob, search=search)
                    times[name].append(time.process_time() - t)
                finally:
                    dsa._polish, dsa.SEARCHES = saved
        base = min(times["ascent"])
        for name in VARIANTS:
            d = values[name] - values["ascent"]
            best = min(times[name])
            print(
                f"  {search:8s} {name:8s}: {1e3 * best / len(oa):7.2f} ms/pair "
                f"(runs {', '.join(f'{1e3 * t / len(oa):.2f}' for t in times[name])}), "
                f"{base / best:4.2f}x; angle - ascent's: larger by > 1e-6 rad in "
                f"{int((d > 1e-6).sum())}, > 1e-8 in {int((d > 1e-8).sum())} (max {d.max():+.1e}), "
                f"smaller by > 1e-6 in {int((d < -1e-6).sum())} (min {d.min():+.1e})",
                flush=True,
            )


if __name__ == "__main__":
    main()
