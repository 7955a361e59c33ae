"""A cell type registered from outside (issue 12 section 2), pip-installed for real.

The plugin is the example package's minimal gated unit (``examples/rnnzoo-neuro-extras``,
copied into a package of its own here), pip-installed into a private site directory that
only these tests put on the path: it declares no training kernel and no closed-form
Jacobians. It trains with the autograd kernel, is stored in and read back from a zoo, and
rnnzoo-dynamics analyses it through autograd Jacobians; without the plugin the zoo still
opens, and running its networks names the plugin to install in one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rnnzoo_train.cells import (
    ArchitecturePluginError,
    available_architectures,
    colour,
    display_name,
    get_architecture,
    get_cell,
)
from rnnzoo_train.cells.builtin import BUILTIN
from rnnzoo_train.zoo import ZooArchitectureError, open_zoo

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE_CELLS = (
    ROOT / "examples" / "rnnzoo-neuro-extras" / "src" / "rnnzoo_neuro_extras" / "cells.py"
)
DIST = "rnnzoo-mgu-cell"
VERSION = "0.2"

PYPROJECT = f"""
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "{DIST}"
version = "{VERSION}"

[tool.setuptools]
py-modules = ["rnnzoo_mgu_cell", "rnnzoo_broken_cell"]

[project.entry-points."rnnzoo_train.cells"]
mgux = "rnnzoo_mgu_cell:MGU"
broken = "rnnzoo_broken_cell:Broken"
notarch = "rnnzoo_mgu_cell:MGUCell"
misnamed = "rnnzoo_mgu_cell:MGU"
gru = "rnnzoo_mgu_cell:MGU"
"""

GRID = """
name = "mgu-plugin"
base = "tiny"
[grid]
arch = ["mgux", "gru"]
activation = ["tanh"]
units = [5]
l2 = [1e-4]
seeds = 1
tasks = ["flipflop"]
[training]
iterations = 10
"""

#: run in a child process with the plugin on PYTHONPATH: generate, read back, analyse
WITH_PLUGIN = """
import sys

import numpy as np
import torch

from rnnzoo_train.cells.base import Cell
from rnnzoo_train.cli import main
from rnnzoo_train.zoo import open_zoo
from rnnzoo_dynamics import AnalysisOptions, analyze_zoo
from rnnzoo_dynamics.analyze import read_analysis

zoo_path, grid = sys.argv[1], sys.argv[2]
code = main(["generate", "--config", grid, "--task", "flipflop", "--out", zoo_path,
             "--no-progress"])
assert code == 0, code

zoo = open_zoo(zoo_path)
index = zoo.index("flipflop")
assert sorted(set(index["arch"])) == ["gru", "mgux"], index["arch"]
assert set(index["status"]) == {"ok"}, index[["status", "message"]]
mgu = [i for i in index.index if index.loc[i, "arch"] == "mgux"]
attrs = zoo.tree[f"flipflop/networks/{index.loc[mgu[0], 'group']}"].attrs
assert attrs["arch_plugin"] == "rnnzoo-mgu-cell", attrs
assert attrs["arch_plugin_version"] == "0.2", attrs

# read back: the stored weights run the plugin's cell, and give the stored hidden states
cell, params = zoo.population("flipflop", mgu)
assert type(cell).__name__ == "MGUCell" and cell.arch == "mgux"
assert type(cell).jacobian_h is Cell.jacobian_h  # no closed form: autograd Jacobians
assert params["W_h"].shape == (len(mgu), 5, 10)
x = torch.as_tensor(zoo.probe("flipflop").inputs)
with torch.no_grad():
    states = cell.run(params, x.expand(len(mgu), *x.shape))
stored = zoo.hidden_states("flipflop", mgu)
group = index.loc[mgu[0], "group"]
hidden = stored[group]["hidden_trained"].values
# float32 over 100 steps of a contracting 5-unit network (|J| < 1): rounding of order 1e-6
np.testing.assert_allclose(states.numpy(), hidden, rtol=0, atol=1e-5)
initial = zoo.weights("flipflop", mgu[0], "initial")
assert np.isfinite(initial["W_h"]).all() and not np.array_equal(
    initial["W_h"], zoo.weights("flipflop", mgu[0], "final")["W_h"])

# rnnzoo-dynamics analyses one network of it (through autograd Jacobians)
analyze_zoo(zoo_path, "flipflop", options=AnalysisOptions(n_starts=16),
            network_ids=mgu[:1], progress=False)
points = read_analysis(zoo_path, "flipflop", "fixed_points")
mine = points.where(points["network"] == mgu[0], drop=True)
assert mine.sizes[next(iter(mine["network"].dims))] > 0, points
print("OK", len(mine["network"]))
"""


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    """The MGU cell as a plugin package, pip-installed into a private site directory."""
    src = tmp_path_factory.mktemp("cell_plugin_src")
    (src / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    # renamed, so that the example package itself may be installed beside it
    (src / "rnnzoo_mgu_cell.py").write_text(EXAMPLE_CELLS.read_text().replace('"mgu"', '"mgux"'))
    (src / "rnnzoo_broken_cell.py").write_text("import a_module_that_does_not_exist\n")
    site = tmp_path_factory.mktemp("cell_plugin_site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--target", str(site), str(src)],
        check=True,
    )  # fmt: skip
    return site


@pytest.fixture
def with_plugin(plugin_site, monkeypatch):
    monkeypatch.syspath_prepend(str(plugin_site))
    yield
    for module in ("rnnzoo_mgu_cell", "rnnzoo_broken_cell"):
        sys.modules.pop(module, None)


@pytest.fixture(scope="module")
def plugin_zoo(plugin_site, tmp_path_factory):
    """A tiny flip-flop zoo of MGU and GRU networks, generated and analysed with the plugin."""
    work = tmp_path_factory.mktemp("cell_plugin_zoo")
    grid = work / "grid.toml"
    grid.write_text(textwrap.dedent(GRID))
    path = work / "zoo.zarr"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_site), *sys.path])}
    r = subprocess.run(
        [sys.executable, "-c", WITH_PLUGIN, str(path), str(grid)],
        capture_output=True,
        text=True,
        env=env,
        cwd=work,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK 1" in r.stdout, r.stdout
    return path


def test_a_pip_installed_cell_is_registered_by_its_descriptor(with_plugin):
    assert available_architectures()[:4] == list(BUILTIN)
    assert {"mgux", "broken", "notarch", "misnamed"} <= set(available_architectures())
    mgu = get_architecture("mgux")
    assert mgu.plugin == DIST
    assert mgu.kernels == ("autograd",)
    assert not mgu.closed_form_jacobians
    assert mgu.param_shapes(5, 3, 2)["W_h"] == (5, 10)
    assert (display_name("mgux"), colour("mgux")) == ("MGU", "#e377c2")
    cell = get_cell("mgux", "relu", 5, 3, 2)
    assert type(cell).__module__ == "rnnzoo_mgu_cell"
    assert cell.param_shapes() == mgu.param_shapes(5, 3, 2)
    assert get_architecture("gru") is BUILTIN["gru"]  # a built-in cannot be taken over


def test_a_broken_cell_plugin_names_itself_and_spares_the_others(with_plugin):
    with pytest.raises(ArchitecturePluginError, match=r"plugin 'broken' \(rnnzoo_broken_cell") as e:
        get_architecture("broken")
    assert "ModuleNotFoundError" in str(e.value)
    assert "\n" not in str(e.value)
    with pytest.raises(ArchitecturePluginError, match=r"'notarch' .* is not an .*Architecture"):
        get_architecture("notarch")
    with pytest.raises(ArchitecturePluginError, match=r"declares the name 'mgux', not 'misnamed'"):
        get_architecture("misnamed")
    assert colour("broken") == "#555555"  # figures do not fail on a broken plugin
    assert get_architecture("gru") is BUILTIN["gru"]


def test_plugin_disappears_when_uninstalled(plugin_site):
    assert "mgux" not in available_architectures()
    with pytest.raises(ValueError, match="unknown architecture 'mgux'"):
        get_architecture("mgux")


def test_a_plugin_cell_trains_is_stored_read_back_and_analysed(plugin_zoo):
    """Everything is checked in the child process that has the plugin (WITH_PLUGIN)."""
    assert (plugin_zoo / "zarr.json").exists()


def test_without_the_plugin_the_zoo_opens_and_names_the_plugin_to_install(plugin_zoo):
    with open_zoo(plugin_zoo) as zoo:
        index = zoo.index("flipflop")
        mgu = [i for i in index.index if index.loc[i, "arch"] == "mgux"]
        gru = [i for i in index.index if index.loc[i, "arch"] == "gru"]
        assert zoo.weights("flipflop", mgu[0])["W_h"].shape == (5, 10)  # reading: no plugin
        for call in (
            lambda: zoo.population("flipflop", mgu),
            lambda: zoo.network("flipflop", mgu[0]),
            lambda: zoo.cell("flipflop", mgu[0]),
        ):
            with pytest.raises(ZooArchitectureError) as e:
                call()
            message = str(e.value)
            assert "\n" not in message
            assert "architecture 'mgux' of the plugin rnnzoo-mgu-cell" in message
            assert f"pip install '{DIST}=={VERSION}'" in message
        assert zoo.network("flipflop", gru[0]).cell.arch == "gru"  # the built-ins still run
    from rnnzoo_train.zoo.verify import verify_zoo

    report = verify_zoo(plugin_zoo)  # every chunk and checksum: no plugin needed
    assert report.ok, report


def test_without_the_plugin_analyze_is_one_line(plugin_zoo):
    with open_zoo(plugin_zoo) as zoo:
        mgu = zoo.select("flipflop", arch="mgux").index[0]
    r = subprocess.run(
        [sys.executable, "-c", "from rnnzoo_dynamics.cli import main; raise SystemExit(main())",
         "analyze", str(plugin_zoo), "--task", "flipflop", "--network", mgu, "--force",
         "--quiet"],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert r.returncode == 2  # refused up front, before any work unit
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "architecture 'mgux' of the plugin rnnzoo-mgu-cell" in lines[0]
    assert "Traceback" not in r.stderr
