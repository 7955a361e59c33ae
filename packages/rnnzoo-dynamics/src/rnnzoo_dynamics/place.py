"""Where does your network sit among the zoo's networks (CLI: ``rnnzoo-dynamics place``).

:func:`place_model` compares a user's recurrent network (anything
:func:`rnnzoo_dynamics.models.as_network` accepts, plus an optional readout) with every
network of one task of a zoo, the way the paper compares the zoo's networks with each other:

1. the zoo's probe inputs for the task are run through the network (a wrong input or output
   size is a one-line :class:`PlacementError` naming the task's sizes). Its readout-facing
   states (``h``; an LSTM's ``c`` is left out, as the zoo stores it) on the probe inputs are
   flattened to ``(probe * time, units)`` samples exactly as rnnzoo-metrics flattens the
   zoo's ``hidden_trained``;
2. **geometry**: SVCCA and CKA (rnnzoo-metrics' built-in ``svcca``, ``cka`` with their
   default parameters, as the paper pipeline uses them) between the network and every zoo
   network of the task whose training finished (status ``ok``) with finite probe states;
3. **topology**: the network's dynamics are analysed with :func:`analyze_model`, with the
   options the zoo's stored analyses were computed with, and its fixed-point graph
   (flip-flop: transition graph; sine: ``sine_graph``; cdi: the two line-attractor graphs,
   combined as the root sum of squares of the per-context distances) is compared with the
   stored graph of every zoo network whose analysis is ``ok``: the paper's fixed-point graph
   distance (NaN where node counts differ) and rnnzoo-metrics' matched graph distance
   (defined for any node counts). Skipped, with a note, when the zoo has no stored
   dynamics analysis or the network has no readout (graph nodes are labelled by outputs);
4. **its place in the zoo's MDS**: the zoo's networks are embedded from their own distance
   matrix exactly as the paper pipeline does (SMACOF metric MDS from classical MDS, seed 0;
   networks with NaN distances dropped first), and the user's network is placed into that
   fixed map by minimising its own stress ``Σ_i (‖y − x_i‖ − d_i)²`` (an out-of-sample
   placement: the zoo's map is the paper's, unmoved by the newcomer). The residual of that
   placement is reported next to the map's own, so a poorly placed point is visible;
5. **nearest cell types** by each distance: per cell type (architecture x activation), the
   distance to its nearest network and the median over its networks, ranked by the nearest
   network (1-nearest-neighbour), ties by the median.

Written to the output folder (never into the zoo): ``placement.png`` (one panel per
distance, geometry then topology, zoo networks coloured by architecture as in the paper,
marker by activation, the user's network a labelled black star), ``distances.csv`` and
``distances.nc`` (every distance, the MDS coordinates, the placement), ``nearest.csv`` and
``nearest.md``. The folder must be new, empty, or an earlier output of this command.
"""

from __future__ import annotations

import json
import math
import os
import textwrap
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

#: (key, rnnzoo-metrics metric, source, title) of each distance, geometry first
DISTANCES: tuple[tuple[str, str, str, str], ...] = (
    ("svcca", "svcca", "activations", "SVCCA"),
    ("cka", "cka", "activations", "CKA"),
    ("graph", "fixed-point-graph", "graph", "fixed-point graph"),
    ("graph_matched", "fixed-point-graph-matched", "graph", "matched fixed-point graph"),
)
#: the zoo's MDS, as the paper pipeline computes it (rnnzoo_paper.distances)
MDS_METHOD = "metric"
MDS_SEED = 0
#: the marker of an output folder of this command
MARKER = ".rnnzoo-place"
#: files this command writes into its output folder
OUTPUTS = ("placement.png", "distances.csv", "distances.nc", "nearest.csv", "nearest.md")
#: how many cell types per distance ``nearest.md`` lists
NEAREST_SHOWN = 3
#: index coordinates carried to the results
COORDS = ("arch", "activation", "units", "l2", "seed")
MARKERS = {"tanh": "o", "relu": "^"}


class PlacementError(ValueError):
    """A user mistake (one line: what is wrong and what to do)."""


@dataclass
class Placement:
    """Where a network sits among a zoo's networks of one task.

    Attributes
    ----------
    task : str
    name : str
        The user's network's label (its id in the results).
    distances : xarray.Dataset
        Dim ``network`` (the zoo's networks); one variable per distance key of
        :data:`DISTANCES` (NaN where not comparable or not computed), ``embedding_<key>``
        ``(network, component)`` (the zoo's MDS, NaN for networks left out of it), the index
        coordinates; attrs ``position_<key>`` (the user's MDS position), ``residual_<key>``
        and ``zoo_residual_<key>`` (RMS stress residuals), the model's description and notes.
    nearest : pandas.DataFrame
        One row per (distance, cell type): ``distance, rank, cell_type, arch, activation,
        n_networks, nearest, median, nearest_network``.
    analyses : dict of str to Dataset
        The user's network's own dynamics analyses (empty when skipped).
    notes : list of str
        What could not be computed, and why.
    files : list of Path
        What was written.
    """

    task: str
    name: str
    distances: xr.Dataset
    nearest: pd.DataFrame
    analyses: dict[str, xr.Dataset] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def position(self, key: str) -> np.ndarray | None:
        """The user's network's 2-D MDS position for distance ``key`` (None if not placed)."""
        pos = self.distances.attrs.get(f"position_{key}")
        return None if pos is None else np.asarray(pos, dtype=float)

    def table(self, shown: int = NEAREST_SHOWN) -> str:
        """The nearest cell types as a markdown table (``nearest.md``)."""
        return _markdown_table(self.nearest, shown)


# -- the zoo and the output folder ----------------------------------------------------------
def _open_zoo(zoo: Any, analysis_store: Any) -> tuple[Any, list[Path]]:
    """The open zoo and its local paths (to keep the output out of them)."""
    from rnnzoo_train.zoo import ZooError, open_zoo

    if hasattr(zoo, "index") and hasattr(zoo, "probe"):
        locs = [getattr(s, "location", "") for s in getattr(zoo, "_sources", [])] or [
            getattr(zoo, "location", "")
        ]
        return zoo, [Path(p) for p in locs if p and "://" not in str(p)]
    locs = [zoo] if isinstance(zoo, str | os.PathLike) else list(zoo)
    for loc in locs:
        if "://" not in str(loc) and not Path(loc).exists():
            raise PlacementError(
                f"no zoo at {loc}; create one with `rnnzoo-train generate` or download one "
                "with `rnnzoo-train download`"
            )
    try:
        opened = open_zoo(locs[0] if len(locs) == 1 else locs, analysis_store=analysis_store)
    except (ZooError, OSError, ValueError) as err:
        raise PlacementError(_one_line(err)) from None
    return opened, [Path(p) for p in locs if "://" not in str(p)]


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def check_out(out: str | os.PathLike, zoo_paths: list[Path]) -> Path:
    """Refuse an output folder this command must not write to (before anything runs).

    Refused: a file, a Zarr store (a zoo above all), a folder inside a zoo, a folder that
    cannot be written (an actual write is tried: ``rnnzoo_train.zoo.targets``), and a folder
    that holds other files than an earlier output of this command.

    Raises
    ------
    PlacementError
    """
    from rnnzoo_train.zoo import ZooError
    from rnnzoo_train.zoo.targets import check_output_dir

    out = Path(out)
    resolved = Path(os.path.abspath(out))
    for zp in zoo_paths:
        z = Path(os.path.abspath(zp))
        if resolved == z or z in resolved.parents:
            raise PlacementError(
                f"--out {str(out)!r} is inside the zoo {str(zp)!r}; results never go into a "
                "zoo: give a folder of your own"
            )
    try:
        check_output_dir(out, what="the output folder", option="--out")
    except ZooError as err:
        raise PlacementError(str(err)) from None
    if out.is_dir():
        entries = sorted(p.name for p in out.iterdir())
        ours = set(OUTPUTS) | {MARKER} | {f".{n}.tmp" for n in OUTPUTS}  # + a killed run's
        if entries and (MARKER not in entries or not set(entries) <= ours):
            raise PlacementError(
                f"--out {str(out)!r} already holds other files ({', '.join(entries[:3])}"
                f"{', ...' if len(entries) > 3 else ''}); give a new or empty folder"
            )
    return out


# -- the user's network ---------------------------------------------------------------------
def _sizes(task: Any, probe: Any) -> str:
    M = probe.inputs.shape[-1]
    K = probe.targets.shape[-1]
    return f"task {task!r} of this zoo has {M} inputs and {K} outputs"


def _network(model: Any, readout: Any, task: str, probe: Any) -> Any:
    """The user's model as an :class:`OwnNetwork`, its sizes checked against the task's."""
    from torch import nn

    from rnnzoo_dynamics.models import ModelError, OwnNetwork, as_network

    M = probe.inputs.shape[-1]
    K = probe.targets.shape[-1]
    has_size = isinstance(model, (OwnNetwork, nn.RNNBase, nn.RNNCellBase))
    try:
        net = as_network(model, readout, n_inputs=None if has_size else M)
    except ModelError as err:
        text = str(err)
        if "inputs" in text and str(M) not in text:
            text = f"{text}; {_sizes(task, probe)}"
        raise PlacementError(text) from None
    if net.n_inputs != M:
        raise PlacementError(
            f"your network takes {net.n_inputs} inputs, but {_sizes(task, probe)}; "
            "train it on the zoo's task"
        )
    has_readout = not net.readout_kind.startswith("identity")
    if has_readout and net.n_outputs != K:
        raise PlacementError(f"your readout has {net.n_outputs} outputs, but {_sizes(task, probe)}")
    return net


def _states(net: Any, probe: Any, name: str) -> np.ndarray:
    """Readout-facing states on the probe inputs, ``(probe, time, units)`` float64."""
    states = np.asarray(net.run(probe.inputs), dtype=np.float64)
    if not np.isfinite(states).all():
        raise PlacementError(
            f"{name}: its states on the zoo's probe inputs are not finite (it diverges); "
            "check the model and its weights"
        )
    return states


# -- zoo networks ---------------------------------------------------------------------------
def _zoo_activation_ids(zoo: Any, task: str) -> list[str]:
    """Networks with status ``ok`` and finite probe states, in index order (as the paper)."""
    df = zoo.index(task)
    ok = [str(i) for i in df.index[df["status"].astype(str) == "ok"]]
    if not ok:
        return []
    tree = zoo.hidden_states(task, ok, which="trained")
    keep: set[str] = set()
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False)
        if "hidden_trained" not in ds:
            continue
        values = np.asarray(ds["hidden_trained"].values)
        finite = np.isfinite(values.reshape(values.shape[0], -1)).all(axis=1)
        keep |= {str(n) for n, f in zip(ds["network"].values, finite, strict=True) if f}
    return [i for i in ok if i in keep]


def _with_user(zoo_nets: Any, name: str, item: Any) -> Any:
    """The zoo's networks (rnnzoo-metrics ``Networks``) with the user's appended last."""
    from rnnzoo_metrics import Networks

    n = len(zoo_nets)

    def get(i: int) -> Any:
        return item if i == n else zoo_nets.getter(i)

    return Networks([*zoo_nets.ids, name], get, zoo_nets.kind)


def _row(d: xr.DataArray, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The user's row (last) and the zoo block of an (N+1)-square matrix."""
    a = np.asarray(d.values, dtype=float)
    n = len(ids)
    return a[n, :n].copy(), a[:n, :n].copy()


def _pairwise(data: Any, metric: str, n_jobs: int, progress: bool) -> xr.DataArray:
    import rnnzoo_metrics as rm

    with warnings.catch_warnings():
        # NaN pairs of the fixed-point-graph distance are expected (different node counts)
        warnings.filterwarnings("ignore", message=".*pairs are NaN.*", category=UserWarning)
        return rm.pairwise(data, metric, n_jobs=n_jobs, progress=progress)


def _activation_distances(
    zoo: Any, task: str, name: str, states: np.ndarray, n_jobs: int, progress: bool
) -> dict[str, tuple[list[str], np.ndarray, np.ndarray]]:
    import rnnzoo_metrics as rm

    ids = _zoo_activation_ids(zoo, task)
    if not ids:
        return {}
    tree = zoo.hidden_states(task, ids, which="trained")
    zoo_nets = rm.as_networks(tree, "activations")
    order = {n: i for i, n in enumerate(zoo_nets.ids)}
    flat = states.reshape(-1, states.shape[-1])
    out = {}
    for key, metric, source, _ in DISTANCES:
        if source != "activations":
            continue
        d = _pairwise(_with_user(zoo_nets, name, flat), metric, n_jobs, progress)
        row, block = _row(d, zoo_nets.ids)
        pos = [order[i] for i in ids]  # back to index order
        out[key] = (ids, row[pos], block[np.ix_(pos, pos)])
    return out


def task_analyses(task_obj: Any) -> list[str]:
    """The task's own analyses (stored by ``rnnzoo-dynamics analyze``), graphs among them."""
    from rnnzoo_dynamics.population import analysis_names

    return [n for n in analysis_names(task_obj) if n not in ("fixed_points", "summary")]


def _zoo_graphs(zoo: Any, task: str, names: list[str]) -> tuple[Any, dict[str, xr.Dataset]]:
    """The stored graph analyses (ok networks only) and the options they were computed with.

    A graph analysis is one holding ``graph_weight`` (``docs/architecture.md`` §5): one per
    task (flip-flop's transition graph, sine's graph) or one per condition (cdi's line
    attractors, a task without an analysis plugin). ``(None, {})`` when the task's analyses
    are not all stored.
    """
    from rnnzoo_dynamics.analyze import read_analysis

    summary = read_analysis(zoo, task, "dynamics_summary", missing_ok=True)
    if summary is None:
        return None, {}
    status = np.asarray(summary["analysis_status"].values).astype(str)
    ok = {str(n) for n, s in zip(summary["network"].values, status, strict=True) if s == "ok"}
    graphs = {}
    for name in names:
        ds = read_analysis(zoo, task, name, missing_ok=True)
        if ds is None:
            return None, {}
        if "graph_weight" in ds:
            keep = [i for i, n in enumerate(ds["network"].values) if str(n) in ok]
            graphs[name] = ds.isel(network=keep)
    return options_from_json(summary.attrs.get("analysis_options")), graphs


def options_from_json(text: str | None) -> Any:
    """The :class:`AnalysisOptions` stored with a zoo's analyses (``analysis_options`` JSON).

    ``None`` gives the defaults; keys this version does not know are ignored.
    """
    import dataclasses

    import torch

    from rnnzoo_dynamics.population import AnalysisOptions

    def build(default: Any, values: dict[str, Any]) -> Any:
        kwargs = {}
        for f in dataclasses.fields(default):
            if f.name not in values:
                continue
            v, current = values[f.name], getattr(default, f.name)
            if dataclasses.is_dataclass(current) and isinstance(v, dict):
                v = build(current, v)
            elif isinstance(current, torch.dtype) and isinstance(v, str):
                v = getattr(torch, v.replace("torch.", ""))
            elif isinstance(current, tuple) and isinstance(v, list):
                v = tuple(v)
            kwargs[f.name] = v
        return dataclasses.replace(default, **kwargs)

    return build(AnalysisOptions(), json.loads(text)) if text else AnalysisOptions()


def _graph_distances(
    zoo: Any,
    task: str,
    name: str,
    net: Any,
    options: Any,
    notes: list[str],
    n_jobs: int,
    progress: bool,
) -> tuple[dict[str, tuple[list[str], np.ndarray, np.ndarray]], dict[str, xr.Dataset]]:
    import rnnzoo_metrics as rm
    from rnnzoo_dynamics.models import ModelError, analyze_model

    task_obj = zoo.task(task)
    stored_options, graphs = _zoo_graphs(zoo, task, task_analyses(task_obj))
    if stored_options is None:
        notes.append(
            f"the zoo has no stored dynamics analysis of {task!r}: no topology distances "
            f"(run `rnnzoo-dynamics analyze ZOO --task {task}`, with --analysis-store for a "
            "read-only zoo, and give that store here)"
        )
        return {}, {}
    if not graphs:
        notes.append(f"task {task!r} has no fixed-point graph analysis: no topology distances")
        return {}, {}
    names = list(graphs)
    if net.readout_kind.startswith("identity"):
        notes.append(
            "no readout given: fixed-point graph nodes are labelled by the network's outputs, "
            "so topology distances need the readout (readout= / --readout)"
        )
        return {}, {}
    try:
        analyses = analyze_model(net, task_obj, options=options or stored_options, network_id=name)
    except ModelError as err:
        raise PlacementError(str(err)) from None
    status = str(np.asarray(analyses["summary"]["analysis_status"].values)[0])
    if status != "ok":
        notes.append(f"{name}: dynamics analysis {status!r} (no fixed points): no topology")
        return {}, analyses
    rows: dict[str, list[np.ndarray]] = {}
    blocks: dict[str, list[np.ndarray]] = {}
    ids: list[str] | None = None
    for gname in names:
        if gname not in analyses:
            notes.append(f"{name}: its analysis has no {gname!r} (the zoo's has): no topology")
            return {}, analyses
        zoo_nets = rm.as_networks(graphs[gname], "graph")
        user = rm.as_networks(analyses[gname], "graph").load(0)
        if ids is None:
            ids = list(zoo_nets.ids)
        if list(zoo_nets.ids) != ids or not ids:
            why = "no analysed network" if not ids else "graph analyses that disagree"
            notes.append(f"the zoo's {task!r} has {why}: no topology distances")
            return {}, analyses
        for key, metric, source, _ in DISTANCES:
            if source != "graph":
                continue
            d = _pairwise(_with_user(zoo_nets, name, user), metric, n_jobs, progress)
            row, block = _row(d, ids)
            rows.setdefault(key, []).append(row)
            blocks.setdefault(key, []).append(block)
    out = {}
    for key in rows:  # cdi: root sum of squares over the per-context graphs (as the paper)
        row = np.sqrt(sum(r**2 for r in rows[key]))
        block = np.sqrt(sum(b**2 for b in blocks[key]))
        out[key] = (ids or [], row, block)
    return out, analyses


# -- the MDS --------------------------------------------------------------------------------
def zoo_embedding(block: np.ndarray, ids: list[str]) -> tuple[list[str], np.ndarray] | None:
    """The zoo's 2-D MDS as the paper pipeline computes it (None below 3 networks).

    Networks with NaN distances are dropped first (``rnnzoo_metrics.drop_incomparable``);
    SMACOF metric MDS from classical MDS, seed 0 (classical MDS when every distance is 0).
    """
    import rnnzoo_metrics as rm

    d = xr.DataArray(
        block, dims=("network", "network_to"), coords={"network": ids, "network_to": ids}
    )
    d.attrs["kind"] = "distance"
    sub = rm.drop_incomparable(d) if np.isnan(block).any() else d
    if sub.sizes["network"] < 3:
        return None
    flat = float(np.nanmax(np.asarray(sub.values))) == 0.0
    emb = rm.embed(sub, "classical" if flat else MDS_METHOD, seed=MDS_SEED)
    return [str(i) for i in sub["network"].values], np.asarray(emb.values, dtype=float)


def place_point(xy: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, float]:
    """The 2-D position ``y`` minimising ``Σ_i (‖y − x_i‖ − d_i)²``, and its RMS residual.

    Started from each of the 5 nearest networks (nudged) and the centroid; the best of the
    L-BFGS solutions is returned.
    """
    from scipy.optimize import minimize

    xy = np.asarray(xy, dtype=float)
    d = np.asarray(d, dtype=float)
    scale = float(np.max(np.ptp(xy, axis=0))) or 1.0

    def f(y: np.ndarray) -> tuple[float, np.ndarray]:
        diff = y - xy
        r = np.maximum(np.linalg.norm(diff, axis=1), 1e-12 * scale)
        e = r - d
        return float(np.sum(e**2)), 2.0 * np.sum((e / r)[:, None] * diff, axis=0)

    starts = [xy[i] + 1e-3 * scale for i in np.argsort(d)[:5]] + [xy.mean(0)]
    best = min((minimize(f, s, jac=True, method="L-BFGS-B") for s in starts), key=lambda r: r.fun)
    return np.asarray(best.x, dtype=float), float(math.sqrt(best.fun / len(d)))


def _residual(xy: np.ndarray, block: np.ndarray) -> float:
    """RMS of ``‖x_i − x_j‖ − d_ij`` over the map's pairs."""
    r = np.linalg.norm(xy[:, None] - xy[None], axis=-1)
    iu = np.triu_indices(len(xy), 1)
    return float(np.sqrt(np.mean((r[iu] - block[iu]) ** 2))) if len(iu[0]) else 0.0


# -- the result -----------------------------------------------------------------------------
def _dataset(
    zoo: Any, task: str, found: dict[str, tuple[list[str], np.ndarray, np.ndarray]]
) -> tuple[xr.Dataset, dict[str, np.ndarray]]:
    index = zoo.index(task)
    all_ids = {i for ids, _, _ in found.values() for i in ids}
    ids = [str(i) for i in index.index if str(i) in all_ids]
    pos = {n: k for k, n in enumerate(ids)}
    data: dict[str, Any] = {}
    blocks = {}
    for key, *_ in DISTANCES:
        col = np.full(len(ids), np.nan)
        if key in found:
            kids, row, block = found[key]
            col[[pos[i] for i in kids]] = row
            blocks[key] = block
        data[key] = ("network", col)
    coords: dict[str, Any] = {"network": np.array(ids, dtype=object)}
    for c in COORDS:
        if c in index.columns:
            values = index.loc[ids, c].to_numpy() if ids else np.array([])
            if values.dtype == object or c in ("arch", "activation"):
                values = np.array([str(v) for v in values], dtype=object)
            coords[c] = ("network", values)
    ds = xr.Dataset(data, coords=coords)
    for key, _, _, title in DISTANCES:
        ds[key].attrs["long_name"] = f"{title} distance to the user's network"
    return ds, blocks


def _cell_type(arch: str, activation: str) -> str:
    from rnnzoo_dynamics.plots import DISPLAY

    return f"{DISPLAY.get(arch, arch)} {activation}"


def nearest_cell_types(ds: xr.Dataset) -> pd.DataFrame:
    """Per distance and cell type: nearest network, median; ranked by nearest, then median."""
    rows = []
    arch = np.asarray(ds["arch"].values).astype(str) if "arch" in ds.coords else None
    act = np.asarray(ds["activation"].values).astype(str) if "activation" in ds.coords else None
    ids = np.asarray(ds["network"].values).astype(str)
    for key, _, _, title in DISTANCES:
        col = np.asarray(ds[key].values, dtype=float)
        ok = np.isfinite(col)
        if not ok.any() or arch is None or act is None:
            continue
        types = sorted({(a, b) for a, b, k in zip(arch, act, ok, strict=True) if k})
        ranked = []
        for a, b in types:
            sel = ok & (arch == a) & (act == b)
            k = int(np.flatnonzero(sel)[np.argmin(col[sel])])
            ranked.append(
                {
                    "distance": title,
                    "cell_type": _cell_type(a, b),
                    "arch": a,
                    "activation": b,
                    "n_networks": int(sel.sum()),
                    "nearest": float(col[k]),
                    "median": float(np.median(col[sel])),
                    "nearest_network": str(ids[k]),
                }
            )
        ranked.sort(key=lambda r: (r["nearest"], r["median"], r["cell_type"]))
        for rank, r in enumerate(ranked, 1):
            rows.append({"distance": r.pop("distance"), "rank": rank, **r})
    columns = [
        "distance",
        "rank",
        "cell_type",
        "arch",
        "activation",
        "n_networks",
        "nearest",
        "median",
        "nearest_network",
    ]
    return pd.DataFrame(rows, columns=columns)


def _markdown_table(nearest: pd.DataFrame, shown: int) -> str:
    lines = [
        "| distance | rank | cell type | networks | nearest network (distance) | median |",
        "|---|---|---|---|---|---|",
    ]
    for _, r in nearest[nearest["rank"] <= shown].iterrows():
        lines.append(
            f"| {r['distance']} | {r['rank']} | {r['cell_type']} | {r['n_networks']} | "
            f"{r['nearest_network']} ({r['nearest']:.4g}) | {r['median']:.4g} |"
        )
    return "\n".join(lines)


# -- the figure -----------------------------------------------------------------------------
def plot_placement(placement: Placement, ax_row: Any = None) -> Any:
    """One panel per distance: the zoo's MDS coloured by cell type, the user's network marked.

    Returns the matplotlib Figure (no pyplot state).
    """
    from rnnzoo_dynamics.plots import DISPLAY, PALETTE, _figure

    ds = placement.distances
    keys = [k for k, *_ in DISTANCES]
    fig, axes = _figure((4.2 * len(keys), 4.4), ncols=len(keys))
    arch = np.asarray(ds["arch"].values).astype(str) if "arch" in ds.coords else None
    act = np.asarray(ds["activation"].values).astype(str) if "activation" in ds.coords else None
    handles: dict[str, Any] = {}
    for ax, (key, _, source, title) in zip(axes, DISTANCES, strict=True):
        kind = "geometry" if source == "activations" else "topology"
        ax.set_title(f"{kind}: {title}", fontsize=10)
        ax.set_xlabel("MDS 1")
        ax.set_ylabel("MDS 2")
        ax.set_aspect("equal", adjustable="datalim")  # MDS distances read the same both ways
        var = f"embedding_{key}"
        emb = np.asarray(ds[var].values, dtype=float) if var in ds else None
        shown = np.isfinite(emb).all(axis=1) if emb is not None else None
        if emb is None or not shown.any():
            ax.set_xticks([])
            ax.set_yticks([])
            ax.text(
                0.5,
                0.5,
                textwrap.fill(ds.attrs.get(f"why_no_{key}", "not available"), 40),
                ha="center",
                va="center",
                fontsize=8,
                color="0.3",
                transform=ax.transAxes,
            )
            continue
        for a in sorted(set(arch[shown])) if arch is not None else []:
            for b in sorted(set(act[shown])):
                sel = shown & (arch == a) & (act == b)
                if not sel.any():
                    continue
                label = f"{DISPLAY.get(a, a)} {b}"
                h = ax.scatter(
                    emb[sel, 0],
                    emb[sel, 1],
                    s=28,
                    color=PALETTE.get(a, "#555555"),
                    marker=MARKERS.get(b, "s"),
                    alpha=0.8,
                    edgecolor="white",
                    linewidth=0.4,
                    label=label,
                )
                handles.setdefault(label, h)
        pos = placement.position(key)
        if pos is not None:
            h = ax.scatter(
                [pos[0]],
                [pos[1]],
                s=260,
                marker="*",
                color="black",
                edgecolor="white",
                linewidth=0.8,
                zorder=5,
                label=placement.name,
            )
            handles.setdefault(placement.name, h)
            ax.annotate(
                placement.name,
                (pos[0], pos[1]),
                xytext=(8, 8),
                textcoords="offset points",
                fontsize=9,
                fontweight="bold",
                zorder=6,
            )
        else:
            ax.text(
                0.03,
                0.97,
                textwrap.fill(ds.attrs.get(f"why_no_{key}", "not comparable here"), 40),
                ha="left",
                va="top",
                fontsize=7,
                color="0.3",
                transform=ax.transAxes,
            )
    if handles:
        fig.legend(
            list(handles.values()),
            list(handles),
            loc="outside right center",
            fontsize=8,
            frameon=False,
        )
    fig.suptitle(
        f"{placement.name} among the zoo's {placement.task} networks "
        "(geometry: representational distances; topology: fixed-point graphs)",
        fontsize=11,
    )
    return fig


# -- writing --------------------------------------------------------------------------------
def _to_netcdf_safe(ds: xr.Dataset) -> xr.Dataset:
    out = ds.copy()
    attrs = {}
    for k, v in ds.attrs.items():
        if isinstance(v, bool):
            v = int(v)
        if isinstance(v, (list, tuple)):
            v = np.asarray(v, dtype=float)
        attrs[k] = v
    out.attrs = attrs
    return out


def write_placement(placement: Placement, out: Path) -> list[Path]:
    """Write the figure, distances and table into ``out`` (each file whole or not at all)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    marker = out / MARKER
    if not marker.exists():
        marker.write_text(json.dumps({"command": "rnnzoo-dynamics place"}) + "\n")
    written = []

    def publish(name: str, write: Any) -> None:
        tmp = out / f".{name}.tmp"
        try:
            write(tmp)
            os.replace(tmp, out / name)
        finally:
            if tmp.exists():
                tmp.unlink()
        written.append(out / name)

    ds = placement.distances
    fig = plot_placement(placement)  # first: a figure that fails replaces no earlier file
    table = ds[[k for k, *_ in DISTANCES]].to_dataframe()
    publish("distances.csv", lambda p: table.to_csv(p, float_format="%.10g"))
    publish(
        "distances.nc",
        lambda p: _to_netcdf_safe(ds).to_netcdf(p, engine="scipy", format="NETCDF3_64BIT"),
    )
    publish("nearest.csv", lambda p: placement.nearest.to_csv(p, index=False, float_format="%.10g"))
    publish("nearest.md", lambda p: Path(p).write_text(_report(placement)))
    publish("placement.png", lambda p: fig.savefig(p, format="png", dpi=130))
    return written


def _report(p: Placement) -> str:
    ds = p.distances
    lines = [
        f"# Where {p.name} sits among the zoo's {p.task} networks",
        "",
        f"Model: {ds.attrs.get('model_kind', '')}; readout: {ds.attrs.get('readout_kind', '')}.",
        f"Zoo: {ds.attrs.get('zoo', '')} ({ds.sizes['network']} networks compared).",
        "",
        "Nearest cell types by each distance (ranked by the nearest network of each type; "
        "median over the type's networks beside it):",
        "",
        p.table(),
        "",
    ]
    for key, _, _, title in DISTANCES:
        if f"residual_{key}" in ds.attrs:
            lines.append(
                f"- MDS placement by {title}: RMS residual {ds.attrs[f'residual_{key}']:.3g} "
                f"(the zoo's own map: {ds.attrs[f'zoo_residual_{key}']:.3g})"
            )
    for note in p.notes:
        lines.append(f"- note: {note}")
    lines += ["", "![placement](placement.png)", ""]
    return "\n".join(lines)


# -- the call -------------------------------------------------------------------------------
def place_model(
    model: Any,
    zoo: Any,
    task: str,
    out: str | os.PathLike | None = None,
    *,
    readout: Any = None,
    name: str = "your network",
    analysis_store: str | os.PathLike | None = None,
    options: Any = None,
    n_jobs: int = 1,
    progress: bool = False,
) -> Placement:
    """Where a network sits among the zoo's networks of ``task`` (module docstring).

    Parameters
    ----------
    model : nn.Module or callable or OwnNetwork
        Anything :func:`rnnzoo_dynamics.models.as_network` accepts (``nn.RNN``/``GRU``/
        ``LSTM`` and their cells, a step function ``F(h, x) -> h``), trained on ``task``. A
        step function whose module does not carry its sizes (``state_size`` / ``n_inputs``
        attributes) is passed as ``as_network(fn, readout, n_inputs=M, state_size=S)``.
    zoo : Zoo, str, path or list of them
        An open zoo or its location (directory, published zip, URL); read only.
    task : str
    out : str or path, optional
        Folder for the figure, distances and table (never inside the zoo; new, empty, or an
        earlier output of this call). ``None``: nothing is written.
    readout : nn.Linear or callable, optional
        The network's readout; needed for the topology distances.
    name : str
        Label of the network in the figure and the results (not a zoo network id).
    analysis_store : str or path, optional
        Where the dynamics analyses of a read-only zoo are stored.
    options : AnalysisOptions, optional
        Options of the network's dynamics analysis (default: those the zoo's stored analyses
        were computed with, so that the graphs are comparable).
    n_jobs : int
        Worker processes for the distances (rnnzoo-metrics).
    progress : bool
        Progress bars on stderr.

    Returns
    -------
    Placement

    Raises
    ------
    PlacementError
        A user mistake: no such zoo or task, sizes that do not fit the task, a model that is
        not recurrent, an output folder that must not be written to.
    """
    zoo, zoo_paths = _open_zoo(zoo, analysis_store)
    if task not in zoo.tasks:
        raise PlacementError(
            f"the zoo has no task {task!r}; it has: {', '.join(zoo.tasks) or 'none'}"
        )
    name = str(name)
    if not name.strip():
        raise PlacementError("the network's name is empty; give a label (--name)")
    if name in set(map(str, zoo.index(task).index)):
        raise PlacementError(
            f"{name!r} is the id of a network of the zoo; give your network another name"
        )
    if out is not None:
        check_out(out, zoo_paths)
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise PlacementError(
                "the figure needs matplotlib: pip install 'rnnzoo-dynamics[plot]' "
                "(or pass out=None)"
            ) from None
    probe = zoo.probe(task)
    net = _network(model, readout, task, probe)
    states = _states(net, probe, name)
    notes: list[str] = []
    found = _activation_distances(zoo, task, name, states, n_jobs, progress)
    if not found:
        notes.append(f"the zoo has no trained {task!r} network with finite states: no geometry")
    graphs, analyses = _graph_distances(zoo, task, name, net, options, notes, n_jobs, progress)
    found.update(graphs)
    ds, blocks = _dataset(zoo, task, found)
    ids = [str(i) for i in ds["network"].values]
    for key, _, _, title in DISTANCES:
        if key not in found:
            ds.attrs[f"why_no_{key}"] = "not computed" + (f": {notes[-1]}" if notes else "")
            continue
        kids, row, block = found[key]
        emb = zoo_embedding(block, kids)
        coords = np.full((len(ids), 2), np.nan)
        ds[f"embedding_{key}"] = (("network", "component"), coords)
        if emb is None:
            ds.attrs[f"why_no_{key}"] = f"{title}: fewer than 3 comparable zoo networks"
            continue
        emb_ids, xy = emb
        where = {n: k for k, n in enumerate(ids)}
        coords[[where[i] for i in emb_ids]] = xy
        ds[f"embedding_{key}"] = (("network", "component"), coords)
        kpos = {n: k for k, n in enumerate(kids)}
        sel = [kpos[i] for i in emb_ids]
        d_user = row[sel]
        ok = np.isfinite(d_user)
        ds.attrs[f"zoo_residual_{key}"] = _residual(xy, block[np.ix_(sel, sel)])
        if ok.sum() < 2:
            why = (
                f"{name} is not comparable with the zoo's mapped networks by the {title} "
                "distance (its graph has another number of nodes); the matched graph "
                "distance compares any node counts"
            )
            ds.attrs[f"why_no_{key}"] = why
            notes.append(why)
            continue
        position, residual = place_point(xy[ok], d_user[ok])
        ds.attrs[f"position_{key}"] = [float(v) for v in position]
        ds.attrs[f"residual_{key}"] = residual
    ds = ds.assign_coords(component=np.arange(2)) if "component" in ds.dims else ds
    ds.attrs.update(
        {
            "task": task,
            "name": name,
            "zoo": str(getattr(zoo, "location", "")),
            "model_kind": net.kind,
            "readout_kind": net.readout_kind,
            "notes": json.dumps(notes),
            "mds": f"{MDS_METHOD} MDS (SMACOF from classical), seed {MDS_SEED}; user placed "
            "out of sample by least squares",
        }
    )
    placement = Placement(task, name, ds, nearest_cell_types(ds), analyses, notes)
    if out is not None:
        placement.files = write_placement(placement, Path(out))
    return placement
