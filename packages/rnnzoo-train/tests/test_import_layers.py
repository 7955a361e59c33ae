"""No import circles between the training kernels and between the runners (issue 12 §4).

``training/kernels.py`` and ``training/native.py`` used to import each other (``make_kernel``
in kernels.py imported native; native's kernels subclass kernels'), and so did
``runners.py`` and ``distributed.py`` (``choose_runner`` imported the Dask runner, which
imported ``UnitFailed`` and ``one_thread`` from runners). Now one module above chooses
(``training/selection.py``; ``runners.py``, whose shared parts moved down to
``workers.py``). Every import counts, also those inside functions.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "rnnzoo_train"


def imported_modules(path: Path) -> set[str]:
    """Every ``rnnzoo_train`` module ``path`` imports, anywhere in the file."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    package = parts[:-1] if parts[-1] != "__init__" else parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)  # from . import native
    return {m for m in found if m.startswith("rnnzoo_train")}


def module_file(name: str) -> Path:
    return PACKAGE.parent.joinpath(*name.split(".")).with_suffix(".py")


@pytest.mark.parametrize(
    ("lower", "upper", "chooser"),
    [
        (
            "rnnzoo_train.training.kernels",
            "rnnzoo_train.training.native",
            "rnnzoo_train.training.selection",
        ),
        ("rnnzoo_train.workers", "rnnzoo_train.distributed", "rnnzoo_train.runners"),
    ],
)
def test_the_chooser_is_above_both_and_neither_imports_it(lower, upper, chooser):
    imports = {m: imported_modules(module_file(m)) for m in (lower, upper, chooser)}
    assert upper not in imports[lower]
    assert chooser not in imports[lower]
    assert chooser not in imports[upper]
    assert lower in imports[upper]  # native subclasses kernels; distributed uses workers
    assert {lower, upper} <= imports[chooser]  # runners: the Dask runner only when asked


def test_the_old_circles_are_gone():
    kernels = imported_modules(module_file("rnnzoo_train.training.kernels"))
    native = imported_modules(module_file("rnnzoo_train.training.native"))
    assert "rnnzoo_train.training.native" not in kernels
    runners = imported_modules(module_file("rnnzoo_train.runners"))
    distributed = imported_modules(module_file("rnnzoo_train.distributed"))
    assert "rnnzoo_train.runners" not in distributed
    assert "rnnzoo_train.distributed" in runners
    assert "rnnzoo_train.training.kernels" in native


def test_each_module_imports_alone_in_a_fresh_interpreter():
    """Any order works: no partially initialised module is met."""
    for name in (
        "rnnzoo_train.training.native",
        "rnnzoo_train.training.kernels",
        "rnnzoo_train.training.selection",
        "rnnzoo_train.distributed",
        "rnnzoo_train.runners",
        "rnnzoo_train.zoo.networks",
    ):
        r = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True)
        assert r.returncode == 0, (name, r.stderr)


def test_old_names_still_import():
    from rnnzoo_train.runners import THREAD_ENV, UnitFailed, choose_runner, one_thread
    from rnnzoo_train.training import KERNELS, make_kernel
    from rnnzoo_train.workers import UnitFailed as Shared
    from rnnzoo_train.zoo import Network
    from rnnzoo_train.zoo.networks import Network as Moved

    assert UnitFailed is Shared
    assert Network is Moved
    assert THREAD_ENV["OMP_NUM_THREADS"] == "1"
    assert callable(choose_runner)
    assert callable(one_thread)
    assert callable(make_kernel)
    assert set(KERNELS) == {"vanilla", "ugrnn", "gru", "lstm"}
