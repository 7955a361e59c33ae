"""The zoo subcommands: verify, info, publish, download (exit codes, one-line errors)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rnnzoo_train.cli import main
from rnnzoo_train.tasks import get_task
from rnnzoo_train.zoo import layout
from rnnzoo_train.zoo.testing import serve_directory, write_synthetic_zoo

#: the installed console script, next to this interpreter
RNNZOO_TRAIN = shutil.which("rnnzoo-train", path=str(Path(sys.executable).parent)) or "rnnzoo-train"


@pytest.fixture(scope="module")
def zoo_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "demo.zarr"
    write_synthetic_zoo(path, [get_task("cdi", n_steps=6)], seeds=(0,), n_written=3)
    return path


def test_verify_reports_and_sets_the_exit_status(zoo_path, tmp_path, capsys):
    assert main(["verify", str(zoo_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "cdi: 4 networks (3 ok, 1 pending)" in out
    assert "OK" in out
    bad = tmp_path / "bad.zarr"
    shutil.copytree(zoo_path, bad)
    chunk = next((bad / "cdi/networks/gru-tanh-u8/hidden_trained").rglob("c/0/*/*/*"))
    chunk.write_bytes(chunk.read_bytes()[:-1] + b"!")
    assert main(["verify", str(bad), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "cdi/gru-tanh-u8-l2_1e-04-s000: hidden_trained: chunk c/0/0/0/0 corrupt" in out
    assert main(["verify", str(tmp_path / "missing.zarr")]) == 2
    assert capsys.readouterr().err.strip().startswith("rnnzoo-train: error: no zoo at")


def test_info_text_and_json(zoo_path, capsys):
    assert main(["info", str(zoo_path)]) == 0
    out = capsys.readouterr().out
    assert "cdi: 4 networks (3 ok, 1 pending)" in out
    assert "vanilla-relu-u6-l2_1e-03" in out
    assert "median r2" in out
    assert "rnnzoo-train 0.1.0" in out or "rnnzoo-train" in out
    assert main(["info", str(zoo_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["tasks"]["cdi"]["status"] == {"ok": 3, "pending": 1}
    assert summary["schema_version"] == layout.SCHEMA_VERSION


def test_publish_then_download_through_the_cli(zoo_path, tmp_path, capsys):
    site = tmp_path / "site"
    assert main(["publish", str(zoo_path), "--out", str(site), "--version", "1.0"]) == 2
    assert "--allow-incomplete" in capsys.readouterr().err
    args = ["publish", str(zoo_path), "--out", str(site), "--version", "1.0"]
    assert main([*args, "--allow-incomplete"]) == 0
    assert "cdi: " in capsys.readouterr().out
    with serve_directory(site) as srv:
        cache = str(tmp_path / "cache")
        assert main(["download", "demo@1.0", "--url", srv.url, "--cache", cache,
                     "--no-progress"]) == 0  # fmt: skip
        captured = capsys.readouterr()
        assert "cdi: 4 networks" in captured.out
        assert "demo/1.0/cdi.zarr.zip" in captured.err
    assert main(["download", "demo@1.0", "--url", srv.url, "--cache", cache]) == 0  # cached
    capsys.readouterr()
    assert main(["download", "demo@2.0", "--url", srv.url, "--cache", str(tmp_path / "c")]) == 2
    assert "cannot reach the zoo server" in capsys.readouterr().err


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    proc = subprocess.run(
        [RNNZOO_TRAIN, "info", str(tmp_path / "nothing.zarr")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "Traceback" not in proc.stderr
