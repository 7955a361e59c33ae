"""Fig. 1: 3-bit flip-flop — inputs and targets, PCA trajectories, SVCCA, fixed points, graphs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..data import analysed_networks, as_str, dynamics, ok_networks, select_rows
from ..derived import fixed_point_counts, modal
from ..style import (
    STABILITY_COLOURS,
    cell_label,
    colour,
    empty_panel,
    new_figure,
    panel_letter,
    save,
)
from .common import (
    FigureContext,
    graph_embedding,
    mds_layouts,
    one_per_cell,
    pca,
    pick_network,
    sorted_matrix,
)

TASK = "flipflop"
CAPTION = (
    "Fig. 1 (3-bit flip-flop). **a** Probe input (black), target (dashed red) and the output "
    "of one trained network per channel. **b** PCA trajectories (first 3 PCs) of the probe "
    "responses of one network per cell type. **c** SVCCA distance between all trained networks, "
    "sorted by architecture and activation. **d** MDS of the SVCCA distances, by architecture "
    "(tanh networks) and by activation (Vanilla networks); grey: the other networks. **e** Fixed "
    "points of one network in the first two PCs (black stable, red/green/blue 1/2/3 unstable "
    "dimensions) with its transition-graph edges, and the transition graph as a matrix. "
    "**f** MDS of the fixed-point graph distance (networks at the modal graph size; the matched "
    "graph distance where fewer than half the networks share a node count, as the panel "
    "title says)."
)
#: the network drawn in panels a and e: the first available of these cell types
PREFER = (("gru", "tanh"), ("lstm", "tanh"), ("ugrnn", "tanh"), ("vanilla", "tanh"))


def draw(ctx: FigureContext, path: str | Path) -> Path:
    """Draw Fig. 1 into ``path`` (PNG)."""
    fig = new_figure(17, 14)
    top, mid, bottom = fig.subfigures(3, 1, height_ratios=[1.15, 1, 1])
    if TASK not in ctx.tasks:
        ax = fig.add_subplot()
        empty_panel(ax, "this zoo has no flip-flop task")
        return save(fig, path)
    zoo = ctx.zoo
    index = zoo.index(TASK)
    ok = ok_networks(zoo, TASK)
    analysed = analysed_networks(zoo, TASK)
    example = _example_network(zoo, index, analysed) or pick_network(index, PREFER, ok)

    left, right = top.subfigures(1, 2, width_ratios=[1, 2.6])
    _panel_a(left, zoo, example)
    _panel_b(right, zoo, index, ok)

    c_fig, d_fig = mid.subfigures(1, 2, width_ratios=[1, 2])
    ax_c = c_fig.subplots()
    sorted_matrix(ax_c, ctx.distances.get(TASK, {}).get("svcca"), "SVCCA")
    ax_c.set_title("SVCCA distance matrix", fontsize=10)
    panel_letter(ax_c, "c")
    axes_d = list(d_fig.subplots(1, 2))
    mds_layouts(axes_d, ctx.embedding(TASK, "svcca"), "SVCCA MDS")
    panel_letter(axes_d[0], "d")

    e_fig, f_fig = bottom.subfigures(1, 2, width_ratios=[1, 1])
    axes_e = list(e_fig.subplots(1, 2, width_ratios=[1.25, 1]))
    _panel_e(axes_e, zoo, example if example in analysed else None)
    panel_letter(axes_e[0], "e")
    axes_f = list(f_fig.subplots(1, 2))
    emb, what = graph_embedding(ctx, TASK)
    mds_layouts(axes_f, emb, what)
    panel_letter(axes_f[0], "f")
    return save(fig, path)


def _example_network(zoo, index, analysed: list[str]) -> str | None:
    """A network at the modal number of stable points (preferably 8), preferred cell first."""
    summary = dynamics(zoo, TASK, "dynamics_summary")
    if summary is None or not analysed:
        return None
    counts = fixed_point_counts(summary)
    mode, _ = modal(counts["n_stable"])
    want = 8 if np.any(counts["n_stable"] == 8) else mode
    good = [str(n) for n, k in zip(counts["network"], counts["n_stable"], strict=True) if k == want]
    return pick_network(index, PREFER, good)


def _panel_a(sub: Any, zoo, nid: str | None) -> None:
    probe = zoo.probe(TASK)
    k = probe.inputs.shape[-1]
    axes = sub.subplots(k, 1, sharex=True)
    axes = np.atleast_1d(axes)
    t = np.arange(1, probe.inputs.shape[1] + 1)
    out = None
    if nid is not None:
        out = zoo.network(TASK, nid).outputs(probe.inputs[:1]).detach().numpy()[0]
    for ch, ax in enumerate(axes):
        ax.plot(t, probe.inputs[0, :, ch], color="k", lw=1.0, label="input")
        ax.plot(t, probe.targets[0, :, ch], color="tab:red", ls="--", lw=1.2, label="target")
        if out is not None:
            arch = str(zoo.index(TASK).loc[nid, "arch"])
            ax.plot(t, out[:, ch], color=colour(arch), lw=1.0, alpha=0.9, label="output")
        ax.set_ylabel(f"channel {ch + 1}")
        ax.set_ylim(-1.4, 1.4)
    axes[-1].set_xlabel("time step")
    axes[0].legend(fontsize=7, ncol=3, loc="upper right", frameon=False)
    title = "probe input and target" + (f"\n{nid}" if nid else "")
    axes[0].set_title(title, fontsize=9)
    panel_letter(axes[0], "a")


def _panel_b(sub: Any, zoo, index, ok: list[str]) -> None:
    cells = one_per_cell(index, ok)
    if not cells:
        empty_panel(sub.subplots(), "no trained networks")
        return
    ncol = min(4, len(cells))
    nrow = int(np.ceil(len(cells) / ncol))
    hidden = zoo.hidden_states(TASK, [c[2] for c in cells], which="trained")
    states = {}
    for node in hidden.subtree:
        ds = node.to_dataset(inherit=False)
        if "hidden_trained" in ds:
            for i, nid in enumerate(as_str(ds["network"].values)):
                states[nid] = np.asarray(ds["hidden_trained"].values[i])
    for j, (arch, act, nid) in enumerate(cells):
        ax = sub.add_subplot(nrow, ncol, j + 1, projection="3d")
        x = states[nid]  # (probe, time, unit)
        mean, axes_, var = pca(x, 3)
        proj = (x - mean) @ axes_.T
        for tr in proj:
            if proj.shape[-1] >= 3:
                ax.plot(tr[:, 0], tr[:, 1], tr[:, 2], color=colour(arch), lw=0.6, alpha=0.6)
            else:
                ax.plot(tr[:, 0], tr[:, 1], 0 * tr[:, 0], color=colour(arch), lw=0.6, alpha=0.6)
        ax.set_title(cell_label(arch, act), fontsize=9, color=colour(arch))
        ax.set_xlabel("PC1", fontsize=7, labelpad=-8)
        ax.set_ylabel("PC2", fontsize=7, labelpad=-8)
        ax.set_zlabel("PC3", fontsize=7, labelpad=-8)
        ax.tick_params(labelsize=0, length=0)
        if j == 0:
            panel_letter(ax, "b")


def _panel_e(axes: list[Any], zoo, nid: str | None) -> None:
    from rnnzoo_dynamics.plots import plot_fixed_points_pca

    fp = dynamics(zoo, TASK, "fixed_points")
    graphs = dynamics(zoo, TASK, "transition_graph")
    if nid is None or fp is None:
        for ax in axes:
            empty_panel(ax, "no analysed network with fixed points")
        return
    import torch

    mine = fp.isel(fixed_point=np.flatnonzero(as_str(fp["network"].values) == nid))
    net = zoo.network(TASK, nid, dtype=torch.float64)
    traj = net.run(zoo.probe(TASK).inputs).numpy()
    graph = None
    if graphs is not None and nid in set(as_str(graphs["network"].values)):
        graph = select_rows(graphs, [nid]).isel(network=0)
    plot_fixed_points_pca(traj, mine, graph, ax=axes[0], title=f"fixed points: {nid}")
    axes[0].title.set_fontsize(8)
    ax = axes[1]
    if graph is None:
        empty_panel(ax, "no transition graph")
        return
    n = int(graph["graph_n_nodes"].values)
    w = np.asarray(graph["graph_weight"].values)[:n, :n]
    im = ax.imshow(w, cmap="Greys", vmin=0, vmax=1)
    ax.figure.colorbar(im, ax=ax, shrink=0.8, label="transition probability")
    readout = np.asarray(graph["graph_node_readout"].values)[:n]
    unstable = np.asarray(graph["graph_node_n_unstable"].values)[:n]
    names = ["".join("+" if v > 0.5 else "-" if v < -0.5 else "0" for v in r) for r in readout]
    ax.set_xticks(range(n), names, rotation=90, fontsize=6, family="monospace")
    ax.set_yticks(range(n), names, fontsize=6, family="monospace")
    for ticks in (ax.get_xticklabels(), ax.get_yticklabels()):
        for tick, k in zip(ticks, unstable, strict=True):
            tick.set_color(STABILITY_COLOURS[min(int(k), len(STABILITY_COLOURS) - 1)])
    ax.set_xlabel("to fixed point (readout: +1, -1 or 0 per channel)")
    ax.set_ylabel("from fixed point")
    ax.set_title(f"transition graph ({n} nodes)", fontsize=9)
