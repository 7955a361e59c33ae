"""Fig. 3: context-dependent integration, from line attractors to mode ablation.

Probe responses and line attractors, SVCCA and graph MDS, sorted eigenvalue spectra, mode
ablation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..data import as_str, dynamics, ok_networks
from ..derived import context_mean
from ..style import cell_label, colour, empty_panel, new_figure, panel_letter, save
from .common import (
    FigureContext,
    graph_embedding,
    integrator_ylim,
    mds_layouts,
    mean_se_line,
    median_iqr_line,
    one_per_cell,
    pca,
    populations,
)

TASK = "cdi"
CONTEXT = 0
N_MODES = 20
CAPTION = (
    "Fig. 3 (context-dependent integration). **b** Probe responses of context 1 in the first "
    "two PCs (blue to red: mean of the cued stream from -1 to 1) with the fixed and slow "
    "points of that context (black: on the line attractor, i.e. on the probe flow with a "
    "leading mode slow on the trial's time scale; grey: the others), one network per cell "
    "type. **c** MDS of SVCCA distances. **d** MDS of the line-attractor graph distance "
    "(the matched graph distance where fewer than half "
    "the networks share a node count; the panel title says which). "
    "**e** Sorted |eigenvalues| averaged over the fixed points on the line attractor (and "
    "over the contexts that have one), mean ± s.e. over tanh networks by architecture. "
    "**f** Linearised output 30 steps after a unit pulse on the cued stream keeping the m "
    "largest modes, averaged likewise (1 = ideal integrator), by architecture: median and "
    "interquartile range over tanh networks. Networks without a line attractor in either "
    "context are left out (n in the legends)."
)


def draw(ctx: FigureContext, path: str | Path) -> Path:
    """Draw Fig. 3 into ``path`` (PNG)."""
    fig = new_figure(17, 14)
    if TASK not in ctx.tasks:
        empty_panel(fig.add_subplot(), "this zoo has no cdi task")
        return save(fig, path)
    top, mid, bottom = fig.subfigures(3, 1, height_ratios=[1.1, 1, 1])
    zoo = ctx.zoo
    _panel_b(top, zoo, zoo.index(TASK), ok_networks(zoo, TASK))
    c_fig, d_fig = mid.subfigures(1, 2)
    axes_c = list(c_fig.subplots(1, 2))
    mds_layouts(axes_c, ctx.embedding(TASK, "svcca"), "SVCCA MDS")
    panel_letter(axes_c[0], "c")
    axes_d = list(d_fig.subplots(1, 2))
    mds_layouts(axes_d, *graph_embedding(ctx, TASK))
    panel_letter(axes_d[0], "d")
    ax_e, ax_f = bottom.subplots(1, 2)
    cdi = dynamics(zoo, TASK, "cdi_linear")
    _panel_e(ax_e, cdi)
    panel_letter(ax_e, "e")
    _panel_f(ax_f, cdi)
    panel_letter(ax_f, "f")
    return save(fig, path)


def _panel_b(sub: Any, zoo, index, ok: list[str]) -> None:
    from matplotlib import colormaps

    cells = one_per_cell(index, ok)
    if not cells:
        empty_panel(sub.subplots(), "no trained networks")
        return
    probe = zoo.probe(TASK)
    ctxs = np.asarray(probe.labels.get("context", np.zeros(len(probe.inputs))), dtype=int)
    mu = np.asarray(probe.labels.get("mu", np.zeros(len(probe.inputs))), dtype=float)
    trials = np.flatnonzero(ctxs == CONTEXT)
    fp = dynamics(zoo, TASK, "fixed_points")
    tree = zoo.hidden_states(TASK, [c[2] for c in cells], which="trained")
    states = {}
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False)
        if "hidden_trained" in ds:
            for i, nid in enumerate(as_str(ds["network"].values)):
                states[nid] = np.asarray(ds["hidden_trained"].values[i])
    cmap = colormaps["coolwarm"]
    axes = sub.subplots(2, 4) if len(cells) > 4 else sub.subplots(1, len(cells), squeeze=False)
    axes = np.asarray(axes).ravel()
    for ax in axes[len(cells) :]:
        ax.set_visible(False)
    for j, (arch, act, nid) in enumerate(cells):
        ax = axes[j]
        x = states[nid][trials]
        mean, pcs, var = pca(x, 2)
        proj = (x - mean) @ pcs.T
        for k, tr in zip(trials, proj, strict=True):
            ax.plot(tr[:, 0], tr[:, 1], color=cmap((mu[k] + 1) / 2), lw=0.8, alpha=0.8)
        lo, hi = proj.reshape(-1, 2).min(0), proj.reshape(-1, 2).max(0)
        pad = 0.15 * (hi - lo) + 1e-9
        if fp is not None:
            sel = (as_str(fp["network"].values) == nid) & (
                np.asarray(fp["condition"].values) == CONTEXT
            )
            if sel.any():
                n_units = x.shape[-1]  # LSTM: the readout state h is the first half
                pts = (np.asarray(fp["state"].values)[sel][:, :n_units] - mean) @ pcs.T
                on = (
                    np.asarray(fp["on_line_attractor"].values, dtype=bool)[sel]
                    if "on_line_attractor" in fp
                    else np.ones(len(pts), dtype=bool)
                )
                ax.scatter(
                    pts[~on, 0],
                    pts[~on, 1],
                    s=8,
                    color="0.6",
                    zorder=2,
                    label="other fixed/slow points",
                )
                ax.scatter(
                    pts[on, 0], pts[on, 1], s=12, color="k", zorder=3, label="on the line attractor"
                )
                outside = int(np.sum(np.any((pts < lo - pad) | (pts > hi + pad), axis=1)))
                if outside:
                    ax.text(
                        0.98,
                        0.02,
                        f"{outside} point(s) outside the view",
                        fontsize=6,
                        ha="right",
                        va="bottom",
                        transform=ax.transAxes,
                        color="0.3",
                    )
        ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
        ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
        ax.set_title(cell_label(arch, act), fontsize=9, color=colour(arch))
        ax.set_xlabel(f"PC 1 ({var[0]:.0%})", fontsize=8)
        ax.set_ylabel(f"PC 2 ({var[1]:.0%})" if len(var) > 1 else "PC 2", fontsize=8)
        ax.tick_params(labelsize=7)
        if j == 0:
            panel_letter(ax, "b")
            ax.legend(fontsize=6, frameon=False, loc="best")


def _panel_e(ax: Any, cdi) -> None:
    if cdi is None:
        empty_panel(ax, "no cdi_linear analysis")
        return
    k = min(N_MODES, cdi.sizes["mode"])
    spec = context_mean(np.asarray(cdi["spectrum"].values, dtype=float)[:, :, :k])
    for name, rows in populations(cdi, "arch"):
        rows = rows & np.isfinite(spec[:, 0])
        mean_se_line(ax, np.arange(1, k + 1), spec[rows], name)
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xlabel("eigenvalue rank")
    ax.set_ylabel("|λ| (mean over the fixed points on the line attractor)")
    ax.set_title("sorted eigenvalue spectra (tanh networks; mean ± s.e.)", fontsize=9)
    ax.legend(fontsize=7, frameon=False)


def _panel_f(ax: Any, cdi) -> None:
    if cdi is None:
        empty_panel(ax, "no cdi_linear analysis")
        return
    k = min(N_MODES, cdi.sizes["modes_kept"])
    abl = context_mean(np.asarray(cdi["ablation"].values, dtype=float)[:, :, :k])
    for name, rows in populations(cdi, "arch"):
        median_iqr_line(ax, np.arange(1, k + 1), abl[rows], name)
    ax.axhline(1.0, color="k", lw=0.8, ls="--", label="ideal integrator")
    # linear axis: averaged over the points on the line attractor the responses stay near 1
    # (the responses of 10^2-10^9 came from unstable points off the line, now left out)
    ax.set_ylim(*integrator_ylim(abl))
    ax.set_xlabel("linear modes kept (largest |λ| first)")
    ax.set_ylabel(f"output {int(cdi.attrs.get('horizon', 0))} steps after a unit pulse")
    ax.set_title("mode ablation (tanh networks; median and interquartile range)", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
