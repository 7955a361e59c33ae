"""Network-network distance matrices of the paper, computed once and stored beside the zoo.

Each matrix is an ``xarray.DataArray`` ``(network, network_to)`` from
``rnnzoo_metrics.pairwise`` and is written with ``Zoo.write_analysis`` under
``/<task>/analysis/paper-distance-<key>`` (the zoo itself, or the analysis store of a
read-only zoo). A stored matrix is reused when its cache key matches: the metric, its
parameters, the network ids and (for graph distances) the stored graph analysis it was
computed from. Anything else recomputes it.

Distances (``DISTANCES``):

- ``svcca``, ``cka``: on the hidden states of the trained networks on the task's probe
  inputs (representational geometry, paper Figs 1c-d, 2c, 3c and Appendix E);
- ``graph``: the paper's fixed-point graph distance (Frobenius distance of connectivity
  matrices with nodes in lexicographic readout order, NaN where node counts differ; Figs 1f,
  2e, 3d); ``graph-matched``: rnnzoo-metrics' matched graph distance, defined for any node
  counts. cdi has one line-attractor graph per context: its distance is the root sum of
  squares of the per-context distances (for ``graph``: the Frobenius distance of the
  block-diagonal two-context graph);
- ``svcca-trained-untrained`` (Fig. 4): SVCCA between the trained and the untrained
  (initial-weight) Vanilla networks of cdi, both driven by the same probe inputs.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from .data import (
    GRAPH_ANALYSES,
    analysed_networks,
    as_str,
    dynamics,
    finite_hidden,
    ok_networks,
    stored,
)


@dataclass(frozen=True)
class Distance:
    """One distance of the study.

    Attributes
    ----------
    key : str
        Short name used in file names and the report.
    metric : str
        The rnnzoo-metrics metric.
    source : {"activations", "graph", "trained-untrained"}
    title : str
    params : dict
        Metric parameters (defaults of rnnzoo-metrics when empty).
    """

    key: str
    metric: str
    source: str
    title: str
    params: dict[str, Any] = field(default_factory=dict)


DISTANCES: dict[str, Distance] = {
    "svcca": Distance("svcca", "svcca", "activations", "SVCCA"),
    "cka": Distance("cka", "cka", "activations", "CKA"),
    "graph": Distance("graph", "fixed-point-graph", "graph", "fixed-point graph"),
    "graph-matched": Distance(
        "graph-matched", "fixed-point-graph-matched", "graph", "matched fixed-point graph"
    ),
}
FIG4 = Distance("svcca-trained-untrained", "svcca", "trained-untrained", "SVCCA")
#: the task and architecture of Fig. 4 (paper section 3.3: cdi inputs, Vanilla networks)
FIG4_TASK = "cdi"
FIG4_ARCH = "vanilla"
ANALYSIS_PREFIX = "paper-distance-"


@dataclass
class Compute:
    """Where pairwise tiles run: ``n_jobs`` local processes or a Dask ``client``."""

    n_jobs: int = 1
    client: Any = None
    progress: bool = True

    def pairwise(self, data: Any, metric: str, **kwargs: Any) -> xr.DataArray:
        import rnnzoo_metrics as rm

        with warnings.catch_warnings():
            # NaN pairs of the fixed-point-graph distance are expected and reported
            warnings.filterwarnings("ignore", message=".*pairs are NaN.*", category=UserWarning)
            return rm.pairwise(
                data,
                metric,
                n_jobs=self.n_jobs,
                client=self.client,
                progress=self.progress,
                **kwargs,
            )


def _key(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _cached(
    zoo, task: str, name: str, key: str, compute: Callable[[], xr.DataArray | None]
) -> xr.DataArray | None:
    """Read ``name`` if stored with ``key``; else compute, store and return it."""
    old = stored(zoo, task, ANALYSIS_PREFIX + name)
    if old is not None and old.attrs.get("paper_cache_key") == key:
        var = old.attrs.get("paper_variable", next(iter(old.data_vars)))
        d = old[var]
        d.attrs = {**old[var].attrs, "paper_cache_key": key}
        return d
    d = compute()
    if d is None:
        return None
    d.attrs["paper_cache_key"] = key
    ds = d.to_dataset(name=d.name or name)
    ds.attrs.update(
        {"paper_cache_key": key, "paper_variable": d.name or name, "paper_distance": name}
    )
    zoo.write_analysis(task, ANALYSIS_PREFIX + name, ds)
    return d


def activation_distance(zoo, task: str, dist: Distance, compute: Compute) -> xr.DataArray | None:
    """SVCCA / CKA between the trained networks of ``task`` (status ok, finite states)."""
    ids = finite_hidden(zoo, task, ok_networks(zoo, task))
    if len(ids) < 2:
        return None
    key = _key(dist.metric, dist.params, ids, "hidden_trained")

    def run() -> xr.DataArray:
        tree = zoo.hidden_states(task, ids, which="trained")
        return compute.pairwise(tree, dist.metric, **dist.params)

    return _cached(zoo, task, dist.key, key, run)


def _graph_source(zoo, task: str) -> list[xr.Dataset]:
    names = GRAPH_ANALYSES.get(task, ("transition_graph",))
    out = []
    ok = set(analysed_networks(zoo, task))
    for name in names:
        ds = dynamics(zoo, task, name)
        if ds is None:
            return []
        keep = [i for i, n in enumerate(as_str(ds["network"].values)) if n in ok]
        out.append(ds.isel(network=keep))
    return out


def graph_distance(zoo, task: str, dist: Distance, compute: Compute) -> xr.DataArray | None:
    """Fixed-point graph distance between the analysed networks of ``task``."""
    sources = _graph_source(zoo, task)
    if not sources or sources[0].sizes["network"] < 2:
        return None
    ids = [str(i) for i in sources[0]["network"].values]
    stamps = [s.attrs.get("rnnzoo_written_at", "") for s in sources]
    key = _key(dist.metric, dist.params, ids, stamps)

    def run() -> xr.DataArray:
        parts = [compute.pairwise(s, dist.metric, **dist.params) for s in sources]
        if len(parts) == 1:
            return parts[0]
        total = parts[0].copy(data=np.sqrt(sum(np.asarray(p.values) ** 2 for p in parts)))
        total.attrs = dict(parts[0].attrs)
        total.attrs["combined"] = (
            f"root sum of squares over {len(parts)} per-context graphs "
            f"({', '.join(GRAPH_ANALYSES[task])})"
        )
        total.attrs["n_nan_pairs"] = int(
            np.isnan(np.asarray(total.values)[np.triu_indices(len(ids), 1)]).sum()
        )
        return total

    return _cached(zoo, task, dist.key, key, run)


def trained_untrained_tree(zoo, task: str, trained: list[str], untrained: list[str]):
    """Probe states of Fig. 4's trained and untrained networks as one DataTree.

    Variable ``hidden``; untrained networks' ids get the suffix ``-untrained``; coordinates
    ``trained`` (``"trained"`` / ``"untrained"``), ``arch`` and ``activation``.
    """
    nodes: dict[str, xr.Dataset] = {}
    for which, members in (("trained", trained), ("untrained", untrained)):
        if not members:
            continue
        tree = zoo.hidden_states(task, members, which=which)
        for name, child in tree.children.items():
            ds = child.to_dataset(inherit=False)
            ds = ds[[f"hidden_{which}"]].rename({f"hidden_{which}": "hidden"}).load()
            keep = {c: ("network", as_str(ds[c].values)) for c in ("arch", "activation")}
            n = ds.sizes["network"]
            suffix = "" if which == "trained" else "-untrained"
            ds = ds.assign_coords(
                network=[f"{i}{suffix}" for i in as_str(ds["network"].values)],
                trained=("network", np.array([which] * n, dtype=object)),
                **keep,
            )
            nodes[f"{which}/{name}"] = ds.drop_vars(
                [c for c in ds.coords if c not in ("network", "trained", "arch", "activation")]
            )
    return xr.DataTree.from_dict(nodes)


def trained_untrained_distance(zoo, compute: Compute) -> xr.DataArray | None:
    """Fig. 4: SVCCA among trained and untrained Vanilla cdi networks (coordinate ``trained``).

    Untrained networks whose probe states are not finite (a relu network at its initial
    weights can blow up) are left out; their ids get the suffix ``-untrained``.
    """
    task = FIG4_TASK
    if task not in zoo.tasks:
        return None
    index = zoo.index(task)
    ids = [i for i in ok_networks(zoo, task) if str(index.loc[i, "arch"]) == FIG4_ARCH]
    trained = finite_hidden(zoo, task, ids, "trained")
    untrained = finite_hidden(zoo, task, ids, "untrained")
    if len(trained) + len(untrained) < 2:
        return None
    key = _key(FIG4.metric, FIG4.params, trained, untrained, "fig4")

    def run() -> xr.DataArray:
        tree = trained_untrained_tree(zoo, task, trained, untrained)
        return compute.pairwise(tree, FIG4.metric, variable="hidden", **FIG4.params)

    return _cached(zoo, task, FIG4.key, key, run)


def task_distances(zoo, task: str, compute: Compute) -> dict[str, xr.DataArray]:
    """Every distance of ``DISTANCES`` for ``task`` (missing ones are left out)."""
    out = {}
    for key, dist in DISTANCES.items():
        fn = activation_distance if dist.source == "activations" else graph_distance
        d = fn(zoo, task, dist, compute)
        if d is not None:
            out[key] = d
    return out


#: MDS of the paper's figures: SMACOF metric MDS started from classical MDS, seeded
MDS_METHOD = "metric"
MDS_SEED = 0


def embedding(zoo, task: str, name: str, d: xr.DataArray | None) -> xr.DataArray | None:
    """2-D MDS of ``d`` (networks with NaN distances dropped first), stored beside the zoo.

    Stored as ``paper-embedding-<name>``; reused while the distance matrix is unchanged.
    ``attrs["n_dropped_incomparable"]`` counts networks left out (graph distances between
    networks with different numbers of fixed points are NaN, as in the paper).
    """
    import rnnzoo_metrics as rm

    if d is None:
        return None
    key = _key("embedding", MDS_METHOD, MDS_SEED, d.attrs.get("paper_cache_key"))

    def run() -> xr.DataArray | None:
        sub = rm.drop_incomparable(d) if np.isnan(np.asarray(d.values)).any() else d
        if sub.sizes["network"] < 3:
            return None
        # SMACOF is undefined when every distance is 0 (e.g. identical graphs): classical MDS
        flat = float(np.nanmax(np.asarray(sub.values))) == 0.0
        emb = rm.embed(sub, "classical" if flat else MDS_METHOD, seed=MDS_SEED)
        emb.attrs["n_dropped_incomparable"] = int(d.sizes["network"] - sub.sizes["network"])
        emb.name = "embedding"
        return emb

    return _cached_embedding(zoo, task, name, key, run)


def _cached_embedding(zoo, task, name, key, run):
    old = stored(zoo, task, "paper-embedding-" + name)
    if old is not None and old.attrs.get("paper_cache_key") == key:
        e = old["embedding"]
        e.attrs = dict(old["embedding"].attrs)
        return e
    e = run()
    if e is None:
        return None
    ds = e.to_dataset(name="embedding")
    ds.attrs.update({"paper_cache_key": key, "paper_distance": name})
    zoo.write_analysis(task, "paper-embedding-" + name, ds)
    return e
