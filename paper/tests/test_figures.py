"""Figure choices that depend on the analyses: the graph distance of Fig. 3d, Fig. 3f's axis."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("matplotlib")

from rnnzoo_paper.figures import fig3
from rnnzoo_paper.figures.common import FigureContext, graph_embedding


def _square(n: int, nan_rows: int) -> xr.DataArray:
    ids = [f"n{i}" for i in range(n)]
    a = np.ones((n, n)) - np.eye(n)
    a[:nan_rows, :] = np.nan
    a[:, :nan_rows] = np.nan
    return xr.DataArray(
        a, dims=("network", "network_to"), coords={"network": ids, "network_to": ids}
    )


def _emb(n: int) -> xr.DataArray:
    return xr.DataArray(
        np.zeros((n, 2)), dims=("network", "component"), coords={"network": list(range(n))}
    )


@pytest.mark.parametrize(
    ("comparable", "expected"),
    [(15, "graph MDS"), (12, "graph MDS"), (6, "matched-graph MDS")],
)
def test_graph_panels_use_the_papers_distance_when_most_networks_are_comparable(
    comparable, expected
):
    # the demo's cdi after the K-node line graphs: 15 of 24 networks share the node count
    n = 24
    ctx = FigureContext(
        zoo=None,
        tasks=["cdi"],
        distances={"cdi": {"graph": _square(n, n - comparable)}},
        embeddings={"cdi": {"graph": _emb(comparable), "graph-matched": _emb(n)}},
    )
    ctx.embeddings["cdi"]["graph"].attrs["n_dropped_incomparable"] = n - comparable
    emb, title = graph_embedding(ctx, "cdi")
    assert title.split("\n")[0] == expected
    assert emb.sizes["network"] == (comparable if expected == "graph MDS" else n)
    if expected == "graph MDS":
        assert f"({n - comparable} network(s) at another node count left out)" in title


def test_fig3f_is_linear_and_averages_the_contexts_with_a_line_attractor():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = 5
    abl = np.full((4, 2, k), np.nan)
    abl[0, 0] = 1.0  # vanilla tanh: context 0 only
    abl[1, :] = [[0.5] * k, [1.5] * k]  # vanilla tanh: both, mean 1
    abl[2, 1] = 0.8  # gru tanh: context 1 only
    cdi = xr.Dataset(
        {"ablation": (("network", "context", "modes_kept"), abl)},
        coords={
            "network": ["v0", "v1", "g0", "g1"],
            "arch": ("network", ["vanilla", "vanilla", "gru", "gru"]),
            "activation": ("network", ["tanh"] * 4),
            "modes_kept": np.arange(1, k + 1),
        },
        attrs={"horizon": 30},
    )
    fig, ax = plt.subplots()
    fig3._panel_f(ax, cdi)
    assert ax.get_yscale() == "linear"
    lo, hi = ax.get_ylim()
    assert lo <= 0
    assert hi >= 1.2
    lines = {ln.get_label(): ln.get_ydata() for ln in ax.get_lines()}
    assert np.allclose(lines["Vanilla (n=2)"], 1.0)  # median of 1.0 and mean(0.5, 1.5)
    assert np.allclose(lines["GRU (n=1)"], 0.8)  # g1 has no line attractor: left out
    plt.close(fig)


def test_mds_panels_count_networks_that_share_one_point():
    """Identical graphs (distance 0) land on one MDS point: the panel says how many."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rnnzoo_paper.figures.common import mds_layouts

    xy = np.array([[0.0, 0.0]] * 3 + [[1.0, 1.0]] * 2 + [[2.0, 0.5], [0.5, 2.0], [3.0, 3.0]])
    emb = xr.DataArray(
        xy,
        dims=("network", "component"),
        coords={
            "network": [f"n{i}" for i in range(8)],
            "arch": (
                "network",
                ["vanilla", "gru", "lstm", "vanilla", "ugrnn", "gru", "gru", "lstm"],
            ),
            "activation": ("network", ["tanh"] * 7 + ["relu"]),
        },
    )
    fig, axes = plt.subplots(1, 2)
    mds_layouts(list(axes), emb, "graph")
    by_arch = sorted(t.get_text() for t in axes[0].texts)
    plt.close(fig)
    # tanh networks (the first 7): three at the origin, two at (1, 1), the rest apart
    assert by_arch == ["×2: 1 Vanilla, 1 UGRNN", "×3: 1 Vanilla, 1 GRU, 1 LSTM"]
