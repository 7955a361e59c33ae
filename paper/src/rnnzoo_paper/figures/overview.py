"""The paper's message in one small figure (used at the top of the report and in the README).

Left: flip-flop networks cluster by architecture in SVCCA geometry; middle: their fixed-point
transition graphs do not; right: cdi networks integrate with few (Vanilla) or many (gated)
linear modes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import dynamics
from ..derived import context_mean
from ..style import colour, empty_panel, label, new_figure, ordered, save
from .common import (
    FigureContext,
    coord,
    graph_embedding,
    integrator_ylim,
    median_iqr_line,
    populations,
)

CAPTION = (
    "Overview. Flip-flop tanh networks in the MDS of SVCCA distances (left) and of "
    "fixed-point graph distances (middle), coloured by architecture; right: cdi networks' "
    "linearised response to a unit pulse against the number of linear modes kept, on the line "
    "attractor (median and interquartile range of the tanh networks; 1 = ideal integrator)."
)
TASK = None


def _mds(ax, emb, title: str) -> None:
    if emb is None:
        empty_panel(ax, f"{title}: not available")
        return
    xy = np.asarray(emb.values)[:, :2]
    act, arch = coord(emb, "activation"), coord(emb, "arch")
    sub = act == "tanh" if (act == "tanh").any() else np.ones(len(act), dtype=bool)
    for a in ordered(arch[sub]):
        sel = sub & (arch == a)
        ax.scatter(
            xy[sel, 0],
            xy[sel, 1],
            s=26,
            color=colour(a),
            label=label(a),
            edgecolor="white",
            linewidth=0.4,
        )
    ax.set_xlabel("MDS 1")
    ax.set_ylabel("MDS 2")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, frameon=False)
    ax.set_aspect("equal", adjustable="datalim")


def draw(ctx: FigureContext, path: str | Path) -> Path:
    """Draw the overview into ``path`` (PNG)."""
    fig = new_figure(12, 3.9)
    a, b, c = fig.subplots(1, 3)
    _mds(a, ctx.embedding("flipflop", "svcca"), "flip-flop geometry (SVCCA)")
    emb, what = graph_embedding(ctx, "flipflop")
    _mds(b, emb, "flip-flop topology (" + what.split("\n")[0].removesuffix(" MDS") + ")")
    cdi = dynamics(ctx.zoo, "cdi", "cdi_linear") if "cdi" in ctx.tasks else None
    if cdi is None:
        empty_panel(c, "cdi mode ablation: not available")
    else:
        k = min(10, cdi.sizes["modes_kept"])
        # averaged over the points on the line attractor and the contexts that have one
        abl = context_mean(np.asarray(cdi["ablation"].values, dtype=float)[:, :, :k])
        for name, rows in populations(cdi, "arch"):
            median_iqr_line(c, np.arange(1, k + 1), abl[rows], name)
        c.axhline(1.0, color="k", ls="--", lw=0.8)
        c.set_ylim(*integrator_ylim(abl))
        c.set_xlabel("linear modes kept")
        c.set_ylabel("response to a unit pulse (median, IQR)")
        c.set_title("cdi integration: modes used", fontsize=10)
        c.legend(fontsize=7, frameon=False)
    return save(fig, path)
