"""Fig. 2: sine wave, from trajectories to linearised frequencies.

Trajectories by ω, SVCCA MDS, fixed points and eigenvalues, graph MDS, linearised frequency
against commanded frequency.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..data import analysed_networks, as_str, dynamics, ok_networks
from ..style import cell_label, colour, empty_panel, new_figure, panel_letter, save
from .common import (
    FigureContext,
    graph_embedding,
    mds_layouts,
    mean_se_line,
    one_per_cell,
    pca,
    pick_network,
    populations,
)

TASK = "sine"
CAPTION = (
    "Fig. 2 (sine wave). **b** PCA trajectories (first 3 PCs) of the probe responses, one "
    "network per cell type, coloured by the commanded frequency ω (blue low, yellow high). "
    "**c** MDS of SVCCA distances, by architecture (tanh) and activation (Vanilla). **d** Left: "
    "the input-dependent fixed points of one network (coloured by ω) on its trajectories; right: "
    "the eigenvalues of every fixed point's linearisation with the unit circle, leading "
    "oscillatory mode coloured by ω. **e** MDS of the fixed-point graph distance "
    "(the matched graph distance where fewer than half "
    "the networks share a node count; the panel title says which). **f** "
    "Frequency of the linearised oscillation against ω, mean ± s.e. over networks, by "
    "architecture (tanh) and by activation (Vanilla); dashed: identity."
)
PREFER = (("gru", "tanh"), ("lstm", "tanh"), ("vanilla", "tanh"), ("ugrnn", "tanh"))


def draw(ctx: FigureContext, path: str | Path) -> Path:
    """Draw Fig. 2 into ``path`` (PNG)."""
    fig = new_figure(17, 14)
    if TASK not in ctx.tasks:
        empty_panel(fig.add_subplot(), "this zoo has no sine task")
        return save(fig, path)
    top, mid, bottom = fig.subfigures(3, 1, height_ratios=[1.15, 1, 1])
    zoo = ctx.zoo
    index = zoo.index(TASK)
    ok = ok_networks(zoo, TASK)
    _panel_b(top, zoo, index, ok)

    c_fig, d_fig = mid.subfigures(1, 2, width_ratios=[1, 1])
    axes_c = list(c_fig.subplots(1, 2))
    mds_layouts(axes_c, ctx.embedding(TASK, "svcca"), "SVCCA MDS")
    panel_letter(axes_c[0], "c")
    axes_d = list(d_fig.subplots(1, 2))
    _panel_d(axes_d, zoo, index)
    panel_letter(axes_d[0], "d")

    e_fig, f_fig = bottom.subfigures(1, 2, width_ratios=[1, 1])
    axes_e = list(e_fig.subplots(1, 2))
    mds_layouts(axes_e, *graph_embedding(ctx, TASK))
    panel_letter(axes_e[0], "e")
    axes_f = list(f_fig.subplots(1, 2))
    _panel_f(axes_f, dynamics(zoo, TASK, "sine_frequency"))
    panel_letter(axes_f[0], "f")
    return save(fig, path)


def _states(zoo, ids: list[str]) -> dict[str, np.ndarray]:
    out = {}
    tree = zoo.hidden_states(TASK, ids, which="trained")
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False)
        if "hidden_trained" in ds:
            for i, nid in enumerate(as_str(ds["network"].values)):
                out[nid] = np.asarray(ds["hidden_trained"].values[i])
    return out


def _panel_b(sub: Any, zoo, index, ok: list[str]) -> None:
    from matplotlib import colormaps

    cells = one_per_cell(index, ok)
    if not cells:
        empty_panel(sub.subplots(), "no trained networks")
        return
    omega = np.asarray(zoo.probe(TASK).labels.get("omega", []), dtype=float)
    cmap = colormaps["viridis"]
    span = (omega.min(), omega.max()) if omega.size else (0.0, 1.0)
    ncol = min(4, len(cells))
    nrow = int(np.ceil(len(cells) / ncol))
    states = _states(zoo, [c[2] for c in cells])
    for j, (arch, act, nid) in enumerate(cells):
        ax = sub.add_subplot(nrow, ncol, j + 1, projection="3d")
        x = states[nid]
        x = x[:, x.shape[1] // 4 :]  # after the transient: the oscillation
        mean, axes_, _ = pca(x, 3)
        proj = (x - mean) @ axes_.T
        for k, tr in enumerate(proj):
            w = (omega[k] - span[0]) / max(span[1] - span[0], 1e-12) if omega.size else 0.5
            z = tr[:, 2] if tr.shape[1] > 2 else 0 * tr[:, 0]
            ax.plot(tr[:, 0], tr[:, 1], z, color=cmap(w), lw=0.6, alpha=0.8)
        ax.set_title(cell_label(arch, act), fontsize=9, color=colour(arch))
        for setter, name in (
            (ax.set_xlabel, "PC1"),
            (ax.set_ylabel, "PC2"),
            (ax.set_zlabel, "PC3"),
        ):
            setter(name, fontsize=7, labelpad=-8)
        ax.tick_params(labelsize=0, length=0)
        if j == 0:
            panel_letter(ax, "b")


def _panel_d(axes: list[Any], zoo, index) -> None:
    import torch
    from matplotlib import colormaps

    from rnnzoo_dynamics.plots import plot_eigenvalues

    fp = dynamics(zoo, TASK, "fixed_points")
    analysed = analysed_networks(zoo, TASK)
    nid = pick_network(index, PREFER, analysed)
    if fp is None or nid is None:
        for ax in axes:
            empty_panel(ax, "no analysed network with fixed points")
        return
    mine = fp.isel(fixed_point=np.flatnonzero(as_str(fp["network"].values) == nid))
    probe = zoo.probe(TASK)
    traj = zoo.network(TASK, nid, dtype=torch.float64).run(probe.inputs).numpy()
    traj = traj[:, traj.shape[1] // 4 :]
    mean, pcs, _ = pca(traj, 2)
    omega = np.asarray(probe.labels.get("omega", np.zeros(len(traj))), dtype=float)
    cmap = colormaps["viridis"]
    lo, hi = float(omega.min()), float(omega.max())
    ax = axes[0]
    for k, tr in enumerate((traj - mean) @ pcs.T):
        ax.plot(
            tr[:, 0], tr[:, 1], color=cmap((omega[k] - lo) / max(hi - lo, 1e-12)), lw=0.5, alpha=0.6
        )
    S = traj.shape[-1]
    xy = (np.asarray(mine["state"].values)[:, :S] - mean) @ pcs.T
    om = np.asarray(mine["omega"].values, dtype=float) if "omega" in mine.coords else None
    sc = ax.scatter(
        xy[:, 0],
        xy[:, 1],
        c=om,
        cmap="viridis",
        vmin=lo,
        vmax=hi,
        s=40,
        edgecolor="k",
        linewidth=0.6,
        zorder=3,
    )
    ax.figure.colorbar(sc, ax=ax, shrink=0.8, label="commanded ω (cycles / step)")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(f"fixed points: {nid}", fontsize=8)
    plot_eigenvalues(mine, ax=axes[1])
    axes[1].set_title("eigenvalues of the linearisations", fontsize=9)


def _panel_f(axes: list[Any], freq) -> None:
    if freq is None:
        for ax in axes:
            empty_panel(ax, "no sine_frequency analysis")
        return
    omega = np.asarray(freq["omega"].values, dtype=float)
    values = np.asarray(freq["frequency_linear"].values, dtype=float)
    for ax, by in zip(axes, ("arch", "activation"), strict=True):
        for name, rows in populations(freq, by):
            mean_se_line(ax, omega, values[rows], name)
        ax.plot(omega, omega, color="k", ls="--", lw=0.8, label="identity")
        ax.set_xlabel("commanded frequency ω (cycles / step)")
        ax.set_ylabel("linearised frequency (cycles / step)")
        subset = "tanh" if by == "arch" else "Vanilla"
        ax.set_title(
            f"by {'architecture' if by == 'arch' else 'activation'} ({subset})", fontsize=9
        )
        ax.legend(fontsize=7, frameon=False)
