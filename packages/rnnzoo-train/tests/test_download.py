"""``download`` with pooch from a real HTTP server on 127.0.0.1 without directory listing."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np
import pytest

from rnnzoo_train.tasks import get_task
from rnnzoo_train.zoo import ZooDownloadError, open_zoo
from rnnzoo_train.zoo.download import (
    ZooOfflineWarning,
    cached_files,
    download_files,
    download_zoo,
    parse_spec,
)
from rnnzoo_train.zoo.publish import publish_zoo
from rnnzoo_train.zoo.testing import serve_directory, write_synthetic_zoo

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    base = tmp_path_factory.mktemp("download")
    path = base / "demo.zarr"
    tasks = [get_task("flipflop", n_steps=8, n_probe=2), get_task("sine", n_steps=8)]
    write_synthetic_zoo(path, tasks, seeds=(0,), cells=False)  # no torch: nox -s isolated-zoo
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


# -- "latest" is resolved against the server; bad inputs are one line and write nothing ----
# -- (issue 10, sections 3 and 4) -----------------------------------------------------------


def _tree(root):
    return (
        {
            str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))
        }
        if root.exists()
        else {}
    )


def _cli(argv, capsys):
    from rnnzoo_train.cli import main

    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_latest_follows_the_server_and_falls_back_to_the_cache_only_offline(
    published, tmp_path, capsys
):
    path, _ = published
    site, cache = tmp_path / "site", tmp_path / "cache"
    publish_zoo(path, site, name="zoo", version="1")
    with serve_directory(site) as srv:
        assert "/zoo/1/" in download_zoo("zoo", url=srv.url, cache=cache).location
        publish_zoo(path, site, name="zoo", version="2")
        srv.log.clear()
        assert "/zoo/2/" in download_zoo("zoo", url=srv.url, cache=cache).location
        assert srv.requests()[0] == "/registry.txt"  # asked, although 1 was cached
        # a pinned version that is cached is immutable: no request at all
        srv.log.clear()
        assert "/zoo/1/" in download_zoo("zoo@1", url=srv.url, cache=cache).location
        assert srv.log == []
        # the server lists 3, not yet downloaded: offline, the newest *complete* copy serves
        publish_zoo(
            path,
            site,
            name="zoo",
            version="3",
        )
        download_files("zoo@3", url=srv.url, cache=tmp_path / "elsewhere")
        (cache / "registries").rename(tmp_path / "saved-registries")
        download_files("zoo@2", url=srv.url, cache=cache)  # the cached registry lists 3
        code, out, err = _cli(
            ["download", "zoo", "--url", srv.url, "--cache", cache, "--no-progress"], capsys
        )
        assert code == 0
        assert "zoo/3/" in err
        url = srv.url
    shutil.rmtree(cache / "zoo" / "3")
    # the server is gone: latest = the newest version complete in the cache, with a notice
    with pytest.warns(ZooOfflineWarning, match=r"cannot reach .*using zoo@2, the newest"):
        assert "/zoo/2/" in download_zoo("zoo", url=url, cache=cache).location
    code, out, err = _cli(
        ["download", "zoo", "--url", url, "--cache", cache, "--no-progress"], capsys
    )
    assert code == 0, err
    notes = [ln for ln in err.splitlines() if ln.startswith("rnnzoo-train: note:")]
    assert len(notes) == 1
    assert "using zoo@2" in notes[0]
    assert "zoo/2/" in err
    assert "Traceback" not in err
    assert "/zoo/2/" in str(cached_files("zoo", url=url, cache=cache)["flipflop"])
    # nothing cached for that server and name: the plain error
    with pytest.raises(ZooDownloadError, match="cannot reach the zoo server"):
        download_zoo("other", url=url, cache=cache)


def _refused(argv, capsys, expect, *, untouched):
    """One line on stderr naming ``expect``, exit != 0, no traceback, nothing written."""
    before = {p: _tree(p) for p in untouched}
    code, out, err = _cli(argv, capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code != 0, (argv, out, err)
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert expect.lower() in lines[0].lower(), lines[0]
    assert {p: _tree(p) for p in untouched} == before
    return lines[0]


def test_server_side_failures_are_one_line_and_leave_the_cache_as_it_was(
    published, tmp_path, capsys
):
    path, site = published
    cache = tmp_path / "cache"
    bad = tmp_path / "bad"
    shutil.copytree(site, bad)
    with serve_directory(bad) as srv:
        common = ["--url", srv.url, "--cache", cache, "--no-progress"]
        keep = [cache, bad]
        _refused(["download", "nosuch", *common], capsys, "no zoo nosuch at", untouched=keep)
        _refused(
            ["download", "demo@9", *common], capsys, "no version 9 of zoo demo", untouched=keep
        )
        _refused(
            ["download", "demo", "--task", "cdi", *common],
            capsys,
            "has no task(s) cdi",
            untouched=keep,
        )
        for code in (404, 500, 503):
            srv.status["/registry.txt"] = code
            _refused(["download", "demo", *common], capsys, f"HTTP {code}", untouched=keep)
        srv.status.clear()
        # the registry lists a file the server does not serve
        srv.status["/demo/2026.1.12/sine.zarr.zip"] = 404
        _refused(["download", "demo", *common], capsys, "does not serve it", untouched=keep)
        srv.status.clear()
        # a tampered file (and the good file fetched before it is not kept either)
        zip_path = bad / "demo" / "2026.1.12" / "sine.zarr.zip"
        original = zip_path.read_bytes()
        zip_path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        _refused(["download", "demo", *common], capsys, "does not match its sha256", untouched=keep)
        zip_path.write_bytes(original)
        # a registry with a bad line
        reg = bad / "registry.txt"
        good_registry = reg.read_text()
        reg.write_text(good_registry + "../../etc/passwd sha256:" + "0" * 64 + "\n")
        _refused(
            ["download", "demo", *common], capsys, "not an rnnzoo registry: line", untouched=keep
        )
        # a file that matches its registered sha256 but is not a zoo
        junk = bad / "junk" / "1" / "flipflop.zarr.zip"
        junk.parent.mkdir(parents=True)
        junk.write_bytes(b"not a zip")
        digest = hashlib.sha256(b"not a zip").hexdigest()
        reg.write_text(good_registry + f"junk/1/flipflop.zarr.zip sha256:{digest}\n")
        _refused(["download", "junk", *common], capsys, "is not a zoo zip", untouched=keep)
        reg.write_text(good_registry)
        # a server that is not a zoo server at all
    with serve_directory(tmp_path / "bad" / "demo") as srv:
        _refused(
            ["download", "demo", "--url", srv.url, "--cache", cache],
            capsys,
            "HTTP 404",
            untouched=[cache],
        )
    assert not cache.exists()


def test_malformed_urls_specs_and_caches_are_refused_before_any_request(
    tmp_path, capsys, monkeypatch
):
    from rnnzoo_train.zoo.testing import read_only

    (tmp_path / "file.txt").write_text("mine\n")
    ro = tmp_path / "ro"
    ro.mkdir()
    with serve_directory(tmp_path) as srv:
        ok = ["--url", srv.url]
        cases = [
            (["demo", "--url", "notaurl"], "invalid zoo server URL 'notaurl'"),
            (["demo", "--url", "ftp://host/zoos"], "invalid zoo server URL"),
            (["demo", "--url", "http://"], "invalid zoo server URL"),
            (["a@b@c", *ok], "invalid zoo name"),
            (["demo@", *ok], "invalid zoo name"),
            (["@1", *ok], "invalid zoo name"),
            (["../demo", *ok], "invalid zoo name"),
            (["demo@../1", *ok], "invalid zoo name"),
            (["demo", "--cache", tmp_path / "file.txt", *ok], "is a file, not a directory"),
            (["demo", "--cache", tmp_path / "file.txt" / "sub", *ok], "is a file"),
        ]
        for argv, expect in cases:
            if "--cache" not in argv:
                argv = [*argv, "--cache", tmp_path / "cache"]
            _refused(["download", *argv], capsys, expect, untouched=[tmp_path])
        with read_only(ro):
            _refused(
                ["download", "demo", "--cache", ro, *ok],
                capsys,
                "not writable",
                untouched=[tmp_path],
            )
            _refused(
                ["download", "demo", "--cache", ro / "sub", *ok],
                capsys,
                "not writable",
                untouched=[tmp_path],
            )
        assert srv.log == []  # none of them asked the server
        monkeypatch.setenv("RNNZOO_ZOO_URL", "notaurl")
        _refused(
            ["download", "demo", "--cache", tmp_path / "c"],
            capsys,
            "$RNNZOO_ZOO_URL",
            untouched=[tmp_path],
        )


def test_a_read_only_cache_still_serves_what_it_holds(published, tmp_path):
    from rnnzoo_train.zoo.testing import read_only

    _, site = published
    cache = tmp_path / "cache"
    with serve_directory(site) as srv:
        download_files("demo@2026.1.12", url=srv.url, cache=cache)
        with read_only(cache, *cache.rglob("*")):
            assert download_zoo("demo@2026.1.12", url=srv.url, cache=cache).tasks
            assert "/2026.1.12/" in download_zoo("demo", url=srv.url, cache=cache).location
            with pytest.raises(ZooDownloadError, match="not writable"):
                download_files("demo@2026.1.5", url=srv.url, cache=cache)
