"""Opening Zarr stores (directory, zip, HTTP), consolidation, and the writer's lock.

Every reader reads through :class:`IntegrityStore`, which turns a missing or corrupt chunk
into a one-line :class:`~rnnzoo_train.zoo.errors.ZooIntegrityError` instead of fill values
or zarr's bare "checksum do not match".
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import warnings
from collections.abc import AsyncGenerator, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zarr
import zarr.storage

from .errors import ZooError, ZooIntegrityError, ZooLocationError

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
        import zipfile

        if not zipfile.is_zipfile(path):
            raise ZooError(
                f"{path} is not a zip file; give a zoo directory, a published .zarr.zip "
                "or an http(s) URL"
            )
        return zarr.storage.ZipStore(path, mode="r")
    if read_only and not (path / "zarr.json").is_file():
        if not path.exists():
            raise FileNotFoundError(f"no zoo at {path}: the path does not exist")
        raise ZooError(f"{path} is not a Zarr v3 store (no zarr.json); is it an rnnzoo zoo?")
    return zarr.storage.LocalStore(path, read_only=read_only)


#: a chunk key of Zarr v3's default chunk key encoding: ``<array path>/c[/<i>/<j>...]``
CHUNK_KEY = re.compile(r"^(?P<array>.+)/c(?P<coords>(?:/\d+)*)$")

#: the first schema version whose zoos have every chunk of every array written
#: (``docs/zoo-format.md`` section 1); in older zoos a missing chunk may mean "fill value"
FULL_CHUNKS_SCHEMA = (1, 1)


def every_chunk_written(attrs: Mapping[str, Any]) -> bool:
    """Whether a store with these root attributes promises every chunk of every array."""
    try:
        major, minor = (int(x) for x in str(attrs.get("rnnzoo_schema_version")).split(".")[:2])
    except ValueError:
        return True  # not a readable version: the strictest reading
    return (major, minor) >= FULL_CHUNKS_SCHEMA


@dataclass(frozen=True)
class ArrayFacts:
    """What :class:`IntegrityStore` needs to know of an array to check and name its chunks."""

    crc32c_last: bool
    dims: tuple[str, ...]
    chunks: tuple[int, ...]

    @classmethod
    def from_array_metadata(cls, meta: Any) -> ArrayFacts:
        """From zarr's ``ArrayV3Metadata`` (no ``to_dict``: a few attribute reads)."""
        from zarr.codecs import Crc32cCodec

        return cls(
            crc32c_last=bool(meta.codecs) and isinstance(meta.codecs[-1], Crc32cCodec),
            dims=tuple(str(d) for d in meta.dimension_names or ()),
            chunks=tuple(int(c) for c in meta.chunk_grid.chunk_shape),
        )

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any]) -> ArrayFacts:
        codecs = meta.get("codecs") or [{}]
        last = codecs[-1] if isinstance(codecs[-1], Mapping) else {"name": codecs[-1]}
        grid = meta.get("chunk_grid", {}).get("configuration", {})
        return cls(
            crc32c_last=last.get("name") == "crc32c",
            dims=tuple(str(d) for d in meta.get("dimension_names") or ()),
            chunks=tuple(int(c) for c in grid.get("chunk_shape", ())),
        )


def store_location(store: Any) -> str:
    """A readable location of a zarr store: a directory, a zip file or a URL."""
    inner = getattr(store, "_store", store)
    for attr in ("root", "path"):
        value = getattr(inner, attr, None)
        if value:
            return str(value)
    return str(inner)


class IntegrityStore(zarr.storage.WrapperStore):
    """A read-only view of a zoo store that raises for a missing or corrupt chunk.

    zarr returns the fill value for a chunk key that is not there (so a deleted chunk of a
    zoo reads as NaN, "pending", 0...) and reports a failed crc32c as a bare ``ValueError``
    without saying where. Every chunk of a zoo of schema >= 1.1 is written, so through this
    wrapper a missing chunk raises :class:`ZooIntegrityError`, and so does a chunk whose
    stored crc32c (the last codec of every zoo array) does not match its bytes. The message
    is one line naming the store, task, network (for per-network arrays), array and chunk.

    The check costs no request: a missing key is the ``None`` (over HTTP the 404) that the
    read returned anyway; the checksum is computed on bytes already read. Array facts come
    from the consolidated metadata (:meth:`learn`), else from the array's ``zarr.json``
    (read once per array, local stores only).

    Parameters
    ----------
    store : zarr Store
        The store to read.
    location : str, optional
        How to name the store in messages (default: its path or URL).
    strict : bool
        Raise for a missing chunk (``False`` for zoos older than schema 1.1, whose missing
        chunks may stand for fill values; corrupt chunks raise either way).
    """

    def __init__(self, store: Any, *, location: str | None = None, strict: bool = True):
        super().__init__(store)
        self.location = location or store_location(store)
        self.strict = strict
        self._facts: dict[str, ArrayFacts | None] = {}
        self._listed: dict[str, Any] = {}  # path -> metadata, from consolidated metadata
        self._ids: dict[str, list[str]] = {}

    def _with_store(self, store: Any) -> IntegrityStore:
        other = type(self)(store, location=self.location, strict=self.strict)
        other._facts, other._listed = self._facts, self._listed
        return other

    def __repr__(self) -> str:
        return f"IntegrityStore({self._store!r})"

    def __str__(self) -> str:
        return str(self._store)

    def learn(self, root: zarr.Group) -> None:
        """Use ``root``'s consolidated metadata for array facts (looked up when first read)."""
        cm = getattr(root.metadata, "consolidated_metadata", None)
        if cm is None:
            return
        prefix = f"{root.path}/" if root.path else ""
        self._listed.update({prefix + p: m for p, m in cm.flattened_metadata.items()})

    async def _array_facts(self, array: str) -> ArrayFacts | None:
        if array not in self._facts and array in self._listed:
            meta = self._listed[array]
            if getattr(meta, "node_type", None) == "array":
                self._facts[array] = ArrayFacts.from_array_metadata(meta)
        if array not in self._facts:
            facts = None
            with contextlib.suppress(Exception):
                from zarr.core.buffer import default_buffer_prototype

                raw = await self._store.get(f"{array}/zarr.json", default_buffer_prototype())
                if raw is not None:
                    meta = json.loads(raw.to_bytes())
                    if meta.get("node_type") == "array":
                        facts = ArrayFacts.from_metadata(meta)
            self._facts[array] = facts
        return self._facts[array]

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        buf = await self._store.get(key, prototype, byte_range)
        match = CHUNK_KEY.match(key)
        if match is None:
            return buf
        if buf is None:
            if self.strict and await self._array_facts(match["array"]) is not None:
                raise await self._error(key, "missing")
            return buf
        if byte_range is None:
            facts = await self._array_facts(match["array"])
            if facts is not None and facts.crc32c_last and not _crc32c_ok(buf.to_bytes()):
                raise await self._error(key, "corrupt")
        return buf

    async def _error(self, key: str, reason: str) -> ZooIntegrityError:
        what = "missing" if reason == "missing" else "corrupt (crc32c mismatch)"
        err = ZooIntegrityError(await self.describe(key, what))
        err.key, err.reason = key, reason
        return err

    async def get_partial_values(self, prototype: Any, key_ranges: Iterable) -> list:
        return [await self.get(key, prototype, byte_range) for key, byte_range in key_ranges]

    async def _get_many(self, requests: Iterable) -> AsyncGenerator:
        for key, prototype, byte_range in requests:
            yield key, await self.get(key, prototype, byte_range)

    async def describe(self, key: str, what: str) -> str:
        """One line: where chunk ``key`` is, whose it is, what is wrong and what to do."""
        match = CHUNK_KEY.match(key)
        array = match["array"] if match else key
        task, _, rel = array.partition("/")
        named = [f"task {task}"] if rel else []
        facts = await self._array_facts(array)
        coords = [int(c) for c in match["coords"].split("/")[1:]] if match else []
        if facts and coords and facts.dims[:1] == ("network",) and facts.chunks[:1] == (1,):
            named.append(f"network {await self._network_id(array, coords[0])}")
        named.append(f"array {rel or array}")
        chunk = key[len(array) + 1 :]
        return (
            f"{self.location}: {', '.join(named)}: chunk {chunk} is {what}; "
            f"run `rnnzoo-train verify {self.location}`"
        )

    async def _network_id(self, array: str, row: int) -> str:
        """The id of the network at ``row`` of the group holding ``array`` (else the row)."""
        group = array.rsplit("/", 1)[0]
        if group not in self._ids:
            try:
                from zarr.api.asynchronous import open_array

                ids = await open_array(store=self._store, path=f"{group}/network", mode="r")
                self._ids[group] = [str(i) for i in await ids.getitem(slice(None))]
            except Exception:  # the coordinate is damaged too: name the row
                self._ids[group] = []
        ids = self._ids[group]
        return ids[row] if row < len(ids) else f"at row {row} of {group}"


def _crc32c_ok(data: bytes) -> bool:
    """Whether the last 4 bytes of ``data`` are the crc32c of the rest (zarr's layout)."""
    import google_crc32c

    if len(data) < 4:
        return False
    return google_crc32c.value(data[:-4]).to_bytes(4, "little") == data[-4:]


def chunk_grid(array: zarr.Array) -> list[tuple[int, ...]]:
    """Coordinates of every chunk of ``array`` (regular grid), in C order."""
    import itertools

    shape, chunks = array.shape, array.metadata.chunk_grid.chunk_shape
    return list(itertools.product(*(range(-(-n // c)) for n, c in zip(shape, chunks, strict=True))))


def chunk_key(array: zarr.Array, coords: tuple[int, ...]) -> str:
    """The store key of chunk ``coords`` of ``array`` (``<array path>/c/<i>/...``)."""
    return f"{array.path}/{array.metadata.encode_chunk_key(coords)}"


def checked(store: Any, *, location: str | None = None) -> IntegrityStore:
    """``store`` read through an :class:`IntegrityStore` (itself if it already is one)."""
    if isinstance(store, IntegrityStore):
        return store
    return IntegrityStore(store, location=location)


def consolidate(store: zarr.abc.store.Store | str | os.PathLike) -> None:
    """Re-write the consolidated metadata of the whole store (after any metadata change)."""
    if isinstance(store, str | os.PathLike):
        store = zarr.storage.LocalStore(Path(store))
    with quiet_zarr():
        zarr.consolidate_metadata(store, zarr_format=3)


def open_root(
    store: zarr.abc.store.Store, *, remote: bool, location: str | None = None
) -> zarr.Group:
    """The root group, read through consolidated metadata and an :class:`IntegrityStore`.

    Over HTTP consolidated metadata is required: without it zarr would list directories,
    which static web servers refuse, and the zoo would open *empty* without an error. A
    local store without it (a generation killed before it consolidated) is read by listing.
    Every array of the returned group reads through :class:`IntegrityStore` (strict about
    missing chunks from schema 1.1 on, :func:`every_chunk_written`).

    Raises
    ------
    ZooError
        One line if the root metadata cannot be read (truncated or not JSON).
    """
    store = checked(store, location=location)
    with quiet_zarr():
        try:
            try:
                root = zarr.open_group(store, mode="r", zarr_format=3, use_consolidated=True)
            except (ValueError, KeyError) as err:
                if remote:
                    raise ZooError(
                        f"{store.location} has no consolidated metadata, so it cannot be read "
                        "over HTTP; run `rnnzoo-train verify --repair` on the original and "
                        "publish it again"
                    ) from err
                root = zarr.open_group(store, mode="r", zarr_format=3, use_consolidated=False)
        except FileNotFoundError as err:
            raise FileNotFoundError(f"no zoo at {store.location}") from err
        except ZooError:
            raise
        except Exception as err:  # truncated or malformed metadata, unreachable server
            raise ZooError(unreadable(store.location, err)) from None
    store.learn(root)
    store.strict = every_chunk_written(root.attrs)
    return root


def unreadable(location: str, err: BaseException) -> str:
    """One line for a store whose metadata cannot be read (``err`` shortened to its gist)."""
    gist = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if len(gist) > 160:
        gist = gist[:157] + "..."
    return (
        f"cannot read the zoo at {location} ({type(err).__name__}: {gist}); is it an rnnzoo "
        f"zoo, complete and reachable? `rnnzoo-train verify {location}` checks a local copy"
    )


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
                busy = ZooLocationError(
                    f"{self.path} is being written by {holder}; wait for it to finish "
                    "or write to another output path"
                )
                busy.holder = holder
                raise busy from err
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
