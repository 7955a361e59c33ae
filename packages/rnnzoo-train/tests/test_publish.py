"""``publish``: one uncompressed zip per task, its sha256, and the registry."""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile

import numpy as np
import pytest

from rnnzoo_train.tasks import get_task
from rnnzoo_train.zoo import ZarrZooWriter, ZooError, open_zoo
from rnnzoo_train.zoo.publish import publish_zoo, read_registry
from rnnzoo_train.zoo.testing import small_plan, synthetic_result, write_synthetic_zoo


@pytest.fixture(scope="module")
def zoo_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("publish") / "demo.zarr"
    tasks = [get_task("flipflop", n_steps=8, n_probe=2), get_task("cdi", n_steps=6)]
    write_synthetic_zoo(path, tasks, seeds=(0,), cells=False)  # no torch: nox -s isolated-zoo
    return path


def test_one_stored_zip_per_task_with_registry_lines(zoo_path, tmp_path):
    out = tmp_path / "site"
    pub = publish_zoo(zoo_path, out, version="1.0")
    assert pub.name == "demo"
    assert set(pub.files) == {"flipflop", "cdi"}
    registry = read_registry((out / "registry.txt").read_text())
    for task, zip_path in pub.files.items():
        assert zip_path == out / "demo" / "1.0" / f"{task}.zarr.zip"
        digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
        assert registry[f"demo/1.0/{task}.zarr.zip"] == f"sha256:{digest}"
        with zipfile.ZipFile(zip_path) as zf:
            infos = zf.infolist()
            assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
            names = [i.filename for i in infos]
            assert names[0] == "zarr.json"
            assert all(n == "zarr.json" or n.startswith(f"{task}/") for n in names)
            assert not any(n.endswith((".partial", ".lock")) for n in names)
    assert (out / "demo" / "1.0" / "manifest.json").is_file()


def test_each_zip_is_a_complete_zoo_of_its_task(zoo_path, tmp_path):
    pub = publish_zoo(zoo_path, tmp_path / "site", version="1.0")
    original = open_zoo(zoo_path)
    one = open_zoo(pub.files["cdi"])
    assert one.tasks == ["cdi"]
    assert one.index("cdi").equals(original.index("cdi"))
    nid = "gru-tanh-u8-l2_1e-03-s000"
    for k, v in original.weights("cdi", nid).items():
        np.testing.assert_array_equal(one.weights("cdi", nid)[k], v)
    both = open_zoo([pub.files["flipflop"], pub.files["cdi"]])
    assert both.tasks == ["flipflop", "cdi"]
    assert both.index("flipflop").equals(original.index("flipflop"))


def test_publishing_is_reproducible_and_the_registry_accumulates(zoo_path, tmp_path):
    out = tmp_path / "site"
    first = publish_zoo(zoo_path, out, version="1.0")
    again = publish_zoo(zoo_path, tmp_path / "other", version="1.0")
    assert first.sha256 == again.sha256  # byte-identical zips
    publish_zoo(zoo_path, out, name="demo", version="1.1")
    publish_zoo(zoo_path, out, name="copy", version="1.0")
    registry = read_registry((out / "registry.txt").read_text())
    assert len(registry) == 6
    assert {f.split("/")[0] for f in registry} == {"demo", "copy"}


def test_incomplete_or_broken_zoos_are_not_published(zoo_path, tmp_path):
    task = get_task("flipflop", n_steps=8, n_probe=2)
    plan = small_plan(task, seeds=(0,))
    partial = tmp_path / "partial.zarr"
    with ZarrZooWriter(partial) as w:
        w.prepare_task(plan, task)
        first = synthetic_result(plan, task, plan.network_ids()[0], cells=False)
        w.write_results("flipflop", [first])
    with pytest.raises(ZooError, match="pending networks.*--allow-incomplete"):
        publish_zoo(partial, tmp_path / "site")
    assert publish_zoo(partial, tmp_path / "site", allow_incomplete=True).files
    broken = tmp_path / "broken.zarr"
    shutil.copytree(zoo_path, broken)
    chunk = next((broken / "cdi" / "networks" / "gru-tanh-u8" / "final_W_h").rglob("c/*/*/*"))
    chunk.write_bytes(chunk.read_bytes()[:-3] + b"xyz")
    with pytest.raises(ZooError, match=r"problem\(s\).*rnnzoo-train verify"):
        publish_zoo(broken, tmp_path / "site2")
    assert not (tmp_path / "site2" / "registry.txt").exists()


# -- a published version is immutable; publish never removes or overwrites what it did not
# -- write; it checks its target before any work (issue 10, sections 3 and 4) -------------


def _snapshot(root):
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def _other_zoo(zoo_path, tmp_path):
    """A copy of the zoo with different content (another creation time)."""
    import json

    other = tmp_path / "other.zarr"
    shutil.copytree(zoo_path, other)
    meta = json.loads((other / "zarr.json").read_text())
    meta["attributes"]["created"] = "2030-01-01T00:00:00+00:00"
    (other / "zarr.json").write_text(json.dumps(meta, indent=2))
    return other


def test_a_published_version_is_immutable(zoo_path, tmp_path):
    site = tmp_path / "site"
    publish_zoo(zoo_path, site, version="1")
    before = _snapshot(site)
    other = _other_zoo(zoo_path, tmp_path)
    with pytest.raises(ZooError, match=r"demo@1 is already published .*new --version"):
        publish_zoo(other, site, name="demo", version="1")
    assert _snapshot(site) == before
    # identical content again: nothing written, reported as unchanged
    again = publish_zoo(zoo_path, site, version="1")
    assert again.unchanged
    assert _snapshot(site) == before
    # the new content goes in as a new version, next to the old one
    assert not publish_zoo(other, site, name="demo", version="2").unchanged
    registry = read_registry((site / "registry.txt").read_text())
    assert {f.split("/")[1] for f in registry} == {"1", "2"}
    after = _snapshot(site)
    assert all(after[k] == v for k, v in before.items() if v and k != "registry.txt")


def test_files_publish_did_not_write_are_never_overwritten(zoo_path, tmp_path):
    site = tmp_path / "site"
    mine = site / "demo" / "1" / "cdi.zarr.zip"
    mine.parent.mkdir(parents=True)
    mine.write_bytes(b"my own file, not in any registry")
    before = _snapshot(site)
    with pytest.raises(ZooError, match=r"cdi\.zarr\.zip already exists with different content"):
        publish_zoo(zoo_path, site, version="1")
    assert _snapshot(site) == before
    # a complete file of an interrupted publish (not yet registered) is taken as it is
    pub = publish_zoo(zoo_path, tmp_path / "ref", version="1")
    mine.write_bytes(pub.files["cdi"].read_bytes())
    publish_zoo(zoo_path, site, version="1")
    assert set(read_registry((site / "registry.txt").read_text())) == {
        "demo/1/cdi.zarr.zip",
        "demo/1/flipflop.zarr.zip",
    }


@pytest.mark.parametrize(
    ("out", "match"),
    [
        ("file.txt", "is a file, not a directory"),
        ("file.txt/sub", "is a file, not a directory"),
        ("store.zarr", "is a Zarr store"),
        ("ZOO", "is the zoo .* itself"),
        ("ZOO/site", "inside the zoo"),
        ("badreg", "not an rnnzoo registry: line 2"),
        ("/proc/x", "not writable"),
    ],
)
def test_unusable_targets_are_refused_before_any_work(zoo_path, tmp_path, out, match):
    import zarr

    (tmp_path / "file.txt").write_text("mine\n")
    zarr.create_group(str(tmp_path / "store.zarr"), zarr_format=3)
    (tmp_path / "badreg").mkdir()
    (tmp_path / "badreg" / "registry.txt").write_text("# comment\nmy shopping list\n")
    before = _snapshot(tmp_path)
    zoo_before = _snapshot(zoo_path)
    target = str(zoo_path) if out.startswith("ZOO") else str(tmp_path / out)
    if out.startswith("ZOO/"):
        target = str(zoo_path / out.removeprefix("ZOO/"))
    if out.startswith("/"):
        target = out
    with pytest.raises(ZooError, match=match):
        publish_zoo(zoo_path, target, version="1")
    assert _snapshot(tmp_path) == before
    assert _snapshot(zoo_path) == zoo_before


def test_a_read_only_target_is_refused_before_any_work(zoo_path, tmp_path):
    from rnnzoo_train.zoo.testing import read_only

    site = tmp_path / "site"
    site.mkdir()
    with read_only(site):
        with pytest.raises(ZooError, match="not writable"):
            publish_zoo(zoo_path, site, version="1")
        with pytest.raises(ZooError, match="not writable"):
            publish_zoo(zoo_path, site / "new" / "dir", version="1")
    assert list(site.iterdir()) == []


def test_a_zoo_being_written_is_not_published(zoo_path, tmp_path):
    from rnnzoo_train.zoo.store import WriterLock

    busy = tmp_path / "busy.zarr"
    shutil.copytree(zoo_path, busy)
    lock = WriterLock(busy)
    lock.acquire()
    try:
        with pytest.raises(ZooError, match=rf"busy\.zarr is being written by pid {os.getpid()}"):
            publish_zoo(busy, tmp_path / "site", version="1")
    finally:
        lock.release()
    assert not (tmp_path / "site").exists()
    assert publish_zoo(busy, tmp_path / "site", version="1").files  # released: fine


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ("nosuch.zarr", "does not exist"),
        ("file.txt", "is a file, not a zoo directory"),
        ("x.zarr.zip", "not a zoo directory"),
        ("http://127.0.0.1:9/zoo.zarr", "not a zoo directory"),
        ("store.zarr", "not an rnnzoo zoo"),
        ("plain", "no zarr.json"),
    ],
)
def test_sources_that_are_not_zoo_directories(tmp_path, source, match):
    import zarr

    (tmp_path / "file.txt").write_text("mine\n")
    (tmp_path / "x.zarr.zip").write_text("mine\n")
    (tmp_path / "plain").mkdir()
    zarr.create_group(str(tmp_path / "store.zarr"), zarr_format=3)
    src = source if "://" in source else tmp_path / source
    with pytest.raises(ZooError, match=match):
        publish_zoo(src, tmp_path / "site", version="1")
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize(
    ("name", "version"), [("a b", "1"), ("demo", ""), ("../up", "1"), ("demo", ".."), ("x/y", "1")]
)
def test_invalid_names_and_versions(zoo_path, tmp_path, name, version):
    with pytest.raises(ZooError, match="invalid (name|version)"):
        publish_zoo(zoo_path, tmp_path / "site", name=name, version=version)
    assert not (tmp_path / "site").exists()


def test_malformed_registries_are_refused_line_by_line():
    good = "demo/1/flipflop.zarr.zip sha256:" + "0" * 64
    assert read_registry(f"# header\n{good}  # note\n\n") == {
        "demo/1/flipflop.zarr.zip": "sha256:" + "0" * 64
    }
    for bad in (
        "demo/1/flipflop.zarr.zip",
        "demo/1/flipflop.zarr.zip md5:abc",
        "demo/1/flipflop.zarr.zip sha256:" + "0" * 63,
        "../1/flipflop.zarr.zip sha256:" + "0" * 64,
        "/abs/flipflop.zarr.zip sha256:" + "0" * 64,
        good + " extra",
        good.replace("0" * 64, "1" * 64) + "\n" + good,
    ):
        with pytest.raises(ZooError, match="line [12] .*sha256:<64 hex digits>"):
            read_registry(good + "\n" + bad if "\n" not in bad else bad)


@pytest.mark.slow
def test_a_killed_publish_leaves_a_consistent_site_and_a_rerun_finishes_it(zoo_path, tmp_path):
    """SIGKILL while packing and while moving files into place: the registry only ever
    names complete files, and rerunning the command finishes the publication."""
    import signal
    import subprocess
    import sys
    import time

    site = tmp_path / "site"
    reference = publish_zoo(zoo_path, tmp_path / "ref", version="1")
    main = "import sys; from rnnzoo_train.cli import main; sys.exit(main(sys.argv[1:]))"
    cmd = [sys.executable, "-c", main, "publish", str(zoo_path), "--out", str(site)]
    cmd += ["--version", "1"]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    moments = {
        "packing": lambda: any(site.glob(".rnnzoo-publish-*")),
        "moving into place": lambda: (site / "demo" / "1").exists(),
    }
    for moment, reached in moments.items():
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while proc.poll() is None and not reached() and time.monotonic() < deadline:
            time.sleep(0.0005)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL, f"finished before {moment}"
        registry = site / "registry.txt"
        lines = read_registry(registry.read_text()) if registry.exists() else {}
        for fname, digest in lines.items():
            data = (site / fname).read_bytes()
            assert f"sha256:{hashlib.sha256(data).hexdigest()}" == digest, moment
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    assert read_registry((site / "registry.txt").read_text()) == read_registry(
        (tmp_path / "ref" / "registry.txt").read_text()
    )
    for task, path in reference.files.items():
        assert (site / "demo" / "1" / path.name).read_bytes() == path.read_bytes(), task
    leftovers = [p.name for p in site.iterdir() if p.name.startswith(".")]
    assert leftovers == []
