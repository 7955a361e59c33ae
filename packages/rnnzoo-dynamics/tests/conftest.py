"""Shared fixtures: small real zoos generated with the trainer into real Zarr stores."""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import torch

from rnnzoo_train.generate import generate
from rnnzoo_train.presets import get_preset
from rnnzoo_train.records import HyperParameters
from rnnzoo_train.zoo import ZarrZooWriter

torch.set_num_threads(1)

GOOD = HyperParameters(clip=1.0, lr=0.05, decay=0.5, momentum=0.9)
#: hyper-parameters that make a network diverge (used for the "vanilla-relu" flip-flop nets):
#: within the presets' limits (lr <= 10, clip <= 1e6), both seeds overflow within a dozen
#: iterations (iterations 11 and 6), far from any rounding-dependent edge
BAD = HyperParameters(clip=1e6, lr=10.0, decay=1.0, momentum=0.5)


def small_preset():
    """tiny, with 8 cell types x 2 seeds x 40 iterations; flip-flop vanilla-relu diverges."""
    return dataclasses.replace(
        get_preset("tiny"),
        archs=("vanilla", "gru"),
        activations=("tanh", "relu"),
        iterations=40,
        n_trials=0,
        search_iterations=0,
        hparams={"default": GOOD, "flipflop/vanilla-relu": BAD},
    )


@pytest.fixture(scope="session")
def small_zoo(tmp_path_factory):
    """A real zoo on disk with all three tasks (8 networks each)."""
    path = tmp_path_factory.mktemp("zoo") / "zoo.zarr"
    generate(small_preset(), ["flipflop", "sine", "cdi"], ZarrZooWriter(path), progress=False)
    return path


@pytest.fixture
def zoo_copy(small_zoo, tmp_path):
    """A private copy of the small zoo (tests write analyses into it)."""
    dst = tmp_path / "zoo.zarr"
    shutil.copytree(small_zoo, dst)
    return dst


@pytest.fixture(scope="session")
def analysed_zoo(small_zoo, tmp_path_factory):
    """A copy of the small zoo with every task analysed once (read-only for tests)."""
    from rnnzoo_dynamics.analyze import analyze_zoo
    from rnnzoo_dynamics.population import AnalysisOptions

    dst = tmp_path_factory.mktemp("analysed") / "zoo.zarr"
    shutil.copytree(small_zoo, dst)
    reports = {
        task: analyze_zoo(dst, task, options=AnalysisOptions(n_starts=32), progress=False)
        for task in ("flipflop", "sine", "cdi")
    }
    return dst, reports


@pytest.fixture(scope="session")
def trained_flipflop_zoo(tmp_path_factory):
    """Vanilla tanh 16-unit networks trained on a short flip-flop until they solve it."""
    preset = dataclasses.replace(
        get_preset("tiny"),
        archs=("vanilla",),
        activations=("tanh",),
        units=(16,),
        seeds=(0, 1),
        iterations=400,
        n_trials=0,
        search_iterations=0,
        hparams={"default": GOOD},
        task_params={"flipflop": {"n_steps": 30}},
    )
    path = tmp_path_factory.mktemp("trained") / "zoo.zarr"
    generate(preset, ["flipflop"], ZarrZooWriter(path), progress=False)
    return path
