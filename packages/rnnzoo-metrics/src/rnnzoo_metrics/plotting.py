"""Figures (needs the ``[plot]`` extra): MDS scatter and distance heat map.

The scatter is the paper's Fig. 1d, the heat map its Fig. 1c. Colours follow the paper:
one colour per architecture or activation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, require


def _project_palette() -> dict[str, str]:
    """The project's colours, written once in rnnzoo-train's architecture descriptors.

    With rnnzoo-train installed (any zoo user: it reads the zoo, no torch needed) every
    architecture, built-in or plugin, each activation and trained / untrained get the colours
    of every other rnnzoo figure; rnnzoo-metrics alone (your own recordings, no architectures)
    colours categories from a neutral cycle.
    """
    try:
        from rnnzoo_train.cells.registry import palette
    except ImportError:
        return {}
    return palette()


#: fixed colours so that every figure of a study agrees (empty without rnnzoo-train)
PALETTE: dict[str, str] = _project_palette()
_FALLBACK = ["#e377c2", "#bcbd22", "#17becf", "#7f7f7f", "#aec7e8", "#ffbb78", "#98df8a"]


def save_png(fig: Any, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``fig`` as a PNG marked as an rnnzoo-metrics figure, atomically.

    An existing ``path`` is replaced only with ``overwrite=True`` and only if it is a
    figure written by rnnzoo-metrics (PNG text ``Software: rnnzoo-metrics ...``); see
    :mod:`rnnzoo_metrics.targets`.
    """
    from . import __version__
    from .atomic import publish, remove_temp, temp_path
    from .targets import FIGURE_SOFTWARE, check_output, identify

    p = check_output(path, "figure", overwrite=overwrite, suffixes=(".png",))
    replace = identify(p).kind == "figure"
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(p, directory=False)
    try:
        fig.savefig(
            tmp, format="png", dpi=150, metadata={"Software": f"{FIGURE_SOFTWARE} {__version__}"}
        )
        publish(tmp, p, replace=replace)
    except BaseException:
        remove_temp(tmp)
        raise
    return p


def colours_for(values: np.ndarray) -> dict[Any, str]:
    """A stable colour for each distinct category value."""
    out: dict[Any, str] = {}
    spare = iter(_FALLBACK * 10)
    for v in sorted(set(values.tolist()), key=str):
        out[v] = PALETTE.get(str(v).lower()) or next(spare)
    return out


def _as_str(values: Any) -> np.ndarray:
    """Any 1-D coordinate (object, numpy StringDType from Zarr, numbers) as ``<U`` strings."""
    return np.array([str(v) for v in np.asarray(values).tolist()], dtype=str)


def _figure(figsize):
    require("matplotlib", "plot", "plotting")
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _coord(obj: Any, name: str) -> np.ndarray:
    if name not in obj.coords or obj.coords[name].dims != ("network",):
        have = [str(c) for c, v in obj.coords.items() if v.dims == ("network",)]
        raise InputError(f"no network coordinate {name!r} to colour/sort by; available: {have}")
    return np.asarray(obj.coords[name].values)


def plot_embedding(
    emb: Any,
    color_by: str | None = "arch",
    *,
    path: str | Path | None = None,
    title: str | None = None,
    ax: Any = None,
):
    """Scatter of a 2-D embedding, one colour per value of a network coordinate.

    Parameters
    ----------
    emb : xarray.DataArray
        ``(network, component)`` from :func:`rnnzoo_metrics.embed`.
    color_by : str or None
        Network coordinate to colour by (``arch``, ``activation``...); numeric
        coordinates get a colour bar.
    path : path, optional
        Write a PNG there.
    title : str, optional
    ax : matplotlib Axes, optional
        Draw into this axes instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if tuple(emb.dims) != ("network", "component") or emb.sizes["component"] < 2:
        raise InputError("plot_embedding needs a (network, component) array with >= 2 components")
    fig = ax.figure if ax is not None else _figure((5.0, 4.2))
    ax = ax if ax is not None else fig.add_subplot()
    xy = np.asarray(emb.values)[:, :2]
    if color_by is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=18, c="k")
    else:
        vals = _coord(emb, color_by)
        if np.issubdtype(vals.dtype, np.number) and len(set(vals.tolist())) > 8:
            sc = ax.scatter(xy[:, 0], xy[:, 1], s=18, c=vals, cmap="viridis")
            fig.colorbar(sc, ax=ax, label=color_by)
        else:
            for v, col in colours_for(vals).items():
                sel = vals == v
                ax.scatter(
                    xy[sel, 0], xy[sel, 1], s=18, c=col, label=str(v), alpha=0.85, edgecolors="none"
                )
            ax.legend(title=color_by, fontsize=8, title_fontsize=8, frameon=False)
    method = emb.attrs.get("method", "")
    metric = emb.attrs.get("metric", "")
    ax.set_xlabel(f"MDS 1 ({metric})" if metric else "MDS 1")
    ax.set_ylabel("MDS 2")
    ax.set_title(title or f"{method} MDS of {metric} distances".strip())
    if path is not None:
        fig.savefig(path, dpi=150)
    return fig


def plot_distance_matrix(
    d: Any,
    sort_by: tuple[str, ...] | list[str] = ("arch", "activation"),
    *,
    path: str | Path | None = None,
    title: str | None = None,
):
    """Heat map of a ``(network, network_to)`` matrix, networks sorted by coordinates.

    Groups of the first sort coordinate are separated by white lines and labelled.
    Coordinates that do not exist are ignored.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if tuple(d.dims) != ("network", "network_to"):
        raise InputError(f"expected a (network, network_to) matrix, got dims {tuple(d.dims)}")
    keys = [k for k in sort_by if k in d.coords and d.coords[k].dims == ("network",)]
    order = np.arange(d.sizes["network"])
    if keys:
        order = np.lexsort([_as_str(d.coords[k].values) for k in keys[::-1]])
    a = np.asarray(d.values)[np.ix_(order, order)]
    fig = _figure((5.6, 4.8))
    ax = fig.add_subplot()
    im = ax.imshow(np.ma.masked_invalid(a), cmap="viridis", interpolation="nearest")
    label = d.attrs.get("metric", d.name or "value")
    fig.colorbar(im, ax=ax, label=f"{label} ({d.attrs.get('kind', 'distance')})")
    if keys:
        groups = _as_str(d.coords[keys[0]].values)[order]
        edges = np.flatnonzero(groups[1:] != groups[:-1]) + 1
        for e in edges:
            ax.axhline(e - 0.5, color="w", lw=0.8)
            ax.axvline(e - 0.5, color="w", lw=0.8)
        bounds = np.concatenate([[0], edges, [len(groups)]])
        centres = 0.5 * (bounds[:-1] + bounds[1:]) - 0.5
        names = [groups[b] for b in bounds[:-1]]
        ax.set_xticks(centres, names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(centres, names, fontsize=8)
        ax.set_xlabel(f"network (sorted by {', '.join(keys)})")
        ax.set_ylabel("network")
    else:
        ax.set_xlabel("network")
        ax.set_ylabel("network")
    ax.set_title(title or f"{label} between networks")
    if path is not None:
        fig.savefig(path, dpi=150)
    return fig
