"""Parallel download against sequential blob-by-blob download, with injected latency.

    python -m bench.download_parallel [--objects 1000] [--rtt-ms 20] [--workers 64] [--repeats 3]

Also measures google-cloud-storage's transfer_manager with the same threads, in the same run.

Both talk to fake-gcs-server through a loopback proxy that delays every request
and every response by half the round trip (loopback alone has ~0 latency, which
would make any parallelism look pointless).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from bench.common import emulator_behind_proxy, median_seconds, report
from src.backends.emulator import anonymous_client
from src.data.download import download_dataset

PAYLOAD = (Path(__file__).resolve().parents[1] / "data" / "sample" / "digit_001.png").read_bytes()


def sequential(client, bucket: str, prefix: str, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for blob in client.list_blobs(bucket, prefix=prefix):
        fresh = client.bucket(bucket).blob(blob.name)
        fresh.download_to_filename(str(dest / Path(blob.name).name))


def library(client, bucket: str, prefix: str, dest: Path, workers: int) -> None:
    """google-cloud-storage's own parallel download (threads), the library to match or beat."""
    from google.cloud.storage import transfer_manager

    names = [blob.name for blob in client.list_blobs(bucket, prefix=prefix)]
    results = transfer_manager.download_many_to_path(
        client.bucket(bucket),
        names,
        destination_directory=str(dest),
        worker_type=transfer_manager.THREAD,
        max_workers=workers,
        raise_exception=True,
    )
    assert not any(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with emulator_behind_proxy("bench-download-", delay_s=args.rtt_ms / 2000) as (
        work,
        server,
        proxy,
    ):
        bucket = server.client().create_bucket("bench")
        for index in range(args.objects):
            bucket.blob(f"set/{index:05d}.png").upload_from_string(PAYLOAD)
        client = anonymous_client(proxy.url)
        out = work / "out"
        reset = lambda: shutil.rmtree(out, ignore_errors=True)  # noqa: E731
        baseline, _ = median_seconds(
            lambda: sequential(client, "bench", "set/", out), args.repeats, reset
        )
        candidate, _ = median_seconds(
            lambda: download_dataset("gs://bench/set/", out, client=client, workers=args.workers),
            args.repeats,
            reset,
        )
        library_seconds, _ = median_seconds(
            lambda: library(client, "bench", "set/", out, args.workers), args.repeats, reset
        )
        title = f"download, {args.objects} objects, {args.rtt_ms:g} ms injected round trip"
        ours = f"download_dataset(workers={args.workers})"
        report(title, "sequential blob.download_to_filename", baseline, ours, candidate, args.objects, "objects")  # fmt: skip
        report(title, f"transfer_manager.download_many_to_path(threads={args.workers})", library_seconds, ours, candidate, args.objects, "objects")  # fmt: skip


if __name__ == "__main__":
    main()
