"""The zoo store: template, layout on disk, per-network writes, idempotence, faults."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from rnnzoo_train.records import Configuration, HyperParameters, SearchTrial
from rnnzoo_train.tasks import get_task
from rnnzoo_train.writer import ZooWriter
from rnnzoo_train.zoo import ZarrZooWriter, ZooError, ZooPlanError, layout, open_zoo
from rnnzoo_train.zoo.testing import missing_chunks, small_plan, synthetic_result
from rnnzoo_train.zoo.verify import verify_zoo


@pytest.fixture(scope="module")
def task():
    return get_task("flipflop", n_steps=12, n_probe=3)


@pytest.fixture(scope="module")
def plan(task):
    return small_plan(task)


@pytest.fixture(scope="module")
def results(plan, task):
    return {nid: synthetic_result(plan, task, nid) for nid in plan.network_ids()}


def _new(path, plan, task) -> ZarrZooWriter:
    w = ZarrZooWriter(path)
    w.prepare_task(plan, task)
    return w


def _meta(path: Path, node: str) -> dict:
    return json.loads((path / node / "zarr.json").read_text())


def test_writer_implements_the_protocol(tmp_path):
    assert isinstance(ZarrZooWriter(tmp_path / "z.zarr"), ZooWriter)
    assert not (tmp_path / "z.zarr").exists()  # nothing is written before prepare_task


def test_template_lists_every_network_pending(tmp_path, plan, task):
    path = tmp_path / "z.zarr"
    _new(path, plan, task).close()
    zoo = open_zoo(path)
    assert zoo.tasks == ["flipflop"]
    attrs = zoo.attrs
    assert attrs["rnnzoo_schema_version"] == layout.SCHEMA_VERSION
    assert attrs["preset"] == "test"
    assert {"rnnzoo-train", "torch", "zarr", "xarray", "numpy"} <= set(attrs["rnnzoo_generator"])
    index = zoo.index("flipflop")
    assert list(index.index) == plan.network_ids()
    assert set(index["status"]) == {"pending"}
    assert index["train_loss"].isna().all()
    assert list(index.columns[:0]) == []
    for col in (
        "arch",
        "activation",
        "units",
        "l2",
        "seed",
        "clip",
        "lr",
        "decay",
        "momentum",
        "train_loss",
        "val_loss",
        "test_loss",
        "performance",
        "solved",
        "group",
    ):
        assert col in index.columns
    assert zoo.task_attrs("flipflop")["task_config"] == task.config()
    assert zoo.plan("flipflop") == plan
    # template only, yet every chunk of every array is written (pending rows: fill values),
    # so that a missing chunk is always damage (docs/zoo-format.md section 1)
    assert missing_chunks(path) == []
    hidden = zoo.hidden_states("flipflop")["gru-tanh-u8"]["hidden_trained"].values
    assert np.isnan(hidden).all()
    assert len(zoo.search("flipflop")) == len(plan.configurations) * plan.n_trials


def test_chunks_one_network_each_with_crc32c_and_vlen_strings(tmp_path, plan, task):
    path = tmp_path / "z.zarr"
    _new(path, plan, task).close()
    group = "gru-tanh-u8"
    for var in ("hidden_trained", "final_W_h", "initial_W_x", "loss_curve", "status"):
        meta = _meta(path, f"flipflop/networks/{group}/{var}")
        assert meta["chunk_grid"]["configuration"]["chunk_shape"][0] == 1
        assert meta["codecs"][-1]["name"] == "crc32c"
        assert meta["dimension_names"][0] == "network"
    # the index is one chunk per variable (opened with one read per variable)
    meta = _meta(path, "flipflop/index/train_loss")
    assert meta["chunk_grid"]["configuration"]["chunk_shape"] == [len(plan.network_ids())]
    assert meta["codecs"][-1]["name"] == "crc32c"
    for node in ("flipflop/index/network", "flipflop/index/status", "flipflop/index/message"):
        meta = _meta(path, node)
        assert meta["data_type"] == "string"  # variable-length, not fixed-width <U
        assert meta["codecs"][0]["name"] == "vlen-utf8"
    # consolidated metadata covers every node
    root = _meta(path, "")
    consolidated = root["consolidated_metadata"]["metadata"]
    assert "flipflop/networks/gru-tanh-u8/hidden_trained" in consolidated
    assert "flipflop/index/status" in consolidated


def test_every_array_round_trips(tmp_path, plan, task, results):
    path = tmp_path / "z.zarr"
    with _new(path, plan, task) as w:
        w.write_results("flipflop", list(results.values()))
        assert w.completed("flipflop") == set(results)
    zoo = open_zoo(path)
    index = zoo.index("flipflop")
    for nid, r in results.items():
        row = index.loc[nid]
        assert row["status"] == "ok"
        assert row["train_loss"] == pytest.approx(r.train_loss)
        assert row["test_loss"] == pytest.approx(r.test_loss)
        assert row["lr"] == r.spec.hparams.lr
        assert row["clip"] == r.spec.hparams.clip
        assert row["performance"] == pytest.approx(r.performance)
        assert bool(row["solved"])
        for which, params in (("initial", r.params_initial), ("final", r.params_final)):
            stored = zoo.weights("flipflop", nid, which)
            assert set(stored) == set(params)
            for k in params:
                np.testing.assert_array_equal(stored[k], params[k])
        tree = zoo.hidden_states("flipflop", [nid], which="trained")
        (node,) = tree.children.values()
        np.testing.assert_array_equal(node["hidden_trained"].values[0], r.hidden_trained)
        tree = zoo.hidden_states("flipflop", [nid], which="untrained")
        (node,) = tree.children.values()
        np.testing.assert_array_equal(node["hidden_untrained"].values[0], r.hidden_untrained)
        ds = zoo.tree[f"flipflop/networks/{r.spec.config.group}"].to_dataset()
        sel = ds.sel(network=nid)
        np.testing.assert_array_equal(sel["outputs_trained"].values, r.outputs_trained)
        np.testing.assert_array_equal(sel["loss_curve"].values, r.loss_curve)
        np.testing.assert_array_equal(ds["loss_iteration"].values, r.loss_iterations)
        assert str(sel["status"].values) == "ok"
    assert verify_zoo(path).ok


def _file_digests(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file() and "/networks/" in str(p)
    }


def test_writes_are_idempotent(tmp_path, plan, task, results):
    path = tmp_path / "z.zarr"
    some = list(results.values())[:3]
    with _new(path, plan, task) as w:
        w.write_results("flipflop", some)
        first = _file_digests(path)
        w.write_results("flipflop", some)
        assert _file_digests(path) == first
        w.write_results("flipflop", some[:1])
        assert _file_digests(path) == first
    index = open_zoo(path).index("flipflop")
    assert (index["status"] == "ok").sum() == 3


def test_diverged_and_failed_networks_are_recorded(tmp_path, plan, task, results):
    path = tmp_path / "z.zarr"
    ids = plan.network_ids()
    diverged = synthetic_result(plan, task, ids[0], status="diverged")
    failed = synthetic_result(plan, task, ids[1], status="failed")
    with _new(path, plan, task) as w:
        w.write_results("flipflop", [diverged, failed, results[ids[2]]])
        # a diverged network is a finished result (resume skips it); a failed one is not
        assert w.completed("flipflop") == {ids[0], ids[2]}
    zoo = open_zoo(path)
    index = zoo.index("flipflop")
    assert index.loc[ids[0], "status"] == "diverged"
    assert index.loc[ids[0], "last_finite_loss"] == pytest.approx(diverged.last_finite_loss)
    assert np.isfinite(index.loc[ids[0], "last_finite_loss"])
    assert index.loc[ids[0], "diverged_at"] == diverged.diverged_at >= 0
    curve = zoo.tree[f"flipflop/networks/{diverged.spec.config.group}"]["loss_curve"]
    curve = curve.sel(network=ids[0]).values
    assert np.isnan(curve[-1])
    assert np.isfinite(curve[0])
    assert index.loc[ids[1], "status"] == "failed"
    assert index.loc[ids[1], "message"] == "synthetic failure"
    assert np.isnan(zoo.weights("flipflop", ids[1])["W_h"]).all()
    # a later run that succeeds replaces the failure
    with ZarrZooWriter(path) as w:
        w.prepare_task(plan, task)
        w.write_results("flipflop", [results[ids[1]]])
    np.testing.assert_array_equal(
        open_zoo(path).weights("flipflop", ids[1])["W_h"], results[ids[1]].params_final["W_h"]
    )
    assert verify_zoo(path).ok


def test_search_trials_round_trip(tmp_path, plan, task):
    path = tmp_path / "z.zarr"
    config = plan.configurations[1]
    trials = [
        SearchTrial(
            "flipflop",
            config,
            t,
            100 + t,
            HyperParameters(0.5 * (t + 1), 1e-3, 0.5, 0.9),
            plan.search_iterations,
            "ok" if t else "diverged",
            0.1 * (t + 1),
            t == 1,
        )
        for t in range(plan.n_trials)
    ]
    with _new(path, plan, task) as w:
        w.write_search("flipflop", trials)
        w.write_search("flipflop", trials[1:])  # idempotent
        assert sorted(w.search("flipflop"), key=lambda t: t.trial) == trials
        bad = replace(trials[0], trial=plan.n_trials)
        with pytest.raises(ZooPlanError, match="not in the plan"):
            w.write_search("flipflop", [bad])
    with ZarrZooWriter(path) as w:  # a resumed run sees the recorded search
        w.prepare_task(plan, task)
        assert sorted(w.search("flipflop"), key=lambda t: t.trial) == trials
    table = open_zoo(path).search("flipflop")
    chosen = table[table["chosen"]]
    assert list(chosen["config"]) == [config.key]
    assert list(chosen["trial_index"]) == [1]


def test_resume_with_a_different_plan_is_refused(tmp_path, plan, task, results):
    path = tmp_path / "z.zarr"
    with _new(path, plan, task) as w:
        w.write_results("flipflop", list(results.values())[:2])
    before = _file_digests(path)
    other = replace(plan, iterations=plan.iterations + 10)
    with pytest.raises(ZooPlanError, match="iterations: zoo has 20, this run has 30"):
        ZarrZooWriter(path).prepare_task(other, task)
    other_task = get_task("flipflop", n_steps=13, n_probe=3)
    with pytest.raises(ValueError, match="task_config"):
        ZarrZooWriter(path).prepare_task(replace(plan, task_config=other_task.config()), other_task)
    assert _file_digests(path) == before
    with ZarrZooWriter(path) as w:  # the original plan still resumes
        w.prepare_task(plan, task)
        assert len(w.completed("flipflop")) == 2


def test_a_bad_configuration_leaves_nothing_behind(tmp_path, plan, task):
    path = tmp_path / "z.zarr"
    bad = replace(plan, configurations=(Configuration("transformer", "tanh", 8, 1e-4),))
    with pytest.raises(ValueError, match="unknown architecture"):
        ZarrZooWriter(path).prepare_task(bad, task)
    assert not path.exists()
    # into an existing zoo: the zoo is untouched and still verifies
    _new(path, plan, task).close()
    sine = get_task("sine", n_steps=10, n_probe=2)
    bad_sine = replace(small_plan(sine), configurations=bad.configurations)
    with pytest.raises(ValueError, match="unknown architecture"):
        ZarrZooWriter(path).prepare_task(bad_sine, sine)
    assert not (path / "sine").exists()
    assert open_zoo(path).tasks == ["flipflop"]
    assert verify_zoo(path).ok


def test_wrong_shapes_are_rejected_before_anything_is_written(tmp_path, plan, task, results):
    path = tmp_path / "z.zarr"
    nid = plan.network_ids()[0]
    r = results[nid]
    bad = replace(r, hidden_trained=r.hidden_trained[:, :-1])
    with _new(path, plan, task) as w:
        with pytest.raises(ZooPlanError, match=r"hidden_trained is shape .* expected shape"):
            w.write_results("flipflop", [bad])
        unknown = replace(r, spec=replace(r.spec, seed=99))
        with pytest.raises(ZooPlanError, match="not in the plan"):
            w.write_results("flipflop", [unknown])
        assert w.completed("flipflop") == set()
    assert set(open_zoo(path).index("flipflop")["status"]) == {"pending"}


def test_a_foreign_directory_is_refused(tmp_path, plan, task):
    path = tmp_path / "mydata"
    path.mkdir()
    (path / "notes.txt").write_text("keep me")
    with pytest.raises(ZooError, match="not an rnnzoo zoo"):
        ZarrZooWriter(path).prepare_task(plan, task)
    assert (path / "notes.txt").read_text() == "keep me"


def test_a_second_writer_is_refused_while_the_first_is_open(tmp_path, plan, task):
    path = tmp_path / "z.zarr"
    first = _new(path, plan, task)
    with pytest.raises(ZooError, match="being written by pid"):
        ZarrZooWriter(path).prepare_task(plan, task)
    first.close()
    _new(path, plan, task).close()  # released on close


def test_concurrent_region_writes_lose_no_network(tmp_path, task):
    """DESIGN.md section 3: parallel region writes must own whole chunks (xarray#8371)."""
    plan = small_plan(task, seeds=tuple(range(4)))
    path = tmp_path / "z.zarr"
    rs = [synthetic_result(plan, task, nid) for nid in plan.network_ids()]
    with _new(path, plan, task) as w, ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda r: w.write_results("flipflop", [r]), rs))
    zoo = open_zoo(path)
    for r in rs:
        np.testing.assert_array_equal(
            zoo.weights("flipflop", r.network_id)["W_h"], r.params_final["W_h"]
        )
    assert verify_zoo(path).ok


def test_storage_choices_float16_and_no_untrained_hidden_states(tmp_path, task):
    """The choices that keep a paper-scale zoo downloadable (docs/zoo-format.md)."""
    lean = replace(
        small_plan(task),
        metadata={"zoo_storage": {"hidden_dtype": "float16", "untrained_hidden": False}},
    )
    path = tmp_path / "lean.zarr"
    rs = [synthetic_result(lean, task, nid) for nid in lean.network_ids()]
    with _new(path, lean, task) as w:
        w.write_results("flipflop", rs)
    meta = _meta(path, "flipflop/networks/gru-tanh-u8/hidden_trained")
    assert meta["data_type"] == "float16"
    assert not (path / "flipflop/networks/gru-tanh-u8/hidden_untrained").exists()
    assert _meta(path, "flipflop/networks/gru-tanh-u8/final_W_h")["data_type"] == "float32"
    zoo = open_zoo(path)
    assert zoo.task_attrs("flipflop")["storage"] == lean.metadata["zoo_storage"]
    for r in rs[:3]:
        (node,) = zoo.hidden_states("flipflop", [r.network_id]).children.values()
        np.testing.assert_array_equal(
            node["hidden_trained"].values[0], r.hidden_trained.astype(np.float16)
        )
        (node,) = zoo.hidden_states("flipflop", [r.network_id], "untrained").children.values()
        np.testing.assert_allclose(
            node["hidden_untrained"].values[0], r.hidden_untrained, rtol=0, atol=1e-6
        )
        assert "recomputed" in node["hidden_untrained"].attrs["description"]
    assert verify_zoo(path).ok
    # float16 saturates: a state beyond 65504 is stored as inf and the index says so
    big = replace(rs[0], hidden_trained=rs[0].hidden_trained * 0 + 1e6)
    with ZarrZooWriter(path) as w:
        w.prepare_task(lean, task)
        w.write_results("flipflop", [big])
    (node,) = open_zoo(path).hidden_states("flipflop", [big.network_id]).children.values()
    assert np.isinf(node["hidden_trained"].values).all()
    assert "float16 range" in open_zoo(path).index("flipflop").loc[big.network_id, "message"]
    assert verify_zoo(path).ok
    # resuming with an explicit, different choice is refused; the default adopts the zoo's
    with pytest.raises(ZooPlanError, match="storage"):
        ZarrZooWriter(path, hidden_dtype="float32").prepare_task(lean, task)
    with ZarrZooWriter(path) as w:
        w.prepare_task(lean, task)
        w.write_results("flipflop", rs[:1])
    with pytest.raises(ZooPlanError, match="hidden_dtype"):
        ZarrZooWriter(tmp_path / "x.zarr", hidden_dtype="bfloat16")


def test_the_completion_marks_are_written_last(tmp_path, plan, task, results):
    """A kill at any moment never leaves a row marked complete with values missing.

    Chunks are replaced atomically (temporary file + rename, so a chunk's mtime is when it
    was written); the index ``status`` must be written after every other chunk of the
    network and of the index, and a search trial's ``status``/``chosen`` after its values.
    """
    path = tmp_path / "z.zarr"
    r = results[plan.network_ids()[0]]
    with _new(path, plan, task) as w:
        w.write_results("flipflop", [r])
        w.write_search(
            "flipflop",
            [SearchTrial("flipflop", r.spec.config, 0, 7, r.spec.hparams, 10, "ok", 0.5, True)],
        )

    def mtimes(pattern: str) -> dict[str, int]:
        return {str(p.relative_to(path)): p.stat().st_mtime_ns for p in path.glob(pattern)}

    index = mtimes("flipflop/index/*/c/*")
    status = index.pop("flipflop/index/status/c/0")
    group = mtimes(f"flipflop/networks/{r.spec.config.group}/*/c/0*")
    assert len(index) >= len(layout.INDEX_VARIABLES)
    assert len(group) >= 10
    assert status >= max(index.values())
    assert status >= max(group.values())
    search = mtimes("flipflop/search/*/c/*")
    marks = [search.pop(f"flipflop/search/{n}/c/0") for n in ("status", "chosen")]
    assert min(marks) >= max(search.values())


def test_string_arrays_of_any_shape_become_vlen_str():
    from rnnzoo_train.zoo.layout import as_vlen_str

    grid = as_vlen_str(np.array([["fixed", "slow"], ["", "fixed"]], dtype=object))
    assert grid.shape == (2, 2)
    assert grid.dtype == object
    assert grid[1, 1] == "fixed"
    assert grid[0, 1] == "slow"
    assert as_vlen_str([]).shape == (0,)
    assert as_vlen_str("x").shape == ()
    assert as_vlen_str("x")[()] == "x"
