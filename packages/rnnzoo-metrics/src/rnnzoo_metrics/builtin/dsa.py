"""Dynamical Similarity Analysis as a metric of the engine (numerics: rnnzoo_metrics.dsa)."""

from __future__ import annotations

import numpy as np

from ..dsa import (
    DMD_METHODS,
    SCORES,
    SEARCHES,
    Operator,
    distances,
    dmd_operator,
    prepare_operator,
    search_starts,
)
from ..errors import MetricsError
from ..linalg import tile_matrix, tile_pairs
from ..metric import Metric

# (pairs x starts) per batched optimisation: bounds the memory of one batch (a dozen
# (pairs x starts, r, r) arrays alive at once, float32 in the ascent, float64 inputs) to
# ~300 MB at rank 20; 73 pairs of search="thorough" (105 starts), 1,536 of search="fast" (5)
STARTS_PER_BATCH = 7680


class DSA(Metric):
    name = "dsa"
    input_kind = "trajectories"
    kind = "distance"
    is_metric = True  # at the global optimum (angular: Ostrow et al. 2023, section 3)
    summary = (
        "dynamical similarity: Procrustes over vector fields, min over orthogonal C of "
        "||A - C B C^T|| between DMD operators of delay-embedded trajectories (angular)"
    )
    reference = (
        "Ostrow, Eisen, Kozachkov & Fiete 2023 (NeurIPS), 'Beyond Geometry'; "
        "reference code dsa-metric"
    )
    parameters: dict = {
        "n_delays": 10,
        "delay_interval": 1,
        "rank": 10,
        "dmd": "havok",
        "lamb": 0.0,
        "score": "angular",
        "max_iter": 500,
        "gtol": 1e-6,
        "search": "thorough",
    }

    def check_params(self) -> None:
        p = self.params
        for key in ("n_delays", "delay_interval", "rank", "max_iter"):
            v = p[key]
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise MetricsError(f"metric 'dsa': {key} must be a whole number >= 1, not {v!r}")
        if p["dmd"] not in DMD_METHODS:
            raise MetricsError(f"metric 'dsa': dmd must be one of {DMD_METHODS}, not {p['dmd']!r}")
        if p["score"] not in SCORES:
            raise MetricsError(f"metric 'dsa': score must be one of {SCORES}, not {p['score']!r}")
        if not p["lamb"] >= 0:
            raise MetricsError(f"metric 'dsa': lamb must be >= 0, not {p['lamb']!r}")
        if p["search"] not in SEARCHES:
            raise MetricsError(
                f"metric 'dsa': search must be one of {tuple(SEARCHES)}, not {p['search']!r}"
            )
        if not p["gtol"] > 0:
            raise MetricsError(f"metric 'dsa': gtol must be > 0, not {p['gtol']!r}")

    def prepare(self, x: np.ndarray) -> Operator:
        p = self.params
        a = dmd_operator(x, p["n_delays"], p["delay_interval"], p["rank"], p["dmd"], p["lamb"])
        return prepare_operator(a)

    def width(self, cache: Operator) -> int:
        return cache.a.shape[0]

    def _distances(self, ops_a: list[Operator], ops_b: list[Operator]) -> np.ndarray:
        p = self.params
        out = np.empty(len(ops_a))
        batch = max(1, STARTS_PER_BATCH // search_starts(p["search"]))
        for k in range(0, len(ops_a), batch):
            sl = slice(k, k + batch)
            out[sl] = distances(
                ops_a[sl], ops_b[sl], p["score"], p["max_iter"], p["gtol"], p["search"]
            )
        return out

    def pair(self, a: Operator, b: Operator) -> float:
        return float(self._distances([a], [b])[0])

    def block(self, caches_a, caches_b) -> np.ndarray:
        same = caches_a is caches_b
        i, j = tile_pairs(len(caches_a), len(caches_b), same)
        d = self._distances([caches_a[k] for k in i], [caches_b[k] for k in j])
        return tile_matrix(d, i, j, (len(caches_a), len(caches_b)), same, self.self_value)
