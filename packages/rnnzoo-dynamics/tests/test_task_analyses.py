"""Task analyses are plugins (issue 12 §1): found from the task, generic without one.

Plugins registered from outside are real distributions: a ``*.dist-info`` folder with an
``entry_points.txt`` (what pip writes) in a private folder put on ``sys.path`` for one
test, so nothing is installed into the shared environment.
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest
import torch

import rnnzoo_dynamics
from rnnzoo_dynamics.analyze import analyze_zoo, read_analysis
from rnnzoo_dynamics.population import AnalysisOptions, analysis_names, analyze_population
from rnnzoo_dynamics.task_analyses import (
    GROUP,
    CDIAnalysis,
    FlipFlopAnalysis,
    GenericAnalysis,
    SineAnalysis,
    TaskAnalysisPluginError,
    get_task_analysis,
    get_task_analysis_class,
)
from rnnzoo_train.cells import get_cell
from rnnzoo_train.tasks import get_task
from rnnzoo_train.tasks.flipflop import FlipFlop

SRC = Path(rnnzoo_dynamics.__file__).parent


class PlainFlipFlop(FlipFlop):
    """A task no analysis plugin is registered for (the flip-flop's trials, another name)."""

    name = "plainflipflop"


def add_distribution(site: Path, name: str, entry_points_txt: str, modules: dict) -> None:
    """A minimal installed distribution: what ``pip install`` leaves in site-packages."""
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points_txt))
    for module, code in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(code))


def test_built_in_task_analyses_are_registered_by_entry_point_like_any_plugin():
    eps = {ep.name: ep for ep in entry_points(group=GROUP)}
    assert {n: eps[n].dist.name for n in ("flipflop", "sine", "cdi")} == dict.fromkeys(
        ("flipflop", "sine", "cdi"), "rnnzoo-dynamics"
    )
    assert get_task_analysis_class("flipflop") is FlipFlopAnalysis
    assert get_task_analysis_class("sine") is SineAnalysis
    assert get_task_analysis_class("cdi") is CDIAnalysis
    assert get_task_analysis_class("no-such-task") is GenericAnalysis


def test_starts_per_condition_come_from_the_plugin():
    """The values the tables in population.py held before (pinned by the reference test)."""
    got = {t: get_task_analysis(get_task(t)).n_starts for t in ("flipflop", "sine", "cdi")}
    assert got == {"flipflop": 1024, "sine": 64, "cdi": 256}
    assert get_task_analysis(PlainFlipFlop()).n_starts == 256


@pytest.mark.parametrize("module", ["population.py", "analyze.py"])
def test_the_core_names_no_task(module):
    """No task name, no per-task table, no task attribute read in the core modules."""
    text = (SRC / module).read_text().lower()
    for word in ("flipflop", "flip-flop", "sine", "cdi", "n_contexts", "context", "omega"):
        assert not re.search(rf"\b{re.escape(word)}\b", text), f"{module} names {word!r}"
    assert "c == 1" not in text


def test_the_analysis_names_of_the_built_in_tasks():
    assert analysis_names(get_task("flipflop")) == ["fixed_points", "summary", "transition_graph"]
    assert analysis_names(get_task("sine")) == [
        "fixed_points",
        "sine_frequency",
        "sine_graph",
        "summary",
    ]
    assert analysis_names(get_task("cdi", n_contexts=3)) == [
        "cdi_linear",
        "fixed_points",
        *[f"line_attractor_graph-context{c}" for c in range(3)],
        "summary",
    ]


def _random_population(task, P=2, units=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    cell = get_cell("vanilla", "tanh", units, task.n_inputs, task.n_outputs)
    nets = [cell.init_params(gen, torch.float64) for _ in range(P)]
    return cell, {k: torch.stack([p[k] for p in nets]) for k in nets[0]}


def test_a_task_without_a_plugin_gets_the_generic_analyses_and_says_so():
    task = PlainFlipFlop(n_steps=20)
    cell, params = _random_population(task)
    ids = ["a", "b"]
    out = analyze_population(task, cell, params, ids, options=AnalysisOptions(n_starts=16))
    name = "nearest_neighbour_graph-condition0"
    assert sorted(out) == analysis_names(task) == ["fixed_points", name, "summary"]
    assert {ds.attrs["task_analysis"] for ds in out.values()} == {"generic"}
    summary, points, graph = out["summary"], out["fixed_points"], out[name]
    assert (summary["n_candidates"].values == 16).all()
    assert "n_refined" not in summary  # no transition graphs: the flip-flop's plugin
    for i, nid in enumerate(ids):
        mine = points["network"].values == nid
        n = int(graph["graph_n_nodes"].values[i])
        assert n == mine.sum() == summary[f"n_graph_nodes_condition{0}"].values[i]
        # nodes are the network's points (stored as positions among its own rows)
        node = graph["graph_node_point"].values[i, :n]
        assert sorted(node) == list(range(n))
        stable = points["n_unstable"].values[mine][node] == 0
        assert (graph["graph_node_stable"].values[i, :n] == stable).all()
        # k = 2 nearest neighbours: symmetric, every node has at least min(2, n - 1) edges
        w = graph["graph_weight"].values[i, :n, :n]
        assert (w == w.T).all()
        assert ((w > 0).sum(1) >= min(2, n - 1)).all()


def test_built_in_analyses_carry_no_generic_attribute():
    task = get_task("flipflop", n_steps=20)
    cell, params = _random_population(task, P=1)
    out = analyze_population(task, cell, params, ["a"], options=AnalysisOptions(n_starts=8))
    assert sorted(out) == analysis_names(task)
    assert not any("task_analysis" in ds.attrs for ds in out.values())


def test_a_zoo_task_without_a_plugin_is_analysed_generically_and_the_run_says_so(
    tmp_path, monkeypatch, capsys
):
    from rnnzoo_train.generate import generate
    from rnnzoo_train.presets import get_preset
    from rnnzoo_train.records import HyperParameters
    from rnnzoo_train.zoo import ZarrZooWriter

    site = tmp_path / "site"
    add_distribution(
        site,
        "plain_task",
        """
        [rnnzoo_train.tasks]
        plainflipflop = plain_task:PlainFlipFlop
        """,
        {
            "plain_task": """
            from rnnzoo_train.tasks.flipflop import FlipFlop

            class PlainFlipFlop(FlipFlop):
                name = "plainflipflop"
            """
        },
    )
    monkeypatch.syspath_prepend(str(site))
    preset = dataclasses.replace(
        get_preset("tiny"),
        archs=("vanilla",),
        seeds=(0,),
        iterations=5,
        n_trials=0,
        search_iterations=0,
        hparams={"default": HyperParameters(clip=1.0, lr=0.05, decay=0.5, momentum=0.9)},
        task_params={"plainflipflop": {"n_steps": 20}},
    )
    zoo = tmp_path / "zoo.zarr"
    generate(preset, ["plainflipflop"], ZarrZooWriter(zoo), progress=False)
    report = analyze_zoo(zoo, "plainflipflop", options=AnalysisOptions(n_starts=8), progress=False)
    assert report.task_analysis == "generic"
    assert any("has no analysis plugin: generic analyses only" in line for line in report.lines())
    # the command line says so too
    from rnnzoo_dynamics.cli import main

    assert (
        main(
            ["analyze", str(zoo), "--task", "plainflipflop", "--starts", "8", "--force", "--quiet"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "task 'plainflipflop' has no analysis plugin: generic analyses only" in out
    graph = read_analysis(zoo, "plainflipflop", "nearest_neighbour_graph-condition0")
    assert graph.attrs["task_analysis"] == "generic"
    assert read_analysis(zoo, "plainflipflop", "dynamics_summary").attrs["task_analysis"] == (
        "generic"
    )


def test_a_broken_analysis_plugin_names_itself(tmp_path, monkeypatch):
    site = tmp_path / "site"
    add_distribution(
        site,
        "broken_analyses",
        """
        [rnnzoo_dynamics.task_analyses]
        plainflipflop = broken_analysis:Missing
        notaclass = broken_analysis:VALUE
        """,
        {"broken_analysis": "VALUE = 3\n"},
    )
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(TaskAnalysisPluginError, match=r"plainflipflop.*broken_analysis:Missing"):
        get_task_analysis(PlainFlipFlop())
    with pytest.raises(TaskAnalysisPluginError, match="is not a subclass"):
        get_task_analysis_class("notaclass")
    # the other tasks are not affected
    assert get_task_analysis_class("flipflop") is FlipFlopAnalysis


def test_two_analysis_plugins_for_one_task_are_refused(tmp_path, monkeypatch):
    site = tmp_path / "site"
    add_distribution(
        site,
        "second_flipflop_analysis",
        """
        [rnnzoo_dynamics.task_analyses]
        flipflop = rnnzoo_dynamics.task_analyses:GenericAnalysis
        """,
        {},
    )
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(TaskAnalysisPluginError, match="two analysis plugins"):
        get_task_analysis(get_task("flipflop"))


def test_the_plugin_hooks_are_called_in_order(tmp_path, monkeypatch):
    """A plugin sees the finder's points, adds per-point variables, datasets and columns."""
    site = tmp_path / "site"
    add_distribution(
        site,
        "recording_analysis",
        """
        [rnnzoo_dynamics.task_analyses]
        plainflipflop = recording_analysis:Recording
        """,
        {
            "recording_analysis": """
            import xarray as xr

            from rnnzoo_dynamics.task_analyses import TaskAnalysis

            CALLS = []

            class Recording(TaskAnalysis):
                name = "recording"
                n_starts = 5

                def analysis_names(self):
                    return ["extra"]

                def refine(self, run):
                    CALLS.append(("refine", run.starts.shape, run.flow is None))

                def point_variables(self, run):
                    CALLS.append(("point_variables", run.flow is not None))
                    return {"twice_q": 2 * run.points.q}

                def analyses(self, run, rows):
                    for r in rows:
                        r["n_extra"] = 1
                    ds = xr.Dataset({"q_sum": ("network", [1.0] * run.n_networks)})
                    return {"extra": ds.assign_coords(network=run.network_ids)}
            """
        },
    )
    monkeypatch.syspath_prepend(str(site))
    task = PlainFlipFlop(n_steps=20)
    cell, params = _random_population(task, P=1)
    out = analyze_population(task, cell, params, ["a"])
    import recording_analysis

    S = cell.state_size
    assert recording_analysis.CALLS == [("refine", (1, 1, 5, S), True), ("point_variables", True)]
    assert sorted(out) == analysis_names(task) == ["extra", "fixed_points", "summary"]
    np.testing.assert_array_equal(out["fixed_points"]["twice_q"], 2 * out["fixed_points"]["q"])
    assert out["summary"]["n_extra"].values.tolist() == [1]
    assert "task_analysis" not in out["summary"].attrs
