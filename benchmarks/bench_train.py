"""Training throughput: rnnzoo's population trainer against PyTorch's native cells.

For each of the 8 cell types at 64 units on flip-flop (batch 64, T = 100), one SGD training
iteration (forward, MSE readout loss, backpropagation through time, momentum-SGD update with
clipping and L2) is timed for populations of 1, 16 and 64 networks, and compared per
network-iteration with the baseline of training ONE network at a time with
``torch.nn.RNN`` / ``torch.nn.GRU`` / ``torch.nn.LSTM`` (+ ``nn.Linear`` readout,
``torch.optim.SGD``), measured in the same run. Vanilla is compared with ``nn.RNN``, UGRNN
and GRU with ``nn.GRU``, LSTM with ``nn.LSTM``. Achieved GFLOP/s (GEMM flops of forward +
backward) are reported against the single-core GEMM rate measured in the same run, and the
wall time of the ``paper`` preset is projected from the measured rates.

Times are CPU time of this process (``time.process_time``, one thread), best of several
repeats, with each population and its baseline timed alternately: on a shared machine this
excludes the time the scheduler gives to other processes, and alternating exposes both to
the same memory-bandwidth contention. The kernels run with the backend training uses
(``--backend auto``: the fused C steps of ``rnnzoo_train.training.native`` where a C compiler
is available); for the cells that have native steps, the eager (torch-only) fallback is
measured too, at P = 16.

Run with one thread (``nox -s bench -- train`` does): ``OMP_NUM_THREADS=1 python
benchmarks/bench_train.py [--quick] [--backend auto|eager|native] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np
import torch

from rnnzoo_train.cells import ACTIVATIONS, ARCHITECTURES, get_cell, stack_params
from rnnzoo_train.records import HyperParameters
from rnnzoo_train.tasks import get_task
from rnnzoo_train.training import native
from rnnzoo_train.training.data import PopulationBatch
from rnnzoo_train.training.losses import masked_mse_and_grad
from rnnzoo_train.training.optimiser import PopulationSGD
from rnnzoo_train.training.selection import make_kernel

torch.set_num_threads(1)

N, B, T = 64, 64, 100
GATES = {"vanilla": 1, "ugrnn": 2, "gru": 3, "lstm": 4}
BASELINE_OF = {"vanilla": "RNN", "ugrnn": "GRU", "gru": "GRU", "lstm": "LSTM"}
HP = HyperParameters(clip=1.0, lr=0.05, decay=0.5, momentum=0.9)
#: CPU time of the process: excludes time the scheduler gives to other processes
clock = time.process_time


def flops_per_iteration(gates: int, n_in: int = 3, n_out: int = 3) -> float:
    """GEMM flops of one training iteration of one network (forward + backward)."""
    gn = gates * N
    recurrent = 3 * 2 * B * N * gn  # h W_h forward, dA W_h^T and dW_h backward
    inputs = 2 * 2 * B * (n_in + 1) * gn  # input projection and dW_x
    readout = 3 * 2 * B * N * n_out  # y, dW_out, dh
    return T * (recurrent + inputs + readout)


def best_time(fn, repeats: int, min_time: float = 0.0) -> float:
    fn()  # warm-up
    times = []
    while len(times) < repeats or sum(times) < min_time:
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return min(times)


def gemm_rate() -> float:
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    return 2 * 1024**3 / best_time(lambda: a @ b, 10) / 1e9


def native_step(kind: str, task):
    """One training iteration of one native torch network (a closure)."""
    torch.manual_seed(0)
    rnn = getattr(torch.nn, kind)(task.n_inputs, N, batch_first=True)
    lin = torch.nn.Linear(N, task.n_outputs)
    opt = torch.optim.SGD([*rnn.parameters(), *lin.parameters()], lr=0.05, momentum=0.9)
    batch = task.sample(B, np.random.default_rng(0))
    x, y = torch.from_numpy(batch.inputs), torch.from_numpy(batch.targets)

    def step():
        opt.zero_grad()
        out, _ = rnn(x)
        loss = ((lin(out) - y) ** 2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([*rnn.parameters(), *lin.parameters()], 1.0)
        opt.step()

    return step


def population_step(arch: str, act: str, P: int, task, backend: str | None = None):
    """One training iteration of a population of ``P`` networks (fixed batch; a closure)."""
    cell = get_cell(arch, act, N, task.n_inputs, task.n_outputs)
    gens = [torch.Generator().manual_seed(s) for s in range(P)]
    params = stack_params([cell.init_params(g) for g in gens])
    kernel = make_kernel(cell, P, B, T, backend=backend)
    step_backend = kernel.backend
    data = PopulationBatch(P, B, T, task.n_inputs, task.n_outputs)
    rng = np.random.default_rng(0)
    for p in range(P):
        data.set(p, task.sample(B, rng))
    opt = PopulationSGD(params, [HP] * P, [1e-4] * P, 1000)
    active = torch.ones(P, dtype=torch.bool)

    def step():
        outputs = kernel.forward(params, data.torch_xa)
        masked_mse_and_grad(outputs, data.torch_targets, data.torch_mask, kernel.d_outputs)
        opt.step(kernel.backward(params), 0, active)

    step.backend = step_backend
    return step


def paired_times(fn_a, fn_b, repeats: int, block: int = 3) -> tuple[float, float]:
    """Best times of ``fn_a`` and ``fn_b``, measured in alternating blocks (AAA BBB AAA ...).

    On a shared machine the load changes during a run; alternating the two and taking each
    one's minimum compares them under the same conditions. Within a block each function runs
    back to back, as in training (the first run of a block, with caches still holding the
    other function's data, is not timed), so neither is charged for the other's evictions.
    """
    ta, tb = [], []
    for _ in range(repeats):
        for fn, times in ((fn_a, ta), (fn_b, tb)):
            fn()
            for _ in range(block - 1):
                t0 = clock()
                fn()
                times.append(clock() - t0)
    return min(ta), min(tb)


def sampling_time(task, repeats: int) -> float:
    """Seconds to draw one training batch of one network (NumPy task sampler)."""
    rng = np.random.default_rng(0)
    return best_time(lambda: task.sample(B, rng), repeats)


def project_paper(rows: list[dict], per_core_days: bool = True) -> dict:
    """Projected cost of the ``paper`` preset from the measured population rates (P = 16).

    Cost scales with GEMM flops (units^2 and sequence length); the rate achieved at 64 units
    is assumed at 128 and 256 units (conservative: larger GEMMs run closer to peak).
    """
    from rnnzoo_train.presets import get_preset

    paper = get_preset("paper")
    rate = {(r["arch"], r["activation"]): r["gflops_16"] for r in rows}
    total = 0.0
    steps = {"flipflop": 100, "sine": 500, "cdi": 30}
    for t_steps in steps.values():
        for c in paper.configurations():
            per_net_iter = flops_per_iteration(GATES[c.arch]) * (c.units / N) ** 2 * t_steps / T
            seconds = per_net_iter / (rate[(c.arch, c.activation)] * 1e9)
            total += seconds * paper.iterations * len(paper.seeds)
    with_search = total * (1 + paper.n_trials * paper.search_iterations
                           / (paper.iterations * len(paper.seeds)))  # fmt: skip
    return {"seeds_core_days": total / 86400, "with_search_core_days": with_search / 86400}


def eager_fallback(rows: list[dict], base_steps: dict, task, repeats: int) -> list[dict]:
    """The torch-only kernels at P = 16 for the cells that ran native (no C compiler case)."""
    native_cells = [(r["arch"], r["activation"]) for r in rows if r.get("backend") == "native"]
    if not native_cells:
        return []
    print("\neager fallback (torch operations only, as without a C compiler), P = 16:")
    out = []
    for arch, act in native_cells:
        kind = BASELINE_OF[arch]
        step = population_step(arch, act, 16, task, "eager")
        t_pop, t_base = paired_times(step, base_steps[kind], repeats)
        per_net = t_pop / 16
        gf = flops_per_iteration(GATES[arch]) / per_net / 1e9
        out.append({"arch": arch, "activation": act, "ms_16": 1e3 * per_net,
                    "baseline_ms_16": 1e3 * t_base, "speedup_16": t_base / per_net,
                    "gflops_16": gf})  # fmt: skip
        print(f"{arch + '-' + act:12s} {kind:5s} eager   | {1e3 * per_net:12.2f} "
              f"{1e3 * t_base:7.2f} {t_base / per_net:7.2f} {gf:8.1f}", flush=True)  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="populations 1 and 16 only, 2 repeats")
    ap.add_argument("--json", help="also write the results to this JSON file")
    ap.add_argument("--backend", default="auto", choices=native.BACKENDS,
                    help="training kernels to time (default: what training uses)")  # fmt: skip
    args = ap.parse_args()
    repeats = 2 if args.quick else 3
    pops = (1, 16) if args.quick else (1, 16, 64)
    task = get_task("flipflop")
    print(f"bench_train: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, N={N} B={B} T={T} (flip-flop)")  # fmt: skip
    peak = gemm_rate()
    print(f"single-core GEMM rate (1024^3 fp32): {peak:.1f} GFLOP/s")
    print(f"kernels: --backend {args.backend}; native steps: {native.status()}")
    base_steps = {kind: native_step(kind, task) for kind in ("RNN", "GRU", "LSTM")}
    for kind, step in base_steps.items():
        t = best_time(step, repeats)
        g = {"RNN": 1, "GRU": 3, "LSTM": 4}[kind]
        gf = flops_per_iteration(g) / t / 1e9
        print(f"baseline nn.{kind:5s}: {1e3 * t:7.2f} ms/iteration "
              f"({gf:5.1f} GFLOP/s, {100 * gf / peak:4.1f}% of GEMM)")  # fmt: skip
    sample_ms = 1e3 * sampling_time(task, 20)
    print(f"task sampling (not included below): {sample_ms:.3f} ms per network-iteration")
    print(
        "each row: population and its native baseline timed in alternating blocks (best of "
        f"{2 * repeats} runs, CPU time), so the ratio compares them under the same load\n"
    )

    head = f"{'cell':12s} {'vs':5s} {'kernels':7s}" + "".join(
        f" | P={P:<3d} ms/net-it base ms  x base  GFLOP/s %GEMM" for P in pops
    )
    print(head)
    rows = []
    for arch in ARCHITECTURES:
        for act in ACTIVATIONS:
            kind = BASELINE_OF[arch]
            row = {"arch": arch, "activation": act, "baseline": f"nn.{kind}"}
            line = f"{arch + '-' + act:12s} {kind:5s}"
            for P in pops:
                pop_step = population_step(arch, act, P, task, args.backend)
                if pops[0] == P:
                    line += f" {pop_step.backend:7s}"
                    row["backend"] = pop_step.backend
                reps = repeats if P < 64 else max(2, repeats - 1)
                t_pop, t_base = paired_times(pop_step, base_steps[kind], reps)
                per_net = t_pop / P
                speedup = t_base / per_net
                gf = flops_per_iteration(GATES[arch]) / per_net / 1e9
                row.update({f"ms_{P}": 1e3 * per_net, f"baseline_ms_{P}": 1e3 * t_base,
                            f"speedup_{P}": speedup, f"gflops_{P}": gf})  # fmt: skip
                line += (f" | {1e3 * per_net:12.2f} {1e3 * t_base:7.2f} {speedup:7.2f}"
                         f" {gf:8.1f} {100 * gf / peak:5.1f}")  # fmt: skip
                del pop_step
            rows.append(row)
            print(line, flush=True)
    fallback = eager_fallback(rows, base_steps, task, repeats)
    peak_end = gemm_rate()
    print(f"\nsingle-core GEMM rate at the end of the run: {peak_end:.1f} GFLOP/s")
    proj = project_paper(rows)
    print(
        f"\nprojected paper preset (96 configs x 30 seeds x 20,000 iterations x 3 tasks) on one "
        f"core at the P=16 rates: {proj['seeds_core_days']:.0f} core-days for the seeds, "
        f"{proj['with_search_core_days']:.0f} core-days with the random search"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"gemm_gflops": [peak, peak_end], "rows": rows, "projection": proj,
                       "eager_fallback": fallback, "native": native.status()},
                      fh, indent=2)  # fmt: skip


if __name__ == "__main__":
    main()
