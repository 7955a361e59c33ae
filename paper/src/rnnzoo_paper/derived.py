"""Per-network quantities derived from the stored dynamics analyses (figures and findings).

Everything here is a small pure function of stored xarray results, so figures and findings
use the same numbers.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .data import as_str

#: |λ| at or above this counts as "an eigenvalue near 1" (cdi, paper Fig. 3e): a mode with
#: |λ| = 0.95 keeps 0.95^29 = 23% of a pulse over the 30-step trial, one at 0.9 only 5%
NEAR_ONE = 0.95
#: a kept-mode count "reproduces" the linear response when it stays within this fraction of
#: the full linearised response for every larger count (paper Fig. 3f)
ABLATION_TOLERANCE = 0.1


def network_coord(ds: xr.Dataset, name: str) -> np.ndarray:
    """A coordinate along ``network`` as ``str`` objects."""
    return as_str(ds[name].values)


def fixed_point_counts(summary: xr.Dataset) -> dict[str, np.ndarray]:
    """``n_fixed`` and ``n_stable`` of the networks whose analysis is ``ok``."""
    ok = as_str(summary["analysis_status"].values) == "ok"
    return {
        "network": as_str(summary["network"].values)[ok],
        "n_fixed": np.asarray(summary["n_fixed"].values)[ok].astype(int),
        "n_stable": np.asarray(summary["n_stable"].values)[ok].astype(int),
    }


def modal(values: np.ndarray) -> tuple[int, float]:
    """The most common value (smallest on ties) and the fraction of entries equal to it."""
    values = np.asarray(values).astype(int)
    if values.size == 0:
        return -1, float("nan")
    uniq, counts = np.unique(values, return_counts=True)
    mode = int(uniq[np.argmax(counts)])
    return mode, float(np.mean(values == mode))


def sine_errors(freq: xr.Dataset) -> xr.Dataset:
    """Per network: mean relative and signed error of the linearised frequency against ω.

    ``relative_error = mean_c |f_c - ω_c| / ω_c`` and ``signed_error = mean_c (f_c - ω_c)``
    over the command frequencies with an oscillatory mode; ``coverage`` is the fraction of
    frequencies that have one; ``one_point_fraction`` the fraction of frequencies with
    exactly one true fixed point near the orbit (``sine_frequency.n_points``, rnnzoo-dynamics:
    fixed points within 2 orbit radii of the probe flow; slow points and far points are
    counted separately there).
    """
    f = np.asarray(freq["frequency_linear"].values, dtype=float)
    omega = np.asarray(freq["omega"].values, dtype=float)[None, :]
    have = np.isfinite(f)
    n = have.sum(axis=1)
    rel = np.where(have, np.abs(f - omega) / omega, 0.0).sum(axis=1)
    signed = np.where(have, f - omega, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(n > 0, rel / np.maximum(n, 1), np.nan)
        signed = np.where(n > 0, signed / np.maximum(n, 1), np.nan)
    one_point = np.asarray(freq["n_points"].values) == 1
    coords = {c: ("network", as_str(freq[c].values)) for c in ("arch", "activation")}
    return xr.Dataset(
        {
            "relative_error": ("network", rel),
            "signed_error": ("network", signed),
            "coverage": ("network", n / f.shape[1]),
            "one_point_fraction": ("network", one_point.mean(axis=1)),
        },
        coords={"network": as_str(freq["network"].values), **coords},
    )


def cdi_modes(cdi: xr.Dataset) -> xr.Dataset:
    """Per network: eigenvalues near 1 and linear modes needed, averaged over contexts.

    Read from rnnzoo-dynamics' ``cdi_linear``, whose ``spectrum``, ``ablation`` and
    ``response_full`` average over a context's points *on the line attractor* (the paper's
    "averaged over all fixed points on the line attractor"), NaN for a context without one.
    Contexts without a line attractor are left out of the average over contexts; a network
    with none in any context is NaN.

    ``near_one``: modes of the mean sorted spectrum with ``|λ| >= NEAR_ONE`` (Fig. 3e).
    ``modes_needed``: the smallest number of kept modes ``m`` (largest ``|λ|`` first) whose
    linearised pulse response stays within ``ABLATION_TOLERANCE`` of the full linearised
    response for every ``m' >= m`` (Fig. 3f). ``response_full``: that full response (1 for
    an ideal integrator). ``response_full_all``: the same averaged over *every* fixed and
    slow point of the context (rnnzoo-dynamics' ``response_full_all``, the former
    definition; NaN where not stored). ``line_contexts``: the number of contexts with a line
    attractor.
    """
    spec = np.asarray(cdi["spectrum"].values, dtype=float)  # (network, context, mode)
    abl = np.asarray(cdi["ablation"].values, dtype=float)  # (network, context, modes_kept)
    full = np.asarray(cdi["response_full"].values, dtype=float)  # (network, context)
    near = np.sum(np.nan_to_num(spec, nan=0.0) >= NEAR_ONE, axis=2).astype(float)
    valid = np.isfinite(full) & np.isfinite(spec[:, :, 0])
    need = np.full(full.shape, np.nan)
    for i, c in zip(*np.nonzero(valid), strict=True):
        curve = abl[i, c]
        curve = curve[np.isfinite(curve)]
        bad = np.abs(curve - full[i, c]) > ABLATION_TOLERANCE * max(abs(full[i, c]), 1e-12)
        need[i, c] = (np.flatnonzero(bad).max() + 2) if bad.any() else 1
    near = np.where(valid, near, np.nan)
    full_all = (
        np.asarray(cdi["response_full_all"].values, dtype=float)
        if "response_full_all" in cdi
        else np.full(full.shape, np.nan)
    )
    coords = {c: ("network", as_str(cdi[c].values)) for c in ("arch", "activation")}
    with np.errstate(invalid="ignore"):
        return xr.Dataset(
            {
                "near_one": ("network", _nanmean(near)),
                "modes_needed": ("network", _nanmean(need)),
                "response_full": ("network", _nanmean(np.where(valid, full, np.nan))),
                "response_full_all": ("network", _nanmean(full_all)),
                "line_contexts": ("network", valid.sum(axis=1).astype(float)),
            },
            coords={"network": as_str(cdi["network"].values), **coords},
        )


def context_mean(values: np.ndarray) -> np.ndarray:
    """``(network, context, k)`` curves averaged over the contexts where they are defined.

    A context without a line attractor (NaN curve) is left out; a network without any is
    an all-NaN row. Used by Fig. 3e-f so that every network with a line attractor in either
    context contributes (the paper shows one context "for clarity"; on small zoos one
    context alone may hold too few networks).
    """
    values = np.asarray(values, dtype=float)
    n = np.isfinite(values).sum(axis=1)
    s = np.nansum(values, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def line_graph_nodes(graphs: list[xr.Dataset], ids: list[str]) -> np.ndarray:
    """Node counts ``(network, context)`` of the line-attractor graphs for ``ids``.

    ``graphs``: the stored ``line_attractor_graph-context<c>`` analyses in context order.
    rnnzoo-dynamics resamples every line attractor at the same number of nodes
    (``line_nodes``, 20), so a network has the modal count in a context exactly when an
    attractor (two or more attractor points with different readouts) was found there; 0 or
    1 otherwise. A network missing from a graph analysis counts as 0 nodes.
    """
    out = np.zeros((len(ids), len(graphs)), dtype=int)
    for c, g in enumerate(graphs):
        pos = {n: i for i, n in enumerate(as_str(g["network"].values))}
        nodes = np.asarray(g["graph_n_nodes"].values).astype(int)
        for r, nid in enumerate(ids):
            if nid in pos:
                out[r, c] = nodes[pos[nid]]
    return out


def sine_orbit_points(freq: xr.Dataset) -> np.ndarray:
    """Per network: true fixed points near the probe orbits, summed over the frequencies.

    The points that matter for the sine task (the paper's "single input-dependent fixed
    point" per frequency, in the middle of its orbit): ``sine_frequency.n_points``. A network
    with exactly one per frequency has as many as there are command frequencies.
    """
    return np.asarray(freq["n_points"].values).astype(int).sum(axis=1)


def _nanmean(a: np.ndarray) -> np.ndarray:
    n = np.isfinite(a).sum(axis=1)
    s = np.nansum(a, axis=1)
    return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def fig4_groups(d: xr.DataArray) -> dict[str, np.ndarray]:
    """Distances of Fig. 4 from the trained relu Vanilla networks to the other populations.

    For every network ``j`` of a population, the mean SVCCA distance from the trained relu
    networks to ``j``: ``untrained relu`` (the paper's comparison), ``trained tanh`` and,
    for reference, ``untrained tanh``. Also ``trained relu`` (among themselves, off-diagonal).
    """
    act = network_coord(d, "activation")
    tr = network_coord(d, "trained")
    a = np.asarray(d.values, dtype=float)
    ref = (act == "relu") & (tr == "trained")
    out: dict[str, np.ndarray] = {}
    if not ref.any():
        return out
    for name, sel in (
        ("untrained relu", (act == "relu") & (tr == "untrained")),
        ("trained tanh", (act == "tanh") & (tr == "trained")),
        ("untrained tanh", (act == "tanh") & (tr == "untrained")),
    ):
        if sel.any():
            out[name] = a[np.ix_(ref, sel)].mean(axis=0)
    if ref.sum() > 1:
        sub = a[np.ix_(ref, ref)]
        out["trained relu"] = sub[~np.eye(len(sub), dtype=bool)].reshape(len(sub), -1).mean(1)
    return out
