"""Interim demo: synthetic "networks" from two families -> SVCCA and CKA -> MDS figures.

Each family is a population of networks that share one latent task trajectory but differ
in nonlinearity (tanh vs relu, as in the paper's activation comparison), width and seed.
Representational-geometry metrics should separate the two families (paper Figs. 1c-d);
the demo writes the distance matrices, their MDS embeddings, the PNG figures and a short
summary comparing within- and between-family distances. Uses only rnnzoo-metrics' public
API, so it runs with no trained zoo.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

import rnnzoo_metrics as rm
from rnnzoo_metrics.plotting import plot_distance_matrix, plot_embedding
from rnnzoo_metrics.synthetic import latent_trajectory, network

from .outdir import make_out

FAMILIES = {"tanh": "tanh", "relu": "relu"}
#: fewest probe samples ``rnnzoo-paper synthetic`` accepts: twice the latent dimension (5),
#: so that every network's centred states can span its latent space
MIN_SAMPLES = 10


def synthetic_population(
    per_family: int = 12,
    samples: int = 400,
    widths: tuple[int, ...] = (32, 48, 64),
    latent: int = 5,
    noise: float = 0.02,
    seed: int = 0,
) -> xr.DataTree:
    """Hidden states of two synthetic families in the zoo layout.

    Returns a DataTree with one group per (activation, width) under
    ``/synthetic/networks/<group>``, each holding ``hidden_trained`` with dims
    ``(network, probe, time, unit)`` and the index coordinates along ``network``.
    """
    z = latent_trajectory(samples, latent, seed)
    groups: dict[str, list] = {}
    k = 0
    for activation in FAMILIES:
        for s in range(per_family):
            units = widths[s % len(widths)]
            h = network(
                z, units, seed=1000 * seed + k, activation=activation, noise=noise, gain=2.0
            )
            nid = f"synthetic-{activation}-u{units}-s{s:03d}"
            groups.setdefault(f"synthetic-{activation}-u{units}", []).append((nid, s, h))
            k += 1
    tree = {}
    for group, items in groups.items():
        activation, units = group.split("-")[1], int(group.split("-u")[1])
        hidden = np.stack([h for _, _, h in items]).reshape(len(items), 1, samples, units)
        tree[f"/synthetic/networks/{group}"] = xr.Dataset(
            {"hidden_trained": (("network", "probe", "time", "unit"), hidden)},
            coords={
                "network": [nid for nid, _, _ in items],
                "arch": ("network", ["synthetic"] * len(items)),
                "activation": ("network", [activation] * len(items)),
                "units": ("network", [units] * len(items)),
                "seed": ("network", [s for _, s, _ in items]),
            },
        )
    return xr.DataTree.from_dict(tree)


def family_separation(d: xr.DataArray) -> dict[str, float]:
    """Mean within-family and between-family distance (off-diagonal pairs)."""
    fam = np.asarray(d.activation.values)
    a = np.asarray(d.values)
    same = fam[:, None] == fam[None, :]
    off = ~np.eye(len(a), dtype=bool)
    within = float(a[same & off].mean())
    between = float(a[~same].mean())
    return {"within": within, "between": between, "ratio": between / within}


def run(
    out: str | Path, per_family: int = 12, samples: int = 400, seed: int = 0, progress: bool = True
) -> dict:
    """Compute SVCCA and CKA between two synthetic families; write matrices, MDS and PNGs.

    Returns the summary that is also written to ``summary.json``.
    """
    out = Path(out)
    make_out(out, "synthetic")
    tree = synthetic_population(per_family=per_family, samples=samples, seed=seed)
    summary: dict = {"networks": per_family * len(FAMILIES), "samples": samples}
    for metric in ("svcca", "cka"):
        d = rm.pairwise(tree, metric, progress=progress)
        emb = rm.embed(d, "metric", seed=seed)
        d.to_netcdf(out / f"{metric}.nc")
        emb.to_netcdf(out / f"{metric}_mds.nc")
        plot_embedding(
            emb,
            "activation",
            path=out / f"{metric}_mds.png",
            title=f"Synthetic families: MDS of {metric} distances",
        )
        plot_distance_matrix(
            d,
            ("activation", "units"),
            path=out / f"{metric}_matrix.png",
            title=f"{metric} distance between synthetic networks",
        )
        summary[metric] = family_separation(d)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
