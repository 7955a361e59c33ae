"""Speed of rnnzoo-dynamics' fixed-point finder against common practice (issue 5, point 9).

1. **Finder.** A 64-unit GRU trained on the 3-bit flip-flop by rnnzoo-train (cached in
   ``benchmarks/out/``), 1,024 initial states drawn from its probe trajectories plus noise
   (the same starts for both methods). Timed side by side, one torch thread:

   * the **baseline**, written here as the common practice (FixedPointFinder and its ports):
     Adam on the mean of ``q = ½‖F(h) − h‖²`` over all points, float32, learning rate 1.0
     with plateau decay (halved when the total ``q`` has not improved for 50 steps), 10,000
     iterations with no per-point stopping, then deduplication at distance 1e-3, Jacobians
     by autograd (one reverse pass per state dimension, batched over points), eigenvalues
     with NumPy, no ``q`` threshold: every deduplicated point is reported;
   * **rnnzoo-dynamics**: ``find_fixed_points`` (Adam with per-point freezing, float64
     damped Newton / Levenberg-Marquardt polish, ``q`` threshold, deduplication) followed by
     ``linearize`` (closed-form Jacobians, biorthonormal eigenvectors, stability).

   Printed: wall time of each, their ratio, the float64 ``q`` of every reported point (both
   evaluated the same way), the fraction below 1e-10 (the baseline is also sampled during
   its run: it never gets there), and the number of unique / stable points.
2. **Jacobians** of 1,024 points of a 256-unit GRU (closed form, blocked; never the
   ``(points·N)²`` matrix) against autograd (``torch.func.vmap(jacrev)``), with the peak
   memory of each in a fresh process and the size the full joint Jacobian would need.
3. **Your own network** (issue 11 §1). The same trained weights as a user's float32
   ``nn.GRU`` (64 units, and a 256-unit GRU trained for :data:`OWN_256_ITERATIONS`
   iterations), analysed through ``rnnzoo_dynamics.as_network`` (exact conversion, closed-form
   Jacobians) against the zoo path on the same weights (target: within 2x) and against the
   baseline above (target: at least 10x faster, to ``q < 1e-10``).
4. **Demo zoo.** The time to analyse every network of the ``demo`` preset's zoo (all three
   tasks), generating the zoo first if ``--demo-zoo`` does not exist (cached).

    python benchmarks/bench_dynamics.py                  # everything
    python benchmarks/bench_dynamics.py --skip-demo      # finder and Jacobians only
    python benchmarks/bench_dynamics.py --parts demo     # one part

Numbers depend on the machine and, on a shared machine, on its load: compare the ratios,
which are measured in the same process, one after the other.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

for _k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_k, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

OUT = Path(__file__).resolve().parent / "out"
GRU_ITERATIONS = 3000
#: training iterations of the 256-unit GRU of part "own": an iteration costs ~10x a 64-unit
#: one, so it is trained briefly (its fixed points only have to exist, not solve the task)
OWN_256_ITERATIONS = 800
#: the baseline's iterations (10,000) are its fixed budget: it never stops earlier, so its time
#: is linear in them and a shorter run can be extrapolated (``--own-baseline-iterations``)
BASELINE_ITERATIONS = 10_000


# -- the trained network -------------------------------------------------------------------------


def trained_gru(iterations: int = GRU_ITERATIONS, units: int = 64):
    """A tanh GRU (64 units) trained on flip-flop by rnnzoo-train (cached in a zoo in out/)."""
    from rnnzoo_train.generate import generate
    from rnnzoo_train.presets import get_preset
    from rnnzoo_train.zoo import ZarrZooWriter, open_zoo

    path = OUT / f"bench-dynamics-gru{units}-{iterations}.zarr"
    preset = dataclasses.replace(
        get_preset("demo"),
        archs=("gru",),
        activations=("tanh",),
        units=(units,),
        seeds=(0,),
        iterations=iterations,
        task_iterations={"flipflop": iterations},  # the demo preset's own 800 would win
        task_params={},
    )
    if not path.exists() or "flipflop" not in open_zoo(path).tasks:
        print(
            f"training a {units}-unit GRU on flip-flop ({iterations} iterations, cached in {path})"
        )
        OUT.mkdir(parents=True, exist_ok=True)
        generate(preset, ["flipflop"], ZarrZooWriter(path), progress=True)
    zoo = open_zoo(path)
    nid = zoo.index("flipflop").index[0]
    perf = float(zoo.index("flipflop").loc[nid, "performance"])
    cell, params = zoo.population("flipflop", [nid], dtype=torch.float64)
    return zoo, nid, cell, params, perf


# -- the baseline ------------------------------------------------------------------------------


def speed64(cell, params, h, x):
    with torch.no_grad():
        r = cell.step(params, h, x) - h
        return 0.5 * (r * r).sum(-1)


def baseline(cell, params, starts, iterations=10_000, lr=1.0, checkpoints=(100, 1000, 10_000)):
    """Common practice: Adam on mean q (float32), lr 1.0 with plateau decay, no q filter."""
    p32 = {k: v.float() for k, v in params.items()}
    p64 = params
    h = torch.tensor(starts, dtype=torch.float32)[None].clone().requires_grad_(True)
    x32 = torch.zeros(1, h.shape[1], cell.n_inputs)
    x64 = x32.double()
    opt = torch.optim.Adam([h], lr=lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=50)
    trace = {}
    t0 = time.perf_counter()
    for it in range(1, iterations + 1):
        r = cell.step(p32, h, x32) - h
        q = 0.5 * (r * r).sum(-1)
        loss = q.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step(loss.item())
        if it in checkpoints:
            q64 = speed64(cell, p64, h.detach().double(), x64)[0].numpy()
            trace[it] = (time.perf_counter() - t0, float(np.mean(q64 < 1e-10)), q64)
    t_opt = time.perf_counter() - t0
    pts = h.detach()[0].double()
    # deduplicate at distance 1e-3 (FixedPointFinder's default tol_unique), keep the first
    keep = []
    for i in range(len(pts)):
        if not keep or torch.cdist(pts[i : i + 1], pts[keep]).min() > 1e-3:
            keep.append(i)
    pts = pts[keep]
    # Jacobians by autograd: one reverse pass per state dimension, batched over the points
    t1 = time.perf_counter()
    hh = pts.float()[None].clone().requires_grad_(True)
    f = cell.step(p32, hh, torch.zeros(1, len(pts), cell.n_inputs))
    rows = []
    for i in range(cell.state_size):
        (g,) = torch.autograd.grad(f[..., i].sum(), hh, retain_graph=True)
        rows.append(g[0])
    J = torch.stack(rows, dim=1).double().numpy()  # (n, S, S), J[n, i, j] = dF_i/dh_j
    lam = np.linalg.eigvals(J)
    n_stable = int((np.abs(lam).max(-1) < 1).sum())
    t_total = time.perf_counter() - t0
    q_rep = speed64(cell, p64, pts[None], x64[:, : len(pts)])[0].numpy()
    return {
        "seconds": t_total,
        "optimise_seconds": t_opt,
        "jacobian_seconds": t_total - (t1 - t0),
        "n_reported": len(pts),
        "n_stable": n_stable,
        "q": q_rep,
        "trace": trace,
        "states": pts.numpy(),
    }


def ours(cell, params, starts):
    from rnnzoo_dynamics.fixed_points import find_fixed_points
    from rnnzoo_dynamics.linearize import linearize

    t0 = time.perf_counter()
    fp = find_fixed_points(cell, params, np.zeros(cell.n_inputs), starts)
    t1 = time.perf_counter()
    lin = linearize(cell, params, fp)
    t2 = time.perf_counter()
    x = torch.zeros(1, len(fp), cell.n_inputs, dtype=torch.float64)
    q_rep = speed64(cell, params, torch.as_tensor(fp.state)[None], x)[0].numpy()
    return {
        "seconds": t2 - t0,
        "find_seconds": t1 - t0,
        "linearize_seconds": t2 - t1,
        "n_reported": len(fp),
        "n_fixed": int((fp.kind == "fixed").sum()),
        "n_slow": int((fp.kind == "slow").sum()),
        "n_stable": int(((lin.n_unstable == 0) & (fp.kind == "fixed")).sum()),
        "unstable_dims": np.bincount(lin.n_unstable[fp.kind == "fixed"], minlength=4).tolist(),
        "q": q_rep,
        "kind": fp.kind,
        "stats": fp.stats,
        "states": fp.state,
        "stable_states": fp.state[(lin.n_unstable == 0) & (fp.kind == "fixed")],
    }


def q_line(q: np.ndarray) -> str:
    lq = np.log10(np.maximum(q, 1e-300))
    return (
        f"log10 q: min {lq.min():6.1f}  median {np.median(lq):6.1f}  max {lq.max():6.1f}; "
        f"q < 1e-10: {np.mean(q < 1e-10) * 100:5.1f}%"
    )


def bench_finder(args) -> dict:
    from rnnzoo_dynamics.initial_states import sample_initial_states, trajectories

    zoo, nid, cell, params, perf = trained_gru(args.iterations)
    print(f"\n== finder: {nid} (flip-flop performance {perf:.3f}), 1,024 starts")
    traj = trajectories(cell, params, zoo.probe("flipflop").inputs).numpy()
    starts = sample_initial_states(traj, 1024, np.random.default_rng(0))[0]
    mine = ours(cell, params, starts)
    base = baseline(cell, params, starts, iterations=args.baseline_iterations)
    ratio = base["seconds"] / mine["seconds"]
    print(
        f"baseline (Adam lr 1.0, plateau decay, {args.baseline_iterations} it., autograd J): "
        f"{base['seconds']:8.2f} s  ({base['optimise_seconds']:.2f} s optimising)"
    )
    for it, (t, frac, _) in sorted(base["trace"].items()):
        print(f"    after {it:6d} iterations ({t:7.2f} s): {frac * 100:5.1f}% of points q < 1e-10")
    print(
        f"    reported {base['n_reported']} unique points, {base['n_stable']} stable; "
        + q_line(base["q"])
    )
    print(
        f"rnnzoo-dynamics (find + linearize):                      {mine['seconds']:8.2f} s  "
        f"(find {mine['find_seconds']:.2f} s, linearize {mine['linearize_seconds']:.2f} s)"
    )
    print(
        f"    reported {mine['n_fixed']} fixed + {mine['n_slow']} slow points; fixed points by "
        f"unstable dimensions {mine['unstable_dims']}; "
        + q_line(mine["q"][mine["kind"] == "fixed"])
    )
    # does the baseline's output contain our stable points? (within 1e-3)
    d = np.linalg.norm(base["states"][:, None] - mine["stable_states"][None], axis=-1)
    found = int((d.min(0) < 1e-3).sum()) if d.size else 0
    print(
        f"    of our {len(mine['stable_states'])} stable points, {found} are among the "
        "baseline's points (within 1e-3)"
    )
    print(
        f"speed-up: {ratio:.1f}x (target >= 10x) to a state where every reported fixed point "
        f"has q < 1e-10: {bool((mine['q'][mine['kind'] == 'fixed'] < 1e-10).all())}"
    )
    return {
        "network": nid,
        "performance": perf,
        "baseline_seconds": base["seconds"],
        "ours_seconds": mine["seconds"],
        "ratio": ratio,
        "baseline_fraction_below_1e-10": {str(k): v[1] for k, v in base["trace"].items()},
        "baseline_reported": base["n_reported"],
        "baseline_stable": base["n_stable"],
        "ours_fixed": mine["n_fixed"],
        "ours_slow": mine["n_slow"],
        "ours_unstable_dims": mine["unstable_dims"],
        "ours_max_q_fixed": float(mine["q"][mine["kind"] == "fixed"].max()),
    }


# -- your own network: an nn.GRU through rnnzoo_dynamics.as_network ----------------------------


def as_torch_gru(params) -> tuple[torch.nn.GRU, torch.nn.Linear]:
    """A zoo GRU's weights (one network, float64 holding float32 values) as a user's float32
    ``nn.GRU`` and ``nn.Linear`` readout (torch's bias_hh_n is the zoo's ``b_hn``)."""
    W_x, W_h, b, b_hn = (params[k][0] for k in ("W_x", "W_h", "b", "b_hn"))
    M, N = W_x.shape[0], W_h.shape[0]
    gru = torch.nn.GRU(M, N, batch_first=True)
    out = torch.nn.Linear(N, params["W_out"].shape[-1])
    with torch.no_grad():
        gru.weight_ih_l0.copy_(W_x.T)
        gru.weight_hh_l0.copy_(W_h.T)
        gru.bias_ih_l0.copy_(b)
        gru.bias_hh_l0.copy_(torch.cat([torch.zeros(2 * N, dtype=b.dtype), b_hn]))
        out.weight.copy_(params["W_out"][0].T)
        out.bias.copy_(params["b_out"][0])
    return gru, out


def own_model(gru, readout, starts):
    """The own-model path: convert the user's module, then the same find + linearize."""
    from rnnzoo_dynamics.models import as_network

    t0 = time.perf_counter()
    net = as_network(gru, readout)
    t1 = time.perf_counter()
    res = ours(net.cell, net.params, starts)
    res["convert_seconds"] = t1 - t0
    res["seconds"] += t1 - t0
    res["kind"] = res["kind"]
    res["model_kind"] = net.kind
    return res


class GRUStep(torch.nn.Module):
    """An ``nn.GRUCell`` as a step function ``F(h, x)`` (what a user with a custom cell has)."""

    def __init__(self, gru: torch.nn.GRU):
        super().__init__()
        self.cell = torch.nn.GRUCell(gru.input_size, gru.hidden_size)
        self.cell.load_state_dict({k.replace("_l0", ""): v for k, v in gru.state_dict().items()})
        self.hidden_size, self.input_size = gru.hidden_size, gru.input_size

    def forward(self, h, x):
        return self.cell(x, h)


def step_function_path(gru, readout, starts):
    """The generic path: the GRU as a step function, autograd Jacobians."""
    from rnnzoo_dynamics.models import as_network

    t0 = time.perf_counter()
    net = as_network(GRUStep(gru), readout)
    t1 = time.perf_counter()
    res = ours(net.cell, net.params, starts)
    res["seconds"] += t1 - t0
    res["model_kind"] = net.kind
    res["float64"] = net.float64
    return res


def bench_own(args) -> dict:
    """Issue 11 §1: an ``nn.GRU`` analysed as the user's own model vs the zoo path."""
    from rnnzoo_dynamics.initial_states import sample_initial_states, trajectories

    out = {}
    widths = [int(w) for w in args.own_widths.split(",")]
    for units in widths:
        iterations = args.iterations if units == 64 else args.own_iterations
        zoo, nid, cell, params, perf = trained_gru(iterations, units)
        traj = trajectories(cell, params, zoo.probe("flipflop").inputs).numpy()
        starts = sample_initial_states(traj, 1024, np.random.default_rng(0))[0]
        gru, readout = as_torch_gru(params)
        print(
            f"\n== own model: nn.GRU({cell.n_inputs}, {units}) with the weights of {nid} "
            f"(flip-flop performance {perf:.3f}, {iterations} it.), 1,024 starts"
        )
        # the two paths alternately, best of --repeats each (a shared machine's load varies)
        zoo_runs, own_runs = [], []
        for _ in range(args.repeats):
            zoo_runs.append(ours(cell, params, starts))
            own_runs.append(own_model(gru, readout, starts))
        zoo_run = min(zoo_runs, key=lambda r: r["seconds"])
        own = min(own_runs, key=lambda r: r["seconds"])
        n_base = args.baseline_iterations if units == 64 else args.own_baseline_iterations
        base = baseline(cell, params, starts, iterations=n_base, checkpoints=(n_base,))
        # no early stop: the optimisation's time is linear in its iterations
        base_seconds = base["seconds"] + base["optimise_seconds"] * (
            BASELINE_ITERATIONS / n_base - 1
        )
        same = (
            own["n_fixed"] == zoo_run["n_fixed"]
            and own["unstable_dims"] == zoo_run["unstable_dims"]
            and np.allclose(own["states"], zoo_run["states"], rtol=0, atol=1e-10)
        )
        fixed = own["q"][own["kind"] == "fixed"]
        times = ", ".join(f"{r['seconds']:.2f}" for r in zoo_runs)
        print(
            f"zoo path (find + linearize):          {zoo_run['seconds']:8.2f} s (runs: {times}); "
            f"{zoo_run['n_fixed']} fixed + {zoo_run['n_slow']} slow, by unstable dimensions "
            f"{zoo_run['unstable_dims']}"
        )
        times = ", ".join(f"{r['seconds']:.2f}" for r in own_runs)
        print(
            f"own-model path (as_network + same):   {own['seconds']:8.2f} s (runs: {times}; "
            f"conversion {own['convert_seconds'] * 1000:.1f} ms; {own['model_kind']}); "
            f"same points as the zoo path (1e-10): {same}; " + q_line(fixed)
        )
        extrapolated = (
            ""
            if n_base == BASELINE_ITERATIONS
            else f" -> {base_seconds:.1f} s extrapolated to {BASELINE_ITERATIONS} it."
        )
        print(
            f"baseline ({n_base} it.):               {base['seconds']:8.2f} s{extrapolated}; "
            f"{base['n_reported']} points, {base['n_stable']} stable; " + q_line(base["q"])
        )
        step_fn = None
        if units == 64:  # the generic path: the same GRU as a step function (autograd)
            step_fn = step_function_path(gru, readout, starts)
            print(
                f"step-function path (autograd J):      {step_fn['seconds']:8.2f} s "
                f"({step_fn['model_kind']}; float64 {step_fn['float64']}); "
                f"{step_fn['n_fixed']} fixed by unstable dimensions {step_fn['unstable_dims']}; "
                + q_line(step_fn["q"][step_fn["kind"] == "fixed"])
            )
        ratio_zoo = own["seconds"] / zoo_run["seconds"]
        ratio_base = base_seconds / own["seconds"]
        print(
            f"own / zoo: {ratio_zoo:.2f}x (target <= 2x); baseline / own: {ratio_base:.1f}x "
            f"(target >= 10x); every own fixed point q < 1e-10: {bool((fixed < 1e-10).all())}"
        )
        out[f"gru{units}"] = {
            "network": nid,
            "iterations": iterations,
            "performance": perf,
            "zoo_seconds": zoo_run["seconds"],
            "own_seconds": own["seconds"],
            "convert_seconds": own["convert_seconds"],
            "baseline_seconds": base_seconds,
            "baseline_iterations_run": n_base,
            "baseline_seconds_run": base["seconds"],
            "own_over_zoo": ratio_zoo,
            "baseline_over_own": ratio_base,
            "same_points": bool(same),
            "own_fixed": own["n_fixed"],
            "own_slow": own["n_slow"],
            "own_unstable_dims": own["unstable_dims"],
            "own_max_q_fixed": float(fixed.max()) if fixed.size else float("nan"),
            "baseline_reported": base["n_reported"],
            "baseline_stable": base["n_stable"],
            "baseline_fraction_below_1e-10": float(np.mean(base["q"] < 1e-10)),
        }
        if step_fn is not None:
            out[f"gru{units}"].update(
                step_function_seconds=step_fn["seconds"],
                step_function_fixed=step_fn["n_fixed"],
                step_function_unstable_dims=step_fn["unstable_dims"],
            )
    return out


# -- Jacobians at 256 units -------------------------------------------------------------------

_JAC_CHILD = r"""
import os, sys, time, json, resource
import numpy as np, torch
torch.set_num_threads(1)
from rnnzoo_train.cells import get_cell
from rnnzoo_dynamics.linearize import point_jacobians
which, arch, units = sys.argv[1], sys.argv[2], int(sys.argv[3])
cell = get_cell(arch, "tanh", units, 3, 3)
init = cell.init_params(torch.Generator().manual_seed(0), torch.float64)
params = {k: v[None] for k, v in init.items()}
rng = np.random.default_rng(0)
n = 1024
states = 0.5 * rng.standard_normal((n, cell.state_size))
x = np.zeros((n, 3))
net = np.zeros(n, dtype=np.int64)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
extra = {}
if which == "closed":
    point_jacobians(cell, params, net[:8], states[:8], x[:8])  # warm-up
    t = time.perf_counter()
    J = point_jacobians(cell, params, net, states, x)
    dt = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    point_jacobians(cell, params, net, states, x, out=J)  # into an existing buffer
    extra["seconds_reused_buffer"] = time.perf_counter() - t
    t = time.perf_counter()
    J.fill_(0.0)
    J2 = torch.empty_like(J); J2.fill_(1.0)  # the cost of touching a fresh result once
    extra["seconds_fill_fresh_result"] = time.perf_counter() - t
    del J2
elif which.startswith("linearize"):
    # linearize() of 1,024 points: all Jacobians at once (keep_jacobians, the former
    # behaviour) against blocks that are decomposed and dropped (the default)
    from rnnzoo_dynamics.fixed_points import FixedPoints
    from rnnzoo_dynamics.linearize import linearize
    pts = FixedPoints(network=net, condition=np.zeros(n, np.int64), state=states,
                      q=np.zeros(n), kind=np.full(n, "fixed", dtype=object),
                      n_merged=np.ones(n, np.int64), x_star=np.zeros((1, 3)),
                      candidate_q=np.zeros((1, 1, 1)))
    keep = which == "linearize_at_once"
    t = time.perf_counter()
    lin = linearize(cell, params, pts, keep_jacobians=keep,
                    max_block_elements=2**40 if keep else 2**22)
    dt = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    J = torch.empty(n, cell.state_size, cell.state_size, dtype=torch.float64)  # for result_mib
else:
    from torch.func import jacrev, vmap
    p1 = {k: v[0] for k, v in params.items()}
    x1 = torch.zeros(1, 1, 3, dtype=torch.float64)
    def f(h):
        return cell.step({k: v[None] for k, v in p1.items()}, h[None, None], x1)[0, 0]
    hs = torch.as_tensor(states)
    vmap(jacrev(f))(hs[:8])
    t = time.perf_counter()
    J = vmap(jacrev(f))(hs)
    dt = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": dt, "peak_mib": peak / 1024, "extra_mib": (peak - base) / 1024,
                  "result_mib": J.numel() * 8 / 2**20, "shape": list(J.shape), **extra}))
"""


def bench_jacobians() -> dict:
    print("\n== Jacobians: 1,024 points of a 256-unit tanh GRU (float64, one thread)")
    out = {}
    for which in ("closed", "autograd"):
        res = subprocess.run(
            [sys.executable, "-c", _JAC_CHILD, which, "gru", "256"],
            capture_output=True,
            text=True,
            check=True,
        )
        out[which] = json.loads(res.stdout.strip().splitlines()[-1])
        r = out[which]
        label = "closed form (rnnzoo)" if which == "closed" else "autograd vmap(jacrev)"
        print(
            f"{label:24s}: {r['seconds'] * 1000:8.1f} ms; result {r['result_mib']:.0f} MiB, "
            f"process peak RSS {r['peak_mib']:.0f} MiB"
        )
        if which == "closed":
            print(
                f"{'':24s}  {r['seconds_reused_buffer'] * 1000:8.1f} ms into an existing buffer "
                f"(memset of a fresh result alone: {r['seconds_fill_fresh_result'] * 1000:.0f} ms)"
            )
    n, S = 1024, 256
    joint = (n * S) ** 2 * 8 / 2**30
    print(
        f"closed form vs autograd: {out['autograd']['seconds'] / out['closed']['seconds']:.1f}x; "
        f"the joint (points*N)^2 Jacobian would need {joint:,.0f} GiB"
    )
    out["joint_gib"] = joint
    print("\n== linearize(): 1,024 points of a 128-unit tanh GRU (Jacobians + eigendecomposition)")
    for which in ("linearize_at_once", "linearize_blocks"):
        res = subprocess.run(
            [sys.executable, "-c", _JAC_CHILD, which, "gru", "128"],
            capture_output=True,
            text=True,
            check=True,
        )
        out[which] = r = json.loads(res.stdout.strip().splitlines()[-1])
        label = "all Jacobians at once" if which.endswith("once") else "blocks of 256 points"
        print(
            f"{label:24s}: {r['seconds'] * 1000:8.1f} ms; process peak RSS {r['peak_mib']:.0f} "
            f"MiB ({r['extra_mib']:.0f} MiB above the set-up)"
        )
    a, b = out["linearize_at_once"], out["linearize_blocks"]
    print(
        f"blocks vs at once: {a['extra_mib'] / max(b['extra_mib'], 1):.1f}x less memory above "
        f"the set-up, time ratio {b['seconds'] / a['seconds']:.2f}"
    )
    return out


# -- demo zoo ---------------------------------------------------------------------------------


def bench_demo(args) -> dict:
    from rnnzoo_dynamics.analyze import analyze_zoo
    from rnnzoo_train.generate import generate
    from rnnzoo_train.presets import get_preset
    from rnnzoo_train.runners import ProcessRunner, SerialRunner
    from rnnzoo_train.zoo import ZarrZooWriter, open_zoo

    path = Path(args.demo_zoo)
    tasks = ["flipflop", "sine", "cdi"]
    print(f"\n== demo zoo: every network of {path}")
    if not path.exists() or set(tasks) - set(open_zoo(path).tasks):
        print("generating the demo zoo first (cached; this is the trainer's time, not ours)")
        path.parent.mkdir(parents=True, exist_ok=True)
        runner = ProcessRunner(args.processes) if args.processes > 1 else SerialRunner()
        generate(get_preset("demo"), tasks, ZarrZooWriter(path), runner=runner, progress=True)
    out = {}
    total = 0.0
    for task in tasks:
        runner = ProcessRunner(args.processes) if args.processes > 1 else SerialRunner()
        t = time.perf_counter()
        report = analyze_zoo(path, task, runner=runner, force=True, progress=False)
        dt = time.perf_counter() - t
        total += dt
        n = report.analysed
        out[task] = {
            "seconds": dt,
            "networks": n,
            "skipped": len(report.skipped),
            "failed": len(report.failed),
        }
        print(
            f"{task:9s}: {n:3d} networks analysed ({len(report.skipped)} skipped, "
            f"{len(report.failed)} failed) in {dt:7.1f} s with {args.processes} process(es), "
            f"{dt / max(n, 1):.2f} s per network"
        )
    print(f"all tasks: {total:.1f} s")
    out["total_seconds"] = total
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--iterations",
        type=int,
        default=GRU_ITERATIONS,
        help="training iterations of the benchmark GRU (3000)",
    )
    ap.add_argument("--baseline-iterations", type=int, default=10_000)
    ap.add_argument("--skip-demo", action="store_true")
    ap.add_argument(
        "--parts",
        default="finder,own,jacobians,demo",
        help="comma-separated subset of finder,own,jacobians,demo (default: all)",
    )
    ap.add_argument(
        "--own-baseline-iterations",
        type=int,
        default=BASELINE_ITERATIONS,
        help="baseline iterations actually run on the 256-unit GRU of part 'own'; fewer than "
        f"{BASELINE_ITERATIONS} are extrapolated linearly (the baseline never stops early)",
    )
    ap.add_argument("--own-widths", default="64,256", help="GRU widths of part 'own' (64,256)")
    ap.add_argument(
        "--repeats", type=int, default=2, help="runs of each path in part 'own' (best kept; 2)"
    )
    ap.add_argument(
        "--own-iterations",
        type=int,
        default=OWN_256_ITERATIONS,
        help=f"training iterations of the 256-unit GRU of part 'own' ({OWN_256_ITERATIONS})",
    )
    ap.add_argument("--demo-zoo", default=str(OUT / "demo-zoo.zarr"))
    ap.add_argument(
        "--processes", type=int, default=2, help="worker processes for the demo zoo (2)"
    )
    args = ap.parse_args()
    cpu = platform.processor() or platform.machine()
    print(
        f"bench_dynamics: {time.strftime('%Y-%m-%d %H:%M')}, {cpu}, "
        f"{os.cpu_count()} cores, torch {torch.__version__}, one thread per process; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    parts = set(args.parts.split(","))
    results = {}
    if "finder" in parts:
        results["finder"] = bench_finder(args)
    if "own" in parts:
        results["own"] = bench_own(args)
    if "jacobians" in parts:
        results["jacobians"] = bench_jacobians()
    if "demo" in parts and not args.skip_demo:
        results["demo"] = bench_demo(args)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_dynamics.json").write_text(json.dumps(results, indent=2, default=float))
    print(
        f"\nresults in {OUT / 'bench_dynamics.json'}; peak RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    main()
