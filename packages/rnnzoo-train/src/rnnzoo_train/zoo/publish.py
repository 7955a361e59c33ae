"""``publish``: pack a zoo as one uncompressed zip per task, with sha256 and registry lines.

Output layout (upload ``OUT`` as it is to any static web host)::

    OUT/registry.txt                          one line per file: "<file> sha256:<hex>"
    OUT/<name>/<version>/<task>.zarr.zip      a complete single-task zoo (zarr.json at its root)
    OUT/<name>/<version>/manifest.json        tasks, sizes, status counts, versions

Each zip is *stored* (not deflated): the chunks inside are already zstd-compressed, and an
uncompressed zip can be read in place by ``zarr.storage.ZipStore`` (``open_zoo(zip)``)
without unpacking. Zip members are written in sorted order with a fixed timestamp, so
publishing the same zoo twice gives byte-identical zips (and the same sha256).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ZooError
from .reader import open_zoo
from .store import LOCK_NAME, PARTIAL_SUFFIX
from .verify import verify_zoo

REGISTRY_NAME = "registry.txt"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass
class PublishedZoo:
    """What :func:`publish_zoo` wrote."""

    name: str
    version: str
    files: dict[str, Path] = field(default_factory=dict)  # task -> zip
    sha256: dict[str, str] = field(default_factory=dict)  # task -> hex digest
    registry: Path | None = None
    manifest: Path | None = None

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

    Raises
    ------
    ZooError
        If the zoo fails ``verify`` or has pending networks (unless ``allow_incomplete``).
    """
    path = Path(path)
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
    zoo = open_zoo(path)
    name = name or path.name.removesuffix(".zarr")
    version = version or str(zoo.attrs.get("created", ""))[:10].replace("-", ".")
    for label, value in (("name", name), ("version", version)):
        if not _NAME.fullmatch(value or ""):
            raise ZooError(f"invalid {label} {value!r}: use letters, digits, '_', '-' and '.'")
    out = Path(out)
    target = out / name / version
    target.mkdir(parents=True, exist_ok=True)
    root_meta = json.loads((path / "zarr.json").read_text())
    published = PublishedZoo(name, version)
    manifest = {
        "name": name,
        "version": version,
        "rnnzoo_schema_version": zoo.schema_version,
        "rnnzoo_generator": zoo.attrs.get("rnnzoo_generator"),
        "preset": zoo.attrs.get("preset"),
        "created": zoo.attrs.get("created"),
        "tasks": {},
    }
    for task in zoo.tasks:
        zip_path = target / f"{task}.zarr.zip"
        _write_task_zip(path, task, root_meta, zip_path)
        digest = sha256_file(zip_path)
        published.files[task] = zip_path
        published.sha256[task] = digest
        manifest["tasks"][task] = {
            "file": zip_path.name,
            "sha256": digest,
            "bytes": zip_path.stat().st_size,
            "networks": report.status_counts.get(task, {}),
        }
    zoo.close()
    published.manifest = target / "manifest.json"
    published.manifest.write_text(json.dumps(manifest, indent=2) + "\n")
    published.registry = _update_registry(out / REGISTRY_NAME, published.registry_lines())
    return published


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
    tmp = dest.with_name(dest.name + PARTIAL_SUFFIX)
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.writestr(_info("zarr.json"), _task_root_metadata(root_meta, task))
        for p in files:
            zf.writestr(_info(p.relative_to(zoo).as_posix()), p.read_bytes())
    tmp.replace(dest)


def _info(arcname: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(arcname, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def read_registry(text: str) -> dict[str, str]:
    """Parse registry lines ``"<file> sha256:<hex>"`` (``#`` comments allowed)."""
    out = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) < 2 or not parts[1].startswith("sha256:"):
            raise ZooError(f"malformed registry line {raw!r}: expected '<file> sha256:<hex>'")
        out[parts[0]] = parts[1]
    return out


def _update_registry(path: Path, lines: list[str]) -> Path:
    entries = read_registry(path.read_text()) if path.exists() else {}
    entries.update(read_registry("\n".join(lines)))
    body = "".join(f"{f} {h}\n" for f, h in sorted(entries.items()))
    tmp = path.with_name(path.name + PARTIAL_SUFFIX)
    tmp.write_text(
        "# rnnzoo published zoos: <name>/<version>/<task>.zarr.zip sha256:<hex>\n" + body
    )
    tmp.replace(path)
    return path
