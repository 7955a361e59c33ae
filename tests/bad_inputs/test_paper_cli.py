"""``rnnzoo-paper``: every malformed input is refused with one line, before anything is written."""

from __future__ import annotations

import pytest


def _grid(text: str):
    def setup(root):
        (root / "grid.toml").write_text(text)

    return setup


def _foreign_output(root):
    (root / "synth").mkdir()
    (root / "synth" / ".rnnzoo-paper").write_text('{"command": "synthetic"}\n')


DEMO = ["rnnzoo-paper", "demo", "--no-progress", "--workers", "1"]

CASES = [
    pytest.param([*DEMO, "--task", "nosuch"], ("unknown task", "nosuch"), {}, id="unknown-task"),
    pytest.param([*DEMO, "--task", ","], ("empty",), {}, id="empty-task"),
    pytest.param([*DEMO, "--preset", "nosuch"], ("nosuch",), {}, id="unknown-preset"),
    pytest.param([*DEMO, "--config", "none.toml"], ("none.toml",), {}, id="missing-grid"),
    pytest.param(
        [*DEMO, "--config", "grid.toml"], ("grid",), {"setup": _grid("units = [")}, id="bad-grid"
    ),
    pytest.param([*DEMO, "--zoo", "nosuch.zarr"], ("no zoo",), {}, id="missing-zoo"),
    pytest.param([*DEMO, "--zoo", "fake.zip"], ("zoo",), {}, id="zoo-not-a-zip"),
    pytest.param([*DEMO, "--zoo", "notzoo.zarr"], ("not an rnnzoo zoo",), {}, id="zoo-not-a-zoo"),
    pytest.param([*DEMO, "--zoo", "truncated.zarr"], ("zoo",), {}, id="zoo-truncated"),
    pytest.param(
        [*DEMO, "--zoo", "zoo.zarr", "--task", "sine"], ("no task 'sine'",), {}, id="zoo-lacks-task"
    ),
    pytest.param([*DEMO, "--out", "text.txt"], ("is a file",), {}, id="out-is-a-file"),
    pytest.param([*DEMO, "--out", "notes"], ("other files",), {}, id="out-holds-user-files"),
    pytest.param([*DEMO, "--out", "text.txt/sub"], ("text.txt",), {}, id="out-under-a-file"),
    pytest.param(
        [*DEMO, "--out", "synth"], ("synthetic",), {"setup": _foreign_output}, id="out-of-other"
    ),
    pytest.param(
        [*DEMO, "--out", "notes/new"], ("cannot write",), {"read_only": ("notes",)}, id="out-ro"
    ),
    pytest.param([*DEMO, "--starts", "0"], ("--starts",), {}, id="starts-zero"),
    pytest.param(["rnnzoo-paper", "demo", "--workers", "0"], ("--workers",), {}, id="workers-0"),
    pytest.param(
        ["rnnzoo-paper", "demo", "--workers", "2", "--processes", "2"], (), {}, id="two-runners"
    ),
    pytest.param(["rnnzoo-paper", "demo", "--starts", "x"], ("--starts",), {}, id="starts-text"),
    pytest.param(["rnnzoo-paper", "nosuch"], ("nosuch",), {}, id="unknown-command"),
    pytest.param(
        ["rnnzoo-paper", "synthetic", "--per-family", "0"], ("--per-family",), {}, id="synth-0"
    ),
    pytest.param(
        ["rnnzoo-paper", "synthetic", "--samples", "2"], ("--samples",), {}, id="synth-samples"
    ),
    pytest.param(
        ["rnnzoo-paper", "synthetic", "--out", "notes"], ("other files",), {}, id="synth-out-notes"
    ),
    pytest.param(
        ["rnnzoo-paper", "synthetic", "--out", "text.txt"], ("is a file",), {}, id="synth-out-file"
    ),
]


@pytest.mark.parametrize(("argv", "expect", "options"), CASES)
def test_refused(refused, argv, expect, options):
    refused(argv, expect, **options)
