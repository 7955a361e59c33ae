"""rnnzoo's DSA against the reference implementation ``dsa-metric`` (issue 13, section 2).

Runs only where ``dsa-metric`` and torch are installed: ``nox -s dsa-reference`` builds
that environment (torch from constraints.txt, CPU); neither is ever a dependency of
rnnzoo-metrics. On the same zoo trajectories and parameters it computes every pair of
``--networks`` networks of one task with both, and checks:

* DMD operators: the reference's (float32) and rnnzoo's (float64) have the same spectra
  (they are equal up to an orthogonal change of basis: SVD signs);
* distances (angular): rnnzoo is never worse than the reference's optimum (larger by at
  most ``--never-worse-tol`` rad or ``--never-worse-cos-tol`` in cosine, the float32
  rounding of the reference's score: it evaluates ``trace(A^T C B C^T) / (|A| |B|)`` in
  float32 with a C orthogonal to 1e-7-2e-6, so its cosine can read a few 1e-7 high, which
  arccos turns into up to ~3e-4 rad at angles of ~1e-3) and within
  ``--tolerance`` of it where the two reach the same optimum; where rnnzoo is smaller
  (a better optimum of the same non-convex problem), how often and by how much;
* the optimiser alone: rnnzoo's batched optimisation on the reference's own operators.

It prints a report and writes it as JSON (``--json``); exit status 1 if a check fails.

    python benchmarks/dsa_reference.py --zoo results/demo/zoo.zarr --task flipflop
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np

import rnnzoo_metrics as rm
from rnnzoo_metrics import dsa as rdsa


def spread(candidates: np.ndarray, n: int) -> np.ndarray:
    """``n`` of ``candidates`` spread evenly over them (every k-th), in order."""
    at = np.linspace(0, len(candidates) - 1, min(n, len(candidates))).round().astype(int)
    return candidates[np.unique(at)]


def choose(total: int, n: int, held_out: list[int] = (), usable=None) -> np.ndarray:
    """Indices of ``n`` of ``total`` networks, spread evenly over the index.

    ``held_out``: sizes of earlier sets (each spread over all ``total``, as this function
    picks them without ``held_out``); the ``n`` are then spread over the networks in none of
    those sets, for a check on networks that played no part in a choice made on them.
    ``usable``: indices that may be picked (e.g. not diverged); default all.
    """
    everyone = np.arange(total)
    used = [spread(everyone, m) for m in held_out]
    free = np.setdiff1d(everyone, np.concatenate(used)) if used else everyone
    if usable is not None:
        free = np.intersect1d(free, usable)
    return spread(free, n)


def load_trajectories(
    zoo: str, task: str, n: int, variable: str, held_out: list[int] = ()
) -> tuple[list, list[str]]:
    """``n`` networks of ``task`` (:func:`choose`), float64; diverged networks (non-finite
    states) are left out, as the paper pipeline leaves them out."""
    from rnnzoo_metrics.io import read_networks

    data = read_networks(zoo, group=task, variable=variable, kind="trajectories")
    nets = rm.as_networks(data, "trajectories", variable)
    usable = choose(len(nets), len(nets), held_out)
    xs: dict[int, np.ndarray] = {}
    while True:  # load only the picked networks; a diverged one is dropped and the set re-spread
        pick = choose(len(nets), n, held_out, usable=usable)
        if not len(pick):
            raise SystemExit(
                f"dsa_reference: no usable {task} networks outside the sets {held_out}"
            )
        bad = []
        for k in pick:
            if int(k) not in xs:
                try:
                    xs[int(k)] = nets.load(int(k))
                except rm.InputError as err:
                    print(f"left out: {err}", file=sys.stderr)
                    bad.append(k)
        if not bad:
            return [xs[int(k)] for k in pick], [nets.ids[int(k)] for k in pick]
        usable = np.setdiff1d(usable, bad)


def spectral_gap(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |eigenvalue difference| after matching the two spectra (assignment)."""
    from scipy.optimize import linear_sum_assignment

    la, lb = np.linalg.eigvals(a), np.linalg.eigvals(b)
    cost = np.abs(la[:, None] - lb[None, :])
    r, c = linear_sum_assignment(cost)
    return float(cost[r, c].max())


def reference(
    xs: list, params: dict, iters: int, lr: float, device: str = "cpu", seed: int | None = None
):
    """The reference's all-pairs matrix (its own loop over pairs), operators and time.

    ``seed``: ``torch.manual_seed`` before the run. The reference starts each pair's Adam run
    from the Cayley map of a randomly initialised MLP, so its optimum depends on the seed;
    ``None`` is torch's default seed of a fresh process (what a user's first run gets).
    """
    import torch
    from DSA import DSA

    torch.set_num_threads(1)
    if seed is not None:
        torch.manual_seed(seed)
    model = DSA(
        X=[x.astype(np.float64) for x in xs],
        n_delays=params["n_delays"],
        delay_interval=params["delay_interval"],
        rank=params["rank"],
        score_method="angular",
        iters=iters,
        lr=lr,
        device=device,
    )
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sims = np.asarray(model.fit_score(), dtype=np.float64)
    seconds = time.perf_counter() - t
    ops = [np.asarray(d.A_v.detach().cpu().numpy(), dtype=np.float64) for d in model.dmds[0]]
    return sims, ops, seconds


def angle_in_float64(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """The angle ``C`` attains between ``A`` and ``B``, ``C`` first made exactly orthogonal
    (its polar factor): what a nearly orthogonal float32 ``C`` really achieves."""
    u, _, vt = np.linalg.svd(np.asarray(c, dtype=np.float64))
    q = u @ vt
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    cos = np.trace(a.T @ q @ b @ q.T) / (np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.arccos(np.clip(cos, -1.0, 1.0)))


def recheck(
    ref_ops: list, pairs: list[tuple[int, int]], ours: np.ndarray, iters: int, lr: float
) -> dict:
    """The reference run again on ``pairs``, its ``C`` kept and scored in float64.

    The reference reports ``arccos(trace(A^T C B C^T) / (|A| |B|))`` in float32 with a C
    orthogonal to 1e-7-2e-6, so at small angles its score can read well below the value
    its own C attains. Here each pair's C is made exactly orthogonal (polar factor) and
    scored in float64 on the reference's operators, against ``ours`` (rnnzoo's optimiser on
    the same operators): the reference's optimum free of its float32 scoring. A rerun is
    another random start of the reference (it starts from a random MLP), not the first run.
    """
    import torch
    from DSA.simdist import SimilarityTransformDist

    torch.set_num_threads(1)
    rows = []
    for i, j in pairs:
        a, b = ref_ops[i], ref_ops[j]
        sd = SimilarityTransformDist(iters=iters, lr=lr, score_method="angular")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score32 = float(sd.fit_score(a, b))
        c = sd.C_star.double().cpu().numpy()
        ortho = np.linalg.norm(c.T @ c - np.eye(len(c)))
        rows.append((score32, angle_in_float64(a, b, c), ours[i, j], ortho))
    r = np.array(rows).reshape(-1, 4)
    below32, below64 = r[:, 2] - r[:, 0], r[:, 2] - r[:, 1]
    return {
        "pairs": len(r),
        "rerun_float32_below_rnnzoo_by_max": float(max(0.0, below32.max(initial=0.0))),
        "float64_below_rnnzoo_by_max": float(below64.max(initial=-np.inf)) if len(r) else 0.0,
        "float64_below_rnnzoo": int(np.sum(below64 > 1e-9)),
        "orthogonality_max": float(r[:, 3].max(initial=0.0)),
    }


# the reference scores trace(A^T C B C^T) / (|A| |B|) in float32 with a C orthogonal to
# 1e-7-2e-6: an angle larger than its by less than either is its rounding (defaults of
# --never-worse-tol and --never-worse-cos-tol; bench_metrics.py --dsa uses them too)
NEVER_WORSE_RAD, NEVER_WORSE_COS = 1e-5, 1e-6


def larger_than_reference(
    mine: np.ndarray,
    ref: np.ndarray,
    rad: float = NEVER_WORSE_RAD,
    cos: float = NEVER_WORSE_COS,
) -> np.ndarray:
    """Where angles ``mine`` exceed ``ref`` by more than ``rad`` *and* ``cos`` in cosine."""
    return (mine - ref > rad) & (np.cos(ref) - np.cos(mine) > cos)


def compare(
    ours: np.ndarray,
    ref: np.ndarray,
    tol: float,
    never_worse_tol: float,
    never_worse_cos_tol: float,
    slack: np.ndarray | None = None,
) -> dict:
    """Pairs within ``tol`` rad, smaller, and larger than ``ref``: by more than
    ``never_worse_tol`` rad *and* ``never_worse_cos_tol`` in cosine (either is float32
    rounding of the reference's score: the first where the angle is large, the second where
    it is small and arccos magnifies its cosine's error).

    ``slack`` (end to end): per pair, how far the two sides' operators may move the angle,
    ``d(A, A') + d(B, B')`` for rnnzoo's operators A, B and the reference's A', B' (the DSA
    angle obeys the triangle inequality); taken off rnnzoo's angle before the two tests.
    """
    iu = np.triu_indices(len(ours), 1)
    diff = ours[iu] - ref[iu]
    mine = ours[iu] if slack is None else np.maximum(ours[iu] - slack[iu], 0.0)
    cos_excess = np.cos(ref[iu]) - np.cos(mine)  # how much higher the reference's cosine
    larger = larger_than_reference(mine, ref[iu], never_worse_tol, never_worse_cos_tol)
    better = diff < -tol
    return {
        "pairs": int(len(diff)),
        "max_abs_diff": float(np.max(np.abs(diff))),
        "median_abs_diff": float(np.median(np.abs(diff))),
        "within_tolerance": int(np.sum(np.abs(diff) <= tol)),
        "rnnzoo_smaller": int(np.sum(better)),
        "rnnzoo_smaller_by_median": float(np.median(-diff[better])) if better.any() else 0.0,
        "rnnzoo_smaller_by_max": float(np.max(-diff[better])) if better.any() else 0.0,
        "rnnzoo_larger": int(np.sum(larger)),
        "rnnzoo_larger_by_max": float(max(0.0, np.max(diff))),
        "rnnzoo_larger_by_max_counted": float(np.max(diff[larger])) if larger.any() else 0.0,
        "reference_cosine_higher_by_max": float(max(0.0, np.max(cos_excess))),
    }


def write_json(path: str, report: dict) -> None:
    """Write ``report`` to ``path`` through a fresh temporary file in the same folder and a
    rename: a kill never leaves a half-written report, and no other file is touched."""
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=".dsa-report-", dir=os.path.dirname(path) or ".")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(report, fh, indent=1)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def add_network_arguments(p: argparse.ArgumentParser) -> None:
    """The zoo, task, network set and DSA parameters (shared with ``dsa_certificate.py``)."""
    p.add_argument("--zoo", default="results/demo/zoo.zarr", help="a zoo store")
    p.add_argument("--task", default="flipflop")
    p.add_argument("--variable", default="hidden_trained")
    p.add_argument("--networks", type=int, default=16)
    p.add_argument(
        "--held-out",
        type=int,
        nargs="*",
        default=[],
        metavar="M",
        help="spread the networks over those outside the M-network sets (earlier checks)",
    )
    p.add_argument("--n-delays", type=int, default=10)
    p.add_argument("--delay-interval", type=int, default=1)
    p.add_argument("--rank", type=int, default=10)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_network_arguments(p)
    p.add_argument("--iters", type=int, default=1500, help="reference's Adam steps (default)")
    p.add_argument("--lr", type=float, default=5e-3, help="reference's Adam rate (default)")
    p.add_argument("--tolerance", type=float, default=1e-3, help="radians")
    p.add_argument("--never-worse-tol", type=float, default=NEVER_WORSE_RAD, help="radians")
    p.add_argument(
        "--never-worse-cos-tol",
        type=float,
        default=NEVER_WORSE_COS,
        help="in cosine: the reference scores trace(A^T C B C^T) / (|A| |B|) in float32 with "
        "a C orthogonal to 1e-7-2e-6, so its cosine may read a few 1e-7 high (1e-6: ~17 ulps)",
    )
    p.add_argument("--json", help="write the report here")
    p.add_argument(
        "--recheck",
        action="store_true",
        help="run the reference again on the pairs where rnnzoo's optimiser is larger by more "
        "than --never-worse-tol rad, and score its C in float64 (slow: ~2 s per pair)",
    )
    p.add_argument("--search", default="thorough", help="rnnzoo's dsa search preset")
    p.add_argument(
        "--reference-cache", help=".npz keeping the reference's values (reused if present)"
    )
    p.add_argument(
        "--reference-seeds",
        type=int,
        nargs="*",
        default=[],
        help="also run the reference with these torch seeds (its run-to-run variation; "
        "cached next to --reference-cache as NAME.seedS.npz)",
    )
    args = p.parse_args(argv)
    if not os.path.exists(args.zoo):
        print(f"dsa_reference: no zoo at {args.zoo!r}; pass --zoo", file=sys.stderr)
        return 2
    params = {"n_delays": args.n_delays, "delay_interval": args.delay_interval, "rank": args.rank}
    xs, ids = load_trajectories(args.zoo, args.task, args.networks, args.variable, args.held_out)
    n = len(xs)
    pairs = n * (n - 1) // 2
    print(f"{args.task}: {n} networks {xs[0].shape} (trials, time, units), {pairs} pairs, {params}")

    if args.reference_cache and os.path.exists(args.reference_cache):
        z = np.load(args.reference_cache)
        ref, ref_ops, t_ref = z["sims"], list(z["ops"]), float(z["seconds"])
        print(f"reference values from {args.reference_cache} (a previous run)")
    else:
        ref, ref_ops, t_ref = reference(xs, params, args.iters, args.lr)
        if args.reference_cache:
            np.savez(args.reference_cache, sims=ref, ops=np.stack(ref_ops), seconds=t_ref)
    reruns = {}  # the reference with other torch seeds: how much does its optimum move?
    for seed in args.reference_seeds:
        cache = None
        if args.reference_cache:
            root, ext = os.path.splitext(args.reference_cache)
            cache = f"{root}.seed{seed}{ext or '.npz'}"
        if cache and os.path.exists(cache):
            reruns[seed] = np.load(cache)["sims"]
        else:
            reruns[seed] = reference(xs, params, args.iters, args.lr, seed=seed)[0]
            if cache:
                np.savez(cache, sims=reruns[seed])
    t = time.perf_counter()
    ours = rm.pairwise(xs, "dsa", progress=False, search=args.search, **params).values
    t_ours = time.perf_counter() - t

    # operators: same spectra (rnnzoo float64, reference float32)
    mine = [
        rdsa.dmd_operator(x, params["n_delays"], params["delay_interval"], args.rank) for x in xs
    ]
    # the reference scales its operators to unit norm in place while it optimises
    spec = max(
        spectral_gap(a / np.linalg.norm(a), b / np.linalg.norm(b))
        for a, b in zip(mine, ref_ops, strict=True)
    )
    # the optimiser alone, on the reference's own operators
    prepared = [rdsa.prepare_operator(a) for a in ref_ops]
    # how far each network's two operators (float64 / the reference's float32 fit) lie apart
    drift = rdsa.distances([rdsa.prepare_operator(a) for a in mine], prepared)
    i, j = np.triu_indices(n, 1)
    t = time.perf_counter()
    on_ref = rdsa.distances([prepared[k] for k in i], [prepared[k] for k in j], search=args.search)
    t_opt = time.perf_counter() - t
    on_ref_matrix = np.zeros((n, n))
    on_ref_matrix[i, j] = on_ref_matrix[j, i] = on_ref

    report = {
        "task": args.task,
        "networks": ids,
        "shape": list(xs[0].shape),
        "parameters": {
            **params,
            "search": args.search,
            "reference_iters": args.iters,
            "reference_lr": args.lr,
        },
        "tolerance": args.tolerance,
        "never_worse_tol": args.never_worse_tol,
        "spectra_max_abs_diff": spec,
        "operator_drift_max": float(drift.max()),
        "end_to_end": compare(
            ours,
            ref,
            args.tolerance,
            args.never_worse_tol,
            args.never_worse_cos_tol,
            slack=drift[:, None] + drift[None, :],
        ),
        "optimiser_on_reference_operators": compare(
            on_ref_matrix, ref, args.tolerance, args.never_worse_tol, args.never_worse_cos_tol
        ),
        "seconds_per_pair": {
            "reference": t_ref / pairs,
            "rnnzoo": t_ours / pairs,
            "rnnzoo_optimiser_only": t_opt / pairs,
        },
        "speedup_per_pair": t_ref / t_ours,
    }
    if reruns:
        # each other reference run against the first ("rnnzoo" in compare's keys = that run),
        # rnnzoo against each run and against the best of all the reference's runs
        best = np.minimum.reduce([ref, *reruns.values()])
        report["reference_seeds"] = list(reruns)
        report["reference_run_vs_first"] = {
            str(s): compare(m, ref, args.tolerance, args.never_worse_tol, args.never_worse_cos_tol)
            for s, m in reruns.items()
        }
        report["end_to_end_vs_run"] = {
            str(s): compare(ours, m, args.tolerance, args.never_worse_tol, args.never_worse_cos_tol)
            for s, m in reruns.items()
        }
        report["end_to_end_vs_best_run"] = compare(
            ours, best, args.tolerance, args.never_worse_tol, args.never_worse_cos_tol
        )
    if args.recheck:
        flagged = [
            (int(a), int(b))
            for a, b in zip(i, j, strict=True)
            if on_ref_matrix[a, b] - ref[a, b] > args.never_worse_tol
        ]
        report["recheck"] = recheck(ref_ops, flagged, on_ref_matrix, args.iters, args.lr)
    e2e, opt = report["end_to_end"], report["optimiser_on_reference_operators"]
    print(
        f"DMD spectra: max |difference| {spec:.2e} (reference float32, rnnzoo float64); "
        f"a network's two operators at DSA angle up to {drift.max():.1e} rad (end to end, "
        "rnnzoo's angle may be larger by the sum of its pair's)"
    )
    for name, r in (("end to end", e2e), ("optimiser on the reference's operators", opt)):
        print(
            f"{name}: {r['within_tolerance']}/{r['pairs']} within {args.tolerance:g} rad "
            f"(max |diff| {r['max_abs_diff']:.2e}, median {r['median_abs_diff']:.2e}); "
            f"rnnzoo smaller in {r['rnnzoo_smaller']} (median {r['rnnzoo_smaller_by_median']:.2e}, "
            f"max {r['rnnzoo_smaller_by_max']:.2e}); larger than the reference by more than "
            f"{args.never_worse_tol:g} rad and {args.never_worse_cos_tol:g} in cosine in "
            f"{r['rnnzoo_larger']} (max {r['rnnzoo_larger_by_max_counted']:.2e}; any pair: "
            f"{r['rnnzoo_larger_by_max']:.2e} rad, "
            f"cosine {r['reference_cosine_higher_by_max']:.1e})"
        )
    for seed, r in report.get("reference_run_vs_first", {}).items():
        o = report["end_to_end_vs_run"][seed]
        print(
            f"reference, torch seed {seed}, against its first run: larger in {r['rnnzoo_larger']}"
            f"/{r['pairs']} (max {r['rnnzoo_larger_by_max']:.2e}), smaller in "
            f"{r['rnnzoo_smaller']} (max {r['rnnzoo_smaller_by_max']:.2e}); rnnzoo against "
            f"this run: larger in {o['rnnzoo_larger']} (max {o['rnnzoo_larger_by_max']:.2e})"
        )
    if "end_to_end_vs_best_run" in report:
        b = report["end_to_end_vs_best_run"]
        print(
            f"rnnzoo against the best of the reference's {len(reruns) + 1} runs: larger in "
            f"{b['rnnzoo_larger']}/{b['pairs']} (max {b['rnnzoo_larger_by_max']:.2e})"
        )
    if "recheck" in report:
        c = report["recheck"]
        print(
            f"recheck of the {c['pairs']} pairs larger by more than {args.never_worse_tol:g} rad "
            f"(reference run again, its C scored in float64): below rnnzoo by more than 1e-9 "
            f"rad in {c['float64_below_rnnzoo']} (max {c['float64_below_rnnzoo_by_max']:.1e}); "
            f"its float32 score was below by up to {c['rerun_float32_below_rnnzoo_by_max']:.1e}"
            f" rad; |C^T C - I| up to {c['orthogonality_max']:.1e}"
        )
    s = report["seconds_per_pair"]
    print(
        f"per pair: reference {s['reference'] * 1e3:.1f} ms, rnnzoo {s['rnnzoo'] * 1e3:.2f} ms "
        f"(prepare + tiles), ratio {report['speedup_per_pair']:.0f}x"
    )
    if args.json:  # written next to it, then renamed: never a half-written report
        write_json(args.json, report)
    ok = (
        e2e["rnnzoo_larger"] == 0
        and opt["rnnzoo_larger"] == 0
        and report.get("end_to_end_vs_best_run", e2e)["rnnzoo_larger"] == 0
        and report.get("recheck", {}).get("float64_below_rnnzoo", 0) == 0
        and e2e["within_tolerance"] + e2e["rnnzoo_smaller"] == e2e["pairs"]
        and spec < 1e-3
    )
    print("reference comparison:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
