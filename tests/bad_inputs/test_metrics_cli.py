"""Every malformed input of ``rnnzoo-metrics`` (list, pairwise, embed, plot) is refused.

One line on stderr, exit status != 0, no traceback, and the sandbox byte-identical
(the rules of ``conftest.py``). The rows' own data (folders of ``.npy`` networks, previous
results, a tile store, figures) are written by the ``setup=`` callables below.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

M = "rnnzoo-metrics"
pytestmark = pytest.mark.filterwarnings("ignore::rnnzoo_metrics.PluginWarning")


# -- data the rows need ---------------------------------------------------------------------
def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def nets(n: int = 3, samples: int = 40, units: int = 4, folder: str = "nets", edit=None):
    """``setup``: a folder of ``n`` networks as .npy files; ``edit(list)`` alters them."""

    def setup(root: Path) -> None:
        xs = [_rng(i).normal(size=(samples, units)) for i in range(n)]
        if edit is not None:
            edit(xs)
        (root / folder).mkdir()
        for i, x in enumerate(xs):
            np.save(root / folder / f"net{i}.npy", x)

    return setup


def file(name: str, data: bytes | str):
    def setup(root: Path) -> None:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            (root / name).write_text(data)
        else:
            (root / name).write_bytes(data)

    return setup


def npz(name: str, n: int):
    def setup(root: Path) -> None:
        np.savez(root / name, **{f"net{i}": _rng(i).normal(size=(40, 4)) for i in range(n)})

    return setup


def npy(name: str, array: np.ndarray, allow_pickle: bool = False):
    def setup(root: Path) -> None:
        np.save(root / name, array, allow_pickle=allow_pickle)

    return setup


def matrix(name: str, values: np.ndarray | None = None, kind: str = "distance"):
    """``setup``: a pairwise result (written by rnnzoo-metrics), optionally with ``values``."""

    def setup(root: Path) -> None:
        import rnnzoo_metrics as rm
        from rnnzoo_metrics.io import write_result

        xs = [_rng(i).normal(size=(40, 4)) for i in range(4)]
        d = rm.pairwise(xs, "cka", progress=False)
        if values is not None:
            d = d[: len(values), : len(values)].copy(data=np.asarray(values, dtype=float))
        d.attrs["kind"] = kind
        write_result(d, root / name)

    return setup


def embedding(name: str, components: int = 2):
    def setup(root: Path) -> None:
        import rnnzoo_metrics as rm
        from rnnzoo_metrics.io import write_result

        xs = [_rng(i).normal(size=(40, 4)) for i in range(4)]
        e = rm.embed(rm.pairwise(xs, "cka", progress=False), "classical", components)
        write_result(e, root / name)

    return setup


def tile_store(name: str, metric: str = "cka"):
    """``setup``: a finished tile store of ``metric`` over the ``nets()`` networks."""

    def setup(root: Path) -> None:
        import rnnzoo_metrics as rm

        xs = {f"net{i}": _rng(i).normal(size=(40, 4)) for i in range(3)}
        rm.pairwise(xs, metric, store=root / name, progress=False)

    return setup


def figure(name: str):
    """``setup``: a PNG written by ``rnnzoo-metrics plot``."""

    def setup(root: Path) -> None:
        from rnnzoo_metrics.plotting import plot_embedding, save_png

        embedding("fig-source.nc")(root)
        from rnnzoo_metrics.io import read_result

        save_png(plot_embedding(read_result(root / "fig-source.nc"), None), root / name)

    return setup


def foreign_png(name: str):
    """``setup``: a PNG written by matplotlib directly (not an rnnzoo-metrics figure)."""

    def setup(root: Path) -> None:
        from matplotlib.figure import Figure

        fig = Figure()
        fig.add_subplot().plot([0, 1])
        fig.savefig(root / name)

    return setup


def folder(name: str):
    def setup(root: Path) -> None:
        (root / name).mkdir(parents=True)

    return setup


def symlink(name: str, to: str):
    def setup(root: Path) -> None:
        (root / name).symlink_to(to)

    return setup


def both(*setups):
    def setup(root: Path) -> None:
        for s in setups:
            s(root)

    return setup


def _nan(xs):
    xs[1][3, 2] = np.nan


def _inf(xs):
    xs[2][0, 0] = np.inf


def _fewer_samples(xs):
    xs[1] = xs[1][:30]


def _one_d(xs):
    xs[0] = xs[0][:, 0]


def _complex(xs):
    xs[0] = xs[0] + 1j


D3 = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 1.5], [2.0, 1.5, 0.0]])


def _with(base: np.ndarray, i: int, j: int, v: float, sym: bool = True) -> np.ndarray:
    a = base.copy()
    a[i, j] = v
    if sym:
        a[j, i] = v
    return a


PW = [M, "pairwise", "nets", "--no-progress"]  # a valid input; the rows vary the rest
OUT = ["-o", "d.nc"]

# fmt: off  (a table: one row per malformed input)
CASES = [
    # -- the command line itself ------------------------------------------------------------
    pytest.param([M], ("required",), {}, id="no-command"),
    pytest.param([M, "nosuch"], ("invalid choice",), {}, id="unknown-command"),
    pytest.param([M, "list", "--bogus"], ("unrecognized",), {}, id="list-unknown-option"),
    pytest.param([M, "list", "extra"], ("unrecognized",), {}, id="list-extra-argument"),
    # -- pairwise: --out never replaces what rnnzoo-metrics did not write ---------------------
    pytest.param(
        [*PW, "-o", "zoo.zarr"],
        ("zoo.zarr", "rnnzoo zoo", "another path"),
        {"setup": nets()},
        id="pairwise-out-is-the-zoo",
    ),
    pytest.param(
        [*PW, "-o", "zoo.zarr", "--overwrite"],
        ("zoo.zarr", "rnnzoo zoo"),
        {"setup": nets()},
        id="pairwise-out-is-the-zoo-overwrite",
    ),
    pytest.param(
        [*PW, "-o", "notes.zarr", "--overwrite"],
        ("notes.zarr", "folder"),
        {"setup": nets()},
        id="pairwise-out-is-a-user-folder",
    ),
    pytest.param(
        [*PW, "-o", "notzoo.zarr", "--overwrite"],
        ("notzoo.zarr", "zarr store"),
        {"setup": nets()},
        id="pairwise-out-is-a-foreign-zarr",
    ),
    pytest.param(
        [*PW, "-o", "truncated.zarr", "--overwrite"],
        ("truncated.zarr",),
        {"setup": nets()},
        id="pairwise-out-is-a-damaged-zarr",
    ),
    pytest.param(
        [*PW, "-o", "notes"],
        ("notes", ".nc or .zarr"),
        {"setup": nets()},
        id="pairwise-out-is-a-folder-without-suffix",
    ),
    pytest.param(
        [*PW, "-o", "text.txt"],
        (".nc or .zarr",),
        {"setup": nets()},
        id="pairwise-out-wrong-suffix",
    ),
    pytest.param(
        [*PW, "-o", "user.nc", "--overwrite"],
        ("user.nc", "not an rnnzoo-metrics"),
        {"setup": both(nets(), file("user.nc", "my own data\n"))},
        id="pairwise-out-is-a-user-file-named-nc",
    ),
    pytest.param(
        [*PW, "-o", "emb.nc", "--overwrite"],
        ("emb.nc", "embedding"),
        {"setup": both(nets(), embedding("emb.nc"))},
        id="pairwise-out-is-an-embedding",
    ),
    pytest.param(
        [*PW, "-o", "tiles.zarr", "--overwrite"],
        ("tiles.zarr", "tile store"),
        {"setup": both(nets(), tile_store("tiles.zarr"))},
        id="pairwise-out-is-a-tile-store",
    ),
    pytest.param(
        [*PW, *OUT],
        ("d.nc", "--overwrite"),
        {"setup": both(nets(), matrix("d.nc"))},
        id="pairwise-out-previous-result-without-overwrite",
    ),
    pytest.param(
        [*PW, "-o", "d.zarr"],
        ("d.zarr", "--overwrite"),
        {"setup": both(nets(), matrix("d.zarr"))},
        id="pairwise-out-previous-zarr-result-without-overwrite",
    ),
    pytest.param(
        [*PW, "-o", "link.nc", "--overwrite"],
        ("link.nc", "symbolic link"),
        {"setup": both(nets(), matrix("d.nc"), symlink("link.nc", "d.nc"))},
        id="pairwise-out-is-a-symlink",
    ),
    pytest.param(
        [*PW, "-o", "text.txt/d.nc"],
        ("text.txt", "not a folder"),
        {"setup": nets()},
        id="pairwise-out-below-a-file",
    ),
    # -- pairwise: --store is ours or new ---------------------------------------------------
    pytest.param(
        [*PW, *OUT, "--store", "zoo.zarr"],
        ("zoo.zarr", "not an rnnzoo-metrics tile"),
        {"setup": nets()},
        id="pairwise-store-is-the-zoo",
    ),
    pytest.param(
        [*PW, *OUT, "--store", "notes.zarr"],
        ("notes.zarr", "tile store"),
        {"setup": nets()},
        id="pairwise-store-is-a-user-folder",
    ),
    pytest.param(
        [*PW, *OUT, "--store", "notes"],
        ("notes", "tile store"),
        {"setup": nets()},
        id="pairwise-store-is-a-user-folder-without-suffix",
    ),
    pytest.param(
        [*PW, *OUT, "--store", "text.txt"],
        ("text.txt", "tile store"),
        {"setup": nets()},
        id="pairwise-store-is-a-file",
    ),
    pytest.param(
        [*PW, *OUT, "--store", "notzoo.zarr"],
        ("notzoo.zarr", "tile store"),
        {"setup": nets()},
        id="pairwise-store-is-a-foreign-zarr",
    ),
    pytest.param(
        [*PW, *OUT, "--store", "old.zarr"],
        ("old.zarr", "pairwise matrix"),
        {"setup": both(nets(), matrix("old.zarr"))},
        id="pairwise-store-is-a-result",
    ),
    pytest.param(
        [*PW, "-o", "d.zarr", "--store", "d.zarr"],
        ("--store", "different"),
        {"setup": nets()},
        id="pairwise-store-same-as-out",
    ),
    pytest.param(
        [*PW, *OUT, "-m", "svcca", "--store", "tiles.zarr"],
        ("tiles.zarr", "another computation"),
        {"setup": both(nets(), tile_store("tiles.zarr", "cka"))},
        id="pairwise-store-of-another-metric",
    ),
    # -- pairwise: read-only targets, refused before anything is computed -------------------
    pytest.param(
        [*PW, "-o", "ro/d.nc"],
        ("ro/d.nc", "read-only"),
        {"setup": both(nets(), folder("ro")), "read_only": ("ro",)},
        id="pairwise-out-read-only-folder",
    ),
    pytest.param(
        [*PW, "-o", "ro/new/d.nc"],
        ("read-only",),
        {"setup": both(nets(), folder("ro")), "read_only": ("ro",)},
        id="pairwise-out-below-a-read-only-folder",
    ),
    pytest.param(
        [*PW, *OUT, "--store", "ro/tiles.zarr"],
        ("ro/tiles.zarr", "read-only"),
        {"setup": both(nets(), folder("ro")), "read_only": ("ro",)},
        id="pairwise-store-read-only-folder",
    ),
    pytest.param(
        [*PW, *OUT, "--store", "tiles.zarr"],
        ("tiles.zarr", "read-only"),
        {"setup": both(nets(), tile_store("tiles.zarr")), "read_only": ("tiles.zarr",)},
        id="pairwise-store-read-only-store",
    ),
    pytest.param(
        [*PW, "-m", "cka", *OUT, "--overwrite"],
        ("d.nc", "read-only"),
        {"setup": both(nets(), matrix("d.nc")), "read_only": ("d.nc",)},
        id="pairwise-overwrite-read-only-result",
    ),
    pytest.param(
        [*PW, "-m", "cka", "-o", "d.zarr", "--overwrite"],
        ("d.zarr", "read-only"),
        {"setup": both(nets(), matrix("d.zarr")), "read_only": ("d.zarr",)},
        id="pairwise-overwrite-read-only-zarr-result",
    ),
    pytest.param(
        [*PW, "-o", "ro/d.nc"],
        ("read-only",),  # checked before the NaN is seen
        {"setup": both(nets(edit=_nan), folder("ro")), "read_only": ("ro",)},
        id="pairwise-read-only-checked-before-reading",
    ),
    # -- pairwise: the input ----------------------------------------------------------------
    pytest.param(
        [M, "pairwise", "zoo.zarr", *OUT],
        ("flipflop", "cdi", "--group"),
        {},
        id="pairwise-multi-task-zoo-without-group",
    ),
    pytest.param(
        [M, "pairwise", "zoo.zarr", "--group", "nosuch", *OUT],
        ("nosuch", "flipflop"),
        {},
        id="pairwise-unknown-group",
    ),
    pytest.param(
        [M, "pairwise", "zoo.zarr", "--group", "..", *OUT],
        ("--group",),
        {},
        id="pairwise-group-escapes-the-store",
    ),
    pytest.param(
        [M, "pairwise", "zoo.zarr", "--group", "flipflop", "--variable", "nosuch", *OUT],
        ("nosuch",),
        {},
        id="pairwise-unknown-variable",
    ),
    pytest.param(
        [M, "pairwise", "zoo.zarr", "--group", "flipflop", "-m", "fixed-point-graph", *OUT],
        ("graph_weight",),
        {},
        id="pairwise-graph-metric-without-graphs",
    ),
    pytest.param(
        [M, "pairwise", "nosuch", *OUT],
        ("nosuch", "does not exist"),
        {},
        id="pairwise-missing-input",
    ),
    pytest.param(
        [M, "pairwise", "text.txt", *OUT],
        ("text.txt", "expected"),
        {},
        id="pairwise-input-text-file",
    ),
    pytest.param(
        [M, "pairwise", "fake.zip", *OUT], ("fake.zip",), {}, id="pairwise-input-fake-zip"
    ),
    pytest.param(
        [M, "pairwise", "notzoo.zarr", *OUT],
        ("hidden_trained",),
        {},
        id="pairwise-input-foreign-zarr",
    ),
    pytest.param(
        [M, "pairwise", "truncated.zarr", *OUT],
        ("truncated.zarr",),
        {},
        id="pairwise-input-truncated-zarr",
    ),
    pytest.param(
        [M, "pairwise", "notes.zarr", *OUT],
        ("notes.zarr", "not a zarr store"),
        {},
        id="pairwise-input-folder-named-zarr",
    ),
    pytest.param(
        [M, "pairwise", "notes", *OUT],
        ("notes", "no .npy"),
        {},
        id="pairwise-input-folder-without-npy",
    ),
    pytest.param(
        [M, "pairwise", "empty", *OUT],
        ("empty", "no .npy"),
        {"setup": folder("empty")},
        id="pairwise-input-empty-folder",
    ),
    pytest.param(
        [*PW, *OUT],
        ("bad.npy", "not a readable .npy"),
        {"setup": both(nets(), file("nets/bad.npy", "not numpy\n"))},
        id="pairwise-input-garbage-npy-in-folder",
    ),
    pytest.param(
        [*PW, *OUT],
        ("holds 1 network", "at least 2"),
        {"setup": nets(n=1)},
        id="pairwise-input-one-network",
    ),
    pytest.param(
        [M, "pairwise", "one.npz", *OUT],
        ("one.npz", "at least 2"),
        {"setup": npz("one.npz", 1)},
        id="pairwise-npz-with-one-network",
    ),
    pytest.param(
        [M, "pairwise", "bad.npz", *OUT],
        ("bad.npz", "not a readable .npz"),
        {"setup": file("bad.npz", "garbage\n")},
        id="pairwise-garbage-npz",
    ),
    pytest.param(
        [M, "pairwise", "one.npy", *OUT],
        ("one.npy", "at least 2"),
        {"setup": npy("one.npy", _rng().normal(size=(1, 40, 4)))},
        id="pairwise-3d-npy-with-one-network",
    ),
    pytest.param(
        [M, "pairwise", "flat.npy", *OUT],
        ("3-d",),
        {"setup": npy("flat.npy", _rng().normal(size=(40, 4)))},
        id="pairwise-2d-npy",
    ),
    pytest.param(
        [M, "pairwise", "obj.npy", *OUT],
        ("obj.npy", "not a readable .npy"),
        {"setup": npy("obj.npy", np.array([{"a": 1}], dtype=object), True)},
        id="pairwise-pickled-npy",
    ),
    pytest.param(
        [M, "pairwise", "bad.nc", *OUT],
        ("bad.nc", "netcdf"),
        {"setup": file("bad.nc", "not netcdf\n")},
        id="pairwise-garbage-nc",
    ),
    pytest.param(
        [M, "pairwise", "old.nc", *OUT],
        ("hidden_trained",),
        {"setup": matrix("old.nc")},
        id="pairwise-input-is-a-result",
    ),
    pytest.param(
        [*PW, *OUT],
        ("net1", "30 samples", "40"),
        {"setup": nets(edit=_fewer_samples)},
        id="pairwise-mismatched-samples",
    ),
    pytest.param([*PW, *OUT], ("net1", "nan"), {"setup": nets(edit=_nan)}, id="pairwise-nan"),
    pytest.param([*PW, *OUT], ("net2", "inf"), {"setup": nets(edit=_inf)}, id="pairwise-inf"),
    pytest.param(
        [*PW, *OUT],
        ("net0", "2-d"),
        {"setup": nets(edit=_one_d)},
        id="pairwise-one-dimensional-network",
    ),
    pytest.param(
        [*PW, *OUT], ("net0", "complex"), {"setup": nets(edit=_complex)}, id="pairwise-complex"
    ),
    pytest.param(
        [*PW, "-m", "fixed-point-graph", *OUT],
        ("fixedpointgraph",),
        {"setup": nets()},
        id="pairwise-graph-metric-on-activations",
    ),
    # -- pairwise: too few samples for the metric to say anything ---------------------------
    pytest.param(
        [*PW, "-m", "cka", *OUT],
        ("cka", "2 samples", "at least 3"),
        {"setup": nets(samples=2)},
        id="pairwise-cka-two-samples",
    ),
    pytest.param(
        [*PW, "-m", "procrustes", *OUT],
        ("procrustes", "2 samples", "at least 3"),
        {"setup": nets(samples=2)},
        id="pairwise-procrustes-two-samples",
    ),
    pytest.param(
        [*PW, "-m", "cka-debiased", *OUT],
        ("cka-debiased", "3 samples", "4"),
        {"setup": nets(samples=3)},
        id="pairwise-debiased-three-samples",
    ),
    pytest.param(
        [*PW, "-m", "svcca", *OUT],
        ("svcca", "5 samples", "6"),
        {"setup": nets(samples=5)},
        id="pairwise-svcca-samples-below-units-plus-2",
    ),
    # -- pairwise: metric and options -------------------------------------------------------
    pytest.param(
        [*PW, "-m", "nosuch", *OUT],
        ("unknown metric", "nosuch"),
        {"setup": nets()},
        id="pairwise-unknown-metric",
    ),
    pytest.param(
        [*PW, "-p", "threshold", *OUT],
        ("name=value",),
        {"setup": nets()},
        id="pairwise-param-without-value",
    ),
    pytest.param(
        [*PW, "-p", "treshold=0.9", *OUT],
        ("treshold",),
        {"setup": nets()},
        id="pairwise-unknown-param",
    ),
    pytest.param(
        [*PW, "-p", "threshold=abc", *OUT],
        ("threshold", "float"),
        {"setup": nets()},
        id="pairwise-param-not-a-number",
    ),
    pytest.param(
        [*PW, "-p", "threshold=2", *OUT],
        ("threshold must be",),
        {"setup": nets()},
        id="pairwise-param-out-of-range",
    ),
    pytest.param(
        [*PW, "-p", "threshold=nan", *OUT],
        ("threshold must be",),
        {"setup": nets()},
        id="pairwise-param-nan",
    ),
    pytest.param(
        [*PW, "-m", "cka-rbf", "-p", "bandwidth=inf", *OUT],
        ("bandwidth",),
        {"setup": nets()},
        id="pairwise-param-inf",
    ),
    pytest.param(
        [*PW, "--tile", "0", *OUT], ("--tile",), {"setup": nets()}, id="pairwise-tile-zero"
    ),
    pytest.param(
        [*PW, "--jobs", "-1", *OUT], ("--jobs",), {"setup": nets()}, id="pairwise-negative-jobs"
    ),
    pytest.param(
        [*PW, "--jobs", "two", *OUT],
        ("--jobs",),
        {"setup": nets()},
        id="pairwise-jobs-not-a-number",
    ),
    pytest.param([*PW], ("--out",), {"setup": nets()}, id="pairwise-without-out"),
    # -- embed ------------------------------------------------------------------------------
    pytest.param(
        [M, "embed", "nosuch.nc", "-o", "e.nc"],
        ("nosuch.nc", "does not exist"),
        {},
        id="embed-missing-matrix",
    ),
    pytest.param([M, "embed", "text.txt", "-o", "e.nc"], ("text.txt",), {}, id="embed-text-file"),
    pytest.param(
        [M, "embed", "zoo.zarr", "-o", "e.nc"], ("zoo.zarr", "not a result"), {}, id="embed-the-zoo"
    ),
    pytest.param(
        [M, "embed", "notzoo.zarr", "-o", "e.nc"], ("notzoo.zarr",), {}, id="embed-foreign-zarr"
    ),
    pytest.param(
        [M, "embed", "truncated.zarr", "-o", "e.nc"],
        ("truncated.zarr",),
        {},
        id="embed-truncated-zarr",
    ),
    pytest.param(
        [M, "embed", "notes.zarr", "-o", "e.nc"], ("notes.zarr",), {}, id="embed-folder-named-zarr"
    ),
    pytest.param(
        [M, "embed", "bad.nc", "-o", "e.nc"],
        ("bad.nc", "netcdf"),
        {"setup": file("bad.nc", "x\n")},
        id="embed-garbage-nc",
    ),
    pytest.param(
        [M, "embed", "emb.nc", "-o", "e.nc"],
        ("emb.nc", "embedding"),
        {"setup": embedding("emb.nc")},
        id="embed-an-embedding",
    ),
    pytest.param(
        [M, "embed", "tiles.zarr", "-o", "e.nc"],
        ("tiles.zarr", "tile store"),
        {"setup": tile_store("tiles.zarr")},
        id="embed-a-tile-store",
    ),
    pytest.param(
        [M, "embed", "d.nc", "-o", "e.nc"],
        ("negative", "-0.5"),
        {"setup": matrix("d.nc", _with(D3, 0, 2, -0.5))},
        id="embed-negative",
    ),
    pytest.param(
        [M, "embed", "d.nc", "-o", "e.nc"],
        ("nan", "--drop-nan"),
        {"setup": matrix("d.nc", _with(D3, 0, 2, np.nan))},
        id="embed-nan",
    ),
    pytest.param(
        [M, "embed", "d.nc", "-o", "e.nc"],
        ("infinite",),
        {"setup": matrix("d.nc", _with(D3, 0, 2, np.inf))},
        id="embed-inf",
    ),
    pytest.param(
        [M, "embed", "d.nc", "-o", "e.nc"],
        ("not symmetric",),
        {"setup": matrix("d.nc", _with(D3, 0, 2, 3.0, sym=False))},
        id="embed-asymmetric",
    ),
    pytest.param(
        [M, "embed", "d.nc", "-o", "e.nc"],
        ("diagonal",),
        {"setup": matrix("d.nc", _with(D3, 1, 1, 0.25))},
        id="embed-nonzero-diagonal",
    ),
    pytest.param(
        [M, "embed", "d.nc", "-o", "e.nc"],
        ("similarity",),
        {"setup": matrix("d.nc", kind="similarity")},
        id="embed-similarity",
    ),
    pytest.param(
        [M, "embed", "d.nc", "-o", "e.nc"],
        ("at least 2 networks",),
        {"setup": matrix("d.nc", np.zeros((1, 1)))},
        id="embed-one-network",
    ),
    pytest.param(
        [M, "embed", "d.nc", "--drop-nan", "-o", "e.nc"],
        ("at least 2 networks",),
        {"setup": matrix("d.nc", np.array([[0.0, np.nan], [np.nan, 0.0]]))},
        id="embed-drop-nan-leaves-one",
    ),
    pytest.param(
        [M, "embed", "d.nc", "--components", "0", "-o", "e.nc"],
        ("--components",),
        {"setup": matrix("d.nc")},
        id="embed-zero-components",
    ),
    pytest.param(
        [M, "embed", "d.nc", "--components", "99", "-o", "e.nc"],
        ("n_components",),
        {"setup": matrix("d.nc")},
        id="embed-more-components-than-networks",
    ),
    pytest.param(
        [M, "embed", "d.nc", "--method", "tsne", "-o", "e.nc"],
        ("invalid choice",),
        {"setup": matrix("d.nc")},
        id="embed-unknown-method",
    ),
    pytest.param(
        [M, "embed", "d.nc", "-o", "zoo.zarr", "--overwrite"],
        ("zoo.zarr", "zoo"),
        {"setup": matrix("d.nc")},
        id="embed-out-is-the-zoo",
    ),
    pytest.param(
        [M, "embed", "d.nc", "-o", "notes.zarr", "--overwrite"],
        ("notes.zarr",),
        {"setup": matrix("d.nc")},
        id="embed-out-is-a-user-folder",
    ),
    pytest.param(
        [M, "embed", "d.nc", "-o", "old.nc", "--overwrite"],
        ("old.nc", "pairwise"),
        {"setup": both(matrix("d.nc"), matrix("old.nc"))},
        id="embed-out-is-a-pairwise-result",
    ),
    pytest.param(
        [M, "embed", "d.nc", "-o", "emb.nc"],
        ("emb.nc", "--overwrite"),
        {"setup": both(matrix("d.nc"), embedding("emb.nc"))},
        id="embed-out-previous-embedding-without-overwrite",
    ),
    pytest.param(
        [M, "embed", "d.nc", "-o", "d.nc", "--overwrite"],
        ("differ",),
        {"setup": matrix("d.nc")},
        id="embed-out-is-its-input",
    ),
    pytest.param(
        [M, "embed", "d.nc", "-o", "e.csv"],
        (".nc or .zarr",),
        {"setup": matrix("d.nc")},
        id="embed-out-wrong-suffix",
    ),
    pytest.param(
        [M, "embed", "d.nc", "-o", "ro/e.nc"],
        ("read-only",),
        {"setup": both(matrix("d.nc"), folder("ro")), "read_only": ("ro",)},
        id="embed-out-read-only",
    ),
    # -- plot -------------------------------------------------------------------------------
    pytest.param(
        [M, "plot", "nosuch.nc", "-o", "f.png"], ("nosuch.nc",), {}, id="plot-missing-result"
    ),
    pytest.param([M, "plot", "text.txt", "-o", "f.png"], ("text.txt",), {}, id="plot-text-file"),
    pytest.param(
        [M, "plot", "zoo.zarr", "-o", "f.png"], ("zoo.zarr", "not a result"), {}, id="plot-the-zoo"
    ),
    pytest.param(
        [M, "plot", "notzoo.zarr", "-o", "f.png"], ("notzoo.zarr",), {}, id="plot-foreign-zarr"
    ),
    pytest.param(
        [M, "plot", "emb.nc", "-o", "f.jpg"],
        (".png",),
        {"setup": embedding("emb.nc")},
        id="plot-out-wrong-suffix",
    ),
    pytest.param(
        [M, "plot", "emb.nc", "-o", "notes"],
        (".png",),
        {"setup": embedding("emb.nc")},
        id="plot-out-is-a-folder",
    ),
    pytest.param(
        [M, "plot", "emb.nc", "-o", "dir.png", "--overwrite"],
        ("dir.png", "folder"),
        {"setup": both(embedding("emb.nc"), folder("dir.png/inside"))},
        id="plot-out-is-a-folder-named-png",
    ),
    pytest.param(
        [M, "plot", "emb.nc", "-o", "text.png", "--overwrite"],
        ("text.png",),
        {"setup": both(embedding("emb.nc"), file("text.png", "my notes\n"))},
        id="plot-out-is-a-text-file-named-png",
    ),
    pytest.param(
        [M, "plot", "emb.nc", "-o", "mine.png", "--overwrite"],
        ("mine.png", "not written by rnnzoo-metrics"),
        {"setup": both(embedding("emb.nc"), foreign_png("mine.png"))},
        id="plot-out-is-a-foreign-png",
    ),
    pytest.param(
        [M, "plot", "emb.nc", "-o", "fig.png"],
        ("fig.png", "--overwrite"),
        {"setup": both(embedding("emb.nc"), figure("fig.png"))},
        id="plot-out-previous-figure-without-overwrite",
    ),
    pytest.param(
        [M, "plot", "emb.nc", "-o", "ro/f.png"],
        ("read-only",),
        {"setup": both(embedding("emb.nc"), folder("ro")), "read_only": ("ro",)},
        id="plot-out-read-only",
    ),
    pytest.param(
        [M, "plot", "emb.nc", "--color-by", "nosuch", "-o", "f.png"],
        ("nosuch",),
        {"setup": embedding("emb.nc")},
        id="plot-unknown-colour-coordinate",
    ),
    pytest.param(
        [M, "plot", "d.nc", "--sort-by", "nosuch", "-o", "f.png"],
        ("nosuch",),
        {"setup": matrix("d.nc")},
        id="plot-unknown-sort-coordinate",
    ),
    pytest.param(
        [M, "plot", "emb1.nc", "-o", "f.png"],
        ("2 components",),
        {"setup": embedding("emb1.nc", components=1)},
        id="plot-one-component",
    ),
]
# fmt: on


@pytest.mark.parametrize(("argv", "expect", "options"), CASES)
def test_refused(refused, argv, expect, options):
    refused(argv, expect, **options)


def test_the_table_covers_every_subcommand():
    from rnnzoo_metrics.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    covered = {p.values[0][1] for p in CASES if len(p.values[0]) > 1}
    assert set(sub.choices) <= covered
