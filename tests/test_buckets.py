"""Buckets as they are: awkward names, archives that lie, broken bodies, dead or stuck servers."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from devtools.http_proxy import HttpProxy
from src.backends.emulator import anonymous_client
from src.data.download import DownloadLimits, download_dataset
from src.data.layout import DownloadError, OutputWriteError
from tests.support.datasets import dataset_files, shard_members

PNG = (Path(__file__).resolve().parents[1] / "data" / "sample" / "digit_001.png").read_bytes()
ROOT = Path(__file__).resolve().parents[1]


def manifest(dest: Path) -> dict:
    return json.loads((dest / "manifest.json").read_text())


def zip_bytes(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_name_that_is_both_file_and_folder_keeps_both_objects(fresh_bucket, gcs_client, tmp_path):
    for name in ("set/x.png", "set/x.png/y.png", "set/z.png"):
        fresh_bucket.blob(name).upload_from_string(PNG + name.encode())
    result = download_dataset(f"gs://{fresh_bucket.name}/set/", tmp_path / "ds", client=gcs_client)
    objects = manifest(tmp_path / "ds")["objects"]
    assert [o["name"] for o in objects] == ["set/x.png", "set/x.png/y.png", "set/z.png"]
    renamed = [o for o in objects if o["renamed"]]
    assert [o["renamed"] for o in renamed] == ["renamed_name_clash"]
    stored = shard_members(tmp_path / "ds")[renamed[0]["path"]]
    assert stored == PNG + b"set/x.png/y.png"
    assert result.skipped == {"renamed_name_clash": 1}


def test_a_name_longer_than_a_file_system_allows_is_kept_under_a_short_name(
    fresh_bucket, gcs_client, tmp_path
):
    long_name = "set/" + "n" * 300 + ".png"
    fresh_bucket.blob(long_name).upload_from_string(PNG)
    first = download_dataset(f"gs://{fresh_bucket.name}/set/", tmp_path / "a", client=gcs_client)
    again = download_dataset(f"gs://{fresh_bucket.name}/set/", tmp_path / "b", client=gcs_client)
    (entry,) = manifest(tmp_path / "a")["objects"]
    assert entry["name"] == long_name and entry["renamed"] == "renamed_long_name"
    assert len(entry["path"].encode()) < 255 and entry["path"].endswith(".png")
    assert first.manifest_digest == again.manifest_digest  # deterministic


def test_a_file_folder_clash_inside_a_zip_keeps_both_members(fresh_bucket, gcs_client, tmp_path):
    data = zip_bytes([("a.png", PNG), ("a.png/b.png", PNG + b"1")])
    fresh_bucket.blob("set.zip").upload_from_string(data)
    result = download_dataset(
        f"gs://{fresh_bucket.name}/set.zip", tmp_path / "ds", client=gcs_client
    )
    assert result.object_count == 2 and result.skipped == {"renamed_name_clash": 1}


def test_a_member_named_twice_is_counted_not_written_over(fresh_bucket, gcs_client, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, pytest.warns(UserWarning, match="Duplicate"):
        archive.writestr("cat.png", PNG)
        archive.writestr("cat.png", b"second, different content")
    fresh_bucket.blob("twice.zip").upload_from_string(buffer.getvalue())
    result = download_dataset(
        f"gs://{fresh_bucket.name}/twice.zip", tmp_path / "ds", client=gcs_client
    )
    assert shard_members(tmp_path / "ds")["cat.png"] == PNG
    listed = manifest(tmp_path / "ds")
    assert [o["path"] for o in listed["objects"]] == ["cat.png"]
    assert listed["skipped"] == [{"name": "cat.png", "reason": "duplicate_member"}]
    assert result.skipped == {"duplicate_member": 1}


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        (DownloadLimits(max_member_bytes=2 * 1024**2), "member_too_large"),
        (DownloadLimits(), "compression_ratio"),
    ],
)
def test_a_zip_bomb_member_is_refused_while_streaming(
    fresh_bucket, gcs_client, tmp_path, limits, reason
):
    # Given a zip whose one big member is 64 MiB of zeros (about 64 KB packed) beside a real image
    data = zip_bytes([("bomb.png", bytes(64 * 1024**2)), ("real.png", PNG)])
    assert len(data) < 200_000
    fresh_bucket.blob("bomb.zip").upload_from_string(data)
    result = download_dataset(
        f"gs://{fresh_bucket.name}/bomb.zip", tmp_path / "ds", client=gcs_client, limits=limits
    )
    # Then the bomb is dropped and counted, the real image kept, and little was ever written
    assert result.skipped == {reason: 1} and result.object_count == 1
    assert dataset_files(tmp_path / "ds") == {"images/real.png", "manifest.json"}


def test_a_tar_that_unpacks_beyond_max_bytes_fails_and_leaves_nothing(
    fresh_bucket, gcs_client, tmp_path
):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for index in range(3):
            data = bytes(3 * 1024**2)
            info = tarfile.TarInfo(f"{index}.png")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    fresh_bucket.blob("big.tar.gz").upload_from_string(buffer.getvalue())
    with pytest.raises(DownloadError, match="unpacks to more than max_bytes"):
        download_dataset(
            f"gs://{fresh_bucket.name}/big.tar.gz",
            tmp_path / "ds",
            client=gcs_client,
            limits=DownloadLimits(max_bytes=5 * 1024**2),
        )
    assert dataset_files(tmp_path / "ds") == set()


def test_a_body_cut_off_mid_stream_is_retried(emulator, fresh_bucket, tmp_path):
    for index in range(4):
        fresh_bucket.blob(f"set/{index}.png").upload_from_string(PNG * 20)
    cut = set()

    def cut_once(path: str) -> bool:
        if "alt=media" in path and path not in cut:
            cut.add(path)
            return True
        return False

    with HttpProxy(emulator.url, cut_body=cut_once) as proxy:
        result = download_dataset(
            f"gs://{fresh_bucket.name}/set/", tmp_path / "ds", client=anonymous_client(proxy.url)
        )
    assert len(cut) == 4  # every object's first body was cut
    assert result.object_count == 4 and result.skipped == {}
    assert all(data == PNG * 20 for data in shard_members(tmp_path / "ds").values())


def test_a_stuck_object_is_skipped_after_its_timeout_and_the_rest_arrive(
    emulator, fresh_bucket, tmp_path
):
    for index in range(6):
        fresh_bucket.blob(f"set/{index}.png").upload_from_string(PNG)
    with HttpProxy(
        emulator.url, stall=lambda path: "alt=media" in path and "3.png" in path
    ) as proxy:
        result = download_dataset(
            f"gs://{fresh_bucket.name}/set/",
            tmp_path / "ds",
            client=anonymous_client(proxy.url),
            limits=DownloadLimits(request_timeout_s=1.0),
            attempts=2,
        )
    assert result.object_count == 5 and result.skipped == {"unreadable": 1}
    assert {"name": "set/3.png", "reason": "unreadable"} in manifest(tmp_path / "ds")["skipped"]


def test_an_object_replaced_during_the_download_fails_and_says_so(
    emulator, fresh_bucket, gcs_client, tmp_path
):
    for index in range(3):
        fresh_bucket.blob(f"set/{index}.png").upload_from_string(PNG)

    def replace_after_listing(number: int) -> None:
        # The listing was answered upstream: the client hears the old generation. Keyed on the
        # listing's path, not on a request number: a bucket request may come first.
        path = proxy.paths[number - 1]
        if "/o?" in path and "alt=media" not in path:
            fresh_bucket.blob("set/1.png").upload_from_string(PNG + b"new")

    with (
        HttpProxy(emulator.url, before_reply=replace_after_listing) as proxy,
        pytest.raises(DownloadError, match=r"set/1\.png changed while downloading"),
    ):
        download_dataset(
            f"gs://{fresh_bucket.name}/set/",
            tmp_path / "ds",
            client=anonymous_client(proxy.url),
            workers=1,
        )
    assert dataset_files(tmp_path / "ds") == set()


CHILD = """
import sys
from pathlib import Path
from src.data.download import download_dataset
from src.data.layout import DownloadError, OutputWriteError
from tests.support.datasets import dataset_files, shard_members
try:
    download_dataset("gs://any-bucket/images/", Path(sys.argv[1]))
except DownloadError as error:
    print(error)
    sys.exit(3)
"""


def run_download_child(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("STORAGE_EMULATOR_HOST",)}
    base.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    base.update({"HOME": str(tmp_path), "NO_GCE_CHECK": "true", "PYTHONPATH": str(ROOT), **env})
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "ds")],
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_an_unreachable_endpoint_names_the_endpoint_and_the_fix(tmp_path):
    result = run_download_child(tmp_path, STORAGE_EMULATOR_HOST="http://127.0.0.1:9")
    assert result.returncode == 3, result.stderr[-2000:]
    assert "cannot reach http://127.0.0.1:9" in result.stdout
    assert "STORAGE_EMULATOR_HOST" in result.stdout


def test_missing_credentials_say_how_to_get_them(tmp_path):
    result = run_download_child(tmp_path)
    assert result.returncode == 3, result.stderr[-2000:]
    assert "no Google credentials found" in result.stdout
    assert "gcloud auth application-default login" in result.stdout


def tar_of_random_members(count: int, size: int) -> tuple[bytes, dict[str, bytes]]:
    """An uncompressed tar of `count` incompressible members named like images."""
    members = {f"img_{i}.png": PNG + os.urandom(size) for i in range(count)}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue(), members


SLICED = DownloadLimits(slice_bytes=256 * 1024)


def test_a_large_archive_arrives_in_parallel_slices_and_unpacks_whole(
    emulator, fresh_bucket, tmp_path
):
    data, members = tar_of_random_members(6, 300 * 1024)
    fresh_bucket.blob("big.tar").upload_from_string(data)
    with HttpProxy(emulator.url) as proxy:
        result = download_dataset(
            f"gs://{fresh_bucket.name}/big.tar",
            tmp_path / "ds",
            client=anonymous_client(proxy.url),
            workers=4,
            limits=SLICED,
        )
    media = [p for p in proxy.paths if "alt=media" in p]
    assert len(media) == -(-len(data) // SLICED.slice_bytes)  # one request per slice
    assert result.object_count == 6
    for name, content in members.items():
        assert shard_members(tmp_path / "ds")[name] == content


def test_an_archive_replaced_during_a_sliced_download_fails_and_says_so(
    emulator, fresh_bucket, tmp_path
):
    data, _ = tar_of_random_members(4, 300 * 1024)
    fresh_bucket.blob("big.tar").upload_from_string(data)

    replaced = []

    def replace_once_a_slice_was_answered(number: int) -> None:
        # Keyed on the first slice, not on a request number: which request comes first (bucket,
        # listing, slices) is not this test's business. Every slice asked for after this
        # reply reaches the client finds another generation.
        if "alt=media" in proxy.paths[number - 1] and not replaced:
            replaced.append(number)
            fresh_bucket.blob("big.tar").upload_from_string(data[:-1024] + bytes(1024))

    with (
        HttpProxy(emulator.url, before_reply=replace_once_a_slice_was_answered) as proxy,
        pytest.raises(DownloadError, match=r"big\.tar changed while downloading"),
    ):
        download_dataset(
            f"gs://{fresh_bucket.name}/big.tar",
            tmp_path / "ds",
            client=anonymous_client(proxy.url),
            workers=4,
            limits=SLICED,
        )
    assert dataset_files(tmp_path / "ds") == set()


def test_an_object_too_large_for_memory_goes_through_a_file_and_arrives_whole(
    fresh_bucket, gcs_client, tmp_path, monkeypatch
):
    from src.data import download

    contents = {"set/small.png": PNG[:64], "set/big.png": PNG * 3}
    for name, data in contents.items():
        fresh_bucket.blob(name).upload_from_string(data)
    monkeypatch.setattr(download, "IN_MEMORY_BYTES", len(PNG))
    to_file, in_memory = [], []
    monkeypatch.setattr(download._Fetcher, "__call__", spy(download._Fetcher.__call__, to_file))
    monkeypatch.setattr(download._Fetcher, "read", spy(download._Fetcher.read, in_memory))
    download_dataset(f"gs://{fresh_bucket.name}/set/", tmp_path / "ds", client=gcs_client)
    assert (to_file, in_memory) == (["set/big.png"], ["set/small.png"])
    assert shard_members(tmp_path / "ds") == {"big.png": PNG * 3, "small.png": PNG[:64]}
    assert dataset_files(tmp_path / "ds") == {"images/big.png", "images/small.png", "manifest.json"}


def spy(method, calls: list):
    def recorded(self, blob, *args):
        calls.append(blob.name)
        return method(self, blob, *args)

    return recorded


def test_proxy_settings_in_the_environment_still_route_every_request(
    emulator, fresh_bucket, tmp_path, monkeypatch
):
    """The session reads the environment once: what it reads must still apply."""
    for index in range(3):
        fresh_bucket.blob(f"set/{index}.png").upload_from_string(PNG)
    for name in ("HTTP_PROXY", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    with HttpProxy(emulator.url) as proxy:
        monkeypatch.setenv("http_proxy", proxy.url)
        client = anonymous_client(emulator.url)
        result = download_dataset(f"gs://{fresh_bucket.name}/set/", tmp_path / "ds", client=client)
    assert result.object_count == 3
    assert sum("alt=media" in path for path in proxy.paths) == 3  # each object through the proxy
    assert any("prefix=set" in path for path in proxy.paths)  # and the listing
    assert client._http.trust_env is False  # and it is not read again per request


def test_shards_written_from_many_threads_hold_every_member_where_they_say(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from src.data import shard_writer

    monkeypatch.setattr(shard_writer, "SHARD_BYTES", 20_000)
    members = {f"m{index:03d}.png": os.urandom(index * 37 + 1) for index in range(200)}
    with shard_writer.ShardWriter(tmp_path / "shards") as writer, ThreadPoolExecutor(16) as pool:
        placed = dict(zip(members, pool.map(writer.add, members, members.values()), strict=True))
    assert len({shard for shard, _ in placed.values()}) > 1
    for name, (shard, offset) in placed.items():
        assert (tmp_path / shard).read_bytes()[offset : offset + len(members[name])] == members[
            name
        ]
    listed = set()
    for shard in (tmp_path / "shards").iterdir():
        with tarfile.open(shard) as archive:  # each shard is a complete tar
            listed |= set(archive.getnames())
    assert listed == set(members)


def test_a_full_disk_fails_the_download_naming_the_disk_instead_of_skipping_objects(
    fresh_bucket, gcs_client, small_disk
):
    # Given 20 different images of about 5.5 KB, and a destination disk of 32 KiB
    for index in range(20):
        fresh_bucket.blob(f"set/{index:02d}.png").upload_from_string(PNG + os.urandom(5000))
    disk = small_disk(32)
    # When they are downloaded there
    with pytest.raises(OutputWriteError) as failure:
        download_dataset(f"gs://{fresh_bucket.name}/set/", disk / "ds", client=gcs_client)
    # Then the step fails on our own write: where, why, how much, what to do; nothing is left
    assert re.fullmatch(
        rf"cannot write {re.escape(str(disk))}/ds/shards/shard-00000\.tar \(No space left on "
        r"device; the step writes about 0\.1 MB there\): free space or give the step a larger disk",
        str(failure.value),
    ), failure.value
    assert list((disk / "ds").iterdir()) == []


def test_a_name_with_a_control_character_is_skipped_saying_so(
    fresh_bucket, gcs_client, tmp_path, caplog
):
    for name in ("set/new\nline.png", "set/fine.png"):
        fresh_bucket.blob(name).upload_from_string(PNG)
    with caplog.at_level(logging.WARNING):
        result = download_dataset(f"gs://{fresh_bucket.name}/set/", tmp_path / "ds", client=gcs_client)  # fmt: skip
    assert result.skipped == {"unsafe_name": 1}
    assert "skipping 'set/new\\nline.png': its name holds a control character" in caplog.text
    assert "escape" not in caplog.text


def test_an_object_with_content_under_a_folder_name_is_counted_as_skipped(
    fresh_bucket, gcs_client, tmp_path
):
    fresh_bucket.blob("set/dir_with_data/").upload_from_string(PNG)
    fresh_bucket.blob("set/empty_marker/").upload_from_string(b"")
    fresh_bucket.blob("set/a.png").upload_from_string(PNG)
    result = download_dataset(f"gs://{fresh_bucket.name}/set/", tmp_path / "ds", client=gcs_client)
    assert result.object_count == 1 and result.skipped == {"folder_name_with_data": 1}
    assert {"name": "set/dir_with_data/", "reason": "folder_name_with_data"} in manifest(
        tmp_path / "ds"
    )["skipped"]


def test_a_prefix_of_empty_folder_markers_says_so_and_that_the_listing_is_recursive(
    fresh_bucket, gcs_client, tmp_path
):
    for name in ("set/", "set/cats/", "set/dogs/"):
        fresh_bucket.blob(name).upload_from_string(b"")
    with pytest.raises(DownloadError) as failure:
        download_dataset(f"gs://{fresh_bucket.name}/set/", tmp_path / "ds", client=gcs_client)
    assert str(failure.value) == (
        f"gs://{fresh_bucket.name}/set/ holds only empty folder markers (set/, set/cats/, "
        "set/dogs/): the listing is recursive and found no file below them; upload the images "
        "there first"
    )
