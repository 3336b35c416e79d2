"""A loopback HTTP proxy in front of an S3-compatible server that refuses writes on demand.

Requests are passed to the upstream server as they come (reads, HEADs, uploads); a PUT or POST
whose path the test's `refuse` rule picks is answered `503 SlowDown`, as a throttling store
answers, and counted, so a test sees the client's retries and their end. Request headers named
in `ignored` are dropped on the way, as a store that does not know them ignores them.
"""

from __future__ import annotations

import http.client
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

_SLOW_DOWN = b"<Error><Code>SlowDown</Code><Message>refused by the test</Message></Error>"
_HOP_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding", "proxy-connection"})


class FaultProxy(ThreadingHTTPServer):
    """Forwards to `upstream`; `refuse(method, path, attempt)` picks the writes to refuse."""

    daemon_threads = True

    def __init__(self, upstream: str, host: str = "127.0.0.1") -> None:
        super().__init__((host, 0), _Handler)
        self.upstream = urlsplit(upstream).netloc
        self.refuse: Callable[[str, str, int], bool] = lambda method, path, attempt: False
        self.writes: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.requests: Counter[tuple[str, str]] = Counter()
        """Requests passed upstream, by (method, path)."""
        self.ignored: set[str] = set()
        """Request headers (lower case) not passed upstream."""
        self.bytes_sent = 0
        """Body bytes answered to reads (GET)."""
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        self._forward()

    do_HEAD = do_DELETE = do_GET

    def do_PUT(self) -> None:
        body = self._body()
        key = self.path.split("?")[0]
        with self.server.lock:
            self.server.writes[key] += 1
            refused = self.server.refuse(self.command, key, self.server.writes[key])
            if refused:
                self.server.refused[key] += 1
        if refused:
            self.send_response(503)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(_SLOW_DOWN)))
            self.end_headers()
            self.wfile.write(_SLOW_DOWN)
            return
        self._forward(body)

    do_POST = do_PUT

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            data = b""
            while size := int(self.rfile.readline().split(b";")[0], 16):
                data += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
            return data
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _forward(self, body: bytes | None = None) -> None:
        if body is None and self.command != "HEAD":
            body = self._body()
        dropped = _HOP_HEADERS | self.server.ignored
        headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        upstream = http.client.HTTPConnection(self.server.upstream, timeout=60)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            with self.server.lock:
                self.server.requests[self.command, self.path.split("?")[0]] += 1
                self.server.bytes_sent += len(data) if self.command == "GET" else 0
            self.send_response(answer.status, answer.reason)
            for name, value in answer.getheaders():
                if name.lower() not in _HOP_HEADERS and name.lower() != "content-length":
                    self.send_header(name, value)
            length = answer.getheader("Content-Length")
            self.send_header("Content-Length", length if self.command == "HEAD" and length
                             else str(len(data)))  # fmt: skip
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        finally:
            upstream.close()


@contextmanager
def fault_proxy(upstream: str, host: str = "127.0.0.1") -> Iterator[FaultProxy]:
    """A running FaultProxy in front of `upstream` (an http:// URL), stopped on exit."""
    proxy = FaultProxy(upstream, host)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
