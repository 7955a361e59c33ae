"""``download`` with pooch from a real HTTP server on 127.0.0.1 without directory listing."""

from __future__ import annotations

import numpy as np
import pytest

from rnnzoo_train.tasks import get_task
from rnnzoo_train.zoo import ZooDownloadError, open_zoo
from rnnzoo_train.zoo.download import download_files, download_zoo, parse_spec
from rnnzoo_train.zoo.publish import publish_zoo
from rnnzoo_train.zoo.testing import serve_directory, write_synthetic_zoo

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    base = tmp_path_factory.mktemp("download")
    path = base / "demo.zarr"
    write_synthetic_zoo(
        path, [get_task("flipflop", n_steps=8, n_probe=2), get_task("sine", n_steps=8)], seeds=(0,)
    )
    site = base / "site"
    publish_zoo(path, site, version="2026.1.5")
    publish_zoo(path, site, version="2026.1.12")
    return path, site


def test_download_opens_the_zoo_and_a_second_download_hits_the_cache(published, tmp_path):
    path, site = published
    cache = tmp_path / "cache"
    original = open_zoo(path)
    with serve_directory(site) as srv:
        zoo = download_zoo("demo", url=srv.url, cache=cache)
        assert zoo.tasks == ["flipflop", "sine"]
        assert "/2026.1.12/" in zoo.location  # the latest version
        assert zoo.index("sine").equals(original.index("sine"))
        nid = "vanilla-relu-u6-l2_1e-03-s000"
        for k, v in original.weights("flipflop", nid).items():
            np.testing.assert_array_equal(zoo.weights("flipflop", nid)[k], v)
        assert "GET /registry.txt 200" in srv.log
        assert len(srv.requests()) == 3  # the registry and two zips
        srv.log.clear()
        again = download_zoo("demo@2026.1.12", url=srv.url, cache=cache)
        assert srv.log == []  # no request at all
        assert again.index("flipflop").equals(zoo.index("flipflop"))
        older = download_zoo("demo@2026.1.5", url=srv.url, cache=cache, tasks=["sine"])
        assert older.tasks == ["sine"]
    # the cache also serves when the server is gone
    assert download_zoo("demo@2026.1.12", url=srv.url, cache=cache).tasks == ["flipflop", "sine"]


def test_the_base_url_comes_from_the_environment(published, tmp_path, monkeypatch):
    _, site = published
    with serve_directory(site) as srv:
        monkeypatch.setenv("RNNZOO_ZOO_URL", srv.url)
        monkeypatch.setenv("RNNZOO_CACHE", str(tmp_path / "envcache"))
        files = download_files("demo", tasks=["flipflop"])
        assert srv.requests() == ["/registry.txt", "/demo/2026.1.12/flipflop.zarr.zip"]
    assert files["flipflop"].is_relative_to(tmp_path / "envcache")


def test_a_corrupted_file_on_the_server_is_rejected(published, tmp_path):
    import shutil

    _, site = published
    bad_site = tmp_path / "site"
    shutil.copytree(site, bad_site)
    zip_path = bad_site / "demo" / "2026.1.12" / "sine.zarr.zip"
    data = bytearray(zip_path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit
    zip_path.write_bytes(bytes(data))
    cache = tmp_path / "cache"
    with (
        serve_directory(bad_site) as srv,
        pytest.raises(ZooDownloadError, match="does not match its sha256"),
    ):
        download_zoo("demo", url=srv.url, cache=cache)
    assert not (cache / "demo" / "2026.1.12" / "sine.zarr.zip").exists()
    # and a corrupted file in the cache is replaced by a good download
    with serve_directory(site) as srv:
        download_zoo("demo", url=srv.url, cache=cache)
        cached = cache / "demo" / "2026.1.12" / "flipflop.zarr.zip"
        cached.write_bytes(cached.read_bytes()[:-10])
        srv.log.clear()
        zoo = download_zoo("demo", url=srv.url, cache=cache)
        assert "/demo/2026.1.12/flipflop.zarr.zip" in srv.requests()
        assert zoo.tasks == ["flipflop", "sine"]


def test_an_unreachable_server_is_a_clear_error(tmp_path):
    with serve_directory(tmp_path) as srv:
        url = srv.url  # the port is free again once the server stops
    with pytest.raises(ZooDownloadError, match=r"cannot reach the zoo server .*RNNZOO_ZOO_URL"):
        download_zoo("demo", url=url, cache=tmp_path / "cache")


def test_unknown_names_and_versions(published, tmp_path):
    _, site = published
    with serve_directory(site) as srv:
        with pytest.raises(ZooDownloadError, match=r"no zoo paper@1 .*demo@2026\.1\.12"):
            download_zoo("paper@1", url=srv.url, cache=tmp_path)
        with pytest.raises(ZooDownloadError, match="no task"):
            download_zoo("demo", url=srv.url, cache=tmp_path, tasks=["cdi"])
    with serve_directory(tmp_path) as srv, pytest.raises(ZooDownloadError, match="HTTP 404"):
        download_zoo("demo", url=srv.url, cache=tmp_path / "c")
    assert parse_spec("demo@1.2") == ("demo", "1.2")
    with pytest.raises(ZooDownloadError, match="NAME@VERSION"):
        parse_spec("demo@@")
