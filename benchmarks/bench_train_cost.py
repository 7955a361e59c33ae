"""Per-network training cost on this machine's CPU, the rates ``rnnzoo_train.cost`` projects from.

For each task (at the trial length T given), cell type and width, a population of ``P``
networks is trained through :func:`rnnzoo_train.training.train_population` exactly as a work
unit of ``rnnzoo-train generate`` trains it (one torch/BLAS thread, batch 64, fresh batches
from each network's stream, SGD update), and the CPU time of each iteration (``time.
process_time`` between consecutive loss callbacks: sampling, forward, loss, BPTT, update) is
recorded. The rate is the median over iterations divided by ``P``: **CPU seconds per
network-iteration**. CPU time rather than wall time, because the development machine is
shared (2 cores, several users): another process's load lengthens the wall time but, apart
from cache and memory-bandwidth contention, not this process's CPU time. ``--repeats``
measures every point several times, in turn, to show how noisy that is.

Usage (the numbers in ``rnnzoo_train.cost.CPU_RATES`` came from this)::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_train_cost.py --json cost.json
    python benchmarks/bench_train_cost.py --tasks sine:500 --units 32 --cells gru-tanh
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch

from rnnzoo_train.records import Configuration, HyperParameters, NetworkSpec
from rnnzoo_train.tasks import get_task
from rnnzoo_train.training import train_population

CELLS = tuple(f"{a}-{f}" for a in ("vanilla", "ugrnn", "gru", "lstm") for f in ("tanh", "relu"))
#: small learning rate: the cost of an iteration does not depend on what is learnt
HPARAMS = HyperParameters(clip=1.0, lr=1e-3, decay=0.5, momentum=0.9)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def measure(task_name: str, n_steps: int, cell: str, units: int, P: int, iterations: int) -> dict:
    """CPU seconds per network-iteration of one population (median over its iterations)."""
    arch, act = cell.split("-")
    task = get_task(task_name, n_steps=n_steps)
    config = Configuration(arch, act, units, 1e-4)
    specs = [NetworkSpec(task_name, config, s, HPARAMS, iterations, 64) for s in range(P)]
    stamps: list[float] = []

    def tick(k: int, total: int, losses) -> None:
        stamps.append(time.process_time())

    wall0, cpu0 = time.perf_counter(), time.process_time()
    train_population(specs, task, loss_every=1, eval_trials=64, record_probe=False, callback=tick)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    deltas = [
        b - a for a, b in zip(stamps[1:], stamps[2:], strict=False)
    ]  # skip the first (warm-up)
    return {
        "task": task_name,
        "n_steps": n_steps,
        "cell": cell,
        "units": units,
        "P": P,
        "iterations": iterations,
        "cpu_s_per_network_iteration": statistics.median(deltas) / P,
        "cpu_s_total": cpu,
        "wall_s_total": wall,
    }


def iterations_for(units: int, n_steps: int, budget: float, population: int) -> int:
    """Iterations so that one measurement takes about ``budget`` CPU seconds (at least 4)."""
    guess = 2e-8 * n_steps * max(units, 32) ** 2 + 5e-6 * n_steps  # seconds, one network
    return max(4, min(60, int(budget / guess / population)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="flipflop:100,sine:500,cdi:30",
                    help="task:T pairs, comma-separated (default the paper's)")  # fmt: skip
    ap.add_argument("--cells", default=",".join(CELLS))
    ap.add_argument("--units", default="32,64,128,256")
    ap.add_argument("--population", type=int, default=8, help="networks per population (8)")
    ap.add_argument("--budget", type=float, default=3.0, help="CPU seconds per measurement")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    tasks = [(t.split(":")[0], int(t.split(":")[1])) for t in args.tasks.split(",")]
    cells = args.cells.split(",")
    widths = [int(u) for u in args.units.split(",")]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load0 = os.getloadavg()[0]
    print(f"{started}, {cpu_model()}, torch {torch.__version__}, load {load0:.1f}", flush=True)
    rows = []
    for rep in range(args.repeats):
        for task_name, n_steps in tasks:
            for units in widths:
                for cell in cells:
                    its = iterations_for(units, n_steps, args.budget, args.population)
                    r = measure(task_name, n_steps, cell, units, args.population, its)
                    r["repeat"] = rep
                    rows.append(r)
                    print(f"{task_name}:{n_steps} {cell:13s} u={units:4d} P={args.population} "
                          f"it={its:3d}  {1e3 * r['cpu_s_per_network_iteration']:9.3f} ms CPU "
                          "per network-iteration", flush=True)  # fmt: skip
    out = {
        "date": started,
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "load_average": [load0, os.getloadavg()[0]],
        "rows": rows,
    }
    print("\nmedian over repeats (ms CPU per network-iteration), spread max/min:")
    keys = sorted({(r["task"], r["n_steps"], r["cell"], r["units"]) for r in rows})
    for key in keys:
        vals = [r["cpu_s_per_network_iteration"] for r in rows if
                (r["task"], r["n_steps"], r["cell"], r["units"]) == key]  # fmt: skip
        print(
            f"  {key}: {1e3 * statistics.median(vals):.3f} ms, spread {max(vals) / min(vals):.2f}x"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
