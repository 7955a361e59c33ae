"""``publish``: pack a zoo as one uncompressed zip per task, with sha256 and registry lines.

Output layout (upload ``OUT`` as it is to any static web host)::

    OUT/registry.txt                          one line per file: "<file> sha256:<hex>"
    OUT/<name>/<version>/<task>.zarr.zip      a complete single-task zoo (zarr.json at its root)
    OUT/<name>/<version>/manifest.json        tasks, sizes, status counts, versions

Each zip is *stored* (not deflated): the chunks inside are already zstd-compressed, and an
uncompressed zip can be read in place by ``zarr.storage.ZipStore`` (``open_zoo(zip)``)
without unpacking. Zip members are written in sorted order with a fixed timestamp, so
publishing the same zoo twice gives byte-identical zips (and the same sha256).

Safety rules (``docs/zoo-format.md`` section 12, "Published zoos"):

- a published version is immutable: publishing different content under an existing
  ``name@version`` is refused (publish a new ``--version``); publishing identical content
  again writes nothing;
- nothing that publish did not create is removed or overwritten: a file already at a
  destination is accepted only if it is byte-identical;
- every file is written in a staging directory inside ``OUT`` and renamed into place, and
  the registry (replaced atomically) last, so a killed publish leaves registry lines only
  for complete files; rerunning the same command finishes the job;
- ``OUT`` is checked (a writable directory that is not a Zarr store, outside the zoo, whose
  ``registry.txt``, if any, is a registry) before any work; a zoo that a live ``generate``
  holds is refused; concurrent publishes into one ``OUT`` take turns (a lock file).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ZooError, ZooLocationError
from .reader import open_zoo
from .store import LOCK_NAME, PARTIAL_SUFFIX, WriterLock, is_url
from .targets import check_output_dir, make_dirs, remove_created
from .verify import verify_zoo

REGISTRY_NAME = "registry.txt"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_EPOCH = (1980, 1, 1, 0, 0, 0)
_REGISTRY_LINE = re.compile(
    r"(?P<file>[A-Za-z0-9][A-Za-z0-9_.\-]*(?:/[A-Za-z0-9][A-Za-z0-9_.\-]*)*)"
    r"\s+(?P<hash>sha256:[0-9a-f]{64})"
)
_REGISTRY_HEADER = "# rnnzoo published zoos: <name>/<version>/<task>.zarr.zip sha256:<hex>\n"
#: staging directories inside OUT (a killed publish may leave one; the next one removes it)
STAGING_PREFIX = ".rnnzoo-publish-"


@dataclass
class PublishedZoo:
    """What :func:`publish_zoo` wrote (or found already published, ``unchanged``)."""

    name: str
    version: str
    files: dict[str, Path] = field(default_factory=dict)  # task -> zip
    sha256: dict[str, str] = field(default_factory=dict)  # task -> hex digest
    registry: Path | None = None
    manifest: Path | None = None
    #: the same content was already published under this name and version: nothing written
    unchanged: bool = False

    def registry_lines(self) -> list[str]:
        return [
            f"{self.name}/{self.version}/{self.files[t].name} sha256:{self.sha256[t]}"
            for t in self.files
        ]


def sha256_file(path: str | os.PathLike, block: int = 2**20) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def check_name(label: str, value: str | None, option: str) -> str:
    """``value`` if it is a valid published name or version, else a one-line ZooError."""
    if not _NAME.fullmatch(value or ""):
        raise ZooError(
            f"invalid {label} {value!r}: use letters, digits, '_', '-' and '.', starting with "
            f"a letter or digit (pass {option})"
        )
    return str(value)


def publish_zoo(
    path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    name: str | None = None,
    version: str | None = None,
    allow_incomplete: bool = False,
    progress: bool = False,
) -> PublishedZoo:
    """Pack every task of the zoo at ``path`` for publication under ``out``.

    Parameters
    ----------
    path : str or path
        A zoo directory.
    out : str or path
        Output directory (created); an existing ``registry.txt`` there is updated, so one
        directory can hold many published zoos and versions.
    name : str, optional
        Published name (default: the directory name without ``.zarr``).
    version : str, optional
        Published version (default: the zoo's creation date, ``YYYY.MM.DD``).
    allow_incomplete : bool
        Publish even if some networks are still ``pending``.
    progress : bool
        Show progress while verifying.

    Returns
    -------
    PublishedZoo
        ``unchanged`` is true when the identical zoo was already published under this name
        and version (nothing was written).

    Raises
    ------
    ZooError
        One line, before anything is written: ``out`` cannot take a publication (a file, a
        Zarr store, inside the zoo, not writable, a malformed ``registry.txt``); ``path`` is
        not a zoo directory, is being written, fails ``verify`` or has pending networks
        (unless ``allow_incomplete``); ``name@version`` is already published with different
        content, or a destination file exists with different content.
    """
    if is_url(path) or str(path).endswith(".zip"):
        raise ZooError(
            f"{path} is not a zoo directory: publish packs a zoo directory (a published zip "
            "or URL is published already)"
        )
    path = Path(path)
    if name is not None:
        check_name("name", name, "--name")
    if version is not None:
        check_name("version", version, "--version")
    if not str(out).strip():
        raise ZooError("--out is empty; give the directory to publish into")
    _check_outside(path, Path(out))  # before the writability probe, which writes a file
    out = check_output_dir(out, what="the publication directory", option="--out")
    registry_path = out / REGISTRY_NAME
    _load_registry(registry_path)  # a malformed registry is refused before any work
    _check_not_being_written(out)  # another publish into it
    zoo = _open_source(path)
    try:
        name = name or check_name(
            "name", Path(os.path.abspath(path)).name.removesuffix(".zarr"), "--name"
        )
        created = str(zoo.attrs.get("created", ""))[:10].replace("-", ".")
        version = version or check_name("version", created, "--version")
        target = out / name / version
        _check_apart(path, target)
        _check_not_being_written(path)
        report = verify_zoo(path, progress=progress)
        if not report.ok:
            raise ZooError(
                f"{path} has {len(report.problems)} problem(s) (first: {report.problems[0]}); "
                f"run `rnnzoo-train verify {path}` and fix them before publishing"
            )
        pending = {t: c.get("pending", 0) for t, c in report.status_counts.items()}
        if any(pending.values()) and not allow_incomplete:
            raise ZooError(
                f"{path} still has pending networks ({pending}); finish generating it, or pass "
                "--allow-incomplete to publish it as it is"
            )
        manifest = {
            "name": name,
            "version": version,
            "rnnzoo_schema_version": zoo.schema_version,
            "rnnzoo_generator": zoo.attrs.get("rnnzoo_generator"),
            "preset": zoo.attrs.get("preset"),
            "created": zoo.attrs.get("created"),
            "tasks": {},
        }
        tasks = list(zoo.tasks)
    finally:
        zoo.close()
    created_dirs = make_dirs(out)
    try:
        with _locked(out):
            return _stage_and_commit(
                path, out, name, version, tasks, manifest, report.status_counts
            )
    except BaseException:
        remove_created(created_dirs)
        raise


def _open_source(path: Path):
    """The zoo at ``path``, opened; a one-line ZooError unless it is a zoo directory."""
    if not path.exists():
        raise ZooError(f"no zoo at {path}: the path does not exist")
    if not path.is_dir():
        raise ZooError(f"{path} is a file, not a zoo directory")
    try:
        return open_zoo(path)
    except FileNotFoundError as err:
        raise ZooError(str(err)) from None


def _check_outside(zoo: Path, out: Path) -> None:
    """Refuse an output directory that is the zoo or lies inside it."""
    zoo_abs, out_abs = Path(os.path.realpath(zoo)), Path(os.path.realpath(out))
    if out_abs == zoo_abs:
        raise ZooError(
            f"--out {str(out)!r} is the zoo {str(zoo)!r} itself; publish to a directory outside it"
        )
    if out_abs.is_relative_to(zoo_abs):
        raise ZooError(
            f"--out {str(out)!r} is inside the zoo {str(zoo)!r}; publish to a directory outside it"
        )


def _check_apart(zoo: Path, target: Path) -> None:
    """Refuse a target directory (``OUT/NAME/VERSION``) that holds the zoo or lies in it."""
    zoo_abs, target_abs = Path(os.path.realpath(zoo)), Path(os.path.realpath(target))
    if zoo_abs.is_relative_to(target_abs) or target_abs.is_relative_to(zoo_abs):
        raise ZooError(
            f"the zoo {str(zoo)!r} and the target directory {str(target)!r} overlap; choose "
            "another --out, --name or --version"
        )


def _check_not_being_written(zoo: Path) -> None:
    """Refuse a zoo whose writer lock is held by a live process (a running ``generate``)."""
    lock = zoo / LOCK_NAME
    if not lock.is_file():
        return
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory lock
        return
    try:
        fh = open(lock, "rb")  # noqa: SIM115 - closed below
    except OSError:
        return
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            holder = fh.read().decode(errors="replace").strip() or "another process"
            raise ZooLocationError(
                f"{zoo} is being written by {holder}; wait for it to finish, then publish"
            ) from None
        fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def _locked(out: Path):
    """Hold ``out``'s lock (one publish at a time into one directory)."""
    lock = WriterLock(out)
    lock.acquire()  # ZooLocationError (one line) while another publish writes into out
    try:
        yield
    finally:
        lock.release()


def _stage_and_commit(
    zoo: Path,
    out: Path,
    name: str,
    version: str,
    tasks: list[str],
    manifest: dict,
    status_counts: dict,
) -> PublishedZoo:
    """Write every file in a staging directory, compare, then move into place (under lock)."""
    _remove_stale_staging(out)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, suffix=PARTIAL_SUFFIX, dir=out))
    target = out / name / version
    published = PublishedZoo(name, version)
    try:
        root_meta = json.loads((zoo / "zarr.json").read_text())
        staged: dict[Path, Path] = {}  # staged file -> destination
        for task in tasks:
            zip_staged = staging / f"{task}.zarr.zip"
            _write_task_zip(zoo, task, root_meta, zip_staged)
            digest = sha256_file(zip_staged)
            published.files[task] = target / zip_staged.name
            published.sha256[task] = digest
            staged[zip_staged] = target / zip_staged.name
            manifest["tasks"][task] = {
                "file": zip_staged.name,
                "sha256": digest,
                "bytes": zip_staged.stat().st_size,
                "networks": status_counts.get(task, {}),
            }
        manifest_staged = staging / "manifest.json"
        manifest_staged.write_text(json.dumps(manifest, indent=2) + "\n")
        staged[manifest_staged] = target / "manifest.json"
        published.manifest = target / "manifest.json"
        published.registry = out / REGISTRY_NAME
        _check_not_being_written(zoo)  # a writer that started while we packed

        registry = _load_registry(out / REGISTRY_NAME)
        new_lines = read_registry("\n".join(published.registry_lines()))
        _check_immutable(out, name, version, registry, new_lines)
        to_place = _check_destinations(out, name, version, staged)
        if not to_place and all(registry.get(f) == h for f, h in new_lines.items()):
            published.unchanged = True
            return published
        created = make_dirs(target)
        try:
            for src in to_place:
                _place(src, staged[src])
        except FileExistsError as err:
            remove_created(created)
            raise ZooError(
                f"{err.filename} appeared while publishing; nothing was overwritten: publish again"
            ) from None
        registry.update(new_lines)
        _write_registry(out / REGISTRY_NAME, registry)
        return published
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _place(src: Path, dest: Path) -> None:
    """Move ``src`` to ``dest`` atomically, never replacing a file (FileExistsError)."""
    try:
        os.link(src, dest)  # atomic, and fails if dest exists
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links
        if dest.exists() or dest.is_symlink():
            raise FileExistsError(17, "File exists", str(dest)) from None
        os.rename(src, dest)


def _remove_stale_staging(out: Path) -> None:
    """Remove what a killed publish left in ``out``: staging directories, registry temps.

    Only names publish itself creates (``.rnnzoo-publish-*.partial/``,
    ``.registry-*.partial``), and only while holding the lock of ``out``, so no live publish
    owns them.
    """
    for p in out.glob(f"{STAGING_PREFIX}*{PARTIAL_SUFFIX}"):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
    for p in out.glob(f".registry-*{PARTIAL_SUFFIX}"):
        if p.is_file() and not p.is_symlink():
            p.unlink(missing_ok=True)


def _check_immutable(
    out: Path, name: str, version: str, registry: dict[str, str], new: dict[str, str]
) -> None:
    """Refuse different content under a ``name@version`` that the registry already lists."""
    prefix = f"{name}/{version}/"
    old = {f: h for f, h in registry.items() if f.startswith(prefix)}
    if old and old != new:
        what = (
            f"tasks {sorted(f.removeprefix(prefix) for f in old)}"
            if set(old) != set(new)
            else "different zips"
        )
        raise ZooError(
            f"{name}@{version} is already published in {out} ({what}); a published version "
            "is immutable: publish this zoo with a new --version"
        )


def _check_destinations(out: Path, name: str, version: str, staged: dict[Path, Path]) -> list[Path]:
    """Staged files still to move; refuse if a destination holds something else."""
    to_place = []
    for src, dest in staged.items():
        if not dest.exists() and not dest.is_symlink():
            to_place.append(src)
            continue
        if not dest.is_file() or sha256_file(dest) != sha256_file(src):
            raise ZooError(
                f"{dest} already exists with different content; publish never overwrites "
                f"what it did not write: publish {name} with a new --version (or remove it)"
            )
    return to_place


def _task_root_metadata(root_meta: dict, task: str) -> bytes:
    """Root ``zarr.json`` of a single-task zoo: the same attributes, one task consolidated."""
    meta = json.loads(json.dumps(root_meta))
    meta["attributes"]["tasks"] = [task]
    cons = meta.get("consolidated_metadata")
    if cons is None:
        raise ZooError("the zoo has no consolidated metadata; run `rnnzoo-train verify --repair`")
    cons["metadata"] = {
        k: v for k, v in cons["metadata"].items() if k == task or k.startswith(task + "/")
    }
    return (json.dumps(meta, indent=2) + "\n").encode()


def _write_task_zip(zoo: Path, task: str, root_meta: dict, dest: Path) -> None:
    files = sorted(
        p
        for p in (zoo / task).rglob("*")
        if p.is_file() and not p.name.endswith(PARTIAL_SUFFIX) and p.name != LOCK_NAME
    )
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.writestr(_info("zarr.json"), _task_root_metadata(root_meta, task))
        for p in files:
            zf.writestr(_info(p.relative_to(zoo).as_posix()), p.read_bytes())


def _info(arcname: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(arcname, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def read_registry(text: str, source: str = REGISTRY_NAME) -> dict[str, str]:
    """Parse registry lines ``"<file> sha256:<hex>"`` (``#`` comments allowed).

    Raises
    ------
    ZooError
        One line naming ``source`` and the first malformed line: not two fields, not a
        relative path of names (letters, digits, ``_-.``; no ``..``), not ``sha256:`` and
        64 lowercase hex digits, or one file listed twice with different hashes.
    """
    out: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = _REGISTRY_LINE.fullmatch(line)
        if m is None or (m["file"] in out and out[m["file"]] != m["hash"]):
            shown = raw if len(raw) <= 80 else raw[:77] + "..."
            raise ZooError(
                f"{source} is not an rnnzoo registry: line {n} {shown!r} is not "
                "'<name>/<version>/<task>.zarr.zip sha256:<64 hex digits>'"
                + (" (listed twice)" if m is not None else "")
            )
        out[m["file"]] = m["hash"]
    return out


def _load_registry(path: Path) -> dict[str, str]:
    """The registry at ``path`` ({} if there is none); one line if it is not a registry."""
    if not path.exists():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ZooError(
            f"{path} is not an rnnzoo registry ({type(err).__name__}); choose another --out"
        ) from None
    try:
        return read_registry(text, source=str(path))
    except ZooError as err:
        raise ZooError(f"{err}; choose another --out (publish never overwrites it)") from None


def _write_registry(path: Path, entries: dict[str, str]) -> Path:
    """Replace the registry atomically (a temporary file in the same directory, renamed)."""
    body = "".join(f"{f} {h}\n" for f, h in sorted(entries.items()))
    fd, tmp = tempfile.mkstemp(prefix=".registry-", suffix=PARTIAL_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(_REGISTRY_HEADER + body)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path
