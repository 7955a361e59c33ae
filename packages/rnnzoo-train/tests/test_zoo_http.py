"""Reading a zoo directly over HTTP from a server that refuses directory listings."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import zarr

from rnnzoo_train.tasks import get_task
from rnnzoo_train.zoo import ZarrZooWriter, ZooError, open_zoo
from rnnzoo_train.zoo.testing import serve_directory, small_plan, synthetic_result

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    task = get_task("sine", n_steps=10, n_probe=2)
    plan = small_plan(task)
    with ZarrZooWriter(root / "zoo.zarr") as w:
        w.prepare_task(plan, task)
        w.write_results("sine", [synthetic_result(plan, task, i) for i in plan.network_ids()])
    return root


def test_the_server_refuses_directory_listings(site):
    import requests

    with serve_directory(site) as srv:
        assert requests.get(f"{srv.url}/zoo.zarr/", timeout=10).status_code == 404
        assert requests.get(f"{srv.url}/zoo.zarr/zarr.json", timeout=10).status_code == 200


def test_open_zoo_over_http_reads_everything(site):
    local = open_zoo(site / "zoo.zarr")
    with serve_directory(site) as srv:
        remote = open_zoo(f"{srv.url}/zoo.zarr")
        assert remote.tasks == ["sine"]
        assert remote.index("sine").equals(local.index("sine"))
        nid = "lstm-tanh-u4-l2_1e-04-s001"
        for k, v in local.weights("sine", nid).items():
            np.testing.assert_array_equal(remote.weights("sine", nid)[k], v)
        h = remote.hidden_states("sine", [nid])["lstm-tanh-u4"]["hidden_trained"].values
        np.testing.assert_array_equal(
            h, local.hidden_states("sine", [nid])["lstm-tanh-u4"]["hidden_trained"].values
        )
        assert remote.network("sine", nid).cell.arch == "lstm"
        # nothing was listed: every request named a file
        assert all(not p.endswith("/") for p in srv.requests())
        with pytest.raises(ZooError, match="read-only"):
            remote.write_analysis("sine", "x", local.index("sine").to_xarray())


def test_opening_the_tree_reads_no_per_network_chunk(site):
    """String coordinates are converted to str lazily: one request per chunk only when used."""
    with serve_directory(site) as srv:
        zoo = open_zoo(f"{srv.url}/zoo.zarr")
        srv.log.clear()
        tree = zoo.tree
        chunks = [p for p in srv.requests() if "/networks/" in p and "/c/" in p]
        # only each group's network-id index (one chunk for the group) is read
        assert all(p.endswith("/network/c/0") for p in chunks), chunks
        n = zoo.index("sine").groupby("group").size()["gru-tanh-u8"]
        srv.log.clear()
        status = tree["sine/networks/gru-tanh-u8"]["status"].values
        assert status.dtype == object
        assert set(status) == {"ok"}
        requested = [p for p in srv.requests() if "/gru-tanh-u8/status/c/" in p]
        assert len(requested) == n  # one chunk per network, read on use


def test_without_consolidated_metadata_http_fails_loudly_not_empty(site, tmp_path):
    broken = tmp_path / "site"
    shutil.copytree(site, broken)
    meta = json.loads((broken / "zoo.zarr" / "zarr.json").read_text())
    del meta["consolidated_metadata"]
    (broken / "zoo.zarr" / "zarr.json").write_text(json.dumps(meta))
    with serve_directory(broken) as srv:
        # the pitfall (DESIGN.md section 3): plain zarr opens it EMPTY and raises nothing
        store = zarr.storage.FsspecStore.from_url(f"{srv.url}/zoo.zarr", read_only=True)
        group = zarr.open_group(store, mode="r", use_consolidated=False, zarr_format=3)
        assert list(group.members()) == []
        # rnnzoo refuses with an actionable message
        with pytest.raises(ZooError, match="no consolidated metadata.*verify --repair"):
            open_zoo(f"{srv.url}/zoo.zarr")


def test_an_unreachable_url_is_a_clear_error():
    with serve_directory(".") as srv:
        url = srv.url
    with pytest.raises((ZooError, FileNotFoundError, OSError)):
        open_zoo(f"{url}/zoo.zarr")
