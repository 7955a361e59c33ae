"""Publishing a finished output atomically: the target holds the old or the new, never neither.

An output (a NetCDF file, a Zarr directory, a PNG) is first written completely under a
hidden temporary name in the target's own folder (:func:`temp_path`), then moved onto the
target by :func:`publish`:

- a new target: ``renameat2(RENAME_NOREPLACE)`` (Linux), so an object that appeared at
  the target meanwhile is never replaced;
- replacing a previous result (``--overwrite``): a file by ``rename`` (atomic); a Zarr
  directory by ``renameat2(RENAME_EXCHANGE)``, which swaps the two directories in one
  step, after which the old result (now under the temporary name) is removed.

A kill at any moment therefore leaves the target readable, as the old or the new result,
and at worst a hidden ``.NAME.*.partial`` next to it (an unfinished output, or the old
result after the swap), which may be deleted. Where ``renameat2`` is unavailable (not
Linux, or a file system without it) a directory is replaced in two renames, old away then
new in place; a kill between them leaves the old result under the hidden name.

``RNNZOO_METRICS_FAILPOINT=<stage>`` makes the process SIGKILL itself at that stage
(``written``: the temporary output is complete, nothing moved; ``swapped``: the new result
is in place, the old one not yet removed). It exists for the tests of this promise.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import shutil
import signal
import sys
from pathlib import Path

FAILPOINT_ENV = "RNNZOO_METRICS_FAILPOINT"

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2


def failpoint(stage: str) -> None:
    """SIGKILL this process if ``RNNZOO_METRICS_FAILPOINT`` names ``stage`` (tests only)."""
    if os.environ.get(FAILPOINT_ENV) == stage:
        os.kill(os.getpid(), signal.SIGKILL)


def temp_path(dest: Path, *, directory: bool) -> Path:
    """A new, empty, hidden file or directory beside ``dest`` to write the output into.

    Created with the permissions of any new file (``0o666``/``0o777`` less the umask), so
    the published result has them too.
    """
    for _ in range(100):
        tmp = dest.parent / f".{dest.name}.{secrets.token_hex(4)}.partial"
        try:
            if directory:
                os.mkdir(tmp, 0o777)
            else:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(dest))  # pragma: no cover


def remove_temp(tmp: Path) -> None:
    """Remove a temporary output made by :func:`temp_path` (after a failure)."""
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """``renameat2(src, dst, flags)``; False if the system or file system lacks it."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    if fn(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(dst))


def publish(tmp: Path, dest: Path, *, replace: bool) -> None:
    """Move the finished output ``tmp`` onto ``dest`` in one step.

    Parameters
    ----------
    tmp : Path
        The complete output, made by :func:`temp_path` beside ``dest``.
    dest : Path
        The target. With ``replace=False`` it must not exist (``FileExistsError`` if
        something appeared there meanwhile). With ``replace=True`` it is a previous result
        the caller has checked may be replaced.
    replace : bool
        Replace a previous result (``--overwrite``).
    """
    failpoint("written")
    if not replace or not dest.exists():
        if not _renameat2(tmp, dest, _RENAME_NOREPLACE):
            if dest.exists() or dest.is_symlink():
                raise FileExistsError(errno.EEXIST, "appeared while computing", str(dest))
            os.rename(tmp, dest)
        return
    if not tmp.is_dir():
        os.replace(tmp, dest)  # one atomic rename for a file
        failpoint("swapped")
        return
    if _renameat2(tmp, dest, _RENAME_EXCHANGE):  # now tmp holds the old result
        failpoint("swapped")
        shutil.rmtree(tmp)
        return
    old = temp_path(dest, directory=True)  # fallback: two renames (see the module docstring)
    os.rmdir(old)
    os.rename(dest, old)
    os.rename(tmp, dest)
    failpoint("swapped")
    shutil.rmtree(old)
