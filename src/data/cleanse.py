"""Turn arbitrary files into a clean training set of equal-size images, in one array file.

Every file is decoded fully; what cannot be used is dropped and counted by
reason. Kept images get EXIF orientation, one colour mode, a resize by the
short side (LANCZOS) and a centre crop to `image_size`, and land as rows of
`images.npy` (src/common/image_array.py), in name order. Decoding is spread over
the cores; rows stream into the file as they arrive, so memory stays flat. The
output is byte-identical for the same input. Too few survivors, or a folder that
cannot be written, fail the step; the JSON report is written in the first case.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import logging
import os
import time
import warnings
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageChops, ImageFile, ImageOps

from src.common.atomic_files import write_json_atomically
from src.common.errors import ConfigError
from src.common.image_array import ARRAY_NAME
from src.common.image_array_writer import HEADER_BYTES, ArrayWriter
from src.common.progress import Progress
from src.data.layout import InputFile, output_write_error
from src.params import checks, cleanse_rules, rules

log = logging.getLogger(__name__)

OUTPUT_MODES = ("RGB", "RGBA", "L")
REPORT_NAME = "cleanse_report.json"
KEPT = "kept"
EXAMPLES = 8  # per drop reason, with their details (the contact sheet shows them)
MAX_LISTED = 50  # duplicates named in the Markdown report (all of them are in the JSON)
GREY_ADVICE = (
    "**Every kept image is grey.** They were stored as RGB; set the pipeline parameter "
    "`greyscale=true` to cleanse to one channel and train a 1-channel GAN (less memory and work "
    "for the same images)."
)
POOL_MIN_FILES = 32  # below this, starting processes costs more than it saves
# Which of two exact duplicates is kept: the first rule that tells them apart decides.
PREFERENCE = ("lossless file", "more pixel data", "shallower path", "first in name order")
LOSSY_FORMATS = ("JPEG", "MPO", "WEBP")  # WebP may be lossless; counted as lossy
BYTES_PER_BAND = {"I": 4, "F": 4, "I;16": 2, "I;16B": 2, "I;16L": 2}
TOO_FEW_FIXES = {
    "duplicate": "add distinct images (these repeat others pixel for pixel)",
    "near_duplicate": "add distinct images or lower near_duplicate_distance",
    "too_many_pixels": "raise the cleanse step's max_pixels if the images are genuine",
}


@dataclass(frozen=True)
class CleanseSettings:
    """How the cleansed set should look."""

    image_size: int = 32
    mode: str = "RGB"
    min_side: int = 0
    max_pixels: int = 64_000_000
    background: tuple[int, int, int] = (255, 255, 255)
    near_duplicate_distance: int = -1
    min_images: int = 1
    workers: int = 0

    @property
    def effective_min_side(self) -> int:
        """0 means half the output size: upscaling beyond 2x only adds blur."""
        return self.min_side or max(1, self.image_size // 2)

    def validate(self) -> None:
        checks.require(rules.image_size_problem(self.image_size))
        checks.require(cleanse_rules.near_duplicate_problem(self.near_duplicate_distance))
        if self.mode not in OUTPUT_MODES:
            raise ConfigError(f"mode={self.mode!r} is not supported: use one of {OUTPUT_MODES}")
        if self.max_pixels <= 0:
            raise ConfigError(f"max_pixels={self.max_pixels} must be positive")


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one input file."""

    source: str
    reason: str
    rank: tuple[bool, int] = (False, 0)  # (lossy, -decoded bytes): PREFERENCE's first rules
    content_hash: bytes | None = None  # 128 bits of SHA-256: one per kept image stays in memory
    perceptual_hash: int | None = None
    detail: str = ""  # for a duplicate: the kept file it repeats
    grey: bool = False  # an RGB image whose three channels are equal
    pixels: np.ndarray | None = field(default=None, repr=False, compare=False)  # until written


@dataclass
class CleanseReport:
    kept: int
    dropped: dict[str, int]
    examples: dict[str, list[tuple[str, str]]]  # reason -> (file, detail), a few of each
    image_size: int
    mode: str
    seconds: float
    images_per_second: float
    outputs: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # the kept files, in row order
    processes: int = 1  # worker processes that decoded files
    duplicates: list[tuple[str, str, str]] = field(default_factory=list)  # (dropped, kept, rule)
    all_grey: bool = False  # every kept RGB image is grey

    @property
    def total(self) -> int:
        return self.kept + sum(self.dropped.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "kept": self.kept,
            "dropped": dict(sorted(self.dropped.items())),
            "examples": {k: [name for name, _ in v] for k, v in sorted(self.examples.items())},
            "image_size": self.image_size,
            "mode": self.mode,
            "total": self.total,
            "duplicates": [{"dropped": a, "kept": b, "rule": r} for a, b, r in self.duplicates],
            "all_grey": self.all_grey,
        }

    def markdown(self) -> str:
        """A short report for a person, for the pipeline UI."""
        lines = [
            "# Cleanse report",
            "",
            f"Kept **{self.kept}** of {self.total} files as {self.image_size}x{self.image_size} "
            f"{self.mode} images in `{ARRAY_NAME}` ({self.images_per_second:.0f} images/s).",
            "",
            "| reason | count | examples |",
            "| --- | ---: | --- |",
        ]
        for reason, count in sorted(self.dropped.items()):
            names = [name for name, _ in self.examples.get(reason, [])[:3]]
            examples = ", ".join(f"`{name}`" for name in names)
            lines.append(f"| {reason} | {count} | {examples} |")
        if not self.dropped:
            lines.append("| (nothing dropped) | 0 | |")
        if self.duplicates:
            rules = ", then ".join(PREFERENCE)
            lines += ["", f"Duplicates (of exact ones the kept file is the {rules}):", ""]
            lines += [f"- `{a}` repeats `{b}` ({r})" for a, b, r in self.duplicates[:MAX_LISTED]]
            if len(self.duplicates) > MAX_LISTED:
                lines.append(f"- ... {len(self.duplicates) - MAX_LISTED} more in {REPORT_NAME}")
        if self.all_grey:
            lines += ["", GREY_ADVICE]
        return "\n".join(lines) + "\n"


def list_input_files(root: Path) -> list[Path]:
    """Every regular file below root, sorted; hidden files and links are ignored."""
    files = [
        path
        for path in root.rglob("*")
        if path.is_file()
        and not path.is_symlink()
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    ]
    return sorted(files, key=lambda path: path.relative_to(root).as_posix())


def output_name(relative: str) -> str:
    """A flat, stable file name for an input path: `a/b/c.JPG` -> `a__b__c.png`."""
    stem = relative.rsplit(".", 1)[0] if "." in relative.rsplit("/", 1)[-1] else relative
    return stem.replace("/", "__") + ".png"


def unique_names(sources: list[str]) -> list[str]:
    """Output names for `sources`, in order, all different.

    A name that an earlier file took (`pic.tiff` and `pic.webp` are both `pic.png`)
    keeps its source's extension (`pic.webp.png`), then gets a counter.
    """
    taken: set[str] = set()
    names = []
    for source in sources:
        name, flat, count = output_name(source), source.replace("/", "__"), 1
        while name in taken:
            name, count = f"{flat}{f'~{count}' if count > 1 else ''}.png", count + 1
        taken.add(name)
        names.append(name)
    return names


def to_mode(image: Image.Image, mode: str, background: tuple[int, int, int]) -> Image.Image:
    """Converts any Pillow mode to `mode`, compositing transparency onto `background`."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda v: v / 256).convert("L")  # 16-bit -> 8-bit
    elif image.mode == "F":
        image = image.convert("L")
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    if image.mode == mode:
        return image
    if mode == "RGBA":
        return image.convert("RGBA")
    if has_alpha:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        canvas.alpha_composite(rgba)
        image = canvas
    return image.convert(mode)


def resize_and_crop(image: Image.Image, size: int) -> Image.Image:
    """Resizes the short side to `size` (LANCZOS) and crops the centre square."""
    width, height = image.size
    scale = size / min(width, height)
    new_size = (max(size, round(width * scale)), max(size, round(height * scale)))
    if new_size != image.size:
        image = image.resize(new_size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    left = (image.width - size) // 2
    top = (image.height - size) // 2
    return image.crop((left, top, left + size, top + size))


def difference_hash(image: Image.Image) -> int:
    """64-bit dHash: robust to resizing and recompression, for near-duplicates."""
    small = image.convert("L").resize((9, 8), Image.Resampling.BILINEAR)
    pixels = small.tobytes()
    bits = 0
    for row in range(8):
        for col in range(8):
            bits = (bits << 1) | (pixels[row * 9 + col] > pixels[row * 9 + col + 1])
    return bits


def process_file(item: InputFile, settings: CleanseSettings) -> FileOutcome:
    """Decodes, checks and converts one image; never raises for bad input."""
    relative = item.relative
    try:
        if item.is_empty():
            return FileOutcome(relative, "empty_file")
        with warnings.catch_warnings(), item.open() as handle:
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(handle)
            width, height = image.size
            if width * height > settings.max_pixels:
                return FileOutcome(relative, "too_many_pixels", detail=f"{width}x{height}")
            if min(width, height) < settings.effective_min_side:
                return FileOutcome(relative, "too_small", detail=f"{width}x{height}")
            if image.format == "JPEG":
                # Decodes at 1/2, 1/4 or 1/8 scale while both sides stay >= 2x the target.
                image.draft(image.mode, (settings.image_size * 2, settings.image_size * 2))
            image.load()
            bands = len(image.getbands()) * BYTES_PER_BAND.get(image.mode, 1)
            rank = (image.format in LOSSY_FORMATS, -image.width * image.height * bands)
            image = ImageOps.exif_transpose(image)
            image = to_mode(image, settings.mode, settings.background)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return FileOutcome(relative, "too_many_pixels")
    except Image.UnidentifiedImageError:
        return FileOutcome(relative, "not_an_image")
    except (OSError, SyntaxError, ValueError) as error:
        reason = "truncated" if "truncat" in str(error).lower() else "undecodable"
        return FileOutcome(relative, reason, detail=str(error)[:200])
    digest = hashlib.sha256(f"{image.mode}{image.size}".encode() + image.tobytes()).digest()
    result = resize_and_crop(image, settings.image_size)
    pixels = np.asarray(result)
    return FileOutcome(
        relative,
        KEPT,
        rank=rank,
        content_hash=digest[:16],
        perceptual_hash=difference_hash(result),
        grey=is_grey(result),
        pixels=pixels[:, :, None] if pixels.ndim == 2 else pixels,
    )


def is_grey(image: Image.Image) -> bool:
    """An RGB image whose red, green and blue channels are identical."""
    if image.mode != "RGB":
        return False
    red, green, blue = image.split()
    return not ImageChops.difference(red, green).getbbox() and not (
        ImageChops.difference(green, blue).getbbox()
    )


def _process_chunk(
    items: list[InputFile], settings: CleanseSettings
) -> tuple[int, list[FileOutcome]]:
    """The outcomes of `items`, with the id of the process that decoded them."""
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    return os.getpid(), [process_file(item, settings) for item in items]


def _chunks(items: list, count: int) -> list[list]:
    size = max(1, min(64, len(items) // (count * 4) or 1))
    return [items[i : i + size] for i in range(0, len(items), size)]


def preference(outcome: FileOutcome) -> tuple:
    """Sorts the file that PREFERENCE keeps first."""
    return (*outcome.rank, outcome.source.count("/"), outcome.source)


class DuplicateFilter:
    """Marks exact (same decoded pixels) and, optionally, near duplicates as outcomes arrive.

    Of exact duplicates the file that PREFERENCE ranks first is kept, in the row of
    the first one to arrive (the pixels are the same), whose source in `sources`
    it replaces; of near duplicates, the first in name order. `pairs` names, for
    each dropped file, the kept one it repeats and the rule that chose.
    """

    def __init__(self, max_distance: int, sources: list[str]) -> None:
        self.max_distance, self.sources = max_distance, sources  # the kept rows' sources
        self.groups: dict[bytes, tuple[int, tuple]] = {}  # content hash -> row, kept one's key
        self.kept_hashes: list[tuple[int, bytes]] = []  # dHash, content hash
        self.repeats: list[tuple[tuple, bytes, str]] = []  # dropped one's key, group, reason

    def check(self, outcome: FileOutcome) -> FileOutcome:
        """`outcome`, or what it drops: itself, or the kept file it replaces (source in `detail`)."""
        if outcome.reason != KEPT:
            return outcome
        key, group = preference(outcome), outcome.content_hash
        if group in self.groups:
            row, kept = self.groups[group]
            if key < kept:
                self.groups[group], self.sources[row] = (row, key), outcome.source
                key = kept
            self.repeats.append((key, group, "duplicate"))
            return FileOutcome(key[-1], "duplicate")
        if self.max_distance >= 0:
            for other, near in self.kept_hashes:
                if (outcome.perceptual_hash ^ other).bit_count() <= self.max_distance:
                    self.repeats.append((key, near, "near_duplicate"))
                    return FileOutcome(outcome.source, "near_duplicate")
            self.kept_hashes.append((outcome.perceptual_hash, group))
        self.groups[group] = (len(self.sources), key)
        return outcome

    def pairs(self) -> list[tuple[str, str, str]]:
        """(dropped, kept, rule) for every duplicate, in the order they were dropped."""
        found = []
        for key, group, reason in self.repeats:
            row, kept = self.groups[group]
            rule = "similar to a kept image"
            if reason == "duplicate":
                rule = next(r for r, a, b in zip(PREFERENCE, kept, key, strict=True) if a != b)
            found.append((key[-1], self.sources[row], rule))
        return found


def usable_cores() -> int:
    """The cores this process may run on (a container's CPU set), not the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def folder_inputs(root: Path) -> list[InputFile]:
    return [
        InputFile(str(path), path.relative_to(root).as_posix()) for path in list_input_files(root)
    ]


def cleanse_folder(source: Path, dest: Path, settings: CleanseSettings) -> CleanseReport:
    """Cleanses every file below `source` into `dest` (see cleanse_inputs)."""
    return cleanse_inputs(folder_inputs(source), dest, settings, where=str(source))


class TooFewImagesError(ConfigError):
    """Fewer images survived than one batch needs; `report` says what was dropped and why."""

    def __init__(self, report: CleanseReport, settings: CleanseSettings) -> None:
        super().__init__(too_few_message(report, settings))
        self.report = report


def too_few_message(report: CleanseReport, settings: CleanseSettings) -> str:
    """The main drop reasons with their counts, and the fix for the main one."""
    drops = sorted(report.dropped.items(), key=lambda item: -item[1])
    main = drops[0][0] if drops else ""
    fix = TOO_FEW_FIXES.get(main, "add images to the source")
    if main == "too_small":
        fix = _too_small_fix(report.examples[main], settings)
    if report.kept:
        fix += f", or lower batch_size to at most {report.kept}"
    reasons = ", ".join(f"{reason} {count}" for reason, count in drops[:3]) or "nothing"
    return (
        f"only {report.kept} usable images for batch_size={settings.min_images} "
        f"(of {report.total} files; dropped {reasons}): {fix}"
    )


def _too_small_fix(examples: list[tuple[str, str]], settings: CleanseSettings) -> str:
    """A smaller image_size that their short side allows (upscaling is at most 2x), or min_side."""
    if settings.min_side:
        return f"lower min_side={settings.min_side}"
    side = max(min(map(int, detail.split("x"))) for _, detail in examples)
    fit = 1 << (2 * side).bit_length() - 1
    if fit < 32:
        return f"use larger images (short sides up to {side} px here) or set min_side"
    return (
        f"set image_size={fit} or less (short sides up to {side} px here; image_size="
        f"{settings.image_size} needs {settings.effective_min_side}), or set min_side"
    )


def cleanse_inputs(
    items: list[InputFile], dest: Path, settings: CleanseSettings, where: str = "the dataset"
) -> CleanseReport:
    """Cleanses `items` (in name order) into `dest/images.npy` and writes a JSON report.

    Raises TooFewImagesError, with the JSON report written and no array, when fewer than
    `min_images` survive, and OutputWriteError when `dest` cannot be written.
    """
    settings.validate()
    started = time.monotonic()
    if not items:
        raise ConfigError(f"no files in {where}: the download step produced an empty dataset")
    size = settings.image_size
    row_shape = (size, size, len(settings.mode))
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for stale in dest.iterdir():
            stale.unlink()
        writer, complete = ArrayWriter(dest, row_shape), False
        try:
            tally, processes = _cleanse_into(writer, items, settings)
            report = tally.report(settings, processes, time.monotonic() - started)
            if report.kept >= settings.min_images:
                writer.names[:] = report.outputs
                writer.close({"sources": tally.kept_sources})
                complete = True
        finally:
            if not complete:
                writer.abandon()
        write_json_atomically(dest / REPORT_NAME, report.as_dict())
    except OSError as error:  # every file this opens for reading was opened by the workers
        needed = HEADER_BYTES + len(items) * size * size * len(settings.mode)
        raise output_write_error(error, error.filename or dest, needed) from error
    if not complete:
        raise TooFewImagesError(report, settings)
    return report


@dataclass
class _Tally:
    """What the report needs from the outcomes, gathered as they stream past.

    No outcome (nor its pixels) is held: what grows with the set is the kept files'
    names (and the duplicates', which are few).
    """

    kept_sources: list[str] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    examples: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    all_grey: bool = True
    duplicates: list[tuple[str, str, str]] = field(default_factory=list)  # (dropped, kept, rule)

    def add(self, outcome: FileOutcome) -> None:
        if outcome.reason == KEPT:
            self.kept_sources.append(outcome.source)
            self.all_grey = self.all_grey and outcome.grey
            return
        self.dropped[outcome.reason] += 1
        if len(self.examples[outcome.reason]) < EXAMPLES:
            self.examples[outcome.reason].append((outcome.source, outcome.detail))

    def report(self, settings: CleanseSettings, processes: int, seconds: float) -> CleanseReport:
        kept_of = {dropped: kept for dropped, kept, _ in self.duplicates}
        examples = {
            reason: [(name, kept_of.get(name, detail)) for name, detail in shown]
            for reason, shown in self.examples.items()
        }
        total = len(self.kept_sources) + sum(self.dropped.values())
        report = CleanseReport(
            kept=len(self.kept_sources),
            dropped=dict(self.dropped),
            examples=examples,
            image_size=settings.image_size,
            mode=settings.mode,
            seconds=seconds,
            images_per_second=total / seconds if seconds > 0 else 0.0,
            outputs=unique_names(self.kept_sources),
            sources=self.kept_sources,
            processes=processes,
            duplicates=self.duplicates,
            all_grey=bool(self.kept_sources) and self.all_grey,
        )
        if report.all_grey:
            log.warning(GREY_ADVICE.replace("**", ""))
        log.info(
            "cleansed %d files in %.1fs (%.0f/s): kept %d, dropped %s",
            total,
            seconds,
            report.images_per_second,
            report.kept,
            dict(self.dropped) or "none",
        )
        return report


def _cleanse_into(
    writer: ArrayWriter, items: list[InputFile], settings: CleanseSettings
) -> tuple[_Tally, int]:
    """Decodes `items` on the cores, appending each kept image to `writer` in name order."""
    tally = _Tally()
    duplicates = DuplicateFilter(settings.near_duplicate_distance, tally.kept_sources)
    results, processes = _decoded(items, settings, settings.workers or usable_cores())
    for outcome in results:
        outcome = duplicates.check(outcome)
        if outcome.reason == KEPT:
            writer.append(outcome.pixels, outcome.source)  # named once all are in
        tally.add(outcome)
    tally.duplicates = duplicates.pairs()
    return tally, len(processes)


def _decoded(items: list[InputFile], settings: CleanseSettings, workers: int):
    """Every item's outcome, in order, as chunks finish; and the ids of the decoding processes.

    One pool for the whole set (never one per chunk); the set of ids fills as it runs.
    """
    progress = Progress("cleanse", total=len(items), unit="images", logger=log)
    chunks = _chunks(items, workers)
    pids: set[int] = set()

    def outcomes():
        pool = None
        if workers == 1 or len(items) < POOL_MIN_FILES:
            results = (_process_chunk(chunk, settings) for chunk in chunks)
        else:
            pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers)
            results = _in_order(pool, chunks, settings, ahead=2 * workers)
        try:
            for pid, chunk_outcomes in results:
                pids.add(pid)
                yield from chunk_outcomes
                progress.advance(len(chunk_outcomes))
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)

    return outcomes(), pids


def _in_order(pool, chunks: list[list[InputFile]], settings: CleanseSettings, ahead: int):
    """Chunk results in order, with at most `ahead` chunks submitted and not yet consumed.

    (`Executor.map` submits every chunk at once: decoded pixels then pile up in
    memory whenever this process falls behind the decoding ones.)
    """
    pending: deque = deque()
    for chunk in chunks:
        pending.append(pool.submit(_process_chunk, chunk, settings))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()
