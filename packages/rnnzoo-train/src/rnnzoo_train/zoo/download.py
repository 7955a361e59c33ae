"""``download``: fetch a published zoo with pooch, verify its sha256, cache it, open it.

Where from: ``$RNNZOO_ZOO_URL`` if set, else :data:`DEFAULT_BASE_URL`. A server holds the
layout :mod:`rnnzoo_train.zoo.publish` writes: ``registry.txt`` and
``<name>/<version>/<task>.zarr.zip``. Where to: ``$RNNZOO_CACHE`` if set, else the user
cache directory (``pooch.os_cache("rnnzoo")``).

A download that is already complete in the cache (every file present with its registered
sha256) makes no request at all, so a cached zoo opens offline. Otherwise the server's
registry is fetched, each missing or changed file is downloaded, and every file is checked
against its sha256 before it is used; a file that fails is deleted and reported.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import ZooDownloadError
from .publish import REGISTRY_NAME, read_registry
from .reader import Zoo, open_zoo

#: where published zoos live unless ``RNNZOO_ZOO_URL`` says otherwise
DEFAULT_BASE_URL = "https://rnnzoo.github.io/zoos"
URL_ENV = "RNNZOO_ZOO_URL"
CACHE_ENV = "RNNZOO_CACHE"
_SPEC = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9_.\-]*)(@(?P<version>[A-Za-z0-9_.\-]+))?")


def base_url(override: str | None = None) -> str:
    """The server to download from: ``override``, ``$RNNZOO_ZOO_URL`` or the default."""
    return (override or os.environ.get(URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """The local cache: ``override``, ``$RNNZOO_CACHE`` or the user cache directory."""
    if override is not None:
        return Path(override)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    import pooch

    return Path(pooch.os_cache("rnnzoo"))


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``"demo@2026.11.28"`` -> ``("demo", "2026.11.28")``; ``"demo"`` -> ``("demo", None)``."""
    m = _SPEC.fullmatch(spec.strip())
    if not m:
        raise ZooDownloadError(f"invalid zoo name {spec!r}: expected NAME or NAME@VERSION")
    return m["name"], m["version"]


def _version_key(v: str) -> tuple:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.\-_]", v))


def _registry_cache(cache: Path, url: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9]+", "_", url).strip("_")
    return cache / "registries" / f"{safe}.txt"


def _resolve(
    registry: dict[str, str], name: str, version: str | None, tasks: list[str] | None
) -> tuple[str, dict[str, str]] | None:
    """(version, {task: file}) of ``name`` in ``registry``, or ``None`` if absent."""
    versions: dict[str, dict[str, str]] = {}
    for fname in registry:
        parts = fname.split("/")
        if len(parts) == 3 and parts[0] == name and parts[2].endswith(".zarr.zip"):
            versions.setdefault(parts[1], {})[parts[2].removesuffix(".zarr.zip")] = fname
    if not versions or (version is not None and version not in versions):
        return None
    chosen = version or max(versions, key=_version_key)
    files = versions[chosen]
    if tasks is not None:
        missing = [t for t in tasks if t not in files]
        if missing:
            raise ZooDownloadError(
                f"zoo {name}@{chosen} has no task(s) {missing}; it has {sorted(files)}"
            )
        files = {t: files[t] for t in tasks}
    return chosen, files


def _fetch_registry(url: str, dest: Path, timeout: float) -> dict[str, str]:
    import requests

    try:
        resp = requests.get(f"{url}/{REGISTRY_NAME}", timeout=timeout)
        resp.raise_for_status()
    except requests.exceptions.ConnectionError as err:
        raise ZooDownloadError(
            f"cannot reach the zoo server {url} (connection failed); check the URL, your "
            f"network, or set {URL_ENV} to a reachable mirror"
        ) from err
    except requests.exceptions.Timeout as err:
        raise ZooDownloadError(f"the zoo server {url} did not answer within {timeout:g} s") from err
    except requests.exceptions.HTTPError as err:
        raise ZooDownloadError(
            f"{url}/{REGISTRY_NAME}: HTTP {resp.status_code}; is {url} an rnnzoo zoo server "
            f"(set {URL_ENV})?"
        ) from err
    registry = read_registry(resp.text)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".partial")
    tmp.write_text(resp.text)
    tmp.replace(dest)
    return registry


def _all_cached(cache: Path, registry: dict[str, str], files: dict[str, str]) -> bool:
    from .publish import sha256_file

    for fname in files.values():
        path = cache / fname
        if not path.is_file() or f"sha256:{sha256_file(path)}" != registry[fname]:
            return False
    return True


def download_zoo(
    spec: str,
    *,
    tasks: list[str] | None = None,
    url: str | None = None,
    cache: str | os.PathLike | None = None,
    progress: bool = False,
    timeout: float = 30.0,
) -> Zoo:
    """Download (or take from the cache) a published zoo and open it.

    Parameters
    ----------
    spec : str
        ``NAME`` (latest version) or ``NAME@VERSION``.
    tasks : list of str, optional
        Only these tasks (default: all).
    url : str, optional
        Server base URL (default ``$RNNZOO_ZOO_URL`` or :data:`DEFAULT_BASE_URL`).
    cache : str or path, optional
        Cache directory (default ``$RNNZOO_CACHE`` or the user cache).
    progress : bool
        Show download progress bars.
    timeout : float
        Seconds to wait for the server.

    Returns
    -------
    Zoo
        The zoo opened from its cached zips (read-only; pass ``analysis_store=`` to
        :func:`open_zoo` on :func:`cached_files` to store analyses of it).

    Raises
    ------
    ZooDownloadError
        Unknown name or version, unreachable server, or a file whose sha256 does not match.
    """
    return open_zoo(
        list(
            download_files(
                spec, tasks=tasks, url=url, cache=cache, progress=progress, timeout=timeout
            ).values()
        )
    )


def download_files(
    spec: str,
    *,
    tasks: list[str] | None = None,
    url: str | None = None,
    cache: str | os.PathLike | None = None,
    progress: bool = False,
    timeout: float = 30.0,
) -> dict[str, Path]:
    """Like :func:`download_zoo`, but return ``{task: cached zip path}`` without opening."""
    import pooch

    name, version = parse_spec(spec)
    server = base_url(url)
    cache = cache_dir(cache)
    reg_path = _registry_cache(cache, server)
    registry = read_registry(reg_path.read_text()) if reg_path.is_file() else {}
    found = _resolve(registry, name, version, tasks)
    if found is None or not _all_cached(cache, registry, found[1]):
        registry = _fetch_registry(server, reg_path, timeout)
        found = _resolve(registry, name, version, tasks)
        if found is None:
            names = sorted({f.split("/")[0] + "@" + f.split("/")[1] for f in registry if "/" in f})
            want = name + (f"@{version}" if version else "")
            raise ZooDownloadError(
                f"no zoo {want} at {server}; it publishes {', '.join(names) or 'nothing'}"
            )
    chosen, files = found
    if not progress:
        pooch.get_logger().setLevel("WARNING")
    fetcher = pooch.create(
        path=cache,
        base_url=server + "/",
        registry={f: registry[f] for f in files.values()},
        retry_if_failed=2,
    )
    downloader = pooch.HTTPDownloader(progressbar=progress, timeout=timeout)
    out = {}
    for task, fname in files.items():
        try:
            out[task] = Path(fetcher.fetch(fname, downloader=downloader, progressbar=progress))
        except ValueError as err:
            raise ZooDownloadError(
                f"{server}/{fname} does not match its sha256 in the registry, so it was "
                f"rejected (the server copy is corrupt or the registry is stale): {err}"
            ) from err
        except OSError as err:  # requests' ConnectionError is an OSError
            raise ZooDownloadError(
                f"cannot download {server}/{fname}: {type(err).__name__}; check the URL or "
                f"set {URL_ENV}"
            ) from err
    return out


def cached_files(spec: str, *, url: str | None = None, cache=None) -> dict[str, Path]:
    """``{task: zip}`` of a zoo already in the cache (no network); raises if not cached."""
    name, version = parse_spec(spec)
    cache = cache_dir(cache)
    reg_path = _registry_cache(cache, base_url(url))
    registry = read_registry(reg_path.read_text()) if reg_path.is_file() else {}
    found = _resolve(registry, name, version, None)
    if found is None or not _all_cached(cache, registry, found[1]):
        raise ZooDownloadError(f"zoo {spec} is not in the cache {cache}; download it first")
    return {t: cache / f for t, f in found[1].items()}
