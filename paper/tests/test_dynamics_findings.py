"""Fixed-point findings on hand-built dynamics analyses stored in a real (synthetic) zoo.

The analyses are written with ``Zoo.write_analysis`` in rnnzoo-dynamics' layout
(docs/architecture.md §6) with known counts, and read back by the paper through
``rnnzoo_dynamics.read_analysis``, so each test fails if the paper counts the wrong thing.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from rnnzoo_paper import caveats, findings, stats


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    from rnnzoo_train.tasks import get_task
    from rnnzoo_train.zoo import open_zoo
    from rnnzoo_train.zoo.testing import write_synthetic_zoo

    path = tmp_path_factory.mktemp("zoo") / "zoo.zarr"
    write_synthetic_zoo(path, [get_task("sine"), get_task("cdi")], seeds=(0, 1))
    z = open_zoo(path)
    yield z
    z.close()


def _coords(zoo, task):
    df = zoo.index(task)
    ids = [str(i) for i in df.index]
    return ids, {
        "network": ids,
        "arch": ("network", df["arch"].astype(str).to_numpy(dtype=object)),
        "activation": ("network", df["activation"].astype(str).to_numpy(dtype=object)),
    }


def _summary(zoo, task, n_fixed, extra=None):
    ids, coords = _coords(zoo, task)
    n = len(ids)
    data = {
        "analysis_status": ("network", np.array(["ok"] * n, dtype=object)),
        "n_fixed": ("network", np.asarray(n_fixed, dtype=np.int64)),
        "n_stable": ("network", np.ones(n, dtype=np.int64)),
        **(extra or {}),
    }
    zoo.write_analysis(task, "dynamics_summary", xr.Dataset(data, coords=coords))


def _by_key(found):
    return {f.key: f for f in found}


def test_cdi_count_is_the_line_attractor_graph_size_not_the_raw_number_of_points(zoo):
    ids, coords = _coords(zoo, "cdi")
    n = len(ids)  # 8 networks
    nodes = np.full((n, 2), 20)
    nodes[0, 1] = 0  # no attractor in context 1
    nodes[1, 0] = 1  # a single attractor point in context 0
    for c in range(2):
        zoo.write_analysis(
            "cdi",
            f"line_attractor_graph-context{c}",
            xr.Dataset({"graph_n_nodes": ("network", nodes[:, c])}, coords=coords),
        )
    # a line attractor is found as any number of discrete points: the raw counts all differ
    _summary(
        zoo,
        "cdi",
        n_fixed=[3, 50, 7, 12, 31, 9, 44, 5],
        extra={f"n_line_graph_nodes_context{c}": ("network", nodes[:, c]) for c in range(2)},
    )
    found = _by_key(findings.fixed_point_findings(zoo, ["cdi"]))
    f = found["fixed-points/cdi/count"]
    assert f.numbers["modal_count"] == 20
    assert f.numbers["fraction_at_mode"] == pytest.approx(6 / 8)
    assert f.numbers["fraction_at_mode_context0"] == pytest.approx(7 / 8)
    assert f.numbers["fraction_at_mode_context1"] == pytest.approx(7 / 8)
    assert f.numbers["n_without_attractor"] == 2
    assert f.numbers["fraction_at_mode_all_points"] == pytest.approx(1 / 8)
    assert "6 of 8 networks (75%) have a line attractor in every context" in f.result
    assert "resampled at the modal 20 nodes" in f.result
    assert "line attractors" in f.claim
    assert "footnote 5" in f.claim
    assert f.verdict == stats.INCONCLUSIVE  # 75% < 90% on fewer than 10 networks
    # the reasons given for a difference name the zoo's size and the networks without one
    why = caveats.explain(f, zoo)
    assert "2 networks lack a line attractor in a context" in why
    assert "per cell type" in why
    assert "paper:" in why
    assert "T = 30" in why


def test_cdi_count_without_any_line_attractor_is_not_a_modal_count_of_one(zoo):
    # the tiny preset's cdi networks: a single attractor point per context (1 node) each
    ids, coords = _coords(zoo, "cdi")
    for c in range(2):
        zoo.write_analysis(
            "cdi",
            f"line_attractor_graph-context{c}",
            xr.Dataset({"graph_n_nodes": ("network", np.ones(len(ids), int))}, coords=coords),
        )
    _summary(zoo, "cdi", n_fixed=np.full(len(ids), 2))
    f = _by_key(findings.fixed_point_findings(zoo, ["cdi"]))["fixed-points/cdi/count"]
    assert f.numbers["modal_count"] == 0
    assert f.numbers["fraction_at_mode"] == 0.0
    assert f.numbers["n_without_attractor"] == len(ids)
    assert "no network has a line attractor" in f.result


def _cdi_linear(zoo, response, spectrum_lead):
    ids, coords = _coords(zoo, "cdi")
    n = len(ids)
    k = 4
    full = np.asarray(response, dtype=float)  # (network, context)
    spec = np.zeros((n, 2, k))
    spec[:, :, 0] = spectrum_lead
    spec[:, :, 1:] = 0.5
    spec[~np.isfinite(full)] = np.nan
    abl = np.repeat(full[:, :, None], k, axis=2)
    ds = xr.Dataset(
        {
            "spectrum": (("network", "context", "mode"), spec),
            "ablation": (("network", "context", "modes_kept"), abl),
            "response_full": (("network", "context"), full),
            "response_full_all": (("network", "context"), np.full((n, 2), 400.0)),
        },
        coords={**coords, "context": [0, 1], "modes_kept": np.arange(1, k + 1)},
        attrs={"horizon": 30},
    )
    zoo.write_analysis("cdi", "cdi_linear", ds)


def test_cdi_modes_average_only_contexts_with_a_line_attractor(zoo):
    ids, _ = _coords(zoo, "cdi")
    n = len(ids)
    response = np.ones((n, 2))
    response[0, 1] = np.nan  # context 1 of network 0 has no point on the line attractor
    response[1, :] = np.nan  # network 1 has none at all
    _summary(zoo, "cdi", n_fixed=np.full(n, 2))  # its own, not another test's (any order)
    _cdi_linear(zoo, response, spectrum_lead=1.0)
    found = _by_key(findings.fixed_point_findings(zoo, ["cdi"]))
    f = found["cdi/modes_needed"]
    tanh = np.asarray(zoo.index("cdi")["activation"].astype(str)) == "tanh"
    assert f.numbers["n_tanh"] == tanh.sum()
    with_line = tanh.copy()
    with_line[1] = False
    assert f.numbers["n_with_line_attractor"] == with_line.sum()
    assert f.numbers["median_response_full"] == pytest.approx(1.0)
    assert f.numbers["median_response_full_all_points"] == pytest.approx(400.0)
    assert "on the line attractor" in f.claim
    assert all(np.isfinite(v) for v in f.numbers.values())


def test_sine_counts_true_fixed_points_near_the_orbit(zoo):
    ids, coords = _coords(zoo, "sine")
    n, n_freq = len(ids), 4
    near = np.ones((n, n_freq), dtype=np.int64)
    near[0, 0] = 0  # no fixed point near the orbit at the lowest frequency
    near[1, 2] = 2
    everywhere = near + 3  # far fixed points and slow points do not count
    omega = np.linspace(0.01, 0.05, n_freq)
    freq = xr.Dataset(
        {
            "n_points": (("network", "condition"), near),
            "n_points_all": (("network", "condition"), everywhere),
            "frequency_linear": (("network", "condition"), np.tile(omega, (n, 1)) * 1.05),
        },
        coords={**coords, "omega": ("condition", omega)},
    )
    zoo.write_analysis("sine", "sine_frequency", freq)
    _summary(zoo, "sine", n_fixed=everywhere.sum(axis=1))
    found = _by_key(findings.fixed_point_findings(zoo, ["sine"]))
    one = found["sine/one-point-per-frequency"]
    assert one.numbers["fraction_one_point"] == pytest.approx((n * n_freq - 2) / (n * n_freq))
    assert one.numbers["fraction_no_point"] == pytest.approx(1 / (n * n_freq))
    assert one.numbers["fraction_one_point_any_distance"] == 0.0
    assert "exactly one true fixed point near the orbit" in one.result
    count = found["fixed-points/sine/count"]
    assert count.numbers["modal_count"] == n_freq  # one per frequency
    assert count.numbers["fraction_at_mode"] == pytest.approx((n - 2) / n)
    assert count.numbers["modal_count_all_points"] == 4 * n_freq
    align = found["sine/frequency-alignment"]
    assert align.numbers["median_relative_error"] == pytest.approx(0.05)
    assert align.verdict == stats.AGREES
    why = caveats.explain(one, zoo)
    assert "2 (network, frequency) pairs in 2 networks" in why
