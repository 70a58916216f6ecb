"""Throughput and memory as the set grows: 1,000 against 20,000 small objects.

    python -m bench.growth [--small 1000] [--large 20000] [--rtt-ms 20] [--repeats 3]

Uploads distinct 96x96 PNGs to fake-gcs-server, then for each size times
`download_dataset` (through the loopback proxy adding the round trip, 32
workers) and `cleanse_inputs` on what it wrote (to 64 px, all cores), each in a
fresh process that reports its peak resident memory (the cleanse's decoding
processes counted apart). Prints each throughput at 20,000 as a ratio of the one
at 1,000 (goal: within 20%) and the memory at both sizes.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from bench.common import ROOT, emulator_behind_proxy

CHILD = """
import json, resource, sys, time
from pathlib import Path
from src.backends.emulator import anonymous_client
kind, url, dest, out = sys.argv[1:5]
started = time.perf_counter()
if kind == "download":
    from src.data.download import download_dataset
    download_dataset(sys.argv[5], Path(dest), client=anonymous_client(url), workers=32)
else:
    from src.data.cleanse import CleanseSettings, cleanse_inputs
    from src.data.layout import raw_inputs
    cleanse_inputs(raw_inputs(Path(dest)), Path(out), CleanseSettings(image_size=64))
seconds = time.perf_counter() - started
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print("RESULT " + json.dumps({"seconds": seconds, "own_mb": own, "workers_mb": workers}))
"""


def png(rng: np.random.Generator) -> bytes:
    small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(small).resize((96, 96), Image.Resampling.BILINEAR).save(buffer, "PNG")
    return buffer.getvalue()


def upload(client, prefix: str, count: int) -> None:
    from google.cloud.storage import transfer_manager

    rng = np.random.default_rng(count)
    folder = Path(tempfile.mkdtemp(prefix="growth-src-"))
    for index in range(count):
        (folder / f"{index:06d}.png").write_bytes(png(rng))
    names = sorted(p.name for p in folder.iterdir())
    transfer_manager.upload_many_from_filenames(
        client.bucket("bench"), names, source_directory=str(folder), blob_name_prefix=prefix,
        worker_type=transfer_manager.THREAD, max_workers=32, raise_exception=True,
    )  # fmt: skip
    shutil.rmtree(folder)


def child(kind: str, url: str, dest: Path, out: Path, source: str = "") -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, kind, url, str(dest), str(out), source],
        capture_output=True, text=True, cwd=ROOT, check=True,
    )  # fmt: skip
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=20_000)
    parser.add_argument("--rtt-ms", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with emulator_behind_proxy("bench-growth-", delay_s=args.rtt_ms / 2000) as (
        work,
        server,
        proxy_url,
    ):
        client = server.client()
        client.create_bucket("bench")
        figures = {}
        for count in (args.small, args.large):
            upload(client, f"set{count}/", count)
            runs = {"download": [], "cleanse": []}
            for _ in range(args.repeats):
                dest, out = work / "raw", work / "clean"
                shutil.rmtree(dest, ignore_errors=True)
                shutil.rmtree(out, ignore_errors=True)
                runs["download"].append(
                    child("download", proxy_url, dest, out, f"gs://bench/set{count}/")
                )
                runs["cleanse"].append(child("cleanse", proxy_url, dest, out))
            figures[count] = {
                kind: {
                    "rate": count / statistics.median(r["seconds"] for r in results),
                    "own_mb": statistics.median(r["own_mb"] for r in results),
                    "workers_mb": statistics.median(r["workers_mb"] for r in results),
                }
                for kind, results in runs.items()
            }
        small, large = figures[args.small], figures[args.large]
        for kind in ("download", "cleanse"):
            print(
                f"{kind}: {small[kind]['rate']:.0f} objects/s at {args.small}, "
                f"{large[kind]['rate']:.0f} at {args.large}: ratio {large[kind]['rate'] / small[kind]['rate']:.2f}; "
                f"peak memory {small[kind]['own_mb']:.0f} MB -> {large[kind]['own_mb']:.0f} MB "
                f"(decoding processes {small[kind]['workers_mb']:.0f} -> {large[kind]['workers_mb']:.0f} MB)"
            )  # fmt: skip


if __name__ == "__main__":
    main()
