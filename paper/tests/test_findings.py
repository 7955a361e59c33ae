import numpy as np
import xarray as xr

from rnnzoo_paper import findings, stats

ARCHS = ["vanilla", "ugrnn", "gru", "lstm"]


def _matrix(n_seeds: int, arch_effect: float, act_effect: float, noise: float, seed: int = 0):
    """Distances between networks placed by architecture and activation plus noise."""
    rng = np.random.default_rng(seed)
    rows = [(a, f) for a in ARCHS for f in ("tanh", "relu") for _ in range(n_seeds)]
    centre_a = {a: rng.normal(size=6) for a in ARCHS}
    centre_f = {"tanh": rng.normal(size=6), "relu": rng.normal(size=6)}
    x = np.array(
        [
            arch_effect * centre_a[a] + act_effect * centre_f[f] + noise * rng.normal(size=6)
            for a, f in rows
        ]
    )
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    ids = [f"{a}-{f}-{i}" for i, (a, f) in enumerate(rows)]
    return xr.DataArray(
        d,
        dims=("network", "network_to"),
        coords={
            "network": ids,
            "network_to": ids,
            "arch": ("network", [a for a, _ in rows]),
            "activation": ("network", [f for _, f in rows]),
        },
    )


def _by_key(found):
    return {f.key: f for f in found}


def test_geometry_that_clusters_agrees_and_unclustered_topology_agrees_too():
    geometry = _matrix(10, arch_effect=3.0, act_effect=3.0, noise=0.3)
    topology = _matrix(10, arch_effect=0.0, act_effect=0.0, noise=1.0, seed=1)
    found = _by_key(
        findings.clustering_findings({"flipflop": {"svcca": geometry, "graph": topology}})
    )
    for by in ("arch", "activation"):
        f = found[f"cluster/flipflop/svcca/{by}"]
        assert f.verdict == stats.AGREES, f.result
        assert f.numbers["p_value"] <= stats.ALPHA
        g = found[f"cluster/flipflop/graph/{by}"]
        assert g.verdict == stats.AGREES, g.result
        assert g.numbers["silhouette"] < f.numbers["silhouette"]


def test_topology_that_clusters_as_much_as_geometry_differs():
    geometry = _matrix(10, arch_effect=3.0, act_effect=0.0, noise=0.3)
    found = _by_key(
        findings.clustering_findings({"flipflop": {"svcca": geometry, "graph": geometry}})
    )
    assert found["cluster/flipflop/graph/arch"].verdict == stats.DIFFERS


def test_no_clustering_on_a_large_zoo_differs_and_on_a_small_one_is_inconclusive():
    big = _matrix(10, arch_effect=0.0, act_effect=0.0, noise=1.0)
    small = _matrix(2, arch_effect=0.0, act_effect=0.0, noise=1.0)
    f_big = _by_key(findings.clustering_findings({"sine": {"svcca": big}}))
    f_small = _by_key(findings.clustering_findings({"sine": {"svcca": small}}))
    assert f_big["cluster/sine/svcca/activation"].verdict == stats.DIFFERS
    assert f_small["cluster/sine/svcca/activation"].verdict == stats.INCONCLUSIVE


def test_a_zoo_with_one_activation_reports_the_activation_test_as_not_computable():
    d = _matrix(3, 1.0, 0.0, 0.5)
    tanh = np.flatnonzero(d["activation"].values == "tanh")
    d = d.isel(network=tanh, network_to=tanh)
    f = _by_key(findings.clustering_findings({"cdi": {"svcca": d}}))["cluster/cdi/svcca/activation"]
    assert f.verdict == stats.INCONCLUSIVE
    assert f.numbers == {}
    assert "one activation" in f.result


def test_graph_distances_between_different_node_counts_are_dropped_before_testing():
    d = _matrix(4, 3.0, 0.0, 0.2)
    a = d.values.copy()
    a[0, 1:] = a[1:, 0] = np.nan  # network 0 has another number of fixed points
    d = d.copy(data=a)
    f = _by_key(findings.clustering_findings({"flipflop": {"graph": d}}))
    assert f["cluster/flipflop/graph/arch"].numbers["n_networks"] == d.sizes["network"] - 1


def test_fig4_finding_compares_untrained_relu_with_trained_tanh():
    ids = ["tr0", "tr1", "tr2", "ur0", "ur1", "ur2", "tt0", "tt1", "tt2"]
    act = ["relu"] * 6 + ["tanh"] * 3
    tr = ["trained"] * 3 + ["untrained"] * 3 + ["trained"] * 3
    rng = np.random.default_rng(0)
    a = rng.uniform(0.4, 0.5, (9, 9))
    a[:3, 3:6] = 0.1  # trained relu close to untrained relu
    a = (a + a.T) / 2
    np.fill_diagonal(a, 0)
    d = xr.DataArray(
        a,
        dims=("network", "network_to"),
        coords={
            "network": ids,
            "network_to": ids,
            "activation": ("network", act),
            "trained": ("network", tr),
        },
    )
    (f,) = findings.fig4_finding(d)
    assert f.verdict == stats.AGREES
    assert f.numbers["p_value"] == 1 / 20  # exact: 1 of C(6, 3) arrangements
    assert (
        f.numbers["svcca_trained_relu_untrained_relu"]
        < f.numbers["svcca_trained_relu_trained_tanh"]
    )
