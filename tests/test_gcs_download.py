"""Download from the GCS emulator: layout, manifest, archives, safety, limits, faults."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from devtools.http_proxy import HttpProxy
from src.backends.emulator import GcsEmulator, anonymous_client
from src.data.download import DownloadLimits, download_dataset
from src.data.layout import DownloadError, require_complete
from tests.support.datasets import dataset_files, shard_members

PNG = (Path(__file__).resolve().parents[1] / "data" / "sample" / "digit_001.png").read_bytes()


def test_prefix_download_writes_images_and_manifest(fresh_bucket, gcs_client, tmp_path):
    for name in ("set/a.png", "set/sub/b.JPG", "set/readme.txt"):
        fresh_bucket.blob(name).upload_from_string(PNG)
    result = download_dataset(f"gs://{fresh_bucket.name}/set/", tmp_path / "ds", client=gcs_client)
    assert dataset_files(tmp_path / "ds") == {"images/a.png", "images/sub/b.JPG", "manifest.json"}
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert [o["name"] for o in manifest["objects"]] == ["set/a.png", "set/sub/b.JPG"]
    assert all(
        o["generation"] and o["crc32c"] and o["md5"] and o["size"] == len(PNG)
        for o in manifest["objects"]
    )
    assert result.skipped == {"not_image_extension": 1}
    assert result.metadata()["manifest_sha256"] == manifest["sha256"]
    # Packed: two files cross the step boundary, whatever the image count
    physical = sorted(p.relative_to(tmp_path / "ds").as_posix() for p in (tmp_path / "ds").rglob("*") if p.is_file())  # fmt: skip
    assert physical == ["manifest.json", "shards/shard-00000.tar"]
    for entry in manifest["objects"]:
        shard = (tmp_path / "ds" / entry["shard"]).read_bytes()
        assert shard[entry["offset"] : entry["offset"] + entry["size"]] == PNG


def test_changed_object_changes_the_manifest_digest(fresh_bucket, gcs_client, tmp_path):
    fresh_bucket.blob("set/a.png").upload_from_string(PNG)
    first = download_dataset(f"gs://{fresh_bucket.name}/set/", tmp_path / "one", client=gcs_client)
    fresh_bucket.blob("set/a.png").upload_from_string(PNG + b"\0")
    second = download_dataset(f"gs://{fresh_bucket.name}/set/", tmp_path / "two", client=gcs_client)
    assert first.manifest_digest != second.manifest_digest


@pytest.mark.parametrize(
    "evil",
    [
        "set/../../escape.png",
        "set/..\\..\\win.png",
        "set/C:/drive.png",
        "set/ctl\x07.png",
        "set/./.././up.png",
    ],
)
def test_unsafe_object_names_never_write_outside_the_artifact(
    fresh_bucket, gcs_client, tmp_path, evil
):
    fresh_bucket.blob("set/ok.png").upload_from_string(PNG)
    fresh_bucket.blob(evil).upload_from_string(PNG)
    dest = tmp_path / "nested" / "ds"
    result = download_dataset(f"gs://{fresh_bucket.name}/set/", dest, client=gcs_client)
    assert result.skipped.get("unsafe_name") == 1
    assert dataset_files(tmp_path) == {"nested/ds/images/ok.png", "nested/ds/manifest.json"}


def make_zip(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def make_tar(members: dict[str, bytes], links: dict[str, str], mode: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in links.items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return buffer.getvalue()


def test_zip_slip_archive_extracts_only_safe_members(fresh_bucket, gcs_client, tmp_path):
    data = make_zip(
        {"imgs/a.png": PNG, "../../evil.png": PNG, "/abs.png": PNG, "imgs/notes.txt": b"x"},
        links={"imgs/link.png": "/etc/passwd"},
    )
    fresh_bucket.blob("data/set.zip").upload_from_string(data)
    dest = tmp_path / "ds"
    result = download_dataset(f"gs://{fresh_bucket.name}/data/set.zip", dest, client=gcs_client)
    assert dataset_files(tmp_path) == {"ds/images/imgs/a.png", "ds/manifest.json"}
    assert result.skipped == {"unsafe_name": 2, "not_image_extension": 1, "link_or_special": 1}


@pytest.mark.parametrize(("suffix", "mode"), [(".tar", "w"), (".tar.gz", "w:gz"), (".tgz", "w:gz")])
def test_tar_archives_are_unpacked_and_links_refused(
    fresh_bucket, gcs_client, tmp_path, suffix, mode
):
    data = make_tar(
        {"x/a.png": PNG, "x/../../../evil.png": PNG}, {"x/l.png": "../../../../etc/passwd"}, mode
    )
    fresh_bucket.blob(f"data/set{suffix}").upload_from_string(data)
    result = download_dataset(
        f"gs://{fresh_bucket.name}/data/set{suffix}", tmp_path / "ds", client=gcs_client
    )
    assert dataset_files(tmp_path) == {"ds/images/x/a.png", "ds/manifest.json"}
    assert result.object_count == 1 and result.skipped == {"unsafe_name": 1, "link_or_special": 1}


def test_missing_bucket_names_the_bucket(gcs_client, tmp_path):
    with pytest.raises(DownloadError, match="bucket gs://no-such-bucket-here not found"):
        download_dataset("gs://no-such-bucket-here/x/", tmp_path / "ds", client=gcs_client)


def test_empty_prefix_says_no_objects(fresh_bucket, gcs_client, tmp_path):
    with pytest.raises(DownloadError, match="no objects under"):
        download_dataset(f"gs://{fresh_bucket.name}/nothing/", tmp_path / "ds", client=gcs_client)


def test_prefix_without_images_lists_the_accepted_extensions(fresh_bucket, gcs_client, tmp_path):
    fresh_bucket.blob("docs/a.csv").upload_from_string(b"1,2")
    with pytest.raises(DownloadError, match=r"none of the 1 objects.*\.jpg"):
        download_dataset(f"gs://{fresh_bucket.name}/docs/", tmp_path / "ds", client=gcs_client)


def test_object_count_and_byte_limits_stop_before_downloading(fresh_bucket, gcs_client, tmp_path):
    for index in range(3):
        fresh_bucket.blob(f"set/{index}.png").upload_from_string(PNG)
    with pytest.raises(DownloadError, match="holds 3 images, above max_objects=2"):
        download_dataset(
            f"gs://{fresh_bucket.name}/set/",
            tmp_path / "a",
            client=gcs_client,
            limits=DownloadLimits(max_objects=2),
        )
    with pytest.raises(DownloadError, match="above max_bytes=100"):
        download_dataset(
            f"gs://{fresh_bucket.name}/set/",
            tmp_path / "b",
            client=gcs_client,
            limits=DownloadLimits(max_bytes=100),
        )
    assert dataset_files(tmp_path) == set()


def test_permission_denied_names_the_role_to_grant(tmp_path):
    from google.api_core import exceptions

    def denied(*args, **kwargs):
        raise exceptions.Forbidden("caller does not have storage.objects.list access")

    client = anonymous_client("http://127.0.0.1:9")  # never reached: the listing is refused
    client.list_blobs = denied
    with pytest.raises(DownloadError, match=r"roles/storage\.objectViewer"):
        download_dataset("gs://private-bucket/x/", tmp_path / "ds", client=client)


def test_transient_503s_are_retried_to_success(emulator, fresh_bucket, tmp_path):
    for index in range(20):
        fresh_bucket.blob(f"set/{index:02d}.png").upload_from_string(PNG)
    with HttpProxy(emulator.url, fail_every=3) as proxy:
        result = download_dataset(
            f"gs://{fresh_bucket.name}/set/",
            tmp_path / "ds",
            client=anonymous_client(proxy.url),
            workers=4,
        )
    assert proxy.failures >= 5
    assert result.object_count == 20
    assert len(shard_members(tmp_path / "ds")) == 20


def test_server_gone_mid_download_leaves_no_complete_looking_artifact(tmp_path):
    server = GcsEmulator.start(tmp_path / "emu")
    client = server.client()
    bucket = client.create_bucket("dying")
    for index in range(30):
        bucket.blob(f"set/{index:02d}.png").upload_from_string(PNG)
    dest = tmp_path / "ds"
    try:
        with (
            HttpProxy(
                server.url, after_request=lambda n: server.stop() if n == 10 else None
            ) as proxy,
            pytest.raises(Exception),  # noqa: B017 - whichever transport error comes last
        ):
            download_dataset(
                "gs://dying/set/", dest, client=anonymous_client(proxy.url), workers=2, attempts=2
            )
    finally:
        server.stop()
    assert not (dest / "manifest.json").exists()
    assert dataset_files(dest) == set()
    with pytest.raises(DownloadError, match="did not finish"):
        require_complete(dest)
