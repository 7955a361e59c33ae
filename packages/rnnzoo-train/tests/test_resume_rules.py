"""What a resumed ``rnnzoo-train generate`` retrains, and which reruns it accepts.

- A diverged network is a finished result: a rerun skips it (no chunk rewritten), while a
  ``failed`` one (here: marked by ``verify --repair`` after a corrupted chunk) is retrained,
  and the repaired zoo equals the original.
- A grid file is compared by content, not by how its path was typed: ``grid.toml``,
  ``./grid.toml``, ``sub/../grid.toml``, its absolute path and a renamed copy all resume the
  same zoo; a grid that changes any network is refused in one line and the zoo is untouched.

The CLI runs in this process (``cli.main``) on ``tiny`` grids: a few seconds per run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from rnnzoo_train.cli import main
from rnnzoo_train.zoo import open_zoo
from rnnzoo_train.zoo.testing import zoo_differences
from rnnzoo_train.zoo.verify import verify_zoo

#: the vanilla-relu networks diverge at once (lr 1e4); the gru-relu ones train normally
DIVERGING = """
name = "diverging"
base = "tiny"
[grid]
arch = ["vanilla", "gru"]
activation = ["relu"]
seeds = 2
tasks = ["flipflop"]
[search]
trials = 0
[hparams.gru]
clip = 1.0
lr = 0.05
decay = 0.9
momentum = 0.9
[hparams.vanilla]
clip = 1e6
lr = 1e4
decay = 0.9
momentum = 0.99
"""

#: no ``name``: the preset is named after the file, so a renamed copy changes the name only
SMALL = """
base = "tiny"
[grid]
arch = ["vanilla"]
seeds = 2
tasks = ["flipflop"]
[training]
iterations = 20
[search]
trials = 0
"""


def _generate(grid: str | Path, out: str | Path) -> list[str]:
    return ["generate", "--config", str(grid), "--out", str(out), "--no-progress"]


def _files(path: Path) -> dict[str, tuple[int, int]]:
    """Every file of a store with its (mtime, size): what a run must leave untouched."""
    return {
        str(p.relative_to(path)): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in path.rglob("*")
        if p.is_file()
    }


def test_a_diverged_network_is_finished_and_a_failed_one_is_retrained(tmp_path, capsys):
    grid = tmp_path / "diverging.toml"
    grid.write_text(DIVERGING)
    out, clean = tmp_path / "zoo.zarr", tmp_path / "clean.zarr"
    assert main(_generate(grid, out)) == 0
    index = open_zoo(out).index("flipflop")
    diverged = index[index["status"] == "diverged"]
    assert list(diverged["arch"]) == ["vanilla", "vanilla"]
    assert list(index[index["status"] == "ok"]["arch"]) == ["gru", "gru"]
    assert np.isfinite(diverged["last_finite_loss"]).all()
    assert (diverged["diverged_at"] >= 0).all()
    assert verify_zoo(out).ok  # a diverged network's chunks are all there and checksummed
    shutil.copytree(out, clean)
    before = _files(out)
    capsys.readouterr()

    # rerun: everything is finished, nothing is trained or rewritten
    assert main(_generate(grid, out)) == 0
    stdout = capsys.readouterr().out
    assert "4 networks were already complete and were skipped" in stdout
    assert "no networks trained in this run" in stdout
    after = _files(out)
    rewritten = [f for f in before if "/networks/" in f and after.get(f) != before[f]]
    assert rewritten == []
    assert open_zoo(out).index("flipflop").equals(index)  # written_at included

    # a corrupted chunk of a diverged network: verify reports it, --repair marks it failed,
    # and the next run retrains its unit (which diverges again, identically)
    victim = diverged.index[0]
    chunk = out / "flipflop/networks/vanilla-relu-u8/hidden_trained/c/0/0/0/0"
    chunk.write_bytes(chunk.read_bytes()[:-1] + b"!")
    report = verify_zoo(out)
    assert not report.ok
    assert any(p.where == f"flipflop/{victim}" for p in report.problems)
    verify_zoo(out, repair=True)
    assert open_zoo(out).index("flipflop").loc[victim, "status"] == "failed"
    capsys.readouterr()
    assert main(_generate(grid, out)) == 0
    stdout = capsys.readouterr().out
    assert "2 networks were already complete and were skipped" in stdout  # the gru unit
    assert open_zoo(out).index("flipflop").loc[victim, "status"] == "diverged"
    assert zoo_differences(out, clean) == []
    assert verify_zoo(out).ok


def test_the_same_grid_spelt_differently_resumes_and_a_different_grid_is_refused(
    tmp_path, monkeypatch, capsys
):
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "grid.toml").write_text(SMALL)
    renamed = tmp_path / "elsewhere" / "renamed.toml"
    renamed.parent.mkdir()
    renamed.write_text(SMALL)
    monkeypatch.chdir(work)
    assert main(_generate("grid.toml", "zoo.zarr")) == 0
    spellings = [
        "./grid.toml",
        "sub/../grid.toml",
        str(work / "grid.toml"),
        "../elsewhere/renamed.toml",
        renamed,
    ]
    for spelling in spellings:
        capsys.readouterr()
        assert main(_generate(spelling, work / "zoo.zarr")) == 0, capsys.readouterr().err
        stdout = capsys.readouterr().out
        assert "2 networks were already complete and were skipped" in stdout, spelling

    # a grid that changes the networks is refused in one line; the zoo is left as it was
    (work / "other.toml").write_text(SMALL.replace("iterations = 20", "iterations = 30"))
    before = _files(work / "zoo.zarr")
    capsys.readouterr()
    assert main(_generate("other.toml", "zoo.zarr")) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("rnnzoo-train: error: zoo.zarr holds task 'flipflop' with a different")
    assert "iterations: zoo has 20, this run has 30" in last
    for descriptive in ("preset:", "preset_description", "departures", "grid.toml"):
        assert descriptive not in last  # names and paths are not differences
    assert _files(work / "zoo.zarr") == before


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ('arch = ["vanilla"]', "configurations differ"),
        ("seeds = 2", "seeds: zoo has [0, 1], this run has [0, 1, 2]"),
        ("trials = 0", "metadata.fixed_hparams: zoo has"),
    ],
)
def test_each_change_that_alters_networks_is_named(tmp_path, change, expected, capsys):
    from rnnzoo_train.presets import load_grid
    from rnnzoo_train.tasks import get_task
    from rnnzoo_train.zoo import ZarrZooWriter, ZooPlanError

    replacement = {
        'arch = ["vanilla"]': 'arch = ["gru"]',
        "seeds = 2": "seeds = 3",
        "trials = 0": "trials = 0\n[hparams]\nclip = 2.0\nlr = 0.01\ndecay = 0.5\nmomentum = 0.9",
    }[change]
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(SMALL)
    b.write_text(SMALL.replace(change, replacement))
    plan_a, plan_b = load_grid(a).plan("flipflop"), load_grid(b).plan("flipflop")
    task = get_task("flipflop", **plan_a.task_config["params"])
    path = tmp_path / "zoo.zarr"
    with ZarrZooWriter(path) as w:
        w.prepare_task(plan_a, task)
    with pytest.raises(ZooPlanError, match="different plan") as err:
        ZarrZooWriter(path).prepare_task(plan_b, task)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)
