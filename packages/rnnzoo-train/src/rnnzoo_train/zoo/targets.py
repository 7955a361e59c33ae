"""Output directories of ``publish`` and ``download``, checked before any work.

They are created only as far as needed, and removed again (only what was created) when the
command fails.

A directory counts as writable only if a file can really be created in it: as root, mode
bits (``os.access``) say yes even for an immutable directory or a read-only mount.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from .errors import ZooError


def nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_dir(
    path: str | os.PathLike, *, what: str, option: str, probe: bool = True
) -> Path:
    """Check that ``path`` is, or can be created as, a directory this process can write.

    Nothing is written except a probe file, created and removed at once in ``path`` (or in
    its nearest existing ancestor).

    Parameters
    ----------
    path : str or path
        The directory.
    what : str
        What it is for, in the error message (``"the publication directory"``).
    option : str
        The command-line option that names it (``"--out"``), in the error message.
    probe : bool
        Also check that a file can be created there (``False``: only that it is, or can
        become, a directory other than a Zarr store).

    Raises
    ------
    ZooError
        One line: ``path`` (or an ancestor) is a file, is a Zarr store, or cannot be
        written; the message says to choose another ``option``.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ZooError(f"{what} {str(path)!r} is a file, not a directory; choose another {option}")
    if (path / "zarr.json").exists():
        raise ZooError(
            f"{what} {str(path)!r} is a Zarr store; choose another {option} (a directory of "
            "its own, never a zoo)"
        )
    ancestor = nearest_existing(path)
    if not ancestor.is_dir():
        raise ZooError(
            f"cannot create {what} {str(path)!r}: {str(ancestor)!r} is a file, not a "
            f"directory; choose another {option}"
        )
    if not probe:
        return path
    reason = unwritable(ancestor)
    if reason is not None:
        raise ZooError(
            f"cannot write {what} {str(path)!r}: {str(ancestor)!r} is not writable "
            f"({reason}); choose another {option}"
        )
    return path


def unwritable(folder: str | os.PathLike) -> str | None:
    """Why no file can be created in ``folder`` (``None``: one can).

    The test is an actual write: a temporary file is created in ``folder`` and removed at
    once. Mode bits (``os.access``) are not enough: as root they say yes even for an
    immutable folder (``chattr +i``) or a read-only mount.
    """
    try:
        fd, probe_file = tempfile.mkstemp(prefix=".rnnzoo-write-test-", dir=folder)
    except OSError as err:
        return err.strerror or type(err).__name__
    os.close(fd)
    os.unlink(probe_file)
    return None


def make_dirs(path: Path) -> list[Path]:
    """Create ``path`` and missing parents; return the directories created, outermost first."""
    created: list[Path] = []
    missing = []
    p = Path(os.path.abspath(path))
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            continue
        created.append(d)
    return created


def remove_created(created: list[Path]) -> None:
    """Remove the directories :func:`make_dirs` created, innermost first, if still empty."""
    for d in reversed(created):
        with contextlib.suppress(OSError):
            d.rmdir()
