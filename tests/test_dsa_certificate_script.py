"""``benchmarks/dsa_certificate.py``: its report, and its check of the reference's angles.

The check must flag a reference angle below rnnzoo's certified lower bound (the bound would
then be wrong, or the reference would have found a better optimum than the global one) and
pass one that lies on or above it. The reference's values are stood in for here by rnnzoo's
own angles (the script reads them from the ``.npz`` cache ``dsa_reference.py`` writes).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import dsa_certificate
from bench_metrics import LazyTrajectories

from rnnzoo_metrics import dsa as D

ARGS = ["--synthetic", "--networks", "4", "--n-delays", "3", "--rank", "4"]


def reference_cache(tmp_path, shift):
    """A cache with rnnzoo's operators and angles, the first pair's angle moved by shift."""
    nets = LazyTrajectories(4, 64, seed=5)
    ops = [D.dmd_operator(nets[k], 3, 1, 4) for k in range(4)]
    prepared = [D.prepare_operator(a) for a in ops]
    i, j = np.triu_indices(4, 1)
    ang = D.distances([prepared[k] for k in i], [prepared[k] for k in j])
    sims = np.zeros((4, 4))
    sims[i, j] = sims[j, i] = ang
    sims[0, 1] = sims[1, 0] = ang[0] + shift
    path = tmp_path / f"ref{shift}.npz"
    np.savez(path, sims=sims, ops=np.stack(ops), seconds=0.0)
    return str(path)


def test_report_counts_both_presets(tmp_path):
    out = tmp_path / "c.json"
    assert dsa_certificate.main([*ARGS, "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    for search in ("thorough", "fast"):
        assert rep[search]["pairs"] == 6
        assert 0 <= rep[search]["certified"] <= 6
    assert rep["thorough"]["certified"] >= 1  # small, well-separated operators: tight
    assert "fast_misses_certified_thorough" in rep


def test_the_reference_check_passes_on_and_above_the_bound_and_fails_below(tmp_path):
    out = tmp_path / "c.json"
    for shift in (0.0, 1e-3):
        cache = reference_cache(tmp_path, shift)
        assert dsa_certificate.main([*ARGS, "--reference-cache", cache, "--json", str(out)]) == 0
        assert json.loads(out.read_text())["reference"]["below_lower_bound"] == 0
    cache = reference_cache(tmp_path, -1e-2)  # 0.01 rad below the optimum: impossible
    assert dsa_certificate.main([*ARGS, "--reference-cache", cache, "--json", str(out)]) == 1
    assert json.loads(out.read_text())["reference"]["below_lower_bound"] == 1
