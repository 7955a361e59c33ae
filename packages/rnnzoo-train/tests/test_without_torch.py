"""Reading a zoo needs no torch (issue 10, section 6).

``pip install rnnzoo-train`` alone downloads, verifies, inspects and opens a zoo (index,
weights, hidden states, probe inputs); ``pip install "rnnzoo-train[torch]"`` adds training
and running networks, and every torch-only feature used without torch says, in one line,
what to install.

``nox -s tests`` runs this file where torch is installed: the read path runs in a child
process that must finish without importing torch, and the torch-only features run in a
child process where torch cannot be imported. ``nox -s isolated-zoo`` runs it (and the
download and publish tests) in an environment where torch is not installed at all.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

#: makes ``import torch`` fail in a child process, as where torch is not installed
NO_TORCH = textwrap.dedent(
    """
    import sys

    class _NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(f"No module named {name!r}", name="torch")
            return None

    sys.meta_path.insert(0, _NoTorch())
    """
)

#: build, publish, serve, download, verify, inspect and open a zoo; torch must stay unloaded
READ_A_ZOO = textwrap.dedent(
    """
    import contextlib, io, sys

    import numpy as np

    from rnnzoo_train.cli import main
    from rnnzoo_train.tasks import get_task
    from rnnzoo_train.zoo import open_zoo
    from rnnzoo_train.zoo.download import download_files, download_zoo
    from rnnzoo_train.zoo.publish import publish_zoo
    from rnnzoo_train.zoo.testing import serve_directory, write_synthetic_zoo

    tasks = [get_task("flipflop", n_steps=8, n_probe=2), get_task("cdi", n_steps=6)]
    write_synthetic_zoo("zoo.zarr", tasks, seeds=(0,), cells=False)
    publish_zoo("zoo.zarr", "site", name="demo", version="1")

    def cli(*argv):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(list(argv))
        assert code == 0, (argv, code)
        return out.getvalue()

    with serve_directory("site") as srv:
        text = cli("download", "demo", "--url", srv.url, "--cache", "cache", "--no-progress")
        assert "flipflop" in text and "cdi" in text, text
        zoo = download_zoo("demo@1", url=srv.url, cache="cache")
        zips = download_files("demo@1", url=srv.url, cache="cache")
    assert "OK" in cli("verify", "zoo.zarr", "--no-progress")
    assert "OK" in cli("verify", str(zips["cdi"]), "--no-progress")
    assert "flipflop" in cli("info", "zoo.zarr")
    original = open_zoo("zoo.zarr")
    assert sorted(zoo.tasks) == ["cdi", "flipflop"]
    for task in zoo.tasks:
        index = zoo.index(task)
        assert index.equals(original.index(task))
        assert set(index["status"]) == {"ok"}
        nid = index.index[0]
        for k, v in original.weights(task, nid).items():
            np.testing.assert_array_equal(zoo.weights(task, nid)[k], v)
        states = zoo.hidden_states(task)
        group = next(iter(states.children))
        h = states[group].dataset["hidden_trained"].values
        assert h.ndim == 4 and np.isfinite(h).all()
        assert zoo.probe(task).inputs.shape[0] == h.shape[1]
        assert not zoo.select(task, status="ok").empty
    assert "torch" not in sys.modules, "reading a zoo imported torch"
    print("read without torch: ok")
    """
)


def _run(code: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(),
    )


def _env() -> dict[str, str]:
    import os

    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")


@pytest.mark.network
def test_download_verify_info_and_open_a_zoo_without_importing_torch(tmp_path):
    r = _run(READ_A_ZOO, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "read without torch: ok" in r.stdout


TORCH_FEATURES = textwrap.dedent(
    """
    import contextlib, io, sys

    from rnnzoo_train.optional import TorchMissingError
    from rnnzoo_train.tasks import get_task
    from rnnzoo_train.zoo import ZarrZooWriter, open_zoo
    from rnnzoo_train.zoo.testing import small_plan, synthetic_result

    task = get_task("flipflop", n_steps=8, n_probe=2)
    plan = small_plan(task, seeds=(0,))
    with ZarrZooWriter("zoo.zarr", untrained_hidden=False) as w:  # recomputed when asked
        w.prepare_task(plan, task)
        w.write_results("flipflop", [synthetic_result(plan, task, i, cells=False)
                                     for i in plan.network_ids()])
    zoo = open_zoo("zoo.zarr")
    nid = zoo.index("flipflop").index[0]
    assert zoo.hidden_states("flipflop", which="trained")  # stored: no torch needed

    def untrained():
        zoo.hidden_states("flipflop", which="untrained").to_dict()

    def training():
        import rnnzoo_train.training  # noqa: F401

    def cell_class():
        from rnnzoo_train.cells import GRUCell  # noqa: F401

    def get_cell():
        from rnnzoo_train.cells import get_cell
        get_cell("gru", "tanh", 4, 3, 3)

    features = {
        "Zoo.network": lambda: zoo.network("flipflop", nid),
        "Zoo.population": lambda: zoo.population("flipflop", [nid]),
        "Zoo.cell": lambda: zoo.cell("flipflop", nid),
        "hidden_untrained of task flipflop": untrained,
        "rnnzoo_train.training": training,
        "rnnzoo_train.cells.GRUCell": cell_class,
        "rnnzoo_train.cells.get_cell": get_cell,
    }
    for feature, use in features.items():
        try:
            use()
        except TorchMissingError as err:
            message = str(err)
            assert feature in message, (feature, message)
            assert message.endswith('needs torch, which is not installed: '
                                    'pip install "rnnzoo-train[torch]"'), message
            assert "\\n" not in message
        else:
            raise AssertionError(f"{feature} worked without torch")

    from rnnzoo_train.cli import main
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["generate", "--preset", "tiny", "--task", "flipflop", "--out", "new.zarr",
                     "--no-progress"])
    lines = err.getvalue().splitlines()
    assert code == 2, code
    assert lines == ['rnnzoo-train: error: rnnzoo-train generate (training networks) needs '
                     'torch, which is not installed: pip install "rnnzoo-train[torch]"'], lines
    import os
    assert not os.path.exists("new.zarr")
    assert "torch" not in sys.modules
    print("torch features refused: ok")
    """
)


def test_torch_only_features_say_in_one_line_what_to_install(tmp_path):
    r = _run(NO_TORCH + TORCH_FEATURES, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "torch features refused: ok" in r.stdout


def test_the_torch_free_catalog_and_synthetic_zoo_match_the_cells():
    """Shapes written without torch are those of the real cells (skipped without torch)."""
    pytest.importorskip("torch")
    from rnnzoo_train.cells import ACTIVATIONS, ARCHITECTURES, get_cell, param_shapes
    from rnnzoo_train.tasks import get_task
    from rnnzoo_train.zoo.testing import small_plan, synthetic_result

    for arch in ARCHITECTURES:
        for act in ACTIVATIONS:
            cell = get_cell(arch, act, 5, 3, 2)
            assert param_shapes(arch, 5, 3, 2) == cell.param_shapes(), (arch, act)
            assert list(param_shapes(arch, 5, 3, 2)) == list(cell.param_shapes())
    task = get_task("flipflop", n_steps=8, n_probe=2)
    plan = small_plan(task, seeds=(0,))
    for nid in plan.network_ids():
        real = synthetic_result(plan, task, nid)
        fake = synthetic_result(plan, task, nid, cells=False)
        for name in ("params_initial", "params_final"):
            a, b = getattr(real, name), getattr(fake, name)
            assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
            assert all(v.dtype == b[k].dtype for k, v in a.items())
        for name in ("hidden_trained", "hidden_untrained", "outputs_trained"):
            assert getattr(real, name).shape == getattr(fake, name).shape, name
            assert getattr(real, name).dtype == getattr(fake, name).dtype, name
