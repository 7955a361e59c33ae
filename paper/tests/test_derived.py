import numpy as np
import pytest
import xarray as xr

from rnnzoo_paper import derived


def _coords(n):
    return {
        "network": [f"n{i}" for i in range(n)],
        "arch": ("network", np.array(["vanilla", "gru"][:n] * (n // 2 or 1), dtype=object)[:n]),
        "activation": ("network", np.array(["tanh"] * n, dtype=object)),
    }


def test_sine_errors_closed_form():
    omega = np.array([0.01, 0.02, 0.04])
    f = np.array([[0.011, 0.018, np.nan], [0.01, 0.02, 0.04]])
    freq = xr.Dataset(
        {
            "frequency_linear": (("network", "condition"), f),
            "n_points": (("network", "condition"), np.array([[1, 1, 2], [1, 1, 1]])),
        },
        coords={**_coords(2), "omega": ("condition", omega)},
    )
    err = derived.sine_errors(freq)
    assert err["relative_error"].values[0] == pytest.approx((0.1 + 0.1) / 2)
    assert err["signed_error"].values[0] == pytest.approx((0.001 - 0.002) / 2)
    assert err["coverage"].values[0] == pytest.approx(2 / 3)
    assert err["one_point_fraction"].values.tolist() == pytest.approx([2 / 3, 1.0])
    assert err["relative_error"].values[1] == 0.0


def _cdi(spectrum, ablation):
    spectrum = np.asarray(spectrum, dtype=float)
    ablation = np.asarray(ablation, dtype=float)
    n = spectrum.shape[0]
    return xr.Dataset(
        {
            "spectrum": (("network", "context", "mode"), spectrum),
            "ablation": (("network", "context", "modes_kept"), ablation),
            "response_full": (("network", "context"), ablation[:, :, -1]),
        },
        coords=_coords(n),
    )


def test_cdi_modes_counts_eigenvalues_near_one_and_modes_needed():
    # network 0: one integrating mode carries the whole response (Vanilla-like)
    # network 1: three modes near 1 share it (gated-like)
    spectrum = [[[1.0, 0.5, 0.2, 0.1]], [[0.999, 0.99, 0.97, 0.3]]]
    ablation = [[[1.0, 1.0, 1.0, 1.0]], [[0.3, 0.6, 0.95, 1.0]]]
    m = derived.cdi_modes(_cdi(spectrum, ablation))
    assert m["near_one"].values.tolist() == [1, 3]
    assert m["modes_needed"].values.tolist() == [1, 3]
    assert m["response_full"].values.tolist() == [1.0, 1.0]


def test_cdi_modes_needed_requires_staying_close():
    # the curve touches the full response at m = 1 but leaves it at m = 2: 3 modes needed
    m = derived.cdi_modes(_cdi([[[1.0, 0.9, 0.8]]], [[[1.0, 0.5, 1.0]]]))
    assert m["modes_needed"].values.tolist() == [3]


def test_fig4_groups_average_over_the_trained_relu_networks():
    ids = ["tr0", "tr1", "ur0", "tt0", "ut0"]
    act = ["relu", "relu", "relu", "tanh", "tanh"]
    tr = ["trained", "trained", "untrained", "trained", "untrained"]
    a = np.array(
        [
            [0, 0.2, 0.1, 0.5, 0.6],
            [0.2, 0, 0.3, 0.7, 0.8],
            [0.1, 0.3, 0, 0.4, 0.4],
            [0.5, 0.7, 0.4, 0, 0.2],
            [0.6, 0.8, 0.4, 0.2, 0],
        ]
    )
    d = xr.DataArray(
        a,
        dims=("network", "network_to"),
        coords={
            "network": ids,
            "activation": ("network", act),
            "trained": ("network", tr),
            "network_to": ids,
        },
    )
    g = derived.fig4_groups(d)
    assert g["untrained relu"].tolist() == pytest.approx([0.2])
    assert g["trained tanh"].tolist() == pytest.approx([0.6])
    assert g["untrained tanh"].tolist() == pytest.approx([0.7])
    assert g["trained relu"].tolist() == pytest.approx([0.2, 0.2])


def test_modal():
    assert derived.modal(np.array([3, 8, 8, 8, 2])) == (8, 0.6)
    assert derived.modal(np.array([2, 3])) == (2, 0.5)  # ties: the smallest


def test_cdi_modes_leave_out_contexts_without_a_line_attractor():
    # network 0: a line attractor in context 0 only (context 1 NaN, as rnnzoo-dynamics
    # stores a context without points on the line attractor); network 1: none at all
    spectrum = [[[1.0, 0.5], [np.nan, np.nan]], [[np.nan, np.nan], [np.nan, np.nan]]]
    ablation = [[[1.0, 1.0], [np.nan, np.nan]], [[np.nan, np.nan], [np.nan, np.nan]]]
    cdi = _cdi(spectrum, ablation).assign(
        response_full_all=(("network", "context"), np.array([[3.0, 500.0], [7.0, 9.0]]))
    )
    m = derived.cdi_modes(cdi)
    assert m["near_one"].values[0] == 1  # context 0 alone, not averaged with a NaN context
    assert m["response_full"].values[0] == 1.0
    assert m["line_contexts"].values.tolist() == [1, 0]
    assert np.isnan(m["near_one"].values[1])
    assert np.isnan(m["modes_needed"].values[1])
    assert m["response_full_all"].values.tolist() == [251.5, 8.0]


def test_context_mean_averages_the_contexts_that_are_defined():
    v = np.array([[[1.0, 2.0], [3.0, 4.0]], [[np.nan, np.nan], [5.0, 6.0]], [[np.nan] * 2] * 2])
    out = derived.context_mean(v)
    assert out[0].tolist() == [2.0, 3.0]
    assert out[1].tolist() == [5.0, 6.0]
    assert np.isnan(out[2]).all()


def test_line_graph_nodes_and_sine_orbit_points():
    ids = ["a", "b", "c"]
    g0 = xr.Dataset({"graph_n_nodes": ("network", [20, 1])}, coords={"network": ["a", "b"]})
    g1 = xr.Dataset({"graph_n_nodes": ("network", [0, 20])}, coords={"network": ["b", "a"]})
    nodes = derived.line_graph_nodes([g0, g1], ids)
    assert nodes.tolist() == [[20, 20], [1, 0], [0, 0]]  # c is in neither: 0 nodes
    freq = xr.Dataset({"n_points": (("network", "condition"), [[1, 1, 1], [0, 2, 1]])})
    assert derived.sine_orbit_points(freq).tolist() == [3, 3]
