"""Parallel download against sequential blob-by-blob download, with injected latency.

    python -m bench.download_parallel [--objects 1000] [--rtt-ms 20] [--workers 64] [--repeats 3]
        [--parallel-repeats 9]

Also measures google-cloud-storage's transfer_manager with the same threads, in the same run,
with a default client and with one whose session reads proxy settings once (as ours
does). The parallel ones run in turn, each repeat, on a fresh client; the long
sequential loop is timed fewer times.

Both talk to fake-gcs-server through a loopback proxy that delays every request
and every response by half the round trip (loopback alone has ~0 latency, which
would make any parallelism look pointless).
"""

from __future__ import annotations

import argparse
import functools
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import emulator_behind_proxy, interleaved_medians, median_seconds, report
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
    parser.add_argument("--repeats", type=int, default=3, help="of the sequential loop")
    parser.add_argument("--parallel-repeats", type=int, default=9, help="of each parallel one")
    args = parser.parse_args()
    with emulator_behind_proxy("bench-download-", delay_s=args.rtt_ms / 2000) as (
        work,
        server,
        proxy_url,
    ):
        bucket = server.client().create_bucket("bench")
        for index in range(args.objects):
            bucket.blob(f"set/{index:05d}.png").upload_from_string(PAYLOAD)
        out = work / "out"
        reset = lambda: shutil.rmtree(out, ignore_errors=True)  # noqa: E731
        parallel = {
            "ours": lambda client: download_dataset(
                "gs://bench/set/", out, client=client, workers=args.workers
            ),
            "library": lambda client: library(client, "bench", "set/", out, args.workers),
            "library_tuned": lambda client: library(client, "bench", "set/", out, args.workers),
        }
        clients = {"library_tuned": lambda: tuned(proxy_url)}
        medians = interleaved_medians(
            {
                name: functools.partial(
                    on_fresh_client, clients.get(name, lambda: anonymous_client(proxy_url)), action
                )
                for name, action in parallel.items()
            },
            args.parallel_repeats,
            reset,
        )
        medians["sequential"], _ = median_seconds(
            lambda: on_fresh_client(
                lambda: anonymous_client(proxy_url), lambda c: sequential(c, "bench", "set/", out)
            ),
            args.repeats,
            reset,
        )
        title = f"download, {args.objects} objects, {args.rtt_ms:g} ms injected round trip"
        ours = f"download_dataset(workers={args.workers})"
        library_label = f"transfer_manager.download_many_to_path(threads={args.workers})"
        for label, key in (
            ("sequential blob.download_to_filename", "sequential"),
            (library_label, "library"),
            (f"{library_label}, session reading the environment once", "library_tuned"),
        ):
            report(title, label, medians[key], ours, medians["ours"], args.objects, "objects")


def on_fresh_client(make: Callable[[], Any], action: Callable[[Any], object]) -> None:
    """Runs `action` with a new client, closed after (ours tunes the session it is given)."""
    client = make()
    try:
        action(client)
    finally:
        client.close()


def tuned(url: str):
    """A client whose session reads proxy settings once, as download_dataset sets its own."""
    from src.data.download import read_environment_once

    client = anonymous_client(url)
    read_environment_once(client._http, url)
    return client


if __name__ == "__main__":
    main()
