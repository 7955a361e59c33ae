"""``rnnzoo-dynamics analyze`` with a task-analysis plugin that cannot be used: one line.

The plugin is a real installed distribution (a ``*.dist-info`` with ``entry_points.txt``,
as pip leaves it) in a folder outside the sandbox, put on ``sys.path`` for the row only.
"""

from __future__ import annotations

import pytest

ROWS = [
    pytest.param(
        "flipflop = rnnzoo_dynamics.task_analyses:GenericAnalysis\n",
        ["analyze", "zoo.zarr", "--task", "flipflop"],
        ["flipflop", "two analysis plugins", "uninstall one"],
        id="analyze-two-analysis-plugins",
    ),
    pytest.param(
        "flipflop = rnnzoo_dynamics.task_analyses:GenericAnalysis\n",
        ["analyze", "zoo.zarr"],
        ["flipflop", "two analysis plugins"],
        id="analyze-all-tasks-two-analysis-plugins",
    ),
]


@pytest.mark.parametrize(("entry_points_txt", "argv", "expect"), ROWS)
def test_refused(refused, tmp_path, monkeypatch, entry_points_txt, argv, expect):
    site = tmp_path / "site"
    info = site / "second_analysis-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: second-analysis\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[rnnzoo_dynamics.task_analyses]\n" + entry_points_txt)
    monkeypatch.syspath_prepend(str(site))
    refused(["rnnzoo-dynamics", *argv], expect)
