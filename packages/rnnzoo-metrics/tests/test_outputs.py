"""Outputs: nothing rnnzoo-metrics did not write is replaced; --overwrite is atomic.

Real files, real subprocesses killed at each stage of publishing (the failpoints of
:mod:`rnnzoo_metrics.atomic`), real read-only folders (``chattr +i`` as root).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rnnzoo_metrics as rm
from rnnzoo_metrics.atomic import FAILPOINT_ENV
from rnnzoo_metrics.cli import main
from rnnzoo_metrics.io import read_result
from rnnzoo_metrics.targets import RESULT_ATTR, identify

pytestmark = pytest.mark.filterwarnings("ignore::rnnzoo_metrics.PluginWarning")
xr = pytest.importorskip("xarray")


def tree(root: Path) -> dict[str, str]:
    """Every path under ``root`` with the sha256 of each file (``dir`` for folders)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@contextlib.contextmanager
def read_only(path: Path):
    """Make ``path`` read-only even for root (``chattr +i``), or skip."""
    if os.geteuid() == 0:
        r = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"chattr +i not available here: {r.stderr.strip()}")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    else:
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222)
        try:
            yield
        finally:
            path.chmod(mode)


@pytest.fixture
def folder(tmp_path):
    """Four networks as .npy files."""
    f = tmp_path / "nets"
    f.mkdir()
    for i in range(4):
        np.save(f / f"net{i}.npy", np.random.default_rng(i).normal(size=(40, 5)))
    return f


def cli(*args: str) -> int:
    return main([*map(str, args)])


def pairwise_cli(folder, out, metric="svcca", *extra) -> int:
    return cli("pairwise", folder, "-m", metric, "-o", out, "--no-progress", *extra)


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_overwrite_replaces_a_previous_result_and_leaves_nothing_else(folder, tmp_path, suffix):
    if suffix == ".zarr":
        pytest.importorskip("zarr")
    out = tmp_path / f"d{suffix}"
    assert pairwise_cli(folder, out, "svcca") == 0
    assert identify(out).kind == "pairwise"
    assert pairwise_cli(folder, out, "cka") == 2  # refused without --overwrite
    assert read_result(out).attrs["metric"] == "svcca"
    assert pairwise_cli(folder, out, "cka", "--overwrite") == 0
    d = read_result(out)
    assert d.attrs["metric"] == "cka"
    direct = rm.pairwise([np.load(folder / f"net{i}.npy") for i in range(4)], "cka", progress=False)
    np.testing.assert_array_equal(d.values, direct.values)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d" + suffix, "nets"]  # no temporaries


def test_results_carry_the_marker_and_the_usual_permissions(folder, tmp_path):
    pytest.importorskip("zarr")
    assert pairwise_cli(folder, tmp_path / "d.nc") == 0
    assert cli("embed", tmp_path / "d.nc", "-o", tmp_path / "e.zarr") == 0
    with xr.open_dataset(tmp_path / "d.nc") as ds:
        assert ds.attrs[RESULT_ATTR] == "pairwise"
        assert ds.attrs["rnnzoo_metrics_version"] == rm.__version__
    assert identify(tmp_path / "e.zarr").kind == "embedding"
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "d.nc").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "e.zarr").stat().st_mode & 0o777 == 0o777 & ~umask


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize(
    "make",
    ["previous-other-kind", "user-folder", "user-file", "foreign-netcdf", "foreign-zarr"],
)
def test_a_refused_command_leaves_the_target_byte_identical(folder, tmp_path, make, overwrite):
    if make == "previous-other-kind":
        pytest.importorskip("zarr")
        assert pairwise_cli(folder, tmp_path / "d.nc") == 0
        assert cli("embed", tmp_path / "d.nc", "-o", tmp_path / "t.zarr") == 0
        target = tmp_path / "t.zarr"
    elif make == "user-folder":
        target = tmp_path / "t.zarr"
        target.mkdir()
        (target / "thesis.tex").write_text("years of work\n")
    elif make == "user-file":
        target = tmp_path / "t.nc"
        target.write_text("not ours\n")
    elif make == "foreign-netcdf":
        target = tmp_path / "t.nc"
        xr.Dataset({"temperature": ("x", np.arange(3.0))}).to_netcdf(target)
    else:
        zarr = pytest.importorskip("zarr")
        target = tmp_path / "t.zarr"
        zarr.create_group(str(target), zarr_format=3, attributes={"owner": "someone"})
    before = tree(tmp_path)
    flags = ["--overwrite"] if overwrite else []
    assert pairwise_cli(folder, target, "cka", *flags) == 2
    assert tree(tmp_path) == before


def _legacy_write(d, path: Path) -> None:
    """How rnnzoo-metrics 0.1.0 wrote results: no marker in the root attributes."""
    from rnnzoo_metrics.store import quiet_zarr

    ds = d.to_dataset(name=d.name)
    for name in list(ds.coords):
        kind = ds[name].dtype.kind
        if path.suffix == ".nc" and kind in "Ob":
            ds[name] = ds[name].astype(str)
        elif path.suffix == ".zarr" and kind == "U":
            ds[name] = ds[name].astype(object)
    if path.suffix == ".zarr":
        with quiet_zarr():
            ds.to_zarr(path, mode="w", consolidated=True, zarr_format=3)
    else:
        ds.to_netcdf(path)


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_results_of_older_versions_are_recognised_by_their_attributes(folder, tmp_path, suffix):
    if suffix == ".zarr":
        pytest.importorskip("zarr")
    nets = [np.load(folder / f"net{i}.npy") for i in range(4)]
    d = rm.pairwise(nets, "svcca", progress=False)
    _legacy_write(d, tmp_path / f"old{suffix}")
    _legacy_write(rm.embed(d), tmp_path / f"emb{suffix}")
    old = identify(tmp_path / f"old{suffix}")
    assert (old.kind, old.legacy) == ("pairwise", True)
    assert identify(tmp_path / f"emb{suffix}").kind == "embedding"
    assert pairwise_cli(folder, tmp_path / f"emb{suffix}", "cka", "--overwrite") == 2
    assert pairwise_cli(folder, tmp_path / f"old{suffix}", "cka", "--overwrite") == 0
    now = identify(tmp_path / f"old{suffix}")
    assert (now.kind, now.legacy) == ("pairwise", False)
    assert read_result(tmp_path / f"old{suffix}").attrs["metric"] == "cka"


def _run_killed(args: list[str], stage: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env[FAILPOINT_ENV] = stage
    return subprocess.run(
        [sys.executable, "-m", "rnnzoo_metrics", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_a_kill_at_any_stage_of_overwrite_leaves_the_old_or_the_new_result(
    folder, tmp_path, suffix
):
    if suffix == ".zarr":
        pytest.importorskip("zarr")
    out = tmp_path / f"d{suffix}"
    nets = [np.load(folder / f"net{i}.npy") for i in range(4)]
    old = rm.pairwise(nets, "svcca", progress=False)
    new = rm.pairwise(nets, "cka", progress=False)
    for stage, expected in (("written", old), ("swapped", new)):
        assert pairwise_cli(folder, out, "svcca", "--overwrite") == 0  # the old result
        args = ["pairwise", str(folder), "-m", "cka", "-o", str(out), "--overwrite"]
        r = _run_killed([*args, "--no-progress"], stage)
        assert r.returncode == -signal.SIGKILL, r.stderr
        got = read_result(out)  # readable, complete, and exactly one of the two
        assert got.attrs["metric"] == expected.attrs["metric"]
        np.testing.assert_array_equal(got.values, expected.values)
        assert identify(out).kind == "pairwise"
        # what a kill leaves is hidden, named after the target, and never the target
        left = [p.name for p in tmp_path.iterdir() if p.name not in ("nets", out.name)]
        assert all(n.startswith(f".{out.name}.") and n.endswith(".partial") for n in left)
    assert pairwise_cli(folder, out, "cka", "--overwrite") == 0  # and the next run works


def test_read_only_locations_are_refused_before_anything_is_computed(folder, tmp_path, capfd):
    ro = tmp_path / "ro"
    ro.mkdir()
    x = np.load(folder / "net1.npy")
    x[3, 2] = np.nan  # a bad network: if it were read first, its error would come first
    np.save(folder / "net1.npy", x)
    with read_only(ro):
        for extra in (["-o", ro / "d.nc"], ["-o", tmp_path / "d.nc", "--store", ro / "t.zarr"]):
            capfd.readouterr()
            assert cli("pairwise", folder, *extra, "--no-progress") == 2
            err = capfd.readouterr().err
            assert "read-only" in err, err
            assert "NaN" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nets", "ro"]
    assert list(ro.iterdir()) == []


class CountingList(list):
    loads = 0

    def __getitem__(self, i):
        CountingList.loads += 1
        return super().__getitem__(i)


def test_the_library_store_is_checked_before_any_network_is_prepared(tmp_path):
    pytest.importorskip("zarr")
    nets = CountingList(np.random.default_rng(i).normal(size=(30, 3)) for i in range(3))
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me\n")
    ro = tmp_path / "ro"
    ro.mkdir()
    before = tree(tmp_path)
    CountingList.loads = 0
    with pytest.raises(rm.MetricsError, match="not an rnnzoo-metrics tile store"):
        rm.pairwise(nets, "cka", store=user, progress=False)
    with read_only(ro), pytest.raises(rm.MetricsError, match="read-only"):
        rm.pairwise(nets, "cka", store=ro / "t.zarr", progress=False)
    assert CountingList.loads == 0
    assert tree(tmp_path) == before


def test_a_store_is_created_only_after_every_network_passed_its_checks(tmp_path):
    pytest.importorskip("zarr")
    nets = [np.random.default_rng(i).normal(size=(30, 3)) for i in range(3)]
    nets[2] = nets[2][:20]
    with pytest.raises(rm.InputError, match="20 samples"):
        rm.pairwise(nets, "cka", store=tmp_path / "t.zarr", progress=False)
    assert not (tmp_path / "t.zarr").exists()


def test_plot_overwrites_only_its_own_figures(folder, tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    assert pairwise_cli(folder, tmp_path / "d.nc") == 0
    assert cli("embed", tmp_path / "d.nc", "-o", tmp_path / "e.nc") == 0
    png = tmp_path / "e.png"
    assert cli("plot", tmp_path / "e.nc", "-o", png) == 0
    assert identify(png).kind == "figure"
    first = png.read_bytes()
    assert cli("plot", tmp_path / "d.nc", "-o", png) == 2  # exists: needs --overwrite
    assert png.read_bytes() == first
    assert cli("plot", tmp_path / "d.nc", "-o", png, "--overwrite") == 0
    assert png.read_bytes() != first
    assert identify(png).kind == "figure"
    fig = Figure()
    fig.add_subplot().plot([0, 1])
    fig.savefig(tmp_path / "mine.png")  # the user's own matplotlib figure
    before = (tmp_path / "mine.png").read_bytes()
    assert cli("plot", tmp_path / "e.nc", "-o", tmp_path / "mine.png", "--overwrite") == 2
    assert (tmp_path / "mine.png").read_bytes() == before
