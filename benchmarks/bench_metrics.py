"""Speed of rnnzoo-metrics' all-pairs engine against a per-pair baseline (issue 2, point 12).

200 synthetic networks (2,000 samples x 128 units, shared low-dimensional latent structure
like trained RNN states), one BLAS thread. For ``svcca`` and ``cka`` it times:

* the engine: prepare every network once, then all pairs in tiles (stacked GEMM);
* a per-pair baseline written here, as per-pair libraries work: for every pair, from the
  raw activations, centre both, then SVD (SVCCA) or feature-space products (CKA); no
  reuse across pairs. It is timed on a random subset of pairs and reported per pair;

and prints ms/pair, the ratio, the engine's FLOP floor (its GEMM FLOPs at the DGEMM rate
measured in this run), and the largest engine-baseline difference. Then it runs the whole
engine on the paper's population size (2,880 networks per task, generated on the fly so
that only the prepared bases are held), with peak memory.

    python benchmarks/bench_metrics.py              # everything (~20-30 min on 2 cores)
    python benchmarks/bench_metrics.py --population 0   # skip the 2,880-network run
"""

from __future__ import annotations

import argparse
import os
import resource
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np
from threadpoolctl import threadpool_limits

import rnnzoo_metrics as rm
from rnnzoo_metrics.synthetic import LazyNetworks


def baseline_svcca(x, y, threshold=0.95):
    def basis(a):
        a = a - a.mean(axis=0)
        u, s, _ = np.linalg.svd(a, full_matrices=False)
        cum = np.cumsum(s**2) / np.sum(s**2)
        return u[:, : int(np.searchsorted(cum, threshold) + 1)]

    return 1 - np.linalg.svd(basis(x).T @ basis(y), compute_uv=False).mean()


def baseline_cka(x, y):
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    return 1 - np.sum((x.T @ y) ** 2) / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


BASELINES = {"svcca": baseline_svcca, "cka": baseline_cka}


def gemm_rate(n=2000, k=2048, repeats=3):
    a, b = np.random.default_rng(0).normal(size=(2, n, k))
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        a.T @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n * k * k / best


def engine_flops(metric, caches, n_samples):
    widths = np.array([metric.width(c) for c in caches], dtype=float)
    total = widths.sum()
    # all cross products B_a^T B_b for a < b: n * (sum_k^2 - sum k^2) multiply-adds
    return 2 * n_samples * 0.5 * (total**2 - np.sum(widths**2))


def bench_small(args, rate):
    nets = LazyNetworks(args.networks, args.samples, args.widths, latent=args.latent, seed=1)
    data = [nets[i] for i in range(len(nets))]
    rng = np.random.default_rng(0)
    pairs = [tuple(sorted(rng.choice(len(data), 2, replace=False))) for _ in range(args.pairs)]
    n_pairs = len(data) * (len(data) - 1) // 2
    for name in ("svcca", "cka"):
        t0 = time.perf_counter()
        d = rm.pairwise(data, name, progress=False)
        t_engine = time.perf_counter() - t0
        m = rm.get_metric(name)
        t0 = time.perf_counter()
        caches = [m.prepare(x) for x in data]
        t_prep = time.perf_counter() - t0
        tile = rm.engine.choose_tile(m, caches)
        t0 = time.perf_counter()
        for _ in rm.engine._run_tiles(
            m, caches, rm.engine.tiles(len(data), tile), tile, len(data), 1, None
        ):
            pass
        t_pairs = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = [BASELINES[name](data[i], data[j]) for i, j in pairs]
        t_base = (time.perf_counter() - t0) / len(pairs)
        diff = max(abs(d.values[i, j] - r) for (i, j), r in zip(pairs, ref, strict=True))
        floor = engine_flops(m, caches, args.samples) / rate
        widths = [m.width(c) for c in caches]
        per_pair = t_engine / n_pairs
        print(
            f"\n[{name}] {len(data)} networks x {args.samples} samples x units "
            f"{sorted(set(args.widths))}; basis widths {min(widths)}-{max(widths)} "
            f"(mean {np.mean(widths):.1f})"
        )
        print(
            f"  engine  : {t_engine:8.2f} s for {n_pairs} pairs = {per_pair * 1e3:8.4f} ms/pair "
            f"(prepare {t_prep:.2f} s)"
        )
        print(
            f"  baseline: {t_base * 1e3:8.4f} ms/pair (timed on {len(pairs)} random pairs) "
            f"-> all pairs {t_base * n_pairs:8.1f} s"
        )
        print(f"  ratio   : {t_base / per_pair:8.1f}x faster than the per-pair baseline")
        print(
            f"  floor   : {floor:8.2f} s of GEMM at {rate / 1e9:.1f} GFLOP/s "
            f"-> pair phase {t_pairs:.2f} s = {t_pairs / floor:.2f}x its FLOP floor"
        )
        print(f"  max |engine - baseline| = {diff:.2e}")


def bench_population(args):
    for name in ("svcca", "cka"):
        nets = LazyNetworks(args.population, args.samples, args.widths, latent=args.latent, seed=2)
        t0 = time.perf_counter()
        d = rm.pairwise(nets, name, n_jobs=args.jobs, progress=True)
        dt = time.perf_counter() - t0
        peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        peak_kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        n = args.population
        print(
            f"\n[{name}] {n} networks ({n * (n - 1) // 2} pairs), {args.jobs} processes: "
            f"{dt:.0f} s = {dt / 60:.1f} min; peak RSS parent {peak_self:.2f} GiB, "
            f"largest worker {peak_kids:.2f} GiB; finite: {bool(np.isfinite(d.values).all())}"
        )


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--networks", type=int, default=200)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--widths", type=int, nargs="+", default=[128])
    p.add_argument("--latent", type=int, default=6)
    p.add_argument("--pairs", type=int, default=60, help="baseline pairs to time")
    p.add_argument("--population", type=int, default=2880, help="0 skips the population run")
    p.add_argument("--jobs", type=int, default=2, help="processes for the population run")
    args = p.parse_args()
    with threadpool_limits(1):
        rate = gemm_rate()
        print(f"rnnzoo-metrics {rm.__version__}; DGEMM rate (one thread) {rate / 1e9:.1f} GFLOP/s")
        bench_small(args, rate)
        if args.population:
            bench_population(args)


if __name__ == "__main__":
    main()
