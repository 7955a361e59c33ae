"""A differing sine finding blames a short trial only when the trial is shorter than the paper's."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from rnnzoo_paper import caveats, findings


def _zoo_with_frequencies(path, n_steps):
    from rnnzoo_train.tasks import get_task
    from rnnzoo_train.zoo import open_zoo
    from rnnzoo_train.zoo.testing import write_synthetic_zoo

    write_synthetic_zoo(path, [get_task("sine", n_steps=n_steps)], seeds=(0, 1))
    zoo = open_zoo(path)
    df = zoo.index("sine")
    ids = [str(i) for i in df.index]
    coords = {
        "network": ids,
        "arch": ("network", df["arch"].astype(str).to_numpy(dtype=object)),
        "activation": ("network", df["activation"].astype(str).to_numpy(dtype=object)),
    }
    omega = np.linspace(0.01, 0.05, 4)
    n = len(ids)
    freq = xr.Dataset(
        {
            "n_points": (("network", "condition"), np.ones((n, 4), dtype=np.int64)),
            "n_points_all": (("network", "condition"), np.ones((n, 4), dtype=np.int64)),
            # 50% too fast everywhere: the alignment finding differs
            "frequency_linear": (("network", "condition"), np.tile(omega, (n, 1)) * 1.5),
        },
        coords={**coords, "omega": ("condition", omega)},
    )
    zoo.write_analysis("sine", "sine_frequency", freq)
    summary = xr.Dataset(
        {
            "analysis_status": ("network", np.array(["ok"] * n, dtype=object)),
            "n_fixed": ("network", np.full(n, 4, dtype=np.int64)),
            "n_stable": ("network", np.ones(n, dtype=np.int64)),
        },
        coords=coords,
    )
    zoo.write_analysis("sine", "dynamics_summary", summary)
    return zoo


@pytest.mark.parametrize(("n_steps", "blamed"), [(50, True), (500, False)])
def test_short_trial_reason_only_below_the_papers_t(tmp_path, n_steps, blamed):
    zoo = _zoo_with_frequencies(tmp_path / "zoo.zarr", n_steps)
    try:
        found = {f.key: f for f in findings.fixed_point_findings(zoo, ["sine"])}
        align = found["sine/frequency-alignment"]
        why = caveats.explain(align, zoo)
        assert f"T = {n_steps} steps" in why
        assert "50% at ω = 0.010" in why
        assert ("a trial shorter than the paper's (T = 500)" in why) is blamed
    finally:
        zoo.close()
