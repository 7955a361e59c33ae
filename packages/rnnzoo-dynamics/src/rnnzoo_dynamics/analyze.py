"""Zoo-scale driver: every dynamics analysis for every network of a task, into the zoo.

``analyze_zoo(location, task)`` (CLI: ``rnnzoo-dynamics analyze ZOO --task T``):

1. reads the task's index; networks whose training status is not ``ok`` (diverged, failed,
   pending) are recorded as ``skipped`` with the reason, never analysed;
2. splits the rest into *work units* of at most ``unit_size`` networks of one group (one
   cell type and width) and maps :func:`run_unit` over them with one of the trainer's
   runners (in process, worker processes, or Dask workers: one torch thread each). Workers
   open the zoo themselves and return xarray Datasets; the client is the only writer;
3. a unit that raises is split into single networks and retried; a network that still fails
   is recorded as ``failed`` with the error message. A network without any fixed or slow
   point is recorded as ``no_fixed_point``. Nothing stops the run;
4. writes the results into the zoo (``/<task>/analysis/<name>``) every ``flush_seconds``
   and at the end, merged with what was already stored, every analysis of the task in ONE
   transaction (:meth:`Zoo.write_analyses`: all of them or none, whenever the run is
   killed). The zoo's writer lock (or the analysis store's) is taken before anything is
   computed and held for the whole run, so a run never computes what it cannot store. An
   interrupted run loses at most the work since the last flush, and a rerun skips every
   network that is stored completely: recorded ``ok`` or ``no_fixed_point`` in the summary
   AND present in every other analysis of the task, with as many fixed points as the
   summary counts (resume from what is stored, not from the summary alone). Stored results
   computed with different options are never mixed with new ones.

Analyses written (suffix ``-untrained`` for the initial weights): ``dynamics_summary``,
``fixed_points``, and those of the task's analysis plugin
(:mod:`rnnzoo_dynamics.task_analyses`; listed in ``docs/architecture.md`` §6). A task
without a plugin gets the generic analyses, and the run's report says so.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from rnnzoo_dynamics._checks import MAX_UNIT_SIZE, check_float, check_int
from rnnzoo_dynamics.graphs import modal_node_count
from rnnzoo_dynamics.population import AnalysisOptions, analysis_names, analyze_population
from rnnzoo_dynamics.results import NETWORK_COORDS, concat_results, summary_dataset
from rnnzoo_dynamics.task_analyses import GENERIC, TaskAnalysisPluginError, get_task_analysis

SUMMARY = "dynamics_summary"
#: analysis statuses that a rerun does not recompute
FINAL_STATUSES = ("ok", "no_fixed_point")


class AnalysisError(Exception):
    """A user-facing problem with an analysis run (one line, actionable)."""


def options_json(options: AnalysisOptions) -> str:
    """The options as canonical JSON (stored with the results; reruns must match)."""

    def default(o: Any) -> Any:
        return str(o).replace("torch.", "")

    return json.dumps(asdict(options), sort_keys=True, default=default)


@dataclass(frozen=True)
class AnalysisUnit:
    """Networks of one group analysed together (picklable; workers open the zoo)."""

    location: str | tuple[str, ...]
    analysis_store: str | None
    task: str
    group: str
    network_ids: tuple[str, ...]
    which: str
    options: AnalysisOptions = field(default_factory=AnalysisOptions)

    @property
    def label(self) -> str:
        return f"{self.group}[{len(self.network_ids)}]"


def _open(location: str | tuple[str, ...], analysis_store: str | None):
    from rnnzoo_train.zoo import open_zoo

    loc = list(location) if isinstance(location, tuple) else location
    return open_zoo(loc, analysis_store=analysis_store)


def run_unit(unit: AnalysisUnit) -> dict[str, xr.Dataset]:
    """Analyse one work unit (runs in a worker; pure apart from reading the zoo)."""
    import torch

    from rnnzoo_train.runners import one_thread
    from rnnzoo_train.zoo import ZooError

    one_thread()
    zoo = _open(unit.location, unit.analysis_store)
    ids = list(unit.network_ids)
    try:
        cell, params = zoo.population(unit.task, ids, unit.which, dtype=torch.float64)
    except (KeyError, OSError, ValueError, ZooError) as err:
        raise RuntimeError(
            f"cannot read group {unit.group} of task {unit.task} from the zoo "
            f"({type(err).__name__}: {err}); check it with `rnnzoo-train verify`"
        ) from err
    coords = zoo.index(unit.task).loc[ids, list(NETWORK_COORDS)]
    return analyze_population(
        zoo.task(unit.task),
        cell,
        params,
        ids,
        probe=zoo.probe(unit.task),
        network_coords=coords,
        options=unit.options,
    )


@dataclass
class AnalysisReport:
    """What an analysis run did."""

    task: str
    analysed: int = 0
    resumed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    no_fixed_point: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    modal_nodes: int | None = None
    non_modal: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: the task-analysis plugin's name; ``"generic"`` when the task has none
    task_analysis: str = ""

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        out = [
            f"{self.task}: analysed {self.analysed} network(s), {self.resumed} already done, "
            f"{len(self.skipped)} skipped, {len(self.failed)} failed, "
            f"{len(self.no_fixed_point)} without fixed points ({self.seconds:.1f} s)"
        ]
        for nid, why in self.skipped[:10]:
            out.append(f"  skipped {nid}: {why}")
        for nid, why in self.failed[:10]:
            out.append(f"  FAILED  {nid}: {why}")
        for nid in self.no_fixed_point[:10]:
            out.append(f"  no fixed point: {nid}")
        if self.task_analysis == GENERIC:
            out.append(
                f"  task {self.task!r} has no analysis plugin: generic analyses only (fixed and "
                "slow points per condition, stability, linearisations, nearest-neighbour graphs)"
            )
        if self.modal_nodes is not None:
            out.append(
                f"  transition graphs: modal node count {self.modal_nodes}; "
                f"{len(self.non_modal)} network(s) differ"
                + (
                    f" ({', '.join(self.non_modal[:5])}{' ...' if len(self.non_modal) > 5 else ''})"
                    if self.non_modal
                    else ""
                )
            )
        if self.written:
            out.append(f"  wrote analyses: {', '.join(self.written)}")
        return out


def _strings_to_object(ds: xr.Dataset) -> xr.Dataset:
    """Stored strings come back as NumPy StringDType; make them plain object arrays."""
    for name, var in list(ds.variables.items()):
        if var.dtype.kind in "TUS" or var.dtype == object:
            values = np.asarray(var.values).astype(object)
            if name in ds.coords:
                ds = ds.assign_coords({name: (var.dims, values, var.attrs)})
            else:
                ds[name] = (var.dims, values, var.attrs)
    return ds


def read_analysis(
    zoo: Any,
    task: str,
    name: str,
    *,
    which: str = "final",
    missing_ok: bool = False,
) -> xr.Dataset | None:
    """A stored dynamics analysis, loaded into memory, with strings as plain Python ``str``.

    Parameters
    ----------
    zoo : Zoo, str or path
        An open zoo (``rnnzoo_train.zoo.open_zoo``) or its location.
    task : str
    name : str
        Analysis name as listed in ``docs/architecture.md`` §6 (``dynamics_summary``,
        ``fixed_points`` or one of the task's analysis plugin, e.g. ``transition_graph``),
        without the ``-untrained`` suffix.
    which : {"final", "initial"}
        Results for the trained (default) or the untrained weights (``-untrained``).
    missing_ok : bool
        Return ``None`` instead of raising when the analysis is not stored.

    Returns
    -------
    Dataset or None

    Raises
    ------
    AnalysisError
        The analysis is not stored (unless ``missing_ok``), or ``which`` is not valid.
    """
    if which not in ("final", "initial"):
        raise AnalysisError(f"which must be 'final' or 'initial', not {which!r}")
    if isinstance(zoo, str | os.PathLike):
        zoo = _open(os.fspath(zoo), None)
    target = name + ("" if which == "final" or name.endswith("-untrained") else "-untrained")
    try:
        ds = zoo.analysis(task, target)
    except KeyError:
        ds = None
    if not isinstance(ds, xr.Dataset):
        if missing_ok:
            return None
        stored = ", ".join(zoo.analyses(task)) if task in zoo.tasks else "none"
        flag = " --untrained" if which == "initial" else ""
        raise AnalysisError(
            f"no analysis {target!r} stored for task {task!r} (stored: {stored or 'none'}); "
            f"run `rnnzoo-dynamics analyze ZOO --task {task}{flag}`"
        )
    return _strings_to_object(ds.load())


def _stored(zoo, task: str, name: str) -> xr.Dataset | None:
    """``read_analysis(zoo, task, name, missing_ok=True)`` for an exact stored name."""
    return read_analysis(zoo, task, name, missing_ok=True)


def _drop_networks(ds: xr.Dataset, ids: set[str]) -> xr.Dataset:
    """``ds`` without the rows of networks ``ids`` (along ``network`` or ``fixed_point``)."""
    if not ids:
        return ds
    for dim in ("network", "fixed_point"):
        if dim in ds.dims:
            keep = ~np.isin(ds["network"].values.astype(str), list(ids))
            return ds.isel({dim: np.nonzero(keep)[0]})
    return ds


def _merge(name: str, parts: list[xr.Dataset]) -> xr.Dataset:
    dim = "fixed_point" if name.startswith("fixed_points") else "network"
    ds = concat_results(parts, dim)
    for var in list(ds.data_vars):
        # counts of rows that lack them (skipped, failed networks) are -1, not NaN
        if var.startswith("n_") and ds[var].dtype.kind == "f":
            ds[var] = ds[var].fillna(-1).astype(np.int64)
    if "graph_n_nodes" in ds:
        ids = [str(i) for i in ds["network"].values]
        mode, differ = modal_node_count(ds["graph_n_nodes"].values, ids)
        ds["graph_is_modal"] = ("network", ds["graph_n_nodes"].values == mode)
        ds.attrs["graph_modal_n_nodes"] = int(mode)
        ds.attrs["graph_n_non_modal"] = len(differ)
    return ds


def _plan_units(
    index: pd.DataFrame, ids: Sequence[str], unit_size: int
) -> list[tuple[str, tuple[str, ...]]]:
    units = []
    for group, rows in index.loc[list(ids)].groupby("group", sort=True):
        members = [i for i in ids if i in rows.index]
        for k in range(0, len(members), unit_size):
            units.append((str(group), tuple(members[k : k + unit_size])))
    return units


def analyze_zoo(
    location: str | os.PathLike | Sequence[str | os.PathLike],
    task: str,
    *,
    options: AnalysisOptions | None = None,
    which: str = "final",
    network_ids: Sequence[str] | None = None,
    runner: Any = None,
    unit_size: int = 4,
    analysis_store: str | None = None,
    force: bool = False,
    flush_seconds: float = 300.0,
    progress: bool = True,
) -> AnalysisReport:
    """Run every dynamics analysis for the networks of ``task`` and store the results.

    Parameters
    ----------
    location : str, path, or sequence of them
        The zoo (see ``rnnzoo_train.zoo.open_zoo``).
    task : str
    options : AnalysisOptions, optional
    which : {"final", "initial"}
        Trained or untrained weights (analysis names get the suffix ``-untrained``).
    network_ids : sequence of str, optional
        Only these networks (default: all of the task).
    runner : optional
        ``rnnzoo_train.runners.SerialRunner()`` (default), ``ProcessRunner(n)`` or
        ``rnnzoo_train.distributed.DaskRunner(...)``.
    unit_size : int
        Networks per work unit (4; at most :data:`MAX_UNIT_SIZE`).
    analysis_store : str, optional
        Where to write results for a read-only zoo (zips, URL).
    force : bool
        Recompute every network (of ``network_ids``). Stored results computed with other
        options are replaced entirely (never kept beside results of the new ones).
    flush_seconds : float
        Write merged results at least this often (300 s; 0: after every work unit) as well
        as at the end.
    progress : bool
        Progress bar (networks done/total, ETA) on stderr.

    Returns
    -------
    AnalysisReport

    Raises
    ------
    AnalysisError
        For user mistakes, before anything is computed: unknown task or network, options
        out of range, options that differ from stored results, a stored analysis that
        cannot be read, an analysis target that cannot be written or is locked by another
        writer (the message names it).
    """
    from rnnzoo_train.runners import SerialRunner
    from rnnzoo_train.zoo import ZooError

    started = time.perf_counter()
    opt = options or AnalysisOptions()
    if which not in ("final", "initial"):
        raise AnalysisError(f"which must be 'final' or 'initial', not {which!r}")
    try:
        check_int("--unit-size", unit_size, 1, MAX_UNIT_SIZE)
        check_float("--flush-seconds", flush_seconds, 0)
    except ValueError as err:
        raise AnalysisError(str(err)) from None
    if isinstance(location, str | os.PathLike):
        loc: str | tuple[str, ...] = os.fspath(location)
    else:
        loc = tuple(os.fspath(x) for x in location)
    zoo = _open(loc, analysis_store)
    if task not in zoo.tasks:
        raise AnalysisError(
            f"the zoo has no task {task!r}; it has: {', '.join(zoo.tasks) or 'none'}"
        )
    suffix = "" if which == "final" else "-untrained"
    index = zoo.index(task)
    ids = list(index.index) if network_ids is None else list(dict.fromkeys(network_ids))
    unknown = [i for i in ids if i not in index.index]
    if unknown:
        raise AnalysisError(
            f"no network(s) {', '.join(unknown[:3])} in task {task!r}; see `rnnzoo-train info`"
        )
    try:
        plugin = get_task_analysis(zoo.task(task))
    except TaskAnalysisPluginError as err:
        raise AnalysisError(str(err)) from None
    try:  # an architecture whose plugin is not installed: one line naming it, up front
        from rnnzoo_train.zoo.networks import check_architectures

        check_architectures(zoo, task, ids)
    except ZooError as err:
        raise AnalysisError(str(err)) from None
    report = AnalysisReport(task=task, task_analysis=plugin.name)
    opts = options_json(opt)
    names = analysis_names(zoo.task(task))
    run = _Run(zoo, task, suffix, loc, analysis_store, which, opt, opts, report)
    with contextlib.ExitStack() as held:
        try:  # before anything is computed; held until the last result is stored
            held.enter_context(zoo.writing_analyses(task))
        except ZooError as err:  # locked by another writer, read-only, not an analysis store
            raise AnalysisError(str(err)) from None
        stored = _stored_analyses(zoo, task, suffix, names, opts, force)
        done = set() if force else _complete_networks(stored, ids)
        report.resumed = len(done)
        run.keep_old = {name: ds is not None for name, ds in stored.items()}
        run.compute(ids, done, index, runner or SerialRunner(), unit_size, flush_seconds, progress)
    graph = "transition_graph" + suffix
    if graph in (report.written or []):
        ds = _stored(zoo, task, graph)
        ids_all = [str(i) for i in ds["network"].values]
        report.modal_nodes, report.non_modal = modal_node_count(ds["graph_n_nodes"].values, ids_all)
    report.seconds = time.perf_counter() - started
    return report


def _stored_analyses(
    zoo, task: str, suffix: str, names: list[str], opts: str, force: bool
) -> dict[str, xr.Dataset | None]:
    """The task's stored analyses (None where absent), checked against ``opts``.

    Without ``force``: one computed with other options, or that cannot be read, is refused
    (one line). With ``force``: such analyses count as absent (replaced as a whole).
    """
    stored: dict[str, xr.Dataset | None] = {}
    for name in names:
        target = (SUMMARY if name == "summary" else name) + suffix
        try:
            ds = _stored(zoo, task, target)
        except AnalysisError:
            raise
        except Exception as err:  # a damaged store: zarr, numcodecs and OS errors
            if not force:
                raise AnalysisError(
                    f"the stored analysis {target!r} of task {task!r} cannot be read "
                    f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
                    "check the zoo with `rnnzoo-train verify`, or rerun with --force to "
                    "recompute and replace it"
                ) from None
            ds = None
        if ds is not None and ds.attrs.get("analysis_options") != opts:
            if not force:
                raise AnalysisError(
                    f"the stored dynamics analyses of {task!r} were computed with other "
                    "options; rerun with --force to recompute every network with the new ones"
                )
            ds = None
        stored[name] = ds
    return stored


def _complete_networks(stored: dict[str, xr.Dataset | None], ids: Sequence[str]) -> set[str]:
    """Networks of ``ids`` stored completely: nothing to recompute for them.

    Recorded ``ok`` or ``no_fixed_point`` in the summary, with as many rows in
    ``fixed_points`` as the summary's ``n_fixed + n_slow`` (none for ``no_fixed_point``),
    and exactly one row in every other analysis of the task.
    """
    summary, points = stored.get("summary"), stored.get("fixed_points")
    if summary is None or points is None:
        return set()
    nets = summary["network"].values.astype(str)
    status = dict(zip(nets, summary["analysis_status"].values.astype(str), strict=True))
    n_points = summary["n_fixed"].values + summary["n_slow"].values
    expected = {
        n: int(k) if st == "ok" else 0
        for n, st, k in zip(nets, status.values(), n_points, strict=True)
    }
    if len(expected) != len(nets):  # a network listed twice: nothing is trusted
        return set()
    have = Counter(points["network"].values.astype(str))
    done = {i for i in ids if status.get(i) in FINAL_STATUSES and have.get(i, 0) == expected[i]}
    for name, ds in stored.items():
        if name in ("summary", "fixed_points"):
            continue
        if ds is None:
            return set()
        rows = Counter(ds["network"].values.astype(str))
        done = {i for i in done if rows.get(i) == 1}
    return done


@dataclass
class _Run:
    """One analysis run of a task (the writer's lock held): computes, merges and flushes."""

    zoo: Any
    task: str
    suffix: str
    loc: str | tuple[str, ...]
    analysis_store: str | None
    which: str
    opt: AnalysisOptions
    opts: str
    report: AnalysisReport
    #: analysis name -> whether its stored rows are kept (False: other options / unreadable
    #: under --force when the run started, so it is replaced as a whole by the first flush)
    keep_old: dict[str, bool] = field(default_factory=dict)

    def unit(self, group: str, members: tuple[str, ...]) -> AnalysisUnit:
        return AnalysisUnit(
            self.loc, self.analysis_store, self.task, group, members, self.which, self.opt
        )

    def compute(
        self,
        ids: list[str],
        done: set[str],
        index: pd.DataFrame,
        runner: Any,
        unit_size: int,
        flush_seconds: float,
        progress: bool,
    ) -> None:
        """Analyse the networks of ``ids`` not ``done``; flush merged results as they come."""
        from rnnzoo_train.runners import UnitFailed

        report = self.report
        rows_extra: list[dict] = []
        todo = []
        for nid in ids:
            if nid in done:
                continue
            st = str(index.loc[nid, "status"])
            if st != "ok":
                why = f"training status is {st!r}"
                msg = str(index.loc[nid, "message"]) if "message" in index.columns else ""
                if msg and msg != "nan":
                    why += f" ({msg})"
                report.skipped.append((nid, why))
                rows_extra.append({"network": nid, "analysis_status": "skipped", "message": why})
            else:
                todo.append(nid)

        coords = index[list(NETWORK_COORDS)]
        results: dict[str, list[xr.Dataset]] = {}
        recomputed: set[str] = set(todo) | {r["network"] for r in rows_extra}
        bar = _bar(len(todo), progress, self.task)
        last_flush = time.perf_counter()

        def flush() -> None:
            report.written = _write(
                self.zoo,
                self.task,
                self.suffix,
                results,
                rows_extra,
                recomputed,
                coords,
                self.opts,
                self.keep_old,
            )
            self.keep_old = {}  # what is stored now is this run's

        try:
            queue = [self.unit(g, m) for g, m in _plan_units(index, todo, unit_size)]
            while queue:
                retry: list[AnalysisUnit] = []
                for unit, out in runner.map_unordered(run_unit, queue):
                    if isinstance(out, UnitFailed):
                        if len(unit.network_ids) > 1:
                            retry += [self.unit(unit.group, (n,)) for n in unit.network_ids]
                            continue
                        nid = unit.network_ids[0]
                        why = f"analysis failed: {out}"
                        report.failed.append((nid, why))
                        rows_extra.append(
                            {"network": nid, "analysis_status": "failed", "message": why}
                        )
                        bar.update(1)
                        continue
                    for name, ds in out.items():
                        results.setdefault(name, []).append(ds)
                    summ = out["summary"]
                    report.analysed += summ.sizes["network"]
                    for nid, st in zip(
                        summ["network"].values, summ["analysis_status"].values, strict=True
                    ):
                        if st == "no_fixed_point":
                            report.no_fixed_point.append(str(nid))
                    bar.update(summ.sizes["network"])
                    bar.set_postfix_str(unit.label, refresh=False)
                    if time.perf_counter() - last_flush >= flush_seconds:
                        flush()
                        last_flush = time.perf_counter()
                queue = retry
        finally:
            bar.close()
            if results or rows_extra:
                flush()


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def set_postfix_str(self, s: str, refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(total: int, enabled: bool, task: str):
    if not enabled or total == 0:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(
        total=total, unit="net", desc=f"dynamics {task}", file=sys.stderr, dynamic_ncols=True
    )


def _write(
    zoo,
    task: str,
    suffix: str,
    results: dict[str, list[xr.Dataset]],
    rows_extra: list[dict],
    recomputed: set[str],
    coords: pd.DataFrame,
    opts: str,
    keep_old: dict[str, bool],
) -> list[str]:
    """Merge new results with the stored ones (replacing recomputed networks) and write.

    Every analysis is written in one transaction (:meth:`Zoo.write_analyses`): all or none.

    ``keep_old[name]`` is False for an analysis stored with other options (or unreadable)
    when the run started: none of its rows is kept (it is replaced as a whole).
    """
    new = dict(results)
    names = set(new) | {"summary"}
    if rows_extra:
        new.setdefault("summary", []).append(
            summary_dataset(rows_extra, coords.loc[[r["network"] for r in rows_extra]])
        )
    merged: dict[str, xr.Dataset] = {}
    position = {str(n): i for i, n in enumerate(coords.index)}
    for name in sorted(names):
        target = (SUMMARY if name == "summary" else name) + suffix
        parts = list(new.get(name, []))
        old = _stored(zoo, task, target) if keep_old.get(name, True) else None
        if old is not None:
            parts.insert(0, _drop_networks(old, recomputed))
        parts = [p for p in parts if p is not None and _n_rows(p) > 0] or parts[:1]
        if not parts:
            continue
        ds = _in_index_order(_merge(name, parts), position)
        ds.attrs["analysis_options"] = opts
        ds.attrs["rnnzoo_dynamics_version"] = _version()
        ds.attrs["task"] = task
        merged[target] = ds
    zoo.write_analyses(task, merged)
    return sorted(merged)


def _in_index_order(ds: xr.Dataset, position: dict[str, int]) -> xr.Dataset:
    """Rows of ``ds`` with the networks in the task's index order (a stable sort).

    Work units finish in whatever order the workers take (a Dask cluster, a process pool),
    and results are merged as they arrive; sorting makes what is stored independent of
    that order, so that two runs of the same analysis store the same Datasets (and the
    permutation tests of downstream statistics, which follow the row order, see the same
    input). Rows of one network (its fixed points) keep their order.
    """
    dim = next((d for d in ("fixed_point", "network") if d in ds.dims), None)
    if dim is None or "network" not in ds.variables:
        return ds
    keys = np.array([position.get(str(n), len(position)) for n in ds["network"].values])
    order = np.argsort(keys, kind="stable")
    if (order == np.arange(len(order))).all():
        return ds
    return ds.isel({dim: order})


def _n_rows(ds: xr.Dataset) -> int:
    for dim in ("network", "fixed_point"):
        if dim in ds.dims:
            return int(ds.sizes[dim])
    return 0


def _version() -> str:
    from rnnzoo_dynamics import __version__

    return __version__


def summary_table(zoo, task: str, which: str = "final") -> pd.DataFrame:
    """Per-group counts from a stored ``dynamics_summary`` (for ``rnnzoo-dynamics summary``).

    Raises
    ------
    AnalysisError
        When the task has not been analysed yet.
    """
    suffix = "" if which == "final" else "-untrained"
    ds = _stored(zoo, task, SUMMARY + suffix)
    if ds is None:
        raise AnalysisError(
            f"no dynamics analysis stored for task {task!r}; run "
            f"`rnnzoo-dynamics analyze ZOO --task {task}` first"
        )
    df = ds.to_dataframe()
    df["group"] = [
        f"{a}-{b}-u{int(u)}" if isinstance(a, str) and a else "?"
        for a, b, u in zip(df["arch"], df["activation"], df["units"], strict=True)
    ]
    agg = df.groupby("group").agg(
        networks=("analysis_status", "size"),
        ok=("analysis_status", lambda s: int((s == "ok").sum())),
        no_fixed_point=("analysis_status", lambda s: int((s == "no_fixed_point").sum())),
        skipped=("analysis_status", lambda s: int((s == "skipped").sum())),
        failed=("analysis_status", lambda s: int((s == "failed").sum())),
        fixed_median=(
            "n_fixed",
            lambda s: float(np.median(s[s >= 0])) if (s >= 0).any() else math.nan,
        ),
        stable_median=(
            "n_stable",
            lambda s: float(np.median(s[s >= 0])) if (s >= 0).any() else math.nan,
        ),
    )
    return agg
