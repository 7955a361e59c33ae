"""docs/zoo-format.md is enough to read a zoo with plain xarray/zarr: no rnnzoo import.

A zoo is generated with the ``rnnzoo-train`` command (``tiny`` preset), then the example of
docs/zoo-format.md section 9 is run, as written, in a fresh interpreter where importing any
``rnnzoo`` package fails: from the directory and over HTTP from a server that refuses
directory listings. This module itself imports nothing from rnnzoo either.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "zoo-format.md"
BIN = Path(sys.executable).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

BLOCK_RNNZOO = """
import sys

class _NoRnnzoo:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0].startswith("rnnzoo"):
            raise ImportError(f"{name} may not be imported here")
        return None

sys.meta_path.insert(0, _NoRnnzoo())
"""


def doc_example() -> str:
    text = DOC.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    (example,) = [b for b in blocks if b.startswith("# plain-xarray example")]
    return example


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("plain")
    out = site / "zoo.zarr"
    exe = shutil.which("rnnzoo-train", path=str(BIN)) or "rnnzoo-train"
    cmd = [exe, "generate", "--preset", "tiny", "--task", "flipflop", "--out", str(out)]
    proc = subprocess.run(cmd + ["--no-progress"], capture_output=True, text=True, env=ENV,
                          timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out


def run_example(location: str) -> subprocess.CompletedProcess:
    code = doc_example().replace('ZOO = "zoo.zarr"', f"ZOO = {location!r}")
    assert f"ZOO = {location!r}" in code
    code = BLOCK_RNNZOO + code + '\nassert not any(m.startswith("rnnzoo") for m in sys.modules)\n'
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=ENV, timeout=300)  # fmt: skip


def test_the_documented_example_reads_a_local_zoo_without_rnnzoo(zoo):
    proc = run_example(str(zoo))
    assert proc.returncode == 0, proc.stderr
    assert "vanilla-tanh-u8-l2_1e-04-s00" in proc.stdout
    assert "max |recomputed - stored|" in proc.stdout


def test_the_blocker_really_blocks(zoo):
    code = BLOCK_RNNZOO + "import rnnzoo_train\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "may not be imported here" in proc.stderr


class _NoListing(http.server.SimpleHTTPRequestHandler):
    def send_head(self):
        if Path(self.translate_path(self.path)).is_dir():
            self.send_error(404, "no directory listing")
            return None
        return super().send_head()

    def log_message(self, format, *args):
        pass


@pytest.mark.network
def test_the_documented_example_reads_the_zoo_over_http(zoo):
    handler = functools.partial(_NoListing, directory=str(zoo.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{zoo.name}"
        proc = run_example(url)
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 0, proc.stderr
    assert "max |recomputed - stored|" in proc.stdout
