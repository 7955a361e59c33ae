"""``publish``: one uncompressed zip per task, its sha256, and the registry."""

from __future__ import annotations

import hashlib
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
    write_synthetic_zoo(
        path, [get_task("flipflop", n_steps=8, n_probe=2), get_task("cdi", n_steps=6)], seeds=(0,)
    )
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
        w.write_results("flipflop", [synthetic_result(plan, task, plan.network_ids()[0])])
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
