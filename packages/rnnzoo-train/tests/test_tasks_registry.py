"""The task registry: entry points, one-line errors, and a real pip-installed task plugin."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import entry_points

import numpy as np
import pytest

from rnnzoo_train.tasks import (
    GROUP,
    ContextDependentIntegration,
    FlipFlop,
    SineWave,
    Task,
    TaskPluginError,
    available_tasks,
    get_task,
    get_task_class,
)


def test_builtins_are_registered_through_entry_points():
    registered = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    assert registered["flipflop"] == "rnnzoo_train.tasks.flipflop:FlipFlop"
    assert registered["sine"] == "rnnzoo_train.tasks.sine:SineWave"
    assert registered["cdi"] == "rnnzoo_train.tasks.cdi:ContextDependentIntegration"
    assert {"flipflop", "sine", "cdi"} <= set(available_tasks())
    assert available_tasks() == sorted(available_tasks())
    assert get_task_class("flipflop") is FlipFlop
    assert isinstance(get_task("sine"), SineWave)
    assert isinstance(get_task("cdi", n_steps=10), ContextDependentIntegration)


def test_unknown_task_lists_the_available_ones():
    with pytest.raises(ValueError, match=r"unknown task 'flip-flop'; available tasks: cdi, ") as e:
        get_task("flip-flop")
    assert "flipflop" in str(e.value)
    assert "\n" not in str(e.value)


def test_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"task 'flipflop' has no parameter 'T'; its param") as e:
        get_task("flipflop", T=50)
    assert "n_steps" in str(e.value)


PLUGIN = '''
"""A task plugin: report a ramp whose slope is a static input."""

import numpy as np

from rnnzoo_train.tasks import FixedPointConditions, ProbeSet, Task, TaskBatch


class Ramp(Task):
    name = "ramp"
    performance_name = "mse"
    performance_threshold = 0.01
    higher_is_better = False

    def __init__(self, n_steps=20):
        self.n_steps = int(n_steps)
        self.n_inputs = 1
        self.n_outputs = 1

    def _trials(self, slope):
        t = np.arange(1, self.n_steps + 1)
        x = np.broadcast_to(slope[:, None, None], (slope.size, self.n_steps, 1))
        y = (slope[:, None] * t)[..., None]
        return np.ascontiguousarray(x, np.float32), y.astype(np.float32), np.ones(y.shape, bool)

    def sample(self, batch_size, rng):
        return TaskBatch(*self._trials(rng.uniform(-1, 1, batch_size)))

    def probe(self):
        slope = np.linspace(-1, 1, 3)
        return ProbeSet(*self._trials(slope), labels={"slope": slope})

    def fixed_point_conditions(self):
        return FixedPointConditions(inputs=np.zeros((1, 1), np.float32))

    def performance(self, outputs, batch):
        return float(np.mean((outputs - batch.targets) ** 2))

    def config(self):
        return {"name": self.name, "params": {"n_steps": self.n_steps}}


class NotATask:
    pass
'''

PYPROJECT = """
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "rnnzoo-ramp-task"
version = "0.1"

[tool.setuptools]
py-modules = ["rnnzoo_ramp_task", "rnnzoo_broken_task"]

[project.entry-points."rnnzoo_train.tasks"]
ramp = "rnnzoo_ramp_task:Ramp"
broken = "rnnzoo_broken_task:Broken"
notatask = "rnnzoo_ramp_task:NotATask"
"""


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    """A task plugin package built and pip-installed into a private site directory."""
    src = tmp_path_factory.mktemp("plugin_src")
    (src / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (src / "rnnzoo_ramp_task.py").write_text(textwrap.dedent(PLUGIN))
    (src / "rnnzoo_broken_task.py").write_text("import a_module_that_does_not_exist\n")
    site = tmp_path_factory.mktemp("plugin_site")
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
    for module in ("rnnzoo_ramp_task", "rnnzoo_broken_task"):
        sys.modules.pop(module, None)


def test_a_pip_installed_plugin_task_is_found_and_works(with_plugin):
    assert {"ramp", "broken", "notatask", "flipflop"} <= set(available_tasks())
    task = get_task("ramp", n_steps=7)
    assert isinstance(task, Task)
    assert type(task).__module__ == "rnnzoo_ramp_task"
    batch = task.sample(4, np.random.default_rng(0))
    assert batch.targets.shape == (4, 7, 1)
    assert task.solved(task.performance(batch.targets, batch))
    rebuilt = get_task(task.config()["name"], **task.config()["params"])
    assert rebuilt.config() == {"name": "ramp", "params": {"n_steps": 7}}


def test_a_broken_plugin_names_itself_and_spares_the_others(with_plugin):
    with pytest.raises(TaskPluginError, match=r"task plugin 'broken' \(rnnzoo_broken_task:Br") as e:
        get_task("broken")
    assert "ModuleNotFoundError" in str(e.value)
    assert "\n" not in str(e.value)
    with pytest.raises(TaskPluginError, match=r"'notatask' .* is not a subclass of .*Task"):
        get_task("notatask")
    assert isinstance(get_task("flipflop"), FlipFlop)  # built-ins unaffected
    assert isinstance(get_task("ramp"), Task)


def test_plugin_disappears_when_uninstalled(plugin_site):
    assert "ramp" not in available_tasks()
    with pytest.raises(ValueError, match="unknown task 'ramp'"):
        get_task("ramp")
