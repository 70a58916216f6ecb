"""What a Dataset costs to cross a step boundary: one file per image against the packed layout.

    python -m bench.artifact_boundary [--images 10000] [--rtt-ms 2] [--repeats 3]

Models an open-source KFP backend, whose launcher uploads an output artifact
folder one file at a time after the step and the next step's launcher downloads
it the same way (kubeflow/pipelines backend/src/v2/objectstore/object_store.go,
UploadBlob / DownloadBlob): sequential uploads, one listing, sequential
downloads, with google-cloud-storage against fake-gcs-server behind the latency
proxy that adds the round trip. Baseline: the downloaded set as one file per
image (the old layout). Candidate: the same images as the download step now
writes them, tar shards plus the manifest (src/data/layout.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from bench.common import emulator_behind_proxy, median_seconds, report
from src.backends.emulator import anonymous_client
from src.data.layout import MANIFEST_NAME, SHARDS_DIR
from src.data.shard_writer import pack_shards

PAYLOAD = (Path(__file__).resolve().parents[1] / "data" / "sample" / "digit_001.png").read_bytes()


def per_image_set(root: Path, count: int) -> None:
    for index in range(count):
        path = root / "images" / f"{index // 1000:02d}" / f"{index:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(PAYLOAD + index.to_bytes(4, "big"))
    (root / MANIFEST_NAME).write_text("{}")


def packed_set(per_image: Path, root: Path) -> None:
    images = per_image / "images"
    relatives = sorted(p.relative_to(images).as_posix() for p in images.rglob("*.png"))
    placed = pack_shards(images, relatives, root / SHARDS_DIR)
    objects = [
        {"path": r, "shard": s, "offset": o} for r, (s, o) in zip(relatives, placed, strict=True)
    ]
    (root / MANIFEST_NAME).write_text(json.dumps({"objects": objects}))


def cross(client, bucket: str, folder: Path, prefix: str, into: Path) -> int:
    """Sequential upload of every file, one listing, sequential download: returns the file count."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    target = client.bucket(bucket)
    for path in files:
        target.blob(prefix + path.relative_to(folder).as_posix()).upload_from_filename(str(path))
    for blob in client.list_blobs(bucket, prefix=prefix):
        local = into / blob.name.removeprefix(prefix)
        local.parent.mkdir(parents=True, exist_ok=True)
        blob.download_to_filename(str(local))
    return len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--rtt-ms", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with emulator_behind_proxy("bench-boundary-", delay_s=args.rtt_ms / 2000) as (
        work,
        server,
        proxy_url,
    ):
        per_image_set(work / "per_image", args.images)
        packed_set(work / "per_image", work / "packed")
        client = anonymous_client(proxy_url)
        runs = iter(range(10**6))
        into = work / "into"
        reset = lambda: shutil.rmtree(into, ignore_errors=True)  # noqa: E731

        def fresh_bucket() -> str:  # the emulator slows down as a bucket fills up
            name = f"bench-{next(runs)}"
            server.client().create_bucket(name)
            return name

        def timed(layout: str) -> float:
            buckets = iter([fresh_bucket() for _ in range(args.repeats)])
            seconds, _ = median_seconds(
                lambda: cross(client, next(buckets), work / layout, f"{layout}/", into),
                args.repeats,
                reset,
            )
            return seconds

        counts = {n: sum(1 for p in (work / n).rglob("*") if p.is_file()) for n in ("per_image", "packed")}  # fmt: skip
        baseline, candidate = timed("per_image"), timed("packed")
        report(
            f"Dataset boundary (upload + download, sequential, {args.rtt_ms:g} ms round trip), "
            f"{args.images} images: {counts['per_image']} files vs {counts['packed']}",
            "one file per image",
            baseline,
            "tar shards + manifest",
            candidate,
            args.images,
            "images",
        )


if __name__ == "__main__":
    main()
