"""Input kinds are open to plugins (issue 13, section 1).

The built-in kinds (activations, graph, trajectories) are registered through the same
``register_input_kinds`` hook as a plugin's. The example package
``examples/rnnzoo-input-example`` declares a new kind (``psth``) with adapters from arrays,
from the zoo layout and from files; it is pip-installed into a private ``--target``
directory (as in test_plugins.py) and used from the command line and from Python.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnzoo_metrics as rm
from rnnzoo_metrics import InputError, InputKind, Metric, hookimpl
from rnnzoo_metrics.metric import validate_metric_class
from rnnzoo_metrics.registry import Registry

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "rnnzoo-input-example"


def pip_install(path, site):
    extra = []
    try:
        import hatchling  # noqa: F401

        extra = ["--no-build-isolation"]
    except ImportError:
        pass
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "install"]
    r = subprocess.run(
        [*cmd, "--no-deps", "--target", str(site), *extra, str(path)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr


def cli(*args, site=None):
    path = os.pathsep.join(p for p in (str(site or ""), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, "-m", "rnnzoo_metrics", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path},
    )


def norm_corr(x, y):
    """The example metric, written out independently: 1 - Pearson r of ||x(t)||, ||y(t)||."""
    return 1.0 - np.corrcoef(np.linalg.norm(x, axis=1), np.linalg.norm(y, axis=1))[0, 1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    path = tmp_path_factory.mktemp("site")
    pip_install(EXAMPLE, path)
    return path


@pytest.fixture
def psths():
    rng = np.random.default_rng(3)
    return {f"net{i}": rng.normal(size=(12, 3 + i)) for i in range(4)}


def test_builtin_kinds_come_through_the_hook():
    kinds = {k["name"]: k for k in rm.available_input_kinds()}
    assert {"activations", "graph", "trajectories"} <= set(kinds)
    assert all(kinds[k]["plugin"] == "builtins" for k in ("activations", "graph", "trajectories"))
    assert rm.input_kind("trajectories").default_variable == "hidden_trained"
    with pytest.raises(InputError, match="unknown input kind 'nope'; registered: activations"):
        rm.input_kind("nope")


def test_a_metric_of_an_unregistered_kind_is_refused_naming_the_kinds():
    class Odd(Metric):
        name = "odd"
        input_kind = "spikes"

        def prepare(self, x):
            return x

        def pair(self, a, b):
            return 0.0

    why = validate_metric_class(Odd, ["activations", "graph"])
    assert why == (
        "metric 'odd': input_kind must be a registered input kind (activations, graph), "
        "not 'spikes'"
    )
    assert validate_metric_class(Odd, ["activations", "spikes"]) is None


def test_a_plugin_kind_registered_in_process_is_used_by_pairwise(monkeypatch):
    """A module registered with the plugin manager, without packaging: kinds before metrics."""

    class Plugin:
        @staticmethod
        @hookimpl
        def register_input_kinds(register):
            register(InputKind("scalars", "one number per network", lambda x, n: float(x)))

        @staticmethod
        @hookimpl
        def register_metrics(register):
            class Diff(Metric):
                name = "scalar-diff"
                input_kind = "scalars"

                def prepare(self, x):
                    return x

                def pair(self, a, b):
                    return abs(a - b)

            register(Diff)

    reg = Registry()
    reg._register_module(Plugin, "inline", "inline 0")
    reg.metrics.clear()
    reg.kinds.clear()
    for impl in reg.pm.hook.register_input_kinds.get_hookimpls():
        reg._call_kinds_impl(impl)
    for impl in reg.pm.hook.register_metrics.get_hookimpls():
        reg._call_impl(impl)
    assert reg.kinds["scalars"][1] == "inline 0"
    import rnnzoo_metrics.registry as registry_module

    monkeypatch.setattr(registry_module, "_registry", reg)
    d = rm.pairwise([1.0, 4.0, 6.0], "scalar-diff", progress=False)
    np.testing.assert_array_equal(d.values, [[0, 3, 5], [3, 0, 2], [5, 2, 0]])


def test_trajectories_from_arrays_and_the_zoo_layout():
    xr = pytest.importorskip("xarray")
    rng = np.random.default_rng(0)
    h = rng.normal(size=(3, 2, 4, 5, 6))  # network, probe, repeat, time, unit
    ds = xr.Dataset(
        {"hidden_trained": (("network", "probe", "repeat", "time", "unit"), h)},
        coords={"network": ["a", "b", "c"], "arch": ("network", ["gru", "gru", "lstm"])},
    )
    nets = rm.as_networks(ds, "trajectories")
    assert nets.ids == ["a", "b", "c"]
    assert list(nets.coords["arch"]) == ["gru", "gru", "lstm"]
    np.testing.assert_array_equal(nets.load(1), h[1].reshape(8, 5, 6))
    stacked = rm.as_networks(h[:, 0, 0], "trajectories")  # (network, time, unit): one trial
    assert stacked.load(2).shape == (1, 5, 6)
    with pytest.raises(InputError, match="must be 3-D \\(trials, time, units\\)"):
        rm.as_networks([np.zeros(4)], "trajectories").load(0)
    with pytest.raises(InputError, match="trajectories need 'network', 'time' and 'unit'"):
        rm.as_networks(ds.rename(time="step"), "trajectories")


def test_example_kind_from_the_command_line(site, psths, tmp_path):
    listed = cli("list", "--json", site=site)
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    kind = next(k for k in data["input_kinds"] if k["name"] == "psth")
    assert kind["provider"] == "rnnzoo-input-example 0.1.0"
    assert kind["plugin"] == "psth"
    metric = next(m for m in data["metrics"] if m["name"] == "psth-norm-corr")
    assert metric["input_kind"] == "psth"

    folder = tmp_path / "csvs"  # the kind's own file adapter: a folder of .csv files
    folder.mkdir()
    for name, x in psths.items():
        np.savetxt(folder / f"{name}.csv", x, delimiter=",")
    out = tmp_path / "d.nc"
    r = cli(
        "pairwise", str(folder), "-m", "psth-norm-corr", "-o", str(out), "--no-progress", site=site
    )
    assert r.returncode == 0, r.stderr
    xr = pytest.importorskip("xarray")
    d = xr.open_dataarray(out)
    assert list(d["network"].values) == list(psths)
    want = [[norm_corr(psths[a], psths[b]) for b in psths] for a in psths]
    np.testing.assert_allclose(d.values, want, rtol=0, atol=1e-12)  # float64 throughout

    # from the zoo layout (a NetCDF Dataset: no zarr needed): trials are averaged
    rng = np.random.default_rng(1)
    h = rng.normal(size=(3, 4, 12, 5))
    ds = xr.Dataset({"hidden_trained": (("network", "probe", "time", "unit"), h)})
    ds.to_netcdf(tmp_path / "zoo.nc")
    r = cli("pairwise", str(tmp_path / "zoo.nc"), "-m", "psth-norm-corr", "-o",
            str(tmp_path / "z.nc"), "--no-progress", site=site)  # fmt: skip
    assert r.returncode == 0, r.stderr
    z = xr.open_dataarray(tmp_path / "z.nc").values
    m = h.mean(axis=1)
    np.testing.assert_allclose(z[0, 2], norm_corr(m[0], m[2]), rtol=0, atol=1e-12)

    # a user mistake in the kind's data: one line, exit 2, no traceback
    (folder / "bad.csv").write_text("1,2\n3,x\n")
    r = cli(
        "pairwise", str(folder), "-m", "psth-norm-corr", "-o", str(tmp_path / "e.nc"), site=site
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0
    assert "bad.csv" in r.stderr


def test_example_kind_from_python(site, psths, monkeypatch):
    monkeypatch.syspath_prepend(str(site))
    try:
        rm.reload_plugins()
        assert rm.input_kind("psth").summary.startswith("trial-averaged")
        d = rm.pairwise(psths, "psth-norm-corr", progress=False)
        names = list(psths)
        want = [[norm_corr(psths[a], psths[b]) for b in names] for a in names]
        np.testing.assert_allclose(d.values, want, rtol=0, atol=1e-12)
        stacked = np.stack([x[:, :3] for x in psths.values()])  # (network, time, units)
        d2 = rm.pairwise(stacked, "psth-norm-corr", progress=False)
        assert d2.shape == (4, 4)
        with pytest.raises(InputError, match="a psth is 2-D"):
            rm.pairwise([np.zeros(5), np.zeros(5)], "psth-norm-corr", progress=False)
    finally:
        monkeypatch.undo()
        for name in [m for m in sys.modules if m.startswith("rnnzoo_input_example")]:
            del sys.modules[name]
        rm.reload_plugins()
    assert "psth" not in {k["name"] for k in rm.available_input_kinds()}
