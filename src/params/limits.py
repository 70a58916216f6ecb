"""Upper bounds that keep a value within what its step can do (checked in step 1 and by the CLI).

Kept apart from rules.py, which the train step ships: these only need checking once, first.
"""

from __future__ import annotations

MAX_STEPS = 10_000_000  # about 12 days at 10 steps/s: longer runs continue with resume_from
MAX_TRAIN_PROCESSES = 16  # the most GPUs one Google Cloud machine has (a2-megagpu-16g)
# The generate step holds its images in memory and writes each as a PNG artifact: 2**29 pixels
# is 8,192 images at 256 px or 512 at 1024 px (1.5 GB as RGB bytes).
MAX_GENERATED_PIXELS = 2**29


def steps_problem(value: int) -> str | None:
    if 1 <= value <= MAX_STEPS:
        return None
    return (
        f"steps={value}: use 1 to {MAX_STEPS:,} (about 12 days at 10 steps/s); train longer "
        "in runs that continue with resume_from"
    )


def train_processes_problem(value: int) -> str | None:
    if 0 <= value <= MAX_TRAIN_PROCESSES:
        return None
    return (
        f"train_processes={value}: use 0 (one per GPU of the train task) or 1 to "
        f"{MAX_TRAIN_PROCESSES}, at most the GPUs of the machine (or the cores, on a CPU)"
    )


def generated_images_problem(num_images: int, image_size: int) -> str | None:
    """The generate step's memory and artifact: num_images at image_size must stay bounded."""
    if num_images * image_size * image_size <= MAX_GENERATED_PIXELS:
        return None
    most = MAX_GENERATED_PIXELS // (image_size * image_size)
    return (
        f"num_images={num_images} at image_size={image_size} is more than the generate step "
        f"holds ({MAX_GENERATED_PIXELS // 2**20:,} megapixels): use num_images of at most {most:,}"
    )
