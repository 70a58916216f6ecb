"""Peak memory (max RSS) of a training run at the smoke config, ours against upstream's Trainer.

    python -m bench.train_memory [--steps 6]

Each run is a fresh process; the figure includes torch itself. A third process
that only imports torch and builds the networks gives the floor.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT
from bench.train_step import prepare_images

SMOKE = {"image_size": 32, "batch_size": 4, "latent_dim": 64, "fmap_max": 32, "disc_output_size": 1}


def worker(kind: str, data: str, steps: int) -> None:
    import torch

    if kind == "ours":
        from src.gan.config import TrainConfig
        from src.gan.training.loop import train_gan

        with tempfile.TemporaryDirectory() as folder:
            train_gan(Path(data), Path(folder), TrainConfig(steps=steps, save_every=steps, **SMOKE))
    elif kind == "upstream":
        from devtools.upstream_cpu import load_upstream_on_cpu

        module = load_upstream_on_cpu()
        with tempfile.TemporaryDirectory() as base:
            trainer = module.Trainer(base_dir=base, use_aim=False, save_every=steps, num_image_tiles=3, aug_prob=0.3, **SMOKE)  # fmt: skip
            trainer.set_data_src(data)
            for _ in range(steps):
                trainer.train()
    else:  # floor: networks built, nothing trained
        from src.gan.config import TrainConfig
        from src.gan.networks.build import build_gan

        build_gan(TrainConfig(**SMOKE), torch.device("cpu"))
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print("RESULT " + json.dumps({"peak_mb": peak_kb / 1024, "children_peak_mb": children_kb / 1024}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.data, args.steps)
        return
    with tempfile.TemporaryDirectory() as folder:
        prepare_images(Path(folder), SMOKE["image_size"], 96)
        results = {}
        for kind in ("floor", "upstream", "ours"):
            command = [sys.executable, "-m", "bench.train_memory", "--steps", str(args.steps)]
            command += ["--worker", kind, "--data", folder]
            run = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
            results[kind] = json.loads(run.stdout.split("RESULT ", 1)[1])
    print(f"peak memory, {args.steps} training steps at {SMOKE}")
    print(f"  floor (torch + networks, no training): {results['floor']['peak_mb']:.0f} MB")
    print(f"  upstream Trainer: {results['upstream']['peak_mb']:.0f} MB (+ DataLoader workers up to {results['upstream']['children_peak_mb']:.0f} MB each)")  # fmt: skip
    print(f"  this project:     {results['ours']['peak_mb']:.0f} MB")
    print(f"  ratio ours/upstream (main process): {results['ours']['peak_mb'] / results['upstream']['peak_mb']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
