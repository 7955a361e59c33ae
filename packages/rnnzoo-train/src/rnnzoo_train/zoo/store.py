"""Opening Zarr stores (directory, zip, HTTP), consolidation, and the writer's lock."""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import zarr
import zarr.storage

from .errors import ZooError, ZooLocationError

#: suffix zarr's LocalStore gives a chunk while it is being written (atomic rename after)
PARTIAL_SUFFIX = ".partial"
#: the writer's lock file inside a zoo directory (not part of the Zarr hierarchy)
LOCK_NAME = ".rnnzoo-writer.lock"


def is_url(location: Any) -> bool:
    """Whether ``location`` is a URL (``http://``, ``https://``, or another fsspec protocol)."""
    return isinstance(location, str) and "://" in location and not location.startswith("file://")


def is_zip(location: Any) -> bool:
    return not is_url(location) and str(location).endswith(".zip")


@contextlib.contextmanager
def quiet_zarr() -> Iterator[None]:
    """Silence zarr's note that consolidated metadata is not yet in the v3 specification.

    Consolidated metadata is a deliberate choice (DESIGN.md section 3: without it a store
    served over plain HTTP opens empty); zarr-python and xarray both read it.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part")
        # the writer's lock file and *.partial leftovers are not Zarr nodes
        warnings.filterwarnings("ignore", message="Object at .* is not recognized as a component")
        yield


def open_store(location: str | os.PathLike, *, read_only: bool = True) -> zarr.abc.store.Store:
    """A zarr store for a directory path, a ``.zip`` file or a URL.

    Parameters
    ----------
    location : str or path
        A directory (``zoo.zarr``), an uncompressed zip of one (``flipflop.zarr.zip``), or
        a URL of a directory served over HTTP(S) (needs consolidated metadata).
    read_only : bool
        Open read-only (zips and URLs are always read-only).
    """
    if is_url(location):
        try:
            return zarr.storage.FsspecStore.from_url(str(location), read_only=True)
        except ImportError as err:  # pragma: no cover - aiohttp is a dependency
            raise ZooError(
                f"reading {location} needs fsspec's HTTP support: pip install 'fsspec[http]'"
            ) from err
    path = Path(str(location).removeprefix("file://"))
    if is_zip(path):
        if not path.is_file():
            raise FileNotFoundError(f"no zoo zip at {path}")
        return zarr.storage.ZipStore(path, mode="r")
    if read_only and not (path / "zarr.json").is_file():
        if not path.exists():
            raise FileNotFoundError(f"no zoo at {path}: the path does not exist")
        raise ZooError(f"{path} is not a Zarr v3 store (no zarr.json); is it an rnnzoo zoo?")
    return zarr.storage.LocalStore(path, read_only=read_only)


def consolidate(store: zarr.abc.store.Store | str | os.PathLike) -> None:
    """Re-write the consolidated metadata of the whole store (after any metadata change)."""
    if isinstance(store, str | os.PathLike):
        store = zarr.storage.LocalStore(Path(store))
    with quiet_zarr():
        zarr.consolidate_metadata(store, zarr_format=3)


def open_root(store: zarr.abc.store.Store, *, remote: bool) -> zarr.Group:
    """The root group, read through consolidated metadata.

    Over HTTP consolidated metadata is required: without it zarr would list directories,
    which static web servers refuse, and the zoo would open *empty* without an error. A
    local store without it (a generation killed before it consolidated) is read by listing.
    """
    with quiet_zarr():
        try:
            return zarr.open_group(store, mode="r", zarr_format=3, use_consolidated=True)
        except (ValueError, KeyError) as err:
            if remote:
                raise ZooError(
                    f"{store} has no consolidated metadata, so it cannot be read over HTTP; "
                    "run `rnnzoo-train verify --repair` on the original and publish it again"
                ) from err
        except FileNotFoundError as err:
            raise FileNotFoundError(f"no zoo at {store}") from err
        return zarr.open_group(store, mode="r", zarr_format=3, use_consolidated=False)


class WriterLock:
    """An exclusive advisory lock on a zoo directory, held while a writer is open.

    Uses ``fcntl.flock`` on :data:`LOCK_NAME`: the kernel releases it when the process dies
    (even by SIGKILL), so a killed generation never leaves a stale lock, while a second
    generation into the same zoo at the same time is refused. The file is removed on
    release (while still locked; a process that opened the old file notices the changed
    inode and retries), so a closed zoo holds nothing but Zarr nodes.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fh = None

    @property
    def held(self) -> bool:
        return self._fh is not None

    def acquire(self) -> None:
        if self._fh is not None:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        lock_path = self.path / LOCK_NAME
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory lock
            self._fh = open(lock_path, "a+")  # noqa: SIM115 - held until release()
            return
        while True:
            fh = open(lock_path, "a+")  # noqa: SIM115 - held until release()
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                fh.close()
                raise ZooLocationError(
                    f"{self.path} is being written by {holder}; wait for it to finish "
                    "or write to another output path"
                ) from err
            try:
                same = os.fstat(fh.fileno()).st_ino == os.stat(lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            fh.close()  # the holder released and removed it meanwhile: take the new one
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(FileNotFoundError):
                (self.path / LOCK_NAME).unlink()
            self._fh.close()
            self._fh = None
