"""Turn what users pass (lists, dicts, xarray zoo layouts) into a uniform network source.

Accepted (docs/architecture.md section 5):

* activations: a list/tuple/any ``Sequence`` or a dict of 2-D arrays ``(samples, units)``
  (units may differ, samples must agree), a 3-D array ``(network, samples, units)``, or an
  xarray ``Dataset``/``DataTree``/``DataArray`` in the zoo layout: every node holding the
  variable (default ``hidden_trained``, dims ``(network, probe, time, unit)``) contributes
  its networks, all dims except ``network`` and ``unit`` are flattened into samples, and
  the coordinates along ``network`` are carried to the result;
* graphs: a list/dict of :class:`FixedPointGraph`, or a Dataset with the ``graph_*``
  variables written by rnnzoo-dynamics.
* trajectories: a list/dict of 3-D arrays ``(trials, time, units)`` (2-D ``(time, units)``
  is one trial), a 4-D array ``(network, trials, time, units)``, or the zoo layout as for
  activations, keeping ``time`` and flattening the other dims into trials;
* any other registered input kind (:mod:`rnnzoo_metrics.kinds`): what its adapters read.

Networks are loaded one at a time (lazily), so a lazy ``Sequence`` or a Zarr-backed
Dataset never has to fit in memory at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InputError
from .graphs import FixedPointGraph

DEFAULT_VARIABLE = "hidden_trained"


@dataclass
class Networks:
    """A lazily loaded, ordered collection of networks with their coordinates."""

    ids: list[str]
    getter: Callable[[int], Any]
    kind: str
    coords: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, i: int) -> Any:
        """Network ``i``, validated by its input kind's ``check``.

        E.g. a finite float64 2-D array for activations, a FixedPointGraph for graphs.
        """
        try:
            item = self.getter(i)
        except InputError as exc:  # e.g. a FixedPointGraph built from a malformed Dataset
            raise InputError(f"network {self.ids[i]!r}: {exc}") from None
        return _kind(self.kind).check(item, self.ids[i])

    def sample_count(self, item: Any) -> int | None:
        """Samples of a loaded network, as its input kind counts them (None: not counted)."""
        return _kind(self.kind).sample_count(item)


def _kind(name: str) -> Any:
    from .registry import input_kind

    return input_kind(name)


def check_graph(item: Any, name: str) -> FixedPointGraph:
    """Validate one network of the ``graph`` kind."""
    if not isinstance(item, FixedPointGraph):
        raise InputError(
            f"network {name!r}: expected a FixedPointGraph, got "
            f"{type(item).__name__}; this metric compares fixed-point graphs"
        )
    return item


def check_activations(x: Any, name: str) -> np.ndarray:
    """Validate one network's activations and return them as float64 ``(samples, units)``."""
    if isinstance(x, FixedPointGraph):
        raise InputError(
            f"network {name!r} is a fixed-point graph but this metric compares activations"
        )
    if np.iscomplexobj(x):
        raise InputError(
            f"network {name!r}: complex activations; pass real arrays (e.g. np.real or "
            "np.abs explicitly)"
        )
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"network {name!r}: not a numeric array ({exc})") from None
    if a.ndim != 2:
        raise InputError(
            f"network {name!r}: activations must be 2-D (samples, units), got shape {a.shape}"
        )
    if a.shape[0] < 2 or a.shape[1] < 1:
        raise InputError(f"network {name!r}: needs >= 2 samples and >= 1 unit, got {a.shape}")
    bad = ~np.isfinite(a)
    if bad.any():
        s, u = np.argwhere(bad)[0]
        what = "NaN" if np.isnan(a[s, u]) else "inf"
        raise InputError(
            f"network {name!r}: {int(bad.sum())} non-finite values ({what} at sample {s}, "
            f"unit {u}); remove diverged networks or fix the activations"
        )
    return a


def as_networks(
    data: Any, input_kind: str = "activations", variable: str | None = None
) -> Networks:
    """Normalise user input to :class:`Networks` (see the module docstring)."""
    if isinstance(data, Networks):
        return data
    kind = _kind(input_kind)  # unknown kind: one line naming the registered ones
    mod = type(data).__module__
    if mod.startswith("xarray"):
        return _from_xarray(data, input_kind, variable)
    if isinstance(data, np.ndarray):
        if kind.from_array is not None:
            return kind.from_array(data)
        if data.ndim < 1:
            raise InputError("an array input needs a first axis of networks")
        return Networks([str(i) for i in range(len(data))], data.__getitem__, input_kind)
    if isinstance(data, Mapping):
        keys = list(data)
        return Networks([str(k) for k in keys], lambda i: data[keys[i]], input_kind)
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        width = len(str(max(len(data) - 1, 0)))
        ids = [f"{i:0{width}d}" for i in range(len(data))]
        return Networks(ids, data.__getitem__, input_kind)
    raise InputError(
        f"cannot read networks from a {type(data).__name__}: pass a list or dict of "
        "(samples, units) arrays, FixedPointGraphs, or an xarray Dataset/DataTree"
    )


# -- xarray --------------------------------------------------------------------------------
def _network_coords(ds: Any) -> dict[str, np.ndarray]:
    out = {}
    for name, c in ds.coords.items():
        if c.dims == ("network",) and name != "network":
            out[str(name)] = np.asarray(c.values)
    return out


def _ids(ds: Any) -> list[str]:
    if "network" in ds.coords:
        return [str(v) for v in np.asarray(ds["network"].values)]
    return [str(i) for i in range(ds.sizes["network"])]


def _merge(parts: list[Networks], kind: str, paths: list[str] | None = None) -> Networks:
    if not parts:
        raise InputError("no networks found in the input")
    if len(parts) == 1:
        return parts[0]
    ids, index = [], []
    for p, part in enumerate(parts):
        ids += part.ids
        index += [(p, i) for i in range(len(part))]
    dup = {i for i in ids if ids.count(i) > 1} if len(set(ids)) != len(ids) else set()
    if dup:
        tops = sorted({p.strip("/").split("/")[0] for p in paths or [] if p.strip("/")})
        if len(tops) > 1:  # e.g. a whole zoo: one group per task
            raise InputError(
                f"the input holds networks of {len(tops)} groups ({', '.join(tops)}) with the "
                f"same ids (tasks of a zoo?); select one, e.g. tree[{tops[0]!r}] "
                f"(command line: --group {tops[0]})"
            )
        raise InputError(f"network ids occur twice in the input: {sorted(dup)[:3]}")
    names = set.intersection(*(set(p.coords) for p in parts))
    coords = {}
    for name in sorted(names):
        coords[name] = np.concatenate([np.asarray(p.coords[name], dtype=object) for p in parts])
        with contextlib.suppress(TypeError):  # restore a numeric dtype where groups agree
            coords[name] = coords[name].astype(np.result_type(*(p.coords[name] for p in parts)))
    return Networks(ids, lambda k: parts[index[k][0]].getter(index[k][1]), kind, coords)


def activations_from_array(data: np.ndarray) -> Networks:
    """Networks of a stacked activations array ``(network, samples, units)``."""
    if data.ndim != 3:
        raise InputError(
            f"an array input must be 3-D (network, samples, units), got shape {data.shape}"
        )
    return Networks([str(i) for i in range(len(data))], data.__getitem__, "activations")


def _activations_from_dataset(ds: Any, variable: str) -> Networks:
    da = ds[variable]
    if "network" not in da.dims or "unit" not in da.dims:
        raise InputError(
            f"variable {variable!r} has dims {da.dims}; activations need 'network' and 'unit'"
        )
    sample_dims = [d for d in da.dims if d not in ("network", "unit")]
    da = da.transpose("network", *sample_dims, "unit")

    def get(i: int) -> np.ndarray:
        x = np.asarray(da.isel(network=i).values)
        return x.reshape(-1, x.shape[-1])

    return Networks(_ids(ds), get, "activations", _network_coords(ds))


def _graphs_from_dataset(ds: Any) -> Networks:
    for v in ("graph_weight", "graph_node_readout"):
        if v not in ds:
            raise InputError(f"a graph Dataset needs the variable {v!r} (docs/architecture.md)")
    w = ds["graph_weight"].transpose("network", "node", "node_to")
    r = ds["graph_node_readout"].transpose("network", "node", ...)
    st = ds["graph_node_stable"].transpose("network", "node") if "graph_node_stable" in ds else None
    nn = ds.get("graph_n_nodes")

    def get(i: int) -> FixedPointGraph:
        wi = np.asarray(w.isel(network=i).values, dtype=float)
        if nn is not None:
            n = int(nn.isel(network=i).values)
        else:
            n = int(np.sum(~np.all(np.isnan(wi), axis=1)))
        ri = np.asarray(r.isel(network=i).values, dtype=float)[:n]
        si = None if st is None else np.asarray(st.isel(network=i).values, dtype=bool)[:n]
        return FixedPointGraph(wi[:n, :n], ri, si)

    return Networks(_ids(ds), get, "graph", _network_coords(ds))


def activations_from_dataset(ds: Any, variable: str | None) -> Networks | None:
    """The ``activations`` kind's zoo adapter (None: the Dataset holds no such variable)."""
    var = variable or DEFAULT_VARIABLE
    return _activations_from_dataset(ds, var) if var in ds else None


def graphs_from_dataset(ds: Any, variable: str | None) -> Networks | None:
    """The ``graph`` kind's zoo adapter (None: the Dataset holds no graphs)."""
    return _graphs_from_dataset(ds) if "graph_weight" in ds else None


def _from_dataset(ds: Any, kind: str, variable: str | None) -> Networks | None:
    adapter = _kind(kind).from_dataset
    if adapter is None:
        raise InputError(
            f"input kind {kind!r} has no reader for xarray data; pass a list or dict of "
            "networks instead"
        )
    return adapter(ds, variable)


def _wanted(kind: str, variable: str | None) -> str:
    k = _kind(kind)
    if not k.variable_option:  # e.g. graphs: always the graph_* variables
        return k.default_variable or DEFAULT_VARIABLE
    return variable or k.default_variable or DEFAULT_VARIABLE


def _from_xarray(data: Any, kind: str, variable: str | None) -> Networks:
    import xarray as xr

    if isinstance(data, xr.DataArray):
        name = data.name or variable or DEFAULT_VARIABLE
        data = data.to_dataset(name=name)
        variable = name
    if isinstance(data, xr.Dataset):
        found = _from_dataset(data, kind, variable)
        if found is None:
            want = _wanted(kind, variable)
            raise InputError(
                f"the Dataset has no variable {want!r} (it has {sorted(map(str, data.data_vars))})"
            )
        return found
    parts, paths = [], []
    for node in data.subtree:
        ds = node.to_dataset(inherit=False)
        found = _from_dataset(ds, kind, variable)
        if found is not None:
            parts.append(found)
            paths.append(node.relative_to(data) if node is not data else "")
    if not parts:
        want = _wanted(kind, variable)
        raise InputError(f"no node of the DataTree holds {want!r}")
    return _merge(parts, kind, paths)
