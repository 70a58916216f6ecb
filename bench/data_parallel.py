"""Data-parallel training throughput: N processes against one, images per second.

    python -m bench.data_parallel [--processes 2] [--steps 8] [--rounds 3]
    python -m bench.data_parallel --device cuda --processes 8 --image-size 256 --batch-size 16

Each side trains from scratch on the same images with the same per-process
batch, so N processes see N times the images per step. Timed: the training
loop as `train_gan` reports it (not process start or image loading); no
checkpoint inside the loop. On a CPU the N processes share the cores (each gets
cores / N threads), so the ratio shows the cost of the gradient all-reduce and
the parallel efficiency of the machine, not what N GPUs give.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

from bench.train_step import prepare_images


def images_per_second(data: Path, config, device: str, processes: int, out: Path) -> float:
    from src.gan.training.loop import train_gan

    result = train_gan(data, out, config, device=device, world_size=processes)
    return result.steps_run * config.batch_size * processes / result.seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    from src.gan.config import TrainConfig

    config = TrainConfig(
        image_size=args.image_size,
        batch_size=args.batch_size,
        latent_dim=64,
        fmap_max=32,
        attn_res_layers=(),
        steps=args.steps,
        save_every=10**9,
        log_every=10**9,
    )
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "images"
        prepare_images(data, args.image_size, max(96, 4 * args.batch_size * args.processes))
        rates: dict[int, list[float]] = {1: [], args.processes: []}
        for round_index in range(args.rounds):  # alternate the order: the machine drifts
            order = (1, args.processes) if round_index % 2 == 0 else (args.processes, 1)
            for processes in order:
                out = Path(folder) / f"model-{round_index}-{processes}"
                rates[processes].append(
                    images_per_second(data, replace(config), args.device, processes, out)
                )
    single = statistics.median(rates[1])
    parallel = statistics.median(rates[args.processes])
    print(
        f"data-parallel training, {args.image_size}px, batch {args.batch_size} per process, "
        f"{args.device}, median of {args.rounds} runs x {args.steps} steps"
    )
    print(f"  1 process:           {single:.1f} images/s")
    print(f"  {args.processes} processes:         {parallel:.1f} images/s")
    print(f"  ratio parallel/single: {parallel / single:.2f}x throughput (above 1.0 is faster)")
    print(f"  efficiency:            {parallel / single / args.processes:.0%} of linear scaling")


if __name__ == "__main__":
    main()
