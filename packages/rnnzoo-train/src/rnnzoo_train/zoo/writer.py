"""``ZarrZooWriter``: the :class:`~rnnzoo_train.writer.ZooWriter` that writes a Zarr v3 zoo.

Write protocol (what makes resume and distribution safe)
--------------------------------------------------------
1. ``prepare_task`` validates everything first (cells, shapes, plan), then writes the
   *template* of the task: every network of the plan with status ``pending``, every array
   defined but no chunk written. The task name is added to the root attribute ``tasks``
   last, which marks the template complete; a task group that exists without being listed
   there is an interrupted template and is rebuilt. Then the metadata is re-consolidated.
2. ``write_results`` writes each network into its own row of its group (one network per
   chunk, so no chunk is shared between two networks), and only then updates the index.
   The index status is the record of completion (``ok`` or ``diverged``: a finished result,
   skipped on resume): a network whose group row was written but whose index row was not
   (a kill in between) is still ``pending`` and is retrained, which rewrites the same values.
3. Chunks are written by zarr with an atomic rename, so a kill never leaves a torn chunk.
4. One process writes a zoo at a time (``fcntl`` lock, released by the kernel if the
   process dies); with Dask, workers train and the client writes (``docs/scaling.md``).
"""

from __future__ import annotations

import datetime as _dt
import shutil
import sys
import threading
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
import zarr

from rnnzoo_train.records import (
    HyperParameters,
    NetworkResult,
    SearchTrial,
    TaskPlan,
)
from rnnzoo_train.tasks.base import Task

from . import layout
from .errors import ZooError, ZooIntegrityError, ZooLocationError, ZooPlanError, ZooSchemaError
from .store import WriterLock, checked, consolidate, every_chunk_written, quiet_zarr

_TEMPLATE_ATTR = "tasks"


def generator_versions() -> dict[str, str]:
    """Versions of everything that determines the numbers in a zoo."""
    out = {"python": sys.version.split()[0]}
    for dist in ("rnnzoo-train", "torch", "numpy", "zarr", "xarray"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:  # pragma: no cover
            out[dist] = "unknown"
    return out


def _version_of(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:  # pragma: no cover - the registry found it installed
        return "unknown"


def _check_storage(storage: Mapping[str, Any]) -> None:
    unknown = set(storage) - set(layout.STORAGE_DEFAULTS)
    if unknown:
        raise ZooPlanError(
            f"unknown zoo_storage option(s) {sorted(unknown)}; "
            f"known: {sorted(layout.STORAGE_DEFAULTS)}"
        )
    dtype = storage.get("hidden_dtype", "float32")
    if dtype not in ("float32", "float16"):
        raise ZooPlanError(f"hidden_dtype must be 'float32' or 'float16', not {dtype!r}")
    if not isinstance(storage.get("untrained_hidden", True), bool):
        raise ZooPlanError("untrained_hidden must be true or false")


def write_fill_chunks(store: zarr.abc.store.Store, group: str, names: list[str]) -> None:
    """Write every chunk of arrays ``names`` of ``group`` with the array's fill value.

    The template's promise (``docs/zoo-format.md`` section 1): every chunk exists, so a
    missing one is damage. One chunk per array is encoded by zarr (zstd + crc32c); its
    bytes are then stored under every other chunk key (a regular grid stores edge chunks at
    full size, so all fill chunks of an array are the same bytes): ~1 ms per chunk, e.g.
    ~30 s for the 40,000 chunks of a 2,880-network ``paper`` task.
    """
    import asyncio
    import itertools

    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    node = zarr.open_group(store, path=group, mode="r+", zarr_format=3, use_consolidated=False)
    for name in names:
        arr = node[name].with_config({"write_empty_chunks": True})
        if not arr.size:
            continue
        first = tuple(slice(0, min(c, n)) for c, n in zip(arr.chunks, arr.shape, strict=True))
        arr[first] = arr.fill_value
        grid = [range(-(-n // c)) for c, n in zip(arr.chunks, arr.shape, strict=True)]
        keys = [f"{arr.path}/{arr.metadata.encode_chunk_key(c)}" for c in itertools.product(*grid)]
        data = sync(store.get(keys[0], default_buffer_prototype()))

        async def copy(keys: list[str], data=data) -> None:
            await asyncio.gather(*(store.set(k, data) for k in keys))

        for start in range(1, len(keys), 1024):
            sync(copy(keys[start : start + 1024]))


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class ZarrZooWriter:
    """Write a zoo to a Zarr v3 directory store (implements ``ZooWriter``).

    Parameters
    ----------
    path : str or path
        The zoo directory (conventionally ``*.zarr``). Created on the first
        :meth:`prepare_task`; if it already holds a zoo, generation resumes into it.
    hidden_dtype : {"float32", "float16"}, optional
        Storage dtype of the hidden states (the largest arrays). ``float32`` (the default)
        keeps them exactly as computed; ``float16`` halves them (relative rounding
        <= 2**-11; the exact values can be recomputed from the float32 weights).
    untrained_hidden : bool, optional
        Store ``hidden_untrained`` (default ``True``). ``False`` leaves it out; the reader
        then recomputes it from the stored initial weights.

    Both default to ``plan.metadata["zoo_storage"]`` when the plan sets them (the ``paper``
    preset's way of keeping a 2,880-network task downloadable), else to the values above.
    Weights are always float32 and every chunk is zstd-compressed with a crc32c checksum.

    Notes
    -----
    Nothing is written before :meth:`prepare_task`, and a failing :meth:`prepare_task`
    removes what it created, so a bad configuration never leaves a half-made store.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        hidden_dtype: str | None = None,
        untrained_hidden: bool | None = None,
    ):
        self.path = Path(path)
        self._options = {"hidden_dtype": hidden_dtype, "untrained_hidden": untrained_hidden}
        _check_storage({k: v for k, v in self._options.items() if v is not None})
        self._storage: dict[str, dict[str, Any]] = {}
        self._lock = WriterLock(self.path)
        self._plans: dict[str, TaskPlan] = {}
        self._slots: dict[str, dict[str, layout.NetworkSlot]] = {}
        self._shapes: dict[str, dict[str, dict[str, tuple[int, ...]]]] = {}
        self._index: dict[str, dict[str, np.ndarray]] = {}
        self._search: dict[str, dict[str, np.ndarray]] = {}
        self._search_rows: dict[str, dict[tuple[str, int], int]] = {}
        self._table_lock = threading.Lock()
        self._fresh_dir = False
        self._notes: dict[str, dict[str, str]] = {}

    # -- context manager ---------------------------------------------------------------------
    def __enter__(self) -> ZarrZooWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ZarrZooWriter({str(self.path)!r}, tasks={list(self._plans)})"

    # -- ZooWriter ---------------------------------------------------------------------------
    def prepare_task(self, plan: TaskPlan, task: Task) -> None:
        """Create the template of ``plan`` (or check it against an existing zoo).

        Raises
        ------
        ZooPlanError
            (a ``ValueError``) if the zoo already holds this task with a different plan or
            task configuration; the message lists the differences.
        ValueError
            For an invalid plan (unknown cell, duplicate network); nothing is left behind.
        """
        if plan.task != task.name:
            raise ZooPlanError(f"plan is for task {plan.task!r} but the task is {task.name!r}")
        # 1. everything that can fail on a bad plan, before touching the disk
        slots = layout.network_slots(plan)
        templates = self._templates(plan, task)
        index = layout.index_template(plan, task)
        search = layout.search_template(plan)
        probe = layout.probe_dataset(task)
        plan_dict = layout.plan_to_dict(plan)
        task_config = layout._jsonable(task.config())

        self._fresh_dir = not self.path.exists()
        if not self._plans:
            self._refuse_foreign()  # before the lock, whose file would be a write
        self._lock.acquire()
        try:
            self._open_task(plan, task, plan_dict, task_config, templates, index, search, probe)
        except BaseException:
            if not self._plans:  # no other task of this writer holds the lock
                self._lock.release()
            raise
        self._plans[plan.task] = plan
        self._slots[plan.task] = slots
        omitted = [] if self._storage[plan.task]["untrained_hidden"] else ["hidden_untrained"]
        self._shapes[plan.task] = {
            g: {n: tuple(v.shape[1:]) for n, v in ds.data_vars.items() if n not in omitted}
            for g, (ds, _) in templates.items()
        }

    def check(self, plan: TaskPlan, task: Task) -> None:
        """Raise what :meth:`prepare_task` would raise for this output, reading only.

        ``rnnzoo-train generate`` calls it for every task before it prints or starts
        anything: a path that is not a zoo, a zoo of another plan or version, a damaged
        index or search table (:class:`ZooIntegrityError`) are refused with one line, and
        nothing is written (not even the writer lock). A new zoo or task passes.
        """
        if plan.task != task.name:
            raise ZooPlanError(f"plan is for task {plan.task!r} but the task is {task.name!r}")
        layout.network_slots(plan)
        templates = self._templates(plan, task)
        self._refuse_foreign()
        if not (self.path / "zarr.json").is_file():
            return
        attrs = self._root_attrs()
        self._check_generator(attrs)
        if plan.task not in attrs.get(_TEMPLATE_ATTR, []):
            return
        plan_dict, task_config = layout.plan_to_dict(plan), layout._jsonable(task.config())
        try:
            self._storage[plan.task] = self._storage_for(plan)
            try:
                self._check_existing(plan, plan_dict, task_config, templates)
            except ZooError:
                raise
            except Exception as err:  # a damaged node
                raise self._unreadable(f"task {plan.task!r}", err) from None
            self._load_tables(plan.task)
        finally:  # prepare_task reads them again, under the lock
            for table in (self._storage, self._index, self._search, self._search_rows):
                table.pop(plan.task, None)

    def _open_task(
        self,
        plan: TaskPlan,
        task: Task,
        plan_dict: dict,
        task_config: dict,
        templates: Mapping[str, tuple[xr.Dataset, dict]],
        index: xr.Dataset,
        search: xr.Dataset,
        probe: xr.Dataset,
    ) -> None:
        """With the lock held: check an existing zoo, or write the task's template."""
        existed = (self.path / "zarr.json").is_file()
        if not existed and self.path.exists() and any(self._foreign_entries()):
            raise ZooLocationError(
                f"{self.path} exists and is not an rnnzoo zoo; choose a new output path"
            )
        root_attrs = self._root_attrs() if existed else None
        if root_attrs is not None:
            self._check_generator(root_attrs)
        self._storage[plan.task] = self._storage_for(plan)
        if root_attrs is not None and plan.task in root_attrs.get(_TEMPLATE_ATTR, []):
            try:
                self._check_existing(plan, plan_dict, task_config, templates)
            except ZooError:
                raise
            except Exception as err:  # a damaged node: never guess, never overwrite
                raise self._unreadable(f"task {plan.task!r}", err) from None
        else:
            try:
                self._write_template(
                    plan, task, plan_dict, task_config, templates, index, search, probe, existed
                )
            except BaseException:
                self._remove_partial_task(plan.task, existed)
                raise
        self._load_tables(plan.task)

    def completed(self, task: str) -> set[str]:
        """Ids of the networks of ``task`` with a finished result: status ``ok`` or ``diverged``.

        A diverged network is a result, not a fault (its status, last finite loss and
        ``diverged_at`` are recorded), and retraining it would diverge again identically, so a
        resumed generation skips it; ``failed`` and ``pending`` networks are retrained.
        """
        self._require(task)
        ids = self._index[task]["network"]
        status = self._index[task]["status"]
        finished = layout.FINISHED_STATUSES
        return {str(i) for i, s in zip(ids, status, strict=True) if s in finished}

    def search(self, task: str) -> list[SearchTrial]:
        """The search trials of ``task`` recorded so far (not the pending ones)."""
        self._require(task)
        configs = {c.key: c for c in self._plans[task].configurations}
        s = self._search[task]
        out = []
        for row in range(len(s["config"])):
            if s["status"][row] == "pending":
                continue
            out.append(
                SearchTrial(
                    task=task,
                    config=configs[str(s["config"][row])],
                    trial=int(s["trial_index"][row]),
                    seed=int(s["seed"][row]),
                    hparams=HyperParameters(
                        clip=float(s["clip"][row]),
                        lr=float(s["lr"][row]),
                        decay=float(s["decay"][row]),
                        momentum=float(s["momentum"][row]),
                    ),
                    iterations=int(s["iterations"][row]),
                    status=str(s["status"][row]),  # type: ignore[arg-type]
                    val_loss=float(s["val_loss"][row]),
                    chosen=bool(s["chosen"][row]),
                )
            )
        return out

    def write_search(self, task: str, trials: Sequence[SearchTrial]) -> None:
        """Record search trials (idempotent: a trial written again is overwritten)."""
        self._require(task)
        with self._table_lock:
            self._record_trials(task, trials)

    def _record_trials(self, task: str, trials: Sequence[SearchTrial]) -> None:
        s = self._search[task]
        rows = self._search_rows[task]
        for t in trials:
            key = (t.config.key, int(t.trial))
            if t.task != task:
                raise ZooPlanError(f"search trial of task {t.task!r} written to task {task!r}")
            if key not in rows:
                raise ZooPlanError(
                    f"search trial {t.trial} of {t.config.key} is not in the plan of task "
                    f"{task!r} ({self._plans[task].n_trials} trials per configuration)"
                )
            r = rows[key]
            s["seed"][r] = t.seed
            s["clip"][r], s["lr"][r] = t.hparams.clip, t.hparams.lr
            s["decay"][r], s["momentum"][r] = t.hparams.decay, t.hparams.momentum
            s["iterations"][r] = t.iterations
            s["status"][r] = t.status
            s["val_loss"][r] = t.val_loss
            s["chosen"][r] = t.chosen
        if trials:
            self._write_table(
                layout.search_path(task),
                s,
                "trial",
                list(layout.SEARCH_VARIABLES),
                last=("status", "chosen"),
            )

    def write_results(self, task: str, results: Sequence[NetworkResult]) -> None:
        """Write finished networks: group rows first, then the index (idempotent)."""
        self._require(task)
        rows = []
        for r in results:
            slot = self._slot(task, r)
            region = self._network_dataset(task, slot, r)
            with quiet_zarr():
                region.to_zarr(
                    self.path,
                    group=layout.group_path(task, slot.group),
                    region={"network": slice(slot.group_row, slot.group_row + 1)},
                    mode="r+",
                    consolidated=False,
                    zarr_format=3,
                    # an all-NaN row (a failed network) is still written: every written
                    # network has all its chunks, which `verify` relies on
                    write_empty_chunks=True,
                )
            rows.append((slot, r))
        if not rows:
            return
        with self._table_lock:  # region writes above may run in parallel; the index may not
            self._update_index(task, rows)

    def _update_index(self, task: str, rows: list[tuple[layout.NetworkSlot, NetworkResult]]):
        idx = self._index[task]
        stamp = _now()
        for slot, r in rows:
            i = slot.index_row
            h = r.spec.hparams
            values: dict[str, Any] = {
                "status": r.status,
                "clip": h.clip,
                "lr": h.lr,
                "decay": h.decay,
                "momentum": h.momentum,
                "iterations": r.spec.iterations,
                "batch_size": r.spec.batch_size,
                "train_loss": r.train_loss,
                "val_loss": r.val_loss,
                "test_loss": r.test_loss,
                "last_finite_loss": r.last_finite_loss,
                "performance": r.performance,
                "solved": bool(r.solved),
                "diverged_at": r.diverged_at,
                "train_seconds": r.train_seconds,
                "message": "; ".join(
                    m for m in (r.message, self._notes.get(task, {}).pop(r.network_id, "")) if m
                ),
                "written_at": stamp,
            }
            for name, v in values.items():
                idx[name][i] = v
        self._write_table(
            layout.index_path(task),
            idx,
            "network",
            ["status", *layout.INDEX_VARIABLES],
            last=("status",),
        )

    def close(self) -> None:
        """Re-consolidate the metadata and release the lock."""
        if self._lock.held:
            if (self.path / "zarr.json").is_file():
                consolidate(self.path)
            self._lock.release()

    # -- templates ---------------------------------------------------------------------------
    def _storage_for(self, plan: TaskPlan) -> dict[str, Any]:
        """Storage choices: writer arguments, else the plan's ``zoo_storage``, else defaults."""
        from_plan = dict(plan.metadata.get("zoo_storage", {}))
        _check_storage(from_plan)
        storage = {**layout.STORAGE_DEFAULTS, **from_plan}
        storage.update({k: v for k, v in self._options.items() if v is not None})
        return storage

    def _templates(self, plan: TaskPlan, task: Task) -> dict[str, tuple[xr.Dataset, dict]]:
        from rnnzoo_train.cells.registry import get_architecture  # no torch needed to write

        from .networks import PLUGIN_ATTR, PLUGIN_VERSION_ATTR

        storage = self._storage_for(plan)

        probe = task.probe()
        n_probe, n_steps = probe.inputs.shape[:2]
        out = {}
        for group in layout.group_names(plan):
            config = next(c for c in plan.configurations if c.group == group)
            arch = get_architecture(config.arch)
            shapes = arch.param_shapes(config.units, task.n_inputs, task.n_outputs)
            out[group] = layout.group_template(
                plan,
                group,
                shapes,
                n_probe=n_probe,
                n_steps=n_steps,
                n_outputs=task.n_outputs,
                hidden_dtype=storage["hidden_dtype"],
                untrained_hidden=storage["untrained_hidden"],
            )
            if arch.plugin:  # readers without the plugin name it (zoo.networks)
                attrs = out[group][0].attrs
                attrs[PLUGIN_ATTR] = arch.plugin
                attrs[PLUGIN_VERSION_ATTR] = _version_of(arch.plugin)
        return out

    def _write_template(
        self,
        plan: TaskPlan,
        task: Task,
        plan_dict: dict,
        task_config: dict,
        templates: Mapping[str, tuple[xr.Dataset, dict]],
        index: xr.Dataset,
        search: xr.Dataset,
        probe: xr.Dataset,
        existed: bool,
    ) -> None:
        store = zarr.storage.LocalStore(self.path)
        with quiet_zarr():
            if not existed:
                zarr.create_group(  # not open_group(mode="w"): that empties the directory
                    store,
                    zarr_format=3,
                    attributes={
                        "rnnzoo_schema_version": layout.SCHEMA_VERSION,
                        "rnnzoo_generator": generator_versions(),
                        "preset": plan.preset,
                        "created": _now(),
                        _TEMPLATE_ATTR: [],
                    },
                )
            root = zarr.open_group(store, mode="r+", zarr_format=3, use_consolidated=False)
            if plan.task in root:
                del root[plan.task]  # an interrupted template: rebuild it
            zarr.open_group(
                store,
                path=layout.task_path(plan.task),
                mode="w",
                zarr_format=3,
                attributes={
                    "task_config": task_config,
                    "plan": plan_dict,
                    "performance_name": task.performance_name,
                    "performance_threshold": float(task.performance_threshold),
                    "higher_is_better": bool(task.higher_is_better),
                    "n_networks": len(index["network"]),
                    "groups": layout.group_names(plan),
                    "storage": self._storage_for(plan),
                },
            )
            nodes = [
                (layout.probe_path(plan.task), probe, layout.whole_encoding(probe)),
                (layout.search_path(plan.task), search, layout.whole_encoding(search)),
                *((layout.group_path(plan.task, g), ds, enc) for g, (ds, enc) in templates.items()),
                (layout.index_path(plan.task), index, layout.whole_encoding(index)),
            ]
            for path, ds, enc in nodes:
                ds.to_zarr(
                    store,
                    group=path,
                    mode="w",
                    consolidated=False,
                    zarr_format=3,
                    compute=False,
                    encoding=enc,
                    # every chunk is written, even one equal to the fill value (all NaN, all
                    # "", all 0): a missing chunk is then always damage (zoo-format.md §1)
                    write_empty_chunks=True,
                )
            for g, (ds, _) in templates.items():  # pending networks' rows: fill values
                write_fill_chunks(store, layout.group_path(plan.task, g), list(ds.data_vars))
            root = zarr.open_group(store, mode="r+", zarr_format=3, use_consolidated=False)
            tasks = [*root.attrs.get(_TEMPLATE_ATTR, []), plan.task]
            root.attrs[_TEMPLATE_ATTR] = tasks
        consolidate(store)

    def _remove_partial_task(self, task: str, existed: bool) -> None:
        """Undo a failed template: the task group, and the whole store if we created it."""
        attrs = self._root_attrs() if (self.path / "zarr.json").is_file() else None
        if attrs is not None and task not in attrs.get(_TEMPLATE_ATTR, []):
            shutil.rmtree(self.path / task, ignore_errors=True)
        if not existed and not self._plans and (attrs is None or not attrs.get(_TEMPLATE_ATTR)):
            if self._fresh_dir:
                shutil.rmtree(self.path, ignore_errors=True)
            else:  # the user's (empty) directory: remove only what we wrote
                (self.path / "zarr.json").unlink(missing_ok=True)

    # -- existing zoos -----------------------------------------------------------------------
    def _refuse_foreign(self) -> None:
        """Refuse a path that is not a zoo (or cannot be read as one) without writing to it."""
        if not self.path.exists():
            return
        if not self.path.is_dir():
            raise ZooLocationError(f"{self.path} is a file, not a zoo; choose a new output path")
        if (self.path / "zarr.json").is_file():
            self._root_attrs()  # not a zoo, another schema, unreadable: one line each
        elif any(self._foreign_entries()):
            raise ZooLocationError(
                f"{self.path} exists and is not an rnnzoo zoo; choose a new output path"
            )

    def _unreadable(self, what: str, err: BaseException) -> ZooIntegrityError:
        gist = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return ZooIntegrityError(
            f"{self.path}: cannot read {what} ({type(err).__name__}: {gist[:120]}); a damaged "
            f"zarr.json or chunk: run `rnnzoo-train verify {self.path}`"
        )

    def _foreign_entries(self):
        return (p for p in self.path.iterdir() if p.name != ".rnnzoo-writer.lock")

    def _root_attrs(self) -> dict[str, Any]:
        with quiet_zarr():
            try:
                root = zarr.open_group(
                    zarr.storage.LocalStore(self.path, read_only=True),
                    mode="r",
                    zarr_format=3,
                    use_consolidated=False,
                )
            except Exception as err:  # a truncated root zarr.json
                raise self._unreadable("the root zarr.json", err) from None
        attrs = dict(root.attrs)
        version_ = attrs.get("rnnzoo_schema_version")
        if version_ is None:
            raise ZooSchemaError(
                f"{self.path} is a Zarr store but not an rnnzoo zoo (no rnnzoo_schema_version); "
                "choose a new output path"
            )
        if int(str(version_).split(".")[0]) != layout.SCHEMA_MAJOR:
            raise ZooSchemaError(
                f"{self.path} has zoo schema {version_}; this rnnzoo-train writes schema "
                f"{layout.SCHEMA_VERSION}: generate into a new output path"
            )
        return attrs

    def _check_generator(self, attrs: Mapping[str, Any]) -> None:
        stored = attrs.get("rnnzoo_generator", {}).get("rnnzoo-train")
        current = generator_versions()["rnnzoo-train"]
        if stored is not None and stored != current:
            raise ZooPlanError(
                f"{self.path} was generated by rnnzoo-train {stored}, this is {current}; "
                "networks trained by different versions may differ, so resume with "
                f"rnnzoo-train {stored} or generate into a new output path"
            )

    def _check_existing(
        self,
        plan: TaskPlan,
        plan_dict: dict,
        task_config: dict,
        templates: Mapping[str, tuple[xr.Dataset, dict]],
    ) -> None:
        with quiet_zarr():
            store = zarr.storage.LocalStore(self.path, read_only=True)
            group = zarr.open_group(
                store, path=plan.task, mode="r", zarr_format=3, use_consolidated=False
            )
        problems = []
        stored_storage = dict(group.attrs.get("storage", layout.STORAGE_DEFAULTS))
        explicit = {k: v for k, v in self._options.items() if v is not None}
        clash = {k: v for k, v in explicit.items() if stored_storage.get(k) != v}
        if clash:
            problems.append(f"storage: zoo has {stored_storage}, this writer asks for {clash}")
        self._storage[plan.task] = stored_storage
        stored_config = dict(group.attrs.get("task_config", {}))
        if stored_config != task_config:
            problems.append(f"task_config: zoo has {stored_config}, this run has {task_config}")
        problems += layout.plan_differences(dict(group.attrs.get("plan", {})), plan_dict)
        if problems:
            raise ZooPlanError(
                f"{self.path} holds task {plan.task!r} with a different plan ("
                + "; ".join(problems)
                + "); resume with the original preset or generate into a new output path"
            )
        for g, (ds, _) in templates.items():
            node = group[f"networks/{g}"]
            for name, var in ds.data_vars.items():
                if name in node.attrs.get("omitted", []):
                    continue
                if name not in node or tuple(node[name].shape) != var.shape:
                    raise ZooSchemaError(
                        f"{self.path}: array {plan.task}/networks/{g}/{name} does not have the "
                        f"shape {var.shape} this version expects; generate into a new path"
                    )

    def _load_tables(self, task: str) -> None:
        # read through the IntegrityStore: a resumed generation refuses a damaged index or
        # search table (one line naming the array; `verify --repair` makes it resumable)
        store = checked(zarr.storage.LocalStore(self.path, read_only=True), location=str(self.path))
        store.strict = every_chunk_written(self._root_attrs())

        def load(path: str, dim: str) -> dict[str, np.ndarray]:
            with quiet_zarr():
                try:
                    ds = xr.open_dataset(
                        store, group=path, engine="zarr", consolidated=False, zarr_format=3
                    ).load()
                except ZooError:
                    raise
                except Exception as err:  # e.g. a truncated zarr.json of a column
                    raise self._unreadable(path, err) from None
            cols = {}
            for name, var in ds.variables.items():
                if var.dims != (dim,):
                    continue
                values = var.values
                if values.dtype.kind in "OUT":
                    values = layout.as_vlen_str(values)
                cols[name] = values.copy()
            ds.close()
            return cols

        self._index[task] = load(layout.index_path(task), "network")
        self._search[task] = load(layout.search_path(task), "trial")
        s = self._search[task]
        self._search_rows[task] = {
            (str(c), int(t)): r
            for r, (c, t) in enumerate(zip(s["config"], s["trial_index"], strict=True))
        }

    # -- writing -----------------------------------------------------------------------------
    def _require(self, task: str) -> None:
        if task not in self._plans:
            raise RuntimeError(f"prepare_task() was not called for task {task!r}")

    def _slot(self, task: str, r: NetworkResult) -> layout.NetworkSlot:
        if r.spec.task != task:
            raise ZooPlanError(
                f"network {r.network_id} is a result of task {r.spec.task!r}, not of task {task!r}"
            )
        if r.spec.role != "seed":
            raise ZooPlanError(
                f"{r.network_id} is a search trial; record trials with write_search()"
            )
        slot = self._slots[task].get(r.network_id)
        if slot is None:
            raise ZooPlanError(f"network {r.network_id} is not in the plan of task {task!r}")
        if r.status not in ("ok", "diverged", "failed"):
            raise ZooPlanError(
                f"network {r.network_id}: status {r.status!r} cannot be written "
                "(use ok, diverged or failed)"
            )
        return slot

    def _network_dataset(self, task: str, slot: layout.NetworkSlot, r: NetworkResult) -> xr.Dataset:
        """One network's row of its group, checked against the template's shapes."""
        shapes = self._shapes[task][slot.group]
        given: dict[str, Any] = {
            "hidden_trained": r.hidden_trained,
            "hidden_untrained": r.hidden_untrained,
            "outputs_trained": r.outputs_trained,
            "loss_curve": r.loss_curve,
        }
        for prefix, params in (("initial_", r.params_initial), ("final_", r.params_final)):
            for name, value in (params or {}).items():
                if prefix + name not in shapes:
                    raise ZooPlanError(
                        f"network {r.network_id}: parameter {name!r} is not a parameter of "
                        f"{slot.config.arch} cells ({', '.join(self._param_names(shapes))})"
                    )
                given[prefix + name] = value
        dims = {
            name: ("network", *layout.GROUP_ARRAYS[name])
            if name in layout.GROUP_ARRAYS
            else ("network", *layout.weight_dims(name.split("_", 1)[1], shape))
            for name, shape in shapes.items()
        }
        data = {}
        for name, shape in shapes.items():
            value = given.get(name)
            arr = None if value is None else np.asarray(value)
            if arr is None or arr.shape != shape:
                if r.status == "ok":
                    got = "missing" if arr is None else f"shape {arr.shape}"
                    raise ZooPlanError(
                        f"network {r.network_id}: {name} is {got}, expected shape {shape}"
                    )
                arr = np.full(shape, np.nan)  # failed/diverged without this array
            dtype = self._storage[task]["hidden_dtype"] if name.startswith("hidden_") else "float32"
            with np.errstate(over="ignore"):
                stored = arr.astype(dtype, copy=False)
            if dtype == "float16" and np.any(np.isinf(stored) & np.isfinite(arr)):
                self._notes.setdefault(task, {})[r.network_id] = (
                    f"{name} exceeds the float16 range (|h| > 65504) and is stored as +-inf "
                    "there; recompute it from the weights"
                )
            data[name] = (dims[name], stored[None])
        coords = {"status": ("network", layout.as_vlen_str([r.status]))}
        return xr.Dataset(data, coords=coords)

    @staticmethod
    def _param_names(shapes: Mapping[str, tuple]) -> list[str]:
        return [n.removeprefix("final_") for n in shapes if n.startswith("final_")]

    def _write_table(
        self, path: str, cols: dict[str, np.ndarray], dim: str, names: list[str], last: tuple
    ) -> None:
        """Re-write columns ``names`` of a whole single-chunk table (index or search).

        Each column is its own chunk file, replaced atomically, but a kill can land between
        two columns. The columns in ``last`` (the ones that mark a row complete: ``status``,
        ``chosen``) are therefore written in a second step, after every other column: a row
        never reads as complete with some of its values missing.
        """
        n = len(cols[names[0]])
        # the index carries status as a coordinate (architecture.md section 4)
        coords = {"status"} if dim == "network" else set()
        for step in ([c for c in names if c not in last], [c for c in names if c in last]):
            table = xr.Dataset(
                {name: (dim, cols[name]) for name in step if name not in coords},
                coords={name: (dim, cols[name]) for name in step if name in coords},
            )
            with quiet_zarr():
                table.to_zarr(
                    self.path,
                    group=path,
                    region={dim: slice(0, n)},
                    mode="r+",
                    consolidated=False,
                    zarr_format=3,
                    write_empty_chunks=True,  # an all-fill column is written too
                )
