"""Beyond the paper: what DSA sees in the zoo (MDS per task, clustering, Fig. 4's question).

One row per task: the MDS of the DSA distances laid out as the paper's SVCCA panels (by
architecture among tanh networks, by activation among Vanilla networks; the project palette)
and the silhouette excess over chance of every distance by architecture and by activation.
A last row: Fig. 4's populations, mean SVCCA and DSA distances (the rule's rank and the
rank check's) from the trained relu networks, and the MDS of the DSA distances of trained
and untrained networks.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..derived import fig4_groups
from ..distances import DISTANCES, FIG4_ARCH, FIG4_TASK
from ..dsa_report import CAPTION as _CAPTION
from ..dynamical_similarity import COMPARED, KEY, DSAResult
from ..findings import TASK_NAME
from ..style import colour, empty_panel, new_figure, panel_letter, save
from .common import FigureContext, coord, mds_layouts

TASK = None
CAPTION = _CAPTION
#: bar colours of the distances in the clustering panel: geometry blue, topology orange
BAR_COLOURS = {
    "svcca": "#4c72b0",
    "cka": "#8fb0e0",
    KEY: "#2a2a2a",
    "dsa-rank-check": "#8a8a8a",
    "graph": "#dd8452",
    "graph-matched": "#f2b88c",
}
POPULATIONS = ("untrained relu", "trained tanh", "untrained tanh")
CHECK = "dsa-rank-check"


def draw(ctx: FigureContext, path: str | Path) -> Path:
    """Draw the DSA figure into ``path`` (PNG); panels say why when data are missing."""
    return save(figure(ctx), path)


def figure(ctx: FigureContext) -> Any:
    """The figure (a matplotlib Figure): three panels per task, four for Fig. 4's question."""
    res: DSAResult | None = getattr(ctx, "dsa", None)
    tasks = [t for t in ctx.tasks if res is not None and (t in res.matrices or t in res.errors)]
    rows = max(len(tasks), 1) + 1
    fig = new_figure(17, 4.3 * rows)
    subs = np.atleast_1d(fig.subfigures(rows, 1))
    if res is None or not tasks:
        empty_panel(subs[0].add_subplot(), "DSA was not computed for this run")
        _bottom(subs[-1], res)
        return fig
    for k, (sub, task) in enumerate(zip(subs[:-1], tasks, strict=True)):
        _task_row(sub, res, task, chr(ord("a") + k))
    _bottom(subs[-1], res, chr(ord("a") + len(tasks)))
    return fig


def _task_row(sub: Any, res: DSAResult, task: str, letter: str) -> None:
    axes = sub.subplots(1, 3, width_ratios=[1, 1, 1.15])
    p = res.params.get(task)
    name = TASK_NAME.get(task, task)
    if p:
        what = (
            f"{name}: DSA MDS\n(n_delays {p['n_delays']} x {p['delay_interval']}, rank {p['rank']})"
        )
    else:
        what = f"{name}: DSA"
    if task in res.errors:
        for ax in axes[:2]:
            empty_panel(ax, f"{name}: DSA not computed ({res.errors[task]})")
    else:
        emb = res.embeddings.get(task)
        mds_layouts(list(axes[:2]), emb, what)
        if emb is not None:
            for ax in axes[:2]:
                zoom(ax, np.asarray(emb.values)[:, :2])
    panel_letter(axes[0], letter)
    check = res.check_excess.get(task, {})
    rank = res.check_params.get(task, {}).get("rank")
    extra = {(CHECK, b): v for (k, b), v in check.items() if k == KEY} if rank else {}
    _excess_panel(axes[2], {**res.excess.get(task, {}), **extra}, name, rank)


def zoom(ax: Any, xy: np.ndarray, keep: float = 0.9, pad: float = 0.6) -> int:
    """Limit the view to the bulk of the MDS points; say how many lie outside.

    A few networks far from the rest (e.g. one whose dynamics are unlike every other's)
    would otherwise squeeze the rest into one dot. The view spans the central ``keep``
    fraction of the points along each axis, padded by ``pad`` of that span; points outside
    are counted in a note. Returns that count.
    """
    xy = xy[np.isfinite(xy).all(axis=1)]
    if len(xy) < 5:
        return 0
    q = (1 - keep) / 2
    lo, hi = np.quantile(xy, [q, 1 - q], axis=0)
    span = np.maximum(hi - lo, 1e-12)
    lo, hi = lo - pad * span, hi + pad * span
    full_lo, full_hi = xy.min(axis=0), xy.max(axis=0)
    if (full_lo >= lo).all() and (full_hi <= hi).all():
        return 0
    outside = int((~((xy >= lo) & (xy <= hi)).all(axis=1)).sum())
    ax.set_aspect("auto")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.text(
        0.99,
        0.01,
        f"{outside} network(s) outside the view",
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize=7,
        color="0.35",
    )
    return outside


def _excess_panel(ax: Any, table: dict, name: str, check_rank: int | None = None) -> None:
    """Silhouette excess over chance per distance, by architecture and by activation."""
    keys = [
        k for k in (KEY, CHECK, *COMPARED) if any((k, b) in table for b in ("arch", "activation"))
    ]
    if not keys:
        empty_panel(ax, f"{name}: no clustering test computable")
        return
    width = 0.8 / len(keys)
    for j, k in enumerate(keys):
        for i, by in enumerate(("arch", "activation")):
            e, p = table.get((k, by), (math.nan, math.nan))
            if not math.isfinite(e):
                continue
            sig = math.isfinite(p) and p <= 0.05
            ax.bar(
                i + (j - (len(keys) - 1) / 2) * width,
                e,
                width * 0.92,
                color=BAR_COLOURS.get(k, "0.5") if sig else "white",
                edgecolor=BAR_COLOURS.get(k, "0.5"),
                hatch=None if sig else "//",
                linewidth=1.3,
                label=_title(k, check_rank),
            )
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xticks([0, 1], ["by architecture\n(within activation)", "by activation\n(within arch.)"])
    ax.set_xlabel("label tested (silhouette within the other factor)")
    ax.set_ylabel("silhouette excess over chance")
    ax.set_title(f"{name}: clustering by label (filled: p <= 0.05)", fontsize=9)
    handles, labels = ax.get_legend_handles_labels()
    seen = dict(zip(labels, handles, strict=True))
    ax.legend(seen.values(), seen.keys(), fontsize=7, frameon=False, loc="best")


def _title(key: str, check_rank: int | None = None) -> str:
    if key == CHECK:
        return f"DSA, rank check (rank {check_rank})"
    return "DSA" if key == KEY else DISTANCES[key].title


def _bottom(sub: Any, res: DSAResult | None, letter: str = "b") -> None:
    axes = sub.subplots(1, 4, width_ratios=[1, 1, 1, 1.15])
    svcca = res.svcca_trained_untrained if res is not None else None
    dsa = res.trained_untrained if res is not None else None
    check = res.check_trained_untrained if res is not None else None
    cdi = res.params.get(FIG4_TASK, {}) if res is not None else {}
    rank = res.check_params.get(FIG4_TASK, {}).get("rank") if res is not None else None
    _groups_panel(axes[0], svcca, "SVCCA (Fig. 4b)")
    _groups_panel(axes[1], dsa, f"DSA (rank {cdi.get('rank', '?')})")
    _groups_panel(axes[2], check, f"DSA, rank check (rank {rank or '?'})")
    panel_letter(axes[0], letter)
    _mds_panel(axes[3], res.trained_untrained_embedding if res is not None else None)


def _groups_panel(ax: Any, d: Any, what: str) -> None:
    groups = fig4_groups(d) if d is not None else {}
    names = [n for n in POPULATIONS if n in groups]
    if not names:
        empty_panel(ax, f"{what}: needs trained relu Vanilla {FIG4_TASK} networks")
        return
    rng = np.random.default_rng(0)
    for x, name in enumerate(names):
        v = groups[name]
        which, act = name.split()
        ax.bar(
            x,
            float(np.mean(v)),
            color=colour(act),
            alpha=0.35 if which == "trained" else 0.12,
            edgecolor=colour(act),
            width=0.6,
        )
        ax.scatter(
            x + rng.uniform(-0.12, 0.12, len(v)),
            v,
            color=colour(act) if which == "trained" else "white",
            edgecolor=colour(act),
            s=26,
            zorder=3,
        )
    ax.set_xticks(range(len(names)), [n.replace(" ", "\n") for n in names])
    ax.set_ylabel(f"mean {what.split()[0].rstrip(',')} distance to trained relu")
    ax.set_xlabel(f"population ({FIG4_ARCH} networks, {FIG4_TASK} probe inputs)")
    ax.set_title(f"{what}:\nwho is closest to trained relu networks?", fontsize=9)


def _mds_panel(ax: Any, emb: Any) -> None:
    if emb is None:
        empty_panel(ax, "too few trained and untrained Vanilla networks for an MDS")
        return
    xy = np.asarray(emb.values)[:, :2]
    act, tr = coord(emb, "activation"), coord(emb, "trained")
    for a in ("tanh", "relu"):
        for t in ("trained", "untrained"):
            sel = (act == a) & (tr == t)
            if sel.any():
                ax.scatter(
                    xy[sel, 0],
                    xy[sel, 1],
                    s=36,
                    label=f"{t} {a}",
                    facecolor=colour(a) if t == "trained" else "white",
                    edgecolor=colour(a),
                    linewidth=1.2,
                    zorder=3 if t == "trained" else 2,
                )
    ax.set_xlabel("MDS 1")
    ax.set_ylabel("MDS 2")
    ax.set_title("MDS of DSA distances: trained and untrained Vanilla networks", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    ax.set_aspect("equal", adjustable="datalim")
