"""Download an image set from GCS into a folder, safely, in parallel, with a manifest.

The source is either a prefix of image objects or one archive object
(`.zip`, `.tar`, `.tar.gz`, `.tgz`). Files land under `<dest>/images/`; the
manifest (`<dest>/manifest.json`) is written last, so a folder without it is
never a complete download. A failure clears the folder.
"""

from __future__ import annotations

import base64
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
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, NamedTuple

from google.cloud.storage import Blob

from src.common.atomic_files import write_json_atomically
from src.common.errors import ConfigError
from src.common.gcs_uri import parse_gcs_uri
from src.common.progress import Progress
from src.common.retry import with_retries
from src.data.layout import (
    DISK_ERRNOS,
    MANIFEST_NAME,
    SHARDS_DIR,
    DownloadError,
    OutputWriteError,
    output_write_error,
)
from src.data.safe_names import LocalNames, name_problem, resolve_inside, safe_relative_path
from src.data.shard_writer import ShardWriter
from src.params.schema import PARAMS
from src.params.values import value_problems

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")


@dataclass(frozen=True)
class DownloadLimits:
    """What a source may hold; checked before downloading, and while unpacking archives.

    Archive members are counted as they are written, not by their headers: one
    over `max_member_bytes`, or expanding more than `max_compression_ratio`
    times its packed size (past the first MiB), is dropped and counted.
    """

    max_objects: int = 200_000
    max_bytes: int = 50 * 1024**3
    max_member_bytes: int = 512 * 1024**2
    max_compression_ratio: int = 200
    request_timeout_s: float = 60.0  # per request: a stuck object cannot hold the download
    slice_bytes: int = 32 * 1024**2  # an object over two slices downloads as parallel ranges


STAGING_DIR = ".staging"  # where objects land before packing; never part of the output
MIN_UNREADABLE_ALLOWED = 3  # objects a download may skip as unreadable (or 1%, if more)
RATIO_FLOOR_BYTES = 1024**2  # small members may expand a lot (flat images) without harm


@dataclass(frozen=True)
class ManifestEntry:
    name: str
    path: str
    size: int
    generation: int | None
    md5: str | None
    crc32c: str | None
    renamed: str | None = None  # why `path` is not the object's own name
    shard: str | None = None  # the tar (relative to the dataset) that holds the bytes
    offset: int = 0  # where they start in it


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str


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
    """SHA-256 over names, generations, sizes and checksums: changes when the source does.

    Where the bytes sit in the shards (finishing order) is left out.
    """
    identity = [{k: v for k, v in vars(e).items() if k not in ("shard", "offset")} for e in entries]
    canonical = json.dumps(identity, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _explain_gcs_error(error: Exception, bucket: str, endpoint: str) -> DownloadError | None:
    import requests
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
    if isinstance(
        error, (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError)
    ):
        return DownloadError(
            f"cannot reach {endpoint} to list gs://{bucket} ({type(error).__name__}): check the "
            "network and proxy settings (and STORAGE_EMULATOR_HOST, if you use an emulator)"
        )
    return None


def check_parameters(values: dict[str, Any], client=None) -> None:
    """Every problem with the pipeline's `values` in one ConfigError, before any download.

    Besides each value's own check, every parameter that names an object must name
    one that this step can read (a missing one would fail a later step, hours on).
    """
    problems = value_problems(values)
    for param in PARAMS:
        uri = values.get(param.name)
        if param.names_object and uri and not (param.check and param.check(uri)):
            problems += _object_problem(param.name, uri, client)
    if problems:
        raise ConfigError.from_problems(problems)


def _object_problem(name: str, uri: str, client) -> list[str]:
    if uri.startswith("/"):  # a file on this machine (local runs)
        if os.access(uri, os.R_OK) and Path(uri).is_file():
            return []
        return [f"{name}={uri!r}: no such readable file: correct the path, or leave {name} empty"]
    bucket_name, object_name = parse_gcs_uri(uri, name)
    try:
        client = client or _default_client()
        found = with_retries(
            lambda: client.bucket(bucket_name).get_blob(object_name, retry=None, timeout=60),
            what=f"checking {uri}",
        )
    except DownloadError as error:
        return [f"{name}={uri!r} cannot be checked: {error}"]
    except Exception as error:
        explained = _explain_gcs_error(error, bucket_name, _endpoint(client))
        if explained is None:
            raise
        return [f"{name}={uri!r}: {explained}"]
    if found is None:
        return [
            f"{name}={uri!r}: no such object (or bucket): upload it there or correct the URI, "
            f"or leave {name} empty"
        ]
    return []


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
    """Downloads `source_uri` into `dest` and returns counts and the manifest digest.

    No single object can abort the dataset: one that cannot be stored under its own
    name is renamed, one that cannot be read or unpacked safely is skipped; both are
    counted by reason in the manifest. A source that changes meanwhile fails the run.
    """
    bucket_name, prefix = parse_gcs_uri(source_uri)
    if workers < 1:
        raise ConfigError(f"download_workers={workers} must be at least 1")
    client = client or _default_client()
    read_environment_once(client._http, _endpoint(client))
    started, needed = time.monotonic(), 0
    dest.mkdir(parents=True, exist_ok=True)
    _clear_folder(dest)
    try:
        blobs = _list_blobs(client, bucket_name, prefix, attempts, limits)
        needed = sum(blob.size or 0 for blob in blobs)
        fetch = _Fetcher(attempts, limits)
        with ShardWriter(dest / SHARDS_DIR, needed) as shards:
            if len(blobs) == 1 and blobs[0].name == prefix and is_archive(prefix):
                entries, skipped = _download_archive(blobs[0], dest, limits, fetch, workers)
                entries = _pack(dest, entries, shards)
            else:
                entries, skipped = _download_objects(blobs, prefix, dest, workers, limits, fetch, shards)  # fmt: skip
        digest = manifest_digest(entries)
        write_json_atomically(
            dest / MANIFEST_NAME,
            {
                "source_uri": source_uri,
                "sha256": digest,
                "objects": [vars(e) for e in entries],
                "skipped": [vars(s) for s in skipped],
            },
            indent=None,  # up to max_objects entries
        )
    except OSError as error:
        _clear_folder(dest)
        if error.errno in DISK_ERRNOS:  # ours: reading the source never raises these here
            raise output_write_error(error, error.filename or dest, needed) from error
        raise
    except BaseException:
        _clear_folder(dest)
        raise
    counts = Counter(s.reason for s in skipped) + Counter(e.renamed for e in entries if e.renamed)
    result = DownloadResult(
        source_uri=source_uri,
        object_count=len(entries),
        total_bytes=sum(entry.size for entry in entries),
        manifest_digest=digest,
        seconds=time.monotonic() - started,
        skipped=dict(sorted(counts.items())),
    )
    log.info(
        "downloaded %d objects (%.1f MB) from %s in %.1fs; skipped or renamed %s",
        result.object_count,
        result.total_bytes / 1e6,
        source_uri,
        result.seconds,
        result.skipped or "none",
    )
    return result


def _pack(dest: Path, entries: list[ManifestEntry], shards: ShardWriter) -> list[ManifestEntry]:
    """Moves the unpacked files into tar shards: few files cross the step boundary."""
    staging = dest / STAGING_DIR
    packed = [_placed(e, shards.add(e.path, staging / e.path)) for e in entries]
    shutil.rmtree(staging)
    return packed


def _placed(entry: ManifestEntry, where: tuple[str, int]) -> ManifestEntry:
    return replace(entry, shard=where[0], offset=where[1])


def read_environment_once(session, url: str) -> None:
    """Reads proxy and CA-bundle settings from the environment now, not on every request.

    requests re-reads os.environ twice per request when `trust_env` is on: a third of
    the CPU of each small object's download here, more in a pod's long environment.
    """
    import requests.utils

    session.proxies.update(requests.utils.get_environ_proxies(url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle and session.verify is True:
        session.verify = bundle
    session.trust_env = False


def _default_client():
    """A storage client, or a DownloadError that says how to get credentials."""
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import storage

    try:
        return storage.Client()
    except DefaultCredentialsError as error:
        raise DownloadError(
            "no Google credentials found: locally run `gcloud auth application-default login` "
            "or set GOOGLE_APPLICATION_CREDENTIALS; on Vertex AI or KFP, give the pipeline a "
            f"service account with roles/storage.objectViewer ({error})"
        ) from error


def _endpoint(client) -> str:
    return getattr(getattr(client, "_connection", None), "API_BASE_URL", "the storage endpoint")


class Listed(NamedTuple):
    """What the download keeps of a listed object (a Blob keeps its whole JSON resource)."""

    name: str
    size: int | None
    generation: int | None
    md5_hash: str | None
    crc32c: str | None
    bucket: Any


def _list_blobs(
    client, bucket_name: str, prefix: str, attempts: int, limits: DownloadLimits
) -> list[Listed]:
    def listing() -> list:
        # retry=None: the library's own policy retries a dead endpoint for 120 s.
        pages = client.list_blobs(
            bucket_name, prefix=prefix, retry=None, timeout=limits.request_timeout_s
        )
        return [Listed(b.name, b.size, b.generation, b.md5_hash, b.crc32c, b.bucket) for b in pages]

    try:
        blobs = with_retries(
            listing, what=f"listing gs://{bucket_name}/{prefix}", attempts=attempts
        )
    except Exception as error:
        explained = _explain_gcs_error(error, bucket_name, _endpoint(client))
        if explained is None:
            raise
        raise explained from error
    markers = {blob.name for blob in blobs if blob.name.endswith("/") and not blob.size}
    blobs = [blob for blob in blobs if blob.name not in markers]  # the consoles' empty "folders"
    if not blobs and markers:
        raise DownloadError(
            f"gs://{bucket_name}/{prefix} holds only empty folder markers "
            f"({', '.join(sorted(markers)[:3])}): the listing is recursive and found no file "
            "below them; upload the images there first"
        )
    if not blobs:
        raise DownloadError(
            f"no objects under gs://{bucket_name}/{prefix}: check the prefix (names are "
            "case-sensitive) or upload the images first"
        )
    return sorted(blobs, key=lambda blob: blob.name)


def _select_objects(
    blobs: list, prefix: str
) -> tuple[list[tuple[Any, PurePosixPath, str | None]], list[Skipped]]:
    """Image objects with their local paths (and why one was renamed), and what is skipped."""
    selected, skipped, names = [], [], LocalNames()
    folder_prefix = prefix if prefix.endswith("/") else prefix.rsplit("/", 1)[0] + "/"
    for blob in blobs:
        relative = _usable_image_path(blob.name, blob.name.removeprefix(folder_prefix), skipped)
        if relative is not None:
            selected.append((blob, *names.place(relative)))
    return selected, skipped


def _usable_image_path(
    name: str, relative_name: str, skipped: list[Skipped]
) -> PurePosixPath | None:
    """The safe relative path of an image; None (and the reason added to `skipped`) otherwise."""
    problem = name_problem(relative_name)
    if name.endswith("/"):  # an object with content under a folder's name
        skipped.append(Skipped(name, "folder_name_with_data"))
        log.warning("skipping %r: a name ending in / cannot be a file; rename the object", name)
    elif problem:
        skipped.append(Skipped(name, "unsafe_name"))
        log.warning("skipping %r: its name %s", name, problem)
    elif not has_image_extension(name):
        skipped.append(Skipped(name, "not_image_extension"))
    else:
        return safe_relative_path(relative_name)
    return None


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


class _Fetcher:
    """Reads exactly the listed version of an object, with retries and a request timeout.

    The bytes must match the listing's checksum: GCS answers 404 for a replaced
    generation, and a server that ignores generations (an emulator, a cache) would
    otherwise hand over new content under the old manifest entry.
    """

    def __init__(self, attempts: int, limits: DownloadLimits) -> None:
        self.attempts, self.timeout_s = attempts, limits.request_timeout_s
        self.slice_bytes = limits.slice_bytes

    def read(self, blob) -> bytes:
        """The listed generation's bytes, from memory (no file to write, rename and read back)."""
        pinned = _pinned(blob)
        data = self._guarded(blob, lambda: pinned.download_as_bytes(retry=None, timeout=self.timeout_s))  # fmt: skip
        if not _matches_listing(blob, pinned, lambda: (data,)):
            raise self._changed(blob)
        return data

    def __call__(self, blob, path: Path, workers: int = 1) -> None:
        """Downloads `blob`'s listed generation to `path`; large objects in parallel slices."""
        pinned = _pinned(blob)
        if workers > 1 and (blob.size or 0) > 2 * self.slice_bytes:
            # What the joined slices are checked against; without it the library reloads.
            pinned._properties.update(size=str(blob.size), crc32c=blob.crc32c)
            self._guarded(blob, functools.partial(self._slices, pinned, path, workers))
            return
        self._guarded(blob, functools.partial(pinned.download_to_filename, str(path), retry=None, timeout=self.timeout_s))  # fmt: skip
        if not _matches_listing(blob, pinned, functools.partial(_chunks, path)):
            raise self._changed(blob)

    def _guarded(self, blob, download: Callable[[], Any]) -> Any:
        """Runs `download` with retries; a vanished generation or mismatched slices say "changed"."""
        from google.api_core import exceptions as api_exceptions
        from google.cloud.storage.exceptions import DataCorruption

        try:
            return with_retries(download, what=f"download of {blob.name}", attempts=self.attempts)
        except (api_exceptions.NotFound, DataCorruption) as error:
            raise self._changed(blob) from error

    def _slices(self, pinned, path: Path, workers: int) -> None:
        """Byte ranges on `workers` connections; their joined CRC32C must match the listing's."""
        from google.cloud.storage import transfer_manager

        transfer_manager.download_chunks_concurrently(
            pinned,
            str(path),
            chunk_size=self.slice_bytes,
            download_kwargs={"timeout": self.timeout_s},
            worker_type=transfer_manager.THREAD,
            max_workers=workers,
            crc32c_checksum=True,
        )

    @staticmethod
    def _changed(blob) -> DownloadError:
        return DownloadError(
            f"gs://{blob.bucket.name}/{blob.name} changed while downloading (generation "
            f"{blob.generation} is gone): the source must stay unchanged during a run; rerun "
            "once uploads to it have finished"
        )


def _pinned(blob) -> Blob:
    """The listed version, addressed by name (its media link names the server, not our route)."""
    return blob.bucket.blob(blob.name, generation=blob.generation)


def _chunks(path: Path):
    with open(path, "rb") as handle:
        while chunk := handle.read(1024**2):
            yield chunk


def _matches_listing(listed, served, chunks: Callable[[], Any]) -> bool:
    """The served object is the listed one: same MD5 (or CRC32C) as the listing.

    The client has already checked the body against the hash the server sent
    (`served`, from X-Goog-Hash); only without one are the bytes hashed here.
    """
    for checksum in ("md5_hash", "crc32c"):
        expected, got = getattr(listed, checksum), getattr(served, checksum)
        if expected and got:
            return expected == got
    if listed.md5_hash:
        digest, expected = hashlib.md5(usedforsecurity=False), listed.md5_hash
    elif listed.crc32c:
        import google_crc32c

        digest, expected = google_crc32c.Checksum(), listed.crc32c
    else:
        return True
    for chunk in chunks():
        digest.update(chunk)
    return base64.b64encode(digest.digest()).decode() == expected


IN_MEMORY_BYTES = 16 * 1024**2  # a larger object goes through a staging file, not memory


def _download_objects(
    blobs: list,
    prefix: str,
    dest: Path,
    workers: int,
    limits: DownloadLimits,
    fetch: _Fetcher,
    shards: ShardWriter,
) -> tuple[list[ManifestEntry], list[Skipped]]:
    """Downloads the image objects through transfer_manager's thread pool, each pinned and checked."""
    from google.cloud.storage import transfer_manager

    selected, skipped = _select_objects(blobs, prefix)
    if not selected:
        examples = ", ".join(blob.name for blob in blobs[:3])
        raise DownloadError(
            f"none of the {len(blobs)} objects under the prefix is an image (e.g. {examples}): "
            f"images need one of {', '.join(sorted(IMAGE_EXTENSIONS))}, or point the source "
            "at a single .zip/.tar/.tar.gz archive"
        )
    _check_limits(len(selected), sum(b.size or 0 for b, _, _ in selected), limits, "the prefix")
    progress = Progress("download", total=len(selected), unit="objects", logger=log)
    (dest / STAGING_DIR).mkdir()
    jobs = [_PinnedJob(blob, relative.as_posix(), fetch, shards, progress) for blob, relative, _ in selected]  # fmt: skip
    outcomes = transfer_manager.download_many(
        [(job, str(dest / STAGING_DIR / str(n))) for n, job in enumerate(jobs)],
        worker_type=transfer_manager.THREAD,
        max_workers=workers,
    )
    entries: list[ManifestEntry] = []
    for (blob, relative, renamed), job, outcome in zip(selected, jobs, outcomes, strict=True):
        if isinstance(outcome, (DownloadError, OutputWriteError)):
            raise outcome
        if isinstance(outcome, Exception):
            log.warning("skipping %s: it could not be read (%s)", blob.name, outcome)
            skipped.append(Skipped(blob.name, "unreadable"))
            continue
        entry = ManifestEntry(
            name=blob.name,
            path=relative.as_posix(),
            size=blob.size,
            generation=blob.generation,
            md5=blob.md5_hash,
            crc32c=blob.crc32c,
            renamed=renamed,
        )
        entries.append(_placed(entry, job.placed))
    shutil.rmtree(dest / STAGING_DIR)
    unreadable = sum(s.reason == "unreadable" for s in skipped)
    allowed = max(MIN_UNREADABLE_ALLOWED, len(selected) // 100)
    if unreadable > allowed or not entries:
        raise DownloadError(
            f"{unreadable} of {len(selected)} objects could not be read (more than {allowed}; "
            f"e.g. {next(s.name for s in skipped if s.reason == 'unreadable')}): the source or "
            "the network is failing; rerun later"
        )
    return entries, sorted(skipped, key=lambda s: s.name)


class _PinnedJob(Blob):
    """One listed object version, as transfer_manager's workers see it.

    `download_many` calls `_handle_filename_and_download(filename, **kwargs)` on each
    Blob it is given (google-cloud-storage 3.x): here that is our fetch (pinned
    generation, retries, timeout, checksum against the listing), the append to a
    shard, and progress, so the library runs the pool and nothing of ours is lost.
    `filename` is a staging path, used only by objects too large to hold in memory.
    """

    def __init__(self, listed, relative: str, fetch: _Fetcher, shards: ShardWriter, progress: Progress) -> None:  # fmt: skip
        super().__init__(listed.name, bucket=listed.bucket, generation=listed.generation)
        self.listed, self.relative, self.fetch = listed, relative, fetch
        self.shards, self.progress = shards, progress
        self.placed: tuple[str, int] | None = None

    def _handle_filename_and_download(self, filename: str, *_: Any, **__: Any) -> None:
        try:
            if self.shards.failed:
                raise self.shards.failed  # our disk is full: read nothing more
            if (self.listed.size or 0) <= IN_MEMORY_BYTES:
                self.placed = self.shards.add(self.relative, self.fetch.read(self.listed))
            else:
                self.fetch(self.listed, Path(filename))
                self.placed = self.shards.add(self.relative, Path(filename))
                os.unlink(filename)
        except OSError as error:
            if error.errno in DISK_ERRNOS:  # writing the staging file
                raise output_write_error(error, filename, self.shards.needed) from error
            raise
        finally:
            self.progress.advance()


def _download_archive(
    blob, dest: Path, limits: DownloadLimits, fetch: _Fetcher, workers: int
) -> tuple[list[ManifestEntry], list[Skipped]]:
    archive_path = dest / ".archive.part"
    fetch(blob, archive_path, workers)
    images_root = dest / STAGING_DIR
    images_root.mkdir(parents=True, exist_ok=True)
    try:
        entries, skipped = _extract_archive(archive_path, images_root, limits, blob)
    finally:
        archive_path.unlink(missing_ok=True)
    if not entries:
        raise DownloadError(
            f"archive gs://{blob.bucket.name}/{blob.name} holds no usable images with a known "
            f"extension ({', '.join(sorted(IMAGE_EXTENSIONS))}); skipped: "
            f"{dict(Counter(s.reason for s in skipped))}"
        )
    return entries, skipped


@dataclass(frozen=True)
class ArchiveMember:
    """One file in a zip or tar archive, whatever the format."""

    name: str
    packed_size: int | None  # None where the format compresses the whole stream (tar.gz)
    is_link_or_special: bool
    crc32: str | None
    open: Callable[[], BinaryIO]


def _zip_members(archive: zipfile.ZipFile) -> list[ArchiveMember]:
    return [
        ArchiveMember(
            name=info.filename,
            packed_size=info.compress_size,
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
            packed_size=None,
            is_link_or_special=not member.isreg(),
            crc32=None,
            open=functools.partial(archive.extractfile, member),
        )
        for member in archive.getmembers()
        if not member.isdir()
    ]


class _MemberRefused(Exception):
    """An archive member broke a limit while it was being written; the reason is the message."""


def _copy_member(member: ArchiveMember, target: Path, limits: DownloadLimits, budget: int) -> int:
    """Streams a member to `target`, counting real bytes; refuses it the moment it breaks a cap."""
    written, chunk_size = 0, 1024**2
    with member.open() as source, open(target, "wb") as sink:
        while chunk := source.read(chunk_size):
            written += len(chunk)
            if written > budget:
                raise DownloadError(
                    f"the archive unpacks to more than max_bytes={limits.max_bytes}: raise the "
                    "limit or split the archive"
                )
            if written > limits.max_member_bytes:
                raise _MemberRefused("member_too_large")
            packed = member.packed_size
            if (
                packed
                and written > RATIO_FLOOR_BYTES
                and written > packed * limits.max_compression_ratio
            ):
                raise _MemberRefused("compression_ratio")
            sink.write(chunk)
    return written


def _extract_members(
    members: list[ArchiveMember], root: Path, limits: DownloadLimits, blob
) -> tuple[list[ManifestEntry], list[Skipped]]:
    """Writes the safe image members below root; what is refused is counted, never written."""
    skipped: list[Skipped] = []
    chosen: list[tuple[ArchiveMember, PurePosixPath]] = []
    for member in members:
        if member.is_link_or_special:
            skipped.append(Skipped(member.name, "link_or_special"))
        elif (relative := _usable_image_path(member.name, member.name, skipped)) is not None:
            chosen.append((member, relative))
    _check_limits(len(chosen), 0, limits, "the archive")
    entries, names, budget = [], LocalNames(), limits.max_bytes
    for member, relative in sorted(chosen, key=lambda item: item[1].as_posix()):
        if relative.as_posix() in names.files:
            skipped.append(Skipped(member.name, "duplicate_member"))
            continue
        local, renamed = names.place(relative)
        target = resolve_inside(root, local)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            size = _copy_member(member, target, limits, budget)
        except _MemberRefused as refused:
            target.unlink(missing_ok=True)
            skipped.append(Skipped(member.name, str(refused)))
            log.warning("skipping archive member %r: %s", member.name, refused)
            continue
        budget -= size
        entries.append(
            ManifestEntry(
                name=f"{blob.name}!{member.name}",
                path=local.as_posix(),
                size=size,
                generation=blob.generation,
                md5=None,
                crc32c=member.crc32,
                renamed=renamed,
            )
        )
    return entries, skipped


def _extract_archive(path: Path, root: Path, limits: DownloadLimits, blob) -> tuple[list[ManifestEntry], list[Skipped]]:  # fmt: skip
    if blob.name.lower().endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            return _extract_members(_zip_members(archive), root, limits, blob)
    with tarfile.open(path, mode="r:*") as archive:
        return _extract_members(_tar_members(archive), root, limits, blob)
