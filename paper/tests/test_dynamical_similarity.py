"""Beyond the paper: the DSA section's answers on zoos whose answer is known by construction.

Each tiny zoo is a real Zarr zoo (rnnzoo-train's writer and reader) of 20 cdi networks
(Vanilla and GRU x tanh and relu x 5 seeds, 8 units) whose stored probe states are chosen
here: every network's states are a latent linear system seen through a random orthonormal
map into its units: a constant per probe trial (where the trial's orbit sits) and two
rotations (how the state moves), so that

- *dynamics differ by architecture*: Vanilla and GRU rotate at different frequencies. DSA
  and SVCCA both see it (SVCCA compares the latent trajectories up to a linear map): DSA is
  **like geometry**;
- *dynamics the same, geometry differs by architecture*: within an activation every network
  rotates at the same frequencies (jittered per network, not per architecture), but Vanilla
  places its probe trials' orbits by one pattern of offsets and GRU by another. SVCCA
  (sample by sample) separates the two; DSA's operators (a mode of eigenvalue 1 and the same
  two rotations, in an orthonormal basis) do not: DSA is **like topology**. Here the dynamics
  differ by activation, so that Fig. 4's question has its opposite answer on the same zoo.

Fig. 4's question uses the untrained states: where untrained relu Vanilla networks share the
trained relu ones' dynamics and trained tanh ones have others, DSA answers *closer to
untrained relu*; the other way round, *closer to trained tanh*.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pytest
import xarray as xr

from rnnzoo_paper import distances as dist
from rnnzoo_paper.dsa_report import TITLE, report_section
from rnnzoo_paper.dynamical_similarity import (
    CLOSER_TANH,
    CLOSER_UNTRAINED,
    LIKE_GEOMETRY,
    LIKE_TOPOLOGY,
    UNDECIDED,
    cluster_answer,
    compute_dsa,
    trained_answer,
    zoo_parameters,
)
from rnnzoo_train.records import Configuration
from rnnzoo_train.tasks import get_task
from rnnzoo_train.zoo import ZarrZooWriter, open_zoo
from rnnzoo_train.zoo.testing import small_plan, synthetic_result

CONFIGS = tuple(
    Configuration(arch, act, 8, 1e-4) for arch in ("vanilla", "gru") for act in ("tanh", "relu")
)
SEEDS = (0, 1, 2, 3, 4)
STEPS = 60
#: time steps per trial after DSA's delay embedding (7 delays: 10% of 60 steps)
EMBEDDED = 54
#: rotation frequencies (cycles per step) of the two latent planes: whole cycles over the
#: embedded window, so the latent coordinates are orthogonal there
SLOW, FAST = (2 / EMBEDDED, 4 / EMBEDDED), (3 / EMBEDDED, 6 / EMBEDDED)
#: per-probe-trial offsets (where each trial's orbit sits): two unrelated patterns
OFFSETS = {k: np.random.default_rng(k).normal(0.0, 2.0, 6) for k in (1, 2)}


def _states(shape, freqs, offsets, seed: int) -> np.ndarray:
    """Probe states ``(probe, time, units)``: an offset per trial and two rotations.

    The latent state is a constant per probe trial (``offsets``) and two rotation planes at
    ``freqs``, seen through a random orthonormal map into the units. Initial phases depend on
    the probe trial only (probe inputs are shared by every network); the frequencies get a
    1% jitter and the map is random, both seeded per network.
    """
    probes, steps, units = shape
    rng = np.random.default_rng(seed)
    phases = np.random.default_rng(12345).uniform(0, 2 * np.pi, (probes, 2))
    jitter = 1 + 0.01 * rng.standard_normal(2)
    t = np.arange(steps)
    z = np.empty((probes, steps, 5))
    z[..., 0] = np.asarray(offsets)[:probes, None]
    for j in range(2):
        angle = 2 * np.pi * freqs[j] * jitter[j] * t[None, :] + phases[:, j : j + 1]
        z[..., 1 + 2 * j] = np.cos(angle)
        z[..., 2 + 2 * j] = np.sin(angle)
    q, _ = np.linalg.qr(rng.standard_normal((units, 5)))
    return (z @ q.T).astype(np.float32)


def _write_zoo(path, trained, untrained=None) -> None:
    """A cdi zoo whose states are ``trained(config, seed, shape)`` (and ``untrained``)."""
    task = get_task("cdi", n_steps=STEPS, n_probe_mu=3)
    plan = small_plan(task, CONFIGS, SEEDS)
    results = []
    for nid in plan.network_ids():
        r = synthetic_result(plan, task, nid, cells=False)
        config = next(c for c in CONFIGS if nid.startswith(c.key + "-s"))
        seed = int(nid.rsplit("-s", 1)[1])
        shape = r.hidden_trained.shape
        new = {"hidden_trained": trained(config, seed, shape)}
        if untrained is not None:
            new["hidden_untrained"] = untrained(config, seed, shape)
        results.append(dataclasses.replace(r, **new))
    with ZarrZooWriter(path) as w:
        w.prepare_task(plan, task)
        w.write_results("cdi", results)


def _seed(config, seed: int, offset: int = 0) -> int:
    return 1000 * CONFIGS.index(config) + seed + offset


def _by_arch(config, seed, shape):
    """Trained: Vanilla rotates at SLOW, GRU at FAST (whatever the activation)."""
    freqs = SLOW if config.arch == "vanilla" else FAST
    return _states(shape, freqs, OFFSETS[1], _seed(config, seed))


def _untrained_relu_fast(config, seed, shape):
    """Untrained: relu at FAST, tanh at SLOW."""
    freqs = FAST if config.activation == "relu" else SLOW
    return _states(shape, freqs, OFFSETS[1], _seed(config, seed, 7))


def _geometry_by_arch(config, seed, shape):
    """Trained: dynamics by activation (tanh SLOW, relu FAST), the same for every
    architecture; Vanilla's trial offsets one pattern, GRU's another."""
    freqs = SLOW if config.activation == "tanh" else FAST
    offsets = OFFSETS[1] if config.arch == "vanilla" else OFFSETS[2]
    return _states(shape, freqs, offsets, _seed(config, seed))


def _run(path, trained, untrained):
    _write_zoo(path, trained, untrained)
    zoo = open_zoo(path)
    compute = dist.Compute(progress=False)
    mats = {"cdi": dist.task_distances(zoo, "cdi", compute)}
    fig4 = dist.trained_untrained_distance(zoo, compute)
    return zoo, mats, fig4, compute_dsa(zoo, ["cdi"], compute, mats, fig4)


@pytest.fixture(scope="module")
def dynamics_by_arch(tmp_path_factory):
    """Dynamics differ by architecture; untrained relu share no trained network's dynamics."""
    path = tmp_path_factory.mktemp("dsa") / "zoo.zarr"
    return _run(path, _by_arch, _untrained_relu_fast)


@pytest.fixture(scope="module")
def geometry_by_arch(tmp_path_factory):
    """Within an activation the same dynamics, geometry by architecture; untrained relu
    share the trained relu's dynamics (FAST), trained tanh have others (SLOW)."""
    path = tmp_path_factory.mktemp("dsa") / "zoo.zarr"
    return _run(path, _geometry_by_arch, _untrained_relu_fast)


def _question(res, key):
    return next(q for q in res.questions if q.key == key)


def test_dynamics_that_differ_by_architecture_are_like_geometry(dynamics_by_arch):
    _, _, _, res = dynamics_by_arch
    q = _question(res, "dsa/cdi/cluster/arch")
    assert q.answer == LIKE_GEOMETRY, q.result
    assert q.firmness["firm"], q.firmness
    assert q.numbers["p_value"] <= 0.05
    assert q.numbers["svcca_p_value"] <= 0.05
    # nothing depends on the activation: neither DSA nor SVCCA clusters by it
    act = _question(res, "dsa/cdi/cluster/activation")
    assert act.answer == UNDECIDED, act.result


def test_the_same_dynamics_behind_different_geometry_are_like_topology(geometry_by_arch):
    _, mats, _, res = geometry_by_arch
    q = _question(res, "dsa/cdi/cluster/arch")
    assert q.answer == LIKE_TOPOLOGY, q.result
    assert q.firmness["firm"], q.firmness
    assert q.numbers["svcca_p_value"] <= 0.05 < q.numbers["p_value"]
    # DSA's operator holds the offset mode and both planes: rank 5 of the embedding
    assert res.params["cdi"] == {"n_delays": 7, "delay_interval": 1, "rank": 5}


def test_fig4_question_closer_to_trained_tanh_by_construction(dynamics_by_arch):
    _, _, _, res = dynamics_by_arch
    q = _question(res, "dsa/cdi/trained-untrained")
    assert q.answer == CLOSER_TANH, q.result
    assert q.firmness["firm"]
    n = q.numbers
    assert n["dsa_trained_relu_trained_tanh"] < n["dsa_trained_relu_untrained_relu"]
    assert res.trained_untrained.sizes["network"] == 20  # 10 trained, 10 untrained Vanilla


def test_fig4_question_closer_to_untrained_relu_by_construction(geometry_by_arch):
    _, _, _, res = geometry_by_arch
    q = _question(res, "dsa/cdi/trained-untrained")
    assert q.answer == CLOSER_UNTRAINED, q.result
    assert q.firmness["firm"]
    n = q.numbers
    assert n["dsa_trained_relu_untrained_relu"] < n["dsa_trained_relu_trained_tanh"]


def test_rules_by_hand():
    # (a): DSA clusters and not clearly less than SVCCA -> like geometry
    assert cluster_answer(0.001, 0.30, 0.001, 0.35) == "agrees"
    # DSA clusters but 0.1 or more below SVCCA -> like topology (the topology rule)
    assert cluster_answer(0.001, 0.10, 0.001, 0.35) == "differs"
    # DSA does not cluster, SVCCA does -> like topology
    assert cluster_answer(0.4, 0.01, 0.001, 0.35) == "differs"
    # neither clusters -> undecided
    assert cluster_answer(0.4, 0.01, 0.3, 0.02) == "inconclusive at this zoo size"
    # DSA clusters, SVCCA does not -> like geometry (DSA sees the label)
    assert cluster_answer(0.01, 0.2, 0.3, 0.02) == "agrees"
    assert cluster_answer(math.nan, math.nan, 0.3, 0.02) == "inconclusive at this zoo size"
    # (b)
    assert trained_answer(0.3, 0.1, 0.01, 0.99) == "agrees"
    assert trained_answer(0.1, 0.3, 0.99, 0.01) == "differs"
    assert trained_answer(0.2, 0.19, 0.3, 0.7) == "inconclusive at this zoo size"


def test_parameters_follow_the_documented_rule():
    rng = np.random.default_rng(0)
    short = [rng.standard_normal((3, 100, 6)) for _ in range(3)]
    p = zoo_parameters(short)
    assert (p["n_delays"], p["delay_interval"]) == (11, 1)  # 10% of 100 steps, every step
    long = [rng.standard_normal((2, 500, 6)) for _ in range(3)]
    p = zoo_parameters(long)
    # 10% of 500 steps with at most 11 delays: every 5th step
    assert (p["n_delays"], p["delay_interval"]) == (11, 5)
    assert 1 <= p["rank"] <= 30


def test_the_section_renders_with_computed_numbers(dynamics_by_arch, tmp_path):
    from rnnzoo_paper.figures.common import FigureContext
    from rnnzoo_paper.pipeline import PipelineResult
    from rnnzoo_paper.report import write_report

    zoo, mats, fig4, res = dynamics_by_arch
    lines = report_section(res, ["cdi"], {"dsa.png"})
    text = "\n".join(lines)
    assert text.startswith(TITLE)
    assert "![dsa.png](dsa.png)" in text
    q = _question(res, "dsa/cdi/cluster/arch")
    excess = q.numbers["silhouette"] - q.numbers["chance_silhouette"]
    assert f"| cdi | architecture | {excess:+.3f} (" in text  # the computed number
    assert "*Rule (a):*" in text
    assert "*Rule (b):*" in text
    assert not re.search(r"\b(agrees|differs)\b", text)  # the questions' own words
    assert not re.search(r"\b(nan|inf)\b", text, flags=re.IGNORECASE)
    # the section sits in report.md (its figure not also among the paper's figures)
    result = PipelineResult(out=tmp_path, zoo_location=str(zoo.location), tasks=["cdi"])
    result.figures = [tmp_path / "dsa.png"]
    ctx = FigureContext(zoo, ["cdi"], mats, {}, fig4, None, dsa=res)
    report = write_report(result, zoo, ctx, 1.0).read_text()
    assert TITLE in report
    assert report.count("![dsa.png](dsa.png)") == 1
    assert report.index(TITLE) < report.index("## Timings")
    # and every answer is in the JSON form
    data = res.to_dict()
    json.dumps(data)
    assert {q["answer"] for q in data["questions"]} <= {
        LIKE_GEOMETRY,
        LIKE_TOPOLOGY,
        CLOSER_TANH,
        CLOSER_UNTRAINED,
        UNDECIDED,
    }


def test_the_figure_is_a_png_with_the_expected_panels(dynamics_by_arch, tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    from rnnzoo_paper.figures import dsa as fig_dsa
    from rnnzoo_paper.figures import figure_list
    from rnnzoo_paper.figures.common import FigureContext

    zoo, mats, fig4, res = dynamics_by_arch
    ctx = FigureContext(zoo, ["cdi"], mats, {}, fig4, None, dsa=res)
    fig = fig_dsa.figure(ctx)
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 7  # one task row of three panels, Fig. 4's row of four
    assert titles[0].startswith("context-dependent integration: DSA MDS: by architecture")
    assert "rank 5" in titles[0]
    assert "by activation" in titles[1]
    assert "clustering by label" in titles[2]
    assert titles[3].startswith("SVCCA (Fig. 4b)")
    assert titles[4].startswith("DSA (rank 5):")
    assert titles[5].startswith("DSA, rank check (rank 5):")
    assert titles[6].startswith("MDS of DSA distances")
    bars = [t.get_text() for t in fig.axes[2].get_legend().get_texts()]
    assert bars[:3] == ["DSA", "DSA, rank check (rank 5)", "SVCCA"]
    for ax in fig.axes:
        assert ax.get_xlabel(), ax.get_title()
        assert ax.get_ylabel(), ax.get_title()
        assert ax.get_legend() is not None or ax in fig.axes[3:6], ax.get_title()
    path = fig_dsa.draw(ctx, tmp_path / "dsa.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = imread(path)
    assert min(img.shape[:2]) > 600
    assert float(np.std(img[..., :3])) > 0.05
    assert "dsa.png" in [name for name, *_ in figure_list()]
    # without a DSA result (another run, a figure test): a PNG that says so
    empty = FigureContext(zoo, ["cdi"], mats, {}, None, None)
    assert fig_dsa.draw(empty, tmp_path / "empty.png").is_file()


def test_a_rerun_reuses_the_stored_matrices(dynamics_by_arch):
    zoo, mats, fig4, res = dynamics_by_arch
    again = compute_dsa(zoo, ["cdi"], dist.Compute(progress=False), mats, fig4, firmness=False)
    first = res.matrices["cdi"]
    assert again.matrices["cdi"].attrs["paper_cache_key"] == first.attrs["paper_cache_key"]
    np.testing.assert_array_equal(again.matrices["cdi"].values, first.values)
    stored = zoo.analysis("cdi", "paper-distance-dsa")
    assert isinstance(stored, xr.Dataset)
    assert again.params == res.params


def test_a_changed_search_preset_recomputes_the_stored_matrices(dynamics_by_arch, monkeypatch):
    # the cache key holds the presets' definitions, not only their names: a `thorough` with
    # other starts must not reuse matrices stored by the old one
    import rnnzoo_metrics.dsa as rdsa

    zoo, mats, fig4, res = dynamics_by_arch
    first = res.matrices["cdi"].attrs["paper_cache_key"]
    thorough = rdsa.SEARCHES["thorough"]
    changed = {**rdsa.SEARCHES, "thorough": (thorough[0] + 1, *thorough[1:])}
    monkeypatch.setattr(rdsa, "SEARCHES", changed)
    again = compute_dsa(zoo, ["cdi"], dist.Compute(progress=False), mats, fig4, firmness=False)
    assert again.matrices["cdi"].attrs["paper_cache_key"] != first
    # nor one whose float32 stage stops elsewhere, that polishes another number of starts, or
    # polishes them another way
    seen = {first, again.matrices["cdi"].attrs["paper_cache_key"]}
    stop = {**rdsa.SEARCHES, "thorough": (*thorough[:3], thorough[3] / 10)}
    for name, value in (("SEARCHES", stop), ("POLISHED", rdsa.POLISHED + 1), ("POLISH", "bb")):
        monkeypatch.undo()
        monkeypatch.setattr(rdsa, name, value)
        other = compute_dsa(zoo, ["cdi"], dist.Compute(progress=False), mats, fig4, firmness=False)
        assert other.matrices["cdi"].attrs["paper_cache_key"] not in seen
        seen.add(other.matrices["cdi"].attrs["paper_cache_key"])


def test_the_fast_search_is_stored_apart_and_named_in_the_report(dynamics_by_arch):
    # `--dsa-search fast` (paper-sized zoos) must not overwrite the default search's
    # matrices (hours of work on such a zoo), nor reuse them
    from rnnzoo_metrics import InputError

    zoo, mats, fig4, _ = dynamics_by_arch
    compute = dist.Compute(progress=False)
    thorough = compute_dsa(zoo, ["cdi"], compute, mats, fig4, firmness=False, rank_check=False)
    key = thorough.matrices["cdi"].attrs["paper_cache_key"]
    fast = compute_dsa(
        zoo, ["cdi"], compute, mats, fig4, firmness=False, rank_check=False, search="fast"
    )
    d = fast.matrices["cdi"]
    assert json.loads(d.attrs["params"])["search"] == "fast"
    assert json.loads(fast.trained_untrained.attrs["params"])["search"] == "fast"
    assert d.attrs["paper_cache_key"] != key
    assert (
        zoo.analysis("cdi", "paper-distance-dsa-search-fast").attrs["paper_cache_key"]
        == (d.attrs["paper_cache_key"])
    )
    assert zoo.analysis("cdi", "paper-distance-dsa").attrs["paper_cache_key"] == key
    assert zoo.analysis("cdi", "paper-embedding-dsa-search-fast") is not None
    assert fast.params == thorough.params  # the same rule, only the search differs
    # on this zoo, built to answer clearly, both searches answer alike
    assert [q.answer for q in fast.questions] == [q.answer for q in thorough.questions]
    text = "\n".join(report_section(fast, ["cdi"], set()))
    assert "optimised by the `fast` search" in text
    assert "`paper-distance-dsa-search-fast`" in text
    assert "the default `thorough` search" in "\n".join(report_section(thorough, ["cdi"], set()))
    assert fast.to_dict()["search"] == "fast"
    with pytest.raises(InputError, match="unknown DSA search 'quick'; choose from thorough"):
        compute_dsa(zoo, ["cdi"], compute, mats, fig4, search="quick")


def test_an_answer_the_rank_check_does_not_repeat_is_not_kept(dynamics_by_arch):
    from rnnzoo_paper.dynamical_similarity import ANSWERS, Question, apply_rank_check

    def question(verdict):
        return Question(
            "dsa/cdi/trained-untrained",
            "beyond the paper",
            "?",
            "result",
            verdict,
            "rule",
            {"dsa_trained_relu_untrained_relu": 0.1, "dsa_trained_relu_trained_tanh": 0.2},
            answers=ANSWERS["trained-untrained"],
        )

    q, same = question("differs"), question("differs")
    apply_rank_check([q], [same], {"cdi": 8})
    assert q.answer == CLOSER_UNTRAINED
    assert q.rank_check == {
        "rank": 8,
        "verdict": "differs",
        "answer": CLOSER_UNTRAINED,
        "agrees": True,
    }
    q, other = question("differs"), question("agrees")
    apply_rank_check([q], [other], {"cdi": 8})
    assert q.answer == UNDECIDED
    assert q.rank_check["answer"] == CLOSER_TANH
    assert "at rank 8 (99% of the energy): closer to trained tanh" in q.result
    # on the synthetic zoos the check's rank is the rule's (the embedding has rank 5): kept
    _, _, _, res = dynamics_by_arch
    for q in res.questions:
        if q.numbers:
            assert q.rank_check["agrees"], q.key
            assert q.rank_check["rank"] == 5


def test_mds_panels_zoom_to_the_bulk_and_count_the_networks_outside():
    pytest.importorskip("matplotlib")
    from rnnzoo_paper.figures.dsa import zoom
    from rnnzoo_paper.style import new_figure

    rng = np.random.default_rng(0)
    xy = np.vstack([rng.normal(0, 0.01, (39, 2)), [[1.5, 0.0]]])  # one far-away network
    ax = new_figure(4, 4).add_subplot()
    ax.scatter(xy[:, 0], xy[:, 1])
    assert zoom(ax, xy) == 1
    assert ax.get_xlim()[1] < 0.2
    assert "1 network(s) outside the view" in [t.get_text() for t in ax.texts]
    ax = new_figure(4, 4).add_subplot()
    assert zoom(ax, xy[:39]) == 0  # no outlier: the view is left alone
    assert not ax.texts
