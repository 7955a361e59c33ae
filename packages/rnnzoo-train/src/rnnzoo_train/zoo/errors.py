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


class ZooDownloadError(ZooError):
    """A published zoo cannot be fetched, or a fetched file fails its sha256 check."""


class ZooKeyError(ZooError, KeyError):
    """A task, network id, group or analysis that is not in the zoo (a ``KeyError`` too).

    Its message is one line saying what is missing and how to list what there is (unlike a
    plain ``KeyError``, ``str()`` of it is not wrapped in quotes).
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
