import json

import pytest

pytest.importorskip("matplotlib")


def test_synthetic_demo_separates_families_and_writes_figures(tmp_path):
    from rnnzoo_paper.cli import main

    assert (
        main(
            [
                "synthetic",
                "--out",
                str(tmp_path),
                "--per-family",
                "5",
                "--samples",
                "150",
                "--no-progress",
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    for metric in ("svcca", "cka"):
        # networks of one family are closer to each other than to the other family
        assert summary[metric]["between"] > summary[metric]["within"]
        for name in (f"{metric}_mds.png", f"{metric}_matrix.png"):
            assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
        assert (tmp_path / f"{metric}.nc").exists()
