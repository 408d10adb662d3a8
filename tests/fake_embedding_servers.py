"""Threaded local HTTP servers speaking embedding APIs (no tests here).

Unlike pytest-httpserver's one-thread server, these answer requests concurrently, so tests can
see how many batches a client keeps in flight. Vectors are a deterministic function of the text
(`vector_for`), so order and content can be checked exactly; scripted failures come first.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DIMS = 8


def vector_for(text: str, dims: int = DIMS) -> list[float]:
    """A fixed, text-specific vector (not normalised)."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return [1.0 + digest[i] / 255.0 for i in range(dims)]


Reply = tuple[int, dict[str, str], Any]  # status, headers, JSON body


class EmbeddingServer:
    """Records every request and the most requests it was serving at once."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.requests: list[dict[str, Any]] = []
        self.failures: list[Reply] = []  # served first, one per request
        self.failed_at: list[float] = []  # when each scripted failure was answered
        self.fail_when: Callable[[dict[str, Any]], Reply | None] | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self.url = ""

    def handle(self, path: str, headers: dict[str, str], body: Any) -> Reply:
        with self._lock:
            self.requests.append(
                {"path": path, "headers": headers, "body": body, "at": time.monotonic()}
            )
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            failure = self.failures.pop(0) if self.failures else None
        try:
            if failure is not None:  # answered at once, before the delay
                self.failed_at.append(time.monotonic())
                return failure
            if self.delay:
                time.sleep(self.delay)
            if self.fail_when is not None and (scripted := self.fail_when(body)) is not None:
                return scripted
            return self.answer(path, body)
        finally:
            with self._lock:
                self.in_flight -= 1

    def answer(self, path: str, body: Any) -> Reply:
        """An OpenAI `/v1/embeddings` answer (subclasses speak other APIs)."""
        texts = body["input"]
        data = [
            {"object": "embedding", "index": i, "embedding": vector_for(t)}
            for i, t in enumerate(texts)
        ]
        return 200, {}, {"object": "list", "data": data[::-1], "model": body["model"]}


def _handler(server: EmbeddingServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            status, headers, payload = server.handle(self.path, dict(self.headers), body)
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serving(server: EmbeddingServer) -> Iterator[EmbeddingServer]:
    """Run `server` on a free loopback port for the duration of the block."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    httpd.daemon_threads = True
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
