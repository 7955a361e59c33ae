"""Errors of the zoo store; each message says what was wrong and what to do."""

from __future__ import annotations


class ZooError(Exception):
    """A zoo cannot be opened, written, published or downloaded as asked."""


class ZooSchemaError(ZooError, ValueError):
    """A store is not an rnnzoo zoo, or has a schema version this reader does not know."""


class ZooLocationError(ZooError, ValueError):
    """An output location cannot take a zoo: not a zoo, or being written by another process.

    A ``ValueError`` too, like :class:`ZooPlanError`: both are user-correctable inputs, which
    ``rnnzoo-train generate`` reports in one line.
    """


class ZooPlanError(ZooError, ValueError):
    """A plan or a result does not match the zoo it is written to (``ValueError`` too)."""


class ZooArchitectureError(ZooError, ValueError):
    """A stored network's architecture is not installed (its plugin is missing).

    The message is one line naming the architecture and, where the zoo recorded it, the
    plugin distribution to install (``ValueError`` too: the user can act on it).
    """


class ZooDownloadError(ZooError):
    """A published zoo cannot be fetched, or a fetched file fails its sha256 check."""


class ZooIntegrityError(ZooError):
    """A chunk the zoo promises is missing or fails its crc32c checksum (damage).

    Every chunk of every array of a zoo of schema 1.1 or later is written (``docs/zoo-format.md``
    section 1), so a missing chunk is always damage, never "not yet computed". The message is
    one line naming the store, the task, the network (where the array has one), the array
    and the chunk, and saying to run ``rnnzoo-train verify``. Not a ``KeyError`` or
    ``FileNotFoundError`` on purpose: zarr treats those as "missing, use the fill value".

    Attributes
    ----------
    key : str
        The store key of the chunk (``flipflop/index/test_loss/c/0``).
    reason : {"missing", "corrupt"}
    """

    key: str = ""
    reason: str = ""


class ZooKeyError(ZooError, KeyError):
    """A task, network id, group or analysis that is not in the zoo (a ``KeyError`` too).

    Its message is one line saying what is missing and how to list what there is (unlike a
    plain ``KeyError``, ``str()`` of it is not wrapped in quotes).
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
