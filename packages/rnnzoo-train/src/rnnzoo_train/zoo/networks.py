"""Networks of a zoo as torch objects: the cell of a group, one network, a population.

:class:`~rnnzoo_train.zoo.reader.Zoo` reads a store (indexes, weights as NumPy, hidden
states); this module builds and runs torch networks from what it reads (needs torch; the
``Zoo`` methods ``cell``, ``network`` and ``population`` are thin delegates to it). The cell
of a stored network comes from its architecture's descriptor
(:func:`rnnzoo_train.cells.get_architecture`): a zoo of an architecture that a plugin
provides needs that plugin installed, and says which in one line where it is not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from . import layout
from .errors import ZooArchitectureError, ZooKeyError

if TYPE_CHECKING:
    import torch

    from rnnzoo_train.cells.base import Cell

    from .reader import Zoo

#: group attribute naming the distribution that provides a plugin's architecture
PLUGIN_ATTR = "arch_plugin"
#: group attribute with that distribution's version when the group was written
PLUGIN_VERSION_ATTR = "arch_plugin_version"


@dataclass
class Network:
    """One stored network, ready to run.

    Attributes
    ----------
    network_id : str
    task : str
    which : {"initial", "final"}
        Which weights ``params`` holds (untrained or trained).
    cell : Cell
        The network's cell (``rnnzoo_train.cells.get_cell``).
    params : dict of str to Tensor
        Parameters of ONE network, no population axis (as ``Cell.init_params`` returns);
        use ``rnnzoo_train.cells.unsqueeze_params`` for the population form.
    """

    network_id: str
    task: str
    which: str
    cell: Cell
    params: dict[str, torch.Tensor]

    def run(self, inputs: Any) -> torch.Tensor:
        """States ``(B, T, S)`` (``S = cell.state_size``) for inputs ``(B, T, n_inputs)``."""
        import torch

        from rnnzoo_train.cells.base import unsqueeze_params

        dtype = next(iter(self.params.values())).dtype
        x = torch.as_tensor(np.asarray(inputs), dtype=dtype)
        return self.cell.run(unsqueeze_params(self.params), x[None])[0]

    def outputs(self, inputs: Any) -> torch.Tensor:
        """Network outputs ``(B, T, n_outputs)`` for inputs ``(B, T, n_inputs)``."""
        from rnnzoo_train.cells.base import unsqueeze_params

        states = self.run(inputs)
        B, T, S = states.shape
        y = self.cell.readout(unsqueeze_params(self.params), states.reshape(1, B * T, S))
        return y.reshape(B, T, -1)


def group_of(zoo: Zoo, task: str, group_or_network: str) -> str:
    """The group of a network id, or ``group_or_network`` itself if it names a group."""
    index = zoo._index(task)
    group = (
        index.loc[group_or_network, "group"]
        if group_or_network in index.index
        else group_or_network
    )
    if not (index["group"] == group).any():
        groups = ", ".join(dict.fromkeys(index["group"]))
        raise ZooKeyError(
            f"no group or network {group_or_network!r} in task {task!r}; its groups are "
            f"{groups} (network ids: zoo.index({task!r}).index)"
        )
    return str(group)


def check_architecture(zoo: Zoo, task: str, group: str, arch: str) -> None:
    """Raise :class:`ZooArchitectureError` (one line) if ``arch`` is not installed.

    The message names the plugin to install where the zoo recorded it (group attribute
    :data:`PLUGIN_ATTR`).
    """
    from rnnzoo_train.cells.registry import GROUP, is_registered

    if is_registered(arch):
        return
    attrs = zoo._dataset(task, layout.group_path(task, group)).attrs
    plugin = attrs.get(PLUGIN_ATTR)
    where = f"{zoo.location}: task {task!r}, group {group!r}"
    if plugin:
        wanted = (
            f"{plugin}=={attrs[PLUGIN_VERSION_ATTR]}" if attrs.get(PLUGIN_VERSION_ATTR) else plugin
        )
        raise ZooArchitectureError(
            f"{where} uses architecture {arch!r} of the plugin {plugin}, which is not "
            f"installed; install it (pip install {wanted!r}) to run these networks"
        )
    raise ZooArchitectureError(
        f"{where} uses architecture {arch!r}, which no installed package provides "
        f"(entry-point group {GROUP!r}); install the package that registers it"
    )


def check_architectures(zoo: Zoo, task: str, network_ids: Sequence[str]) -> None:
    """Raise :class:`ZooArchitectureError` if any of the networks' architectures is missing.

    Cheap (the index and group attributes only; no torch): commands that run networks call
    it before they start, so a missing plugin is one line up front, not a failure per unit.
    """
    index = zoo._index(task)
    rows = index.loc[list(network_ids), ["group", "arch"]].drop_duplicates()
    for group, arch in rows.itertuples(index=False):
        check_architecture(zoo, task, str(group), str(arch))


def cell_of(zoo: Zoo, task: str, group_or_network: str) -> Cell:
    """The cell of a group (``gru-tanh-u64``) or of a network id (needs torch)."""
    from rnnzoo_train.optional import require_torch

    require_torch("Zoo.cell")
    from rnnzoo_train.cells import get_cell

    group = group_of(zoo, task, group_or_network)
    index = zoo._index(task)
    first = index[index["group"] == group].iloc[0]
    arch = str(first["arch"])
    check_architecture(zoo, task, group, arch)
    probe = zoo._dataset(task, layout.probe_path(task))
    return get_cell(
        arch,
        str(first["activation"]),
        int(first["units"]),
        int(probe.sizes["input"]),
        int(probe.sizes["output"]),
    )


def network(
    zoo: Zoo, task: str, network_id: str, which: str = "final", dtype: Any = None
) -> Network:
    """A ready-to-run :class:`Network` (cell + torch parameters); see ``Zoo.network``."""
    from rnnzoo_train.optional import require_torch

    torch = require_torch("Zoo.network")
    weights = zoo.weights(task, network_id, which)
    params = {k: torch.as_tensor(v, dtype=dtype or torch.float32) for k, v in weights.items()}
    return Network(network_id, task, which, cell_of(zoo, task, network_id), params)


def population(
    zoo: Zoo,
    task: str,
    network_ids: Sequence[str] | str,
    which: str = "final",
    dtype: Any = None,
) -> tuple[Cell, dict[str, torch.Tensor]]:
    """The cell and stacked parameters ``(P, ...)`` of networks of ONE group.

    See ``Zoo.population`` (the public entry point) for parameters and errors.
    """
    from rnnzoo_train.optional import require_torch

    torch = require_torch("Zoo.population")
    if which not in layout.WEIGHT_PREFIXES:
        raise ValueError(f"which must be 'initial' or 'final', not {which!r}")
    index = zoo._index(task)
    network_ids = [network_ids] if isinstance(network_ids, str) else list(network_ids)
    if not network_ids:
        raise ValueError(f"population() needs at least one network id of task {task!r}")
    zoo._check_ids(task, network_ids)
    groups = sorted(set(index.loc[network_ids, "group"]))
    if len(groups) != 1:
        raise ValueError(f"population() stacks networks of one group (equal shapes); got {groups}")
    cell = cell_of(zoo, task, groups[0])
    ds = zoo._dataset(task, layout.group_path(task, groups[0]))
    rows = [int(ds.indexes["network"].get_loc(i)) for i in network_ids]
    prefix = layout.WEIGHT_PREFIXES[which]
    params = {
        p: torch.as_tensor(ds[prefix + p].values[rows], dtype=dtype or torch.float32)
        for p in ds.attrs.get("parameters", [])
    }
    return cell, params


def recompute_hidden(
    zoo: Zoo, task: str, ds: xr.Dataset, members: list[str], var: str
) -> xr.Dataset:
    """Hidden states on the probe inputs from the stored weights (float32 ``Cell.run``).

    For a zoo that does not store ``var`` (``zoo_storage`` ``untrained_hidden = false``).
    """
    from rnnzoo_train.optional import require_torch

    torch = require_torch(
        f"{var} of task {task} (not stored in this zoo: recomputed from the weights)"
    )
    which = "initial" if var == "hidden_untrained" else "final"
    cell, params = population(zoo, task, members, which=which)
    x = torch.as_tensor(zoo.probe(task).inputs, dtype=torch.float32)
    with torch.no_grad():
        states = cell.run(params, x.expand(len(members), *x.shape))
    units = cell.n_units
    coords = {k: v for k, v in ds.coords.items() if v.dims == ("network",)}
    template = xr.Dataset(coords=coords).sel(network=members)
    out = template.assign(
        {var: (("network", "probe", "time", "unit"), states[..., :units].numpy())}
    )
    out[var].attrs["description"] = f"recomputed from the {which} weights (not stored)"
    return out
