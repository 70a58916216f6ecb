"""Proof that the GAN learns: SWD at each checkpoint against its floor and the noise level.

    python -m bench.learning_curve [--steps 1500] [--every 100] [--images 64]

Trains the default local configuration (`python -m src.pipeline run`) on the
bundled digits, resuming checkpoint by checkpoint (resume is exact, so this is
one run), and after each checkpoint generates `--images` samples and scores them
against the cleansed set with `swd_with_references`: the real-vs-real floor and
the noise level are measured on the same images in the same run. Writes the
progress strip and animation to bench/results/. About 20 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench.common import ROOT

RESULTS = ROOT / "bench" / "results"


def progress_strip(frames: list[dict], path: Path) -> None:
    """The shown frames side by side, each labelled with its step."""
    import io

    from PIL import Image, ImageDraw

    from src.gan.watching.progress_frames import shown

    pictures = [(f["step"], Image.open(io.BytesIO(f["png"])).convert("RGB")) for f in shown(frames)]
    width, height = pictures[0][1].size
    strip = Image.new("RGB", (len(pictures) * (width + 4), height + 16), "white")
    draw = ImageDraw.Draw(strip)
    for index, (step, picture) in enumerate(pictures):
        strip.paste(picture, (index * (width + 4), 16))
        draw.text((index * (width + 4) + 2, 2), f"step {step}", fill="black")
    strip.quantize(colors=64).save(path, optimize=True)  # small enough to commit beside the README


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the strip goes")
    args = parser.parse_args()

    from src.data.cleanse import CleanseSettings, cleanse_folder
    from src.gan.config import TrainConfig
    from src.gan.sampling.generate import generate_images
    from src.gan.scoring.swd import load_pair, swd_with_references
    from src.gan.training.loop import train_gan
    from src.gan.training.settings import config_from_params
    from src.gan.watching.progress_frames import ANIMATION, FOLDER
    from src.params.schema import local_defaults

    defaults = local_defaults()
    names = {f for f in TrainConfig.__dataclass_fields__} & set(defaults)
    values = {name: defaults[name] for name in names}
    work = Path(tempfile.mkdtemp(prefix="learning-"))
    real = work / "cleansed"
    cleanse_folder(ROOT / "data" / "sample", real, CleanseSettings(image_size=values["image_size"]))
    rows, started = [], time.monotonic()
    print(f"{'step':>6} {'swd':>7} {'floor':>7} {'noise':>7} {'minutes':>8}")
    for target in range(args.every, args.steps + 1, args.every):
        config = config_from_params(**{**values, "steps": target, "save_every": args.every})
        result = train_gan(real, work / "model", config)
        samples = work / f"samples_{target}"
        generate_images(work / "model", samples, count=args.images)
        scores = swd_with_references(*load_pair(real, samples, fake_pattern="image_*.png"))
        minutes = (time.monotonic() - started) / 60
        rows.append({"step": target, **scores, "minutes": minutes})
        print(f"{target:>6} {scores['swd']:>7.3f} {scores['real_floor']:>7.3f} {scores['noise']:>7.3f} {minutes:>8.1f}", flush=True)  # fmt: skip
    first, last = rows[0], rows[-1]
    print(
        f"SWD {first['swd']:.3f} at step {first['step']} -> {last['swd']:.3f} at step "
        f"{last['step']}: {last['swd'] / last['noise']:.2f}x the noise level, "
        f"{last['swd'] / last['real_floor']:.2f}x the real-vs-real floor"
    )
    results = args.results
    results.mkdir(parents=True, exist_ok=True)
    progress_strip(result.frames, results / "learning_strip.png")
    (results / "learning_progress.webp").write_bytes(
        (work / "model" / FOLDER / ANIMATION).read_bytes()
    )
    (results / "learning_curve.json").write_text(json.dumps(rows, indent=1))
    print(f"strip: {results / 'learning_strip.png'}; curve: {results / 'learning_curve.json'}")


if __name__ == "__main__":
    main()
