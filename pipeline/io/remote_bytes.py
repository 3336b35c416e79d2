"""The bytes of remote objects (`https://` and `s3://`) beside the pixels GDAL reads: whether
one is there, its size, a range of it, and a seekable file over it, so that a zipped product's
listing and metadata are read in place with a few range requests, never downloaded whole.

Every failure but "not there" is one SceneError naming the URL; timeouts are the environment's,
as for rasters (`GDAL_HTTP_TIMEOUT`), and S3 requests are retried as `bandfusion.io.s3` says.
"""

from __future__ import annotations

import http.client
import io
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from bandfusion.errors import SceneError, first_line
from bandfusion.io import s3
from bandfusion.io.remote import environment_timeout, reason

PROBE_THREADS = 16
"""Inputs or outputs probed at once (a product's files, a batch's inputs and outputs): a remote
one costs a round trip each, and hashing a local map releases the GIL, so checking many is not
one long queue."""
T = TypeVar("T")
R = TypeVar("R")


def probe_all(probe: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """`probe` of every item (an object looked for, an output's digest), PROBE_THREADS at a
    time, in order."""
    if len(items) < 2:
        return [probe(item) for item in items]
    with ThreadPoolExecutor(min(PROBE_THREADS, len(items))) as pool:
        return list(pool.map(probe, items))


def remote_size(url: str) -> int | None:
    """The size in bytes of the object at `url`, None when there is none there."""
    try:
        if url.startswith(s3.S3):
            answer = s3.head(url)
            return None if answer is None else int(answer["ContentLength"])
        request = urllib.request.Request(url, method="HEAD", headers=_HEADERS)
        with urllib.request.urlopen(request, timeout=environment_timeout()) as response:
            return int(response.headers.get("Content-Length") or 0)
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 410):  # a 403 may hide one, but may as well be a refusal: said
            return None
        raise SceneError(f"{url}: cannot reach it ({reason(exc)})") from exc
    except Exception as exc:  # timeouts, refusals, botocore's errors once retried
        raise SceneError(f"{url}: cannot reach it ({first_line(exc, typed=True)})") from exc


def present(urls: Iterable[str]) -> set[str]:
    """Those of `urls` that are there, asked for many at once."""
    listed = list(urls)
    sizes = probe_all(remote_size, listed)
    return {url for url, size in zip(listed, sizes, strict=True) if size is not None}


def read_range(url: str, start: int, end: int) -> bytes:
    """Bytes `start`..`end` (inclusive) of the object at `url`."""
    try:
        if url.startswith(s3.S3):
            return s3.get_range(url, start, end)
        headers = {**_HEADERS, "Range": f"bytes={start}-{end}"}
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=environment_timeout()) as response:
            if response.status != 206:
                raise SceneError(f"{url}: the server ignores range requests; GDAL needs them")
            return bytes(response.read(end - start + 1))
    except SceneError:
        raise
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise SceneError(f"{url}: cannot read it ({reason(exc)})") from exc
    except Exception as exc:  # botocore's errors once retried
        raise SceneError(f"{url}: cannot read it ({first_line(exc, typed=True)})") from exc


def read_object(url: str, limit: int, kind: str = "a metadata file") -> bytes:
    """The whole object at `url`, refused unread above `limit` bytes (what `kind` may have)."""
    size = remote_size(url)
    if size is None:
        raise SceneError(f"{url}: no such file")
    if size > limit:
        raise SceneError(f"{url}: {size} bytes, more than the {limit} {kind} may have")
    return read_range(url, 0, size - 1) if size else b""


class RemoteFile(io.RawIOBase):
    """A read-only, seekable file over the object at `url` (of `size` bytes): each read is one
    range request, so `zipfile` reads a remote archive's directory and members in place."""

    def __init__(self, url: str, size: int) -> None:
        super().__init__()
        self.url, self.size, self.position = url, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(base + offset, 0)
        return self.position

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        end = min(self.position + len(buffer), self.size)
        if end <= self.position:
            return 0
        data = read_range(self.url, self.position, end - 1)
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)


def open_remote(url: str, buffer: int = 1 << 16) -> io.BufferedReader:
    """A buffered, seekable file over the object at `url`; SceneError when there is none."""
    size = remote_size(url)
    if size is None:
        raise SceneError(f"{url}: no such file")
    return io.BufferedReader(RemoteFile(url, size), buffer_size=buffer)


_HEADERS = {"User-Agent": "bandfusion"}
