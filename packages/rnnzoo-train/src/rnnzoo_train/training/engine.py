"""Train a population of networks of one cell type and width in one vectorised computation.

:func:`train_population` trains every :class:`~rnnzoo_train.records.NetworkSpec` of a group
at once (seeds, search trials, L2 settings, hyper-parameters may differ; architecture,
activation, width, iterations and batch size are shared). Each network draws its initial
weights and its training batches from its own streams (:mod:`.seeding`), is updated by its
own SGD (:mod:`.optimiser`) and computes nothing that involves another network, so its
result is the same as training it alone (:func:`train_network`); the tests check this.

Iteration ``k = 0 .. iterations - 1``: draw batch ``k`` of every network, forward, loss,
BPTT (:mod:`.kernels`), update. The loss curve holds the batch loss at ``k = 0, loss_every,
2 * loss_every, ...`` (before that iteration's update); the entry at ``k = iterations``, and
``train_loss``, are the loss of the final weights on training batch ``iterations``.
A network whose loss or gradient norm is NaN/inf is frozen at that iteration and reported
``"diverged"`` with its last finite loss; the others carry on.

A network with a trial-length schedule (``spec.schedule``, a curriculum over ``T``: Bengio
et al. 2009) trains its stages one after another: iterations ``0 .. n_1 - 1`` on trials of
the first stage's ``T``, the next ``n_2`` on the second's, and so on, with the same
parameters, the same optimiser state (momentum) and one learning-rate schedule over all
``iterations``; the last stage is at the task's own ``T``, where it is evaluated.

Subnormal float32 numbers (below 1.2e-38) are flushed to zero while a population trains
(:func:`denormals_flushed`): back-propagated through hundreds of time steps, gradients of
relu networks fall into that range, where every operation on them takes a slow microcode
path on Intel CPUs. On an Intel Xeon the demo's sine schedule (T = 500) trained UGRNN-,
LSTM- and GRU-relu networks 2.6x, 2.0x and 1.7x faster with them flushed; values that small
are zero for the training (the learning rate is ~1e-2), so only the last bits of the
trained networks change, as between two CPUs.

After training, every network is scored on the task's fixed validation and test sets
(``eval_trials`` trials each): ``val_loss``, ``test_loss`` (masked MSE), and
``performance`` = ``task.performance`` on the test set, ``solved`` = ``task.solved``.
Hidden states and outputs on the task's probe inputs are recorded for the trained and the
untrained (initial) weights.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from rnnzoo_train.cells import get_cell, stack_params
from rnnzoo_train.records import NetworkResult, NetworkSpec, trial_length_stages
from rnnzoo_train.tasks.base import Task, TaskBatch

from .data import PopulationBatch
from .kernels import SequenceKernel
from .losses import masked_mse_and_grad
from .optimiser import PopulationSGD
from .seeding import evaluation_rng, network_streams
from .selection import make_kernel

#: called as ``callback(iteration, iterations, losses)`` every ``loss_every`` iterations
ProgressCallback = Callable[[int, int, np.ndarray], None]


def _check_population(specs: Sequence[NetworkSpec], task: Task) -> None:
    if not specs:
        raise ValueError("train_population needs at least one NetworkSpec")
    first = specs[0]
    for s in specs:
        same = (
            s.task == first.task
            and s.config.arch == first.config.arch
            and s.config.activation == first.config.activation
            and s.config.units == first.config.units
            and s.iterations == first.iterations
            and s.batch_size == first.batch_size
            and s.schedule == first.schedule
        )
        if not same:
            raise ValueError(
                f"network {s.network_id} cannot share a population with {first.network_id}: "
                "task, arch, activation, units, iterations, batch size and trial-length "
                "schedule must agree"
            )
    if first.task != task.name:
        raise ValueError(f"specs are for task {first.task!r} but the task is {task.name!r}")
    trial_length_stages(first, task.n_steps)  # a schedule that does not fit raises here
    ids = [s.network_id for s in specs]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate networks in one population")


def _to_numpy(params: dict[str, torch.Tensor], p: int) -> dict[str, np.ndarray]:
    return {k: v[p].detach().cpu().numpy().astype(np.float32, copy=True) for k, v in params.items()}


def evaluate(
    kernel: SequenceKernel,
    params: dict[str, torch.Tensor],
    batch: TaskBatch,
    buffer: PopulationBatch,
    want_hidden: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Run every network of the population on a shared set of trials (forward only).

    Returns ``(mse (P,), outputs (P, n, T, K), hidden (P, n, T, N) or None)``, processing
    the ``n`` trials in chunks of the kernel's batch size.
    """
    P, B, T = kernel.P, kernel.B, kernel.T
    n = batch.inputs.shape[0]
    K = batch.targets.shape[-1]
    outputs = np.empty((P, n, T, K), dtype=np.float32)
    hidden = np.empty((P, n, T, kernel.N), dtype=np.float32) if want_hidden else None
    with torch.no_grad():
        for start in range(0, n, B):
            stop = min(start + B, n)
            buffer.broadcast(batch, start, stop)
            y = kernel.forward(params, buffer.torch_xa)  # (P, T, K, B)
            outputs[:, start:stop] = y[..., : stop - start].permute(0, 3, 1, 2).cpu().numpy()
            if hidden is not None:
                h = kernel.hidden()[..., : stop - start]  # (P, T, N, B)
                hidden[:, start:stop] = h.permute(0, 3, 1, 2).cpu().numpy()
    mask = batch.mask.astype(np.float64)
    err = (outputs.astype(np.float64) - batch.targets[None]) ** 2 * mask[None]
    with np.errstate(invalid="ignore", over="ignore"):
        mse = err.sum(axis=(1, 2, 3)) / max(mask.sum(), 1.0)
    return mse, outputs, hidden


def task_at_length(task: Task, n_steps: int) -> Task:
    """``task`` with trials of ``n_steps`` steps, its other parameters unchanged.

    Rebuilt from ``task.config()`` through the task registry, so a plugin task works if its
    constructor takes ``n_steps``.
    """
    from rnnzoo_train.tasks import get_task

    if n_steps == task.n_steps:
        return task
    config = task.config()
    return get_task(config["name"], **{**config.get("params", {}), "n_steps": int(n_steps)})


def evaluation_set(task: Task, split: str, n_trials: int) -> TaskBatch:
    """The task's fixed ``"validation"`` or ``"test"`` trials."""
    return task.sample(n_trials, evaluation_rng(task.name, split))


@contextlib.contextmanager
def denormals_flushed() -> Iterator[bool]:
    """Flush subnormal float32/float64 numbers to zero on this thread while the block runs.

    Sets the CPU's flush-to-zero and denormals-are-zero modes (``torch.set_flush_denormal``),
    which govern torch's, MKL's, numpy's and the native kernels' arithmetic on the calling
    thread (training runs on one thread per process), and turns them off again at the end
    (a Python process starts with them off). Yields whether the CPU supports them.
    """
    supported = bool(torch.set_flush_denormal(True))
    try:
        yield supported
    finally:
        if supported:
            torch.set_flush_denormal(False)


def train_population(
    specs: Sequence[NetworkSpec],
    task: Task,
    *,
    loss_every: int = 10,
    eval_trials: int = 256,
    record_probe: bool = True,
    callback: ProgressCallback | None = None,
    device: str | torch.device | None = None,
    backend: str | None = None,
) -> list[NetworkResult]:
    """Train every network of ``specs`` (one group) at once; see the module docstring.

    Parameters
    ----------
    specs : sequence of NetworkSpec
        Networks sharing task, arch, activation, units, iterations and batch size.
    task : Task
        The task instance (``task.name`` must equal every ``spec.task``).
    loss_every : int
        Log the training loss every this many iterations.
    eval_trials : int
        Trials in each of the fixed validation and test sets.
    record_probe : bool
        Record hidden states and outputs on the probe inputs (search trials skip this: their
        probe arrays are then empty).
    callback : callable, optional
        ``callback(iteration, iterations, losses)`` every ``loss_every`` iterations.
    device : str or torch.device, optional
        Where to train (default the CPU). A GPU (``"cuda"``) trains with the
        :class:`~.device_kernel.AutogradKernel`; task sampling stays on the CPU.
    backend : str, optional
        CPU kernels (``"auto"``, ``"eager"``, ``"native"``, ``"autograd"``; default
        ``$RNNZOO_KERNELS`` or ``"auto"``), see :mod:`.native`.

    Returns
    -------
    list of NetworkResult
        In the order of ``specs``.
    """
    with denormals_flushed():
        return _train_population(
            specs, task, loss_every, eval_trials, record_probe, callback, device, backend
        )


def _train_population(
    specs: Sequence[NetworkSpec],
    task: Task,
    loss_every: int,
    eval_trials: int,
    record_probe: bool,
    callback: ProgressCallback | None,
    device: str | torch.device | None,
    backend: str | None,
) -> list[NetworkResult]:
    specs = list(specs)
    _check_population(specs, task)
    started = time.perf_counter()
    first = specs[0]
    P, B, T = len(specs), first.batch_size, task.n_steps
    iterations = first.iterations
    stages = trial_length_stages(first, T)
    conf = first.config
    cell = get_cell(conf.arch, conf.activation, conf.units, task.n_inputs, task.n_outputs)
    streams = [network_streams(s) for s in specs]
    kernel = make_kernel(cell, P, B, stages[0][0], backend=backend, device=device)
    dev = getattr(kernel, "device", torch.device("cpu"))
    params = stack_params([cell.init_params(gen) for gen, _ in streams])
    params = {k: v.to(dev) for k, v in params.items()}
    initial = {k: v.clone() for k, v in params.items()}
    rngs = [rng for _, rng in streams]
    hparams = [s.hparams for s in specs]
    opt = PopulationSGD(params, hparams, [s.config.l2 for s in specs], iterations)

    n_logged = iterations // loss_every + 1
    curve = np.full((P, n_logged), np.nan, dtype=np.float32)
    active = torch.ones(P, dtype=torch.bool)
    last_finite = np.full(P, np.nan)
    diverged_at = np.full(P, -1, dtype=np.int64)
    messages = [""] * P

    def freeze(bad: np.ndarray, k: int, why: str) -> None:
        for p in np.flatnonzero(bad):
            if active[p]:
                active[p] = False
                diverged_at[p] = k
                messages[p] = f"{why} at iteration {k}; frozen with its last finite loss"

    train_loss = np.full(P, np.nan)
    # the stages of the trial-length schedule: (first iteration, task at that T); the last is
    # ``task`` itself and also holds the final-loss iteration k = iterations
    starts = np.cumsum([0] + [n for _, n in stages[:-1]])
    stage_tasks = [task_at_length(task, t) for t, _ in stages[:-1]] + [task]
    stage = -1
    for k in range(iterations + 1):
        if stage + 1 < len(stages) and k == starts[stage + 1]:
            stage += 1
            sample = stage_tasks[stage].sample
            T_k = stages[stage][0]
            if stage:  # a new trial length: new buffers (same parameters and optimiser)
                kernel = make_kernel(cell, P, B, T_k, backend=backend, device=device)
            data = PopulationBatch(P, B, T_k, task.n_inputs, task.n_outputs)
            targets, mask = data.torch_targets.to(dev), data.torch_mask.to(dev)
            # kernels that do forward, loss and BPTT in one call (the GPU's: one CUDA graph)
            fused = getattr(kernel, "train_step", None)
        for p in range(P):
            data.set(p, sample(B, rngs[p]))
        if dev.type != "cpu":
            targets.copy_(data.torch_targets)
            mask.copy_(data.torch_mask)
        if fused is not None:
            loss, grads = fused(params, data.torch_xa, targets, mask)
        else:
            outputs = kernel.forward(params, data.torch_xa)
            loss = masked_mse_and_grad(outputs, targets, mask, kernel.d_outputs)
        loss_np = loss.cpu().numpy().astype(np.float64)
        finite = np.isfinite(loss_np)
        alive = active.numpy().copy()
        freeze(alive & ~finite, k, "loss became NaN/inf")
        alive = active.numpy()
        last_finite = np.where(alive & finite, loss_np, last_finite)
        if k % loss_every == 0:
            curve[:, k // loss_every] = np.where(alive, loss_np, np.nan)
            if callback is not None:
                callback(k, iterations, loss_np)
        if k == iterations:
            train_loss = np.where(alive, loss_np, np.nan)
            break
        if fused is None:
            grads = kernel.backward(params)
        norm = opt.step(grads, k, active.to(dev))
        freeze(active.numpy() & ~np.isfinite(norm.cpu().numpy()), k, "gradient became NaN/inf")

    # -- evaluation ------------------------------------------------------------------------
    val_loss, _, _ = evaluate(kernel, params, evaluation_set(task, "validation", eval_trials), data)
    test = evaluation_set(task, "test", eval_trials)
    test_loss, test_out, _ = evaluate(kernel, params, test, data)
    if record_probe:
        probe = task.probe()
        _, probe_out, hid_trained = evaluate(kernel, params, probe, data, want_hidden=True)
        _, _, hid_untrained = evaluate(kernel, initial, probe, data, want_hidden=True)
    seconds = (time.perf_counter() - started) / P

    results = []
    empty = np.zeros((0, T, 0), dtype=np.float32)
    for p, spec in enumerate(specs):
        ok = bool(active[p]) and math.isfinite(val_loss[p]) and math.isfinite(test_loss[p])
        if bool(active[p]) and not ok:
            diverged_at[p] = iterations
            messages[p] = "evaluation loss is NaN/inf"
        with np.errstate(all="ignore"):
            perf = float(task.performance(test_out[p], test)) if ok else float("nan")
        results.append(
            NetworkResult(
                spec=spec,
                status="ok" if ok else "diverged",
                params_initial=_to_numpy(initial, p),
                params_final=_to_numpy(params, p),
                loss_curve=curve[p].copy(),
                loss_iterations=np.arange(n_logged, dtype=np.int64) * loss_every,
                train_loss=float(train_loss[p]),
                val_loss=float(val_loss[p]),
                test_loss=float(test_loss[p]),
                performance=perf,
                solved=bool(ok and task.solved(perf)),
                hidden_trained=hid_trained[p] if record_probe else empty,
                hidden_untrained=hid_untrained[p] if record_probe else empty,
                outputs_trained=probe_out[p] if record_probe else empty,
                last_finite_loss=float(last_finite[p]),
                diverged_at=int(diverged_at[p]),
                message=messages[p],
                train_seconds=seconds,
            )
        )
    return results


def train_network(spec: NetworkSpec, task: Task, **kwargs) -> NetworkResult:
    """Train one network alone (a population of one); same keywords as :func:`train_population`."""
    return train_population([spec], task, **kwargs)[0]
