"""The zoo store: sizes, write/read throughput, and opening a 2,880-network index (issue 4.9).

1. **Sizes, demo** (measured): every network of the ``demo`` preset's plans, written through
   ``ZarrZooWriter``; bytes on disk per network and per task. With ``--zoo PATH`` a real
   (trained) zoo is measured too.
2. **Sizes, paper** (projected from a measured sample): the ``paper`` plan of each task
   (96 configurations x 30 seeds = 2,880 networks), its full template, and two networks of
   every group (4 architectures x 2 activations x 3 widths) written at their real shapes;
   per-network bytes per group x 120 networks per group + the task's metadata and index.
   For three storage choices: float32 everything (the default), float16 hidden states, and
   float16 trained hidden states only (untrained ones recomputed from the initial weights).
3. **Throughput**: writing / reading paper-size networks (GRU, 256 units, sine: ~10 MB of
   arrays each) through the zoo, against a baseline in the same process: ``np.save`` /
   ``np.load`` of the same arrays, one uncompressed file per array.
4. **Opening the index of a 2,880-network task**, locally and over loopback HTTP (a server
   without directory listing), against the same index stored one network per chunk (what
   the per-network chunk rule would give if applied to the index).

Networks are synthetic (``rnnzoo_train.zoo.testing.synthetic_result``: real cells, real
initialisation, states of the cell run on the real probe inputs, no training), so that sizes
and speeds are measured at the exact shapes without training 8,640 networks. Compression of
trained states may differ; ``--zoo`` measures a real zoo for comparison.

    OMP_NUM_THREADS=1 python benchmarks/bench_zoo.py                 # everything (~10 min)
    OMP_NUM_THREADS=1 python benchmarks/bench_zoo.py --quick         # smaller samples
    OMP_NUM_THREADS=1 python benchmarks/bench_zoo.py --zoo results/demo/zoo.zarr
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np
import torch
import xarray as xr

from rnnzoo_train.presets import get_preset
from rnnzoo_train.records import NetworkResult
from rnnzoo_train.tasks import get_task
from rnnzoo_train.zoo import ZarrZooWriter, layout, open_zoo
from rnnzoo_train.zoo.store import consolidate, quiet_zarr
from rnnzoo_train.zoo.testing import serve_directory, synthetic_result

TASKS = ("flipflop", "sine", "cdi")
STORAGE = {
    "float32, all hidden states (default)": {"hidden_dtype": "float32", "untrained_hidden": True},
    "float16 hidden states": {"hidden_dtype": "float16", "untrained_hidden": True},
    "float16 trained hidden states only": {"hidden_dtype": "float16", "untrained_hidden": False},
}
GiB, MiB = 2**30, 2**20


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def raw_bytes(r: NetworkResult, storage: dict | None = None) -> int:
    """Uncompressed bytes of a network's arrays as stored under ``storage``."""
    storage = storage or layout.STORAGE_DEFAULTS
    hidden = 2 if storage["hidden_dtype"] == "float16" else 4
    arrays = [r.outputs_trained, r.loss_curve, *r.params_initial.values()]
    arrays += list(r.params_final.values())
    n = sum(np.asarray(a).size * 4 for a in arrays)
    n += np.asarray(r.hidden_trained).size * hidden
    if storage["untrained_hidden"]:
        n += np.asarray(r.hidden_untrained).size * hidden
    return n


def task_of(plan):
    return get_task(plan.task, **plan.task_config.get("params", {}))


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# -- 1. demo ----------------------------------------------------------------------------------
def bench_demo_sizes(work: Path, zoo: str | None) -> dict:
    demo = get_preset("demo")
    path = work / "demo.zarr"
    out = {"tasks": {}}
    with ZarrZooWriter(path) as w:
        for name in TASKS:
            plan = demo.plan(name)
            task = task_of(plan)
            w.prepare_task(plan, task)
            results = [synthetic_result(plan, task, i) for i in plan.network_ids()]
            w.write_results(name, results)
            out["tasks"][name] = {"networks": len(results), "raw": sum(map(raw_bytes, results))}
    for name in TASKS:
        t = out["tasks"][name]
        t["disk"] = du(path / name)
        t["per_network"] = t["disk"] / t["networks"]
    out["total_disk"] = du(path)
    if zoo:
        real = open_zoo(zoo)
        out["real"] = {
            "location": zoo,
            "tasks": {
                t: {"networks": len(real.index(t)), "disk": du(Path(zoo) / t)} for t in real.tasks
            },
        }
    return out


# -- 2. paper projection ----------------------------------------------------------------------
def bench_paper_projection(work: Path, per_group: int) -> dict:
    paper = get_preset("paper")
    out: dict = {"per_group_sample": per_group, "tasks": {}}
    for name in TASKS:
        plan = paper.plan(name)
        task = task_of(plan)
        groups = layout.group_names(plan)
        slots = layout.network_slots(plan)
        sample = [
            [s.network_id for s in slots.values() if s.group == g][:per_group] for g in groups
        ]
        t = time.perf_counter()
        results = {nid: synthetic_result(plan, task, nid) for ids in sample for nid in ids}
        synth_s = time.perf_counter() - t
        per_task = {"networks": len(slots), "groups": len(groups), "options": {}}
        per_task["raw_per_network"] = statistics.mean(map(raw_bytes, results.values()))
        for label, storage in STORAGE.items():
            path = work / f"paper-{name}-{storage['hidden_dtype']}-{storage['untrained_hidden']}"
            lean = replace(plan, metadata={**plan.metadata, "zoo_storage": storage})
            with ZarrZooWriter(path) as w:
                t = time.perf_counter()
                w.prepare_task(lean, task)
                template_s = time.perf_counter() - t
                w.write_results(name, list(results.values()))
            template_bytes = du(path) - sum(
                _network_bytes(path / name / "networks" / slots[nid].group, slots[nid].group_row)
                for nid in results
            )
            projected = raw = template_bytes
            for g, ids in zip(groups, sample, strict=True):
                node = path / name / "networks" / g
                per_net = statistics.mean(_network_bytes(node, slots[i].group_row) for i in ids)
                n_group = sum(1 for s in slots.values() if s.group == g)
                projected += per_net * n_group
                raw += statistics.mean(raw_bytes(results[i], storage) for i in ids) * n_group
            per_task["options"][label] = {
                "projected_bytes": projected,
                "raw_bytes": raw,
                "per_network": (projected - template_bytes) / len(slots),
                "template_bytes": template_bytes,
                "template_seconds": template_s,
            }
            shutil.rmtree(path)
        per_task["synthesis_seconds"] = synth_s
        out["tasks"][name] = per_task
    for label in STORAGE:
        for key in ("projected_bytes", "raw_bytes"):
            out.setdefault(key, {})[label] = sum(
                t["options"][label][key] for t in out["tasks"].values()
            )
    return out


def _network_bytes(group_dir: Path, row: int) -> int:
    """Bytes of every chunk of one network in a group (one network per chunk)."""
    total = 0
    for var in group_dir.iterdir():
        per_network = var.name in layout.GROUP_ARRAYS or var.name == "status"
        if not (per_network or var.name.startswith(tuple(layout.WEIGHT_PREFIXES.values()))):
            continue  # coordinates stored whole (their chunk c/0 is not network 0's)
        chunk_root = var / "c" / str(row)
        if chunk_root.is_file():
            total += chunk_root.stat().st_size
        elif chunk_root.is_dir():
            total += du(chunk_root)
    return total


# -- 3. throughput ----------------------------------------------------------------------------
def bench_throughput(work: Path, n: int) -> dict:
    paper = get_preset("paper")
    base = paper.plan("sine")
    config = next(c for c in base.configurations if c.group == "gru-tanh-u256")
    plan = replace(base, configurations=(config,), seeds=tuple(range(n)))
    task = task_of(plan)
    results = [synthetic_result(plan, task, i) for i in plan.network_ids()]
    mb = sum(map(raw_bytes, results)) / MiB

    path = work / "throughput.zarr"
    with ZarrZooWriter(path) as w:
        w.prepare_task(plan, task)
        t = time.perf_counter()
        for r in results:  # one network per call, as generation writes finished units
            w.write_results("sine", [r])
        zoo_write = time.perf_counter() - t

    npy = work / "npy"
    t = time.perf_counter()
    for r in results:
        d = npy / r.network_id
        d.mkdir(parents=True)
        arrays = {
            "hidden_trained": r.hidden_trained,
            "hidden_untrained": r.hidden_untrained,
            "outputs_trained": r.outputs_trained,
            "loss_curve": r.loss_curve,
            **{f"initial_{k}": v for k, v in r.params_initial.items()},
            **{f"final_{k}": v for k, v in r.params_final.items()},
        }
        for k, v in arrays.items():
            np.save(d / f"{k}.npy", np.asarray(v, dtype=np.float32))
    npy_write = time.perf_counter() - t

    def read_zoo():
        zoo = open_zoo(path)
        for r in results:
            zoo.weights("sine", r.network_id, "initial")
            zoo.weights("sine", r.network_id, "final")
            tree = zoo.hidden_states("sine", [r.network_id], "trained")
            tree["gru-tanh-u256"]["hidden_trained"].values  # noqa: B018
            tree = zoo.hidden_states("sine", [r.network_id], "untrained")
            tree["gru-tanh-u256"]["hidden_untrained"].values  # noqa: B018
            zoo.tree["sine/networks/gru-tanh-u256"]["outputs_trained"][0].values  # noqa: B018
        zoo.close()

    def read_npy():
        for r in results:
            for f in sorted((npy / r.network_id).iterdir()):
                np.load(f)

    zoo_read = median_time(read_zoo, 3)
    npy_read = median_time(read_npy, 3)
    return {
        "networks": n,
        "raw_mib": mb,
        "zoo_write_s": zoo_write,
        "npy_write_s": npy_write,
        "zoo_read_s": zoo_read,
        "npy_read_s": npy_read,
        "zoo_disk": du(path / "sine" / "networks"),
        "npy_disk": du(npy),
    }


# -- 4. index of a 2,880-network task ----------------------------------------------------------
def bench_index_open(work: Path, repeat: int) -> dict:
    plan = get_preset("paper").plan("flipflop")
    task = task_of(plan)
    site = work / "site"
    path = site / "paper.zarr"
    w = ZarrZooWriter(path)
    w.prepare_task(plan, task)
    rng = np.random.default_rng(0)
    rows = []
    for slot in w._slots["flipflop"].values():  # fill the index table only (no arrays)
        r = synthetic_index_row(plan, slot, rng)
        rows.append((slot, r))
    w._update_index("flipflop", rows)
    w.close()

    per_net = site / "per-network.zarr"  # baseline: the index chunked one network per chunk
    shutil.copytree(path, per_net)
    with quiet_zarr():
        index = xr.open_dataset(
            per_net, group="flipflop/index", engine="zarr", consolidated=False
        ).load()
        enc = layout.whole_encoding(index)
        for name in index.variables:
            enc[name]["chunks"] = (1,)
        for v in index.variables.values():
            v.encoding = {}
        index = index.assign_coords(
            {
                k: ("network", layout.as_vlen_str(v.values))
                for k, v in index.coords.items()
                if v.dtype.kind in "OTU"
            }  # fmt: skip
        )
        for k in [k for k, v in index.data_vars.items() if v.dtype.kind in "OTU"]:
            index[k] = ("network", layout.as_vlen_str(index[k].values))
        index.to_zarr(per_net, group="flipflop/index", mode="w", zarr_format=3,
                      consolidated=False, encoding=enc)  # fmt: skip
    consolidate(per_net)

    def open_index(location):
        def run():
            zoo = open_zoo(location)
            df = zoo.index("flipflop")
            assert len(df) == 2880
            zoo.close()

        return run

    out = {
        "networks": 2880,
        "consolidated_json_bytes": (path / "zarr.json").stat().st_size,
        "index_files": sum(1 for _ in (path / "flipflop" / "index").rglob("c/*")),
        "per_network_index_files": sum(
            1 for p in (per_net / "flipflop" / "index").rglob("c/*") if p.is_file()
        ),
    }
    # the baseline is 100s of times slower: one run of it is enough to compare
    out["local"] = median_time(open_index(path), repeat)
    out["local_per_network"] = median_time(open_index(per_net), 1)
    with serve_directory(site) as srv:
        out["http"] = median_time(open_index(f"{srv.url}/paper.zarr"), repeat)
        n0 = len(srv.log)
        open_index(f"{srv.url}/paper.zarr")()
        out["http_requests"] = len(srv.log) - n0
        n0 = len(srv.log)
        out["http_per_network"] = median_time(open_index(f"{srv.url}/per-network.zarr"), 1)
        out["http_per_network_requests"] = len(srv.log) - n0
        t = time.perf_counter()
        zoo = open_zoo(f"{srv.url}/paper.zarr")
        tree = zoo.tree
        out["http_whole_tree"] = time.perf_counter() - t
        out["tree_nodes"] = len(list(tree.subtree))
    return out


def synthetic_index_row(plan, slot, rng) -> NetworkResult:
    """A result with index values only (no arrays), for filling a large index quickly."""
    from rnnzoo_train.records import HyperParameters, NetworkSpec

    hp = HyperParameters(
        clip=float(10 ** rng.uniform(-1, 1)),
        lr=float(10 ** rng.uniform(-5, -1)),
        decay=float(rng.uniform(0.1, 0.9)),
        momentum=float(rng.uniform(0, 1)),
    )
    spec = NetworkSpec(plan.task, slot.config, slot.seed, hp, plan.iterations)
    loss = float(rng.lognormal(-4, 1))
    empty = np.zeros(0, np.float32)
    return NetworkResult(
        spec, "ok", {}, {}, empty, np.zeros(0, np.int64), loss, loss * 1.1, loss * 1.2,
        float(rng.uniform(0.95, 1.0)), True, empty, empty, empty, loss, -1, "",
        float(rng.uniform(600, 3600)),
    )  # fmt: skip


# -- report -----------------------------------------------------------------------------------
def report(res: dict) -> str:
    lines = ["", "== 1. sizes, demo preset (measured; synthetic networks at the demo's shapes)"]
    demo = res["demo"]
    for name, t in demo["tasks"].items():
        lines.append(
            f"  {name:9s} {t['networks']:3d} networks: {t['disk'] / MiB:7.2f} MiB on disk "
            f"({t['per_network'] / 1024:6.1f} KiB/network; raw arrays {t['raw'] / MiB:.2f} MiB)"
        )
    lines.append(f"  whole demo zoo: {demo['total_disk'] / MiB:.2f} MiB")
    if "real" in demo:
        lines.append(f"  real zoo {demo['real']['location']}:")
        for name, t in demo["real"]["tasks"].items():
            lines.append(
                f"    {name:9s} {t['networks']:3d} networks: {t['disk'] / MiB:7.2f} MiB "
                f"({t['disk'] / t['networks'] / 1024:.1f} KiB/network)"
            )
    paper = res["paper"]
    lines += ["", "== 2. sizes, paper preset (projected from "
              f"{paper['per_group_sample']} measured networks per group)"]  # fmt: skip
    for name, t in paper["tasks"].items():
        lines.append(
            f"  {name} ({t['networks']} networks, {t['groups']} groups; raw arrays "
            f"{t['raw_per_network'] / MiB:.2f} MiB/network):"
        )
        for label, o in t["options"].items():
            lines.append(
                f"    {label:40s} {o['projected_bytes'] / GiB:7.2f} GiB measured-compressed, "
                f"{o['raw_bytes'] / GiB:6.2f} GiB uncompressed ({o['per_network'] / MiB:.2f} "
                f"MiB/network; template + index {o['template_bytes'] / MiB:.1f} MiB, written in "
                f"{o['template_seconds']:.1f} s)"
            )
    for label in STORAGE:
        lines.append(
            f"  all three tasks, {label:40s} {paper['projected_bytes'][label] / GiB:7.2f} GiB "
            f"measured-compressed, {paper['raw_bytes'][label] / GiB:6.2f} GiB uncompressed"
        )
    tp = res["throughput"]
    lines += [
        "",
        f"== 3. throughput: {tp['networks']} paper-size networks (GRU 256 units, sine), "
        f"{tp['raw_mib']:.0f} MiB of arrays",
        f"  write: zoo {tp['raw_mib'] / tp['zoo_write_s']:7.1f} MiB/s "
        f"({1e3 * tp['zoo_write_s'] / tp['networks']:.0f} ms/network) vs np.save "
        f"{tp['raw_mib'] / tp['npy_write_s']:7.1f} MiB/s: ratio "
        f"{tp['zoo_write_s'] / tp['npy_write_s']:.2f}x the baseline's time",
        f"  read:  zoo {tp['raw_mib'] / tp['zoo_read_s']:7.1f} MiB/s "
        f"({1e3 * tp['zoo_read_s'] / tp['networks']:.0f} ms/network) vs np.load "
        f"{tp['raw_mib'] / tp['npy_read_s']:7.1f} MiB/s: ratio "
        f"{tp['zoo_read_s'] / tp['npy_read_s']:.2f}x the baseline's time",
        f"  on disk: zoo {tp['zoo_disk'] / MiB:.1f} MiB (zstd + crc32c) vs .npy "
        f"{tp['npy_disk'] / MiB:.1f} MiB",
    ]
    ix = res["index"]
    lines += [
        "",
        f"== 4. open the index of a {ix['networks']}-network task (paper flipflop)",
        f"  consolidated metadata: {ix['consolidated_json_bytes'] / 1024:.0f} KiB; index chunk "
        f"files: {ix['index_files']} (one per variable) vs {ix['per_network_index_files']} "
        "(one per network and variable)",
        f"  local:    {1e3 * ix['local']:8.1f} ms   vs per-network chunks "
        f"{1e3 * ix['local_per_network']:8.1f} ms  ({ix['local_per_network'] / ix['local']:.1f}x)",
        f"  HTTP:     {1e3 * ix['http']:8.1f} ms ({ix['http_requests']} requests)  vs "
        f"per-network chunks {1e3 * ix['http_per_network']:8.1f} ms "
        f"({ix['http_per_network_requests']} requests; "
        f"{ix['http_per_network'] / ix['http']:.1f}x)",
        f"  whole lazy DataTree over HTTP ({ix['tree_nodes']} nodes): "
        f"{1e3 * ix['http_whole_tree']:.0f} ms",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller samples (~3 min)")
    parser.add_argument("--zoo", help="also measure this real zoo directory")
    parser.add_argument("--out", default="benchmarks/out/zoo.json", help="JSON results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="bench-zoo-") as tmp:
        work = Path(tmp)
        res = {"machine": os.uname().nodename, "date": time.strftime("%Y-%m-%d %H:%M")}
        res["load_average"] = os.getloadavg()
        steps = [
            ("demo", lambda: bench_demo_sizes(work, args.zoo)),
            ("paper", lambda: bench_paper_projection(work, 1 if args.quick else 2)),
            ("throughput", lambda: bench_throughput(work, 4 if args.quick else 12)),
            ("index", lambda: bench_index_open(work, 3 if args.quick else 7)),
        ]
        for key, step in steps:
            t = time.perf_counter()
            res[key] = step()
            print(f"[{key}: {time.perf_counter() - t:.0f} s]", flush=True)
        res["load_average_end"] = os.getloadavg()
    print(report(res))
    print(f"\nload average at start / end: {res['load_average']} / {res['load_average_end']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2, default=float))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
