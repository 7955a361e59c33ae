"""What an output path holds, and whether a command may write there.

rnnzoo-metrics never removes or writes into anything it did not write. Every result it
writes carries the root attribute ``rnnzoo_metrics_result`` (``"pairwise"`` for a matrix
of :func:`~rnnzoo_metrics.pairwise`, ``"embedding"`` for :func:`~rnnzoo_metrics.embed`)
and ``rnnzoo_metrics_version``; a figure written by ``rnnzoo-metrics plot`` carries the
PNG text entry ``Software: rnnzoo-metrics <version>``; a tile store (``--store``) carries
its ``format`` attribute. Results written before the marker existed (rnnzoo-metrics 0.1.0)
are recognised by their single data variable: dims ``(network, network_to)`` with attrs
``metric`` and ``kind`` (a pairwise matrix), or dims ``(network, component)`` with attr
``method`` (an embedding). Figures of that version are not recognised (any matplotlib
PNG looks the same).

An existing target is replaced only with ``overwrite=True`` and only if it is a result of
the same kind; anything else is refused with one line saying what it is. Every output
location is checked to be writable (by creating and removing a temporary file there: file
mode bits do not stop root, but a read-only mount or an immutable folder does) *before*
anything is computed.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import MetricsError

RESULT_ATTR = "rnnzoo_metrics_result"
VERSION_ATTR = "rnnzoo_metrics_version"
TILE_STORE_FORMAT = "rnnzoo-metrics pairwise store 1"
FIGURE_SOFTWARE = "rnnzoo-metrics"

#: what each kind is called in messages
NAMES = {
    "pairwise": "an rnnzoo-metrics pairwise matrix",
    "embedding": "an rnnzoo-metrics embedding",
    "figure": "a figure written by rnnzoo-metrics",
    "tile-store": "an rnnzoo-metrics tile store (--store)",
}


@dataclass(frozen=True)
class Found:
    """What a path holds.

    Attributes
    ----------
    kind : str
        ``missing``, ``pairwise``, ``embedding``, ``figure``, ``tile-store`` or ``other``.
    what : str
        A description for messages (``"an rnnzoo zoo (a Zarr store)"``...).
    legacy : bool
        A result written before results carried the ``rnnzoo_metrics_result`` marker.
    """

    kind: str
    what: str
    legacy: bool = False


def identify(path: str | Path) -> Found:
    """Say what ``path`` holds, reading only metadata (no zarr needed)."""
    p = Path(path)
    if p.is_symlink():
        return Found("other", "a symbolic link")
    if not p.exists():
        return Found("missing", "nothing")
    if p.is_dir():
        if (p / "zarr.json").is_file():
            return _identify_zarr(p)
        n = sum(1 for _ in p.iterdir())
        return Found("other", f"a folder with {n} entries" if n else "an empty folder")
    if not p.is_file():
        return Found("other", "not a regular file")
    with open(p, "rb") as f:
        head = f.read(8)
    if head.startswith((b"CDF\x01", b"CDF\x02", b"\x89HDF\r\n\x1a\n")):
        return _identify_netcdf(p)
    if head == _PNG:
        return _identify_png(p)
    return Found("other", "a file that is not an rnnzoo-metrics result")


def _json(path: Path) -> dict | None:
    try:
        obj = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def _identify_zarr(p: Path) -> Found:
    root = _json(p / "zarr.json")
    if root is None:
        return Found("other", "a Zarr store whose zarr.json cannot be read")
    attrs = root.get("attributes") or {}
    if attrs.get(RESULT_ATTR) in ("pairwise", "embedding"):
        return Found(attrs[RESULT_ATTR], NAMES[attrs[RESULT_ATTR]])
    if attrs.get("format") == TILE_STORE_FORMAT:
        return Found("tile-store", NAMES["tile-store"])
    if "rnnzoo_schema_version" in attrs:
        return Found("other", "an rnnzoo zoo (a Zarr store)")
    if root.get("node_type") == "group":
        arrays = {}
        for child in p.iterdir():
            meta = _json(child / "zarr.json") if child.is_dir() else None
            if meta is not None and meta.get("node_type") == "array":
                arrays[child.name] = (meta.get("dimension_names"), meta.get("attributes") or {})
        legacy = _legacy_kind(arrays)
        if legacy:
            return Found(legacy, NAMES[legacy] + " (written before results were marked)", True)
    return Found("other", "a Zarr store that is not an rnnzoo-metrics result")


def _legacy_kind(arrays: dict[str, tuple]) -> str | None:
    """``pairwise``/``embedding`` for an unmarked result of rnnzoo-metrics 0.1.0, else None."""
    data = {
        name: (tuple(dims or ()), attrs)
        for name, (dims, attrs) in arrays.items()
        if tuple(dims or ()) not in ((name,),)  # coordinate variables are named by their dim
    }
    data = {k: v for k, v in data.items() if k not in _coordinate_names(data)}
    if len(data) != 1:
        return None
    dims, attrs = next(iter(data.values()))
    if (
        dims == ("network", "network_to")
        and "metric" in attrs
        and attrs.get("kind") in ("distance", "similarity")
    ):
        return "pairwise"
    if dims == ("network", "component") and attrs.get("method") in ("classical", "metric"):
        return "embedding"
    return None


def _coordinate_names(data: dict[str, tuple]) -> set[str]:
    names: set[str] = set()
    for _, attrs in data.values():
        coords = attrs.get("coordinates")
        if isinstance(coords, str):
            names.update(coords.split())
    return names


def _identify_netcdf(p: Path) -> Found:
    import xarray as xr

    try:
        with xr.open_dataset(p) as ds:
            kind = ds.attrs.get(RESULT_ATTR)
            arrays = {str(n): (tuple(map(str, v.dims)), dict(v.attrs)) for n, v in ds.items()}
    except Exception:  # any reader failure: this file is not something we can recognise
        return Found("other", "a file that cannot be read as NetCDF")
    if kind in ("pairwise", "embedding"):
        return Found(kind, NAMES[kind])
    legacy = _legacy_kind(arrays)
    if legacy:
        return Found(legacy, NAMES[legacy] + " (written before results were marked)", True)
    return Found("other", "a NetCDF file that is not an rnnzoo-metrics result")


_PNG = b"\x89PNG\r\n\x1a\n"


def png_text(p: Path) -> dict[str, str]:
    """The ``tEXt`` entries of a PNG file (chunks before the image data)."""
    out: dict[str, str] = {}
    with open(p, "rb") as f:
        if f.read(8) != _PNG:
            return out
        while True:
            head = f.read(8)
            if len(head) < 8:
                return out
            length, ctype = struct.unpack(">I4s", head)
            if ctype in (b"IDAT", b"IEND") or length > 2**20:
                return out
            data = f.read(length)
            f.read(4)  # CRC
            if ctype == b"tEXt" and b"\x00" in data:
                key, value = data.split(b"\x00", 1)
                out[key.decode("latin-1")] = value.decode("latin-1")


def _identify_png(p: Path) -> Found:
    if png_text(p).get("Software", "").startswith(FIGURE_SOFTWARE):
        return Found("figure", NAMES["figure"])
    return Found("other", "a PNG image not written by rnnzoo-metrics")


def check_output(
    path: str | Path,
    kind: str,
    *,
    overwrite: bool,
    suffixes: tuple[str, ...],
    option: str = "--out",
) -> Path:
    """Refuse an output target this command may not write; return it as a Path.

    Parameters
    ----------
    path : path
        The target.
    kind : {"pairwise", "embedding", "figure"}
        What the command writes.
    overwrite : bool
        Whether an existing result of the same kind may be replaced.
    suffixes : tuple of str
        Allowed suffixes (``(".nc", ".zarr")``).
    option : str
        The option naming the path, for messages.

    Raises
    ------
    MetricsError
        One line: a wrong suffix, an existing target that is not a result of this kind,
        an existing result without ``overwrite``, or a location that cannot be written.
    """
    p = Path(path)
    if p.suffix not in suffixes:
        raise MetricsError(f"{option} {str(p)!r}: use a path ending in {' or '.join(suffixes)}")
    found = identify(p)
    if found.kind == "missing":
        check_writable(p)
        return p
    if found.kind != kind:
        raise MetricsError(
            f"{option} {str(p)!r} exists and is {found.what}, not {NAMES[kind]}; "
            "rnnzoo-metrics replaces only its own results of the same kind: choose another path"
        )
    if not overwrite:
        raise MetricsError(
            f"{option} {str(p)!r} already holds {found.what}; pass --overwrite to replace it "
            "or choose another path"
        )
    check_writable(p, replacing=True)
    return p


def check_store(path: str | Path) -> Path:
    """Refuse a ``--store`` path that is not (and cannot become) our tile store."""
    p = Path(path)
    found = identify(p)
    if found.kind == "tile-store":
        check_writable(p, replacing=True)
    elif found.kind == "missing" or found.what == "an empty folder":
        check_writable(p)
    else:
        raise MetricsError(
            f"store {str(p)!r} exists and is {found.what}, not an rnnzoo-metrics tile "
            "store; rnnzoo-metrics writes tiles only into its own stores: choose a new path"
        )
    return p


def check_writable(path: Path, *, replacing: bool = False) -> None:
    """Check that ``path`` can be created (or, ``replacing``, replaced) before computing.

    Creates and removes a temporary file in the folder that will receive the output (the
    nearest existing ancestor when folders are still to be created) and, when replacing a
    Zarr directory, inside it; a file to be replaced must open for writing.
    """
    folder = path.parent
    while not folder.exists():
        if folder.is_symlink():
            raise MetricsError(f"cannot create {str(path)!r}: {str(folder)!r} is a broken link")
        folder = folder.parent
    if not folder.is_dir():
        raise MetricsError(f"cannot create {str(path)!r}: {str(folder)!r} is not a folder")
    _probe(folder, path)
    if replacing and path.is_dir():
        _probe(path, path)
    elif replacing:
        try:
            with open(path, "r+b"):
                pass
        except OSError as exc:
            raise _not_writable(path, exc) from None


def _probe(folder: Path, target: Path) -> None:
    try:
        fd, name = tempfile.mkstemp(prefix=".rnnzoo-metrics-probe-", dir=folder)
    except OSError as exc:
        raise _not_writable(target, exc, folder) from None
    os.close(fd)
    os.unlink(name)


def _not_writable(target: Path, exc: OSError, folder: Path | None = None) -> MetricsError:
    where = f" (in {str(folder)!r})" if folder is not None and folder != target else ""
    reason = exc.strerror or type(exc).__name__
    return MetricsError(
        f"cannot write {str(target)!r}{where}: {reason} (read-only?); choose a writable location"
    )
