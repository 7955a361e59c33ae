"""Fig. 4: SVCCA between trained and untrained Vanilla networks (cdi inputs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..data import as_str
from ..derived import fig4_groups
from ..distances import FIG4_ARCH, FIG4_TASK
from ..style import colour, empty_panel, new_figure, panel_letter, save
from .common import FigureContext, coord, pca

CAPTION = (
    "Fig. 4 (trained vs untrained, cdi inputs, Vanilla networks). **a** Probe responses of "
    "context 1 (blue to red: mean of the cued stream) in the first two PCs for a trained and "
    "an untrained tanh and relu network, with each one's SVCCA distance to the trained relu "
    "network. **b** Mean SVCCA distance from the trained relu networks to each population "
    "(dots: one network each). **c** MDS of SVCCA distances of trained (filled) and untrained "
    "(open) networks, coloured by activation."
)
CONTEXT = 0
TASK = FIG4_TASK


def draw(ctx: FigureContext, path: str | Path) -> Path:
    """Draw Fig. 4 into ``path`` (PNG)."""
    fig = new_figure(16, 8.5)
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.15])
    d = ctx.fig4
    if d is None:
        empty_panel(fig.add_subplot(), "no Vanilla cdi networks in this zoo")
        return save(fig, path)
    _panel_a(top, ctx.zoo, d)
    ax_b, ax_c = bottom.subplots(1, 2, width_ratios=[1, 1.2])
    _panel_b(ax_b, d)
    panel_letter(ax_b, "b")
    _panel_c(ax_c, ctx.fig4_embedding)
    panel_letter(ax_c, "c")
    return save(fig, path)


def _examples(d) -> list[tuple[str, str, str]]:
    """(network id in d, activation, trained/untrained) of the lowest seed of each population."""
    ids = as_str(d["network"].values)
    act, tr = coord(d, "activation"), coord(d, "trained")
    out = []
    for a in ("tanh", "relu"):
        for t in ("trained", "untrained"):
            sel = np.flatnonzero((act == a) & (tr == t))
            if len(sel):
                out.append((str(ids[sel[0]]), a, t))
    return out


def _panel_a(sub: Any, zoo, d) -> None:
    from matplotlib import colormaps

    examples = _examples(d)
    axes = np.atleast_1d(sub.subplots(1, max(1, len(examples))))
    probe = zoo.probe(FIG4_TASK)
    ctxs = np.asarray(probe.labels.get("context", np.zeros(len(probe.inputs))), dtype=int)
    mu = np.asarray(probe.labels.get("mu", np.zeros(len(probe.inputs))), dtype=float)
    trials = np.flatnonzero(ctxs == CONTEXT)
    ids = as_str(d["network"].values)
    ref = [i for i, (nid, a, t) in enumerate(examples) if a == "relu" and t == "trained"]
    ref_id = examples[ref[0]][0] if ref else None
    cmap = colormaps["coolwarm"]
    for ax, (nid, act, which) in zip(axes, examples, strict=False):
        base = nid.removesuffix("-untrained")
        tree = zoo.hidden_states(FIG4_TASK, [base], which=which)
        x = None
        for node in tree.subtree:
            ds = node.to_dataset(inherit=False)
            if f"hidden_{which}" in ds:
                x = np.asarray(ds[f"hidden_{which}"].values[0])[trials]
        if x is None:
            empty_panel(ax, f"no states for {nid}")
            continue
        mean, pcs, _ = pca(x, 2)
        for k, trj in zip(trials, (x - mean) @ pcs.T, strict=True):
            ax.plot(trj[:, 0], trj[:, 1], color=cmap((mu[k] + 1) / 2), lw=0.8)
        title = f"{which} {act}"
        if ref_id is not None:
            i, j = list(ids).index(ref_id), list(ids).index(nid)
            dist = float(np.asarray(d.values)[i, j])
            title += (
                f"\nSVCCA distance to trained relu: {dist:.3f}"
                if nid != ref_id
                else ("\n(reference)")
            )
        ax.set_title(title, fontsize=9, color=colour(act))
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    panel_letter(axes[0], "a")


def _panel_b(ax: Any, d) -> None:
    groups = fig4_groups(d)
    if not groups:
        empty_panel(ax, "no trained relu Vanilla networks")
        return
    names = [
        n
        for n in ("trained relu", "untrained relu", "trained tanh", "untrained tanh")
        if n in groups
    ]
    rng = np.random.default_rng(0)
    for x, name in enumerate(names):
        v = groups[name]
        act, which = name.split()[1], name.split()[0]
        face = colour(act) if which == "trained" else "white"
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
            color=face,
            edgecolor=colour(act),
            s=30,
            zorder=3,
        )
    ax.set_xticks(range(len(names)), [n.replace(" ", "\n") for n in names])
    ax.set_ylabel("mean SVCCA distance to the trained relu networks")
    ax.set_xlabel(f"population ({FIG4_ARCH} networks, {FIG4_TASK} probe inputs)")
    ax.set_title("who is closest to trained relu networks?", fontsize=9)


def _panel_c(ax: Any, emb) -> None:
    if emb is None:
        empty_panel(ax, "too few networks for an MDS")
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
                    s=40,
                    label=f"{t} {a}",
                    facecolor=colour(a) if t == "trained" else "white",
                    edgecolor=colour(a),
                    linewidth=1.2,
                    zorder=3 if t == "trained" else 2,
                    alpha=0.9,
                )
    ax.set_xlabel("MDS 1")
    ax.set_ylabel("MDS 2")
    ax.set_title("MDS of SVCCA distances: trained and untrained Vanilla networks", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    ax.set_aspect("equal", adjustable="datalim")
