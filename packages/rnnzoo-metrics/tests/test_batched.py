"""The batched pair phase: stacked per-pair blocks, one gufunc call per block shape,
and the Gram-eigenvalue shortcut with its SVD fallback."""

import numpy as np
import pytest

import rnnzoo_metrics as rm
from rnnzoo_metrics import linalg
from rnnzoo_metrics.synthetic import low_rank_networks

pytestmark = pytest.mark.filterwarnings("ignore::rnnzoo_metrics.PluginWarning")


def with_singular_values(rng, p, ka, kb, sv):
    """``p`` random ``ka x kb`` matrices whose singular values are ``sv`` (length min)."""
    r = min(ka, kb)
    u, _ = np.linalg.qr(rng.normal(size=(p, ka, r)))
    v, _ = np.linalg.qr(rng.normal(size=(p, kb, r)))
    return (u * np.asarray(sv)[..., None, :]) @ v.transpose(0, 2, 1)


@pytest.mark.parametrize(("ka", "kb"), [(1, 1), (1, 4), (5, 5), (4, 6), (7, 3)])
def test_fast_singular_values_match_svd(ka, kb):
    rng = np.random.default_rng(ka * 10 + kb)
    m = rng.uniform(-0.5, 0.5, size=(200, ka, kb))
    fast = np.sort(linalg.singular_values(m), axis=1)
    exact = np.sort(np.linalg.svd(m, compute_uv=False), axis=1)
    assert fast.shape == (200, min(ka, kb))
    # eigvalsh: |δλ| <~ 7·eps·λ_max; over 2σ >= 2e-3·σ_max (the EIG_RATIO cut): <= 8e-13·σ_max
    np.testing.assert_allclose(fast, exact, rtol=0, atol=8e-13 * exact.max())


def test_tiny_singular_values_fall_back_to_svd():
    """sqrt(eigenvalue) is off by ~1e-8 for singular values near 0; those go to the SVD."""
    rng = np.random.default_rng(0)
    sv = np.array([[0.9, 0.5, 0.3, 1e-9, 0.0]] * 50 + [[0.9, 0.8, 0.7, 0.6, 0.5]] * 50)
    m = with_singular_values(rng, 100, 5, 6, sv)
    exact = np.sort(np.linalg.svd(m, compute_uv=False), axis=1)
    raw = np.sort(np.sqrt(np.maximum(np.linalg.eigvalsh(m @ m.transpose(0, 2, 1)), 0)), 1)
    assert np.abs(raw - exact).max() > 1e-10  # the shortcut alone would fail the 1e-10 bar
    fast = np.sort(linalg.singular_values(m), axis=1)
    np.testing.assert_allclose(fast, exact, rtol=0, atol=1e-14)
    np.testing.assert_allclose(fast[:, 0][:50], 0.0, atol=1e-14)


def offsets(widths):
    return np.concatenate([[0], np.cumsum(widths)])


@pytest.mark.parametrize("same", [False, True])
def test_pair_blocks_cover_every_pair_once_in_bounded_chunks(same, monkeypatch):
    rng = np.random.default_rng(1)
    wa = rng.integers(1, 6, size=7)
    wb = wa if same else rng.integers(1, 6, size=5)
    oa, ob = offsets(wa), offsets(wb)
    g = rng.normal(size=(oa[-1], ob[-1]))
    i, j = linalg.tile_pairs(len(wa), len(wb), same)
    if same:
        assert np.all(i < j)
        assert len(i) == 21
    monkeypatch.setattr(linalg, "PAIR_BUDGET", 8 * 25 * 3)  # at most 3 blocks of 5x5
    seen = np.zeros(len(i), dtype=int)
    for sel, blocks in linalg.pair_blocks(g, oa, ob, i, j):
        assert blocks.nbytes <= linalg.PAIR_BUDGET
        assert len({(wa[a], wb[b]) for a, b in zip(i[sel], j[sel], strict=True)}) == 1
        for p, s in enumerate(sel):
            want = g[oa[i[s]] : oa[i[s] + 1], ob[j[s]] : ob[j[s] + 1]]
            np.testing.assert_array_equal(blocks[p], want)
        seen[sel] += 1
    assert np.all(seen == 1)


@pytest.mark.parametrize("name", ["svcca", "pwcca", "procrustes"])
def test_chunked_blocks_agree_with_pair(name, monkeypatch):
    """Tiny chunks (one pair each) and mixed widths give the per-pair values exactly."""
    nets = low_rank_networks(6, samples=60, widths=(3, 5, 8), seed=4, noise=0.1)
    m = rm.get_metric(name)
    caches = [m.prepare(x) for x in nets]
    monkeypatch.setattr(linalg, "PAIR_BUDGET", 1)
    full = m.block(caches, caches)
    off = m.block(caches[:2], caches[2:])
    assert np.all(np.diag(full) == 0.0)
    assert np.array_equal(full, full.T)
    for i in range(6):
        for j in range(6):
            if i != j:
                assert full[i, j] == pytest.approx(m.pair(caches[i], caches[j]), abs=1e-12)
    for i in range(2):
        for j in range(4):
            assert off[i, j] == pytest.approx(m.pair(caches[i], caches[2 + j]), abs=1e-12)


def test_svcca_tile_is_one_batched_call_per_block_shape(monkeypatch):
    """The small problems go through stacked gufuncs: O(shapes) LAPACK calls, not O(pairs)."""
    nets = low_rank_networks(30, samples=80, widths=(6, 9, 12), seed=5, noise=0.3)
    m = rm.get_metric("svcca")
    caches = [m.prepare(x) for x in nets]
    shapes = {c.shape[1] for c in caches}
    calls = {"eigvalsh": 0, "svd": 0}
    real = {k: getattr(np.linalg, k) for k in calls}

    def counting(k):
        def f(*args, **kwargs):
            calls[k] += 1
            return real[k](*args, **kwargs)

        return f

    for k in calls:
        monkeypatch.setattr(np.linalg, k, counting(k))
    d = m.block(caches, caches)
    assert calls["eigvalsh"] <= len(shapes) ** 2
    assert calls["svd"] <= len(shapes) ** 2  # fallbacks, also batched
    assert np.isfinite(d).all()


def test_stacking_fortran_ordered_bases_gives_the_same_product():
    """CCA bases are stored column-contiguous (fast stacking); the product is unchanged."""
    rng = np.random.default_rng(6)
    c_order = [rng.normal(size=(50, k)) for k in (3, 5, 1, 4)]
    f_order = [np.asfortranarray(b) for b in c_order]
    sc, oc = linalg.stack(c_order)
    sf, of = linalg.stack(f_order)
    np.testing.assert_array_equal(sc, sf)
    np.testing.assert_array_equal(oc, of)
    assert sf.flags.f_contiguous
    for a, b in ((c_order, c_order), (c_order, c_order[1:])):
        gc = linalg.cross_products(a, b)[0]
        fa = f_order if a is c_order else None
        fb = f_order if b is c_order else f_order[1:]
        gf = linalg.cross_products(fa, fa if b is a else fb)[0]
        np.testing.assert_allclose(gf, gc, rtol=0, atol=1e-12)
    m = rm.get_metric("svcca")
    assert m.prepare(rng.normal(size=(40, 6))).flags.f_contiguous
