"""Training step time: this project's trainer against upstream's `Trainer`, same config.

    python -m bench.train_step [--steps 12] [--image-size 32] [--batch-size 4] [--device cpu]
    python -m bench.train_step --device cuda --image-size 256 --batch-size 16 --amp bf16   # GPU

Each side runs in its own process on the same cleansed images. Upstream reads
through its DataLoader (decoding files every step); ours serves batches from
memory. The first step (and upstream's step-0 evaluation) is excluded; the
median of the remaining step times is compared. On a machine without CUDA,
upstream runs through a test shim that redirects its `.cuda()` calls to the CPU.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import ROOT


def prepare_images(folder: Path, image_size: int, count: int) -> None:
    """`count` cleansed sample images (repeated as needed): PNG files for upstream's loader,
    and the same pixels as our cleansed array, which ours reads."""
    import tempfile

    from PIL import Image

    from src.common.image_array import load_array
    from src.common.image_array_writer import ArrayWriter
    from src.data.cleanse import CleanseSettings, cleanse_folder

    cleansed = Path(tempfile.mkdtemp(prefix="bench-cleansed-"))
    settings = CleanseSettings(image_size=image_size, min_side=1)
    cleanse_folder(ROOT / "data" / "sample", cleansed, settings)
    array, _ = load_array(cleansed)
    folder.mkdir(parents=True, exist_ok=True)
    writer = ArrayWriter(folder, array.shape[1:])
    for index in range(max(count, len(array))):
        row = np.asarray(array[index % len(array)])
        writer.append(row, f"img_{index:05d}.png")
        Image.fromarray(row.squeeze(-1) if row.shape[-1] == 1 else row).save(
            folder / f"img_{index:05d}.png"
        )
    writer.close()


def run_ours(args: argparse.Namespace) -> dict:
    import torch

    from src.gan.config import TrainConfig
    from src.gan.images import load_images
    from src.gan.networks.build import build_gan, pick_device
    from src.gan.training.image_bank import ImageBank
    from src.gan.training.precision import Precision, choose_amp, flush_denormals
    from src.gan.training.step import GanStep

    config = TrainConfig(
        image_size=args.image_size,
        batch_size=args.batch_size,
        latent_dim=args.latent_dim,
        fmap_max=args.fmap_max,
        attn_res_layers=tuple(args.attn),
        amp=args.amp,
    )
    device = pick_device(args.device)
    torch.manual_seed(0)
    random.seed(0)
    load_started = time.perf_counter()
    images = load_images(Path(args.data), config.channels, config.image_size)
    bank = ImageBank(images, config.channels, 0, device)
    load_seconds = time.perf_counter() - load_started
    precision = Precision(choose_amp(args.amp, device), device)
    runner = GanStep(build_gan(config, device), bank, config, precision, 0.3)
    times = []
    with flush_denormals(device):  # as train_gan does
        for step in range(args.steps):
            started = time.perf_counter()
            runner(step)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
    return {
        "step_times": times[1:],
        "data_seconds": runner.data_seconds + load_seconds,
        "total": sum(times) + load_seconds,
    }


def run_upstream(args: argparse.Namespace) -> dict:
    import torch

    if torch.cuda.is_available() and args.device != "cpu":
        import lightweight_gan.lightweight_gan as module
    else:
        from devtools.upstream_cpu import load_upstream_on_cpu

        module = load_upstream_on_cpu()
    torch.manual_seed(0)
    random.seed(0)
    with tempfile.TemporaryDirectory() as base:
        trainer = module.Trainer(
            base_dir=base,
            disc_output_size=1,  # upstream's CLI default and ours; Trainer's own default is 5
            image_size=args.image_size,
            batch_size=args.batch_size,
            latent_dim=args.latent_dim,
            fmap_max=args.fmap_max,
            attn_res_layers=args.attn,
            aug_prob=0.3,
            use_aim=False,
            save_every=10**9,
            evaluate_every=10**9,
            num_image_tiles=3,
            amp=args.amp != "off",
        )
        trainer.set_data_src(args.data)
        times = []
        for _ in range(args.steps):
            started = time.perf_counter()
            trainer.train()
            if torch.cuda.is_available() and args.device != "cpu":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
    return {"step_times": times[1:]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--latent-dim", type=int, default=64)
    parser.add_argument("--fmap-max", type=int, default=32)
    parser.add_argument("--attn", type=int, nargs="*", default=[])
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each side, order alternated")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", default="off")
    parser.add_argument("--worker", choices=["ours", "upstream"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = run_ours(args) if args.worker == "ours" else run_upstream(args)
        print("RESULT " + json.dumps(result))
        return
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("CUDA is not available here: the GPU benchmark was skipped")
            return
    with tempfile.TemporaryDirectory() as folder:
        prepare_images(Path(folder), args.image_size, args.images)
        results: dict[str, list[dict]] = {"upstream": [], "ours": []}
        for round_index in range(args.rounds):  # alternate the order: the machine drifts
            order = ("upstream", "ours") if round_index % 2 == 0 else ("ours", "upstream")
            for worker in order:
                command = [sys.executable, "-m", "bench.train_step", *sys.argv[1:]]
                command += ["--worker", worker, "--data", folder]
                run = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
                results[worker].append(json.loads(run.stdout.split("RESULT ", 1)[1]))
    upstream = statistics.median(t for r in results["upstream"] for t in r["step_times"])
    ours = statistics.median(t for r in results["ours"] for t in r["step_times"])
    data = sum(r["data_seconds"] for r in results["ours"])
    share = data / sum(r["total"] for r in results["ours"])
    print(
        f"train step, {args.image_size}px, batch {args.batch_size}, {args.device}, amp {args.amp}, "
        f"median of {args.rounds} x {args.steps - 1} steps per side"
    )
    print(f"  upstream Trainer.train: {upstream:.3f}s/step")
    print(f"  this project:           {ours:.3f}s/step")
    print(f"  ratio ours/upstream:    {ours / upstream:.2f}x (below 1.0 is faster)")
    print(f"  data-loading share of our run (incl. the one-off load): {share:.2%}")


if __name__ == "__main__":
    main()
