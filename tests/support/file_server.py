"""A small HTTP file server on 127.0.0.1 for download tests: the network boundary, faked.

It serves in-memory files by name, honours `Range: bytes=N-` like a CDN, records every
request, and can misbehave on purpose: drop the connection part-way, ignore ranges, answer
with the wrong range, send a different body, dribble bytes slowly, or redirect forever.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Served:
    """What the server does; tests change these between requests."""

    files: dict[str, bytes]
    drop_after: dict[str, int] = field(default_factory=dict)
    """name -> bytes after which the next response for it is cut (once)."""
    ignore_range: bool = False
    wrong_range: bool = False
    replace_body: dict[str, bytes] = field(default_factory=dict)
    extra_tail: bytes = b""
    status: int | None = None
    delay_per_chunk: float = 0.0
    redirect_loop: bool = False
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    """(path, Range header) of every request, in order."""
    bytes_sent: int = 0


class _Handler(BaseHTTPRequestHandler):
    served: Served
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return None

    def do_GET(self) -> None:
        served = self.served
        name = self.path.lstrip("/").split("?", 1)[0]
        served.requests.append((self.path, self.headers.get("Range")))
        if served.redirect_loop:
            self.send_response(302)
            self.send_header("Location", f"/{name}?again={len(served.requests)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if served.status is not None:
            self._plain(served.status, b"no")
            return
        body = served.replace_body.get(name, served.files.get(name))
        if body is None:
            self._plain(404, b"not found")
            return
        body += served.extra_tail
        start = 0
        wanted = self.headers.get("Range")
        if wanted and not served.ignore_range:
            start = int(wanted.removeprefix("bytes=").split("-", 1)[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            shown = start + 1 if served.wrong_range else start
            self.send_header("Content-Range", f"bytes {shown}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        rest = body[start:]
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        cut = served.drop_after.pop(name, None)
        limit = len(rest) if cut is None else max(0, cut - start)
        for offset in range(0, limit, 4096):
            piece = rest[offset : min(limit, offset + 4096)]
            try:
                self.wfile.write(piece)
                self.wfile.flush()
            except OSError:
                return
            served.bytes_sent += len(piece)
            if served.delay_per_chunk:
                time.sleep(served.delay_per_chunk)
        if cut is not None:
            self.close_connection = True  # short body: the client sees the connection end

    def _plain(self, status: int, text: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        return None  # a client that hangs up mid-body is what several tests are about


@contextmanager
def file_server(served: Served) -> Iterator[str]:
    """Serve `served` on an ephemeral port; yields the base URL."""
    handler = type("Handler", (_Handler,), {"served": served})
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
