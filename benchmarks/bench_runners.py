"""What ``--workers N`` costs: a Dask LocalCluster's start-up and shutdown, side by side with
the plain process pool of ``--processes N`` (issue 4, point 6; docs/scaling.md).

Part 1, always: ``DaskRunner(n_workers=N)`` started (scheduler, N nanny + worker processes,
the one-thread worker plugin importing torch in every worker, waiting for all of them) and
closed, alternating with one batch of a ``ProcessRunner(N)`` (spawn N processes that import
torch, map two trivial units, shut the pool down), ``--repeats`` times each; medians.

Part 2, with ``--generate TASK``: ``generate`` of one task of a preset (default ``demo``)
into fresh stores with ``DaskRunner(n_workers=N)`` (start and close included) and with
``ProcessRunner(N)``, one after the other; wall seconds and the ratio, and a check that both
zoos are identical.

    python benchmarks/bench_runners.py                       # part 1 (~1 min)
    python benchmarks/bench_runners.py --generate cdi        # and the demo preset's cdi task

Timings depend on the machine's load: both runners are measured in the same process, one
after the other, and reported as a ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

for _k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_k, "1")

OUT = Path(__file__).resolve().parent / "out"


def time_cluster(n: int) -> tuple[float, float]:
    """Seconds to start a LocalCluster of ``n`` workers (ready to run units) and to close it."""
    from rnnzoo_train.distributed import DaskRunner

    t0 = time.perf_counter()
    runner = DaskRunner(n_workers=n)
    runner.start()
    t1 = time.perf_counter()
    assert len(runner.client.scheduler_info()["workers"]) == n
    t2 = time.perf_counter()
    runner.close()
    return t1 - t0, time.perf_counter() - t2


def time_pool(n: int) -> float:
    """Seconds for one batch of a process pool of ``n``: spawn, import torch, two units, stop."""
    from rnnzoo_train.runners import ProcessRunner

    t0 = time.perf_counter()
    out = dict(ProcessRunner(n).map_unordered(abs, [-1, -2]))
    assert out == {-1: 1, -2: 2}
    return time.perf_counter() - t0


def time_generate(task: str, preset_name: str, n: int, root: Path) -> dict[str, float]:
    """Wall seconds of ``generate`` of one task with each runner (cluster start/stop included)."""
    from rnnzoo_train.distributed import DaskRunner
    from rnnzoo_train.generate import generate
    from rnnzoo_train.presets import get_preset
    from rnnzoo_train.runners import ProcessRunner
    from rnnzoo_train.zoo import ZarrZooWriter
    from rnnzoo_train.zoo.testing import zoo_differences

    preset = get_preset(preset_name)
    seconds = {}
    for name in ("processes", "workers"):
        path = root / f"{name}.zarr"
        t0 = time.perf_counter()
        writer = ZarrZooWriter(path)
        if name == "workers":
            with DaskRunner(n_workers=n) as runner:
                report = generate(preset, [task], writer, runner=runner, progress=False)
        else:
            report = generate(preset, [task], writer, runner=ProcessRunner(n), progress=False)
        seconds[name] = time.perf_counter() - t0
        assert report.ok, report.failed_units
    differences = zoo_differences(root / "workers.zarr", root / "processes.zarr")
    assert differences == [], differences[:3]
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=2, help="N: Dask workers and pool processes (2)")
    ap.add_argument("--repeats", type=int, default=5, help="start/stop cycles of each (5)")
    ap.add_argument("--generate", metavar="TASK", help="also time generate of this task")
    ap.add_argument("--preset", default="demo", help="preset of --generate (demo)")
    args = ap.parse_args()
    n = args.n
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} cores, load average {load:.2f}; N = {n}", flush=True)
    time_cluster(n)  # warm the file cache (imports) for both
    starts, stops, pools = [], [], []
    for _ in range(args.repeats):
        start, stop = time_cluster(n)
        starts.append(start)
        stops.append(stop)
        pools.append(time_pool(n))
    result = {
        "workers": n,
        "repeats": args.repeats,
        "load_before": load,
        "local_cluster_start_s": statistics.median(starts),
        "local_cluster_stop_s": statistics.median(stops),
        "process_pool_batch_s": statistics.median(pools),
        "all": {"start": starts, "stop": stops, "pool": pools},
    }
    start, stop, pool = (result[k] for k in list(result)[3:6])
    print(
        f"LocalCluster({n}): start {start:.2f} s (min {min(starts):.2f}, max {max(starts):.2f}),"
        f" stop {stop:.2f} s (min {min(stops):.2f}, max {max(stops):.2f}); medians of "
        f"{args.repeats}"
    )
    print(
        f"ProcessRunner({n}), one batch (spawn + torch + stop): {pool:.2f} s "
        f"(min {min(pools):.2f}, max {max(pools):.2f}); start + stop / batch = "
        f"{(start + stop) / pool:.2f}"
    )
    if args.generate:
        with tempfile.TemporaryDirectory() as tmp:
            sec = time_generate(args.generate, args.preset, n, Path(tmp))
        result["generate"] = {"task": args.generate, "preset": args.preset, **sec}
        print(
            f"generate {args.preset}/{args.generate}: --processes {n} {sec['processes']:.1f} s, "
            f"--workers {n} {sec['workers']:.1f} s (ratio {sec['workers'] / sec['processes']:.2f}"
            "); identical zoos"
        )
    result["load_after"] = os.getloadavg()[0]
    print(f"load average at the end {result['load_after']:.2f}")
    OUT.mkdir(exist_ok=True)
    (OUT / "runners.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
