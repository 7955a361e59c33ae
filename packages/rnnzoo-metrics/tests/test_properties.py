"""Invariances, symmetry, identity, triangle inequality (hypothesis), block == pair."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnnzoo_metrics as rm
from rnnzoo_metrics.synthetic import low_rank_networks

pytestmark = pytest.mark.filterwarnings("ignore::rnnzoo_metrics.PluginWarning")

ACTIVATION_METRICS = [
    "svcca",
    "pwcca",
    "cka",
    "cka-angular",
    "cka-debiased",
    "cka-rbf",
    "procrustes",
]
ANGULAR = {"cka-angular", "procrustes"}  # arccos near 1: ~1e-8 resolution
TRUE_METRICS = [
    i.name for i in rm.available_metrics() if i.is_metric and i.input_kind == "activations"
]


def rotation(p, rng):
    q, r = np.linalg.qr(rng.normal(size=(p, p)))
    return q * np.sign(np.diag(r))


def dist(name, x, y, **params):
    m = rm.get_metric(name, **params)
    return m.pair(m.prepare(x), m.prepare(y))


def test_pwcca_is_not_rotation_invariant(nets):
    """Documented in docs/metrics.md: the projection weights use the neuron basis."""
    rng = np.random.default_rng(3)
    x, y = nets[0], nets[1]
    assert dist("pwcca", x, y @ rotation(y.shape[1], rng)) != pytest.approx(
        dist("pwcca", x, y), abs=1e-6
    )


def test_true_metrics_declared():
    assert set(TRUE_METRICS) == {"procrustes", "cka-angular"}


@pytest.mark.parametrize("name", ACTIVATION_METRICS)
def test_identity_and_symmetry(name, nets):
    tol = 1e-7 if name in ANGULAR else 1e-12
    x, y = nets[0], nets[1]
    assert dist(name, x, x.copy()) == pytest.approx(0.0, abs=tol)
    assert dist(name, x, y) == pytest.approx(dist(name, y, x), abs=1e-12)
    assert dist(name, x, y) > 10 * tol


@pytest.mark.parametrize("name", ACTIVATION_METRICS)
def test_rotation_scaling_translation_invariance(name, nets):
    """Every metric ignores rotations of units (PWCCA: signed permutations), isotropic
    scaling and translation."""
    rng = np.random.default_rng(7)
    x, y = nets[0], nets[1]
    base = dist(name, x, y)
    q = rotation(y.shape[1], rng)
    if name == "pwcca":  # its weights live in the neuron basis: only signed permutations
        q = np.eye(y.shape[1])[rng.permutation(y.shape[1])] * rng.choice([-1, 1], y.shape[1])
    y2 = 3.7 * y @ q + rng.normal(size=y.shape[1])
    assert dist(name, x, y2) == pytest.approx(base, abs=1e-9)


@pytest.mark.parametrize("name", ["svcca", "pwcca"])
def test_cca_invariant_to_invertible_linear_maps(name, nets):
    """CCA (SVCCA with threshold 1, i.e. no PCA cut) ignores any invertible linear map."""
    rng = np.random.default_rng(8)
    x, y = nets[0], nets[1]
    a = rng.normal(size=(y.shape[1], y.shape[1])) + 3 * np.eye(y.shape[1])
    if name == "svcca":
        assert dist(name, x, y @ a, threshold=1.0) == pytest.approx(
            dist(name, x, y, threshold=1.0), abs=1e-9
        )
    else:  # PWCCA's weights depend on the neurons: documented as not invariant
        assert dist(name, x, y @ a) != pytest.approx(dist(name, x, y), abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    mix=st.floats(0.0, 1.0),
    name=st.sampled_from(["procrustes", "cka-angular"]),
)
def test_triangle_inequality(seed, mix, name):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(6, 30))
    widths = rng.integers(1, 6, size=3)
    x = rng.normal(size=(n, widths[0]))
    y = mix * np.pad(x, ((0, 0), (0, max(0, widths[1] - widths[0]))))[:, : widths[1]] + (
        1 - mix
    ) * rng.normal(size=(n, widths[1]))
    z = rng.normal(size=(n, widths[2])) * rng.uniform(0.1, 3)
    dxy, dyz, dxz = dist(name, x, y), dist(name, y, z), dist(name, x, z)
    assert dxz <= dxy + dyz + 1e-7
    assert dxy <= dxz + dyz + 1e-7
    assert dyz <= dxy + dxz + 1e-7


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), name=st.sampled_from(ACTIVATION_METRICS))
def test_block_agrees_with_pair(seed, name):
    rng = np.random.default_rng(seed)
    nets = [rng.normal(size=(40, int(rng.integers(2, 9)))) for _ in range(5)]
    m = rm.get_metric(name)
    caches = [m.prepare(x) for x in nets]
    full = m.block(caches, caches)
    off = m.block(caches[:2], caches[2:])
    for i in range(5):
        for j in range(5):
            if i != j:
                assert full[i, j] == pytest.approx(m.pair(caches[i], caches[j]), abs=1e-12)
    for i in range(2):
        for j in range(3):
            assert off[i, j] == pytest.approx(m.pair(caches[i], caches[2 + j]), abs=1e-12)


def test_pairwise_matrix_is_symmetric_with_zero_diagonal():
    nets = low_rank_networks(n_networks=7, samples=60, widths=(3, 5, 4))
    for name in ACTIVATION_METRICS:
        d = rm.pairwise(nets, name, tile=3, progress=False).values
        assert np.array_equal(d, d.T)
        assert np.all(np.diag(d) == 0)
