"""Panels shared by the figures: MDS layouts, sorted distance matrices, PCA, mean ± s.e."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from ..data import as_str
from ..stats import mean_se
from ..style import (
    LAYOUTS,
    cell_label,
    colour,
    empty_panel,
    label,
    ordered,
)


@dataclass
class FigureContext:
    """Everything the figures read: the zoo, its tasks, distance matrices and embeddings.

    Attributes
    ----------
    zoo : rnnzoo_train.zoo.Zoo
    tasks : list of str
    distances : dict
        ``distances[task][key]``: ``(network, network_to)`` DataArrays (see
        :mod:`rnnzoo_paper.distances`).
    embeddings : dict
        ``embeddings[task][key]``: ``(network, component)`` DataArrays.
    fig4 : DataArray or None
        Trained/untrained SVCCA matrix of Fig. 4.
    fig4_embedding : DataArray or None
    dsa : rnnzoo_paper.dynamical_similarity.DSAResult or None
        Beyond the paper: DSA matrices, embeddings and questions.
    """

    zoo: Any
    tasks: list[str]
    distances: dict[str, dict[str, xr.DataArray]] = field(default_factory=dict)
    embeddings: dict[str, dict[str, xr.DataArray]] = field(default_factory=dict)
    fig4: xr.DataArray | None = None
    fig4_embedding: xr.DataArray | None = None
    dsa: Any = None

    def embedding(self, task: str, key: str) -> xr.DataArray | None:
        return self.embeddings.get(task, {}).get(key)


def graph_embedding(ctx: FigureContext, task: str) -> tuple[xr.DataArray | None, str]:
    """The embedding for a graph-MDS panel and its title.

    The paper's fixed-point graph distance when at least half the networks are comparable
    (same node count), else the matched graph distance (defined for any node counts).
    """
    emb = ctx.embedding(task, "graph")
    d = ctx.distances.get(task, {}).get("graph")
    n = d.sizes["network"] if d is not None else 0
    if emb is not None and emb.sizes["network"] * 2 >= n:
        dropped = int(emb.attrs.get("n_dropped_incomparable", 0))
        note = f"\n({dropped} network(s) at another node count left out)" if dropped else ""
        return emb, "graph MDS" + note
    matched = ctx.embedding(task, "graph-matched")
    kept = emb.sizes["network"] if emb is not None else 0
    return matched, (f"matched-graph MDS\n(paper's graph distance: only {kept} of {n} comparable)")


def coord(obj: xr.DataArray | xr.Dataset, name: str) -> np.ndarray:
    """Coordinate ``name`` along ``network`` as ``str`` objects (empty strings if absent)."""
    if name not in obj.coords:
        return np.array([""] * obj.sizes["network"], dtype=object)
    return as_str(obj[name].values)


def mds_layouts(axes: list[Any], emb: xr.DataArray | None, what: str) -> None:
    """The paper's two MDS panels: by architecture (tanh networks), by activation (Vanilla).

    The embedding is of the whole population; each panel shows its subset.
    """
    for ax, (by, subset_coord, subset_value) in zip(axes, LAYOUTS, strict=True):
        if emb is None:
            empty_panel(ax, f"{what}: not available for this zoo")
            continue
        xy = np.asarray(emb.values)[:, :2]
        sub = coord(emb, subset_coord) == subset_value
        if not sub.any():  # e.g. a zoo without tanh networks: show everything
            sub = np.ones(len(xy), dtype=bool)
            subset_text = "all networks"
        else:
            subset_text = f"{label(subset_value)} networks"
        values = coord(emb, by)
        if (~sub).any():
            ax.scatter(xy[~sub, 0], xy[~sub, 1], s=10, color="0.88", zorder=1, label="others")
        for v in ordered(values[sub]):
            sel = sub & (values == v)
            ax.scatter(
                xy[sel, 0],
                xy[sel, 1],
                s=28,
                color=colour(v),
                label=label(v),
                zorder=2,
                edgecolor="white",
                linewidth=0.4,
            )
        _label_coincident(ax, xy[sub], values[sub])
        ax.set_xlabel("MDS 1")
        ax.set_ylabel("MDS 2")
        word = "architecture" if by == "arch" else "activation"
        head, _, note = what.partition("\n")
        title = f"{head}: by {word} ({subset_text})" + (f"\n{note}" if note else "")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, frameon=False, loc="best")
        ax.set_aspect("equal", adjustable="datalim")


def _label_coincident(ax: Any, xy: np.ndarray, values: np.ndarray, rel_tol: float = 1e-6) -> None:
    """Write ``×k`` next to every position shared by ``k > 1`` of the plotted networks.

    Networks at distance 0 (e.g. identical fixed-point graphs) land on one MDS point and
    would otherwise look like a single network of the colour drawn last; when they differ in
    the colouring label, the note gives the count per label (``×16: 4 Vanilla, 4 GRU, ...``).
    """
    finite = np.isfinite(xy).all(axis=1)
    pts, vals = xy[finite], np.asarray(values)[finite]
    if len(pts) < 2:
        return
    scale = float(np.ptp(pts, axis=0).max()) or 1.0
    keys = np.round(pts / (scale * rel_tol)).astype(np.int64)
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    for g in np.flatnonzero(counts > 1):
        members = np.flatnonzero(inverse == g)
        here = vals[members]
        kinds = ordered(here)
        text = f"×{counts[g]}"
        if len(kinds) > 1:
            text += ": " + ", ".join(f"{int((here == v).sum())} {label(v)}" for v in kinds)
        x, y = pts[members[0]]
        ax.annotate(
            text,
            (x, y),
            xytext=(4, 4),
            textcoords="offset points",
            fontsize=6.5,
            color="0.2",
            zorder=3,
        )


def sorted_matrix(ax: Any, d: xr.DataArray | None, what: str) -> None:
    """Heat map of a distance matrix sorted by architecture then activation (Fig. 1c)."""
    if d is None:
        empty_panel(ax, f"{what}: not available")
        return
    arch, act = coord(d, "arch"), coord(d, "activation")
    rank_a = {v: i for i, v in enumerate(ordered(arch))}
    rank_f = {v: i for i, v in enumerate(ordered(act))}
    order = np.lexsort(([rank_f[v] for v in act], [rank_a[v] for v in arch]))
    a = np.asarray(d.values, dtype=float)[np.ix_(order, order)]
    im = ax.imshow(np.ma.masked_invalid(a), cmap="viridis", interpolation="nearest")
    ax.figure.colorbar(im, ax=ax, shrink=0.8, label=f"{what} distance")
    groups = np.array([cell_label(x, y) for x, y in zip(arch[order], act[order], strict=True)])
    edges = np.flatnonzero(groups[1:] != groups[:-1]) + 1
    for e in edges:
        ax.axhline(e - 0.5, color="w", lw=0.6)
        ax.axvline(e - 0.5, color="w", lw=0.6)
    bounds = np.concatenate([[0], edges, [len(groups)]])
    centres = 0.5 * (bounds[:-1] + bounds[1:]) - 0.5
    names = [groups[b] for b in bounds[:-1]]
    ax.set_xticks(centres, names, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(centres, names, fontsize=7)
    for tick, name in zip(ax.get_xticklabels(), names, strict=True):
        tick.set_color(colour(name.split()[0].lower()))
    for tick, name in zip(ax.get_yticklabels(), names, strict=True):
        tick.set_color(colour(name.split()[0].lower()))
    ax.set_xlabel("network (sorted by architecture, activation)")
    ax.set_ylabel("network")


def pca(states: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, the first ``k`` principal axes ``(k, S)`` and explained-variance fractions."""
    flat = states.reshape(-1, states.shape[-1]).astype(float)
    flat = flat[np.isfinite(flat).all(axis=1)]
    mean = flat.mean(axis=0)
    _, s, vt = np.linalg.svd(flat - mean, full_matrices=False)
    var = s**2 / max(float(np.sum(s**2)), 1e-300)
    k = min(k, vt.shape[0])
    return mean, vt[:k], var[:k]


def mean_se_line(ax: Any, x: np.ndarray, values: np.ndarray, name: str) -> None:
    """Mean ± s.e. over rows of ``values`` as a line and a shaded band in ``name``'s colour."""
    values = np.asarray(values, dtype=float)
    if values.size == 0 or not np.isfinite(values).any():
        return
    mean, se = mean_se(values, axis=0)
    n = values.shape[0]
    ax.plot(x, mean, color=colour(name), lw=1.6, label=f"{label(name)} (n={n})")
    ax.fill_between(x, mean - se, mean + se, color=colour(name), alpha=0.25, lw=0)


def median_iqr_line(ax: Any, x: np.ndarray, values: np.ndarray, name: str) -> None:
    """Median and interquartile band over rows: robust where a few networks blow up."""
    values = np.asarray(values, dtype=float)
    keep = np.isfinite(values).any(axis=1) if values.ndim == 2 else np.zeros(0, bool)
    values = values[keep]
    if values.size == 0:
        return
    q1, med, q3 = np.nanpercentile(values, [25, 50, 75], axis=0)
    ax.plot(x, med, color=colour(name), lw=1.6, label=f"{label(name)} (n={len(values)})")
    ax.fill_between(x, q1, q3, color=colour(name), alpha=0.2, lw=0)


def populations(ds: xr.Dataset | xr.DataArray, by: str) -> list[tuple[str, np.ndarray]]:
    """Row masks of the paper's layouts: by arch among tanh, by activation among Vanilla."""
    arch, act = coord(ds, "arch"), coord(ds, "activation")
    if by == "arch":
        base = act == "tanh" if (act == "tanh").any() else np.ones(len(act), dtype=bool)
        return [(a, base & (arch == a)) for a in ordered(arch[base])]
    base = arch == "vanilla" if (arch == "vanilla").any() else np.ones(len(arch), dtype=bool)
    return [(a, base & (act == a)) for a in ordered(act[base])]


def pick_network(index, prefer: tuple[tuple[str, str], ...], ids: list[str]) -> str | None:
    """The first of ``ids`` whose (arch, activation) comes earliest in ``prefer``."""
    if not ids:
        return None
    rank = {p: i for i, p in enumerate(prefer)}

    def key(nid: str) -> tuple[int, str]:
        row = index.loc[nid]
        return rank.get((str(row["arch"]), str(row["activation"])), len(rank)), nid

    return sorted(ids, key=key)[0]


def one_per_cell(index, ids: list[str]) -> list[tuple[str, str, str]]:
    """``(arch, activation, network)`` with the lowest-seed network of every cell type."""
    rows = index.loc[ids]
    out = []
    for arch in ordered(rows["arch"].astype(str).to_numpy()):
        for act in ordered(rows["activation"].astype(str).to_numpy()):
            sel = rows[(rows["arch"].astype(str) == arch) & (rows["activation"].astype(str) == act)]
            if len(sel):
                out.append((arch, act, str(sel.sort_values("seed").index[0])))
    return out


def integrator_ylim(values: np.ndarray) -> tuple[float, float]:
    """A linear range that shows 0, the ideal 1 and the bulk of the curves (1st-99th pct)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    lo, hi = np.percentile(v, [1, 99]) if v.size else (0.0, 1.0)
    lo, hi = min(float(lo), 0.0), max(float(hi), 1.2)
    pad = 0.05 * (hi - lo)
    return lo - pad, hi + pad
