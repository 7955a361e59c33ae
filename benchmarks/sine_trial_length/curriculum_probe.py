"""Quick probe (issue 14 section 3): does a trial-length curriculum train sine at T = 500?

Trains seeds of each cell type at the demo's settings (32 units, sine hyper-parameters of
``DEMO_HPARAMS``) through stages ``T1:it1,T2:it2,...`` with the SAME parameters and
optimiser (velocity kept; the learning rate decays over the whole run), then scores the
networks on the fixed T_final test set. Prints normalised MSE per network and CPU seconds.

    nice -n 10 python curriculum_probe.py 50:1500,100:300,200:300,500:300 --seeds 0 1

``--trace K`` prints the last stage's training loss (mean over K iterations) and gradient
norm per network; ``--diagnose`` runs the networks at the final T after every stage (64 test
trials) and prints, per network, the normalised MSE in 5 windows of the trial, the output's
RMS per window (the target's is 0.71), the mean unit activity per window and the fraction
of dead units (relu: never above zero on any trial).
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
    ap.add_argument("--trace", type=int, default=0)
    ap.add_argument("--diagnose", action="store_true")
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
        for i_stage, (T, its) in enumerate(stages):
            task = get_task("sine", n_steps=T)
            kernel = make_kernel(cell, P, B, T)
            data = PopulationBatch(P, B, T, 1, 1)
            trace_l, trace_g = [], []
            for i in range(its):
                for p in range(P):
                    data.set(p, task.sample(B, rngs[p]))
                out = kernel.forward(params, data.torch_xa)
                loss = masked_mse_and_grad(
                    out, data.torch_targets, data.torch_mask, kernel.d_outputs
                )
                grads = kernel.backward(params)
                norm = opt.step(grads, k, active)
                active &= torch.isfinite(norm)
                k += 1
                trace_l.append(loss.numpy().copy())
                trace_g.append(norm.numpy().copy())
                last = i_stage == len(stages) - 1
                if args.trace and last and (i + 1) % args.trace == 0:
                    ml = np.mean(trace_l[-args.trace :], axis=0)
                    mg = np.median(trace_g[-args.trace :], axis=0)
                    print(
                        f"  T{T} it{i + 1}: loss {np.round(ml.astype(float), 3).tolist()}"
                        f" |g| {np.round(mg.astype(float), 1).tolist()}",
                        flush=True,
                    )
            log.append(f"T{T}:{np.round(loss.numpy().astype(float), 3).tolist()}")
            if args.diagnose:
                diagnose(cell, params, stages[-1][0], P, B, f"after T{T}")
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


def diagnose(cell, params, T, P, B, label) -> None:
    """Print windowed error, output RMS, activity and dead units at trial length ``T``."""
    task = get_task("sine", n_steps=T)
    kernel = make_kernel(cell, P, B, T)
    data = PopulationBatch(P, B, T, 1, 1)
    test = evaluation_set(task, "test", 64)
    _, out, hid = evaluate(kernel, params, test, data, want_hidden=True)
    y, tgt = out[..., 0], test.targets[None, ..., 0]  # (P, n, T)
    w = np.array_split(np.arange(T), 5)
    nm = [((y[:, :, i] - tgt[:, :, i]) ** 2).sum((1, 2)) / (tgt[:, :, i] ** 2).sum() for i in w]
    rms = [np.sqrt((y[:, :, i] ** 2).mean((1, 2))) for i in w]
    act = [np.abs(hid[:, :, i]).mean((1, 2, 3)) for i in w]
    dead = (hid.max(axis=(1, 2)) <= 0).mean(axis=1)
    r = lambda a: np.round(np.asarray(a, dtype=float).T, 2).tolist()  # noqa: E731
    print(f"  {label} @T{T}: window nmse {r(nm)}", flush=True)
    print(f"    out rms {r(rms)} activity {r(act)} dead {np.round(dead.astype(float), 2).tolist()}")


if __name__ == "__main__":
    main()
