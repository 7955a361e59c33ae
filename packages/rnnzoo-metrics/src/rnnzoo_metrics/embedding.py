"""Embedding of a distance matrix: classical MDS and metric MDS (SMACOF, seeded)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InputError, MetricsError


def _network_coords(d: Any) -> dict[str, Any]:
    return {
        name: ("network", np.asarray(c.values))
        for name, c in d.coords.items()
        if c.dims == ("network",)
    }


def _check_distances(d: Any) -> np.ndarray:
    """The matrix as a symmetric float array, or a one-line error naming what is wrong.

    A distance matrix is square ``(network, network_to)``, finite (NaN pairs must be
    dropped first), non-negative, symmetric (to 1e-10 relative) and zero on the diagonal
    (to 1e-12 relative: a network is at distance 0 from itself).
    """
    if tuple(d.dims) != ("network", "network_to"):
        raise InputError(f"expected a (network, network_to) matrix, got dims {tuple(d.dims)}")
    if d.attrs.get("kind") == "similarity":
        raise InputError(
            f"{d.attrs.get('metric', 'this matrix')} is a similarity; embed needs distances "
            "(convert with 1 - s)"
        )
    try:
        a = np.asarray(d.values, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"the matrix is not numeric (dtype {d.dtype})") from None
    if a.shape[0] != a.shape[1]:
        raise InputError(f"the distance matrix is not square: shape {a.shape}")
    if len(a) < 2:
        raise InputError(f"{len(a)} network(s): an embedding needs at least 2 networks")
    ids = [str(v) for v in np.asarray(d["network"].values)] if "network" in d.coords else None

    def name(k: int) -> str:
        return repr(ids[k]) if ids is not None else str(k)

    if np.isnan(a).any():
        raise InputError(
            f"{int(np.isnan(a).sum()) // 2} pairs are NaN (not comparable); "
            "use drop_incomparable(matrix) (CLI: embed --drop-nan) first"
        )
    if not np.all(np.isfinite(a)):
        i, j = np.argwhere(~np.isfinite(a))[0]
        raise InputError(
            f"the distance matrix has infinite entries (networks {name(i)} and {name(j)})"
        )
    if (a < 0).any():
        i, j = np.unravel_index(np.argmin(a), a.shape)
        raise InputError(
            f"the distance matrix has negative entries (min {a[i, j]:.3g}, networks "
            f"{name(i)} and {name(j)}); distances must be >= 0"
        )
    scale = float(a.max())
    if not np.allclose(a, a.T, rtol=1e-10, atol=1e-12 * scale):
        i, j = np.unravel_index(np.argmax(np.abs(a - a.T)), a.shape)
        raise InputError(
            f"the distance matrix is not symmetric ({a[i, j]:.6g} from {name(i)} to "
            f"{name(j)}, {a[j, i]:.6g} back)"
        )
    diag = np.abs(np.diagonal(a))
    if (diag > 1e-12 * scale).any():
        k = int(np.argmax(diag))
        raise InputError(
            f"the diagonal of the distance matrix is not 0 ({a[k, k]:.3g} for network "
            f"{name(k)}); a network is at distance 0 from itself"
        )
    out = 0.5 * (a + a.T)
    np.fill_diagonal(out, 0.0)
    return out


def drop_incomparable(d: Any) -> Any:
    """Largest-first greedy subset of networks whose mutual distances are all finite.

    Repeatedly drops the network with the most NaN entries (for ``fixed-point-graph``:
    the networks whose node count differs from the modal one, as in the paper).
    """
    a = np.asarray(d.values, dtype=float)
    keep = np.ones(len(a), dtype=bool)
    while True:
        bad = np.isnan(a[np.ix_(keep, keep)]).sum(axis=1)
        if bad.max(initial=0) == 0:
            break
        keep[np.flatnonzero(keep)[int(np.argmax(bad))]] = False
    idx = np.flatnonzero(keep)
    out = d.isel(network=idx, network_to=idx)
    out.attrs = {**d.attrs, "n_dropped_incomparable": int((~keep).sum())}
    return out


def classical_mds(a: np.ndarray, n_components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Classical (Torgerson) MDS of a distance matrix.

    Returns the coordinates ``(n, n_components)`` (eigenvectors of the double-centred
    ``-D**2 / 2`` scaled by the square root of their eigenvalues, negative eigenvalues
    set to 0, each axis signed so its largest-magnitude entry is positive) and all
    eigenvalues (descending).
    """
    n = len(a)
    j = np.eye(n) - 1.0 / n
    b = -0.5 * j @ (a**2) @ j
    w, v = np.linalg.eigh(0.5 * (b + b.T))
    order = np.argsort(w)[::-1]
    w, v = w[order], v[:, order]
    k = min(n_components, n)
    x = v[:, :k] * np.sqrt(np.maximum(w[:k], 0.0))
    for c in range(k):
        if x[np.argmax(np.abs(x[:, c])), c] < 0:
            x[:, c] = -x[:, c]
    if k < n_components:
        x = np.pad(x, ((0, 0), (0, n_components - k)))
    return x, w


def embed(
    d: Any,
    method: str = "classical",
    n_components: int = 2,
    *,
    seed: int = 0,
    max_iter: int = 300,
) -> Any:
    """Embed networks in ``n_components`` dimensions from a distance matrix.

    Parameters
    ----------
    d : xarray.DataArray
        ``(network, network_to)`` distances from :func:`pairwise`.
    method : {"classical", "metric"}
        ``classical``: Torgerson MDS (deterministic). ``metric``: SMACOF metric MDS
        (scikit-learn), started from the classical solution, ``random_state=seed``.
    n_components : int
        Output dimension (2 for the paper's plots).
    seed : int
        Seed of SMACOF.
    max_iter : int
        SMACOF iterations.

    Returns
    -------
    xarray.DataArray
        Dims ``(network, component)`` with the network coordinates; attrs record the
        method, the metric and (``metric``) the normalised stress or (``classical``) the
        share of positive eigenvalue mass kept.
    """
    import xarray as xr

    if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)):
        raise MetricsError(f"n_components must be an integer, got {n_components!r}")
    a = _check_distances(d)
    if not 1 <= n_components <= len(a):
        raise MetricsError(
            f"n_components must be between 1 and the number of networks ({len(a)}), "
            f"got {n_components}"
        )
    x0, w = classical_mds(a, n_components)
    attrs = {k: d.attrs[k] for k in ("metric", "params", "provider") if k in d.attrs}
    if method == "classical":
        pos = w[w > 0].sum()
        attrs["explained"] = float(np.maximum(w[:n_components], 0).sum() / pos) if pos else 0.0
        x = x0
    elif method == "metric":
        from sklearn.manifold import smacof

        if len(a) < 2:
            x = x0
            attrs["stress"] = 0.0
        else:
            x, stress = smacof(
                a,
                metric=True,
                n_components=n_components,
                init=x0,
                n_init=1,
                max_iter=max_iter,
                random_state=seed,
                normalized_stress=True,
            )
            attrs["stress"] = float(stress)
    else:
        raise MetricsError(f"unknown embedding method {method!r}; use 'classical' or 'metric'")
    attrs["method"] = method
    return xr.DataArray(
        x,
        dims=("network", "component"),
        coords={**_network_coords(d), "component": np.arange(n_components)},
        name="embedding",
        attrs=attrs,
    )
