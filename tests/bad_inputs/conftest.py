"""The bad-input harness: every command line refuses malformed input with one line.

Each ``test_<cli>.py`` in this folder holds a table of rows for one command line, e.g.

    CASES = [
        pytest.param(["rnnzoo-train", "info", "fake.zip"], ("zip",), {}, id="info-not-a-zip"),
        pytest.param(["rnnzoo-train", "verify", "--repair", "zoo.zarr"], ("read-only",),
                     {"read_only": ("zoo.zarr",)}, id="repair-read-only"),
    ]

    @pytest.mark.parametrize(("argv", "expect", "options"), CASES)
    def test_refused(refused, argv, expect, options):
        refused(argv, expect, **options)

and runs every row through the ``refused`` fixture. A row passes when the command

- exits with a status other than 0,
- prints exactly one line on stderr (argparse's ``usage:`` block before its own error line
  is allowed) and that line names the problem (``expect``, case-insensitive substrings),
- prints no traceback,
- and leaves the sandbox exactly as it was: nothing written, nothing removed (every file's
  size and sha256, every directory, compared before and after).

Commands run in process (``main(argv)`` of the console script, with stdout and stderr
captured at the file-descriptor level), so that a table of ~100 rows costs seconds; a row
with ``subprocess=True`` runs the real console script (signals, pipes).

The sandbox (a fresh copy per row, the working directory while the row runs) holds:

``zoo.zarr``          a tiny real zoo (tasks flipflop and cdi, 2 networks each)
``notes/``            a folder of the user's own files (``a.txt``, ``b.csv``)
``notes.zarr/``       the same kind of folder, named like a store
``text.txt``          a plain text file
``fake.zip``          a text file named ``.zip``
``notzoo.zarr/``      a valid Zarr v3 group that is not a zoo
``truncated.zarr/``   a copy of the zoo whose root ``zarr.json`` is cut in half
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Case:
    """One malformed input.

    Attributes
    ----------
    argv : sequence of str
        The command line, console script first (``["rnnzoo-train", "info", "fake.zip"]``),
        run in the sandbox folder.
    expect : tuple of str
        Substrings the error line must contain (case-insensitive).
    setup : callable, optional
        ``setup(sandbox)`` prepares extra files before the snapshot is taken.
    subprocess : bool
        Run the installed console script in a child process instead of ``main(argv)``.
    read_only : tuple of str
        Sandbox paths made read-only (immutable) while the command runs.
    """

    argv: Sequence[str]
    expect: tuple[str, ...] = ()
    setup: Callable[[Path], None] | None = None
    subprocess: bool = False
    read_only: tuple[str, ...] = field(default_factory=tuple)


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root``: ``dir`` for directories, size and sha256 for files."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for d in dirnames:
            out[str((base / d).relative_to(root)) + "/"] = "dir"
        for f in filenames:
            p = base / f
            if p.is_symlink():
                out[str(p.relative_to(root))] = f"link:{os.readlink(p)}"
                continue
            data = p.read_bytes()
            out[str(p.relative_to(root))] = f"{len(data)}:{hashlib.sha256(data).hexdigest()}"
    return out


def _entry_point(script: str):
    for ep in entry_points(group="console_scripts"):
        if ep.name == script:
            return ep.load()
    raise LookupError(f"no console script {script!r} installed")


def _script_path(script: str) -> str:
    found = Path(sys.executable).parent / script
    return str(found) if found.exists() else (shutil.which(script) or script)


def _usage_dropped(stderr: str) -> list[str]:
    """Lines of ``stderr`` without argparse's ``usage:`` block."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    out: list[str] = []
    in_usage = False
    for ln in lines:
        if ln.startswith("usage:"):
            in_usage = True
            continue
        if in_usage and ln.startswith(" "):
            continue
        in_usage = False
        out.append(ln)
    return out


@contextlib.contextmanager
def immutable(paths: Sequence[Path]) -> Iterator[None]:
    """``rnnzoo_train.zoo.testing.read_only`` (``chattr +i`` as root), or skip the row."""
    from rnnzoo_train.zoo.testing import read_only

    try:
        ctx = read_only(*paths)
        ctx.__enter__()
    except OSError as err:
        pytest.skip(f"cannot make a path read-only here: {err}")
    try:
        yield
    finally:
        ctx.__exit__(None, None, None)


def _tiny_zoo(path: Path) -> None:
    import dataclasses

    from rnnzoo_train.generate import generate
    from rnnzoo_train.presets import get_preset
    from rnnzoo_train.zoo import ZarrZooWriter

    preset = dataclasses.replace(
        get_preset("tiny"),
        archs=("vanilla",),
        activations=("tanh",),
        seeds=(0, 1),
        iterations=20,
        n_trials=0,
        search_iterations=0,
    )
    generate(preset, ["flipflop", "cdi"], ZarrZooWriter(path), progress=False)


@pytest.fixture(scope="session")
def pristine(tmp_path_factory) -> Path:
    """The sandbox's contents, built once (copied for every row)."""
    import zarr

    root = tmp_path_factory.mktemp("bad-inputs") / "sandbox"
    root.mkdir()
    _tiny_zoo(root / "zoo.zarr")
    for name in ("notes", "notes.zarr"):
        (root / name).mkdir()
        (root / name / "a.txt").write_text("my notes\n")
        (root / name / "b.csv").write_text("x,y\n1,2\n")
    (root / "text.txt").write_text("not a zoo\n")
    (root / "fake.zip").write_text("this is not a zip file\n")
    zarr.create_group(str(root / "notzoo.zarr"), zarr_format=3, attributes={"owner": "someone"})
    shutil.copytree(root / "zoo.zarr", root / "truncated.zarr")
    meta = root / "truncated.zarr" / "zarr.json"
    meta.write_bytes(meta.read_bytes()[: meta.stat().st_size // 2])
    return root


@pytest.fixture
def sandbox(pristine, tmp_path, monkeypatch) -> Path:
    """A private copy of the sandbox, the working directory of the test."""
    dst = tmp_path / "sandbox"
    shutil.copytree(pristine, dst)
    monkeypatch.chdir(dst)
    return dst


@pytest.fixture
def run_cli(capfd) -> Callable[..., Outcome]:
    """``run_cli(argv, subprocess=False)``: run a console script, capture its output."""

    def run(argv: Sequence[str], *, subprocess_: bool = False, timeout: float = 120) -> Outcome:
        argv = [str(a) for a in argv]
        if subprocess_:
            env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
            r = subprocess.run(
                [_script_path(argv[0]), *argv[1:]],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
            )
            return Outcome(r.returncode, r.stdout, r.stderr)
        main = _entry_point(argv[0])
        capfd.readouterr()
        try:
            code = main(argv[1:])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if not isinstance(exc.code, int | None):
                print(exc.code, file=sys.stderr)
        out, err = capfd.readouterr()
        return Outcome(int(code or 0), out, err)

    return run


@pytest.fixture
def refused(sandbox, run_cli) -> Callable[..., Outcome]:
    """``refused(argv, expect, **options)``: run one row and assert the rules above.

    ``options`` are the other fields of :class:`Case` (``setup``, ``subprocess``,
    ``read_only``).
    """

    def check(argv: Sequence[str], expect: Sequence[str] = (), **options) -> Outcome:
        case = Case(list(argv), tuple(expect), **options)
        if case.setup is not None:
            case.setup(sandbox)
        before = snapshot(sandbox)
        with immutable([sandbox / p for p in case.read_only]):
            result = run_cli(case.argv, subprocess_=case.subprocess)
        after = snapshot(sandbox)
        shown = f"$ {' '.join(map(str, case.argv))}\nexit {result.code}\nstderr:\n{result.stderr}"
        assert result.code != 0, f"accepted (exit 0)\n{shown}"
        assert "Traceback" not in result.stderr, f"traceback\n{shown}"
        lines = _usage_dropped(result.stderr)
        assert len(lines) == 1, f"{len(lines)} lines on stderr, expected one\n{shown}"
        for word in case.expect:
            assert word.lower() in lines[0].lower(), f"{word!r} not in the error line\n{shown}"
        added = sorted(set(after) - set(before))
        removed = sorted(set(before) - set(after))
        changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
        diff = {"added": added[:8], "removed": removed[:8], "changed": changed[:8]}
        assert diff == {"added": [], "removed": [], "changed": []}, f"sandbox changed\n{shown}"
        return result

    return check
