"""Remote inputs: `https://` and `s3://` URLs, read through GDAL's /vsicurl/ and /vsis3/.

A URL stays as the user named it everywhere a person reads it (messages, the scene's `source`
coordinate); `gdal_path` turns it into the path GDAL opens only where a file is opened. GDAL's
network settings (timeouts, retries, the S3 endpoint) come from the standard environment
through `bandfusion.io.gdal_settings.configure_remote`.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import rasterio
from bandfusion.errors import SceneError, first_line
from bandfusion.io.gdal_settings import REMOTE_DEFAULTS, configure_remote, remote_open_env
from rasterio.io import DatasetReader

_HTTP = ("https://", "http://")
_S3 = "s3://"
_URL = re.compile(r"^([a-z][a-z0-9+.-]+):/+", re.IGNORECASE)
"""A URL, also as click's Path leaves it (`s3://b/k` becomes `s3:/b/k`); two letters at least,
so that a drive letter is no scheme."""
_REMOTE_FILESYSTEMS = ("/vsicurl", "/vsis3", "/vsigs", "/vsiaz", "/vsiadls", "/vsioss", "/vsiswift")


def is_remote(href: str | os.PathLike[str]) -> bool:
    """Whether `href` names a file over the network: an http(s):// or s3:// URL, or a GDAL
    path through one of its network file systems (also inside a chain: /vsizip//vsicurl/...)."""
    name = os.fspath(href)
    if name.startswith((*_HTTP, _S3)):
        return True
    return name.startswith("/vsi") and any(fs in name for fs in _REMOTE_FILESYSTEMS)


def url_scheme(href: str | os.PathLike[str]) -> str | None:
    """The scheme of `href` when it is a URL (`s3`, `https`, `gs`...), else None. One slash
    after the colon counts: a command-line path type folds `s3://b/k` into `s3:/b/k`."""
    match = _URL.match(os.fspath(href))
    return match[1].lower() if match else None


def as_url(href: str | os.PathLike[str]) -> str | None:
    """`href` as a URL, its `//` restored where a path type folded it (`s3:/b/k` → `s3://b/k`);
    None when it is not one."""
    match = _URL.match(os.fspath(href))
    return f"{match[1]}://{os.fspath(href)[match.end() :]}" if match else None


def is_http(href: str | os.PathLike[str]) -> bool:
    """Whether `href` is an http(s):// URL: a document `fetch_text` can fetch."""
    return os.fspath(href).startswith(_HTTP)


def gdal_path(href: str | os.PathLike[str]) -> str:
    """The path GDAL opens for `href`: https://h/k → /vsicurl/https://h/k, s3://b/k → /vsis3/b/k,
    anything else (a local path, a GDAL path already) unchanged.

    The first remote path asked for sets GDAL's network options for the process, so whoever
    opens it (a dask worker thread included) reads with the environment's timeouts.
    """
    name = os.fspath(href)
    if not is_remote(name):
        return name
    configure_remote()
    if name.startswith(_HTTP):
        return f"/vsicurl/{name}"
    if name.startswith(_S3):
        return f"/vsis3/{name[len(_S3) :]}"
    return name


def url_of(path: str) -> str:
    """The URL a GDAL network path names (`gdal_path`'s inverse): /vsis3/b/k → s3://b/k,
    /vsicurl/https://h/k → https://h/k; anything else unchanged."""
    if path.startswith("/vsicurl/"):
        return path[len("/vsicurl/") :]
    if path.startswith("/vsis3/"):
        return f"{_S3}{path[len('/vsis3/') :]}"
    return path


def open_raster(href: str | os.PathLike[str]) -> DatasetReader:
    """`rasterio.open` of `href` (a path or a URL), in `remote_open_env` where it is remote."""
    if not is_remote(href):
        return rasterio.open(href)
    with remote_open_env():
        return rasterio.open(gdal_path(href))


def file_stamp(href: str | os.PathLike[str]) -> tuple[int, int] | None:
    """What tells a changed local file from the one read before: its mtime and size (of the
    archive, for a member of a local zip: `/vsizip/x.zip/member`).

    None for a remote object: telling would take a request (a HEAD per chunk read), and GDAL
    caches what it has read of the object for the process anyway; None too for other GDAL
    virtual paths, which hold nothing local to stat.
    """
    name = os.fspath(href)
    if name.startswith("/vsizip/") and not is_remote(name):
        cut = name.lower().find(".zip/")
        name = name[len("/vsizip/") : cut + 4] if cut > 0 else name
    if is_remote(name) or name.startswith("/vsi"):
        return None
    stat = Path(name).stat()
    return (stat.st_mtime_ns, stat.st_size)


MAX_DOCUMENT_BYTES = 64 * 2**20
"""The most a metadata document (a STAC Item or ItemCollection) fetched over HTTP may hold: a
real one is kilobytes, and a hostile server could stream forever."""


def fetch_text(url: str, *, timeout: float | None = None) -> str:
    """The UTF-8 document at the http(s) `url`, fetched with a timeout (default: the
    environment's `GDAL_HTTP_TIMEOUT`, as for rasters); any failure (not found, refused, timed
    out, too large, not UTF-8) is one SceneError line naming the URL."""
    if not is_http(url):
        raise SceneError(f"{url}: not an http(s):// URL")
    seconds = timeout if timeout is not None else environment_timeout()
    request = urllib.request.Request(url, headers={"User-Agent": "bandfusion"})
    try:
        with urllib.request.urlopen(request, timeout=seconds) as response:
            data = response.read(MAX_DOCUMENT_BYTES + 1)
    except (OSError, ValueError, http.client.HTTPException) as exc:  # URLError, timeouts
        raise SceneError(f"{url}: cannot fetch it ({reason(exc)})") from exc
    if len(data) > MAX_DOCUMENT_BYTES:
        raise SceneError(f"{url}: larger than {MAX_DOCUMENT_BYTES} bytes; not a metadata file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SceneError(f"{url}: not UTF-8 text ({exc.reason})") from exc


def fetch_json(url: str, *, timeout: float | None = None) -> Any:
    """The JSON document at the http(s) `url` (see `fetch_text`); invalid JSON is one line."""
    text = fetch_text(url, timeout=timeout)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SceneError(f"{url}: not JSON ({exc})") from exc


def environment_timeout() -> float:
    """Seconds a request may wait on the network: `GDAL_HTTP_TIMEOUT`, as for rasters."""
    value = os.environ.get("GDAL_HTTP_TIMEOUT", REMOTE_DEFAULTS["GDAL_HTTP_TIMEOUT"])
    try:
        return float(value)
    except ValueError:
        return float(REMOTE_DEFAULTS["GDAL_HTTP_TIMEOUT"])


def reason(exc: BaseException) -> str:
    """urllib's reason without its wrapper: 'HTTP Error 404: Not Found', 'timed out', ..."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}: {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return first_line(exc)
