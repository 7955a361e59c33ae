"""The public API: top-level exports, old import paths, reading stored analyses back."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import rnnzoo_dynamics
from rnnzoo_dynamics.analyze import AnalysisError, read_analysis


def test_every_public_name_is_the_submodule_object():
    assert set(rnnzoo_dynamics.__all__) - {"__version__"} == set(rnnzoo_dynamics._EXPORTS)
    for name, module in rnnzoo_dynamics._EXPORTS.items():
        sub = __import__(f"rnnzoo_dynamics.{module}", fromlist=[name])
        assert getattr(rnnzoo_dynamics, name) is getattr(sub, name), name
    assert set(rnnzoo_dynamics.__all__) <= set(dir(rnnzoo_dynamics))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = rnnzoo_dynamics.nope


def test_old_import_paths_still_work():
    from rnnzoo_dynamics.analyze import analyze_zoo
    from rnnzoo_dynamics.plots import (
        plot_ablation,
        plot_eigenvalues,
        plot_fixed_points_pca,
        plot_frequency,
        plot_spectra,
        plot_zoo,
    )
    from rnnzoo_dynamics.population import AnalysisOptions

    assert analyze_zoo is rnnzoo_dynamics.analyze_zoo
    assert AnalysisOptions is rnnzoo_dynamics.AnalysisOptions
    assert all(
        callable(f)
        for f in (
            plot_ablation,
            plot_eigenvalues,
            plot_fixed_points_pca,
            plot_frequency,
            plot_spectra,
            plot_zoo,
        )
    )


def test_linearize_is_the_function_and_the_module_still_imports():
    from rnnzoo_dynamics.linearize import linearize, point_jacobians

    assert rnnzoo_dynamics.linearize is linearize
    assert callable(point_jacobians)
    # submodule first, in a fresh interpreter: the package attribute is still the function
    code = (
        "import sys, types; from rnnzoo_dynamics.linearize import point_jacobians; "
        "import rnnzoo_dynamics as d; "
        "assert d.linearize is sys.modules['rnnzoo_dynamics.linearize'].linearize"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_read_analysis(analysed_zoo):
    path = analysed_zoo[0]
    cdi = read_analysis(path, "cdi", "cdi_linear")
    assert cdi["response_full"].dims == ("network", "context")
    # strings come back as plain Python str (object arrays), not NumPy StringDType
    assert cdi["arch"].dtype == object
    assert isinstance(cdi["network"].values[0], str)
    assert set(np.asarray(cdi["arch"].values)) <= {"vanilla", "gru"}
    fp = read_analysis(path, "cdi", "fixed_points")
    assert fp["kind"].dtype == object
    assert {"flow_distance", "attractor_point", "on_line_attractor"} <= set(fp.data_vars)
    assert read_analysis(path, "cdi", "cdi_linear", which="initial", missing_ok=True) is None
    with pytest.raises(AnalysisError, match="--untrained") as err:
        read_analysis(path, "cdi", "cdi_linear", which="initial")
    assert "\n" not in str(err.value)
    with pytest.raises(AnalysisError, match="which must be"):
        read_analysis(path, "cdi", "cdi_linear", which="trained")
    from rnnzoo_train.zoo import open_zoo

    zoo = open_zoo(path)
    same = read_analysis(zoo, "sine", "sine_frequency")
    assert {"n_points", "n_slow_points", "n_far_points", "point_kind"} <= set(same.data_vars)
