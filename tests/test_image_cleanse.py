"""Cleanse a zoo of awkward files: nothing crashes, each lands under the right reason."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.backends.sample import SAMPLE_DIR
from src.common.image_array import load_array
from src.data.cleanse import (
    POOL_MIN_FILES,
    CleanseSettings,
    TooFewImagesError,
    cleanse_folder,
    resize_and_crop,
    to_mode,
)
from src.data.layout import OutputWriteError
from tests.support.datasets import cleansed_images

SIZE = 32


def gradient(size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> Image.Image:
    width, height = size
    image = Image.new("RGB", size)
    image.putdata(
        [
            ((x * 7 + seed) % 256, (y * 5 + seed * 3) % 256, (x + y + seed) % 256)
            for y in range(height)
            for x in range(width)
        ]
    )
    return image.convert(mode) if mode != "RGB" else image


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_with_huge_declared_size() -> bytes:
    """A valid PNG header that claims 100000 x 100000 pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 10))
        + chunk(b"IEND", b"")
    )


def exif_rotated_jpeg() -> bytes:
    """A 64x48 landscape JPEG whose EXIF says 'rotate 90': upright it is 48x64 portrait."""
    image = Image.new("RGB", (64, 48), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 64, 8))  # blue stripe along the stored top
    exif = Image.Exif()
    exif[0x0112] = 6
    return encoded(image, "JPEG", exif=exif.tobytes(), quality=95)


def sixteen_bit(image: Image.Image) -> Image.Image:
    """The 8-bit greyscale image spread over the full 16-bit range, as scanners write it."""
    return Image.fromarray(np.asarray(image, dtype=np.uint16) * 257)


def animated_gif() -> bytes:
    frames = [gradient((40, 40), seed=seed).convert("P") for seed in (30, 31)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    return buffer.getvalue()


def palette_with_transparency() -> bytes:
    image = Image.new("P", (40, 40), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (10, 10, 30, 30))
    return encoded(image, "PNG", transparency=0)


def build_zoo(root: Path) -> dict[str, str]:
    """Writes the zoo; returns file name -> expected reason ('kept' or a drop reason)."""
    base = gradient((48, 40))
    zoo: dict[str, tuple[bytes, str]] = {
        "truncated.jpg": (encoded(gradient((64, 64), seed=1), "JPEG")[:300], "truncated"),
        "zero.png": (b"", "empty_file"),
        "text.jpg": (b"just some words, not an image\n", "not_an_image"),
        "huge_declared.png": (png_with_huge_declared_size(), "too_many_pixels"),
        "cmyk.jpg": (encoded(gradient((40, 40), "CMYK", seed=2), "JPEG"), "kept"),
        "sixteen_bit.png": (
            encoded(sixteen_bit(gradient((40, 40), "L", seed=3)), "PNG"),
            "kept",
        ),
        "palette_transparent.png": (palette_with_transparency(), "kept"),
        "la.png": (encoded(gradient((40, 40), "LA", seed=4), "PNG"), "kept"),
        "rgba.png": (encoded(gradient((40, 40), "RGBA", seed=5), "PNG"), "kept"),
        "animated.gif": (animated_gif(), "kept"),
        "rotated.jpg": (exif_rotated_jpeg(), "kept"),
        "one_pixel.png": (encoded(Image.new("RGB", (1, 1)), "PNG"), "too_small"),
        "original.png": (encoded(base, "PNG"), "kept"),
        "zz_same_pixels.bmp": (encoded(base, "BMP"), "duplicate"),
        "photo.webp": (encoded(gradient((50, 60), seed=6), "WEBP", lossless=True), "kept"),
        "scan.tiff": (encoded(gradient((40, 44), seed=7), "TIFF"), "kept"),
        "UPPER.PNG": (encoded(gradient((36, 36), seed=8), "PNG"), "kept"),
        "no_extension": (encoded(gradient((36, 36), seed=9), "PNG"), "kept"),
        "big_photo.jpeg": (encoded(gradient((1600, 1200), seed=10), "JPEG", quality=90), "kept"),
        "greyscale.png": (encoded(gradient((40, 40), "L", seed=11), "PNG"), "kept"),
        "sub/dir/nested.png": (encoded(gradient((40, 40), seed=12), "PNG"), "kept"),
    }
    for name, (data, _) in zoo.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return {name: reason for name, (_, reason) in zoo.items()}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo")
    expected = build_zoo(root)
    out = tmp_path_factory.mktemp("out")
    report = cleanse_folder(
        root, out, CleanseSettings(image_size=SIZE, max_pixels=4_000_000, workers=2)
    )
    return expected, report, out


def test_zoo_has_at_least_15_kinds(zoo):
    expected, _, _ = zoo
    assert len(expected) >= 15


def test_each_file_lands_under_the_expected_reason(zoo):
    expected, report, _ = zoo
    kept_names = {name for name, reason in expected.items() if reason == "kept"}
    assert report.kept == len(kept_names)
    drops: dict[str, int] = {}
    for reason in expected.values():
        if reason != "kept":
            drops[reason] = drops.get(reason, 0) + 1
    assert report.dropped == drops
    for reason, examples in report.examples.items():
        assert all(expected[name] == reason for name, _ in examples)


def test_every_kept_image_has_the_right_size_and_mode(zoo):
    _, report, out = zoo
    images = cleansed_images(out)
    assert len(images) == report.kept and list(images) == report.outputs
    for name, image in images.items():
        assert image.size == (SIZE, SIZE) and image.mode == "RGB", name


def test_sixteen_bit_image_keeps_its_tones(zoo):
    _, _, out = zoo
    low, high = cleansed_images(out)["sixteen_bit.png"].convert("L").getextrema()
    assert high - low > 100


def test_exif_orientation_is_applied(zoo):
    _, _, out = zoo
    image = cleansed_images(out)["rotated.png"]
    right_column = image.crop((SIZE - 3, 0, SIZE, SIZE)).convert("RGB").getcolors()
    # Rotated 90 degrees clockwise, the stored top stripe (blue) becomes the right edge.
    assert max(right_column)[1][2] > 200


def test_transparency_is_composited_onto_white():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert to_mode(rgba, "RGB", (255, 255, 255)).getpixel((0, 0)) == (255, 255, 255)


def test_resize_by_short_side_then_centre_crop():
    image = Image.new("RGB", (200, 100))
    image.paste((255, 255, 255), (50, 0, 150, 100))  # white centre square
    result = resize_and_crop(image, 32)
    assert result.size == (32, 32)
    assert result.getpixel((16, 16)) == (255, 255, 255)


def test_output_is_byte_identical_across_runs_and_worker_counts(tmp_path):
    # Given the zoo plus enough images that the cleanse starts a process pool
    build_zoo(tmp_path / "in")
    for seed in range(POOL_MIN_FILES):
        encoded_image = encoded(gradient((40, 40), seed=100 + seed), "PNG")
        (tmp_path / "in" / f"extra_{seed:02d}.png").write_bytes(encoded_image)

    def cleanse(out: Path, workers: int) -> tuple[str, int]:
        report = cleanse_folder(
            tmp_path / "in", out, CleanseSettings(image_size=SIZE, workers=workers)
        )
        hasher = hashlib.sha256()
        for path in sorted(out.iterdir()):
            hasher.update(path.name.encode() + path.read_bytes())
        return hasher.hexdigest(), report.processes

    # When it runs in this process and in two worker processes
    alone, pooled = cleanse(tmp_path / "a", 1), cleanse(tmp_path / "b", 2)
    # Then two worker processes really ran and the outputs are byte-identical
    assert alone[1] == 1 and pooled[1] == 2
    assert alone[0] == pooled[0]


def test_near_duplicates_are_dropped_when_enabled(tmp_path):
    base = gradient((64, 64), seed=20)
    (tmp_path / "in").mkdir()
    base.save(tmp_path / "in" / "a.png")
    base.save(tmp_path / "in" / "b.jpg", quality=80)  # same picture, recompressed
    gradient((64, 64), seed=90).transpose(Image.Transpose.ROTATE_90).save(tmp_path / "in" / "c.png")
    off = cleanse_folder(
        tmp_path / "in", tmp_path / "off", CleanseSettings(image_size=SIZE, workers=1)
    )
    on = cleanse_folder(
        tmp_path / "in",
        tmp_path / "on",
        CleanseSettings(image_size=SIZE, workers=1, near_duplicate_distance=6),
    )
    assert off.kept == 3
    assert on.kept == 2 and on.dropped == {"near_duplicate": 1}


def test_too_few_images_for_the_batch_fails_before_training(tmp_path):
    (tmp_path / "in").mkdir()
    gradient((40, 40)).save(tmp_path / "in" / "only.png")
    with pytest.raises(ValueError, match="only 1 usable images for batch_size=4"):
        cleanse_folder(
            tmp_path / "in", tmp_path / "out", CleanseSettings(image_size=SIZE, min_images=4)
        )
    # No array that looks complete; the report of what was dropped stays
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["cleanse_report.json"]


def test_each_dropped_duplicate_names_the_kept_file_it_repeats(tmp_path):
    build_zoo(tmp_path / "in")
    report = cleanse_folder(
        tmp_path / "in", tmp_path / "out", CleanseSettings(image_size=SIZE, workers=1)
    )
    assert report.duplicates == [("zz_same_pixels.bmp", "original.png", "first in name order")]
    assert "`zz_same_pixels.bmp` repeats `original.png` (first in name order)" in report.markdown()
    saved = json.loads((tmp_path / "out" / "cleanse_report.json").read_text())
    assert saved["duplicates"] == [
        {"dropped": "zz_same_pixels.bmp", "kept": "original.png", "rule": "first in name order"}
    ]


def test_an_all_grey_set_is_reported_with_the_greyscale_fix(tmp_path):
    # Given grey images stored as RGB (and, in a second set, one coloured image among them)
    for index in range(3):
        gradient((40, 40), "L", seed=30 + index).convert("RGB").save(tmp_path / f"g{index}.png")
    grey = cleanse_folder(tmp_path, tmp_path / "out1", CleanseSettings(image_size=SIZE, workers=1))
    gradient((40, 40), seed=40).save(tmp_path / "colour.png")
    mixed = cleanse_folder(tmp_path, tmp_path / "out2", CleanseSettings(image_size=SIZE, workers=1))
    # Then only the all-grey set says so, and how to train greyscale
    assert grey.all_grey and "greyscale=true" in grey.markdown()
    assert not mixed.all_grey and "greyscale" not in mixed.markdown()


def test_decoded_chunks_waiting_for_the_writer_never_exceed_the_window():
    """Results stream in order while at most `ahead` chunks are submitted and not yet consumed."""
    from concurrent.futures import Future

    from src.data import cleanse

    class RecordingPool:
        submitted = 0

        def submit(self, function, chunk, settings):
            self.submitted += 1
            future = Future()
            future.set_result(chunk)
            return future

    pool, chunks, waiting, results = RecordingPool(), [[index] for index in range(20)], [], []
    for result in cleanse._in_order(pool, chunks, CleanseSettings(), ahead=4):
        waiting.append(pool.submitted - len(results))
        results.append(result)
    assert results == chunks
    assert max(waiting) == 4  # Executor.map would have had all 20 submitted at the first result


def test_files_that_differ_only_in_extension_keep_apart_in_the_index(tmp_path):
    # Given pic.tiff and pic.webp, two different images with one stem
    (tmp_path / "in").mkdir()
    gradient((40, 40), seed=50).save(tmp_path / "in" / "pic.tiff")
    gradient((40, 40), seed=51).save(tmp_path / "in" / "pic.webp", lossless=True)
    # When they are cleansed
    cleanse_folder(tmp_path / "in", tmp_path / "out", CleanseSettings(image_size=SIZE, workers=1))
    # Then each has its own name in the index
    _, names = load_array(tmp_path / "out")
    assert names == ["pic.png", "pic.webp.png"]


def test_of_exact_duplicates_the_shallower_path_is_kept_and_the_rule_reported(tmp_path):
    # Given the bundled digit and its BMP copy one folder down (which sorts first)
    (tmp_path / "in" / "broken").mkdir(parents=True)
    for name in ("digit_000.png", "broken/copy_of_digit_000.BMP", "digit_001.png"):
        (tmp_path / "in" / name).write_bytes((SAMPLE_DIR / name).read_bytes())
    # When they are cleansed
    report = cleanse_folder(
        tmp_path / "in", tmp_path / "out", CleanseSettings(image_size=SIZE, workers=1)
    )
    # Then the PNG is the kept one, its row and name are the PNG's, and the report says why
    assert report.duplicates == [
        ("broken/copy_of_digit_000.BMP", "digit_000.png", "shallower path")
    ]
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index["sources"] == ["digit_000.png", "digit_001.png"]
    assert index["names"] == ["digit_000.png", "digit_001.png"]
    assert "lossless file, then more pixel data, then shallower path" in report.markdown()


def test_of_exact_duplicates_the_lossless_file_is_kept(tmp_path):
    # Given a JPEG and a PNG of the same decoded pixels, the JPEG first in name order
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(encoded(gradient((40, 40), seed=60), "JPEG"))
    with Image.open(tmp_path / "in" / "a.jpg") as decoded:
        decoded.save(tmp_path / "in" / "b.png")
    # When they are cleansed
    report = cleanse_folder(
        tmp_path / "in", tmp_path / "out", CleanseSettings(image_size=SIZE, workers=1)
    )
    # Then the PNG is kept
    assert report.duplicates == [("a.jpg", "b.png", "lossless file")]


def test_too_few_images_because_of_duplicates_names_them_and_keeps_the_report(tmp_path):
    # Given ten copies of one image, for a batch of four
    (tmp_path / "in").mkdir()
    for index in range(10):
        gradient((40, 40), seed=70).save(tmp_path / "in" / f"copy_{index}.png")
    # When they are cleansed
    with pytest.raises(TooFewImagesError) as failure:
        cleanse_folder(
            tmp_path / "in",
            tmp_path / "out",
            CleanseSettings(image_size=SIZE, workers=1, min_images=4),
        )
    # Then the message names the duplicates and the fix, and the JSON report is still written
    message = str(failure.value)
    assert "only 1 usable images for batch_size=4 (of 10 files; dropped duplicate 9)" in message
    assert "add distinct images" in message and "lower batch_size to at most 1" in message
    saved = json.loads((tmp_path / "out" / "cleanse_report.json").read_text())
    assert saved["dropped"] == {"duplicate": 9} and len(saved["duplicates"]) == 9
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["cleanse_report.json"]


def test_images_too_small_for_image_size_suggest_the_size_that_keeps_them(tmp_path):
    # Given three of the bundled 32 px digits
    (tmp_path / "in").mkdir()
    for name in ("digit_000.png", "digit_001.png", "digit_002.png"):
        (tmp_path / "in" / name).write_bytes((SAMPLE_DIR / name).read_bytes())
    # When they are cleansed at image_size 1024 for a batch of four
    with pytest.raises(TooFewImagesError) as failure:
        cleanse_folder(
            tmp_path / "in",
            tmp_path / "out",
            CleanseSettings(image_size=1024, workers=1, min_images=4),
        )
    # Then the message names why and the image_size that keeps them, not a smaller batch
    assert str(failure.value) == (
        "only 0 usable images for batch_size=4 (of 3 files; dropped too_small 3): set "
        "image_size=64 or less (short sides up to 32 px here; image_size=1024 needs 512), "
        "or set min_side"
    )


def test_a_full_disk_fails_the_cleanse_naming_the_folder_the_size_and_the_fix(small_disk):
    # Given an output folder on a disk too small for the array (96 x 32 x 32 x 3 bytes)
    disk = small_disk(64)
    # When the bundled set is cleansed there
    with pytest.raises(OutputWriteError) as failure:
        cleanse_folder(SAMPLE_DIR, disk / "out", CleanseSettings(image_size=SIZE, workers=1))
    # Then the error says where, why, how much and what to do
    assert str(failure.value) == (
        f"cannot write {disk / 'out'} (No space left on device; the step writes about 0.3 MB "
        "there): free space or give the step a larger disk"
    )


def test_a_full_disk_leaves_no_partial_array_behind(small_disk):
    disk = small_disk(64)
    with pytest.raises(OutputWriteError):
        cleanse_folder(SAMPLE_DIR, disk / "out", CleanseSettings(image_size=SIZE, workers=1))
    assert list((disk / "out").iterdir()) == []
