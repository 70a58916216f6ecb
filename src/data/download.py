"""Download an image set from GCS into a folder, safely, in parallel, with a manifest.

The source is either a prefix of image objects or one archive object
(`.zip`, `.tar`, `.tar.gz`, `.tgz`). Files land under `<dest>/images/`; the
manifest (`<dest>/manifest.json`) is written last, so a folder without it is
never a complete download. A failure clears the folder.
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import json
import logging
import os
import shutil
import stat
import tarfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from src.common.atomic_files import write_json_atomically
from src.common.errors import ConfigError
from src.common.gcs_uri import parse_gcs_uri
from src.common.progress import Progress
from src.common.retry import with_retries
from src.data.layout import IMAGES_DIR, MANIFEST_NAME, DownloadError
from src.data.safe_names import resolve_inside, safe_relative_path

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


@dataclass(frozen=True)
class DownloadLimits:
    """Refuse sources larger than this before downloading anything."""

    max_objects: int = 200_000
    max_bytes: int = 50 * 1024**3


@dataclass(frozen=True)
class ManifestEntry:
    name: str
    path: str
    size: int
    generation: int | None
    md5: str | None
    crc32c: str | None


@dataclass
class DownloadResult:
    source_uri: str
    object_count: int
    total_bytes: int
    manifest_digest: str
    seconds: float
    skipped: dict[str, int] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        """Flat values for the Dataset artifact's metadata."""
        return {
            "source_uri": self.source_uri,
            "object_count": self.object_count,
            "total_bytes": self.total_bytes,
            "manifest_sha256": self.manifest_digest,
            "skipped": dict(self.skipped),
        }


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def has_image_extension(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in IMAGE_EXTENSIONS


def manifest_digest(entries: list[ManifestEntry]) -> str:
    """SHA-256 over names, generations, sizes and checksums: changes when the source does."""
    canonical = json.dumps([asdict(entry) for entry in entries], sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _explain_gcs_error(error: Exception, bucket: str) -> DownloadError | None:
    from google.api_core import exceptions as api_exceptions

    if isinstance(error, api_exceptions.NotFound):
        return DownloadError(
            f"bucket gs://{bucket} not found: check the bucket name in source_uri "
            "(and the project it lives in)"
        )
    if isinstance(error, (api_exceptions.Forbidden, api_exceptions.Unauthorized)):
        return DownloadError(
            f"permission denied reading gs://{bucket}: grant the pipeline's service account "
            "roles/storage.objectViewer on the bucket (it needs storage.objects.list and "
            f"storage.objects.get). Details: {error}"
        )
    return None


def _clear_folder(folder: Path) -> None:
    if folder.exists():
        for child in folder.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()


def download_dataset(
    source_uri: str,
    dest: Path,
    *,
    client=None,
    workers: int = 32,
    limits: DownloadLimits = DownloadLimits(),
    attempts: int = 5,
) -> DownloadResult:
    """Downloads `source_uri` into `dest` and returns counts and the manifest digest."""
    bucket_name, prefix = parse_gcs_uri(source_uri)
    if workers < 1:
        raise ConfigError(f"download_workers={workers} must be at least 1")
    if client is None:
        from google.cloud import storage

        client = storage.Client()
    started = time.monotonic()
    dest.mkdir(parents=True, exist_ok=True)
    _clear_folder(dest)
    try:
        blobs = _list_blobs(client, bucket_name, prefix, attempts)
        if len(blobs) == 1 and blobs[0].name == prefix and is_archive(prefix):
            entries, skipped = _download_archive(blobs[0], dest, limits, attempts)
        else:
            entries, skipped = _download_objects(blobs, prefix, dest, workers, limits, attempts)
        digest = manifest_digest(entries)
        write_json_atomically(
            dest / MANIFEST_NAME,
            {
                "source_uri": source_uri,
                "sha256": digest,
                "objects": [asdict(e) for e in entries],
            },
        )
    except BaseException:
        _clear_folder(dest)
        raise
    result = DownloadResult(
        source_uri=source_uri,
        object_count=len(entries),
        total_bytes=sum(entry.size for entry in entries),
        manifest_digest=digest,
        seconds=time.monotonic() - started,
        skipped=dict(skipped),
    )
    log.info(
        "downloaded %d objects (%.1f MB) from %s in %.1fs; skipped %s",
        result.object_count,
        result.total_bytes / 1e6,
        source_uri,
        result.seconds,
        dict(skipped) or "none",
    )
    return result


def _list_blobs(client, bucket_name: str, prefix: str, attempts: int) -> list:
    def listing() -> list:
        return list(client.list_blobs(bucket_name, prefix=prefix))

    try:
        blobs = with_retries(
            listing, what=f"listing gs://{bucket_name}/{prefix}", attempts=attempts
        )
    except Exception as error:
        explained = _explain_gcs_error(error, bucket_name)
        if explained:
            raise explained from error
        raise
    blobs = [blob for blob in blobs if not blob.name.endswith("/")]
    if not blobs:
        raise DownloadError(
            f"no objects under gs://{bucket_name}/{prefix}: check the prefix (names are "
            "case-sensitive) or upload the images first"
        )
    return sorted(blobs, key=lambda blob: blob.name)


def _select_objects(blobs: list, prefix: str) -> tuple[list[tuple[Any, PurePosixPath]], Counter]:
    selected: list[tuple[Any, PurePosixPath]] = []
    skipped: Counter = Counter()
    folder_prefix = prefix if prefix.endswith("/") else prefix.rsplit("/", 1)[0] + "/"
    for blob in blobs:
        relative_name = blob.name.removeprefix(folder_prefix)
        relative = safe_relative_path(relative_name)
        if relative is None:
            skipped["unsafe_name"] += 1
            log.warning("skipping object with an unsafe name: %r", blob.name)
        elif not has_image_extension(blob.name):
            skipped["not_image_extension"] += 1
        else:
            selected.append((blob, relative))
    return selected, skipped


def _check_limits(count: int, total_bytes: int, limits: DownloadLimits, what: str) -> None:
    if count > limits.max_objects:
        raise DownloadError(
            f"{what} holds {count} images, above max_objects={limits.max_objects}: raise the "
            "limit or point the source at a smaller prefix"
        )
    if total_bytes > limits.max_bytes:
        raise DownloadError(
            f"{what} holds {total_bytes / 1e9:.2f} GB, above max_bytes={limits.max_bytes}: raise "
            "the limit or point the source at a smaller prefix"
        )


def _download_objects(
    blobs: list,
    prefix: str,
    dest: Path,
    workers: int,
    limits: DownloadLimits,
    attempts: int,
) -> tuple[list[ManifestEntry], Counter]:
    selected, skipped = _select_objects(blobs, prefix)
    if not selected:
        examples = ", ".join(blob.name for blob in blobs[:3])
        raise DownloadError(
            f"none of the {len(blobs)} objects under the prefix is an image (e.g. {examples}): "
            f"images need one of {', '.join(sorted(IMAGE_EXTENSIONS))}, or point the source "
            "at a single .zip/.tar/.tar.gz archive"
        )
    _check_limits(len(selected), sum(blob.size or 0 for blob, _ in selected), limits, "the prefix")
    images_root = dest / IMAGES_DIR
    images_root.mkdir(parents=True, exist_ok=True)
    progress = Progress("download", total=len(selected), unit="objects", logger=log)

    def fetch(item: tuple[Any, PurePosixPath]) -> ManifestEntry:
        blob, relative = item
        target = resolve_inside(images_root, relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        _download_listed_generation(blob, partial, attempts)
        os.replace(partial, target)
        return ManifestEntry(
            name=blob.name,
            path=relative.as_posix(),
            size=target.stat().st_size,
            generation=blob.generation,
            md5=blob.md5_hash,
            crc32c=blob.crc32c,
        )

    entries: list[ManifestEntry] = []
    _widen_connection_pool(blobs[0].client, workers)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for entry in pool.map(fetch, selected):
            entries.append(entry)
            progress.advance(extra=f"{sum(e.size for e in entries) / 1e6:.1f} MB")
    return entries, skipped


def _download_listed_generation(blob, path: Path, attempts: int) -> None:
    """Fetches exactly the generation that was listed, retrying transient failures."""
    pinned = blob.bucket.blob(blob.name, generation=blob.generation)
    with_retries(
        lambda: pinned.download_to_filename(str(path), retry=None),
        what=f"download of {blob.name}",
        attempts=attempts,
    )


def _widen_connection_pool(client, workers: int) -> None:
    """requests keeps 10 connections per host by default; let each worker have one."""
    import requests

    session = getattr(client, "_http", None)
    if isinstance(session, requests.Session):
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=max(workers, 10))
        session.mount("https://", adapter)
        session.mount("http://", adapter)


def _download_archive(
    blob, dest: Path, limits: DownloadLimits, attempts: int
) -> tuple[list[ManifestEntry], Counter]:
    archive_path = dest / ".archive.part"
    _download_listed_generation(blob, archive_path, attempts)
    images_root = dest / IMAGES_DIR
    images_root.mkdir(parents=True, exist_ok=True)
    try:
        entries, skipped = _extract_archive(archive_path, images_root, limits, blob)
    finally:
        archive_path.unlink(missing_ok=True)
    if not entries:
        raise DownloadError(
            f"archive gs://{blob.bucket.name}/{blob.name} holds no images with a known "
            f"extension ({', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    return entries, skipped


def _archive_entry(blob, relative: PurePosixPath, size: int, crc: str | None) -> ManifestEntry:
    return ManifestEntry(
        name=f"{blob.name}!{relative.as_posix()}",
        path=relative.as_posix(),
        size=size,
        generation=blob.generation,
        md5=None,
        crc32c=crc,
    )


@dataclass(frozen=True)
class ArchiveMember:
    """One file in a zip or tar archive, whatever the format."""

    name: str
    size: int
    is_link_or_special: bool
    crc32: str | None
    open: Callable[[], BinaryIO]


def _zip_members(archive: zipfile.ZipFile) -> list[ArchiveMember]:
    return [
        ArchiveMember(
            name=info.filename,
            size=info.file_size,
            is_link_or_special=stat.S_ISLNK(info.external_attr >> 16),
            crc32=f"{info.CRC:08x}",
            open=functools.partial(archive.open, info),
        )
        for info in archive.infolist()
        if not info.is_dir()
    ]


def _tar_members(archive: tarfile.TarFile) -> list[ArchiveMember]:
    return [
        ArchiveMember(
            name=member.name,
            size=member.size,
            is_link_or_special=not member.isreg(),
            crc32=None,
            open=functools.partial(archive.extractfile, member),
        )
        for member in archive.getmembers()
        if not member.isdir()
    ]


def _extract_members(
    members: list[ArchiveMember], root: Path, limits: DownloadLimits, blob
) -> tuple[list[ManifestEntry], Counter]:
    """Writes the safe image members below root; links, unsafe names and non-images are counted."""
    skipped: Counter = Counter()
    chosen: list[tuple[ArchiveMember, PurePosixPath]] = []
    for member in members:
        relative = safe_relative_path(member.name)
        if member.is_link_or_special:
            skipped["link_or_special"] += 1
        elif relative is None:
            skipped["unsafe_name"] += 1
            log.warning("skipping archive member with an unsafe name: %r", member.name)
        elif not has_image_extension(member.name):
            skipped["not_image_extension"] += 1
        else:
            chosen.append((member, relative))
    _check_limits(len(chosen), sum(m.size for m, _ in chosen), limits, "the archive")
    entries = []
    for member, relative in sorted(chosen, key=lambda item: item[1].as_posix()):
        target = resolve_inside(root, relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        with member.open() as source, open(target, "wb") as sink:
            shutil.copyfileobj(source, sink)
        entries.append(_archive_entry(blob, relative, member.size, member.crc32))
    return entries, skipped


def _extract_archive(path: Path, root: Path, limits: DownloadLimits, blob) -> tuple[list[ManifestEntry], Counter]:  # fmt: skip
    if blob.name.lower().endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            return _extract_members(_zip_members(archive), root, limits, blob)
    with tarfile.open(path, mode="r:*") as archive:
        return _extract_members(_tar_members(archive), root, limits, blob)
