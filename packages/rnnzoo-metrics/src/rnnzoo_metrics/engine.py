"""The all-pairs engine: ``pairwise(data, metric) -> DataArray (network x network_to)``.

Each network is prepared once (``metric.prepare``). The upper triangle of the matrix is
cut into square tiles; a tile is computed by ``metric.block`` (one stacked GEMM for the
CCA/CKA/Procrustes family), serially, over worker processes (``n_jobs``), or on a Dask
cluster (``client``). With ``store=`` every finished tile is written to a Zarr store whose
chunks are the tiles, so an interrupted run resumes where it stopped.

Worker processes end with this process, even when it is SIGKILLed, and a pool left early
(an error, Ctrl-C, SIGTERM) kills its workers at once instead of waiting for their running
tiles (:mod:`rnnzoo_metrics.stopping`). A SIGTERM under the command line never cuts a tile
store write in half.
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing as mp
import warnings
from collections.abc import Iterator
from concurrent.futures import BrokenExecutor
from typing import Any

import numpy as np

from . import __version__
from .errors import InputError, MetricsError, PluginError
from .inputs import Networks, as_networks
from .metric import Metric
from .registry import get_metric, registry
from .stopping import deferred_termination, wait_any, worker_pool

#: memory for one tile's stacked product and stacked caches (bytes)
TILE_BUDGET = 256 * 2**20
MAX_TILE = 256
#: the default tile leaves at least this many tiles per worker where the population allows:
#: workers take whole tiles, so a population in one tile would leave all but one idle
TILES_PER_WORKER = 4

# Set in the parent before worker processes fork: (metric, caches) shared copy-on-write.
_SHARED: tuple[Metric, list[Any]] | None = None


def _nbytes(obj: Any) -> int:
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, (tuple, list)):
        return sum(_nbytes(o) for o in obj)
    return 64


def choose_tile(metric: Metric, caches: list[Any]) -> int:
    """Largest tile (networks per side) whose product and caches fit :data:`TILE_BUDGET`."""
    live = [c for c in caches if c is not None]
    if not live:
        return 1
    width = max(metric.width(c) for c in live)
    size = max(_nbytes(c) for c in live)
    by_product = math.isqrt(TILE_BUDGET // 8) // max(width, 1)
    by_caches = TILE_BUDGET // (2 * max(size, 1))
    return int(max(1, min(MAX_TILE, by_product, by_caches)))


def balanced_tile(n: int, tile: int, workers: int) -> int:
    """Largest tile ``<= tile`` that cuts ``n`` networks into enough tiles for ``workers``.

    Enough: :data:`TILES_PER_WORKER` tiles per worker (diagonal tiles hold half the pairs
    of the others, so a few per worker keep the workers about equally busy), or tiles of
    one network where ``n`` is too small for that.
    """
    want = TILES_PER_WORKER * workers
    while workers > 1 and tile > 1 and len(tiles(n, tile)) < want:
        tile = min(tile - 1, -(-n // (-(-n // tile) + 1)))  # one more tile per side
    return tile


def _workers(n_jobs: int, client: Any) -> int:
    """Processes (or Dask worker threads) the tiles will be spread over."""
    if client is None:
        return n_jobs
    try:
        return max(1, sum(client.nthreads().values()))
    except Exception:  # an unusual client: keep the memory-sized tile
        return 1


def tiles(n: int, tile: int) -> list[tuple[int, int]]:
    """Tile indices ``(ti, tj)``, ``ti <= tj``, covering the upper triangle."""
    nt = -(-n // tile)
    return [(i, j) for i in range(nt) for j in range(i, nt)]


def _compute_tile(metric: Metric, caches_a: list, caches_b: list | None) -> np.ndarray:
    """``caches_b is None`` marks a diagonal tile (same networks on both sides)."""
    cols = caches_a if caches_b is None else caches_b
    block = np.asarray(metric.block(caches_a, cols), float)
    if block.shape != (len(caches_a), len(cols)):
        raise PluginError(
            f"metric {metric.name!r}: block() returned shape {block.shape} for a tile of "
            f"{len(caches_a)} x {len(cols)} networks; it must return one value per pair"
        )
    return block


def _forked_tile(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    metric, caches = _SHARED  # type: ignore[misc]
    rows = caches[r0:r1]
    return _compute_tile(metric, rows, None if (r0, r1) == (c0, c1) else caches[c0:c1])


def _forked_prepare(idx: list[int]) -> list[tuple[Any, int | None]]:
    metric, source = _SHARED  # type: ignore[misc]
    return [_prepare_one(metric, source, i) for i in idx]


def _check_finite(m: Metric, nets: Networks, block: np.ndarray, r0: int, c0: int) -> None:
    """Refuse an infinite value (an overflow); NaN stays allowed (not comparable)."""
    bad = np.isinf(block)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise MetricsError(
            f"{m.name} between networks {nets.ids[r0 + i]!r} and {nets.ids[c0 + j]!r} is "
            f"{block[i, j]} (float64 overflow); rescale these inputs"
        )


def _prepare_one(metric: Metric, nets: Networks, i: int) -> tuple[Any, int | None]:
    x = nets.load(i)
    ns = nets.sample_count(x)  # as the input kind counts samples (None: not counted)
    if ns is not None and ns < metric.min_samples:
        raise InputError(
            f"network {nets.ids[i]!r} has {ns} samples; {metric.name} needs at least "
            f"{metric.min_samples} samples per network (with fewer, every pair gets the same "
            "value); probe with more inputs"
        )
    try:
        return metric.prepare(x), ns
    except MetricsError as exc:
        raise type(exc)(f"network {nets.ids[i]!r}: {exc}") from None
    except np.linalg.LinAlgError as exc:
        raise InputError(f"network {nets.ids[i]!r}: {metric.name} failed: {exc}") from None
    except Exception as exc:
        if _is_builtin(metric):
            raise
        raise PluginError(
            f"network {nets.ids[i]!r}: {_describe(metric)} raised {type(exc).__name__} in "
            f"prepare(): {exc}; report this to the plugin's authors"
        ) from exc


def _is_builtin(metric: Metric) -> bool:
    return type(metric).__module__.startswith("rnnzoo_metrics.")


def _describe(metric: Metric) -> str:
    """``metric 'rsa' (rnnzoo-metric-example 0.1.0)``: who to blame for a plugin bug."""
    entry = registry().metrics.get(metric.name)
    provider = entry[1] if entry and entry[0] is type(metric) else type(metric).__module__
    return f"metric {metric.name!r} ({provider})"


def _progress(total: int, desc: str, enabled: bool, unit: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, smoothing=0.1)


def pairwise(
    data: Any,
    metric: str | Metric = "svcca",
    *,
    variable: str | None = None,
    tile: int | None = None,
    n_jobs: int = 1,
    client: Any = None,
    store: Any = None,
    progress: bool = True,
    **params: Any,
) -> Any:
    """All pairwise values of a metric between networks.

    Parameters
    ----------
    data
        Networks: a list/dict/Sequence of ``(samples, units)`` arrays or of
        :class:`FixedPointGraph`, or an xarray Dataset/DataTree in the zoo layout (see
        :mod:`rnnzoo_metrics.inputs`).
    metric : str or Metric
        A registered name (``rnnzoo-metrics list``) or a metric instance.
    variable : str, optional
        Variable holding activations in xarray inputs (default ``hidden_trained``).
    tile : int, optional
        Networks per tile side; default: the largest that fits 256 MiB, and no larger
        than leaves four tiles per worker (``n_jobs`` processes or the ``client``'s
        worker threads) where the population allows.
    n_jobs : int
        Worker processes for preparing networks and computing tiles (1: in process).
    client : dask.distributed.Client, optional
        Compute tiles on this Dask cluster instead (needs the ``[dask]`` extra).
    store : str or path, optional
        Zarr store (``[zoo]`` extra) receiving each finished tile; re-running with the
        same store skips finished tiles (resume).
    progress : bool
        Show progress bars (done/total, rate, ETA) on stderr.
    **params
        Parameters of the metric, e.g. ``threshold=0.99`` for SVCCA.

    Returns
    -------
    xarray.DataArray
        Dims ``(network, network_to)``; the network coordinates on both axes (``arch``
        along ``network``, ``arch_to`` along ``network_to``...); attrs name the metric,
        its parameters, kind and provider.
    """
    import xarray as xr

    m = get_metric(metric, **params)
    nets = as_networks(data, m.input_kind, variable)
    n = len(nets)
    if n == 0:
        raise InputError("no networks to compare")
    if n_jobs < 1:
        raise MetricsError(f"n_jobs must be >= 1, got {n_jobs}")
    if tile is not None and tile < 1:
        raise MetricsError(f"tile must be >= 1, got {tile}")

    tstore = None
    if store is not None:
        from .store import TileStore

        tstore = TileStore.open(store, m, nets)
        if tstore.tile is not None:
            if tile is not None and tile != tstore.tile:
                raise MetricsError(
                    f"store {str(store)!r} was written with tile={tstore.tile}; "
                    "resume with the same tile or use a new store"
                )
            tile = tstore.tile

    caches: list[Any] = [None] * n
    samples: list[int | None] = [None] * n
    if tile is None:  # size tiles from a first network, then prepare the rest
        caches[0], samples[0] = _prepare_one(m, nets, 0)
        tile = balanced_tile(n, choose_tile(m, [caches[0]]), _workers(n_jobs, client))
    if tile < 1:
        raise MetricsError(f"tile must be >= 1, got {tile}")
    todo = tiles(n, tile)
    if tstore is not None:
        todo = [t for t in todo if not tstore.done(*t)]
    needed = sorted(
        {k for ti, tj in todo for t in (ti, tj) for k in range(t * tile, min(n, (t + 1) * tile))}
    )
    _prepare(m, nets, caches, samples, [k for k in needed if caches[k] is None], n_jobs, progress)
    if tstore is not None:  # created only once every network passed its checks
        with deferred_termination():  # a SIGTERM never leaves half a template
            tstore.ensure(tile)

    out = np.full((n, n), np.nan)
    if tstore is not None:
        tstore.read_into(out)
    total_pairs = sum(_pairs_in(ti, tj, tile, n) for ti, tj in todo)
    bar = _progress(total_pairs, f"{m.name} pairs", progress, "pair")
    # closed on any exit, so that a pool left early kills its workers now (not when the
    # generator is garbage collected, after the tiles in flight)
    running = contextlib.closing(_run_tiles(m, caches, todo, tile, n, n_jobs, client))
    try:
        with running as finished_tiles:
            for (ti, tj), block in finished_tiles:
                r0, r1 = ti * tile, min(n, (ti + 1) * tile)
                c0, c1 = tj * tile, min(n, (tj + 1) * tile)
                _check_finite(m, nets, block, r0, c0)
                out[r0:r1, c0:c1] = block
                out[c0:c1, r0:r1] = block.T
                if tstore is not None:
                    with deferred_termination():  # values and mark: the whole tile, or none
                        tstore.write(ti, tj, out)
                bar.update(_pairs_in(ti, tj, tile, n))
    except (MetricsError, MemoryError):
        raise
    except BrokenExecutor:
        raise MetricsError(_WORKER_DIED + _kept(store)) from None
    except Exception as exc:
        if _is_builtin(m):
            raise
        raise PluginError(
            f"{_describe(m)} raised {type(exc).__name__} while comparing networks: {exc}; "
            "report this to the plugin's authors"
        ) from exc
    finally:
        bar.close()
    np.fill_diagonal(out, m.self_value)
    # lower triangle of diagonal tiles comes from the upper one: exact symmetry
    iu = np.triu_indices(n, 1)
    out[(iu[1], iu[0])] = out[iu]
    if tstore is not None:
        with deferred_termination():
            tstore.finish(out)
    return _as_dataarray(xr, out, m, nets)


_WORKER_DIED = (
    "a worker process died (killed, e.g. out of memory); rerun with fewer jobs "
    "(n_jobs / --jobs) or a smaller tile"
)


def _kept(store: Any) -> str:
    return f"; finished tiles are kept in {str(store)!r}" if store is not None else ""


def _pairs_in(ti: int, tj: int, tile: int, n: int) -> int:
    a = min(n, (ti + 1) * tile) - ti * tile
    b = min(n, (tj + 1) * tile) - tj * tile
    return a * (a - 1) // 2 if ti == tj else a * b


def _prepare(
    m: Metric,
    nets: Networks,
    caches: list,
    samples: list,
    idx: list[int],
    n_jobs: int,
    progress: bool,
) -> None:
    """Prepare networks ``idx``, filling ``caches`` and ``samples`` in place.

    Stops at the first error, including a sample count that differs from a network
    prepared before, and kills the workers (the work not yet done is abandoned).
    """
    global _SHARED
    _check_samples(nets, samples)
    if not idx:
        return
    bar = _progress(len(idx), f"{m.name} prepare", progress, "network")
    first = next((k for k, ns in enumerate(samples) if ns is not None), None)

    def done(i: int, res: tuple[Any, int | None]) -> None:
        nonlocal first
        caches[i], samples[i] = res
        if samples[i] is not None:
            if first is None:
                first = i
            elif samples[i] != samples[first]:
                _check_samples(nets, [samples[first], samples[i]], [first, i])
        bar.update(1)

    try:
        if n_jobs == 1 or len(idx) < 2 or "fork" not in mp.get_all_start_methods():
            for i in idx:
                done(i, _prepare_one(m, nets, i))
            return
        _SHARED = (m, nets)
        try:
            # leaving the pool early (an error, Ctrl-C, SIGTERM) kills its workers at once.
            # Not Executor.map: left early, it cancels its futures, and CPython 3.11's pool
            # then prints an InvalidStateError traceback when it finds its workers killed.
            with worker_pool(n_jobs) as ex:
                size = max(1, len(idx) // (8 * n_jobs))
                chunks = [idx[k : k + size] for k in range(0, len(idx), size)]
                futures = [ex.submit(_forked_prepare, chunk) for chunk in chunks]
                for chunk, fut in zip(chunks, futures, strict=True):  # in order
                    while not wait_any([fut]):
                        pass
                    for i, res in zip(chunk, fut.result(), strict=True):
                        done(i, res)
        except BrokenExecutor:
            raise MetricsError(_WORKER_DIED.replace(" or a smaller tile", "")) from None
    finally:
        _SHARED = None
        bar.close()


def _check_samples(
    nets: Networks, samples: list[int | None], which: list[int] | None = None
) -> None:
    """Raise if the known sample counts differ (``which``: network indices of ``samples``)."""
    which = list(range(len(samples))) if which is None else which
    known = [(i, ns) for i, ns in zip(which, samples, strict=True) if ns is not None]
    for i, ns in known[1:]:
        if ns != known[0][1]:
            raise InputError(
                f"network {nets.ids[i]!r} has {ns} samples but network "
                f"{nets.ids[known[0][0]]!r} has {known[0][1]}; every network must be probed "
                "with the same inputs (same samples, same order)"
            )


def _run_tiles(
    m: Metric, caches: list, todo: list, tile: int, n: int, n_jobs: int, client: Any
) -> Iterator[tuple[tuple[int, int], np.ndarray]]:
    def bounds(t):
        ti, tj = t
        return ti * tile, min(n, (ti + 1) * tile), tj * tile, min(n, (tj + 1) * tile)

    if client is not None:
        yield from _run_dask(m, caches, todo, bounds, client)
        return
    if n_jobs == 1 or len(todo) < 2 or "fork" not in mp.get_all_start_methods():
        for t in todo:
            r0, r1, c0, c1 = bounds(t)
            rows = caches[r0:r1]
            yield t, _compute_tile(m, rows, None if t[0] == t[1] else caches[c0:c1])
        return
    global _SHARED
    _SHARED = (m, caches)
    try:
        # left early (an error, Ctrl-C, SIGTERM, or the caller closing this generator): the
        # workers are killed at once, their tiles in flight abandoned
        with worker_pool(n_jobs) as ex:
            pending = {}
            it = iter(todo)
            for t in it:  # keep 2 tiles per worker in flight: bounded memory
                pending[ex.submit(_forked_tile, *bounds(t))] = t
                if len(pending) >= 2 * n_jobs:
                    break
            while pending:
                for fut in wait_any(pending):
                    t = pending.pop(fut)
                    yield t, fut.result()
                    nxt = next(it, None)
                    if nxt is not None:
                        pending[ex.submit(_forked_tile, *bounds(nxt))] = nxt
    finally:
        _SHARED = None


def _run_dask(m, caches, todo, bounds, client):
    from .errors import require

    distributed = require("distributed", "dask", "computing tiles on a Dask cluster")
    # random keys (hash=False): content-hashed keys are shared with an earlier call on the same
    # data whose futures are being released, and the scheduler drops the data under this
    # call's tiles ("lost dependencies", dask/distributed#8576)
    futures = client.scatter(caches, hash=False)
    jobs = {}
    for t in todo:
        r0, r1, c0, c1 = bounds(t)
        rows = futures[r0:r1]
        cols = None if t[0] == t[1] else futures[c0:c1]
        jobs[client.submit(_compute_tile, m, rows, cols, pure=False)] = t
    for fut in distributed.as_completed(list(jobs)):
        yield jobs[fut], fut.result()


def _as_dataarray(xr, out: np.ndarray, m: Metric, nets: Networks):
    coords: dict[str, Any] = {
        "network": ("network", list(nets.ids)),
        "network_to": ("network_to", list(nets.ids)),
    }
    for name, values in nets.coords.items():
        coords[name] = ("network", values)
        coords[f"{name}_to"] = ("network_to", values)
    info = registry().info(m.name) if m.name in registry().metrics else m.info()
    nan_pairs = int(np.isnan(out[np.triu_indices(len(out), 1)]).sum())
    if nan_pairs:
        warnings.warn(
            f"{m.name}: {nan_pairs} of {len(out) * (len(out) - 1) // 2} pairs are NaN "
            "(not comparable, e.g. different numbers of fixed points); "
            "rnnzoo_metrics.drop_incomparable() keeps a comparable subset",
            UserWarning,
            stacklevel=3,
        )
    attrs = {
        "metric": m.name,
        "kind": m.kind,
        "is_metric": int(m.is_metric),
        "input_kind": m.input_kind,
        "params": json.dumps(m.params, sort_keys=True, default=str),
        "provider": info.provider,
        "n_nan_pairs": nan_pairs,
        "rnnzoo_metrics_version": __version__,
    }
    return xr.DataArray(
        out, dims=("network", "network_to"), coords=coords, name=m.name, attrs=attrs
    )
