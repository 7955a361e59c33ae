"""``rnnzoo-train generate --dry-run`` and ``--out``: malformed input gets one line.

A dry run trains and writes nothing, so it needs no ``--out``; a real run without ``--out``
is refused with one line (formerly argparse's usage block), and a dry run checks the same
options a real run does.
"""

from __future__ import annotations

import pytest

GEN = ["rnnzoo-train", "generate", "--no-progress"]

CASES = [
    pytest.param([*GEN, "--preset", "tiny"], ("--out is required",), {}, id="gen-no-out"),
    pytest.param(
        [*GEN, "--preset", "nosuch", "--dry-run"], ("unknown preset",), {}, id="dry-run-preset"
    ),
    pytest.param(
        [*GEN, "--preset", "tiny", "--task", "nosuch", "--dry-run"],
        ("unknown task",),
        {},
        id="dry-run-task",
    ),
    pytest.param(
        [*GEN, "--preset", "paper-core", "--dry-run", "--workers", "0"],
        ("--workers must be >= 1",),
        {},
        id="dry-run-workers-0",
    ),
    pytest.param(
        [*GEN, "--preset", "tiny", "--dry-run", "--workers", "4", "--processes", "2"],
        ("exclude each other",),
        {},
        id="dry-run-two-runners",
    ),
    pytest.param(
        [*GEN, "--config", "nosuch.toml", "--dry-run"],
        ("does not exist",),
        {},
        id="dry-run-grid-missing",
    ),
]


@pytest.mark.parametrize(("argv", "expect", "options"), CASES)
def test_refused(refused, argv, expect, options):
    refused(argv, expect, **options)
