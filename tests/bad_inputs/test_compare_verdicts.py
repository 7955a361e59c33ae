"""``rnnzoo-paper compare-verdicts``: folders without findings are refused with one line."""

from __future__ import annotations

import json

import pytest


def _findings(text: str):
    def setup(root):
        (root / "run").mkdir()
        (root / "run" / "findings.json").write_text(text)

    return setup


def _good(root):
    (root / "good").mkdir()
    (root / "good" / "findings.json").write_text(json.dumps([{"key": "a", "verdict": "agrees"}]))


def _both(text: str):
    def setup(root):
        _good(root)
        _findings(text)(root)

    return setup


CMP = ["rnnzoo-paper", "compare-verdicts"]

CASES = [
    pytest.param([*CMP, "nosuch", "notes"], ("nosuch", "no such output folder"), {}, id="missing"),
    pytest.param([*CMP, "notes", "notes"], ("no findings.json",), {}, id="no-findings"),
    pytest.param([*CMP, "text.txt", "notes"], ("text.txt",), {}, id="a-file"),
    pytest.param(
        [*CMP, "good", "run"], ("not a findings file",), {"setup": _both("{oops")}, id="bad-json"
    ),
    pytest.param(
        [*CMP, "good", "run"],
        ("expected a list of findings",),
        {"setup": _both('{"key": "a"}')},
        id="not-a-list",
    ),
    pytest.param(
        [*CMP, "good", "run"],
        ("expected a list of findings",),
        {"setup": _both('[{"verdict": "agrees"}]')},
        id="finding-without-key",
    ),
    pytest.param([*CMP, "good"], ("B",), {"setup": _good}, id="one-folder"),
]


@pytest.mark.parametrize(("argv", "expect", "options"), CASES)
def test_refused(refused, argv, expect, options):
    refused(argv, expect, **options)
