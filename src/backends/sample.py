"""The bundled sample set (data/sample) and how it is served from the local emulator."""

from __future__ import annotations

from pathlib import Path

from src.params.schema import SAMPLE_SOURCE

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "sample"
SAMPLE_BUCKET, SAMPLE_PREFIX = SAMPLE_SOURCE.removeprefix("gs://").split("/", 1)


def upload_folder(client, folder: Path, bucket_name: str, prefix: str) -> int:
    """Uploads every file below `folder` to gs://bucket/prefix, keeping relative paths."""
    bucket = client.bucket(bucket_name)
    if not bucket.exists():
        bucket = client.create_bucket(bucket_name)
    count = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        bucket.blob(prefix + path.relative_to(folder).as_posix()).upload_from_filename(str(path))
        count += 1
    return count


def upload_sample(client) -> int:
    """Puts the sample set where SAMPLE_SOURCE points."""
    return upload_folder(client, SAMPLE_DIR, SAMPLE_BUCKET, SAMPLE_PREFIX)
