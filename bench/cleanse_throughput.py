"""Cleanse throughput against a naive single-process Pillow loop on the same mixed images.

    python -m bench.cleanse_throughput [--images 2000] [--repeats 3] [--size 64]

The set mixes photo-sized JPEGs, medium JPEGs and small PNGs. The baseline opens,
converts to RGB, resizes the short side (LANCZOS), crops the centre and saves each
file in one process; the candidate is `cleanse_folder` (full decode checks,
hashing, draft decoding), on all cores and on one. `--busy` keeps a spinning
process on one core for the whole run.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from bench.common import median_seconds, report
from src.data.cleanse import CleanseSettings, cleanse_folder


def smooth_image(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A photo-like image: a blurred random field upscaled (cheap to make, real to decode)."""
    small = rng.integers(0, 256, (max(2, height // 64), max(2, width // 64), 3), dtype=np.uint8)
    return Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)


def make_images(root: Path, count: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        kind = index % 10
        if kind == 0:  # 10%: photo-sized JPEG
            smooth_image(rng, 2400, 1800).save(root / f"photo_{index:05d}.jpg", quality=90)
        elif kind < 5:  # 40%: medium JPEG
            smooth_image(rng, 640, 480).save(root / f"medium_{index:05d}.jpg", quality=90)
        else:  # 50%: small PNG
            smooth_image(rng, 160, 128).save(root / f"small_{index:05d}.png")


def naive_loop(source: Path, dest: Path, size: int) -> None:
    """One process: full decode, LANCZOS on the short side, centre crop, PNG."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.iterdir()):
        with Image.open(path) as image:
            image = image.convert("RGB")
            scale = size / min(image.size)
            image = image.resize(
                (max(size, round(image.width * scale)), max(size, round(image.height * scale))),
                Image.Resampling.LANCZOS,
            )
            left, top = (image.width - size) // 2, (image.height - size) // 2
            image.crop((left, top, left + size, top + size)).save(dest / (path.stem + ".png"))


def spin() -> None:
    while True:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--busy", action="store_true", help="keep one core busy meanwhile")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-cleanse-"))
    spinner = multiprocessing.Process(target=spin, daemon=True) if args.busy else None
    try:
        make_images(work / "in", args.images)
        if spinner:
            spinner.start()
        out = work / "out"
        reset = lambda: shutil.rmtree(out, ignore_errors=True)  # noqa: E731
        baseline, _ = median_seconds(
            lambda: naive_loop(work / "in", out, args.size), args.repeats, reset
        )
        title = f"cleanse, {args.images} mixed images -> {args.size}px" + (
            ", one core busy" if args.busy else ""
        )
        for workers in (0, 1):
            settings = CleanseSettings(image_size=args.size, min_side=1, workers=workers)
            candidate, _ = median_seconds(
                lambda settings=settings: cleanse_folder(work / "in", out, settings),
                args.repeats,
                reset,
            )
            label = f"cleanse_folder({'all cores' if workers == 0 else '1 process'})"
            report(title, "naive single-process loop", baseline, label, candidate, args.images, "images")  # fmt: skip
    finally:
        if spinner and spinner.is_alive():
            spinner.terminate()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
