"""Training on one GPU: correctness, throughput against cuDNN, and the ``paper`` preset's cost.

The GPU trains with :class:`rnnzoo_train.training.device_kernel.AutogradKernel` (the cells'
own batched step differentiated by autograd; ``train_population(..., device="cuda")``).
This script, run on a machine with a CUDA GPU, measures in one go:

1. **correctness on the device**: float64 gradients and states of all 8 cells on the GPU
   against the hand-written eager BPTT on the CPU; a short float32 ``train_population`` on
   the GPU against the same run on the CPU (loss curves and final weights);
2. **throughput** at 64 units on flip-flop (batch 64, T = 100), one SGD iteration (forward,
   loss, BPTT, momentum-SGD update) for populations of 1 to 1,024 networks, per
   network-iteration, against the baseline of training ONE network at a time with cuDNN's
   ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` on the same GPU, and in GFLOP/s against the fp32
   GEMM rate measured in the same run (TF32 off, as in training);
3. **CUDA graphs**: ``train_population`` with its step captured in a CUDA graph (the
   default on a GPU) and without (``RNNZOO_CUDA_GRAPHS=0``): the same networks, and the
   time of each;
4. **the ``paper`` preset's shapes** (4 architectures x units 64/128/256 x the three tasks'
   sequence lengths) at exactly the work units ``rnnzoo-train generate --device cuda``
   makes (every network of one shape -- 4 L2 x 30 seeds, then 4 L2 x 20 search trials --
   chunked to the GPU unit capacity), with peak device memory per network, plus the CPU
   time of task sampling; from these, the projected wall time of the ``paper`` preset on
   one GPU.

Times are wall-clock medians with ``torch.cuda.synchronize()`` around each repeat, after
warm-up. ``--device cpu --quick`` runs every section at toy sizes (a check of the script).

Run: ``python benchmarks/bench_train_gpu.py [--quick] [--device cuda] [--json out.json]``
(``nox -s bench -- train_gpu``; without a GPU it says so and exits).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch

from rnnzoo_train.cells import ACTIVATIONS, ARCHITECTURES, get_cell, stack_params
from rnnzoo_train.generate import unit_capacity
from rnnzoo_train.presets import get_preset
from rnnzoo_train.records import Configuration, HyperParameters, NetworkSpec
from rnnzoo_train.tasks import get_task
from rnnzoo_train.training import train_population
from rnnzoo_train.training.data import PopulationBatch
from rnnzoo_train.training.losses import masked_mse_and_grad
from rnnzoo_train.training.optimiser import PopulationSGD
from rnnzoo_train.training.selection import make_kernel

GATES = {"vanilla": 1, "ugrnn": 2, "gru": 3, "lstm": 4}
BASELINE_OF = {"vanilla": "RNN", "ugrnn": "GRU", "gru": "GRU", "lstm": "LSTM"}
HP = HyperParameters(clip=1.0, lr=0.05, decay=0.5, momentum=0.9)
B = 64


def flops_per_iteration(gates: int, n: int, t: int, n_in: int = 3, n_out: int = 3) -> float:
    """GEMM flops of one training iteration of one network (forward + backward)."""
    gn = gates * n
    return t * (3 * 2 * B * n * gn + 2 * 2 * B * (n_in + 1) * gn + 3 * 2 * B * n * n_out)


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def median_time(fn, dev: torch.device, warmup: int = 2, repeats: int = 5) -> float:
    for _ in range(warmup):
        fn()
    sync(dev)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(dev)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def gemm_rate(dev: torch.device, n: int) -> float:
    a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
    return 2 * n**3 / median_time(lambda: a @ b, dev, 3, 10) / 1e9


# -- 1. correctness ---------------------------------------------------------------------------
def check_gradients(dev: torch.device) -> list[dict]:
    """float64 states and gradients on ``dev`` against the CPU's hand-written eager BPTT."""
    P, Bc, T, M, N, K = 3, 5, 9, 3, 7, 2
    rows = []
    for arch in ARCHITECTURES:
        for act in ACTIVATIONS:
            cell = get_cell(arch, act, N, M, K)
            gen = torch.Generator().manual_seed(0)
            params = stack_params([cell.init_params(gen, torch.float64) for _ in range(P)])
            params = {k: v + 0.2 * torch.randn(v.shape, generator=gen, dtype=torch.float64)
                      for k, v in params.items()}  # fmt: skip
            x = torch.randn(P, T, M, Bc, generator=gen, dtype=torch.float64)
            xa = torch.cat([x, torch.ones(P, T, 1, Bc, dtype=torch.float64)], 2)
            target = torch.randn(P, T, K, Bc, generator=gen, dtype=torch.float64)
            mask = (torch.rand(P, T, K, Bc, generator=gen) > 0.2).double()
            out = {}
            for where, backend in ((torch.device("cpu"), "eager"), (dev, "autograd")):
                kern = make_kernel(cell, P, Bc, T, torch.float64, backend=backend, device=where)
                p = {k: v.to(where) for k, v in params.items()}
                y = kern.forward(p, xa.to(where))
                masked_mse_and_grad(y, target.to(where), mask.to(where), kern.d_outputs)
                hid = kern.hidden().cpu().clone()
                out[backend] = (hid, {k: g.cpu() for k, g in kern.backward(p).items()})
            h_err = (out["eager"][0] - out["autograd"][0]).abs().max().item()
            g_err = max((out["eager"][1][k] - out["autograd"][1][k]).abs().max().item()
                        for k in out["eager"][1])  # fmt: skip
            rows.append({"cell": f"{arch}-{act}", "state_err": h_err, "grad_err": g_err})
    return rows


def check_training(dev: torch.device, iterations: int) -> dict:
    """A short float32 training run of 4 GRUs on the device and on the CPU."""
    task = get_task("flipflop")
    specs = [NetworkSpec("flipflop", Configuration("gru", "tanh", 32, 1e-4), s, HP, iterations, B)
             for s in range(4)]  # fmt: skip
    kw = {"loss_every": 1, "eval_trials": 64}
    t0 = time.perf_counter()
    gpu = train_population(specs, task, device=dev, **kw)
    t_dev = time.perf_counter() - t0
    cpu = train_population(specs, task, device="cpu", **kw)
    # float32 rounding differs between devices and training amplifies it: compare the first
    # 10 iterations closely, the end by its test losses
    curve_err = max(np.nanmax(np.abs(a.loss_curve[:10] - b.loss_curve[:10]) / b.loss_curve[:10])
                    for a, b in zip(gpu, cpu, strict=True))  # fmt: skip
    w_err = max(np.abs(a.params_final[k] - b.params_final[k]).max()
                for a, b in zip(gpu, cpu, strict=True) for k in a.params_final)  # fmt: skip
    return {"iterations": iterations, "first10_loss_max_rel_diff": float(curve_err),
            "final_weight_max_abs_diff": float(w_err),
            "test_loss_device": [r.test_loss for r in gpu],
            "test_loss_cpu": [r.test_loss for r in cpu],
            "status_device": [r.status for r in gpu], "seconds_device": t_dev}  # fmt: skip


# -- 2. throughput ----------------------------------------------------------------------------
def population_step(arch, act, P, task, dev, units=64):
    """One training iteration of ``P`` networks on ``dev`` (a fixed batch; a closure)."""
    cell = get_cell(arch, act, units, task.n_inputs, task.n_outputs)
    gens = [torch.Generator().manual_seed(s) for s in range(P)]
    params = {k: v.to(dev) for k, v in stack_params([cell.init_params(g) for g in gens]).items()}
    kernel = make_kernel(cell, P, B, task.n_steps, backend="autograd", device=dev)
    data = PopulationBatch(P, B, task.n_steps, task.n_inputs, task.n_outputs)
    rng = np.random.default_rng(0)
    batch = task.sample(B, rng)
    for p in range(P):
        data.set(p, batch)
    xa, targets, mask = (data.torch_xa.to(dev), data.torch_targets.to(dev),
                         data.torch_mask.to(dev))  # fmt: skip
    opt = PopulationSGD(params, [HP] * P, [1e-4] * P, 1000)
    active = torch.ones(P, dtype=torch.bool, device=dev)

    def step():  # as train_population does it (one CUDA graph on a GPU)
        _, grads = kernel.train_step(params, xa, targets, mask)
        opt.step(grads, 0, active)

    step.parts = (kernel, params, xa, targets, mask)
    return step


def native_step(kind, task, dev, units=64):
    """One training iteration of ONE cuDNN network on ``dev`` (a closure)."""
    torch.manual_seed(0)
    rnn = getattr(torch.nn, kind)(task.n_inputs, units, batch_first=True).to(dev)
    lin = torch.nn.Linear(units, task.n_outputs).to(dev)
    params = [*rnn.parameters(), *lin.parameters()]
    opt = torch.optim.SGD(params, lr=0.05, momentum=0.9)
    batch = task.sample(B, np.random.default_rng(0))
    x, y = torch.from_numpy(batch.inputs).to(dev), torch.from_numpy(batch.targets).to(dev)

    def step():
        opt.zero_grad()
        out, _ = rnn(x)
        loss = ((lin(out) - y) ** 2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    return step


def throughput(dev, pops, peak, repeats) -> list[dict]:
    task = get_task("flipflop")
    kinds = ("RNN", "GRU", "LSTM")
    base = {k: median_time(native_step(k, task, dev), dev, 3, repeats) for k in kinds}
    for k, t in base.items():
        print(f"baseline cuDNN nn.{k:4s} one network: {1e3 * t:7.2f} ms/iteration", flush=True)
    rows = []
    print(f"\n{'cell':12s} {'vs':5s}" + "".join(f" | P={P:<4d} ms/net-it x base GFLOP/s %GEMM"
                                            for P in pops))  # fmt: skip
    for arch in ARCHITECTURES:
        for act in ACTIVATIONS:
            kind = BASELINE_OF[arch]
            row = {"arch": arch, "activation": act, "baseline_ms": 1e3 * base[kind]}
            line = f"{arch + '-' + act:12s} {kind:5s}"
            for P in pops:
                try:
                    t = median_time(population_step(arch, act, P, task, dev), dev, 2, repeats)
                except torch.OutOfMemoryError:
                    line += f" | {'out of memory':>33s}"
                    continue
                per_net = t / P
                gf = flops_per_iteration(GATES[arch], 64, 100) / per_net / 1e9
                row.update({f"ms_{P}": 1e3 * per_net, f"speedup_{P}": base[kind] / per_net,
                            f"gflops_{P}": gf})  # fmt: skip
                line += (f" | {1e3 * per_net:12.4f} {base[kind] / per_net:6.1f} {gf:7.0f}"
                         f" {100 * gf / peak:5.1f}")  # fmt: skip
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
            rows.append(row)
            print(line, flush=True)
    return rows


# -- 3. CUDA graphs in the trainer --------------------------------------------------------
def check_graphs(dev, iterations: int, P: int) -> dict:
    """``train_population`` on ``dev`` with the training step captured into a CUDA graph and
    without (``RNNZOO_CUDA_GRAPHS=0``): the same networks, and the time of each."""
    import os

    from rnnzoo_train.training.device_kernel import GRAPHS_ENV

    task = get_task("flipflop")
    specs = [NetworkSpec("flipflop", Configuration("lstm", "tanh", 64, 1e-4), s, HP, iterations,
                         B) for s in range(P)]  # fmt: skip
    out, seconds = {}, {}
    for mode in ("1", "0", "1"):  # graphs, none, graphs again (the first pays the warm-up)
        os.environ[GRAPHS_ENV] = mode
        t0 = time.perf_counter()
        out[mode] = train_population(specs, task, device=dev, loss_every=1, eval_trials=64)
        seconds[mode] = time.perf_counter() - t0
    os.environ.pop(GRAPHS_ENV)
    g, e = out["1"], out["0"]
    w_err = max(float(np.abs(a.params_final[k] - b.params_final[k]).max())
                for a, b in zip(g, e, strict=True) for k in a.params_final)  # fmt: skip
    c_err = max(float(np.nanmax(np.abs(a.loss_curve - b.loss_curve)))
                for a, b in zip(g, e, strict=True))  # fmt: skip
    return {"P": P, "iterations": iterations, "seconds_graphs": seconds["1"],
            "seconds_no_graphs": seconds["0"], "speedup": seconds["0"] / seconds["1"],
            "final_weight_max_abs_diff": w_err, "loss_curve_max_abs_diff": c_err,
            "status": sorted({r.status for r in g})}  # fmt: skip


# -- 4. paper shapes and projection ---------------------------------------------------------
def unit_sizes(plan, config, n_steps: int, n_networks: int, device: str) -> list[int]:
    """Sizes of the work units ``generate`` makes of ``n_networks`` networks of one shape."""
    cap = unit_capacity(plan, config, n_steps, device)
    return [cap] * (n_networks // cap) + ([n_networks % cap] if n_networks % cap else [])


def paper_shapes(dev, units_list, repeats, quick: bool) -> tuple[list[dict], dict]:
    """Seconds per iteration of every work unit ``generate --device`` makes of the paper
    preset (one shape group: 4 L2 x 30 seeds, then 4 L2 x 20 search trials), tanh cells.
    """
    paper = get_preset("paper")
    n_l2, seeds, trials = len(paper.l2), len(paper.seeds), paper.n_trials
    rows, sampling = [], {}
    for task_name in paper.tasks:
        plan = paper.plan(task_name)
        task = get_task(task_name, **plan.task_config.get("params", {}))
        rng = np.random.default_rng(0)
        sample = lambda task=task, rng=rng: task.sample(B, rng)  # noqa: E731
        sampling[task_name] = median_time(sample, torch.device("cpu"), 3, 20)
        for arch in ARCHITECTURES:
            for units in units_list:
                config = Configuration(arch, "tanh", units, paper.l2[0])
                sizes = {
                    "seeds": unit_sizes(plan, config, task.n_steps, n_l2 * seeds, str(dev)),
                    "search": unit_sizes(plan, config, task.n_steps, n_l2 * trials, str(dev)),
                }
                if quick:
                    sizes = {k: [min(v[0], 4)] for k, v in sizes.items()}
                row = {"task": task_name, "T": task.n_steps, "arch": arch, "units": units,
                       "units_of": sizes, "seconds": {}}  # fmt: skip
                for P in sorted({p for v in sizes.values() for p in v}):
                    fn = None
                    if dev.type == "cuda":
                        torch.cuda.reset_peak_memory_stats(dev)
                    try:
                        fn = population_step(arch, "tanh", P, task, dev, units)
                        row["seconds"][P] = median_time(fn, dev, 1, repeats)
                        if dev.type == "cuda":
                            row.setdefault("peak_bytes_per_network", {})[P] = (
                                torch.cuda.max_memory_allocated(dev) / P
                            )
                    except torch.OutOfMemoryError:
                        row["seconds"][P] = None
                    del fn
                    if dev.type == "cuda":
                        torch.cuda.empty_cache()
                rows.append(row)
                times = ", ".join(
                    f"P={P}: " + (f"{1e3 * t:.1f} ms" if t else "OOM")
                    for P, t in row["seconds"].items()
                )
                print(f"{task_name:8s} T={task.n_steps:3d} {arch:7s} {units:3d} units: {times} "
                      f"(units of {sizes['seeds']} seeds, {sizes['search']} trials)",
                      flush=True)  # fmt: skip
    return rows, sampling


def project(rows, sampling) -> dict:
    """GPU-days of the ``paper`` preset as ``generate --device cuda`` runs it, one unit after
    another: every unit's iterations at its measured time, plus its task sampling on one CPU
    core (relu cells timed as tanh: the same operations).
    """
    paper = get_preset("paper")
    it = paper.iterations
    total = gpu = 0.0
    for r in rows:
        for sizes in r["units_of"].values():
            for P in sizes:
                t = r["seconds"].get(P)
                if t is None:
                    return {"error": f"out of memory at {r}"}
                gpu += len(ACTIVATIONS) * it * t
                total += len(ACTIVATIONS) * it * (t + P * sampling[r["task"]])
    return {"gpu_days": total / 86400, "gpu_only_days": gpu / 86400}


def check(dev, quick: bool, results: dict) -> None:
    """Section 1: gradients and a short training run on the device against the CPU."""
    grads = check_gradients(dev)
    worst = max(grads, key=lambda r: r["grad_err"])
    print(f"\n1. float64 on {dev} vs the CPU's eager BPTT, 8 cells: max state error "
          f"{max(r['state_err'] for r in grads):.1e}, max gradient error {worst['grad_err']:.1e}"
          f" ({worst['cell']})")  # fmt: skip
    train = check_training(dev, 5 if quick else 200)
    print(f"   float32 training, 4 GRUs x {train['iterations']} iterations, {dev} vs CPU: first "
          f"10 losses within {train['first10_loss_max_rel_diff']:.1e} (relative), final "
          f"weights within {train['final_weight_max_abs_diff']:.1e}; test loss "
          f"{np.round(train['test_loss_device'], 4).tolist()} vs "
          f"{np.round(train['test_loss_cpu'], 4).tolist()}")  # fmt: skip
    results.update({"gradients": grads, "training": train})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="a CUDA device (default), or cpu")
    ap.add_argument("--quick", action="store_true", help="toy sizes: a check of the script")
    ap.add_argument("--json", help="also write the results to this JSON file")
    ap.add_argument("--sections", default="check,throughput,graphs,paper",
                    help="comma-separated subset of check,throughput,graphs,paper")  # fmt: skip
    args = ap.parse_args()
    sections = set(args.sections.split(","))
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("bench_train_gpu: this torch sees no CUDA GPU; skipped (results from an H200 are "
              "in docs/benchmarks.md; --device cpu --quick checks the script)")  # fmt: skip
        return
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 as in training
    torch.backends.cudnn.allow_tf32 = False
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor()
    print(f"bench_train_gpu: {name}, torch {torch.__version__}, device {dev}")
    results: dict = {"device": name, "torch": torch.__version__}
    peak = gemm_rate(dev, 512 if args.quick else 8192)
    print(f"fp32 GEMM rate: {peak:.0f} GFLOP/s")
    results["gemm_gflops"] = peak

    if "check" in sections:
        check(dev, args.quick, results)

    if "throughput" in sections:
        print("\n2. throughput, 64 units, flip-flop (B = 64, T = 100):")
        pops = (1, 16) if args.quick else (1, 16, 64, 256, 1024)
        results["throughput"] = throughput(dev, pops, peak, 2 if args.quick else 5)

    if "graphs" in sections and dev.type == "cuda":
        print("\n3. train_population with the step captured in a CUDA graph and without:")
        g = check_graphs(dev, 60, 120)
        results["graphs"] = g
        print(
            f"   120 LSTMs x 60 iterations: {g['seconds_graphs']:.1f} s with graphs, "
            f"{g['seconds_no_graphs']:.1f} s without ({g['speedup']:.2f}x); final weights "
            f"differ by {g['final_weight_max_abs_diff']:.1e}, loss curves by "
            f"{g['loss_curve_max_abs_diff']:.1e}; status {g['status']}",
            flush=True,
        )

    if "paper" not in sections:
        return _write(args.json, results)
    print("\n4. paper shapes (tanh), seconds per iteration of each work-unit size:")
    paper = get_preset("paper")
    units_list = (8,) if args.quick else paper.units
    rows, sampling = paper_shapes(dev, units_list, 2 if args.quick else 3, args.quick)
    print("   task sampling on one CPU core, per network-iteration: " + ", ".join(
        f"{k} {1e3 * v:.2f} ms" for k, v in sampling.items()))  # fmt: skip
    proj = project(rows, sampling)
    print(f"\nprojected paper preset (96 configs x (30 seeds + 20 search trials) x 20,000 "
          f"iterations x 3 tasks) on this device as generate --device runs it: "
          f"{proj.get('gpu_days', float('nan')):.1f} days ({proj.get('gpu_only_days', 0):.1f} "
          f"on the device, the rest task sampling)")  # fmt: skip
    results.update({"paper_shapes": rows, "sampling_s": sampling, "projection": proj})
    _write(args.json, results)


def _write(path: str | None, results: dict) -> None:
    if path:
        with open(path, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
