"""Servers the tests start on loopback: a Range-capable HTTP server and an S3-compatible one.

`RangeServer` serves files registered by URL path, answering HEAD and single-range GETs as
object stores do (206 with Content-Range; GDAL's /vsicurl/ reads nothing else), and a stalling
path that accepts the request and never answers. `S3Server` is moto's server mode, with a
bucket the tests upload to through boto3.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")
STALL_PATH = "/stall/"
"""Requests under this path are accepted and never answered, until the server stops."""


class RangeServer(ThreadingHTTPServer):
    """An HTTP server on a free loopback port serving bytes registered under URL paths."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RangeHandler)
        self.files: dict[str, bytes] = {}
        self.stopping = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def publish(self, path: str, data: bytes | Path) -> str:
        """Serve `data` (bytes, or a file's) at `path`; returns its URL."""
        self.files[path] = data.read_bytes() if isinstance(data, Path) else data
        return f"{self.url}{path}"


class _RangeHandler(BaseHTTPRequestHandler):
    server: RangeServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests' output is theirs."""

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, *, body: bool) -> None:
        if self.path.startswith(STALL_PATH):
            self.server.stopping.wait()
            return
        data = self.server.files.get(self.path.split("?")[0])
        if data is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        start, end = 0, len(data) - 1
        match = _RANGE.match(self.headers.get("Range", ""))
        if match and (match[1] or match[2]):
            if match[1]:
                start, end = int(match[1]), min(int(match[2] or end), end)
            else:  # a suffix range: the last N bytes
                start = max(len(data) - int(match[2]), 0)
            if start > end:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(HTTPStatus.PARTIAL_CONTENT)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        else:
            self.send_response(HTTPStatus.OK)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        if body:
            self.wfile.write(data[start : end + 1])


@contextmanager
def range_server() -> Iterator[RangeServer]:
    """A running RangeServer, stopped (stalled requests released) on exit."""
    server = RangeServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()


@contextmanager
def s3_server(bucket: str) -> Iterator[tuple[str, Any]]:
    """moto's S3-compatible server on a free loopback port, holding `bucket`: its endpoint URL
    and a boto3 client for it."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line a request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=bucket)
    try:
        yield endpoint, client
    finally:
        server.stop()
