"""A TCP proxy on 127.0.0.1 that delays bytes like a long link, for benchmarks.

Each chunk read from either side is delivered `delay_s` later (so a round trip
gains 2 x delay_s), in order, while later chunks are already on their way: the
link has latency, not a queue. `bytes_per_s` caps each connection's downstream
direction (upstream to client), like a per-stream limit on a long-distance link.
No HTTP is parsed, so it costs little CPU; it runs in a process of its own so
that its work never takes the measured client's interpreter lock:

    python -m devtools.latency_proxy UPSTREAM_URL --delay-s 0.01 [--bytes-per-s N]

prints its URL, then serves until killed. (Fault injection for tests: http_proxy.py.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from urllib.parse import urlparse

CHUNK = 64 * 1024


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float, bytes_per_s: float
) -> None:
    """Copies `reader` to `writer`, each chunk `delay_s` after it arrived, at most `bytes_per_s`."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()

    async def deliver() -> None:
        free_at = 0.0  # when the cap lets the next chunk start
        while (item := await queue.get()) is not None:
            due, chunk = item
            start = max(due, free_at)
            if start > loop.time():
                await asyncio.sleep(start - loop.time())
            writer.write(chunk)
            await writer.drain()
            if bytes_per_s:
                free_at = start + len(chunk) / bytes_per_s
        writer.close()

    sender = asyncio.create_task(deliver())
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(CHUNK):
            queue.put_nowait((loop.time() + delay_s, chunk))
    queue.put_nowait(None)
    with contextlib.suppress(ConnectionError):
        await sender


async def serve(upstream: str, delay_s: float, bytes_per_s: float) -> None:
    target = urlparse(upstream)

    async def connect(client_reader, client_writer) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(target.hostname, target.port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            _pipe(client_reader, up_writer, delay_s, 0.0),
            _pipe(up_reader, client_writer, delay_s, bytes_per_s),
        )

    server = await asyncio.start_server(connect, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"http://{host}:{port}", flush=True)
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("upstream")
    parser.add_argument("--delay-s", type=float, default=0.0, help="one way")
    parser.add_argument("--bytes-per-s", type=float, default=0.0, help="0: no cap")
    args = parser.parse_args()
    asyncio.run(serve(args.upstream, args.delay_s, args.bytes_per_s))


if __name__ == "__main__":
    main()
