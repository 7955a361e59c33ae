"""Every malformed input of ``rnnzoo-train publish`` and ``rnnzoo-train download`` is refused.

One line on stderr, exit status != 0, no traceback, and the sandbox byte-identical (the rules
of ``conftest.py``): a refused publish writes no file, a refused download leaves no cache.

Rows that need a zoo server use ``{URL}``: one static server on 127.0.0.1 for the module,
serving, outside the sandbox, sites published from a torch-free synthetic zoo (``ok``) and
damaged copies of it (a registry with a bad line, a tampered zip, a listed file the server
does not have, a file that matches its sha256 but is not a zoo, an HTML page as registry, a
server error). Other rows' own data (an already published version, a foreign file where a
zip would go, a zoo whose writer lock is held...) are written by ``setup=`` callables.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

T = "rnnzoo-train"
URL = "{URL}"
_HELD: list = []  # writer locks held by a row's setup (released after the row)


# -- data the rows need ---------------------------------------------------------------------
def file(name: str, data: str):
    def setup(root: Path) -> None:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(data)

    return setup


def published(site: str = "site", name: str = "zoo", version: str = "1"):
    """``setup``: the sandbox zoo published as ``name@version`` into ``site``."""

    def setup(root: Path) -> None:
        from rnnzoo_train.zoo.publish import publish_zoo

        publish_zoo(root / "zoo.zarr", root / site, name=name, version=version)

    return setup


def other_zoo(name: str = "other.zarr"):
    """``setup``: a copy of the sandbox zoo with different content (its creation time)."""

    def setup(root: Path) -> None:
        shutil.copytree(root / "zoo.zarr", root / name)
        meta = json.loads((root / name / "zarr.json").read_text())
        meta["attributes"]["created"] = "2030-01-01T00:00:00+00:00"
        (root / name / "zarr.json").write_text(json.dumps(meta, indent=2))

    return setup


def both(*setups):
    def setup(root: Path) -> None:
        for s in setups:
            s(root)

    return setup


def broken_zoo(root: Path) -> None:
    """A copy of the zoo with one weight chunk corrupted (verify finds it)."""
    shutil.copytree(root / "zoo.zarr", root / "broken.zarr")
    chunk = sorted((root / "broken.zarr" / "flipflop" / "networks").rglob("final_W_h/c/*/*/*"))[0]
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))


def pending_zoo(root: Path) -> None:
    """A zoo with networks still pending (one of four written)."""
    from rnnzoo_train.tasks import get_task
    from rnnzoo_train.zoo.testing import write_synthetic_zoo

    write_synthetic_zoo(
        root / "pending.zarr",
        [get_task("flipflop", n_steps=8, n_probe=2)],
        seeds=(0,),
        n_written=1,
        cells=False,
    )


def locked(path: str):
    """``setup``: the writer lock of ``path`` held (as by a running ``generate``)."""

    def setup(root: Path) -> None:
        from rnnzoo_train.zoo.store import WriterLock

        lock = WriterLock(root / path)
        lock.acquire()
        _HELD.append(lock)

    return setup


@pytest.fixture(autouse=True)
def _release_locks():
    yield
    while _HELD:
        _HELD.pop().release()


# -- the zoo server -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Sites for the ``{URL}`` rows, served on 127.0.0.1 (outside every sandbox)."""
    from rnnzoo_train.tasks import get_task
    from rnnzoo_train.zoo.publish import publish_zoo
    from rnnzoo_train.zoo.testing import serve_directory, write_synthetic_zoo

    base = tmp_path_factory.mktemp("distribution")
    zoo = base / "zoo.zarr"
    tasks = [get_task("flipflop", n_steps=8, n_probe=2), get_task("cdi", n_steps=6)]
    write_synthetic_zoo(zoo, tasks, seeds=(0,), cells=False)
    www = base / "www"
    for version in ("1", "2"):
        publish_zoo(zoo, www / "ok", name="zoo", version=version)
    good = (www / "ok" / "registry.txt").read_text()
    for site in ("badreg", "tampered", "missing", "junk", "html", "err500"):
        shutil.copytree(www / "ok", www / site)
    (www / "badreg" / "registry.txt").write_text(good + "../../etc/passwd sha256:" + "0" * 64)
    tampered = www / "tampered" / "zoo" / "2" / "flipflop.zarr.zip"
    data = bytearray(tampered.read_bytes())
    data[len(data) // 2] ^= 0x01
    tampered.write_bytes(bytes(data))
    (www / "missing" / "zoo" / "2" / "cdi.zarr.zip").unlink()
    junk = www / "junk" / "junk" / "1" / "flipflop.zarr.zip"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"this is not a zip")
    digest = hashlib.sha256(b"this is not a zip").hexdigest()
    (www / "junk" / "registry.txt").write_text(f"{good}junk/1/flipflop.zarr.zip sha256:{digest}\n")
    (www / "html" / "registry.txt").write_text("<html><body>Welcome!</body></html>\n")
    with serve_directory(www) as srv:
        srv.status["/err500/registry.txt"] = 500
        srv.status["/err503/registry.txt"] = 503
        yield srv


# -- the table ------------------------------------------------------------------------------
def row(argv, expect=(), *, id, **options):
    """One row; ``--no-progress`` is added (a progress bar is not an error line)."""
    return pytest.param([T, *argv, "--no-progress"], tuple(expect), options, id=id)


PUBLISH = [
    # where the zips would go
    row(
        ["publish", "zoo.zarr", "--out", "text.txt", "--version", "1"],
        ["text.txt", "is a file, not a directory", "--out"],
        id="publish-out-a-file",
    ),
    row(
        ["publish", "zoo.zarr", "--out", "text.txt/site", "--version", "1"],
        ["text.txt", "is a file"],
        id="publish-out-below-a-file",
    ),
    row(
        ["publish", "zoo.zarr", "--out", "fake.zip", "--version", "1"],
        ["is a file"],
        id="publish-out-a-zip",
    ),
    row(
        ["publish", "zoo.zarr", "--out", "notzoo.zarr", "--version", "1"],
        ["notzoo.zarr", "Zarr store"],
        id="publish-out-a-zarr-store",
    ),
    row(
        ["publish", "zoo.zarr", "--out", "zoo.zarr", "--version", "1"],
        ["zoo.zarr", "itself"],
        id="publish-out-the-zoo-itself",
    ),
    row(
        ["publish", "zoo.zarr", "--out", "zoo.zarr/site", "--version", "1"],
        ["inside the zoo"],
        id="publish-out-inside-the-zoo",
    ),
    row(
        ["publish", "zoo.zarr", "--out", "truncated.zarr", "--version", "1"],
        ["Zarr store"],
        id="publish-out-a-damaged-store",
    ),
    row(
        ["publish", "zoo.zarr", "--out", "/proc/rnnzoo-site", "--version", "1"],
        ["not writable"],
        id="publish-out-proc",
    ),
    row(
        ["publish", "zoo.zarr", "--out", "notes", "--version", "1"],
        ["notes", "not writable", "--out"],
        id="publish-out-read-only",
        read_only=("notes",),
    ),
    row(
        ["publish", "zoo.zarr", "--out", "site/new", "--version", "1"],
        ["not writable"],
        id="publish-out-in-a-read-only-folder",
        read_only=(".",),
    ),
    row(
        ["publish", "zoo.zarr", "--out", "notes", "--version", "1"],
        ["registry.txt", "not an rnnzoo registry", "line 1"],
        id="publish-out-a-foreign-registry",
        setup=file("notes/registry.txt", "milk, eggs, bread\n"),
    ),
    row(
        ["publish", "zoo.zarr", "--out", "site", "--version", "1"],
        ["not an rnnzoo registry", "line 2"],
        id="publish-out-registry-with-a-bad-line",
        setup=file("site/registry.txt", f"zoo/1/cdi.zarr.zip sha256:{'a' * 64}\nzoo/1 oops\n"),
    ),
    row(
        ["publish", "zoo.zarr", "--out", "site", "--version", "1"],
        ["is being written by pid"],
        id="publish-out-being-published-into",
        setup=both(file("site/keep.txt", "x"), locked("site")),
    ),
    row(
        ["publish", "zoo.zarr", "--out", "", "--version", "1"],
        ["--out is empty"],
        id="publish-out-empty",
    ),
    # immutability: a published version never changes
    row(
        ["publish", "other.zarr", "--out", "site", "--name", "zoo", "--version", "1"],
        ["zoo@1 is already published", "immutable", "new --version"],
        id="publish-a-published-version-with-other-content",
        setup=both(published(), other_zoo()),
    ),
    row(
        ["publish", "zoo.zarr", "--out", "site", "--version", "1"],
        ["flipflop.zarr.zip already exists with different content", "new --version"],
        id="publish-over-a-foreign-file",
        setup=file("site/zoo/1/flipflop.zarr.zip", "mine\n"),
    ),
    row(
        ["publish", "zoo.zarr", "--out", "site", "--version", "1"],
        ["manifest.json already exists with different content"],
        id="publish-over-a-foreign-manifest",
        setup=file("site/zoo/1/manifest.json", "{}\n"),
    ),
    # what is published
    row(
        ["publish", "nosuch.zarr", "--out", "site", "--version", "1"],
        ["nosuch.zarr", "does not exist"],
        id="publish-missing-zoo",
    ),
    row(
        ["publish", "text.txt", "--out", "site", "--version", "1"],
        ["text.txt", "not a zoo directory"],
        id="publish-a-text-file",
    ),
    row(
        ["publish", "fake.zip", "--out", "site", "--version", "1"],
        ["fake.zip", "not a zoo directory"],
        id="publish-a-zip",
    ),
    row(
        ["publish", "http://127.0.0.1:9/zoo.zarr", "--out", "site", "--version", "1"],
        ["not a zoo directory"],
        id="publish-a-url",
    ),
    row(
        ["publish", "notzoo.zarr", "--out", "site", "--version", "1"],
        ["notzoo.zarr", "not an rnnzoo zoo"],
        id="publish-a-zarr-store-not-a-zoo",
    ),
    row(
        ["publish", "truncated.zarr", "--out", "site", "--version", "1"],
        ["truncated.zarr"],
        id="publish-a-truncated-zoo",
    ),
    row(
        ["publish", "notes", "--out", "site", "--version", "1"],
        ["notes", "zarr.json"],
        id="publish-a-folder-of-notes",
    ),
    row(
        ["publish", "broken.zarr", "--out", "site", "--version", "1"],
        ["broken.zarr", "problem(s)", "verify"],
        id="publish-a-damaged-zoo",
        setup=broken_zoo,
    ),
    row(
        ["publish", "pending.zarr", "--out", "site", "--version", "1"],
        ["pending networks", "--allow-incomplete"],
        id="publish-an-unfinished-zoo",
        setup=pending_zoo,
    ),
    row(
        ["publish", "zoo.zarr", "--out", "site", "--version", "1"],
        ["zoo.zarr is being written by pid"],
        id="publish-a-zoo-being-written",
        setup=locked("zoo.zarr"),
    ),
    # names and versions
    *[
        row(["publish", "zoo.zarr", "--out", "site", *opts], ["invalid", what], id=f"publish-{i}")
        for i, (opts, what) in {
            "version-with-space": (["--version", "a b"], "version"),
            "version-empty": (["--version", ""], "version"),
            "version-dotdot": (["--version", ".."], "version"),
            "version-slash": (["--version", "1/2"], "version"),
            "name-traversal": (["--name", "../x", "--version", "1"], "name"),
            "name-empty": (["--name", "", "--version", "1"], "name"),
            "name-hidden": (["--name", ".zoo", "--version", "1"], "name"),
        }.items()
    ],
    # the command line itself
    row(["publish", "zoo.zarr"], ["--out"], id="publish-without-out"),
    row(["publish", "--out", "site"], ["path"], id="publish-without-zoo"),
    row(["publish", "zoo.zarr", "--out", "site", "--bogus"], ["--bogus"], id="publish-bad-option"),
]

DOWNLOAD = [
    # the server address
    *[
        row(
            ["download", "zoo", "--url", url, "--cache", "cache"],
            ["invalid zoo server URL"],
            id=f"download-url-{i}",
        )
        for i, url in {
            "not-a-url": "notaurl",
            "ftp": "ftp://example.org/zoos",
            "no-host": "http://",
            "file": "file:///tmp/site",
            "bad-ipv6": "http://[::1",
            "bad-port": "http://127.0.0.1:port",
        }.items()
    ],
    row(
        ["download", "zoo", "--url", "", "--cache", "cache"],
        ["--url is empty"],
        id="download-url-empty",
    ),
    row(
        ["download", "zoo", "--url", URL + "/ok", "--cache", ""],
        ["--cache is empty"],
        id="download-cache-empty",
    ),
    row(
        ["download", "zoo", "--url", "http://127.0.0.1:9", "--cache", "cache"],
        ["cannot reach the zoo server"],
        id="download-unreachable-server",
    ),
    # the zoo's name
    *[
        row(
            ["download", spec, "--url", URL + "/ok", "--cache", "cache"],
            ["invalid zoo name"],
            id=f"download-spec-{i}",
        )
        for i, spec in {
            "two-ats": "zoo@1@2",
            "empty-version": "zoo@",
            "no-name": "@1",
            "empty": "",
            "traversal": "../zoo",
            "version-traversal": "zoo@../1",
            "space": "my zoo",
        }.items()
    ],
    # the cache
    row(
        ["download", "zoo", "--url", URL + "/ok", "--cache", "text.txt"],
        ["text.txt", "is a file, not a directory", "--cache"],
        id="download-cache-a-file",
    ),
    row(
        ["download", "zoo", "--url", URL + "/ok", "--cache", "text.txt/sub"],
        ["text.txt", "is a file"],
        id="download-cache-below-a-file",
    ),
    row(
        ["download", "zoo", "--url", URL + "/ok", "--cache", "fake.zip"],
        ["is a file"],
        id="download-cache-a-zip",
    ),
    row(
        ["download", "zoo", "--url", URL + "/ok", "--cache", "zoo.zarr"],
        ["zoo.zarr", "Zarr store"],
        id="download-cache-a-zoo",
    ),
    row(
        ["download", "zoo", "--url", URL + "/ok", "--cache", "notzoo.zarr"],
        ["Zarr store"],
        id="download-cache-a-zarr-store",
    ),
    row(
        ["download", "zoo", "--url", URL + "/ok", "--cache", "notes"],
        ["notes", "not writable", "--cache"],
        id="download-cache-read-only",
        read_only=("notes",),
    ),
    row(
        ["download", "zoo", "--url", URL + "/ok", "--cache", "cache"],
        ["not writable"],
        id="download-cache-in-a-read-only-folder",
        read_only=(".",),
    ),
    # what the server has
    row(
        ["download", "nosuch", "--url", URL + "/ok", "--cache", "cache"],
        ["no zoo nosuch at", "zoo@1"],
        id="download-unknown-name",
    ),
    row(
        ["download", "zoo@9", "--url", URL + "/ok", "--cache", "cache"],
        ["no version 9 of zoo zoo", "{1, 2}"],
        id="download-unknown-version",
    ),
    row(
        ["download", "zoo", "--task", "sine", "--url", URL + "/ok", "--cache", "cache"],
        ["no task(s) sine", "cdi, flipflop"],
        id="download-unknown-task",
    ),
    row(
        ["download", "zoo", "--url", URL + "/nothing-here", "--cache", "cache"],
        ["HTTP 404", "publish"],
        id="download-not-a-zoo-server",
    ),
    row(
        ["download", "zoo", "--url", URL + "/err500", "--cache", "cache"],
        ["HTTP 500"],
        id="download-server-error-500",
    ),
    row(
        ["download", "zoo", "--url", URL + "/err503", "--cache", "cache"],
        ["HTTP 503"],
        id="download-server-error-503",
    ),
    row(
        ["download", "zoo", "--url", URL + "/badreg", "--cache", "cache"],
        ["not an rnnzoo registry", "line", "../../etc/passwd"],
        id="download-registry-bad-line",
    ),
    row(
        ["download", "zoo", "--url", URL + "/html", "--cache", "cache"],
        ["not an rnnzoo registry", "line 1"],
        id="download-registry-is-html",
    ),
    row(
        ["download", "zoo", "--url", URL + "/tampered", "--cache", "cache"],
        ["flipflop.zarr.zip does not match its sha256"],
        id="download-tampered-file",
    ),
    row(
        ["download", "zoo", "--url", URL + "/missing", "--cache", "cache"],
        ["cdi.zarr.zip", "HTTP 404"],
        id="download-listed-file-missing",
    ),
    row(
        ["download", "junk", "--url", URL + "/junk", "--cache", "cache"],
        ["not a zoo zip"],
        id="download-file-is-not-a-zoo",
    ),
    # the command line itself
    row(["download"], ["NAME[@VERSION]"], id="download-without-name"),
    row(["download", "zoo", "--bogus"], ["--bogus"], id="download-bad-option"),
]

CASES = PUBLISH + DOWNLOAD


@pytest.mark.network
@pytest.mark.parametrize(("argv", "expect", "options"), CASES)
def test_refused(refused, request, argv, expect, options):
    if any("{URL}" in a for a in argv):
        url = request.getfixturevalue("server").url
        argv = [a.replace("{URL}", url) for a in argv]
    refused(argv, expect, **options)


def test_the_table_covers_publish_and_download():
    commands = {argv[1] for argv, _, _ in (c.values for c in CASES)}
    assert commands == {"publish", "download"}
    assert len(PUBLISH) >= 30
    assert len(DOWNLOAD) >= 30
