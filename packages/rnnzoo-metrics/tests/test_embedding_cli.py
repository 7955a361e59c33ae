"""MDS embeddings, plots and the command line."""

import subprocess
import sys

import numpy as np
import pytest

import rnnzoo_metrics as rm
from rnnzoo_metrics.cli import main
from rnnzoo_metrics.synthetic import low_rank_networks

pytestmark = pytest.mark.filterwarnings("ignore::rnnzoo_metrics.PluginWarning")
xr = pytest.importorskip("xarray")


def euclidean_matrix(points):
    d = np.linalg.norm(points[:, None] - points[None], axis=-1)
    ids = [f"n{i}" for i in range(len(points))]
    arch = ["gru" if i % 2 else "lstm" for i in range(len(points))]
    return xr.DataArray(
        d,
        dims=("network", "network_to"),
        coords={
            "network": ids,
            "network_to": ids,
            "arch": ("network", arch),
            "arch_to": ("network_to", arch),
        },
        attrs={"metric": "euclid", "kind": "distance"},
    )


def test_classical_mds_recovers_euclidean_configuration():
    pts = np.random.default_rng(0).normal(size=(12, 2))
    d = euclidean_matrix(pts)
    e = rm.embed(d, "classical")
    assert e.dims == ("network", "component")
    assert list(e.arch.values) == list(d.arch.values)
    rec = np.linalg.norm(e.values[:, None] - e.values[None], axis=-1)
    np.testing.assert_allclose(rec, d.values, atol=1e-10)
    assert e.attrs["explained"] == pytest.approx(1.0)


def test_metric_mds_is_seeded_and_fits():
    pts = np.random.default_rng(1).normal(size=(15, 3))
    d = euclidean_matrix(pts)
    e1, e2 = rm.embed(d, "metric", seed=3), rm.embed(d, "metric", seed=3)
    np.testing.assert_array_equal(e1.values, e2.values)
    assert e1.attrs["stress"] < 0.2


def test_embed_refuses_nan_and_similarities():
    d = euclidean_matrix(np.random.default_rng(2).normal(size=(4, 2)))
    d[0, 1] = d[1, 0] = np.nan
    with pytest.raises(rm.InputError, match="drop_incomparable"):
        rm.embed(d)
    assert rm.embed(rm.drop_incomparable(d)).sizes["network"] == 3
    s = euclidean_matrix(np.zeros((3, 2)))
    s.attrs["kind"] = "similarity"
    with pytest.raises(rm.InputError, match="similarity"):
        rm.embed(s)


@pytest.mark.parametrize(
    ("i", "j", "value", "symmetric", "match"),
    [
        (0, 2, -0.25, True, "negative entries .*-0.25.* 'n0' and 'n2'"),
        (1, 1, 0.5, True, "diagonal .* not 0 .*'n1'"),
        (0, 3, np.inf, True, "infinite entries .*'n0' and 'n3'"),
        (2, 0, 9.0, False, "not symmetric .*'n0' to 'n2', 9 back"),
    ],
    ids=["negative", "diagonal", "inf", "asymmetric"],
)
def test_embed_refuses_what_is_not_a_distance_matrix(i, j, value, symmetric, match):
    d = euclidean_matrix(np.random.default_rng(5).normal(size=(5, 2)))
    a = d.values.copy()
    a[i, j] = value
    if symmetric:
        a[j, i] = value
    with pytest.raises(rm.InputError, match=match) as info:
        rm.embed(d.copy(data=a))
    assert "\n" not in str(info.value)


def test_embed_needs_two_networks_and_sensible_components():
    d = euclidean_matrix(np.random.default_rng(6).normal(size=(3, 2)))
    with pytest.raises(rm.InputError, match="at least 2 networks"):
        rm.embed(d[:1, :1])
    with pytest.raises(rm.MetricsError, match="between 1 and the number of networks \\(3\\)"):
        rm.embed(d, n_components=4)
    assert rm.embed(d, "classical", 3).sizes["component"] == 3


def test_plots_write_png(tmp_path):
    pytest.importorskip("matplotlib")
    from rnnzoo_metrics.plotting import plot_distance_matrix, plot_embedding

    d = euclidean_matrix(np.random.default_rng(3).normal(size=(10, 2)))
    plot_embedding(rm.embed(d), "arch", path=tmp_path / "mds.png")
    plot_distance_matrix(d, ("arch",), path=tmp_path / "matrix.png")
    for f in ("mds.png", "matrix.png"):
        data = (tmp_path / f).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(data) > 5000
    with pytest.raises(rm.InputError, match="no network coordinate 'units'"):
        plot_embedding(rm.embed(d), "units")


@pytest.fixture
def npy_folder(tmp_path):
    folder = tmp_path / "nets"
    folder.mkdir()
    for i, x in enumerate(low_rank_networks(5, samples=60, widths=(4, 6))):
        np.save(folder / f"net{i}.npy", x)
    return folder


def test_cli_pairwise_embed_plot_roundtrip(npy_folder, tmp_path, capsys):
    out = tmp_path / "res"
    assert (
        main(
            [
                "pairwise",
                str(npy_folder),
                "-m",
                "svcca",
                "-p",
                "threshold=0.99",
                "-o",
                str(out / "d.nc"),
                "--no-progress",
            ]
        )
        == 0
    )
    d = xr.open_dataarray(out / "d.nc")
    assert list(d.network.values) == [f"net{i}" for i in range(5)]
    assert d.attrs["params"] == '{"threshold": 0.99}'
    direct = rm.pairwise(
        [np.load(npy_folder / f"net{i}.npy") for i in range(5)],
        "svcca",
        threshold=0.99,
        progress=False,
    )
    np.testing.assert_allclose(d.values, direct.values, atol=1e-14)
    assert main(["embed", str(out / "d.nc"), "-o", str(out / "e.nc")]) == 0
    pytest.importorskip("matplotlib")
    assert main(["plot", str(out / "e.nc"), "-o", str(out / "e.png")]) == 0
    assert main(["plot", str(out / "d.nc"), "-o", str(out / "d.png")]) == 0
    assert (out / "e.png").stat().st_size > 5000


def test_cli_list_shows_properties(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("procrustes "))
    assert all(w in line for w in ("activations", "distance", "yes"))
    assert "rnnzoo-metrics" in line


def test_cli_errors_are_one_line_without_traceback(npy_folder, tmp_path):
    cases = [
        ["pairwise", str(npy_folder), "-m", "nope", "-o", str(tmp_path / "x.nc")],
        ["pairwise", str(tmp_path / "missing"), "-o", str(tmp_path / "x.nc")],
        ["pairwise", str(npy_folder), "-o", str(tmp_path / "x.csv")],
        ["pairwise", str(npy_folder), "-p", "threshold", "-o", str(tmp_path / "x.nc")],
    ]
    for args in cases:
        r = subprocess.run(
            [sys.executable, "-m", "rnnzoo_metrics", *args, "--no-progress"],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr
        assert r.stderr.startswith("rnnzoo-metrics: error: ")
        assert len(r.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "x.nc").exists()


def test_cli_reads_a_zoo_store(tmp_path):
    pytest.importorskip("zarr")
    nets = low_rank_networks(4, samples=60, widths=(5,))
    ids = [f"gru-tanh-u5-l2_1e-04-s{i:03d}" for i in range(4)]
    ds = xr.Dataset(
        {
            "hidden_trained": (
                ("network", "probe", "time", "unit"),
                np.stack(nets).reshape(4, 2, 30, 5),
            )
        },
        coords={
            "network": np.array(ids, dtype=object),
            "arch": ("network", np.array(["gru"] * 4, dtype=object)),
        },
    )
    tree = xr.DataTree.from_dict({"/flipflop/networks/gru-tanh-u5": ds})
    tree.to_zarr(tmp_path / "zoo.zarr", consolidated=True)
    assert (
        main(
            [
                "pairwise",
                str(tmp_path / "zoo.zarr"),
                "--group",
                "flipflop",
                "-m",
                "cka",
                "-o",
                str(tmp_path / "d.zarr"),
                "--no-progress",
            ]
        )
        == 0
    )
    d = xr.open_zarr(tmp_path / "d.zarr")["cka"]
    assert list(d.network.values) == ids
    assert list(d.arch_to.values) == ["gru"] * 4
