"""One large archive object: parallel byte-range slices against one stream.

    python -m bench.archive_download [--mib 192] [--cap-mb-s 16] [--rtt-ms 20] [--repeats 3]

A tar of incompressible image-named members is served by fake-gcs-server through
the latency proxy (devtools/latency_proxy.py), which delivers each chunk half the
round trip late in each direction and caps each connection's downstream at
`--cap-mb-s` (each 64 KiB chunk starts no sooner than the previous one's bytes
allow at that rate: a per-connection limit, as on a long link where one TCP
stream cannot fill the pipe). Both sides run
`download_dataset` end to end (download, unpack, manifest): the baseline with one
worker (one stream), the candidate with 8 (32 MiB slices via transfer_manager's
`download_chunks_concurrently`).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import tarfile

from bench.common import emulator_behind_proxy, median_seconds, report
from src.backends.emulator import anonymous_client
from src.data.download import DownloadLimits, download_dataset

MEMBER_BYTES = 1024**2


def archive_bytes(total: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for index in range(max(1, total // MEMBER_BYTES)):
            data = os.urandom(MEMBER_BYTES)
            info = tarfile.TarInfo(f"images/{index:05d}.png")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=192)
    parser.add_argument("--cap-mb-s", type=float, default=16.0)
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slice-mib", type=int, default=DownloadLimits().slice_bytes // 1024**2)
    args = parser.parse_args()
    with emulator_behind_proxy(
        "bench-archive-", delay_s=args.rtt_ms / 2000, bytes_per_s=args.cap_mb_s * 1e6
    ) as (work, server, proxy_url):
        data = archive_bytes(args.mib * 1024**2)
        server.client().create_bucket("bench").blob("set.tar").upload_from_string(data)
        client = anonymous_client(proxy_url)
        out = work / "out"
        reset = lambda: shutil.rmtree(out, ignore_errors=True)  # noqa: E731

        def run(workers: int) -> None:
            limits = DownloadLimits(slice_bytes=args.slice_mib * 1024**2)
            download_dataset(
                "gs://bench/set.tar", out, client=client, workers=workers, limits=limits
            )

        baseline, _ = median_seconds(lambda: run(1), args.repeats, reset)
        candidate, _ = median_seconds(lambda: run(args.workers), args.repeats, reset)
        mib = len(data) / 1024**2
        report(
            f"archive download, {mib:.0f} MiB tar, {args.cap_mb_s:g} MB/s per connection, "
            f"{args.rtt_ms:g} ms round trip",
            "one stream (workers=1)",
            baseline,
            f"slices (workers={args.workers})",
            candidate,
            round(mib),
            "MiB",
        )


if __name__ == "__main__":
    main()
