"""Example rnnzoo-metrics plugin: representational similarity analysis (RSA).

``rsa`` distance = 1 - Spearman correlation between the upper triangles of two networks'
representational dissimilarity matrices (RDMs), the RDM of a network being the correlation
distance (1 - Pearson r) between its response patterns to every pair of samples.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from rnnzoo_metrics import InputError, Metric, hookimpl


class RSA(Metric):
    name = "rsa"
    input_kind = "activations"
    kind = "distance"
    is_metric = False
    deterministic = True
    summary = "1 - Spearman correlation between representational dissimilarity matrices"
    reference = "Kriegeskorte, Mur & Bandettini 2008"
    parameters = {"rdm": "correlation"}

    def check_params(self) -> None:
        if self.params["rdm"] not in ("correlation", "euclidean"):
            raise InputError(
                f"rsa: rdm must be 'correlation' or 'euclidean', not {self.params['rdm']!r}"
            )

    def prepare(self, x: np.ndarray) -> np.ndarray:
        """Standardised ranks of the RDM's upper triangle (so that pair is one dot product)."""
        if self.params["rdm"] == "correlation":
            z = x - x.mean(axis=1, keepdims=True)
            norms = np.linalg.norm(z, axis=1, keepdims=True)
            if np.any(norms == 0):
                raise InputError("rsa (correlation RDM): a sample has the same value in every unit")
            z /= norms
            rdm = 1.0 - z @ z.T
        else:
            sq = np.einsum("ij,ij->i", x, x)
            rdm = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0))
        ranks = rankdata(rdm[np.triu_indices(len(x), 1)])
        ranks -= ranks.mean()
        return ranks / np.linalg.norm(ranks)

    def pair(self, a: np.ndarray, b: np.ndarray) -> float:
        return float(1.0 - a @ b)

    def block(self, caches_a, caches_b) -> np.ndarray:
        a = np.stack(caches_a)
        b = a if caches_a is caches_b else np.stack(caches_b)
        return 1.0 - a @ b.T


@hookimpl
def register_metrics(register):
    """Register the RSA metric with rnnzoo-metrics."""
    register(RSA)
