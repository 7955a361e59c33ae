"""``download``: fetch a published zoo with pooch, verify its sha256, cache it, open it.

Where from: ``$RNNZOO_ZOO_URL`` if set, else :data:`DEFAULT_BASE_URL`. A server holds the
layout :mod:`rnnzoo_train.zoo.publish` writes: ``registry.txt`` and
``<name>/<version>/<task>.zarr.zip``. Where to: ``$RNNZOO_CACHE`` if set, else the user
cache directory (``pooch.os_cache("rnnzoo")``).

Versions:

- ``NAME@VERSION``: a published version is immutable, so once its files are in the cache
  (each with its registered sha256) it is served from there without any request: a cached
  zoo opens offline.
- ``NAME`` (the latest version) is resolved against the server's registry whenever the
  server can be reached (a short timeout, :data:`LATEST_TIMEOUT`), so a version published
  since the last download is found. Only when the server cannot be reached is the newest
  version complete in the cache used instead, with a :class:`ZooOfflineWarning` saying so
  (the command line prints it on stderr).

Every file is checked against its sha256 before it is used; a file that fails is deleted
and reported. Everything is checked (the name, the URL, the cache directory) before any
request; a download that fails leaves the cache as it was.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import warnings
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ZooDownloadError, ZooError
from .publish import REGISTRY_NAME, read_registry, sha256_file
from .reader import Zoo, open_zoo
from .targets import check_output_dir, make_dirs, remove_created

#: where published zoos live unless ``RNNZOO_ZOO_URL`` says otherwise
DEFAULT_BASE_URL = "https://rnnzoo.github.io/zoos"
URL_ENV = "RNNZOO_ZOO_URL"
CACHE_ENV = "RNNZOO_CACHE"
#: seconds to wait for the registry when resolving the latest version with a cached copy
LATEST_TIMEOUT = 5.0
_SPEC = re.compile(
    r"(?P<name>[A-Za-z0-9][A-Za-z0-9_.\-]*)(@(?P<version>[A-Za-z0-9][A-Za-z0-9_.\-]*))?"
)


class ZooOfflineWarning(UserWarning):
    """The server could not be reached: the newest cached version was used instead."""


class _Unreachable(ZooDownloadError):
    """The server cannot be reached (connection failed or timed out)."""


def base_url(override: str | None = None) -> str:
    """The server to download from: ``override``, ``$RNNZOO_ZOO_URL`` or the default.

    Raises
    ------
    ZooDownloadError
        If it is not an ``http(s)://host/...`` URL.
    """
    if override is not None and not override.strip():
        raise ZooDownloadError("--url is empty; give the http(s):// address of a zoo server")
    url = (override or os.environ.get(URL_ENV) or DEFAULT_BASE_URL).strip().rstrip("/")
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # e.g. an unclosed IPv6 bracket, a port that is not a number
        valid = False
    if not valid:
        source = "--url" if override else f"${URL_ENV}" if os.environ.get(URL_ENV) else "url"
        raise ZooDownloadError(
            f"invalid zoo server URL {url!r} ({source}): expected http(s)://HOST[/PATH], the "
            "address of a directory that `rnnzoo-train publish` wrote"
        )
    return url


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """The local cache: ``override``, ``$RNNZOO_CACHE`` or the user cache directory."""
    if override is not None:
        if not str(override).strip():
            raise ZooDownloadError("--cache is empty; give a directory for downloaded zoos")
        return Path(override)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    import pooch

    return Path(pooch.os_cache("rnnzoo"))


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``"demo@2026.11.28"`` -> ``("demo", "2026.11.28")``; ``"demo"`` -> ``("demo", None)``."""
    m = _SPEC.fullmatch(spec.strip())
    if not m:
        raise ZooDownloadError(
            f"invalid zoo name {spec!r}: expected NAME or NAME@VERSION (letters, digits, "
            "'_', '-', '.')"
        )
    return m["name"], m["version"]


def _version_key(v: str) -> tuple:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.\-_]", v))


def _registry_cache(cache: Path, url: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9]+", "_", url).strip("_")
    return cache / "registries" / f"{safe}.txt"


def _versions(registry: dict[str, str], name: str) -> dict[str, dict[str, str]]:
    """``{version: {task: file}}`` of ``name`` in ``registry``."""
    versions: dict[str, dict[str, str]] = {}
    for fname in registry:
        parts = fname.split("/")
        if len(parts) == 3 and parts[0] == name and parts[2].endswith(".zarr.zip"):
            versions.setdefault(parts[1], {})[parts[2].removesuffix(".zarr.zip")] = fname
    return versions


def _select(files: dict[str, str], tasks: list[str] | None, label: str) -> dict[str, str]:
    if tasks is None:
        return files
    missing = [t for t in tasks if t not in files]
    if missing:
        raise ZooDownloadError(
            f"zoo {label} has no task(s) {', '.join(missing)}; it has {', '.join(sorted(files))}"
        )
    return {t: files[t] for t in tasks}


def _resolve(
    registry: dict[str, str], name: str, version: str | None, tasks: list[str] | None
) -> tuple[str, dict[str, str]] | None:
    """(version, {task: file}) of ``name`` in ``registry``, or ``None`` if absent."""
    versions = _versions(registry, name)
    if not versions or (version is not None and version not in versions):
        return None
    chosen = version or max(versions, key=_version_key)
    return chosen, _select(versions[chosen], tasks, f"{name}@{chosen}")


def _fetch_registry(url: str, timeout: float) -> str:
    """The text of the server's registry; one-line errors for every way that fails."""
    import requests

    where = f"{url}/{REGISTRY_NAME}"
    try:
        resp = requests.get(where, timeout=timeout)
    except requests.exceptions.ConnectionError as err:
        if isinstance(err, requests.exceptions.ConnectTimeout):
            raise _Unreachable(
                f"the zoo server {url} did not answer within {timeout:g} s"
            ) from None
        raise _Unreachable(
            f"cannot reach the zoo server {url} (connection failed); check the URL, your "
            f"network, or set {URL_ENV} to a reachable mirror"
        ) from None
    except requests.exceptions.Timeout:
        raise _Unreachable(f"the zoo server {url} did not answer within {timeout:g} s") from None
    except requests.exceptions.RequestException as err:
        raise ZooDownloadError(
            f"cannot request {where} ({type(err).__name__}); check the URL (--url or {URL_ENV})"
        ) from None
    if resp.status_code != 200:
        hint = (
            f"is {url} a directory that `rnnzoo-train publish` wrote (set --url or {URL_ENV})?"
            if resp.status_code == 404
            else "the server failed; try again later or use a mirror"
        )
        raise ZooDownloadError(f"{where}: HTTP {resp.status_code} {resp.reason}; {hint}")
    return resp.text


def _server_registry(text: str, url: str) -> dict[str, str]:
    try:
        return read_registry(text, source=f"{url}/{REGISTRY_NAME}")
    except ZooError as err:
        raise ZooDownloadError(f"{err}; the server's registry is broken") from None


def _cached_registry(path: Path) -> tuple[str, dict[str, str]]:
    """The cached registry text and entries (empty if missing or unreadable)."""
    try:
        text = path.read_text(encoding="utf-8")
        return text, read_registry(text)
    except (OSError, UnicodeDecodeError, ZooError):
        return "", {}


def _all_cached(cache: Path, registry: dict[str, str], files: dict[str, str]) -> bool:
    for fname in files.values():
        path = cache / fname
        if not path.is_file() or f"sha256:{sha256_file(path)}" != registry[fname]:
            return False
    return True


def _newest_cached(
    cache: Path, registry: dict[str, str], name: str, tasks: list[str] | None
) -> tuple[str, dict[str, str]] | None:
    """The newest version of ``name`` whose (selected) files are all in the cache."""
    versions = _versions(registry, name)
    for v in sorted(versions, key=_version_key, reverse=True):
        try:
            files = _select(versions[v], tasks, f"{name}@{v}")
        except ZooDownloadError:
            continue
        if _all_cached(cache, registry, files):
            return v, files
    return None


def _unknown(registry: dict[str, str], name: str, version: str | None, server: str) -> str:
    versions = _versions(registry, name)
    if versions:
        listed = ", ".join(sorted(versions, key=_version_key))
        return f"no version {version} of zoo {name} at {server}; it publishes {name}@{{{listed}}}"
    names = sorted({f.split("/")[0] + "@" + f.split("/")[1] for f in registry if "/" in f})
    want = name + (f"@{version}" if version else "")
    return f"no zoo {want} at {server}; it publishes {', '.join(names) or 'nothing'}"


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

    Warns
    -----
    ZooOfflineWarning
        ``NAME`` without a version, the server unreachable: the newest cached version.
    """
    files = download_files(
        spec, tasks=tasks, url=url, cache=cache, progress=progress, timeout=timeout
    )
    return open_zoo(list(files.values()))


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
    name, version = parse_spec(spec)
    server = base_url(url)
    cache = _check_cache(cache_dir(cache), probe=False)
    reg_path = _registry_cache(cache, server)
    cached_text, cached = _cached_registry(reg_path)
    if version is not None:
        found = _resolve(cached, name, version, tasks)
        if found is not None and _all_cached(cache, cached, found[1]):
            return {t: cache / f for t, f in found[1].items()}  # immutable: no request
    fallback = _newest_cached(cache, cached, name, tasks) if version is None else None
    if fallback is None:
        _check_cache(cache)  # files will be downloaded: the cache must take them
    try:
        text = _fetch_registry(server, min(timeout, LATEST_TIMEOUT) if fallback else timeout)
    except _Unreachable as err:
        if fallback is None:
            raise ZooDownloadError(str(err)) from None
        warnings.warn(
            f"{err}; using {name}@{fallback[0]}, the newest version in the cache {cache} "
            "(the server may have newer ones)",
            ZooOfflineWarning,
            stacklevel=2,
        )
        return {t: cache / f for t, f in fallback[1].items()}
    registry = _server_registry(text, server)
    found = _resolve(registry, name, version, tasks)
    if found is None:
        raise ZooDownloadError(_unknown(registry, name, version, server))
    files = found[1]
    if _all_cached(cache, registry, files):
        if text != cached_text:
            with contextlib.suppress(ZooError, OSError):  # a read-only cache still serves
                _check_cache(cache)
                _store_registry(cache, reg_path, text)
        return {t: cache / f for t, f in files.items()}
    return _fetch_files(server, cache, reg_path, text, registry, files, progress, timeout)


def _fetch_files(
    server: str,
    cache: Path,
    reg_path: Path,
    text: str,
    registry: dict[str, str],
    files: dict[str, str],
    progress: bool,
    timeout: float,
) -> dict[str, Path]:
    """Download ``files`` into ``cache``; on failure remove what this call added."""
    import pooch

    if not progress:
        pooch.get_logger().setLevel("WARNING")
    _check_cache(cache)
    created = make_dirs(cache)
    new = [cache / f for f in files.values() if not (cache / f).exists()]
    new_dirs = [d for f in files.values() for d in _missing_dirs(cache, f)]
    try:
        fetcher = pooch.create(
            path=cache,
            base_url=server + "/",
            registry={f: registry[f] for f in files.values()},
            retry_if_failed=2,
        )
        downloader = pooch.HTTPDownloader(progressbar=progress, timeout=timeout)
        out = {}
        for task, fname in files.items():
            out[task] = Path(_fetch_one(fetcher, downloader, server, fname, progress))
            _check_zip(out[task], f"{server}/{fname}")
        _store_registry(cache, reg_path, text)
        return out
    except BaseException:
        for p in new:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        remove_created(sorted(set(new_dirs), key=lambda d: len(d.parts)))
        remove_created(created)
        raise


def _check_cache(cache: Path, probe: bool = True) -> Path:
    try:
        return check_output_dir(cache, what="the cache directory", option="--cache", probe=probe)
    except ZooError as err:
        raise ZooDownloadError(str(err)) from None


def _missing_dirs(cache: Path, fname: str) -> list[Path]:
    """Directories between ``cache`` and ``cache/fname`` that do not exist yet."""
    out = []
    for parent in (cache / fname).parents:
        if parent == cache or not parent.is_relative_to(cache):
            break
        if not parent.exists():
            out.append(parent)
    return out


def _fetch_one(fetcher, downloader, server: str, fname: str, progress: bool) -> str:
    import requests

    try:
        return fetcher.fetch(fname, downloader=downloader, progressbar=progress)
    except ValueError as err:
        raise ZooDownloadError(
            f"{server}/{fname} does not match its sha256 in the registry, so it was "
            "rejected (the server copy is corrupt or the registry is stale)"
        ) from err
    except requests.exceptions.HTTPError as err:
        code = err.response.status_code if err.response is not None else "error"
        raise ZooDownloadError(
            f"cannot download {server}/{fname}: HTTP {code}; the server lists it in its "
            "registry but does not serve it (an incomplete upload?)"
        ) from None
    except (requests.exceptions.RequestException, OSError) as err:
        raise ZooDownloadError(
            f"cannot download {server}/{fname} ({type(err).__name__}); check the URL or "
            f"set {URL_ENV}"
        ) from None


def _check_zip(path: Path, where: str) -> None:
    """A downloaded file must be a zip holding a zoo's root ``zarr.json``."""
    try:
        with zipfile.ZipFile(path) as zf:
            ok = "zarr.json" in zf.namelist()
    except (zipfile.BadZipFile, OSError):
        ok = False
    if not ok:
        raise ZooDownloadError(
            f"{where} matches its sha256 but is not a zoo zip (no zarr.json at its root); "
            "the publisher's file is broken"
        )


def _store_registry(cache: Path, path: Path, text: str) -> None:
    """Keep the server's registry in the cache (atomically: temporary file, rename)."""
    created = make_dirs(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".registry-", suffix=".partial", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        remove_created(created)
        raise


def cached_files(spec: str, *, url: str | None = None, cache=None) -> dict[str, Path]:
    """``{task: zip}`` of a zoo already in the cache (no network); raises if not cached."""
    name, version = parse_spec(spec)
    cache = cache_dir(cache)
    _, registry = _cached_registry(_registry_cache(cache, base_url(url)))
    found = (
        _resolve(registry, name, version, None)
        if version
        else _newest_cached(cache, registry, name, None)
    )
    if found is None or not _all_cached(cache, registry, found[1]):
        raise ZooDownloadError(f"zoo {spec} is not in the cache {cache}; download it first")
    return {t: cache / f for t, f in found[1].items()}
