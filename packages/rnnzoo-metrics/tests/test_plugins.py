"""Real pip-installed plugins: the example RSA plugin, and broken ones that must not take
the built-ins down.

Plugins are pip-installed into a private site directory (``--target``) that only these
tests put on the path (``PYTHONPATH`` for the command line, ``sys.path`` in process): the
suite runs in parallel, and a broken plugin installed into the shared environment would
make every other test's ``rnnzoo-metrics`` print its warning.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import rnnzoo_metrics as rm
from rnnzoo_metrics.registry import ENV_DISABLE

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "rnnzoo-metric-example"
BUILTINS = {
    "svcca",
    "pwcca",
    "cka",
    "cka-angular",
    "cka-debiased",
    "cka-rbf",
    "procrustes",
    "fixed-point-graph",
    "fixed-point-graph-matched",
}


def pip(*args):
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r


def pip_install(path, site):
    extra = []
    try:
        import hatchling  # noqa: F401

        extra = ["--no-build-isolation"]  # no download needed for the build backend
    except ImportError:
        pass
    pip("install", "--no-deps", "--target", str(site), *extra, str(path))


def cli(*args, env=None, site=None):
    path = os.pathsep.join(p for p in (str(site or ""), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, "-m", "rnnzoo_metrics", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path, **(env or {})},
    )


def listed(site=None):
    r = cli("list", "--json", site=site)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture
def site(tmp_path):
    """A private site directory for the plugins of one test."""
    path = tmp_path / "site"
    path.mkdir()
    return path


@pytest.fixture
def npy_folder(tmp_path):
    folder = tmp_path / "nets"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        np.save(folder / f"net{i}.npy", rng.normal(size=(30, 3)))
    return folder


def test_builtins_are_registered_through_the_hook():
    infos = {i.name: i for i in rm.available_metrics()}
    assert set(infos) >= BUILTINS
    assert all(infos[n].plugin == "builtins" for n in BUILTINS)
    assert infos["svcca"].provider.startswith("rnnzoo-metrics ")


def test_example_plugin_installs_and_is_used(npy_folder, tmp_path, site):
    pip_install(EXAMPLE, site)
    data = listed(site)
    rsa = next(m for m in data["metrics"] if m["name"] == "rsa")
    assert rsa["provider"] == "rnnzoo-metric-example 0.1.0"
    assert rsa["plugin"] == "example"
    r = cli(
        "pairwise",
        str(npy_folder),
        "-m",
        "rsa",
        "-o",
        str(tmp_path / "rsa.nc"),
        "--no-progress",
        site=site,
    )
    assert r.returncode == 0, r.stderr
    xr = pytest.importorskip("xarray")
    d = xr.open_dataarray(tmp_path / "rsa.nc")
    assert d.attrs["provider"] == "rnnzoo-metric-example 0.1.0"
    assert np.all(np.isfinite(d.values))
    # the installed plugin computes RSA: 1 - Spearman r between correlation RDMs
    from scipy.stats import spearmanr

    x0, x1 = (np.load(npy_folder / f"net{i}.npy") for i in (0, 1))
    iu = np.triu_indices(len(x0), 1)
    rdm0, rdm1 = (1 - np.corrcoef(x)[iu] for x in (x0, x1))
    assert d.values[0, 1] == pytest.approx(1 - spearmanr(rdm0, rdm1).statistic, abs=1e-12)
    # the environment variable switches external plugins off
    assert "rsa" not in {
        m["name"]
        for m in json.loads(cli("list", "--json", env={ENV_DISABLE: "1"}, site=site).stdout)[
            "metrics"
        ]
    }
    assert "rsa" not in {
        m["name"]
        for m in json.loads(cli("list", "--json", env={ENV_DISABLE: "example"}, site=site).stdout)[
            "metrics"
        ]
    }
    # not on the path: not there
    assert "rsa" not in {m["name"] for m in listed()["metrics"]}


BROKEN = {
    "import_error.py": "raise ImportError('needs a module that is not installed')\n",
    "bad_signature.py": """
        from rnnzoo_metrics import hookimpl

        @hookimpl
        def register_metrics(registry):  # wrong argument name
            pass
    """,
    "raises.py": """
        from rnnzoo_metrics import hookimpl

        @hookimpl
        def register_metrics(register):
            raise RuntimeError('boom while registering')
    """,
    "not_a_metric.py": """
        from rnnzoo_metrics import hookimpl

        @hookimpl
        def register_metrics(register):
            register(dict)
    """,
}


def make_broken_package(tmp_path):
    pkg = tmp_path / "broken"
    src = pkg / "src" / "rnnzoo_broken_plugins"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("")
    for name, body in BROKEN.items():
        (src / name).write_text(textwrap.dedent(body))
    eps = "\n".join(
        f'broken-{n[:-3].replace("_", "-")} = "rnnzoo_broken_plugins.{n[:-3]}"' for n in BROKEN
    )
    (pkg / "pyproject.toml").write_text(
        textwrap.dedent("""\
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"
        [project]
        name = "rnnzoo-broken-plugins"
        version = "0.0.1"
        [project.entry-points.rnnzoo_metrics]
        """)
        + eps
        + textwrap.dedent("""
        [tool.hatch.build.targets.wheel]
        packages = ["src/rnnzoo_broken_plugins"]
        """)
    )
    return pkg


def test_broken_plugins_name_themselves_and_spare_the_builtins(
    tmp_path, npy_folder, site, monkeypatch
):
    pip_install(make_broken_package(tmp_path), site)
    try:
        data = listed(site)
        assert {m["name"] for m in data["metrics"]} >= BUILTINS
        failures = "\n".join(data["failed_plugins"])
        assert (
            "plugin 'broken-import-error' (rnnzoo-broken-plugins 0.0.1) failed to import"
            in failures
        )
        assert "needs a module that is not installed" in failures
        assert "plugin 'broken-bad-signature'" in failures
        assert "wrong hook signature" in failures
        assert "registry" in failures
        assert "plugin 'broken-raises'" in failures
        assert "boom while registering" in failures
        assert "plugin 'broken-not-a-metric'" in failures
        assert "not a subclass" in failures
        # the built-ins still compute; an unknown name mentions the broken plugins
        r = cli(
            "pairwise",
            str(npy_folder),
            "-m",
            "cka",
            "-o",
            str(tmp_path / "d.nc"),
            "--no-progress",
            site=site,
        )
        assert r.returncode == 0, r.stderr
        r = cli("pairwise", str(npy_folder), "-m", "rsa2", "-o", str(tmp_path / "e.nc"), site=site)
        assert r.returncode == 2
        assert "broken-import-error" in r.stderr
        # in process: a PluginWarning per broken plugin, names included
        monkeypatch.syspath_prepend(str(site))
        with pytest.warns(rm.PluginWarning, match="broken-bad-signature"):
            rm.reload_plugins()
        assert len(rm.plugin_failures()) == 4
    finally:
        monkeypatch.undo()
        for name in [m for m in sys.modules if m.startswith("rnnzoo_broken_plugins")]:
            del sys.modules[name]
        rm.reload_plugins()
    assert not rm.plugin_failures()
