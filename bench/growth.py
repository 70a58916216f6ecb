"""Throughput and memory as the set grows: 1,000 against 20,000 small objects.

    python -m bench.growth [--small 1000] [--large 20000] [--rtt-ms 20] [--repeats 3]

For each size, a fresh fake-gcs-server (objects on disk, seeded at start-up:
its in-memory store takes longer per read the fuller the bucket is) holds
distinct 96x96 PNGs behind the latency proxy. Each run is a fresh process that
reports its peak resident memory (VmHWM; the cleanse's decoding processes apart):
`download_dataset` (32 workers), transfer_manager's `download_many_to_path` with
the same threads (how the server and network scale, measured alike), and
`cleanse_inputs` on what the download wrote (to 64 px, all cores). Prints each
throughput at the large size as a ratio of the one at the small size (goal:
within 20%) and the memory at both sizes.
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
elif kind == "library":
    from bench.download_parallel import library
    bucket, prefix = sys.argv[5].removeprefix("gs://").split("/", 1)
    library(anonymous_client(url), bucket, prefix, Path(out), 32)
else:
    from src.data.cleanse import CleanseSettings, cleanse_inputs
    from src.data.layout import raw_inputs
    cleanse_inputs(raw_inputs(Path(dest)), Path(out), CleanseSettings(image_size=64))
seconds = time.perf_counter() - started
# VmHWM, not ru_maxrss: that one keeps the launching process's peak across exec.
own = int(Path("/proc/self/status").read_text().split("VmHWM:")[1].split()[0]) / 1024
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print("RESULT " + json.dumps({"seconds": seconds, "own_mb": own, "workers_mb": workers}))
"""


def png(rng: np.random.Generator) -> bytes:
    small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(small).resize((96, 96), Image.Resampling.BILINEAR).save(buffer, "PNG")
    return buffer.getvalue()


def seed(root: Path, prefix: str, count: int) -> None:
    """`count` distinct PNGs as files `root/bench/<prefix>NNNNNN.png`, for the emulator to load."""
    rng = np.random.default_rng(count)
    folder = root / "bench" / prefix
    folder.mkdir(parents=True)
    for index in range(count):
        (folder / f"{index:06d}.png").write_bytes(png(rng))


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
    figures = {
        count: measure(count, args.rtt_ms, args.repeats) for count in (args.small, args.large)
    }
    small, large = figures[args.small], figures[args.large]
    for kind in ("download", "library", "cleanse"):
        print(
            f"{kind}: {small[kind]['rate']:.0f} objects/s at {args.small}, "
            f"{large[kind]['rate']:.0f} at {args.large}: ratio {large[kind]['rate'] / small[kind]['rate']:.2f}; "
            f"peak memory {small[kind]['own_mb']:.0f} MB -> {large[kind]['own_mb']:.0f} MB"
            + (f" (decoding processes {small[kind]['workers_mb']:.0f} -> {large[kind]['workers_mb']:.0f} MB)" if kind == "cleanse" else "")
        )  # fmt: skip


def measure(count: int, rtt_ms: float, repeats: int) -> dict:
    """Medians of rate and peak memory per kind of run, on a fresh emulator holding `count` objects."""
    scratch = Path(tempfile.mkdtemp(prefix="bench-growth-seed-"))
    seed(scratch / "seed", f"set{count}/", count)
    runs: dict[str, list[dict]] = {"download": [], "library": [], "cleanse": []}
    with emulator_behind_proxy(
        "bench-growth-", delay_s=rtt_ms / 2000, seed=scratch / "seed", disk=scratch / "disk"
    ) as (work, _, proxy_url):
        source, dest, out = f"gs://bench/set{count}/", work / "raw", work / "clean"
        for _ in range(repeats):
            for kind in runs:
                shutil.rmtree(out, ignore_errors=True)
                if kind == "download":
                    shutil.rmtree(dest, ignore_errors=True)
                runs[kind].append(child(kind, proxy_url, dest, out, source))
    shutil.rmtree(scratch)
    return {
        kind: {
            "rate": count / statistics.median(r["seconds"] for r in results),
            "own_mb": statistics.median(r["own_mb"] for r in results),
            "workers_mb": statistics.median(r["workers_mb"] for r in results),
        }
        for kind, results in runs.items()
    }


if __name__ == "__main__":
    main()
