"""The built-in tasks' analyses are unchanged by their move into task-analysis plugins.

``data/task_analysis_reference/`` holds nine trained networks of the demo zoo (32 units:
two vanilla-tanh networks and one GRU per task, ``weights.npz`` + ``networks.json``) and
every dataset :func:`analyze_population` returned for them at commit 3c651e7, the last one
before task analyses became plugins (issue 12), computed on an AMD EPYC
(``reference.npz`` + ``reference.json``). The test re-analyses the same weights and compares
every analysis, variable, dimension, dtype kind and attribute.

The weights are committed, not trained in the test: training runs in float32 and its
rounding differs between MKL's Intel and AMD code paths, which would change the networks.
The analyses run with the task's defaults (number of starts, probe, every option) except
that the finder's gradient stage runs in float64 instead of float32
(``FinderOptions.gradient_dtype``), so that nothing compared depends on float32 rounding.

Order and phase. The reference lists each network's fixed points by increasing ``q``, which
for a polished fixed point is rounding noise (~1e-30): on an Intel Xeon the same points came
out in another order, and LAPACK returned some eigenvectors with the opposite sign. Fixed
points are now listed by position and eigenvectors have a fixed phase
(``rnnzoo_dynamics._canonical``), so the comparison matches each reference point to the
computed point of the same network and condition at the same position (closer than 1e-8,
where distinct fixed points lie > 1e-3 apart), compares every per-point variable in that
order, maps ``graph_node_point`` and sine's ``point`` (a point's position among its
network's points) through the same matching, and compares eigenvectors up to one unit
scalar per vector (the same for the right and the left one, which are biorthonormal).
Everything else is compared as stored.
``test_the_order_of_fixed_points_does_not_depend_on_rounding`` checks the new order itself.

Tolerances. Integers, booleans and strings are compared exactly. Fixed points are polished
in float64 by Newton/Levenberg-Marquardt until ``q < 1e-24`` (``polish_q_stop``), i.e.
``|F(h) - h| ~ 1e-12``: positions, Jacobians, eigenvalues and everything derived from them
agree to ~1e-10 relative between two BLAS libraries (the Jacobians of these 32-unit networks
are well conditioned away from marginal modes); we allow ``rtol = 1e-6`` and ``atol = 1e-8``.
Speeds ``q`` themselves are compared with ``atol = 1e-16`` (a fixed point's q is below 1e-24;
a slow point's ``q`` is a minimum pinned to ``polish_rtol = 1e-10`` relative). Run timing
(``seconds``) is not compared.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from rnnzoo_dynamics.fixed_points import FinderOptions
from rnnzoo_dynamics.population import AnalysisOptions, analyze_population
from rnnzoo_train.cells import get_cell
from rnnzoo_train.tasks import get_task

DATA = Path(__file__).parent / "data" / "task_analysis_reference"
RTOL, ATOL, Q_ATOL = 1e-6, 1e-8, 1e-16
#: run timing, different on every run
UNCOMPARED = {"seconds"}


def reference_options() -> AnalysisOptions:
    """The task's defaults, with a float64 gradient stage (see the module docstring)."""
    return AnalysisOptions(finder=FinderOptions(gradient_dtype=torch.float64))


def analyse(task_name: str) -> dict[str, xr.Dataset]:
    """Every analysis of the committed networks of ``task_name``, populations concatenated."""
    meta = json.loads((DATA / "networks.json").read_text())[task_name]
    weights = np.load(DATA / "weights.npz")
    task = get_task(meta["config"]["name"], **meta["config"]["params"])
    parts: dict[str, list[xr.Dataset]] = {}
    for pop in meta["populations"]:
        group = f"{pop['arch']}-{pop['activation']}-u{pop['units']}"
        cell = get_cell(pop["arch"], pop["activation"], pop["units"], task.n_inputs, task.n_outputs)
        prefix = f"{task_name}/{group}/"
        params = {
            k[len(prefix) :]: torch.from_numpy(weights[k]) for k in weights if k.startswith(prefix)
        }
        coords = pd.DataFrame(pop["coords"], index=pd.Index(pop["ids"], name="network"))
        out = analyze_population(
            task, cell, params, pop["ids"], network_coords=coords, options=reference_options()
        )
        for name, ds in out.items():
            parts.setdefault(name, []).append(ds)
    return {name: _concat(dss) for name, dss in parts.items()}


def _concat(dss: list[xr.Dataset]) -> xr.Dataset:
    from rnnzoo_dynamics.results import concat_results

    dim = "fixed_point" if "fixed_point" in dss[0].dims else "network"
    return concat_results(dss, dim)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _as_stored(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype == object or values.dtype.kind in "TUS":
        return np.asarray([str(v) for v in values.ravel()], dtype=str).reshape(values.shape)
    return values


def write_reference() -> None:
    """Write ``reference.npz`` and ``reference.json`` (run once, with the code to pin)."""
    arrays, spec = {}, {}
    for task_name in json.loads((DATA / "networks.json").read_text()):
        for name, ds in analyse(task_name).items():
            key = f"{task_name}/{name}"
            spec[key] = {
                "attrs": json.loads(json.dumps(ds.attrs, default=_jsonable)),
                "variables": {
                    v: [list(ds[v].dims), ds[v].dtype.kind] for v in sorted(ds.variables)
                },
            }
            for v in ds.variables:
                arrays[f"{key}/{v}"] = _as_stored(ds[v].values)
    np.savez_compressed(DATA / "reference.npz", **arrays)
    (DATA / "reference.json").write_text(json.dumps(spec, indent=1, sort_keys=True) + "\n")


#: a point's position among its network's points, ``(network, ...)``, -1 for none
POINT_INDICES = ("graph_node_point", "point")
#: per-point eigenvectors: compared up to one unit scalar per vector
EIGENVECTORS = ("right_eigenvector", "left_eigenvector")
#: how close a computed fixed point must be to the reference point it is matched to
MATCH_ATOL = 1e-8


def match_points(got: xr.Dataset, expected: np.lib.npyio.NpzFile, key: str) -> np.ndarray:
    """``perm`` with ``got`` point ``perm[k]`` at the position of reference point ``k``.

    Points are matched within their network and condition; each reference point must have
    exactly one computed point within :data:`MATCH_ATOL` (Euclidean) of it.
    """
    state = np.asarray(got["state"].values)
    network = _as_stored(got["network"].values)
    condition = np.asarray(got["condition"].values)
    want_state = expected[f"{key}/state"]
    want_network = expected[f"{key}/network"]
    want_condition = expected[f"{key}/condition"]
    assert state.shape == want_state.shape, (
        f"{key}: {len(state)} points, {len(want_state)} in the reference"
    )
    perm = np.full(len(state), -1)
    for k in range(len(want_state)):
        same = np.nonzero((network == want_network[k]) & (condition == want_condition[k]))[0]
        d = np.linalg.norm(state[same] - want_state[k], axis=1)
        near = same[d <= MATCH_ATOL]
        assert len(near) == 1, f"{key}: reference point {k} matches {len(near)} points"
        perm[k] = near[0]
    assert sorted(perm) == list(range(len(state))), f"{key}: two reference points share one"
    return perm


def positions_in_network(network: np.ndarray, perm: np.ndarray) -> dict[tuple[str, int], int]:
    """Map (network, computed position among its points) to the reference's position."""
    net = np.asarray(network)
    first = {n: int(np.nonzero(net == n)[0][0]) for n in dict.fromkeys(net.tolist())}
    return {
        (str(net[perm[k]]), int(perm[k]) - first[net[perm[k]]]): k - first[net[k]]
        for k in range(len(perm))
    }


@pytest.mark.parametrize("task_name", ["flipflop", "sine", "cdi"])
def test_built_in_task_analyses_are_unchanged(task_name):
    spec = json.loads((DATA / "reference.json").read_text())
    expected = np.load(DATA / "reference.npz")
    got = analyse(task_name)
    names = sorted(k.split("/", 1)[1] for k in spec if k.startswith(task_name + "/"))
    assert sorted(got) == names
    points_key = f"{task_name}/fixed_points"
    perm = match_points(got["fixed_points"], expected, points_key)
    position = positions_in_network(expected[f"{points_key}/network"], perm)
    phase: np.ndarray | None = None
    for name in names:
        key, ds = f"{task_name}/{name}", got[name]
        want = spec[key]
        kinds = {v: [list(ds[v].dims), ds[v].dtype.kind] for v in sorted(ds.variables)}
        assert kinds == want["variables"], key
        assert json.loads(json.dumps(ds.attrs, default=_jsonable)) == want["attrs"], key
        if "fixed_point" in ds.dims:
            ds = ds.isel(fixed_point=perm)
        for v in ds.variables:
            if v in UNCOMPARED:
                continue
            a, b = _as_stored(ds[v].values), expected[f"{key}/{v}"]
            assert a.shape == b.shape, f"{key}/{v}"
            if v in POINT_INDICES:
                nets = _as_stored(ds["network"].values)
                a = np.array(
                    [[position.get((str(n), int(p)), -1) if p >= 0 else p for p in row]
                     for n, row in zip(nets, a, strict=True)]
                )  # fmt: skip
            if v in EIGENVECTORS:
                if phase is None:  # the right vectors' scalars, used for both
                    r = ds["right_eigenvector"].values
                    s = np.einsum("nsk,nsk->nk", np.conj(r), expected[f"{key}/right_eigenvector"])
                    mag = np.abs(s)
                    phase = np.where(mag > 0, s / np.where(mag > 0, mag, 1.0), 1.0)
                a = a * phase[:, None, :]
            if a.dtype.kind in "fc":
                atol = Q_ATOL if v == "q" else ATOL
                np.testing.assert_allclose(a, b, rtol=RTOL, atol=atol, err_msg=f"{key}/{v}")
            else:
                np.testing.assert_array_equal(a, b, err_msg=f"{key}/{v}")


if __name__ == "__main__":  # python test_task_analysis_reference.py write
    if sys.argv[1:] == ["write"]:
        write_reference()
