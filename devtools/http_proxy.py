"""An HTTP forwarding proxy on 127.0.0.1 that adds latency or answers 503, for GCS tests.

It forwards each request to `upstream` (the emulator) with http.client, on one
kept-alive upstream connection per client connection. Every
request first sleeps `delay_s`, and so does every response (so the round trip
gains 2 x delay_s); `fail_every`=N answers every Nth request with 503 instead.
`bytes_per_s` caps each response body's rate: it is written in 64 KiB pieces, each
followed by the sleep that holds the pace. A client connection carries one
response at a time, so this is a cap per connection, like a per-stream limit on
a long-distance link. `python -m devtools.http_proxy UPSTREAM` serves one in a
process of its own (benchmarks: its work must not share the measured client's GIL).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


@dataclass
class HttpProxy:
    upstream: str
    delay_s: float = 0.0
    fail_every: int = 0
    after_request: Callable[[int], None] | None = None
    cut_body: Callable[[str], bool] | None = None  # send half of this response's body, then close
    stall: Callable[[str], bool] | None = None  # never answer this request (until stop())
    bytes_per_s: float = 0.0  # 0: no cap
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
                time.sleep(proxy.delay_s)
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
                time.sleep(proxy.delay_s)
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
                proxy.send_paced(self.wfile, data)
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

    def send_paced(self, out, data: bytes, piece: int = 64 * 1024) -> None:
        """Writes `data`, no faster than `bytes_per_s` when a cap is set."""
        if not self.bytes_per_s:
            out.write(data)
            return
        started = time.monotonic()
        for offset in range(0, len(data), piece):
            out.write(data[offset : offset + piece])
            ahead = (offset + piece) / self.bytes_per_s - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)

    def stop(self) -> None:
        self.stopped.set()
        if self.server:
            self.server.shutdown()
            self.server.server_close()


def main() -> None:
    """Serves a proxy in this process until killed; prints its URL first (for benchmarks)."""
    import argparse

    parser = argparse.ArgumentParser(description="Latency proxy for GCS benchmarks.")
    parser.add_argument("upstream")
    parser.add_argument("--delay-s", type=float, default=0.0)
    parser.add_argument("--bytes-per-s", type=float, default=0.0)
    args = parser.parse_args()
    proxy = HttpProxy(args.upstream, delay_s=args.delay_s, bytes_per_s=args.bytes_per_s).start()
    print(proxy.url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
