"""Fixed-point graphs: transition graphs (paper §3.1) and nearest-neighbour graphs (§3.2-3.3).

**Transition graph.** Nodes are the true fixed points (``kind == "fixed"``) of one condition.
From every node, ``n_perturbations`` (default 100) states ``h* + δ`` are run forward under
``x*``; ``δ`` has a uniformly random direction and norm ``perturbation × d`` (default
``perturbation = 0.05``), where ``d`` is the distance from the node to its nearest other
fixed point (``max(1, ‖h*‖)`` for a lone point), so the perturbation is small on the scale
of the fixed-point configuration whatever the network's units. A trajectory has *landed* on
a stable target ``j`` (a node with no unstable mode, ``n_unstable == 0``) once it is within
``landing × d_j`` of it (default ``landing = 0.02``, smaller than the perturbation, so a
stable node's self-loop is confirmed by contraction under simulation, not assumed), checked
every ``check_every`` steps after at least that many steps, up to ``max_steps``
(default 3,000). ``weight[i, j]`` is the fraction of node ``i``'s perturbations that landed
on ``j``; the fraction that never landed is reported as ``unresolved``.

**Nearest-neighbour graph** (input-dependent fixed points in sine): the symmetric
``k``-nearest-neighbour adjacency (default ``k = 2``; weight 1 per edge) of a set of points
in state space.

**Line-attractor graph** (cdi, §3.3): a fixed number of nodes ``K`` (default 20) whenever an
attractor is found, so that the paper's graph distance (equal node counts) is defined for
every such network. The context's attractor points are ordered by readout and joined into
a piecewise-linear curve (state as a function of readout); the curve is resampled at ``K``
readouts evenly spaced over the range it spans. Edges: the chain of consecutive nodes (the
curve itself) and the *mutual* ``k``-nearest-neighbour pairs in state space (``a`` and ``b``
each among the other's ``k`` nearest), each edge weighted by its state-space length divided
by the curve's length (the sum of the ``K − 1`` chain links). A straight, uniformly
parametrised attractor is a chain with every link ``1/(K−1)`` (a one-sided ``k = 2`` graph
would also link each end node to the third node); a curve whose state moves unevenly with
the readout has uneven links (and, where nodes crowd, a few short extra edges); one that
folds back links nodes of distant readouts that lie close in state space. Fewer than two
attractor points with different readouts is no attractor: the points themselves are the
nodes (0 or 1), and the network's node count differs.

Nodes are ordered lexicographically by their readout (paper footnote 5), comparing the
readout rounded to ``readout_decimals`` (default 1) first, so that nearly equal outputs (e.g.
the ~0 output of saddles) are ordered by the next output instead of by noise.

Graph Datasets follow ``docs/architecture.md`` §5 (``graph_weight``, ``graph_node_readout``,
``graph_node_stable``, ``graph_n_nodes``), which rnnzoo-metrics reads.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import xarray as xr
from scipy.spatial import cKDTree

from rnnzoo_dynamics._batch import Packing, params_as, select_networks
from rnnzoo_dynamics._checks import check_float, check_int
from rnnzoo_dynamics.fixed_points import FIXED, FixedPoints, _population_params
from rnnzoo_dynamics.linearize import Linearization
from rnnzoo_train.cells.base import Cell, Params


@dataclass(frozen=True)
class TransitionOptions:
    """Defaults of :func:`transition_graphs` (see the module docstring)."""

    n_perturbations: int = 100
    perturbation: float = 0.05
    landing: float = 0.02
    max_steps: int = 3000
    check_every: int = 25
    readout_decimals: int = 1
    seed: int = 0
    dtype: torch.dtype = torch.float64

    def __post_init__(self) -> None:
        check_int("n_perturbations", self.n_perturbations, 1)
        check_int("max_steps", self.max_steps, 1)
        check_int("check_every", self.check_every, 1)
        check_int("readout_decimals", self.readout_decimals, 0)
        check_int("seed", self.seed, 0)
        check_float("perturbation", self.perturbation, 0, low_open=True)
        check_float("landing", self.landing, 0, low_open=True)


@dataclass
class Graph:
    """One network's fixed-point graph.

    Attributes
    ----------
    weight : ndarray, (n, n)
        ``weight[i, j]``: edge weight from node ``i`` to node ``j``.
    node_readout : ndarray, (n, k)
    node_stable : ndarray of bool, (n,)
    node_point : ndarray of int, (n,)
        Row of each node in the :class:`FixedPoints` it was built from (-1 if none).
    unresolved : ndarray, (n,)
        Fraction of a node's perturbations that landed nowhere (transition graphs only).
    node_n_unstable : ndarray of int, (n,)
    unresolved_states : ndarray, (m, S)
        Where the perturbations that never landed ended (finite ones); they often sit on an
        attractor the finder missed (see ``analyze_population``).
    node_state : ndarray, (n, S) or (0, 0)
        Position of each node in state space (line-attractor graphs, whose nodes are
        resampled along the attractor rather than fixed points themselves).
    """

    weight: np.ndarray
    node_readout: np.ndarray
    node_stable: np.ndarray
    node_point: np.ndarray
    unresolved: np.ndarray = field(default_factory=lambda: np.zeros(0))
    node_n_unstable: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    unresolved_states: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    node_state: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    @property
    def n_nodes(self) -> int:
        return len(self.node_stable)


def lexicographic_order(readout: np.ndarray, decimals: int | None = 1) -> np.ndarray:
    """Node order by readout, first output as the primary key (paper footnote 5).

    Outputs are compared rounded to ``decimals`` first (so 0.999 and 1.001 tie and the next
    output decides), then at full precision to break the remaining ties — the same order
    rnnzoo-metrics' graph distances use.
    """
    r = np.asarray(readout, dtype=np.float64)
    if r.ndim == 1:
        r = r[:, None]
    if len(r) == 0:
        return np.zeros(0, dtype=np.int64)
    cols = [r[:, k] for k in range(r.shape[1])]
    keys = cols[::-1]
    if decimals is not None:
        keys = keys + [np.round(c, decimals) for c in cols[::-1]]
    return np.lexsort(keys)


def network_rng(seed: int, network_id: str, purpose: str | None = None) -> np.random.Generator:
    """The random generator of one network's analysis (independent of batch composition).

    Seeded by the run's ``seed`` and a CRC-32 of the network id; ``purpose`` (e.g.
    ``"transition_graph"``) gives an independent stream for another use of randomness.
    """
    key = [seed, zlib.crc32(network_id.encode())]
    if purpose is not None:
        key.append(zlib.crc32(purpose.encode()))
    return np.random.default_rng(key)


def _scales(states: np.ndarray) -> np.ndarray:
    """Distance from each point to its nearest other point (``max(1, ‖h‖)`` if alone)."""
    if len(states) == 1:
        return np.array([max(1.0, float(np.linalg.norm(states[0])))])
    d, _ = cKDTree(states).query(states, k=2)
    return d[:, 1]


def _random_directions(rng: np.random.Generator, n: int, S: int) -> np.ndarray:
    v = rng.normal(size=(n, S))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def transition_graphs(
    cell: Cell,
    params: Params,
    points: FixedPoints,
    lin: Linearization,
    condition: int = 0,
    options: TransitionOptions | None = None,
    network_ids: Sequence[str] | None = None,
) -> list[Graph]:
    """Transition graph of every network of a population (paper §3.1).

    Parameters
    ----------
    cell : Cell
    params : dict of str to Tensor
        Population parameters ``(P, ...)``.
    points : FixedPoints
        The population's points (only ``kind == "fixed"`` of ``condition`` become nodes).
    lin : Linearization
        ``linearize(cell, params, points)`` (stability and readout of each point).
    condition : int
        Which static input ``x*`` (flip-flop has one).
    options : TransitionOptions, optional
    network_ids : sequence of str, optional
        The networks' ids. Each network's perturbations are drawn from its own generator,
        seeded by ``options.seed`` and its id (:func:`network_rng`), so its graph does not
        depend on the other networks of the population or its position among them. Without
        ids, the network's position stands in for its id.

    Returns
    -------
    list of Graph
        One per network, nodes in lexicographic readout order; a network without fixed
        points gets an empty graph.
    """
    opt = options or TransitionOptions()
    params = params_as(_population_params(cell, params), opt.dtype)
    P = points.n_networks
    S = cell.state_size
    ids = [str(i) for i in range(P)] if network_ids is None else [str(i) for i in network_ids]
    if len(ids) != P:
        raise ValueError(f"network_ids: {len(ids)} ids for {P} networks")
    nodes: list[np.ndarray] = []
    for i in range(P):
        rows = np.nonzero(
            (points.network == i) & (points.condition == condition) & (points.kind == FIXED)
        )[0]
        nodes.append(rows[lexicographic_order(lin.readout[rows], opt.readout_decimals)])
    n_max = max((len(r) for r in nodes), default=0)
    K = opt.n_perturbations
    graphs: list[Graph] = []
    if n_max == 0:
        return [_empty_graph(lin.readout.shape[1]) for _ in range(P)]

    # starts: (P, n_max * K, S); targets: stable nodes of each network
    h = torch.zeros(P, n_max * K, S, dtype=opt.dtype)
    active = torch.zeros(P, n_max * K, dtype=torch.bool)
    tgt = np.full((P, n_max), np.nan)  # landing radius of each stable node (NaN: not a target)
    tgt_state = torch.zeros(P, n_max, S, dtype=opt.dtype)
    for i, rows in enumerate(nodes):
        if len(rows) == 0:
            continue
        st = points.state[rows]
        d = _scales(st)
        rng = network_rng(opt.seed, ids[i], "transition_graph")
        delta = _random_directions(rng, len(rows) * K, S) * np.repeat(d, K)[:, None]
        h[i, : len(rows) * K] = torch.as_tensor(np.repeat(st, K, 0) + opt.perturbation * delta)
        active[i, : len(rows) * K] = True
        stable = lin.n_unstable[rows] == 0
        tgt[i, : len(rows)] = np.where(stable, opt.landing * d, np.nan)
        tgt_state[i, : len(rows)] = torch.as_tensor(st)
    x_all = _condition_input(points, condition, P, opt.dtype)
    landed = torch.full((P, n_max * K), -1, dtype=torch.int64)
    radius = torch.as_tensor(np.nan_to_num(tgt, nan=-1.0), dtype=opt.dtype)
    steps = 0
    with torch.no_grad():
        while steps < opt.max_steps and bool(active.any()):
            pack = Packing.from_mask(active)
            sub = select_networks(params, pack.rows)
            hp = pack.gather(h)
            xp = x_all.index_select(0, pack.rows).unsqueeze(1).expand(-1, hp.shape[1], -1)
            for _ in range(opt.check_every):
                hp = cell.step(sub, hp, xp)
            steps += opt.check_every
            pack.scatter(h, hp)
            # distance of every packed trajectory to every target of its network
            ts = tgt_state.index_select(0, pack.rows)
            rad = radius.index_select(0, pack.rows)
            dist = torch.cdist(hp, ts)  # (P', B', n_max)
            hit = (dist < rad.unsqueeze(1)) & (rad.unsqueeze(1) > 0)
            dist = torch.where(hit, dist, torch.full_like(dist, torch.inf))
            first = dist.argmin(-1)
            has = hit.any(-1) & pack.valid
            lp = torch.where(has, first, torch.full_like(first, -1))
            bad = ~torch.isfinite(hp).all(-1) & pack.valid
            # active trajectories have not landed yet (-1): write the new landings, and stop
            # simulating landed and non-finite ones
            pack.scatter(landed, lp)
            still = torch.zeros_like(active)
            pack.scatter(still, pack.valid & ~has & ~bad)
            active = still
    landed_np = landed.numpy()
    h_np = h.numpy()
    for i, rows in enumerate(nodes):
        n = len(rows)
        if n == 0:
            graphs.append(_empty_graph(lin.readout.shape[1]))
            continue
        ends = h_np[i, : n * K][landed_np[i, : n * K] < 0]
        w = np.zeros((n, n))
        lnd = landed_np[i, : n * K].reshape(n, K)
        for a in range(n):
            dest = lnd[a][lnd[a] >= 0]
            if len(dest):
                w[a] += np.bincount(dest, minlength=n)[:n] / K
        graphs.append(
            Graph(
                weight=w,
                node_readout=lin.readout[rows],
                node_stable=lin.n_unstable[rows] == 0,
                node_point=rows,
                unresolved=1.0 - w.sum(1),
                node_n_unstable=lin.n_unstable[rows],
                unresolved_states=ends[np.isfinite(ends).all(-1)],
            )
        )
    return graphs


def _condition_input(points: FixedPoints, condition: int, P: int, dtype) -> torch.Tensor:
    """``x*`` of ``condition`` for every network, ``(P, M)``."""
    x = np.asarray(points.x_star, dtype=np.float64)
    x = np.broadcast_to(x[condition], (P, x.shape[-1])) if x.ndim == 2 else x[:, condition]
    return torch.as_tensor(np.array(x), dtype=dtype)


def _empty_graph(k: int) -> Graph:
    return Graph(
        weight=np.zeros((0, 0)),
        node_readout=np.zeros((0, k)),
        node_stable=np.zeros(0, dtype=bool),
        node_point=np.zeros(0, dtype=np.int64),
        unresolved=np.zeros(0),
        node_n_unstable=np.zeros(0, dtype=np.int64),
    )


def nearest_neighbour_graph(
    states: np.ndarray,
    node_readout: np.ndarray,
    k: int = 2,
    node_point: np.ndarray | None = None,
    node_stable: np.ndarray | None = None,
    readout_decimals: int | None = 1,
    order: np.ndarray | None = None,
) -> Graph:
    """Symmetric ``k``-nearest-neighbour graph of points in state space (weight 1 per edge).

    Parameters
    ----------
    states : ndarray, (n, S)
    node_readout : ndarray, (n, k_out)
        Position of each node in output space (sets the node order).
    k : int
        Neighbours per node (default 2: a chain along a line attractor).
    order : ndarray of int, optional
        Node order; default lexicographic by ``node_readout``.
    """
    n = len(states)
    node_readout = np.asarray(node_readout, dtype=np.float64)
    width = node_readout.shape[-1] if node_readout.ndim == 2 else 1
    node_readout = node_readout.reshape(n, width)
    if order is None:
        order = lexicographic_order(node_readout, readout_decimals)
    states = np.asarray(states)[order]
    w = np.zeros((n, n))
    if n > 1:
        kk = min(k, n - 1)
        _, idx = cKDTree(states).query(states, k=kk + 1)
        for a in range(n):
            for b in np.atleast_1d(idx[a])[1:]:
                w[a, b] = w[b, a] = 1.0
    stable = np.ones(n, dtype=bool) if node_stable is None else np.asarray(node_stable)[order]
    point = np.arange(n) if node_point is None else np.asarray(node_point)[order]
    return Graph(
        weight=w,
        node_readout=node_readout[order],
        node_stable=stable,
        node_point=point,
        unresolved=np.zeros(n),
    )


def line_attractor_graph(
    states: np.ndarray,
    readout: np.ndarray,
    n_nodes: int = 20,
    k: int = 2,
    node_point: np.ndarray | None = None,
    node_stable: np.ndarray | None = None,
) -> Graph:
    """Line-attractor graph with exactly ``n_nodes`` nodes (see the module docstring).

    Parameters
    ----------
    states : ndarray, (n, S)
        The context's attractor points.
    readout : ndarray, (n,) or (n, 1)
        Their readout (the first output orders them).
    n_nodes : int
        ``K``, nodes of the resampled curve (20).
    k : int
        Neighbours per node of the mutual nearest-neighbour graph (2).
    node_point, node_stable : ndarray, (n,), optional
        Row and stability of each attractor point; a node takes those of the attractor point
        nearest to it in readout.

    Returns
    -------
    Graph
        ``n_nodes`` nodes in increasing readout order with ``node_state`` set, or the points
        themselves (0 or 1 node) when they span no readout range.
    """
    if n_nodes < 2:
        raise ValueError(f"a line-attractor graph needs n_nodes >= 2, got {n_nodes}")
    states = np.asarray(states, dtype=np.float64)
    n = len(states)
    r = np.asarray(readout, dtype=np.float64).reshape(n, -1)[:, 0] if n else np.zeros(0)
    point = np.arange(n) if node_point is None else np.asarray(node_point, dtype=np.int64)
    stable = np.ones(n, dtype=bool) if node_stable is None else np.asarray(node_stable, bool)
    order = np.argsort(r, kind="stable")
    r, states, point, stable = r[order], states[order], point[order], stable[order]
    if n < 2 or not r[-1] > r[0]:
        keep = slice(0, min(n, 1))
        return Graph(
            weight=np.zeros((min(n, 1), min(n, 1))),
            node_readout=r[keep, None],
            node_stable=stable[keep],
            node_point=point[keep],
            unresolved=np.zeros(min(n, 1)),
            node_state=states[keep],
        )
    y = np.linspace(r[0], r[-1], n_nodes)
    seg = np.clip(np.searchsorted(r, y, side="right") - 1, 0, n - 2)
    span = r[seg + 1] - r[seg]
    t = np.where(span > 0, (y - r[seg]) / np.where(span > 0, span, 1.0), 0.0)
    node_state = states[seg] + t[:, None] * (states[seg + 1] - states[seg])
    nearest = np.where(t <= 0.5, seg, seg + 1)
    links = np.linalg.norm(np.diff(node_state, axis=0), axis=1)
    length = float(links.sum())
    kk = min(k, n_nodes - 1)
    _, idx = cKDTree(node_state).query(node_state, k=kk + 1)
    near = np.zeros((n_nodes, n_nodes), dtype=bool)
    for a in range(n_nodes):
        near[a, np.atleast_1d(idx[a])[1:]] = True
    mutual = near & near.T
    idx = np.arange(n_nodes - 1)
    mutual[idx, idx + 1] = mutual[idx + 1, idx] = True  # the curve itself
    np.fill_diagonal(mutual, False)
    d = np.linalg.norm(node_state[:, None, :] - node_state[None, :, :], axis=-1)
    w = np.where(mutual, d / length if length > 0 else 1.0, 0.0)
    return Graph(
        weight=w,
        node_readout=y[:, None],
        node_stable=stable[nearest],
        node_point=point[nearest],
        unresolved=np.zeros(n_nodes),
        node_state=node_state,
    )


def resample_along_readout(readout: np.ndarray, n_nodes: int) -> np.ndarray:
    """Indices of at most ``n_nodes`` points evenly spaced in rank along the first output."""
    r = np.asarray(readout, dtype=np.float64)
    if len(r) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(r.reshape(len(r), -1)[:, 0], kind="stable")
    if len(order) <= n_nodes:
        return order
    return order[np.round(np.linspace(0, len(order) - 1, n_nodes)).astype(np.int64)]


def graphs_to_dataset(
    graphs: Sequence[Graph],
    network_ids: Sequence[str],
    network_coords: pd.DataFrame | None = None,
    attrs: dict | None = None,
) -> xr.Dataset:
    """The graph Dataset of ``docs/architecture.md`` §5, NaN-padded to the largest graph.

    Variables: ``graph_weight (network, node, node_to)``, ``graph_node_readout (network,
    node, readout)``, ``graph_node_stable (network, node)``, ``graph_n_nodes (network)``,
    plus ``graph_node_unresolved``, ``graph_node_n_unstable`` and ``graph_node_point``
    (-1 beyond ``graph_n_nodes``; as written by the zoo driver: the node's position among
    its network's rows of the ``fixed_points`` analysis), and ``graph_node_state
    (network, node, state_dim)`` when the graphs carry node states (line attractors).
    """
    P = len(graphs)
    n_max = max((g.n_nodes for g in graphs), default=0)
    k = max((g.node_readout.shape[1] for g in graphs if g.node_readout.ndim == 2), default=1)
    W = np.full((P, n_max, n_max), np.nan)
    R = np.full((P, n_max, k), np.nan)
    st = np.zeros((P, n_max), dtype=bool)
    un = np.full((P, n_max), np.nan)
    nu = np.full((P, n_max), -1, dtype=np.int64)
    pt = np.full((P, n_max), -1, dtype=np.int64)
    S = max((g.node_state.shape[1] for g in graphs if g.node_state.size), default=0)
    ns = np.full((P, n_max, S), np.nan) if S else None
    for i, g in enumerate(graphs):
        n = g.n_nodes
        W[i, :n, :n] = g.weight
        R[i, :n] = g.node_readout
        st[i, :n] = g.node_stable
        if len(g.unresolved) == n:
            un[i, :n] = g.unresolved
        if len(g.node_n_unstable) == n:
            nu[i, :n] = g.node_n_unstable
        pt[i, :n] = g.node_point
        if ns is not None and g.node_state.size:
            ns[i, :n, : g.node_state.shape[1]] = g.node_state
    ds = xr.Dataset(
        {
            "graph_weight": (("network", "node", "node_to"), W),
            "graph_node_readout": (("network", "node", "readout"), R),
            "graph_node_stable": (("network", "node"), st),
            "graph_n_nodes": ("network", np.array([g.n_nodes for g in graphs], dtype=np.int64)),
            "graph_node_unresolved": (("network", "node"), un),
            "graph_node_n_unstable": (("network", "node"), nu),
            "graph_node_point": (("network", "node"), pt),
        },
        coords={"network": np.asarray(list(network_ids), dtype=object)},
        attrs=dict(attrs or {}),
    )
    if ns is not None:
        ds["graph_node_state"] = (("network", "node", "state_dim"), ns)
    if network_coords is not None:
        ds = ds.assign_coords(
            {
                c: ("network", network_coords.loc[list(network_ids), c].to_numpy())
                for c in network_coords.columns
            }
        )
    mode, differ = modal_node_count(ds["graph_n_nodes"].values, list(network_ids))
    ds["graph_is_modal"] = ("network", ds["graph_n_nodes"].values == mode)
    ds.attrs["graph_modal_n_nodes"] = int(mode)
    ds.attrs["graph_n_non_modal"] = len(differ)
    return ds


def modal_node_count(n_nodes: np.ndarray, network_ids: Sequence[str]) -> tuple[int, list[str]]:
    """The most common node count (ties: the smaller) and the networks that differ from it.

    Paper footnote 5 discards networks whose count differs from the modal one; here they are
    reported (and flagged by ``graph_is_modal``) rather than dropped.
    """
    n = np.asarray(n_nodes, dtype=np.int64)
    if n.size == 0:
        return 0, []
    values, counts = np.unique(n, return_counts=True)
    mode = int(values[np.argmax(counts)])
    return mode, [nid for nid, c in zip(network_ids, n, strict=True) if c != mode]


def modal_node_counts(ds: xr.Dataset, by: Sequence[str] = ()) -> pd.DataFrame:
    """Modal node count per population (all networks, or grouped by coordinates ``by``).

    Returns
    -------
    DataFrame
        One row per population: ``modal_n_nodes``, ``n_networks``, ``n_non_modal`` and
        ``non_modal`` (the differing network ids).
    """
    df = pd.DataFrame({"n_nodes": ds["graph_n_nodes"].values}, index=ds["network"].values)
    for c in by:
        df[c] = ds[c].values
    groups = df.groupby(list(by)) if by else [((), df)]
    rows = []
    for key, part in groups:
        mode, differ = modal_node_count(part["n_nodes"].values, list(part.index))
        row = dict(zip(by, key if isinstance(key, tuple) else (key,), strict=False))
        row.update(
            modal_n_nodes=mode, n_networks=len(part), n_non_modal=len(differ), non_modal=differ
        )
        rows.append(row)
    return pd.DataFrame(rows)
