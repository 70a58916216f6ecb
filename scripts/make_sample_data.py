"""Writes the default image set in `data/sample/` (run once; the output is committed).

The images are scikit-learn's handwritten digits (UCI optical recognition of
handwritten digits, 8x8 scans by 43 writers), upscaled to 32x32 PNGs. A few
deliberately broken and duplicate files are added so the cleanse step has work.
Requires scikit-learn, which the project itself does not need.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

OUT = Path(__file__).resolve().parents[1] / "data" / "sample"
IMAGE_COUNT = 96


def digit_image(pixels: np.ndarray, size: int) -> Image.Image:
    """The 0..16 intensity scan as an 8-bit greyscale image, white digit on black."""
    image = Image.fromarray((pixels * (255 / 16)).astype(np.uint8), mode="L")
    return image.resize((size, size), Image.Resampling.BICUBIC) if size != 8 else image


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    digits = load_digits()
    for index in range(IMAGE_COUNT):
        digit_image(digits.images[index], 32).save(OUT / f"digit_{index:03d}.png")

    broken = OUT / "broken"
    broken.mkdir()
    png = io.BytesIO()
    digit_image(digits.images[IMAGE_COUNT], 32).save(png, format="PNG")
    (broken / "truncated.png").write_bytes(png.getvalue()[: len(png.getvalue()) // 2])
    (broken / "empty.png").write_bytes(b"")
    (broken / "notes.jpg").write_text("this is a text file with an image extension\n")
    digit_image(digits.images[IMAGE_COUNT + 1], 8).save(broken / "tiny_8x8.png")
    digit_image(digits.images[0], 32).save(broken / "copy_of_digit_000.BMP", format="BMP")
    (OUT / "README.txt").write_text(__doc__)


if __name__ == "__main__":
    main()
