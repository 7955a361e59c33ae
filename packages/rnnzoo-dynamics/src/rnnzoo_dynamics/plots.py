"""Figures of the dynamics analyses (PNG; needs matplotlib, the ``[plot]`` extra).

- :func:`plot_fixed_points_pca`: probe trajectories and fixed points in PCA space, points
  coloured by stability (paper Fig. 1e: black stable, red/green/blue 1/2/3 unstable
  dimensions), transition-graph edges as lines;
- :func:`plot_eigenvalues`: the eigenvalues of every input-dependent fixed point in the
  complex plane with the unit circle, leading oscillatory mode coloured by ``ω`` (Fig. 2d);
- :func:`plot_frequency`: linearised frequency against command, mean ± s.e. over networks,
  by architecture (tanh) and by activation (Vanilla) (Fig. 2f);
- :func:`plot_spectra` and :func:`plot_ablation`: cdi sorted eigenvalue spectra and the
  mode-ablation response, mean ± s.e. by architecture (Fig. 3e-f).

Colours and display names are the architectures' own (their descriptors in
:mod:`rnnzoo_train.cells`; a plugin's architecture brings its colour), the same as
rnnzoo-metrics' figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from rnnzoo_train.cells.catalog import DISPLAY_NAMES, colour, display_name
from rnnzoo_train.cells.catalog import PALETTE as CELL_PALETTE

#: the colours of every figure (one per architecture and per activation), and the display
#: names of the architectures: read from the architecture descriptors of rnnzoo-train
PALETTE = dict(CELL_PALETTE)
DISPLAY = dict(DISPLAY_NAMES)
#: Fig. 1e: stable black, then 1, 2, 3 unstable dimensions red, green, blue
STABILITY_COLOURS = ["black", "tab:red", "tab:green", "tab:blue", "tab:purple"]


def _figure(figsize=(5, 4), ncols: int = 1, subplot_kw: dict | None = None):
    try:
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - matplotlib is in the test environment
        raise ImportError("plotting needs matplotlib: pip install 'rnnzoo-dynamics[plot]'") from err
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, ncols, subplot_kw=subplot_kw or {})
    return fig, axes


def _pca(x: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return mean, vt[:k]


def plot_fixed_points_pca(
    trajectories: np.ndarray,
    points: xr.Dataset,
    graph: xr.Dataset | None = None,
    ax: Any = None,
    title: str = "",
) -> Any:
    """Fig. 1e: trajectories (grey) and fixed points in the first two PCs of the states.

    Parameters
    ----------
    trajectories : ndarray, (trials, time, S)
    points : Dataset
        One network's rows of the ``fixed_points`` analysis.
    graph : Dataset, optional
        That network's row of a graph analysis (edges drawn between node positions).
    """
    fig = None
    if ax is None:
        fig, ax = _figure((5.5, 4.5))
    S = trajectories.shape[-1]
    flat = trajectories.reshape(-1, S)
    mean, pcs = _pca(flat)
    proj = (trajectories - mean) @ pcs.T
    for tr in proj[: min(len(proj), 20)]:
        ax.plot(tr[:, 0], tr[:, 1], color="0.75", lw=0.6, zorder=1)
    st = points["state"].values[:, :S]
    xy = (st - mean) @ pcs.T
    nu = points["n_unstable"].values
    kind = points["kind"].values.astype(str)
    if graph is not None and "graph_weight" in graph:
        n = int(graph["graph_n_nodes"].values)
        w = graph["graph_weight"].values[:n, :n]
        node = graph["graph_node_point"].values[:n]  # position among this network's points
        for a in range(n):
            for b in range(n):
                if a != b and w[a, b] > 0 and 0 <= node[a] < len(xy) and 0 <= node[b] < len(xy):
                    pa, pb = xy[node[a]], xy[node[b]]
                    ax.plot(
                        [pa[0], pb[0]],
                        [pa[1], pb[1]],
                        color="k",
                        alpha=0.3 * w[a, b],
                        lw=1.0,
                        zorder=2,
                    )
    for k in sorted(set(nu[kind == "fixed"].tolist())):
        sel = (kind == "fixed") & (nu == k)
        colour = STABILITY_COLOURS[min(k, len(STABILITY_COLOURS) - 1)]
        label = "stable" if k == 0 else f"{k} unstable dim{'s' if k > 1 else ''}"
        ax.scatter(
            xy[sel, 0],
            xy[sel, 1],
            s=36,
            color=colour,
            label=label,
            zorder=3,
            edgecolor="white",
            linewidth=0.5,
        )
    slow = kind == "slow"
    if slow.any():
        ax.scatter(
            xy[slow, 0],
            xy[slow, 1],
            s=20,
            facecolor="none",
            edgecolor="0.4",
            label="slow point",
            zorder=3,
        )
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(title or "fixed points (Fig. 1e)")
    ax.legend(fontsize=7, loc="best")
    return fig if fig is not None else ax.figure


def plot_eigenvalues(points: xr.Dataset, omega_name: str = "omega", ax: Any = None) -> Any:
    """Fig. 2d (right): eigenvalues of every fixed point, unit circle, leading modes by ``ω``."""
    fig = None
    if ax is None:
        fig, ax = _figure((4.5, 4.5))
    lam = points["eigenvalue"].values
    ok = np.isfinite(lam)
    ax.scatter(lam.real[ok], lam.imag[ok], s=4, color="0.6", label="all eigenvalues")
    t = np.linspace(0, 2 * np.pi, 400)
    ax.plot(np.cos(t), np.sin(t), color="k", lw=0.8)
    if omega_name in points.coords:
        from rnnzoo_dynamics.sine import leading_oscillation

        lead, _ = leading_oscillation(lam)
        om = points[omega_name].values
        good = np.isfinite(lead)
        sc = ax.scatter(
            lead.real[good],
            lead.imag[good],
            c=om[good],
            cmap="viridis",
            s=18,
            label="leading oscillatory mode",
        )
        ax.scatter(lead.real[good], -lead.imag[good], c=om[good], cmap="viridis", s=18)
        ax.figure.colorbar(sc, ax=ax, label="commanded ω (cycles / step)")
    ax.set_aspect("equal")
    ax.set_xlabel("Re λ")
    ax.set_ylabel("Im λ")
    ax.set_title("linearised dynamics (Fig. 2d)")
    ax.legend(fontsize=7, loc="lower left")
    return fig if fig is not None else ax.figure


def _mean_se(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.sum(np.isfinite(values), axis=0)
    mean = np.nanmean(values, axis=0) if values.size else np.zeros(values.shape[1:])
    sd = np.nanstd(values, axis=0, ddof=1) if values.shape[0] > 1 else np.zeros_like(mean)
    return mean, np.where(n > 1, sd / np.sqrt(np.maximum(n, 1)), 0.0)


def _populations(ds: xr.Dataset, by: str) -> list[tuple[str, np.ndarray]]:
    """Row masks for the paper's two layouts: by arch (tanh only) or by activation (Vanilla)."""
    arch = ds["arch"].values.astype(str) if "arch" in ds.coords else None
    act = ds["activation"].values.astype(str) if "activation" in ds.coords else None
    if arch is None or act is None:
        return [("all", np.ones(ds.sizes["network"], dtype=bool))]
    if by == "arch":
        base = act == "tanh" if (act == "tanh").any() else np.ones_like(act, dtype=bool)
        names = [*DISPLAY, *sorted(set(arch) - set(DISPLAY))]  # the paper's, then plugins'
        return [(a, base & (arch == a)) for a in names if (base & (arch == a)).any()]
    base = arch == "vanilla" if (arch == "vanilla").any() else np.ones_like(arch, dtype=bool)
    return [(a, base & (act == a)) for a in ("tanh", "relu") if (base & (act == a)).any()]


def _line(ax, x, values, label, colour):
    import warnings

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: a gap in the line
        mean, se = _mean_se(values)
    ax.plot(x, mean, color=colour, label=label, lw=1.5)
    ax.fill_between(x, mean - se, mean + se, color=colour, alpha=0.25, lw=0)


def plot_frequency(freq: xr.Dataset) -> Any:
    """Fig. 2f: linearised frequency vs commanded frequency, by architecture and activation."""
    fig, axes = _figure((9, 4), ncols=2)
    omega = freq["omega"].values
    ok = (
        freq["analysis_ok"].values
        if "analysis_ok" in freq
        else np.ones(freq.sizes["network"], bool)
    )
    for ax, by in zip(axes, ("arch", "activation"), strict=True):
        for name, rows in _populations(freq, by):
            rows = rows & ok
            if rows.any():
                _line(
                    ax,
                    omega,
                    freq["frequency_linear"].values[rows],
                    display_name(name),
                    colour(name, "0.3"),
                )
        ax.plot(omega, omega, color="k", ls="--", lw=0.8, label="identity")
        ax.set_xlabel("commanded frequency ω (cycles / step)")
        ax.set_ylabel("frequency of the linearised oscillation (cycles / step)")
        ax.set_title("by architecture (tanh)" if by == "arch" else "by activation (Vanilla)")
        ax.legend(fontsize=8)
    return fig


def plot_spectra(cdi: xr.Dataset, context: int = 0, n_modes: int = 20) -> Any:
    """Fig. 3e: mean sorted ``|λ|`` by architecture (one context)."""
    fig, ax = _figure((5, 4))
    k = min(n_modes, cdi.sizes["mode"])
    x = np.arange(1, k + 1)
    for name, rows in _populations(cdi, "arch"):
        _line(
            ax,
            x,
            cdi["spectrum"].values[rows, context, :k],
            display_name(name),
            colour(name, "0.3"),
        )
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set_xlabel("eigenvalue rank")
    ax.set_ylabel("|λ| (mean over fixed points)")
    ax.set_title(f"sorted eigenvalue spectra, context {context} (Fig. 3e)")
    ax.legend(fontsize=8)
    return fig


def plot_ablation(
    cdi: xr.Dataset, context: int = 0, n_modes: int = 20, statistic: str = "median"
) -> Any:
    """Fig. 3f: linearised response to a unit pulse vs number of modes kept, by architecture.

    ``statistic`` is how each network summarises its fixed points: ``"median"`` (default,
    robust to a point with an unstable mode) or ``"mean"`` (the paper's average). Lines are
    mean ± s.e. over networks.
    """
    fig, ax = _figure((5, 4))
    k = min(n_modes, cdi.sizes["modes_kept"])
    x = np.arange(1, k + 1)
    var = "ablation_median" if statistic == "median" and "ablation_median" in cdi else "ablation"
    for name, rows in _populations(cdi, "arch"):
        values = cdi[var].values[rows, context, :k]
        _line(ax, x, values, display_name(name), colour(name, "0.3"))
    ax.axhline(1.0, color="k", lw=0.8, ls="--", label="ideal integrator")
    ax.set_xlabel("linear modes kept (largest |λ| first)")
    ax.set_ylabel(f"output {int(cdi.attrs.get('horizon', 0))} steps after a unit pulse")
    stat = "median" if var == "ablation_median" else "mean"
    ax.set_title(
        f"mode ablation, context {context} (Fig. 3f)\n{stat} over each network's "
        "fixed points; mean ± s.e. over networks",
        fontsize=9,
    )
    ax.legend(fontsize=8)
    return fig


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=130)
    return path


def plot_zoo(zoo, task: str, out: Path, network: str | None = None) -> tuple[list[Path], list[str]]:
    """Every figure of ``task`` that its stored analyses allow.

    Returns
    -------
    written : list of Path
    missing : list of str
        One line per figure that could not be drawn and why (e.g. the analysis is missing);
        the other figures are still written.
    """
    import torch

    from rnnzoo_dynamics.analyze import read_analysis

    out = Path(out)
    written: list[Path] = []
    missing: list[str] = []
    have = set(zoo.analyses(task))
    if "fixed_points" not in have:
        return [], [
            f"{task}: no dynamics analysis stored; run `rnnzoo-dynamics analyze ZOO --task {task}`"
        ]

    def _stored(name: str):
        return read_analysis(zoo, task, name, missing_ok=True)

    fp = _stored("fixed_points")
    summary = _stored("dynamics_summary")
    nets = fp["network"].values.astype(str)
    if network is None:
        ok = (
            [
                str(n)
                for n, s in zip(
                    summary["network"].values, summary["analysis_status"].values, strict=True
                )
                if str(s) == "ok"
            ]
            if summary is not None
            else list(dict.fromkeys(nets))
        )
        network = ok[0] if ok else None
    if network is None or network not in set(nets):
        missing.append(f"{task}: network {network!r} has no fixed points to draw")
    else:
        mine = fp.isel(fixed_point=np.nonzero(nets == network)[0])
        net = zoo.network(task, network, dtype=torch.float64)
        traj = net.run(zoo.probe(task).inputs).numpy()
        graph = None
        if "transition_graph" in have:
            g = _stored("transition_graph")
            if network in set(g["network"].values.astype(str)):
                graph = g.sel(network=network)
        fig = plot_fixed_points_pca(traj, mine, graph, title=f"{network}: fixed points")
        written.append(_save(fig, out / f"{task}-fixed-points-pca.png"))
    if task == "sine" or "omega" in fp.coords:
        if "omega" in fp.coords and network is not None and network in set(nets):
            mine = fp.isel(fixed_point=np.nonzero(nets == network)[0])
            fig = plot_eigenvalues(mine)
            fig.axes[0].set_title(f"{network}: linearised dynamics (Fig. 2d)", fontsize=8)
            written.append(_save(fig, out / f"{task}-eigenvalues.png"))
        if "sine_frequency" in have:
            freq = _stored("sine_frequency")
            written.append(_save(plot_frequency(freq), out / f"{task}-frequency.png"))
        else:
            missing.append(f"{task}: no sine_frequency analysis stored")
    if task == "cdi" or "context" in fp.coords:
        if "cdi_linear" in have:
            cdi = _stored("cdi_linear")
            written.append(_save(plot_spectra(cdi), out / f"{task}-spectra.png"))
            written.append(_save(plot_ablation(cdi), out / f"{task}-mode-ablation.png"))
        else:
            missing.append(f"{task}: no cdi_linear analysis stored")
    return written, missing
