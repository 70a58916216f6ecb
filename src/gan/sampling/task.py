"""The generate task's work without KFP: a model and the real set in; samples, their
metadata, metrics and the gallery page out (src/components/generate_images.py only adapts
artifacts)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from src.gan.sampling.gallery import gallery_html
from src.gan.sampling.generate import check_real_set, generate_images
from src.gan.scoring.fid import FidScorer, fid_between_folders
from src.gan.scoring.swd import load_pair, swd_with_references


@dataclass
class TaskOutputs:
    """What the component writes into its artifacts."""

    metadata: dict[str, Any]
    metrics: dict[str, float]
    page: str


def generate_task(
    model_dir: Path,
    real_dir: Path,
    out_dir: Path,
    samples_uri: str,
    *,
    num_images: int,
    seed: int,
    generator: str,
    fid_weights_uri: str,
    interpolation_steps: int,
) -> TaskOutputs:
    """Generates `num_images` into `out_dir` and scores them against `real_dir`.

    Everything that can fail on bad input (the FID weights, a real set the model's
    images cannot be compared with) is checked before anything is generated.
    """
    started = time.monotonic()
    scorer = FidScorer.from_uri(fid_weights_uri) if fid_weights_uri else None
    check_real_set(model_dir, real_dir)
    result = generate_images(
        model_dir,
        out_dir,
        count=num_images,
        seed=seed,
        which=generator,
        interpolation_steps=interpolation_steps,
    )
    scores = swd_with_references(*load_pair(real_dir, out_dir, fake_pattern="image_*.png"))
    metrics = {
        "swd_vs_real": round(scores["swd"], 4),
        "swd_real_floor": round(scores["real_floor"], 4),
        "swd_noise": round(scores["noise"], 4),
        "images_per_second": round(result.images_per_second, 2),
        "num_images": result.count,
    }
    if scorer is not None:
        scores["fid"], scores["fid_real_images"] = fid_between_folders(scorer, real_dir, out_dir)
        metrics |= {
            "fid_vs_real": round(scores["fid"], 3),
            "fid_real_images": scores["fid_real_images"],
        }
    metadata = {**result.metadata(), **scores, "work_seconds": time.monotonic() - started}
    page = gallery_html(out_dir, real_dir, result.files, scores, result.metadata(), samples_uri)
    return TaskOutputs(metadata, metrics, page)
