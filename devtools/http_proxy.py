"""An HTTP forwarding proxy on 127.0.0.1 that injects faults, for GCS tests.

It forwards each request to `upstream` (the emulator) with http.client, on one
kept-alive upstream connection per client connection. `fail_every`=N answers
every Nth request with 503; `cut_body` sends half a response and closes; `stall`
never answers; `before_reply` runs once upstream has answered, before the client
hears it, and `after_request` after each reply. (Latency and bandwidth for
benchmarks: latency_proxy.py.)
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


@dataclass
class HttpProxy:
    upstream: str
    fail_every: int = 0
    before_reply: Callable[[int], None] | None = None
    after_request: Callable[[int], None] | None = None
    cut_body: Callable[[str], bool] | None = None  # send half of this response's body, then close
    stall: Callable[[str], bool] | None = None  # never answer this request (until stop())
    count: int = 0
    paths: list[str] = field(default_factory=list)  # every request's path, in order
    failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopped: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> HttpProxy:
        proxy = self
        target = urlparse(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else a small reply waits on the peer's delayed ACK

            def log_message(self, *args) -> None:
                pass

            def _forward(self) -> None:
                with proxy.lock:
                    proxy.count += 1
                    number = proxy.count
                    proxy.paths.append(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if proxy.fail_every and number % proxy.fail_every == 0:
                    with proxy.lock:
                        proxy.failures += 1
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                try:
                    response, data = self._upstream(body, headers)
                except OSError:
                    self.send_response(502)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if proxy.before_reply:
                    proxy.before_reply(number)
                if proxy.stall and proxy.stall(self.path):
                    proxy.stopped.wait(300)
                    self.close_connection = True
                    return
                if proxy.cut_body and len(data) > 1 and proxy.cut_body(self.path):
                    self.send_response(response.status)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_HEADERS | {"content-length"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                if proxy.after_request:
                    proxy.after_request(number)

            def _upstream(self, body: bytes | None, headers: dict):
                """The reply, on this client connection's kept-alive upstream connection.

                A kept connection that the emulator has closed meanwhile is replaced once.
                """
                kept = getattr(self, "connection_upstream", None)
                if kept is not None:
                    try:
                        return self._exchange(kept, body, headers)
                    except OSError:
                        kept.close()
                self.connection_upstream = http.client.HTTPConnection(
                    target.hostname, target.port, timeout=30
                )
                return self._exchange(self.connection_upstream, body, headers)

            def _exchange(self, connection, body: bytes | None, headers: dict):
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                return response, response.read()

            def finish(self) -> None:
                super().finish()
                if getattr(self, "connection_upstream", None) is not None:
                    self.connection_upstream.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __enter__(self) -> HttpProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopped.set()
        if self.server:
            self.server.shutdown()
            self.server.server_close()
