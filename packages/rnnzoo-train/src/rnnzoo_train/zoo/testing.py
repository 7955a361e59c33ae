"""Helpers for tests and benchmarks of the zoo store (real servers, real data).

- :func:`serve_directory`: a static HTTP server on 127.0.0.1 that, like most web hosts and
  object stores, refuses directory listings;
- :func:`synthetic_result`: a :class:`NetworkResult` with the exact shapes the trainer
  produces, whose weights are the cell's real initialisation and whose hidden states are
  the cell run on the task's probe inputs (no training), so store tests and size benchmarks
  handle realistic data without training anything (``cells=False``: without torch);
- :func:`read_only`: paths made read-only for a test, even for root.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnnzoo_train.records import (
    Configuration,
    HyperParameters,
    NetworkResult,
    NetworkSpec,
    TaskPlan,
)
from rnnzoo_train.tasks.base import Task


@dataclass
class ServedDirectory:
    """A running server: its base ``url`` and the request ``log`` (``"GET /path 200"``).

    ``status`` maps a path (``"/registry.txt"``) to an HTTP error code the server answers
    for it instead of the file (``{"/registry.txt": 500}``); it can change while serving.
    """

    url: str
    log: list[str] = field(default_factory=list)
    status: dict[str, int] = field(default_factory=dict)

    def requests(self, method: str = "GET") -> list[str]:
        """Paths requested with ``method``."""
        return [e.split()[1] for e in self.log if e.startswith(method + " ")]


class _NoListingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files only: a directory URL gets 404 (no index page, no listing).

    That is what most static web hosts and object stores do.
    """

    served: ServedDirectory

    def list_directory(self, path):
        self.send_error(404, "directory listing is disabled")
        return None

    def send_head(self):
        forced = self.served.status.get(self.path.split("?", 1)[0])
        if forced is not None:
            self.send_error(forced, "forced by the test")
            return None
        if Path(self.translate_path(self.path)).is_dir():
            self.send_error(404, "directory listing is disabled")
            return None
        return super().send_head()

    def log_request(self, code="-", size="-"):
        method, path = (self.requestline.split() + ["", ""])[:2]
        self.served.log.append(f"{method} {path} {code}")

    def log_message(self, format, *args):
        pass


@contextlib.contextmanager
def serve_directory(directory: str | Path) -> Iterator[ServedDirectory]:
    """Serve ``directory`` over HTTP on 127.0.0.1 (a free port) without directory listing.

    Yields a :class:`ServedDirectory`; the server stops when the block exits.
    """
    served = ServedDirectory(url="")
    handler = type("Handler", (_NoListingHandler,), {"served": served})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(directory))
    )
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def read_only(*paths: str | Path) -> Iterator[None]:
    """Make ``paths`` read-only while the block runs, even for root.

    As root, mode bits stop nothing, so the paths are made immutable (``chattr +i``; raises
    ``OSError`` where the file system does not support it); otherwise write bits are
    removed. Restored on exit.
    """
    import os
    import subprocess

    done: list[Path] = []
    try:
        for p in map(Path, paths):
            if os.geteuid() == 0:
                r = subprocess.run(["chattr", "+i", str(p)], capture_output=True, text=True)
                if r.returncode != 0:
                    raise OSError(f"cannot make {p} read-only: {r.stderr.strip()}")
            else:
                p.chmod(p.stat().st_mode & ~0o222)
            done.append(p)
        yield
    finally:
        for p in done:
            if os.geteuid() == 0:
                subprocess.run(["chattr", "-i", str(p)], capture_output=True)
            else:
                p.chmod(p.stat().st_mode | 0o200)


#: a small mix of cells and widths: two groups share one (gru-tanh-u8), as in the paper grid
SMALL_CONFIGURATIONS = (
    Configuration("gru", "tanh", 8, 1e-4),
    Configuration("vanilla", "relu", 6, 1e-3),
    Configuration("gru", "tanh", 8, 1e-3),
    Configuration("lstm", "tanh", 4, 1e-4),
)


def small_plan(
    task: Task,
    configurations: tuple[Configuration, ...] = SMALL_CONFIGURATIONS,
    seeds: tuple[int, ...] = (0, 1),
    *,
    iterations: int = 20,
    n_trials: int = 2,
    loss_every: int = 10,
    preset: str = "test",
) -> TaskPlan:
    """A small :class:`TaskPlan` for store tests (8 networks in 3 groups by default)."""
    return TaskPlan(
        task=task.name,
        task_config=task.config(),
        preset=preset,
        configurations=tuple(configurations),
        seeds=tuple(seeds),
        iterations=iterations,
        n_trials=n_trials,
        search_iterations=iterations // 2,
        loss_every=loss_every,
    )


def synthetic_result(
    plan: TaskPlan,
    task: Task,
    network_id: str,
    *,
    status: str = "ok",
    hparams: HyperParameters | None = None,
    cells: bool = True,
) -> NetworkResult:
    """A result of network ``network_id`` of ``plan`` with the trainer's exact shapes.

    Deterministic in the network id: initial weights are the cell's initialisation from the
    network's seed, "trained" weights are those plus a seeded perturbation, and the hidden
    states and outputs are the cell run on the task's probe inputs. ``status="diverged"``
    gives a loss curve that becomes NaN half-way; ``"failed"`` a result without arrays.

    ``cells=False`` needs no torch: weights are seeded Gaussian draws of the cell's
    parameter shapes (:func:`rnnzoo_train.cells.catalog.param_shapes`), hidden states and
    outputs seeded values in (-1, 1) of the right shapes (not a run of the cell). Such a zoo
    exercises every reader, ``verify``, ``publish`` and ``download`` without torch.
    """
    config = next(c for c in plan.configurations if network_id.startswith(c.key + "-s"))
    seed = int(network_id.rsplit("-s", 1)[1])
    hp = hparams or HyperParameters(clip=1.0, lr=0.01, decay=0.5, momentum=0.9)
    spec = NetworkSpec(
        task=plan.task,
        config=config,
        seed=seed,
        hparams=hp,
        iterations=plan.iterations,
        batch_size=plan.batch_size,
    )
    arrays = _cell_arrays if cells else _random_arrays
    np_, nf, h0, h1, y = arrays(config, task, seed)
    n = plan.n_logged
    its = np.arange(n, dtype=np.int64) * plan.loss_every
    curve = (1.0 / (1.0 + its / max(plan.loss_every, 1))).astype(np.float32)
    last = float(curve[-1])
    diverged_at = -1
    if status == "diverged":
        curve[n // 2 :] = np.nan
        last = float(curve[n // 2 - 1]) if n > 1 else float("nan")
        diverged_at = int(its[n // 2])
    units = config.units
    if status == "failed":
        empty = np.zeros((0,), np.float32)
        return NetworkResult(
            spec,
            "failed",
            {},
            {},
            empty,
            np.zeros(0, np.int64),
            *(float("nan"),) * 4,
            False,
            empty,
            empty,
            empty,
            message="synthetic failure",
        )
    return NetworkResult(
        spec=spec,
        status=status,  # type: ignore[arg-type]
        params_initial=np_,
        params_final=nf,
        loss_curve=curve,
        loss_iterations=its,
        train_loss=last if status == "ok" else float("nan"),
        val_loss=last * 1.1,
        test_loss=last * 1.2,
        performance=0.99 if status == "ok" else 0.0,
        solved=status == "ok",
        hidden_trained=h1[..., :units],
        hidden_untrained=h0[..., :units],
        outputs_trained=y,
        last_finite_loss=last,
        diverged_at=diverged_at,
        message="" if status == "ok" else f"loss became NaN at iteration {diverged_at}",
        train_seconds=0.0,
    )


def _cell_arrays(config: Configuration, task: Task, seed: int) -> tuple:
    """Weights, hidden states and outputs of the real cell (torch), as NumPy arrays."""
    import torch

    from rnnzoo_train.cells import get_cell, unsqueeze_params

    cell = get_cell(config.arch, config.activation, config.units, task.n_inputs, task.n_outputs)
    gen = torch.Generator().manual_seed(seed)
    initial = cell.init_params(gen)
    # "training" = a 5% relative perturbation (keeps the relu cells' spectral radius < 1)
    final = {
        k: v
        + 0.05 * (float(v.std()) if v.numel() > 1 else 0.0) * torch.randn(v.shape, generator=gen)
        + 0.002 * torch.randn(v.shape, generator=gen)
        for k, v in initial.items()
    }
    probe = torch.as_tensor(task.probe().inputs)
    with torch.no_grad():
        h0 = cell.run(unsqueeze_params(initial), probe[None])[0]
        h1 = cell.run(unsqueeze_params(final), probe[None])[0]
        B, T, S = h1.shape
        y = cell.readout(unsqueeze_params(final), h1.reshape(1, B * T, S)).reshape(B, T, -1)
    return (
        {k: v.numpy() for k, v in initial.items()},
        {k: v.numpy() for k, v in final.items()},
        h0.numpy(),
        h1.numpy(),
        y.numpy(),
    )


def _random_arrays(config: Configuration, task: Task, seed: int) -> tuple:
    """Seeded arrays of the shapes :func:`_cell_arrays` gives, without torch."""
    from rnnzoo_train.cells.catalog import param_shapes

    rng = np.random.default_rng([seed, config.units])
    shapes = param_shapes(config.arch, config.units, task.n_inputs, task.n_outputs)
    initial = {k: rng.normal(0, 0.3, s).astype(np.float32) for k, s in shapes.items()}
    final = {k: (v + rng.normal(0, 0.01, v.shape)).astype(np.float32) for k, v in initial.items()}
    B, T = task.probe().inputs.shape[:2]
    S = config.units * (2 if config.arch == "lstm" else 1)
    h0 = np.tanh(rng.normal(size=(B, T, S))).astype(np.float32)
    h1 = np.tanh(rng.normal(size=(B, T, S))).astype(np.float32)
    y = np.tanh(rng.normal(size=(B, T, task.n_outputs))).astype(np.float32)
    return initial, final, h0, h1, y


def write_synthetic_zoo(
    path: str | Path,
    tasks: list[Task],
    *,
    seeds: tuple[int, ...] = (0, 1),
    n_written: int | None = None,
    cells: bool = True,
) -> dict[str, TaskPlan]:
    """Write a zoo of :func:`small_plan` plans with :func:`synthetic_result` networks.

    ``n_written`` networks per task are written (default: all); the rest stay pending.
    ``cells=False`` writes it without torch (see :func:`synthetic_result`).
    Returns the plan of each task.
    """
    from .writer import ZarrZooWriter

    plans = {}
    with ZarrZooWriter(path) as writer:
        for task in tasks:
            plan = small_plan(task, seeds=seeds)
            writer.prepare_task(plan, task)
            ids = plan.network_ids()[:n_written]
            results = [synthetic_result(plan, task, i, cells=cells) for i in ids]
            writer.write_results(task.name, results)
            plans[task.name] = plan
    return plans


def missing_chunks(path: str | Path) -> list[str]:
    """Keys of every chunk of every array of the zoo directory ``path`` that is not on disk.

    A complete zoo (schema >= 1.1) returns ``[]``, even right after its template: every
    chunk is written, pending networks' rows with fill values (``docs/zoo-format.md``).
    """
    import zarr

    from .store import chunk_grid, chunk_key, quiet_zarr

    path = Path(path)
    with quiet_zarr():
        root = zarr.open_group(
            zarr.storage.LocalStore(path, read_only=True),
            mode="r",
            zarr_format=3,
            use_consolidated=False,
        )
        arrays = [a for _, a in root.members(max_depth=None) if isinstance(a, zarr.Array)]
    return [
        chunk_key(a, c)
        for a in arrays
        for c in chunk_grid(a)
        if not (path / chunk_key(a, c)).is_file()
    ]


#: values that describe a run rather than a network: they legitimately differ between a
#: resumed or distributed run and an uninterrupted one
RUN_SPECIFIC = {"index": ("train_seconds", "written_at"), "/": ("created",)}


def zoo_differences(a: str | Path, b: str | Path, tasks: list[str] | None = None) -> list[str]:
    """Every difference between two zoos, node by node and array by array (exact, NaN = NaN).

    Run-specific values (:data:`RUN_SPECIFIC`: training time, write time, creation time) are
    ignored; everything else must be identical, including dtypes, dims and attributes.
    """
    import xarray as xr

    from .reader import open_zoo

    za, zb = open_zoo(a), open_zoo(b)
    out: list[str] = []
    attrs_a = {k: v for k, v in za.attrs.items() if k not in RUN_SPECIFIC["/"]}
    attrs_b = {k: v for k, v in zb.attrs.items() if k not in RUN_SPECIFIC["/"]}
    if tasks is None:
        if attrs_a != attrs_b:
            out.append(f"/: root attributes differ: {attrs_a} != {attrs_b}")
        tasks = za.tasks
        if za.tasks != zb.tasks:
            out.append(f"/: tasks differ: {za.tasks} != {zb.tasks}")
    for task in tasks:
        ta, tb = za.tree[task], zb.tree[task]
        paths_a = {n.relative_to(ta) for n in ta.subtree}
        paths_b = {n.relative_to(tb) for n in tb.subtree}
        if paths_a != paths_b:
            out.append(f"{task}: nodes differ: {sorted(paths_a ^ paths_b)}")
        for rel in sorted(paths_a & paths_b):
            na = ta if rel == "." else ta[rel]
            nb = tb if rel == "." else tb[rel]
            where = f"{task}/{rel}".rstrip("/.")
            da, db = na.to_dataset(inherit=False), nb.to_dataset(inherit=False)
            skip = RUN_SPECIFIC["index"] if rel == "index" else ()
            if da.attrs != db.attrs:
                out.append(f"{where}: attributes differ")
            names = (set(da.variables) | set(db.variables)) - set(skip)
            for name in sorted(names):
                if name not in da.variables or name not in db.variables:
                    out.append(f"{where}/{name}: only in one zoo")
                    continue
                va, vb = da.variables[name], db.variables[name]
                if va.dims != vb.dims or va.dtype != vb.dtype or va.attrs != vb.attrs:
                    out.append(f"{where}/{name}: dims, dtype or attributes differ")
                elif not _equal_values(va.values, vb.values):
                    out.append(f"{where}/{name}: values differ")
            if not isinstance(da, xr.Dataset):  # pragma: no cover
                out.append(f"{where}: not a dataset")
    return out


def _equal_values(x: np.ndarray, y: np.ndarray) -> bool:
    if x.shape != y.shape:
        return False
    if x.dtype.kind in "fc":
        return bool(np.array_equal(x, y, equal_nan=True))
    if x.dtype.kind in "OTU" or y.dtype.kind in "OTU":
        return [str(v) for v in x.ravel()] == [str(v) for v in y.ravel()]
    return bool(np.array_equal(x, y))


# -- picklable work functions for runner tests (Dask workers must be able to import them) ---
def fail_once(marker_dir: str) -> str:
    """Raise on the first call (leaving a marker file in ``marker_dir``), return "ok" after."""
    marker = Path(marker_dir) / "attempted"
    if not marker.exists():
        marker.write_text("1")
        raise RuntimeError("transient failure")
    return "ok"


def always_fail(x: object) -> None:
    """Always raise (a unit that cannot succeed)."""
    raise RuntimeError(f"unit {x} is broken")
