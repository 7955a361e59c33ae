"""Real pip-installed plugins: the example RSA plugin, and broken ones that must not take
the built-ins down."""

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


def pip_install(path):
    extra = []
    try:
        import hatchling  # noqa: F401

        extra = ["--no-build-isolation"]  # no download needed for the build backend
    except ImportError:
        pass
    pip("install", "--no-deps", *extra, str(path))


def cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "rnnzoo_metrics", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


def listed():
    r = cli("list", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


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


def test_example_plugin_installs_and_is_used(npy_folder, tmp_path):
    pip_install(EXAMPLE)
    try:
        data = listed()
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
            for m in json.loads(cli("list", "--json", env={ENV_DISABLE: "1"}).stdout)["metrics"]
        }
        assert "rsa" not in {
            m["name"]
            for m in json.loads(cli("list", "--json", env={ENV_DISABLE: "example"}).stdout)[
                "metrics"
            ]
        }
    finally:
        pip("uninstall", "-y", "rnnzoo-metric-example")
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


def test_broken_plugins_name_themselves_and_spare_the_builtins(tmp_path, npy_folder):
    pip_install(make_broken_package(tmp_path))
    try:
        data = listed()
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
            "pairwise", str(npy_folder), "-m", "cka", "-o", str(tmp_path / "d.nc"), "--no-progress"
        )
        assert r.returncode == 0, r.stderr
        r = cli("pairwise", str(npy_folder), "-m", "rsa2", "-o", str(tmp_path / "e.nc"))
        assert r.returncode == 2
        assert "broken-import-error" in r.stderr
        # in process: a PluginWarning per broken plugin, names included
        with pytest.warns(rm.PluginWarning, match="broken-bad-signature"):
            rm.reload_plugins()
        assert len(rm.plugin_failures()) == 4
    finally:
        pip("uninstall", "-y", "rnnzoo-broken-plugins")
        rm.reload_plugins()
    assert not rm.plugin_failures()
