"""The on-disk layout of a zoo: names, dimensions, dtypes, chunks and codecs.

Everything that fixes *where* a value lives in the store is here, as pure functions that
build the template :class:`xarray.Dataset` of each node from a :class:`TaskPlan` and a
:class:`Task`. The writer fills the templates, the reader and ``verify`` check against them,
and ``docs/zoo-format.md`` describes the same layout for readers without rnnzoo.

Layout (schema major version 1)::

    /                              attrs: rnnzoo_schema_version, rnnzoo_generator, preset,
                                          created, tasks
    /<task>                        attrs: task_config, plan, performance_name, ...
    /<task>/index                  dim network: every network of the plan
    /<task>/probe                  dims probe, time, input, output
    /<task>/search                 dim trial: every hyper-parameter search trial
    /<task>/networks/<group>       dims network, probe, time, unit, output, log_step, ...
    /<task>/analysis/<name>        analysis results (written by the analyses)

Chunking rule (DESIGN.md section 3): what one writer writes at once is one chunk. Per-network
arrays of a group are chunked one network per chunk (a region write never shares a chunk
with another network); the index, search table and probe set are written whole by the one
process that owns the store, so each of their variables is a single chunk (a 2,880-network
index then opens with one read per variable instead of one per network).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import xarray as xr
from zarr.codecs import Crc32cCodec, ZstdCodec

from rnnzoo_train.records import Configuration, TaskPlan
from rnnzoo_train.tasks.base import Task

#: semantic version of the layout; readers refuse a major version they do not know
SCHEMA_VERSION = "1.1.0"
SCHEMA_MAJOR = 1

#: zstd level of every chunk (level 3: ~300 MB/s, within a few % of level 9 on weights)
ZSTD_LEVEL = 3

#: the coordinates every Dataset with a ``network`` dimension carries (architecture.md §4)
NETWORK_COORDS = ("arch", "activation", "units", "l2", "seed", "status")

#: data variables of ``/<task>/index``: name -> (dtype, value of a pending network)
INDEX_VARIABLES: dict[str, tuple[str, Any]] = {
    "clip": ("float64", np.nan),
    "lr": ("float64", np.nan),
    "decay": ("float64", np.nan),
    "momentum": ("float64", np.nan),
    "iterations": ("int64", 0),
    "batch_size": ("int64", 0),
    "train_loss": ("float64", np.nan),
    "val_loss": ("float64", np.nan),
    "test_loss": ("float64", np.nan),
    "last_finite_loss": ("float64", np.nan),
    "performance": ("float64", np.nan),
    "solved": ("bool", False),
    "diverged_at": ("int64", -1),
    "train_seconds": ("float64", np.nan),
    "message": ("str", ""),
    "written_at": ("str", ""),
}

#: data variables of ``/<task>/search``: name -> (dtype, value of a pending trial)
SEARCH_VARIABLES: dict[str, tuple[str, Any]] = {
    "seed": ("int64", -1),
    "clip": ("float64", np.nan),
    "lr": ("float64", np.nan),
    "decay": ("float64", np.nan),
    "momentum": ("float64", np.nan),
    "iterations": ("int64", 0),
    "status": ("str", "pending"),
    "val_loss": ("float64", np.nan),
    "chosen": ("bool", False),
}

#: per-network arrays of a group besides the weights: name -> dims after ``network``
GROUP_ARRAYS: dict[str, tuple[str, ...]] = {
    "hidden_trained": ("probe", "time", "unit"),
    "hidden_untrained": ("probe", "time", "unit"),
    "outputs_trained": ("probe", "time", "output"),
    "loss_curve": ("log_step",),
}

WEIGHT_PREFIXES = {"initial": "initial_", "final": "final_"}

#: index statuses of a finished network: never retrained by a resumed generation. A diverged
#: network is a result (recorded with its last finite loss and the iteration it diverged at),
#: and retraining it would diverge again identically; ``failed`` and ``pending`` are retrained.
FINISHED_STATUSES = ("ok", "diverged")

#: storage choices of a task (writer arguments, or ``TaskPlan.metadata["zoo_storage"]``)
STORAGE_DEFAULTS: dict[str, Any] = {"hidden_dtype": "float32", "untrained_hidden": True}
HIDDEN_VARIABLES = {"trained": "hidden_trained", "untrained": "hidden_untrained"}


# -- paths ----------------------------------------------------------------------------------
def task_path(task: str) -> str:
    return task


def index_path(task: str) -> str:
    return f"{task}/index"


def probe_path(task: str) -> str:
    return f"{task}/probe"


def search_path(task: str) -> str:
    return f"{task}/search"


def group_path(task: str, group: str) -> str:
    return f"{task}/networks/{group}"


def analysis_path(task: str, name: str) -> str:
    return f"{task}/analysis/{name}"


def weight_dims(name: str, shape: tuple[int, ...]) -> tuple[str, ...]:
    """Dimension names of parameter ``name`` of one network, e.g. ``("W_h_d0", "W_h_d1")``."""
    return tuple(f"{name}_d{k}" for k in range(len(shape)))


# -- encodings ------------------------------------------------------------------------------
def compressors() -> list:
    """Bytes-to-bytes codecs of every chunk: zstd, then a crc32c checksum of the result."""
    return [ZstdCodec(level=ZSTD_LEVEL), Crc32cCodec()]


def as_vlen_str(values) -> np.ndarray:
    """An object array of Python ``str``: stored as Zarr v3 variable-length UTF-8 strings.

    Fixed-width ``<U`` arrays would be stored with a data type that is not yet part of the
    Zarr v3 specification (zarr warns), so every string array goes through here.
    """
    arr = np.asarray(values)
    flat = np.empty(arr.size, dtype=object)
    flat[:] = [str(v) for v in arr.ravel()]
    return flat.reshape(arr.shape)


def _filled(n: int, dtype: str, value: Any) -> np.ndarray:
    if dtype == "str":
        return as_vlen_str([value] * n)
    return np.full(n, value, dtype=dtype)


def whole_encoding(ds: xr.Dataset) -> dict[str, dict]:
    """Encoding that stores every variable (coordinates too) as a single checksummed chunk.

    ``write_empty_chunks`` makes zarr write a chunk even when it equals the fill value (all
    NaN, all ``""``, all 0): every chunk of the store exists, so a missing one is damage.
    """
    enc = {}
    for name, var in ds.variables.items():
        enc[name] = {"compressors": compressors(), "write_empty_chunks": True}
        if var.ndim:
            enc[name]["chunks"] = tuple(max(1, s) for s in var.shape)
    return enc


def per_network_encoding(ds: xr.Dataset, per_network: tuple[str, ...]) -> dict[str, dict]:
    """Like :func:`whole_encoding`, but ``per_network`` variables get one network per chunk."""
    enc = whole_encoding(ds)
    for name in per_network:
        var = ds.variables[name]
        enc[name]["chunks"] = (1, *(max(1, s) for s in var.shape[1:]))
    return enc


# -- the plan -------------------------------------------------------------------------------
def plan_to_dict(plan: TaskPlan) -> dict[str, Any]:
    """The plan as plain JSON types (stored in the task group's ``plan`` attribute)."""
    d = dataclasses.asdict(plan)
    d["configurations"] = [dataclasses.asdict(c) for c in plan.configurations]
    d["seeds"] = list(plan.seeds)
    return _jsonable(d)


def plan_from_dict(d: Mapping[str, Any]) -> TaskPlan:
    """Inverse of :func:`plan_to_dict`."""
    d = dict(d)
    d["configurations"] = tuple(Configuration(**c) for c in d["configurations"])
    d["seeds"] = tuple(d["seeds"])
    return TaskPlan(**d)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj


#: parts of a plan that describe it but do not change any network: the preset's name and
#: description and the list of departures from the paper. A grid file's path appears in them
#: as the user typed it (``grid.toml``, ``./grid.toml``, ``/home/me/grid.toml``), so a resume
#: compares plans without them: by content, not by spelling.
DESCRIPTIVE_PLAN_FIELDS = (
    "preset",
    "metadata.preset_description",
    "metadata.departures_from_paper",
)


def plan_content(d: Mapping[str, Any]) -> dict[str, Any]:
    """A plan dict (from :func:`plan_to_dict`) without its :data:`DESCRIPTIVE_PLAN_FIELDS`."""
    out = {k: v for k, v in d.items() if k not in DESCRIPTIVE_PLAN_FIELDS}
    if isinstance(out.get("metadata"), Mapping):
        out["metadata"] = {
            k: v
            for k, v in out["metadata"].items()
            if f"metadata.{k}" not in DESCRIPTIVE_PLAN_FIELDS
        }
    return out


def plan_differences(stored: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Differences that change networks between two plans (as from :func:`plan_to_dict`).

    Descriptive fields (:data:`DESCRIPTIVE_PLAN_FIELDS`) are ignored; a difference inside
    ``metadata`` is reported by its key (``metadata.fixed_hparams: ...``).
    """
    stored, new = plan_content(stored), plan_content(new)
    out = []
    for key in sorted(set(stored) | set(new)):
        a, b = stored.get(key), new.get(key)
        if a == b:
            continue
        if key == "configurations":
            sa = {Configuration(**c).key for c in a or []}
            sb = {Configuration(**c).key for c in b or []}
            out.append(
                "configurations differ (only in the zoo: "
                f"{sorted(sa - sb) or 'none'}; only in this run: {sorted(sb - sa) or 'none'})"
            )
        elif key == "metadata" and isinstance(a, Mapping) and isinstance(b, Mapping):
            for sub in sorted(set(a) | set(b)):
                if a.get(sub) != b.get(sub):
                    out.append(
                        f"metadata.{sub}: zoo has {_short(a.get(sub))}, "
                        f"this run has {_short(b.get(sub))}"
                    )
        else:
            out.append(f"{key}: zoo has {_short(a)}, this run has {_short(b)}")
    return out


def _short(v: Any, n: int = 60) -> str:
    s = repr(v)
    return s if len(s) <= n else s[: n - 3] + "..."


# -- who is where ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class NetworkSlot:
    """Where one network of the plan lives: its index row and its row in its group."""

    network_id: str
    config: Configuration
    seed: int
    index_row: int
    group: str
    group_row: int


def network_slots(plan: TaskPlan) -> dict[str, NetworkSlot]:
    """Every network of the plan, in index order (configurations in plan order, then seeds)."""
    slots: dict[str, NetworkSlot] = {}
    group_sizes: dict[str, int] = {}
    for config in plan.configurations:
        for seed in plan.seeds:
            nid = f"{config.key}-s{seed:03d}"
            if nid in slots:
                raise ValueError(
                    f"network {nid} appears twice in the plan of task {plan.task!r}; "
                    "each configuration and seed may appear once"
                )
            row = group_sizes.get(config.group, 0)
            group_sizes[config.group] = row + 1
            slots[nid] = NetworkSlot(nid, config, seed, len(slots), config.group, row)
    return slots


def group_names(plan: TaskPlan) -> list[str]:
    """The groups of a plan, in order of first appearance."""
    return list(dict.fromkeys(c.group for c in plan.configurations))


def _network_coords(slots: list[NetworkSlot], status: np.ndarray | None = None) -> dict:
    n = len(slots)
    return {
        "network": ("network", as_vlen_str([s.network_id for s in slots])),
        "arch": ("network", as_vlen_str([s.config.arch for s in slots])),
        "activation": ("network", as_vlen_str([s.config.activation for s in slots])),
        "units": ("network", np.array([s.config.units for s in slots], dtype="int64")),
        "l2": ("network", np.array([s.config.l2 for s in slots], dtype="float64")),
        "seed": ("network", np.array([s.seed for s in slots], dtype="int64")),
        "config": ("network", as_vlen_str([s.config.key for s in slots])),
        "group": ("network", as_vlen_str([s.group for s in slots])),
        "status": ("network", as_vlen_str(["pending"] * n if status is None else status)),
    }


# -- templates ------------------------------------------------------------------------------
def index_template(plan: TaskPlan, task: Task) -> xr.Dataset:
    """The ``/<task>/index`` Dataset of a plan with every network ``pending``."""
    slots = list(network_slots(plan).values())
    n = len(slots)
    data = {name: ("network", _filled(n, dt, v)) for name, (dt, v) in INDEX_VARIABLES.items()}
    data["iterations"] = ("network", np.full(n, plan.iterations, dtype="int64"))
    data["batch_size"] = ("network", np.full(n, plan.batch_size, dtype="int64"))
    ds = xr.Dataset(data, coords=_network_coords(slots))
    ds["performance"].attrs.update(
        name=task.performance_name,
        threshold=float(task.performance_threshold),
        higher_is_better=bool(task.higher_is_better),
    )
    ds["solved"].attrs["description"] = "performance meets the task's threshold"
    ds["diverged_at"].attrs["description"] = "iteration at which the loss became NaN (-1: never)"
    ds.attrs["description"] = f"every network of task {plan.task!r}, in plan order"
    return ds


def search_template(plan: TaskPlan) -> xr.Dataset:
    """The ``/<task>/search`` Dataset: one row per configuration and search trial."""
    rows = [(c, t) for c in plan.configurations for t in range(plan.n_trials)]
    n = len(rows)
    data = {name: ("trial", _filled(n, dt, v)) for name, (dt, v) in SEARCH_VARIABLES.items()}
    data["iterations"] = ("trial", np.full(n, plan.search_iterations, dtype="int64"))
    coords = {
        "config": ("trial", as_vlen_str([c.key for c, _ in rows])),
        "trial_index": ("trial", np.array([t for _, t in rows], dtype="int64")),
        "arch": ("trial", as_vlen_str([c.arch for c, _ in rows])),
        "activation": ("trial", as_vlen_str([c.activation for c, _ in rows])),
        "units": ("trial", np.array([c.units for c, _ in rows], dtype="int64")),
        "l2": ("trial", np.array([c.l2 for c, _ in rows], dtype="float64")),
    }
    ds = xr.Dataset(data, coords=coords)
    ds.attrs["description"] = "random hyper-parameter search trials; `chosen` marks the winner"
    return ds


def probe_dataset(task: Task) -> xr.Dataset:
    """The ``/<task>/probe`` Dataset: the task's fixed probe inputs, targets, mask and labels."""
    probe = task.probe()
    coords = {
        name: ("probe", as_vlen_str(v) if np.asarray(v).dtype.kind in "OUS" else np.asarray(v))
        for name, v in probe.labels.items()
    }
    ds = xr.Dataset(
        {
            "inputs": (("probe", "time", "input"), np.asarray(probe.inputs, dtype="float32")),
            "targets": (("probe", "time", "output"), np.asarray(probe.targets, dtype="float32")),
            "mask": (("probe", "time", "output"), np.asarray(probe.mask, dtype=bool)),
        },
        coords=coords,
    )
    ds.attrs["description"] = "fixed probe inputs, identical for every network of the task"
    return ds


def group_template(
    plan: TaskPlan,
    group: str,
    param_shapes: Mapping[str, tuple[int, ...]],
    n_probe: int,
    n_steps: int,
    n_outputs: int,
    hidden_dtype: str = "float32",
    untrained_hidden: bool = True,
) -> tuple[xr.Dataset, dict[str, dict]]:
    """The lazy template of ``/<task>/networks/<group>`` and its encoding.

    ``hidden_dtype`` is the storage dtype of the hidden states; ``untrained_hidden=False``
    leaves out ``hidden_untrained`` (readers recompute it from the initial weights).

    Per-network variables are dask arrays of the fill value (NaN), so writing the template
    with ``compute=False`` writes metadata and coordinates only; no chunk exists until a
    network is written.
    """
    import dask.array as da

    slots = [s for s in network_slots(plan).values() if s.group == group]
    if not slots:
        raise ValueError(f"group {group!r} has no network in the plan of task {plan.task!r}")
    n = len(slots)
    config = slots[0].config
    sizes = {
        "probe": n_probe,
        "time": n_steps,
        "unit": config.units,
        "output": n_outputs,
        "log_step": plan.n_logged,
    }
    data: dict[str, Any] = {}
    omitted = [] if untrained_hidden else ["hidden_untrained"]
    for name, dims in GROUP_ARRAYS.items():
        if name in omitted:
            continue
        shape = tuple(sizes[d] for d in dims)
        dtype = hidden_dtype if name.startswith("hidden_") else "float32"
        data[name] = (("network", *dims), _nan_array(da, (n, *shape), dtype))
    for pname, pshape in param_shapes.items():
        dims = weight_dims(pname, tuple(pshape))
        for prefix in WEIGHT_PREFIXES.values():
            data[prefix + pname] = (("network", *dims), _nan_array(da, (n, *pshape), "float32"))
    coords = _network_coords(slots)
    coords["loss_iteration"] = (
        "log_step",
        np.arange(plan.n_logged, dtype="int64") * plan.loss_every,
    )
    ds = xr.Dataset(data, coords=coords)
    ds.attrs.update(
        arch=config.arch,
        activation=config.activation,
        units=int(config.units),
        parameters=list(param_shapes),
        hidden_dtype=hidden_dtype,
        omitted=omitted,
    )
    ds["hidden_trained"].attrs["description"] = (
        "readout-facing state h on the probe inputs, trained weights"
    )
    if untrained_hidden:
        ds["hidden_untrained"].attrs["description"] = (
            "the same with the initial (untrained) weights"
        )
    ds["outputs_trained"].attrs["description"] = (
        "network output on the probe inputs, trained weights"
    )
    ds["loss_curve"].attrs["description"] = "training loss at loss_iteration (NaN after divergence)"
    per_network = (*data, "status")
    return ds, per_network_encoding(ds, per_network)


def _nan_array(da, shape: tuple[int, ...], dtype: str):
    chunks = (1, *(max(1, s) for s in shape[1:]))
    return da.full(shape, np.nan, dtype=dtype, chunks=chunks)
