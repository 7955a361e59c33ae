"""What ``analyze_zoo`` stores: the same analyses, variables and values as before.

``data/stored_analyses.json`` lists every analysis, variable (dims, dtype kind) and
attribute that ``rnnzoo-dynamics analyze`` stored on this small zoo before its writes
became transactions (issue 10): a change of the stored layout must be deliberate (update
the file, bump the schema, tell the readers). The values stored must be exactly those the
analyses compute (the store adds nothing and loses nothing).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rnnzoo_dynamics.analyze import (
    SUMMARY,
    AnalysisUnit,
    _merge,
    _plan_units,
    read_analysis,
    run_unit,
)
from rnnzoo_dynamics.population import analysis_names
from rnnzoo_train.zoo import open_zoo

EXPECTED = json.loads((Path(__file__).parent / "data" / "stored_analyses.json").read_text())
#: attributes a writer adds: when and in which transaction it wrote
WRITER_ATTRS = {"rnnzoo_written_at", "rnnzoo_commit"}


def test_every_stored_analysis_keeps_its_variables_and_attributes(analysed_zoo):
    zoo = open_zoo(analysed_zoo[0])
    for task, analyses in EXPECTED.items():
        assert sorted(zoo.analyses(task)) == sorted(analyses), task
        for name, spec in analyses.items():
            ds = read_analysis(zoo, task, name)
            got = {v: [list(ds[v].dims), ds[v].dtype.kind] for v in sorted(ds.variables)}
            assert got == spec["variables"], f"{task}/{name}"
            assert sorted(set(ds.attrs) - WRITER_ATTRS) == spec["attrs"], f"{task}/{name}"


def test_the_analysis_names_of_a_task_are_what_the_analyses_return(analysed_zoo):
    zoo = open_zoo(analysed_zoo[0])
    for task in EXPECTED:
        stored = {SUMMARY if n == "summary" else n for n in analysis_names(zoo.task(task))}
        assert stored == set(EXPECTED[task]), task


def test_the_stored_values_are_the_computed_ones(analysed_zoo):
    """flip-flop: every stored value equals the analyses' own output, merged as stored."""
    from rnnzoo_dynamics.population import AnalysisOptions

    path, _ = analysed_zoo
    zoo = open_zoo(path)
    task = "flipflop"
    index = zoo.index(task)
    ok = [n for n in index.index if index.loc[n, "status"] == "ok"]
    parts: dict[str, list] = {}
    for group, members in _plan_units(index, ok, 4):  # the driver's default units
        unit = AnalysisUnit(str(path), None, task, group, members, "final", AnalysisOptions(32))
        out = run_unit(unit)
        assert sorted(out) == analysis_names(zoo.task(task))
        for name, ds in out.items():
            parts.setdefault(name, []).append(ds)
    for name, dss in parts.items():
        computed = _merge(name, dss)
        stored = read_analysis(zoo, task, SUMMARY if name == "summary" else name)
        dim = "fixed_point" if "fixed_point" in computed.dims else "network"
        rows = np.nonzero(np.isin(stored["network"].values.astype(str), ok))[0]
        stored = stored.isel({dim: rows})
        order = np.argsort(stored["network"].values.astype(str), kind="stable")
        mine = np.argsort(computed["network"].values.astype(str), kind="stable")
        stored, computed = stored.isel({dim: order}), computed.isel({dim: mine})
        for var in computed.variables:
            if var in ("seconds", "graph_is_modal"):  # run timing; the task's modal count
                continue
            a, b = np.asarray(computed[var].values), np.asarray(stored[var].values)
            if a.dtype.kind in "fc":
                np.testing.assert_array_equal(a, b, err_msg=f"{name}.{var}")
            else:
                assert a.astype(str).tolist() == b.astype(str).tolist(), f"{name}.{var}"
