"""The all-pairs engine: inputs, coordinates, tiles, processes, Dask, resumable store."""

import os
import threading
import time

import numpy as np
import pytest

import rnnzoo_metrics as rm
from rnnzoo_metrics.builtin.cca import SVCCA
from rnnzoo_metrics.synthetic import low_rank_networks

pytestmark = pytest.mark.filterwarnings("ignore::rnnzoo_metrics.PluginWarning")
xr = pytest.importorskip("xarray")


def zoo_group(nets, arch, units, start):
    hidden = np.stack(nets).reshape(len(nets), 3, -1, units)  # (network, probe, time, unit)
    ids = [f"{arch}-tanh-u{units}-l2_1e-04-s{start + i:03d}" for i in range(len(nets))]
    return xr.Dataset(
        {"hidden_trained": (("network", "probe", "time", "unit"), hidden)},
        coords={
            "network": ids,
            "arch": ("network", [arch] * len(nets)),
            "units": ("network", [units] * len(nets)),
        },
    )


def test_list_dict_array_and_datatree_inputs_agree():
    a = low_rank_networks(4, samples=90, widths=(6,), seed=1)
    b = low_rank_networks(3, samples=90, widths=(9,), seed=1)[:3]
    tree = xr.DataTree.from_dict(
        {
            "/flipflop/networks/gru-tanh-u6": zoo_group(a, "gru", 6, 0),
            "/flipflop/networks/lstm-tanh-u9": zoo_group(b, "lstm", 9, 0),
        }
    )
    d_tree = rm.pairwise(tree, "svcca", progress=False)
    d_list = rm.pairwise(a + b, "svcca", progress=False)
    np.testing.assert_allclose(d_tree.values, d_list.values, atol=1e-13)
    assert d_tree.dims == ("network", "network_to")
    assert list(d_tree.arch.values) == ["gru"] * 4 + ["lstm"] * 3
    assert list(d_tree.arch_to.values) == list(d_tree.arch.values)
    assert d_tree.network.values[0] == "gru-tanh-u6-l2_1e-04-s000"
    d_dict = rm.pairwise({f"n{i}": x for i, x in enumerate(a)}, "cka", progress=False)
    assert list(d_dict.network.values) == ["n0", "n1", "n2", "n3"]
    d_arr = rm.pairwise(np.stack(a), "cka", progress=False)
    np.testing.assert_allclose(d_arr.values, d_dict.values, atol=1e-14)
    assert d_tree.attrs["metric"] == "svcca"
    assert d_tree.attrs["kind"] == "distance"


def test_dataset_variable_choice():
    ds = zoo_group(low_rank_networks(3, samples=60, widths=(5,)), "gru", 5, 0)
    ds["hidden_untrained"] = ds["hidden_trained"] * 2
    d1 = rm.pairwise(ds, "cka", progress=False)
    d2 = rm.pairwise(ds, "cka", variable="hidden_untrained", progress=False)
    np.testing.assert_allclose(d1.values, d2.values, atol=1e-12)
    with pytest.raises(rm.InputError, match="no variable 'nope'"):
        rm.pairwise(ds, "cka", variable="nope", progress=False)


@pytest.mark.parametrize("tile", [1, 2, 5, 64])
def test_tiles_do_not_change_values(tile):
    nets = low_rank_networks(11, samples=70, widths=(4, 7, 5))
    ref = rm.pairwise(nets, "procrustes", tile=64, progress=False).values
    np.testing.assert_allclose(
        rm.pairwise(nets, "procrustes", tile=tile, progress=False).values, ref, atol=1e-13
    )


def test_processes_give_the_same_matrix():
    nets = low_rank_networks(13, samples=70, widths=(4, 7))
    serial = rm.pairwise(nets, "svcca", tile=3, progress=False)
    parallel = rm.pairwise(nets, "svcca", tile=3, n_jobs=2, progress=False)
    np.testing.assert_array_equal(serial.values, parallel.values)


class WhichWorker(rm.Metric):
    """A distance whose value names the worker (process and thread) that computed it."""

    name = "which-worker-test"
    kind = "distance"
    summary = "test metric: the id of the worker that computed the tile"

    def prepare(self, x):
        return np.zeros(1)

    def pair(self, a, b):
        return float(self.block([a], [b])[0, 0])

    def block(self, rows, cols):
        time.sleep(0.05)  # long enough for every worker to take tiles
        worker = hash((os.getpid(), threading.get_ident())) % 2**50
        return np.full((len(rows), len(cols)), float(worker))


def _workers_used(d) -> int:
    return len(np.unique(d.values[np.triu_indices(len(d), 1)]))


def test_the_default_tile_leaves_tiles_for_every_worker():
    from rnnzoo_metrics.engine import TILES_PER_WORKER, balanced_tile, tiles

    # the demo's 39 networks a task fit one memory-sized tile: one process did all the work
    assert balanced_tile(39, 256, 1) == 256
    assert balanced_tile(39, 256, 2) == 10
    assert len(tiles(39, 10)) == 10
    for n, workers in [(39, 2), (300, 2), (40, 3), (7, 8), (1000, 16)]:
        t = balanced_tile(n, 256, workers)
        assert len(tiles(n, t)) >= TILES_PER_WORKER * workers or t == 1
        sides = -(-n // t)
        assert t == -(-n // sides)  # networks spread evenly over the sides
        assert (sides - 1) * sides // 2 < TILES_PER_WORKER * workers  # no more sides than needed
    assert balanced_tile(2880, 256, 2) == 256  # a large population keeps its tile
    assert balanced_tile(300, 20, 2) == 20  # never larger than asked
    nets = [np.random.default_rng(k).normal(size=(20, 3)) for k in range(12)]
    assert _workers_used(rm.pairwise(nets, WhichWorker(), progress=False)) == 1
    assert _workers_used(rm.pairwise(nets, WhichWorker(), n_jobs=2, progress=False)) == 2


def test_progress_bar_reports_pairs(capsys):
    rm.pairwise(low_rank_networks(5, samples=40, widths=(3,)), "cka", progress=True, tile=2)
    err = capsys.readouterr().err
    assert "10/10" in err
    assert "cka pairs" in err


class CountingSVCCA(SVCCA):
    """SVCCA that counts tiles and can be told to crash after some (simulated kill)."""

    tiles = 0
    crash_after = None

    def block(self, caches_a, caches_b):
        if CountingSVCCA.crash_after is not None and CountingSVCCA.tiles >= self.crash_after:
            raise KeyboardInterrupt
        CountingSVCCA.tiles += 1
        return super().block(caches_a, caches_b)


def test_store_resumes_after_interruption(tmp_path):
    pytest.importorskip("zarr")
    nets = low_rank_networks(10, samples=60, widths=(4, 6))
    store = tmp_path / "svcca.zarr"
    n_tiles = len(rm.engine.tiles(10, 3))  # 4 x 4 tile grid -> 10 upper tiles
    CountingSVCCA.tiles, CountingSVCCA.crash_after = 0, 4
    with pytest.raises(KeyboardInterrupt):
        rm.pairwise(nets, CountingSVCCA(), tile=3, store=store, progress=False)
    CountingSVCCA.tiles, CountingSVCCA.crash_after = 0, None
    d = rm.pairwise(nets, CountingSVCCA(), store=store, progress=False)
    assert CountingSVCCA.tiles == n_tiles - 4  # only the unfinished tiles were computed
    ref = rm.pairwise(nets, "svcca", progress=False)
    np.testing.assert_allclose(d.values, ref.values, atol=1e-14)
    on_disk = xr.open_zarr(store)["svcca"].load()
    np.testing.assert_allclose(on_disk.values, ref.values, atol=1e-14)
    assert on_disk.encoding["chunks"] == (3, 3)
    # a finished store is read back without computing anything
    CountingSVCCA.tiles = 0
    rm.pairwise(nets, CountingSVCCA(), store=store, progress=False)
    assert CountingSVCCA.tiles == 0
    with pytest.raises(rm.MetricsError, match="another computation"):
        rm.pairwise(nets, "cka", store=store, progress=False)
    with pytest.raises(rm.MetricsError, match="other networks"):
        rm.pairwise({f"x{i}": x for i, x in enumerate(nets)}, "svcca", store=store, progress=False)


@pytest.mark.network
def test_dask_local_cluster():
    distributed = pytest.importorskip("distributed")
    nets = low_rank_networks(9, samples=50, widths=(4, 5))
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        d = rm.pairwise(nets, "cka", tile=4, client=client, progress=False)
    ref = rm.pairwise(nets, "cka", progress=False)
    np.testing.assert_allclose(d.values, ref.values, atol=1e-14)


@pytest.mark.network
def test_dask_back_to_back_calls_on_the_same_data():
    # `nox -s demo` once failed with "cancelled for reason: lost dependencies": scatter()
    # keyed the networks by a hash of their content, so a second pairwise() on the same
    # data (the paper's matched graph distance runs two such calls back to back) got the
    # keys the first call's futures were releasing (dask/distributed#8576); the scheduler
    # dropped the data under the second call's tiles
    distributed = pytest.importorskip("distributed")
    nets = low_rank_networks(6, samples=30, widths=(4, 5))
    ref = rm.pairwise(nets, "cka", progress=False).values
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        for _ in range(40):
            d = rm.pairwise(nets, "cka", tile=3, client=client, progress=False)
            np.testing.assert_allclose(d.values, ref, atol=1e-14)


@pytest.mark.network
def test_dask_default_tiles_use_every_worker():
    distributed = pytest.importorskip("distributed")
    nets = [np.random.default_rng(k).normal(size=(20, 3)) for k in range(12)]
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        d = rm.pairwise(nets, WhichWorker(), client=client, progress=False)
    assert _workers_used(d) == 2


def test_lazy_sequence_is_loaded_one_network_at_a_time():
    from rnnzoo_metrics.synthetic import LazyNetworks

    lazy = LazyNetworks(6, samples=50, widths=(4, 6))
    d = rm.pairwise(lazy, "svcca", progress=False)
    eager = rm.pairwise([lazy[i] for i in range(6)], "svcca", progress=False)
    np.testing.assert_array_equal(d.values, eager.values)
