"""Quick probe (issue 14 section 3): does a trial-length curriculum train sine at T = 500?

Trains seeds of each cell type at the demo's settings (32 units, sine hyper-parameters of
``DEMO_HPARAMS``) through stages ``T1:it1,T2:it2,...`` with the SAME parameters and
optimiser (velocity kept; the learning rate decays over the whole run), then scores the
networks on the fixed T_final test set. Prints normalised MSE per network and CPU seconds.

    nice -n 10 python curriculum_probe.py 50:1500,100:300,200:300,500:300 --seeds 0 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from rnnzoo_train.cells import get_cell, stack_params
from rnnzoo_train.presets import DEMO
from rnnzoo_train.records import Configuration, NetworkSpec
from rnnzoo_train.tasks import get_task
from rnnzoo_train.training.data import PopulationBatch
from rnnzoo_train.training.engine import evaluate, evaluation_set
from rnnzoo_train.training.losses import masked_mse_and_grad
from rnnzoo_train.training.optimiser import PopulationSGD
from rnnzoo_train.training.seeding import network_streams
from rnnzoo_train.training.selection import make_kernel


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("stages")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--cells", nargs="+", default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--decay", type=float, default=None)
    ap.add_argument("--clip", type=float, default=None)
    ap.add_argument("--momentum", type=float, default=None)
    args = ap.parse_args()
    stages = [tuple(int(v) for v in s.split(":")) for s in args.stages.split(",")]
    total = sum(it for _, it in stages)
    cells = args.cells or [
        f"{a}-{f}" for a in ("vanilla", "ugrnn", "gru", "lstm") for f in ("tanh", "relu")
    ]
    torch.set_num_threads(1)
    for cellname in cells:
        arch, act = cellname.split("-")
        conf = Configuration(arch, act, 32, 1e-4)
        hp = DEMO.fixed_hparams(conf, "sine")
        from dataclasses import replace

        hp = replace(
            hp,
            **{
                k: getattr(args, k)
                for k in ("lr", "decay", "clip", "momentum")
                if getattr(args, k) is not None
            },
        )
        specs = [NetworkSpec("sine", conf, s, hp, total, 64) for s in args.seeds]
        P, B = len(specs), 64
        t0 = time.process_time()
        streams = [network_streams(s) for s in specs]
        rngs = [r for _, r in streams]
        task0 = get_task("sine", n_steps=stages[0][0])
        cell = get_cell(arch, act, 32, task0.n_inputs, task0.n_outputs)
        params = stack_params([cell.init_params(g) for g, _ in streams])
        opt = PopulationSGD(params, [hp] * P, [1e-4] * P, total)
        active = torch.ones(P, dtype=torch.bool)
        k = 0
        log = []
        for T, its in stages:
            task = get_task("sine", n_steps=T)
            kernel = make_kernel(cell, P, B, T)
            data = PopulationBatch(P, B, T, 1, 1)
            for _ in range(its):
                for p in range(P):
                    data.set(p, task.sample(B, rngs[p]))
                out = kernel.forward(params, data.torch_xa)
                loss = masked_mse_and_grad(
                    out, data.torch_targets, data.torch_mask, kernel.d_outputs
                )
                grads = kernel.backward(params)
                opt.step(grads, k, active)
                k += 1
            log.append(f"T{T}:{np.round(loss.numpy(), 3).tolist()}")
        T = stages[-1][0]
        task = get_task("sine", n_steps=T)
        kernel = make_kernel(cell, P, B, T)
        data = PopulationBatch(P, B, T, 1, 1)
        test = evaluation_set(task, "test", 256)
        _, out, _ = evaluate(kernel, params, test, data)
        perf = [task.performance(out[p], test) for p in range(P)]
        cpu = time.process_time() - t0
        solved = sum(x <= 0.1 for x in perf)
        print(
            f"{cellname:13s} nmse={np.round(perf, 3).tolist()} solved={solved}/{P}"
            f" cpu/net={cpu / P:.1f}s  {' '.join(log)}",
            flush=True,
        )


if __name__ == "__main__":
    main()
