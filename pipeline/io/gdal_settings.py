"""GDAL settings chosen deliberately for every read and write: a bounded block cache, no side files,
and for remote reads timeouts, retries and the S3 endpoint from the standard environment.

GDAL's default block cache is a share of RAM and fills up while a scene streams through it,
since no block is read twice; a small fixed cache holds every block a few in-flight chunks touch
and reads just as fast (figures in docs/engine.md).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from urllib.parse import urlsplit

import rasterio
from rasterio._env import del_gdal_config, set_gdal_config  # rasterio.env re-exports only set

GDAL_CACHE_MB = 64
"""GDAL block cache while reading scenes or writing maps: bounds memory at full speed."""

READ_THREADS = 1
"""GDAL decoding threads per read: dask already runs one read per core, so one is enough."""


def gdal_env(cache_mb: int = GDAL_CACHE_MB, **options: str | int) -> rasterio.Env:
    """A GDAL environment with a `cache_mb` block cache, no `.aux.xml` side files, and `options`.

    A side file would be left behind by the writer's rename, so whatever GDAL cannot store
    inside the file is lost instead, and the writer's check catches that. rasterio passes an
    integer GDAL_CACHEMAX to GDAL in bytes, hence the conversion.
    """
    return rasterio.Env(GDAL_CACHEMAX=cache_mb * 2**20, GDAL_PAM_ENABLED="NO", **options)


REMOTE_DEFAULTS = {
    "GDAL_HTTP_TIMEOUT": "60",
    "GDAL_HTTP_CONNECTTIMEOUT": "10",
    "GDAL_HTTP_MAX_RETRY": "4",
    "GDAL_HTTP_RETRY_DELAY": "1",
}
"""GDAL's network settings unless the environment sets them: a stalled server fails a request
within a minute instead of hanging the read, a refused connection within seconds; throttling and
gateway errors (429, 502-504) are retried with growing delays."""

REMOTE_OPEN = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}
"""While a remote file is opened (unless the environment says otherwise): list no remote folder
to look for side files, a slow request (an S3 listing) for files that have none. Set around
remote opens only: process-wide it would hide local side files too (a map's .aux.xml class
names, the COG writer's .ovr chain)."""

_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_S3_ENDPOINT")
"""Where an S3-compatible store is, in the order the AWS tools read them (GDAL reads only the
last, as host[:port] without a scheme)."""

_lock = threading.Lock()
_applied: dict[str, str] = {}


def remote_options(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The GDAL options remote reads need beyond what GDAL reads from `environ` itself.

    Each of REMOTE_DEFAULTS the environment leaves unset; and for an S3-compatible store named
    by `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`, or `AWS_S3_ENDPOINT` with a scheme), its
    host as GDAL wants it, `AWS_HTTPS=NO` for an http:// endpoint, and path-style requests
    (`AWS_VIRTUAL_HOSTING=FALSE`: a store on a host name or a port has no bucket subdomains).
    Credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
    `AWS_REGION`, `AWS_PROFILE`, `AWS_NO_SIGN_REQUEST`) GDAL reads from the environment.
    """
    options = dict(REMOTE_DEFAULTS)
    endpoint = next((environ[v] for v in _ENDPOINT_VARIABLES if environ.get(v)), None)
    if endpoint is not None:
        options["AWS_VIRTUAL_HOSTING"] = "FALSE"
    if endpoint is not None and "://" in endpoint:
        parts = urlsplit(endpoint)
        options["AWS_HTTPS"] = "NO" if parts.scheme == "http" else "YES"
        options = {key: value for key, value in options.items() if key not in environ}
        options["AWS_S3_ENDPOINT"] = parts.netloc + parts.path.rstrip("/")
        return options
    return {key: value for key, value in options.items() if key not in environ}


def remote_open_env() -> rasterio.Env:
    """The environment a remote file is opened in: REMOTE_OPEN, less what the environment sets."""
    return rasterio.Env(**{k: v for k, v in REMOTE_OPEN.items() if k not in os.environ})


def configure_remote() -> None:
    """Set `remote_options()` process-wide, again only when the environment has changed them.

    Process-wide rather than in `gdal_env`: rasterio sets an environment's options for every
    thread and deletes them when any thread leaves its environment, so a dask worker thread
    finishing a chunk would strip the timeouts from another thread's request in flight. An
    option the environment now sets itself is dropped, so GDAL reads the environment's value.
    """
    with _lock:
        options = remote_options()
        if options == _applied:
            return
        for key in _applied.keys() - options.keys():
            del_gdal_config(key)
        for key, value in options.items():
            set_gdal_config(key, value)
        _applied.clear()
        _applied.update(options)
