"""Appendix C (final losses per task) and Appendix E (CKA MDS and CKA-SVCCA agreement)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..style import colour, empty_panel, label, new_figure, ordered, panel_letter, save
from .common import FigureContext, mds_layouts

CAPTION_C = (
    "Appendix C. Histograms of the final test loss (MSE on the fixed test set) of every "
    "trained network, per task, stacked by architecture; hatched: relu networks."
)
CAPTION_E = (
    "Appendix E. Left and middle: MDS of CKA distances (the counterparts of the SVCCA MDS "
    "plots), by architecture (tanh) and by activation (Vanilla). Right: CKA against SVCCA "
    "distance for every pair of networks, with their Spearman correlation; pairs of the same "
    "cell type in colour, other pairs grey."
)


def draw_losses(ctx: FigureContext, path: str | Path) -> Path:
    """Appendix C: final-loss histograms per task."""
    tasks = ctx.tasks
    fig = new_figure(5.2 * max(1, len(tasks)), 4.2)
    axes = np.atleast_1d(fig.subplots(1, max(1, len(tasks))))
    for ax, task in zip(axes, tasks, strict=False):
        df = ctx.zoo.index(task)
        ok = df[df["status"].astype(str) == "ok"]
        loss = np.asarray(ok["test_loss"], dtype=float)
        fin = np.isfinite(loss) & (loss > 0)
        if not fin.any():
            empty_panel(ax, f"{task}: no finite losses")
            continue
        lo, hi = np.log10(loss[fin].min()), np.log10(loss[fin].max())
        bins = np.logspace(lo - 0.05, hi + 0.05, 21)
        stacks, colours, hatches, names = [], [], [], []
        arch = ok["arch"].astype(str).to_numpy()
        act = ok["activation"].astype(str).to_numpy()
        for a in ordered(arch):
            for f in ordered(act):
                sel = fin & (arch == a) & (act == f)
                if sel.any():
                    stacks.append(loss[sel])
                    colours.append(colour(a))
                    hatches.append("//" if f == "relu" else "")
                    names.append(f"{label(a)} {f}")
        _, _, patches = ax.hist(
            stacks,
            bins=bins,
            stacked=True,
            color=colours,
            edgecolor="white",
            linewidth=0.4,
            label=names,
        )
        for group, hatch in zip(patches, hatches, strict=True):
            for p in getattr(group, "patches", group):
                p.set_hatch(hatch)
        from matplotlib.ticker import MaxNLocator, NullFormatter

        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # decade labels only: no overlaps
        ax.set_xlabel("final test loss (MSE)")
        ax.set_ylabel("networks")
        solved = ok["solved"].astype(str).str.lower().isin(["true", "1"]).sum()
        ax.set_title(f"{task}: {len(ok)} networks ok, {solved} solved", fontsize=9)
        ax.legend(fontsize=6, frameon=False, ncol=2)
    panel_letter(axes[0], "C")
    return save(fig, path)


def draw_cka(ctx: FigureContext, path: str | Path) -> Path:
    """Appendix E: CKA MDS plots and the CKA-SVCCA scatter, one row per task."""
    tasks = ctx.tasks
    fig = new_figure(16, 4.6 * max(1, len(tasks)))
    axes = np.atleast_2d(fig.subplots(max(1, len(tasks)), 3))
    for row, task in zip(axes, tasks, strict=False):
        mds_layouts(list(row[:2]), ctx.embedding(task, "cka"), f"{task} CKA MDS")
        _agreement(row[2], ctx.distances.get(task, {}), task)
    panel_letter(axes[0][0], "E")
    return save(fig, path)


def _agreement(ax: Any, mats: dict, task: str) -> None:
    from scipy.stats import spearmanr

    from ..data import as_str

    a, b = mats.get("svcca"), mats.get("cka")
    if a is None or b is None:
        empty_panel(ax, f"{task}: SVCCA or CKA missing")
        return
    common = [i for i in as_str(a["network"].values) if i in set(as_str(b["network"].values))]
    a = a.sel(network=common, network_to=common)
    b = b.sel(network=common, network_to=common)
    iu = np.triu_indices(len(common), 1)
    va, vb = np.asarray(a.values)[iu], np.asarray(b.values)[iu]
    arch, act = as_str(a["arch"].values), as_str(a["activation"].values)
    same = (arch[iu[0]] == arch[iu[1]]) & (act[iu[0]] == act[iu[1]])
    ax.scatter(va[~same], vb[~same], s=8, color="0.7", label="different cell types")
    for c in ordered(arch[iu[0]][same]):
        sel = same & (arch[iu[0]] == c)
        ax.scatter(va[sel], vb[sel], s=14, color=colour(c), label=f"same cell type: {label(c)}")
    rho = spearmanr(va, vb).statistic if len(va) > 2 and np.ptp(va) and np.ptp(vb) else np.nan
    ax.set_xlabel("SVCCA distance")
    ax.set_ylabel("CKA distance")
    ax.set_title(f"{task}: CKA vs SVCCA (Spearman ρ = {rho:.2f}, {len(va)} pairs)", fontsize=9)
    ax.legend(fontsize=6, frameon=False)
