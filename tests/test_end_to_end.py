"""The paper pipeline end to end on a tiny zoo: every figure, every finding, resume, --zoo, Dask.

This is the same pipeline as ``nox -s demo`` (``rnnzoo-paper demo``), on the ``tiny`` preset
with both activations (a grid file based on ``tiny``), so that every finding, including the
activation ones and Fig. 4's relu/tanh comparison, is computable. The fixed-point finder
runs with 32 initial states per condition to keep the test short.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from rnnzoo_paper.cli import main

FIGURES = [
    "overview.png",
    "fig1.png",
    "fig2.png",
    "fig3.png",
    "fig4.png",
    "appendix_c.png",
    "appendix_e.png",
]
TASKS = ["flipflop", "sine", "cdi"]
GRID = """
name = "tiny-both"
base = "tiny"
[grid]
activation = ["tanh", "relu"]
"""
FAST = ["--workers", "1", "--starts", "32", "--no-progress"]


def _expected_keys() -> set[str]:
    keys = {f"losses/{t}" for t in TASKS} | {f"agreement/{t}" for t in TASKS}
    keys |= {
        f"cluster/{t}/{d}/{by}"
        for t in TASKS
        for d in ("svcca", "cka", "graph", "graph-matched")
        for by in ("arch", "activation")
    }
    keys |= {f"fixed-points/{t}/count" for t in TASKS}
    keys |= {
        "fixed-points/flipflop/stable",
        "fixed-points/flipflop/graph-nodes",
        "sine/one-point-per-frequency",
        "sine/frequency-alignment",
        "sine/frequency-by-arch",
        "cdi/near_one",
        "cdi/modes_needed",
        "fig4/trained-untrained",
    }
    return keys


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper")
    grid = root / "tiny-both.toml"
    grid.write_text(GRID)
    out = root / "out"
    rc = main(["demo", "--config", str(grid), "--out", str(out), *FAST])
    assert rc == 0
    return out, grid


def _check_figures(out: Path, names=FIGURES) -> None:
    from matplotlib.image import imread

    for name in names:
        path = out / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        img = imread(path)
        assert min(img.shape[:2]) > 300, (name, img.shape)
        assert float(np.std(img[..., :3])) > 0.05, f"{name} looks blank"


def _check_numbers(out: Path) -> list[dict]:
    found = json.loads((out / "findings.json").read_text())
    for f in found:
        assert f["verdict"] in ("agrees", "differs", "inconclusive at this zoo size"), f
        assert all(f[k] for k in ("claim", "result", "rule")), f
        for name, value in f["numbers"].items():
            assert isinstance(value, float), (f["key"], name, value)
            assert math.isfinite(value), (f["key"], name, value)
    report = (out / "report.md").read_text()
    # every number the report prints is finite
    assert not re.search(r"\b(nan|inf)\b", report, flags=re.IGNORECASE), "NaN/inf in report.md"
    for f in found:
        assert f["result"].replace("|", "\\|") in report, f["key"]
    return found


@pytest.mark.slow
def test_every_figure_and_every_finding_is_produced_and_finite(tiny_run):
    out, _ = tiny_run
    _check_figures(out)
    report = (out / "report.md").read_text()
    for name in FIGURES:
        assert f"![{name}]({name})" in report  # inline, so the page shows the figure
    found = _check_numbers(out)
    by_key = {f["key"]: f for f in found}
    missing = _expected_keys() - set(by_key)
    assert not missing, f"findings missing: {sorted(missing)}"
    for key in _expected_keys():
        assert by_key[key]["numbers"], f"{key} was not computable: {by_key[key]['result']}"
    # timings of all five steps are reported
    for step in ("zoo", "dynamics", "distances", "figures", "report"):
        assert re.search(rf"\| {step} \| [0-9.]+ s \|", report), step


@pytest.mark.slow
def test_fixed_point_findings_count_what_the_paper_compares(tiny_run):
    """cdi: line-attractor graph nodes; sine: true fixed points near the orbit (recounted here
    from the stored analyses through rnnzoo-dynamics' public reader)."""
    from rnnzoo_dynamics import read_analysis
    from rnnzoo_train.zoo import open_zoo

    out, _ = tiny_run
    found = {f["key"]: f for f in json.loads((out / "findings.json").read_text())}
    zoo = open_zoo(out / "zoo.zarr")
    try:
        summary = read_analysis(zoo, "cdi", "dynamics_summary")
        ok = list(summary["network"].values[summary["analysis_status"].values == "ok"])
        nodes = []
        for c in (0, 1):
            g = read_analysis(zoo, "cdi", f"line_attractor_graph-context{c}")
            nodes.append(np.asarray(g["graph_n_nodes"].sel(network=ok).values))
        nodes = np.stack(nodes, axis=1)
        # the modal size among graphs that are line attractors (>= 2 nodes), else 0
        values, counts = np.unique(nodes[nodes >= 2], return_counts=True)
        mode = values[np.argmax(counts)] if len(values) else 0
        cdi = found["fixed-points/cdi/count"]["numbers"]
        assert cdi["modal_count"] == mode
        at_mode = (nodes == mode).all(axis=1) if mode else np.zeros(len(nodes), bool)
        assert cdi["fraction_at_mode"] == pytest.approx(np.mean(at_mode))
        assert cdi["n_without_attractor"] == np.sum((nodes < 2).any(axis=1))
        freq = read_analysis(zoo, "sine", "sine_frequency")
        near = np.asarray(freq["n_points"].values)
        one = found["sine/one-point-per-frequency"]["numbers"]
        assert one["fraction_one_point"] == pytest.approx(np.mean(near == 1))
        assert "near the orbit" in found["sine/one-point-per-frequency"]["result"]
    finally:
        zoo.close()
    report = (out / "report.md").read_text()
    differ = [k for k, f in found.items() if f["verdict"] == "differs"]
    if differ:  # each differing finding is explained with the zoo's size
        assert "### Why findings may differ from the paper here" in report
        for key in differ:
            assert f"- `{key}`: this zoo: " in report, key


@pytest.mark.slow
def test_rerun_reuses_the_zoo_the_analyses_and_the_distance_matrices(tiny_run, capsys):
    from rnnzoo_train.zoo import open_zoo

    out, grid = tiny_run
    zoo = open_zoo(out / "zoo.zarr")
    before = {t: zoo.analysis(t, "paper-distance-svcca").attrs["rnnzoo_written_at"] for t in TASKS}
    stamp = zoo.analysis("flipflop", "fixed_points").attrs["rnnzoo_written_at"]
    zoo.close()
    capsys.readouterr()
    assert main(["demo", "--config", str(grid), "--out", str(out), *FAST]) == 0
    printed = capsys.readouterr().out
    assert "reused the finished tiny-both zoo" in printed  # no generation at all
    for task in TASKS:
        assert f"{task} 0 analysed" in printed
    zoo = open_zoo(out / "zoo.zarr")
    after = {t: zoo.analysis(t, "paper-distance-svcca").attrs["rnnzoo_written_at"] for t in TASKS}
    assert after == before
    assert zoo.analysis("flipflop", "fixed_points").attrs["rnnzoo_written_at"] == stamp
    _check_numbers(out)


@pytest.mark.slow
@pytest.mark.network
def test_a_zoo_served_over_http_on_a_dask_cluster(tiny_run, tmp_path, capsys):
    """``--zoo URL`` (read-only: analyses go to out/analyses.zarr) with ``--workers 2``, i.e.
    on a Dask LocalCluster of 2 single-threaded workers.

    The served zoo is generated afresh (the same networks as the local run: generation is
    deterministic), so every analysis is recomputed on Dask workers reading over HTTP.
    """
    from rnnzoo_train.generate import generate
    from rnnzoo_train.presets import load_grid
    from rnnzoo_train.zoo import ZarrZooWriter
    from rnnzoo_train.zoo.testing import serve_directory

    out, grid = tiny_run
    served_dir = tmp_path / "served"
    generate(load_grid(grid), ["cdi"], ZarrZooWriter(served_dir / "zoo.zarr"), progress=False)
    tmp_path = tmp_path / "out"
    with serve_directory(served_dir) as served:
        url = f"{served.url}/zoo.zarr"
        rc = main(
            [
                "demo",
                "--zoo",
                url,
                "--task",
                "cdi",
                "--out",
                str(tmp_path),
                "--workers",
                "2",
                "--starts",
                "32",
                "--no-progress",
                "--dsa-search",
                "fast",
            ]
        )
    assert rc == 0
    err = capsys.readouterr().err
    assert re.search(
        r"^runner: Dask LocalCluster: 2 workers x 1 thread, scheduler tcp://127\.0\.0\.1:\d+, ",
        err,
        re.M,
    ), err
    assert (tmp_path / "analyses.zarr" / "zarr.json").is_file()
    assert not (tmp_path / "zoo.zarr").exists()  # nothing generated
    assert (tmp_path / "analyses.zarr" / "cdi" / "analysis" / "paper-distance-svcca").is_dir()
    # --dsa-search reaches the DSA step on the Dask workers, and its matrices are stored apart
    assert json.loads((tmp_path / "dynamical_similarity.json").read_text())["search"] == "fast"
    analysis = tmp_path / "analyses.zarr" / "cdi" / "analysis"
    assert (analysis / "paper-distance-dsa-search-fast").is_dir()
    assert not (analysis / "paper-distance-dsa").exists()
    assert "`fast` search" in (tmp_path / "report.md").read_text()
    _check_figures(tmp_path, ["fig3.png", "fig4.png", "appendix_c.png", "appendix_e.png"])
    assert not (tmp_path / "fig1.png").exists()  # flip-flop was not part of this run
    assert "needs the flipflop task" in (tmp_path / "report.md").read_text()
    found = {f["key"]: f for f in _check_numbers(tmp_path)}
    assert found["fig4/trained-untrained"]["numbers"]
    assert found["cluster/cdi/svcca/arch"]["numbers"]
    # same zoo, same analyses: the same numbers as the local run
    local = {f["key"]: f for f in json.loads((out / "findings.json").read_text())}
    for key in ("cluster/cdi/svcca/arch", "fig4/trained-untrained", "cdi/modes_needed"):
        assert found[key]["numbers"] == pytest.approx(local[key]["numbers"], rel=1e-9), key


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rnnzoo_paper.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--zoo", "/no/such/zoo.zarr"], "no zoo at /no/such/zoo.zarr"),
        (["--preset", "huge"], "unknown preset 'huge'"),
        (["--config", "/no/grid.toml"], "no grid file /no/grid.toml"),
        (["--starts", "0"], "--starts must be >= 1"),
        (["--dsa-search", "quick"], "--dsa-search must be one of thorough, fast, got 'quick'"),
        (
            ["--workers", "2", "--processes", "2"],
            "--workers 2 (a Dask LocalCluster) and --processes 2 (a process pool) exclude",
        ),
    ],
)
def test_user_mistakes_print_one_line_and_exit_2(tmp_path, args, message):
    r = _cli("demo", "--out", str(tmp_path / "out"), *args)
    assert r.returncode == 2, r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "zoo.zarr").exists()


@pytest.mark.slow
def test_unknown_task_of_a_given_zoo(tiny_run, tmp_path):
    out, _ = tiny_run
    r = _cli("demo", "--zoo", str(out / "zoo.zarr"), "--task", "juggling", "--out", str(tmp_path))
    assert r.returncode == 2
    assert "the zoo has no task 'juggling'" in r.stderr
    assert "Traceback" not in r.stderr
