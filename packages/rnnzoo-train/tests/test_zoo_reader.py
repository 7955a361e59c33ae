"""The reader API of architecture.md section 4: open_zoo, index, select, networks, analyses."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import xarray as xr

from rnnzoo_train.tasks import get_task
from rnnzoo_train.zoo import ZarrZooWriter, ZooError, ZooKeyError, ZooSchemaError, open_zoo
from rnnzoo_train.zoo.testing import small_plan, synthetic_result


@pytest.fixture(scope="module")
def zoo_path(tmp_path_factory):
    """A two-task zoo with all networks written (one of them diverged)."""
    path = tmp_path_factory.mktemp("reader") / "zoo.zarr"
    with ZarrZooWriter(path) as w:
        for task in (get_task("flipflop", n_steps=12, n_probe=3), get_task("cdi", n_steps=8)):
            plan = small_plan(task)
            w.prepare_task(plan, task)
            ids = plan.network_ids()
            results = [synthetic_result(plan, task, i) for i in ids[1:]]
            results.append(synthetic_result(plan, task, ids[0], status="diverged"))
            w.write_results(task.name, results)
    return path


@pytest.fixture
def zoo(zoo_path):
    with open_zoo(zoo_path) as z:
        yield z


def test_tasks_index_and_select(zoo):
    assert zoo.tasks == ["flipflop", "cdi"]
    index = zoo.index("cdi")
    assert index.index.name == "network"
    assert len(index) == 8
    ok = zoo.select("cdi", status="ok")
    assert len(ok) == 7
    assert set(ok["status"]) == {"ok"}
    gru = zoo.select("cdi", arch="gru", units=8, seed=[1])
    assert list(gru.index) == ["gru-tanh-u8-l2_1e-04-s001", "gru-tanh-u8-l2_1e-03-s001"]
    assert list(zoo.select("cdi", arch=["lstm", "vanilla"], status="ok")["arch"].unique()) == [
        "vanilla",
        "lstm",
    ]
    with pytest.raises(ValueError, match="cannot select by 'colour'.*arch"):
        zoo.select("cdi", colour="red")
    with pytest.raises(KeyError, match="no task 'sine'.*flipflop, cdi"):
        zoo.index("sine")


def test_task_and_probe_are_rebuilt(zoo):
    task = zoo.task("cdi")
    assert task.config() == get_task("cdi", n_steps=8).config()
    probe = zoo.probe("cdi")
    fresh = task.probe()
    np.testing.assert_array_equal(probe.inputs, fresh.inputs)
    np.testing.assert_array_equal(probe.targets, fresh.targets)
    assert set(probe.labels) == set(fresh.labels)
    for k in fresh.labels:
        np.testing.assert_array_equal(probe.labels[k], fresh.labels[k])


@pytest.mark.parametrize("nid", ["gru-tanh-u8-l2_1e-03-s001", "lstm-tanh-u4-l2_1e-04-s000"])
def test_network_runs_and_reproduces_the_stored_hidden_states(zoo, nid):
    net = zoo.network("flipflop", nid)
    assert net.cell.arch == nid.split("-")[0]
    probe = zoo.probe("flipflop")
    states = net.run(probe.inputs)
    units = net.cell.n_units
    tree = zoo.hidden_states("flipflop", [nid])
    (node,) = tree.children.values()
    np.testing.assert_allclose(
        states[..., :units].numpy(), node["hidden_trained"].values[0], rtol=0, atol=1e-6
    )
    outputs = net.outputs(probe.inputs).numpy()
    group = zoo.tree[f"flipflop/networks/{net.cell.arch}-tanh-u{units}"].to_dataset()
    np.testing.assert_allclose(
        outputs, group["outputs_trained"].sel(network=nid).values, rtol=0, atol=1e-6
    )
    untrained = zoo.network("flipflop", nid, which="initial", dtype=torch.float64)
    assert untrained.params["W_h"].dtype == torch.float64
    h0 = untrained.run(probe.inputs)[..., :units].numpy()
    (node,) = zoo.hidden_states("flipflop", [nid], which="untrained").children.values()
    np.testing.assert_allclose(h0, node["hidden_untrained"].values[0], atol=1e-5)


def test_population_stacks_one_group(zoo):
    ids = list(zoo.select("flipflop", group="gru-tanh-u8").index)
    cell, params = zoo.population("flipflop", ids)
    assert params["W_h"].shape == (4, 8, 24)
    for p, nid in enumerate(ids):
        np.testing.assert_array_equal(params["W_h"][p].numpy(), zoo.weights("flipflop", nid)["W_h"])
    with pytest.raises(ValueError, match="one group"):
        zoo.population("flipflop", list(zoo.index("flipflop").index))


def test_hidden_states_tree_carries_the_network_coordinates(zoo):
    tree = zoo.hidden_states("cdi")
    assert set(tree.children) == {"gru-tanh-u8", "vanilla-relu-u6", "lstm-tanh-u4"}
    node = tree["gru-tanh-u8"].to_dataset()
    assert node["hidden_trained"].dims == ("network", "probe", "time", "unit")
    for coord in ("arch", "activation", "units", "l2", "seed", "status"):
        assert node[coord].dims == ("network",)
    assert "context" in node.coords  # probe labels along probe
    assert node.sizes["network"] == 4


def test_weights_errors_are_one_line(zoo):
    with pytest.raises(KeyError, match="unknown network id.*'nope'"):
        zoo.weights("flipflop", "nope")
    with pytest.raises(ValueError, match="'initial' or 'final'"):
        zoo.weights("flipflop", "gru-tanh-u8-l2_1e-03-s001", which="best")


def test_analysis_round_trip_and_replace(zoo_path, tmp_path):
    import shutil

    path = tmp_path / "zoo.zarr"
    shutil.copytree(zoo_path, path)
    zoo = open_zoo(path)
    ids = list(zoo.index("flipflop").index[:3])
    ds = xr.Dataset(
        {"q": (("network", "fixed_point"), np.arange(6.0).reshape(3, 2))},
        coords={"network": ids, "kind": ("fixed_point", ["stable", "saddle"])},
    )
    zoo.write_analysis("flipflop", "fixed_points", ds)
    back = zoo.analysis("flipflop", "fixed_points")
    xr.testing.assert_equal(back[["q"]].load(), ds[["q"]])
    assert list(back["kind"].values) == ["stable", "saddle"]
    assert zoo.analyses("flipflop") == ["fixed_points"]
    zoo.write_analysis("flipflop", "fixed_points", ds.isel(network=[0]))  # replaced
    assert open_zoo(path).analysis("flipflop", "fixed_points").sizes["network"] == 1
    # strings are variable-length, chunks checksummed, metadata re-consolidated
    meta = json.loads((path / "flipflop/analysis/fixed_points/kind/zarr.json").read_text())
    assert meta["data_type"] == "string"
    assert meta["codecs"][-1]["name"] == "crc32c"
    root = json.loads((path / "zarr.json").read_text())
    assert "flipflop/analysis/fixed_points/q" in root["consolidated_metadata"]["metadata"]
    tree = xr.DataTree.from_dict({"/": ds, "graph": xr.Dataset({"w": ("node", [1.0, 2.0])})})
    zoo.write_analysis("flipflop", "graphs", tree)
    back = open_zoo(path).analysis("flipflop", "graphs")
    assert isinstance(back, xr.DataTree)
    np.testing.assert_array_equal(back["graph"]["w"].values, [1.0, 2.0])
    with pytest.raises(ValueError, match="analysis name"):
        zoo.write_analysis("flipflop", "a/b", ds)
    with pytest.raises(KeyError, match="no analysis 'nope'.*fixed_points"):
        zoo.analysis("flipflop", "nope")


def test_unknown_schema_major_is_refused(zoo_path, tmp_path):
    import shutil

    path = tmp_path / "zoo.zarr"
    shutil.copytree(zoo_path, path)
    meta = json.loads((path / "zarr.json").read_text())
    meta["attributes"]["rnnzoo_schema_version"] = "2.0.0"
    (path / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(ZooSchemaError, match=r"schema 2\.0\.0.*reads schema 1\.x only.*upgrade"):
        open_zoo(path)
    del meta["attributes"]["rnnzoo_schema_version"]
    (path / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(ZooSchemaError, match="not an rnnzoo zoo"):
        open_zoo(path)


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_zoo(tmp_path / "nothing.zarr")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ZooError, match="not a Zarr v3 store"):
        open_zoo(tmp_path / "empty")


def test_unknown_ids_are_named_in_one_line_with_how_to_list_them(zoo):
    good = list(zoo.select("flipflop", group="gru-tanh-u8").index)
    typo = good[0].replace("-s0", "-s9")
    with pytest.raises(ZooKeyError) as err:
        zoo.population("flipflop", [good[1], typo, "nope"])
    message = str(err.value)
    assert isinstance(err.value, KeyError)
    assert "\n" not in message
    assert not message.startswith("'")
    assert f"2 unknown network id(s) in task 'flipflop': {typo!r}, 'nope'" in message
    assert repr(good[1]) not in message.split("did you mean")[0]  # known ids are not listed
    assert "zoo.index('flipflop').index" in message
    many = [f"x{i}" for i in range(9)]
    with pytest.raises(ZooKeyError, match=r"9 unknown .*'x4' and 4 more"):
        zoo.hidden_states("flipflop", many)
    with pytest.raises(ZooKeyError, match="did you mean"):
        zoo.network("flipflop", good[0].replace("1e-04", "1e-4"))
    with pytest.raises(ZooKeyError, match="its groups are .*gru-tanh-u8"):
        zoo.cell("flipflop", "gru-tanh-u99")
    with pytest.raises(ValueError, match="at least one network id"):
        zoo.population("flipflop", [])
    cell, params = zoo.population("flipflop", good[0])  # one id
    assert params["W_h"].shape[0] == 1


def _string_arrays(ds: xr.Dataset) -> dict[str, np.ndarray]:
    return {
        name: np.asarray(var.values)
        for name, var in ds.variables.items()
        if var.dtype.kind in "OUST"
    }


@pytest.mark.parametrize("chunks", [None, {}])
def test_string_data_are_plain_python_str(zoo_path, chunks):
    """zarr 3 reads vlen strings as NumPy StringDType; readers hand out object arrays of str."""
    with open_zoo(zoo_path, chunks=chunks) as zoo:
        datasets = {
            "tree": [n.to_dataset() for n in zoo.tree.subtree],
            "hidden_states": [n.to_dataset() for n in zoo.hidden_states("cdi").subtree],
            "untrained": [
                n.to_dataset() for n in zoo.hidden_states("cdi", which="untrained").subtree
            ],
        }
        seen = 0
        for where, nodes in datasets.items():
            for ds in nodes:
                for name, values in _string_arrays(ds).items():
                    assert values.dtype == object, (where, name, values.dtype)
                    assert all(type(v) is str for v in values.ravel()), (where, name)
                    assert values.astype(str).shape == values.shape  # raised on StringDType
                    seen += 1
        assert seen > 50
        group = zoo.tree["flipflop/networks/gru-tanh-u8"].to_dataset()
        assert sorted(group["status"].values.astype(str)) == ["diverged", "ok", "ok", "ok"]
        assert list(group.indexes["network"]) == list(group["network"].values)
        for frame in (zoo.index("cdi"), zoo.search("cdi")):
            for col in frame.columns:
                if frame[col].dtype.kind not in "biuf":
                    assert all(type(v) is str for v in frame[col]), col
        assert all(type(v) is str for v in zoo.index("cdi").index)
        assert zoo.index("cdi")["arch"].astype(str).str.len().min() >= 3
