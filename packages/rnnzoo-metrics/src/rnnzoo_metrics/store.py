"""Resumable Zarr output of the all-pairs engine (needs the ``[zoo]`` extra).

Layout (readable with ``xarray.open_zarr``): the matrix as variable ``<metric name>``
with dims ``(network, network_to)`` and chunks of exactly one tile, the network
coordinates on both axes, and ``tile_done (tile, tile_to)`` (one chunk per tile) marking
finished tiles. A tile's values are written before its mark, so a tile interrupted
half-way is recomputed. Root attributes record the metric, its parameters and the tile;
resuming with another metric, other parameters or other networks is refused.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .errors import MetricsError, require
from .inputs import Networks
from .metric import Metric
from .targets import TILE_STORE_FORMAT, check_store

STORE_FORMAT = TILE_STORE_FORMAT


class TileStore:
    """One resumable pairwise computation on disk."""

    def __init__(self, path: Path, metric: Metric, nets: Networks, tile: int | None) -> None:
        self.path = path
        self.metric = metric
        self.nets = nets
        self.tile = tile
        self._done: np.ndarray | None = None
        self._zarr = require("zarr", "zoo", "a resumable pairwise store (store=...)")

    def _identity(self) -> dict[str, Any]:
        return {
            "format": STORE_FORMAT,
            "metric": self.metric.name,
            "params": json.dumps(self.metric.params, sort_keys=True, default=str),
            "n_networks": len(self.nets),
        }

    @classmethod
    def open(cls, path: Any, metric: Metric, nets: Networks) -> TileStore:
        """Open an existing store (checking it matches) or prepare to create one.

        Anything at ``path`` that is not a tile store of rnnzoo-metrics (or an empty
        folder) is refused, and the location must be writable (checked here, before any
        network is prepared).
        """
        path = check_store(path)
        self = cls(path, metric, nets, None)
        if (path / "zarr.json").exists():
            group = self._zarr.open_group(path, mode="r+")
            attrs = dict(group.attrs)
            want = self._identity()
            got = {k: attrs.get(k) for k in want}
            if got != want:
                diff = [k for k in want if got[k] != want[k]]
                raise MetricsError(
                    f"store {str(path)!r} holds another computation ({diff[0]}: "
                    f"{got[diff[0]]!r}, wanted {want[diff[0]]!r}); use a new path or delete it"
                )
            stored = [str(v) for v in np.asarray(group["network"][:])]
            if stored != list(nets.ids):
                raise MetricsError(
                    f"store {str(path)!r} was computed for other networks; "
                    "use a new path or delete it"
                )
            self.tile = int(attrs["tile"])
            self._done = np.asarray(group["tile_done"][:]).astype(bool)
        return self

    def ensure(self, tile: int) -> None:
        """Create the store (template, coordinates, attributes) if it does not exist yet."""
        if self._done is not None:
            return
        import xarray as xr

        self.tile = tile
        n = len(self.nets)
        nt = -(-n // tile)
        ids = np.array(list(self.nets.ids), dtype=object)  # variable-length strings
        coords: dict[str, Any] = {"network": ids, "network_to": ids}
        for name, values in self.nets.coords.items():
            values = _vlen(values)
            coords[name] = ("network", values)
            coords[f"{name}_to"] = ("network_to", values)
        ds = xr.Dataset(
            {
                self.metric.name: (("network", "network_to"), np.full((n, n), np.nan)),
                "tile_done": (("tile", "tile_to"), np.zeros((nt, nt), dtype=np.uint8)),
            },
            coords=coords,
        )
        crc = self._zarr.codecs.Crc32cCodec()
        encoding = {
            self.metric.name: {"chunks": (tile, tile), "compressors": [crc]},
            "tile_done": {"chunks": (1, 1), "compressors": [crc]},
        }
        ds.attrs = {**self._identity(), "tile": tile}
        with quiet_zarr():
            ds.to_zarr(self.path, mode="w", encoding=encoding, consolidated=True, zarr_format=3)
        self._done = np.zeros((nt, nt), dtype=bool)

    def done(self, ti: int, tj: int) -> bool:
        """Whether tile ``(ti, tj)`` was finished by an earlier run."""
        return bool(self._done is not None and self._done[ti, tj])

    def _group(self):
        return self._zarr.open_group(self.path, mode="r+")

    def read_into(self, out: np.ndarray) -> None:
        """Copy the finished tiles into ``out``."""
        if self._done is not None and self._done.any():
            out[:] = self._group()[self.metric.name][:]

    def write(self, ti: int, tj: int, out: np.ndarray) -> None:
        """Write tile ``(ti, tj)`` and its mirror image, then mark it finished."""
        t, n = self.tile, len(self.nets)
        r = slice(ti * t, min(n, (ti + 1) * t))
        c = slice(tj * t, min(n, (tj + 1) * t))
        group = self._group()
        arr = group[self.metric.name]
        arr[r, c] = out[r, c]
        if ti != tj:
            arr[c, r] = out[c, r]
        group["tile_done"][ti, tj] = 1
        self._done[ti, tj] = True

    def finish(self, out: np.ndarray) -> None:
        """Write the exact diagonal and symmetric lower halves, and consolidate metadata."""
        group = self._group()
        group[self.metric.name][:] = out
        with quiet_zarr():
            self._zarr.consolidate_metadata(str(self.path))


def _vlen(values: Any) -> np.ndarray:
    """Fixed-width unicode -> object strings (Zarr v3 variable-length strings)."""
    values = np.asarray(values)
    return values.astype(object) if values.dtype.kind == "U" else values


@contextlib.contextmanager
def quiet_zarr():
    """Silence zarr's note that consolidated metadata is not yet in the v3 spec.

    rnnzoo always consolidates (DESIGN.md section 3: over plain HTTP a store without it
    opens empty), so the note is expected, not actionable.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        yield
