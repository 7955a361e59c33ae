"""Training with subnormal numbers flushed to zero against keeping them, side by side.

``train_population`` flushes subnormal float32 numbers (below 1.2e-38) to zero while it
trains (``rnnzoo_train.training.engine.denormals_flushed``): gradients back-propagated
through hundreds of steps fall into that range, where each operation takes a slow microcode
path on Intel CPUs (AMD's cost less). For every cell type of a task, this script trains the
same networks (the demo preset's, ``--seeds`` seeds, its hyper-parameters and schedule)
twice in one process, alternating: with the flush (what ``train_population`` does) and
without it (the private ``_train_population``, the code before the change), and reports the
CPU seconds, their ratio, and how much the trained networks differ.

    OMP_NUM_THREADS=1 python benchmarks/bench_denormals.py --task sine --seeds 2
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import platform
import subprocess
import time

import numpy as np
import torch

from rnnzoo_train.generate import seed_units
from rnnzoo_train.presets import get_preset
from rnnzoo_train.tasks import get_task
from rnnzoo_train.training.engine import _train_population, train_population


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def timed(fn, *args) -> tuple[float, list]:
    t = time.process_time()
    out = fn(*args)
    return time.process_time() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="sine")
    ap.add_argument("--seeds", type=int, default=2, help="networks per cell type")
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    torch.set_num_threads(1)

    preset = dataclasses.replace(get_preset(args.preset), seeds=tuple(range(args.seeds)))
    plan = preset.plan(args.task)
    hparams = {c: preset.fixed_hparams(c, args.task) for c in plan.configurations}
    task = get_task(plan.task_config["name"], **plan.task_config.get("params", {}))
    units = seed_units(plan, hparams, task.n_steps)
    print(f"CPU: {cpu_model()}; task {args.task}, {args.seeds} seeds per cell type")
    print(
        "| cell | flushed: CPU s | kept: CPU s | ratio | solved flushed / kept "
        "| max weight difference |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    rows = []
    for unit in units:
        specs = list(unit.specs)
        kw = (unit.loss_every, unit.eval_trials, False, None, None, None)
        t_kept, kept = timed(_train_population, specs, task, *kw)
        t_flush, flushed = timed(
            functools.partial(train_population, loss_every=unit.loss_every,
                              eval_trials=unit.eval_trials, record_probe=False),
            specs, task,
        )  # fmt: skip
        diff = max(
            float(np.nanmax(np.abs(a.params_final[k] - b.params_final[k])))
            for a, b in zip(flushed, kept, strict=True)
            for k in a.params_final
        )
        c = specs[0].config
        name = f"{c.arch}-{c.activation}"
        solved = (sum(bool(r.solved) for r in flushed), sum(bool(r.solved) for r in kept))
        rows.append(
            {"cell": name, "flushed_s": t_flush, "kept_s": t_kept, "ratio": t_kept / t_flush,
             "solved_flushed": solved[0], "solved_kept": solved[1], "max_weight_diff": diff}
        )  # fmt: skip
        print(
            f"| {name} | {t_flush:.1f} | {t_kept:.1f} | {t_kept / t_flush:.2f}x | "
            f"{solved[0]} / {solved[1]} of {len(specs)} | {diff:.2g} |",
            flush=True,
        )
    total_f = sum(r["flushed_s"] for r in rows)
    total_k = sum(r["kept_s"] for r in rows)
    print(f"| all | {total_f:.1f} | {total_k:.1f} | {total_k / total_f:.2f}x | | |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"cpu": cpu_model(), "task": args.task, "seeds": args.seeds, "rows": rows},
                      fh, indent=1)  # fmt: skip


if __name__ == "__main__":
    main()
