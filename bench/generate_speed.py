"""Generation speed, images per second: ours (batched) against upstream's `Trainer.generate`.

    python -m bench.generate_speed [--images 64] [--steps 2]

Both load the same trained model (ours from checkpoint.pt, upstream from our
export in its own layout). Timed: sampling and writing the image files (PNG for
ours, JPEG for upstream), not the model load, grid or gallery.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT
from bench.train_step import prepare_images

SMOKE = {"image_size": 32, "batch_size": 4, "latent_dim": 64, "fmap_max": 32}


def worker(kind: str, model_dir: str, out_dir: str, images: int) -> None:
    if kind == "ours":
        from src.gan.sampling.generate import generate_images

        result = generate_images(Path(model_dir), Path(out_dir), count=images, batch_size=32)
        print("RESULT " + json.dumps({"seconds": result.seconds}))  # sampling + writing files
        return
    else:
        from devtools.upstream_cpu import load_upstream_on_cpu

        module = load_upstream_on_cpu()
        trainer = module.Trainer(name="default", base_dir=str(Path(model_dir) / "upstream"), results_dir=out_dir, latent_dim=SMOKE["latent_dim"], use_aim=False)  # fmt: skip
        trainer.load(-1)
        started = time.perf_counter()
        trainer.generate(num=0, num_image_tiles=images, checkpoint=0, types=["default"])
    print("RESULT " + json.dumps({"seconds": time.perf_counter() - started}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.model, args.out, args.images)
        return
    from src.gan.config import TrainConfig
    from src.gan.training.loop import train_gan

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        prepare_images(work / "data", SMOKE["image_size"], 96)
        train_gan(work / "data", work / "model", TrainConfig(steps=args.steps, save_every=1, **SMOKE))  # fmt: skip
        seconds = {}
        for kind in ("upstream", "ours"):
            command = [sys.executable, "-m", "bench.generate_speed", "--images", str(args.images)]
            command += ["--worker", kind, "--model", str(work / "model"), "--out", str(work / kind)]
            run = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
            seconds[kind] = json.loads(run.stdout.split("RESULT ", 1)[1])["seconds"]
    print(f"generation of {args.images} images at {SMOKE['image_size']}px on the CPU")
    print(f"  upstream Trainer.generate: {seconds['upstream']:.2f}s ({args.images / seconds['upstream']:.0f} images/s)")  # fmt: skip
    print(f"  this project:              {seconds['ours']:.2f}s ({args.images / seconds['ours']:.0f} images/s)")  # fmt: skip
    print(f"  speed-up: {seconds['upstream'] / seconds['ours']:.2f}x")


if __name__ == "__main__":
    main()
