"""How often is rnnzoo's DSA distance the proven global optimum? (issue 13, section 2).

The Procrustes search is non-convex; :mod:`rnnzoo_metrics.dsa_bound` bounds the global
minimum angle from below by Lagrangian duality. A pair whose angle meets its bound (to
``CERTIFIED_GAP`` in f) is certified: no search, the reference ``dsa-metric``'s included, can
end lower on those operators. On every pair of ``--networks`` networks of one task this
script reports, per search preset:

* pairs certified, and the gap (angle - lower bound) where not;
* where a preset's angle lies above another's certified angle (a certified miss);
* with ``--reference-cache`` (an ``.npz`` written by ``dsa_reference.py``: the reference's
  angles and float32 operators for the same networks and parameters), that the bound holds
  for an independent optimiser: the reference's angle is never below rnnzoo's lower bound
  on the reference's own operators (beyond its float32 scoring: 1e-6 in cosine), and how
  many of the reference's pairs are certified as well.

Needs no torch. ``python benchmarks/dsa_certificate.py --zoo results/demo/zoo.zarr --task cdi``
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dsa_reference import add_network_arguments, load_trajectories, write_json

from rnnzoo_metrics import dsa as rdsa
from rnnzoo_metrics.dsa_bound import CERTIFIED_GAP, angle_bounds


def summary(angle: np.ndarray, lower: np.ndarray, certified: np.ndarray) -> dict:
    """Counts and gap quantiles of one preset's bounds."""
    gap = angle - lower
    open_ = gap[~certified]
    return {
        "pairs": int(len(angle)),
        "certified": int(certified.sum()),
        "gap_median_uncertified": float(np.median(open_)) if len(open_) else 0.0,
        "gap_max": float(gap.max()) if len(gap) else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_network_arguments(p)
    p.add_argument("--search", nargs="+", default=["thorough", "fast"])
    p.add_argument("--reference-cache", help="dsa_reference.py's .npz for the same networks")
    p.add_argument(
        "--synthetic",
        action="store_true",
        help="instead of a zoo: the first --networks of bench_metrics.py --dsa's random tanh "
        "RNNs (64 units, the all-pairs timing's population)",
    )
    p.add_argument("--json", help="write the report here")
    args = p.parse_args(argv)
    if args.synthetic:
        from bench_metrics import LazyTrajectories

        nets = LazyTrajectories(args.networks, 64, seed=5)  # as bench_metrics.bench_dsa
        xs, ids = [nets[k] for k in range(len(nets))], [f"rnn{k}" for k in range(len(nets))]
        args.task = "synthetic"
    elif not os.path.exists(args.zoo):
        print(f"dsa_certificate: no zoo at {args.zoo!r}; pass --zoo", file=sys.stderr)
        return 2
    else:
        xs, ids = load_trajectories(
            args.zoo, args.task, args.networks, args.variable, args.held_out
        )
    n = len(xs)
    i, j = np.triu_indices(n, 1)
    params = (args.n_delays, args.delay_interval, args.rank)
    print(f"{args.task}: {n} networks, {len(i)} pairs, (delays, interval, rank) = {params}")
    ops = [rdsa.prepare_operator(rdsa.dmd_operator(x, *params)) for x in xs]
    oa, ob = [ops[k] for k in i], [ops[k] for k in j]
    report: dict = {"task": args.task, "networks": ids, "parameters": list(params)}
    bounds = {}
    for search in args.search:
        t = time.process_time()
        al = rdsa.procrustes_vector_fields(oa, ob, search=search)
        t_search = time.process_time() - t
        t = time.process_time()
        bounds[search] = angle_bounds(oa, ob, al.c)
        t_bound = time.process_time() - t
        report[search] = summary(*bounds[search]) | {
            "search_ms_per_pair": 1e3 * t_search / len(i),
            "bound_ms_per_pair": 1e3 * t_bound / len(i),
        }
        s = report[search]
        print(
            f"  {search:9s} certified {s['certified']}/{s['pairs']}; uncertified gap median "
            f"{s['gap_median_uncertified']:.1e} rad, max {s['gap_max']:.1e}; search "
            f"{s['search_ms_per_pair']:.1f} ms/pair, bound {s['bound_ms_per_pair']:.0f} ms/pair"
        )
    # a preset more than 1e-5 rad above another's certified optimum misses it
    for x in bounds:
        for y in bounds:
            if x != y:
                sure = bounds[y].certified
                miss = bounds[x].angle[sure] - bounds[y].angle[sure] > 1e-5
                report[f"{x}_misses_certified_{y}"] = int(miss.sum())
                print(f"  {x} above {y}'s certified optimum (> 1e-5 rad): {miss.sum()}/{len(miss)}")
    if args.reference_cache:  # the bound against an independent optimiser
        z = np.load(args.reference_cache)
        ref, ref_ops = z["sims"], [rdsa.prepare_operator(a) for a in z["ops"]]
        if len(ref_ops) != n:
            print("dsa_certificate: the reference cache has other networks", file=sys.stderr)
            return 2
        ra, rb = [ref_ops[k] for k in i], [ref_ops[k] for k in j]
        al = rdsa.procrustes_vector_fields(ra, rb, search="thorough")
        b = angle_bounds(ra, rb, al.c)
        below = np.cos(b.lower) - np.cos(ref[i, j])  # reference's cosine above the bound's
        bad = (ref[i, j] < b.lower - 1e-5) & (below < -1e-6)
        report["reference"] = {
            "pairs": int(len(i)),
            "below_lower_bound": int(bad.sum()),
            "closest_to_bound_rad": float((ref[i, j] - b.lower).min()),
            "reference_cosine_above_bound_max": float(max(0.0, -below.min())),
            "certified_on_reference_operators": int(b.certified.sum()),
            "reference_at_certified_optimum": int(
                np.sum(b.certified & (ref[i, j] - b.lower <= 1e-5))
            ),
        }
        r = report["reference"]
        print(
            f"  reference below the lower bound: {r['below_lower_bound']}/{r['pairs']} "
            f"(closest {r['closest_to_bound_rad']:+.1e} rad, its cosine above the bound's by "
            f"{r['reference_cosine_above_bound_max']:.1e}); on its operators "
            f"{r['certified_on_reference_operators']} pairs certified, the reference at that "
            f"optimum in {r['reference_at_certified_optimum']}"
        )
        if bad.any():
            print("dsa_certificate: FAILED: the reference ends below a lower bound")
    if args.json:
        write_json(args.json, report)
    print(f"(certified: the bound within {CERTIFIED_GAP:g} of f on the traceless unit operators)")
    return 1 if args.reference_cache and report["reference"]["below_lower_bound"] else 0


if __name__ == "__main__":
    sys.exit(main())
