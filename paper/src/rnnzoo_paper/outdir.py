"""The output folder of ``rnnzoo-paper``: checked before anything runs, never someone else's.

A command of ``rnnzoo-paper`` writes into its ``--out`` folder (and resumes from what it
finds there). :func:`check_out` refuses, before anything is computed or created, a folder
the command cannot use: a file, a folder that cannot be written, or a folder that already
holds other files than a previous run's output (so that a mistyped ``--out`` can never
overwrite a user's files). :func:`make_out` creates the folder and marks it as this
command's output (``.rnnzoo-paper``), so a rerun recognises it.
"""

from __future__ import annotations

import json
from pathlib import Path

from rnnzoo_train.zoo.targets import unwritable

#: the file that marks a folder as the output of an ``rnnzoo-paper`` command
MARKER = ".rnnzoo-paper"
#: what each command's output folder holds, to recognise one written before the marker
EARLIER_OUTPUT = {
    "demo": ("zoo.zarr", "analyses.zarr", "report.md", "findings.json"),
    "synthetic": ("summary.json", "svcca.nc", "cka.nc"),
}


class OutputError(ValueError):
    """An unusable ``--out`` folder (one line: what is wrong and what to do)."""


def _marked_as(path: Path) -> str | None:
    try:
        return str(json.loads((path / MARKER).read_text()).get("command"))
    except (OSError, ValueError, AttributeError):
        return None


def check_out(out: Path, command: str) -> None:
    """Raise :class:`OutputError` unless ``out`` can hold ``command``'s output.

    Parameters
    ----------
    out : Path
        The ``--out`` folder.
    command : str
        ``"demo"`` or ``"synthetic"``: a folder marked by another command is refused.
    """
    earlier = EARLIER_OUTPUT.get(command, ())
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise OutputError(f"--out {str(out)!r} is a file; give a folder for the output")
        entries = [p.name for p in out.iterdir()]
        marked = _marked_as(out)
        if marked is not None and marked != command:
            raise OutputError(
                f"--out {str(out)!r} holds the output of `rnnzoo-paper {marked}`; "
                f"give another folder for `rnnzoo-paper {command}`"
            )
        if entries and marked is None and not any(e in entries for e in earlier):
            raise OutputError(
                f"--out {str(out)!r} already holds other files ({', '.join(sorted(entries)[:3])}"
                f"{', ...' if len(entries) > 3 else ''}); give a new or empty folder"
            )
        target = out
    else:
        target = out.parent
        while not target.exists():
            target = target.parent
        if not target.is_dir():
            raise OutputError(f"cannot create --out {str(out)!r}: {str(target)!r} is a file")
    reason = unwritable(target)
    if reason is not None:
        raise OutputError(f"cannot write to {str(target)!r} ({reason}); give a writable --out")


def make_out(out: Path, command: str) -> None:
    """Create ``out`` (checked by :func:`check_out`) and mark it as ``command``'s output."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if _marked_as(out) is None:
            (out / MARKER).write_text(json.dumps({"command": command}) + "\n")
    except OSError as err:
        raise OutputError(f"cannot create --out {str(out)!r}: {err.strerror}") from None
