"""Built-in metrics against plain, independent float64 implementations written here."""

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes

import rnnzoo_metrics as rm
from rnnzoo_metrics.synthetic import low_rank_networks as low_rank_nets

pytestmark = pytest.mark.filterwarnings("ignore::rnnzoo_metrics.PluginWarning")


def _centre(x):
    return x - x.mean(axis=0)


def _inv_sqrt(c):
    w, v = np.linalg.eigh(c)
    return (v / np.sqrt(w)) @ v.T


def _pca_scores(x, threshold):
    xc = _centre(x)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    var = s**2 / np.sum(s**2)
    k, acc = 0, 0.0
    while k < len(s) and acc < threshold:
        acc += var[k]
        k += 1
    k = min(k, int(np.sum(s > s[0] * 1e-10)))
    return xc @ vt[:k].T


def ref_cca(xs, ys):
    """Canonical correlations by covariance whitening (not the engine's QR/SVD path)."""
    t = _inv_sqrt(xs.T @ xs) @ (xs.T @ ys) @ _inv_sqrt(ys.T @ ys)
    return np.linalg.svd(t, compute_uv=False)[: min(xs.shape[1], ys.shape[1])]


def ref_svcca(x, y, threshold=0.95):
    return 1 - ref_cca(_pca_scores(x, threshold), _pca_scores(y, threshold)).mean()


def ref_pwcca(x, y):
    xs, ys = _pca_scores(x, 1.0), _pca_scores(y, 1.0)
    t = _inv_sqrt(xs.T @ xs) @ (xs.T @ ys) @ _inv_sqrt(ys.T @ ys)
    u, rho, vt = np.linalg.svd(t, full_matrices=False)
    sims = []
    for scores, raw, dirs in ((xs, x, u), (ys, y, vt.T)):
        h = scores @ _inv_sqrt(scores.T @ scores) @ dirs  # canonical variates (unit norm)
        h /= np.linalg.norm(h, axis=0)
        alpha = np.abs(h.T @ _centre(raw)).sum(axis=1)
        sims.append(alpha @ rho / alpha.sum())
    return 1 - np.mean(sims)


def _gram(x):
    xc = _centre(x)
    return xc @ xc.T


def ref_cka(x, y):
    k, ll = _gram(x), _gram(y)
    return np.sum(k * ll) / (np.linalg.norm(k) * np.linalg.norm(ll))


def ref_hsic_unbiased(k, ll):
    n = len(k)
    k, ll = k.copy(), ll.copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(ll, 0)
    one = np.ones(n)
    return (
        np.trace(k @ ll)
        + (one @ k @ one) * (one @ ll @ one) / ((n - 1) * (n - 2))
        - 2 / (n - 2) * one @ k @ ll @ one
    ) / (n * (n - 3))


def ref_cka_debiased(x, y):
    k, ll = _gram(x), _gram(y)
    return ref_hsic_unbiased(k, ll) / np.sqrt(ref_hsic_unbiased(k, k) * ref_hsic_unbiased(ll, ll))


def ref_cka_rbf(x, y, bandwidth=0.8):
    def kern(a):
        d2 = np.sum((a[:, None, :] - a[None, :, :]) ** 2, axis=-1)
        iu = np.triu_indices(len(a), 1)
        sigma = bandwidth * np.median(np.sqrt(d2[iu]))
        k = np.exp(-d2 / (2 * sigma**2))
        h = np.eye(len(a)) - 1 / len(a)
        return h @ k @ h

    k, ll = kern(x), kern(y)
    return np.sum(k * ll) / (np.linalg.norm(k) * np.linalg.norm(ll))


def ref_procrustes(x, y):
    xc, yc = _centre(x), _centre(y)
    p = max(x.shape[1], y.shape[1])
    xp = np.pad(xc, ((0, 0), (0, p - x.shape[1])))
    yp = np.pad(yc, ((0, 0), (0, p - y.shape[1])))
    r, _ = orthogonal_procrustes(yp, xp)
    cos = np.sum(xp * (yp @ r)) / (np.linalg.norm(xp) * np.linalg.norm(yp))
    return np.arccos(np.clip(cos, -1, 1))


REFERENCES = {
    "svcca": ref_svcca,
    "pwcca": ref_pwcca,
    "cka": lambda x, y: 1 - ref_cka(x, y),
    "cka-angular": lambda x, y: np.arccos(ref_cka(x, y)),
    "cka-debiased": lambda x, y: 1 - ref_cka_debiased(x, y),
    "cka-rbf": lambda x, y: 1 - ref_cka_rbf(x, y),
    "procrustes": ref_procrustes,
}


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_matches_independent_float64_implementation(name):
    nets = low_rank_nets(n_networks=5, samples=80, widths=(6, 9, 11), seed=3, noise=0.2)
    d = rm.pairwise(nets, name, progress=False)
    for i in range(len(nets)):
        for j in range(len(nets)):
            want = 0.0 if i == j else REFERENCES[name](nets[i], nets[j])
            assert d.values[i, j] == pytest.approx(want, abs=1e-10), (name, i, j)


def test_svcca_keeps_smallest_k_reaching_threshold():
    rng = np.random.default_rng(0)
    # centred data with known singular values: variance shares 0.5, 0.3, 0.15, 0.05
    q, _ = np.linalg.qr(rng.normal(size=(200, 4)))
    q -= q.mean(axis=0)
    q, _ = np.linalg.qr(q)
    x = q * np.sqrt([0.5, 0.3, 0.15, 0.05]) @ random_rotation(4, rng)
    # 0.5 + 0.3 + 0.15 = 0.95 (and 0.5 + 0.3 = 0.8) only in exact arithmetic: at such a tie the
    # SVD's last bits (~1e-15; they differ between BLAS code paths) decide: test 1e-9 beside it
    m = rm.get_metric("svcca", threshold=0.95 - 1e-9)
    assert m.prepare(x).shape[1] == 3
    assert rm.get_metric("svcca", threshold=0.95 + 1e-9).prepare(x).shape[1] == 4
    assert rm.get_metric("svcca", threshold=0.8 - 1e-9).prepare(x).shape[1] == 2


def random_rotation(p, rng):
    q, r = np.linalg.qr(rng.normal(size=(p, p)))
    return q * np.sign(np.diag(r))


def test_svcca_mean_over_min_k():
    """Normalisation is the mean over min(kx, ky) coefficients, not over max or a sum."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 3))
    y = np.concatenate([x, rng.normal(size=(500, 5))], axis=1)  # contains x exactly
    m = rm.get_metric("svcca", threshold=1.0)
    assert m.pair(m.prepare(x), m.prepare(y)) == pytest.approx(0.0, abs=1e-12)


def test_cka_truncation_is_within_tol():
    rng = np.random.default_rng(5)
    z = rng.normal(size=(150, 4))
    nets = [
        z @ rng.normal(size=(4, p)) + 1e-3 * np.tanh(rng.normal(size=(150, p)))
        for p in (20, 30, 20, 30)
    ]
    exact = rm.pairwise(nets, "cka", tol=0.0, progress=False).values
    for tol in (1e-11, 1e-9, 1e-6):
        m = rm.get_metric("cka", tol=tol)
        caches = [m.prepare(x) for x in nets]
        if tol >= 1e-6:
            assert max(c.b.shape[1] for c in caches) < 20  # it does truncate here
        approx = rm.pairwise(nets, m, progress=False).values
        assert np.abs(approx - exact).max() <= tol
