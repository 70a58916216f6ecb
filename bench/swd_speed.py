"""The generate step's SWD scores: patches gathered where they are drawn, against unfolding all.

    python -m bench.swd_speed [--images 64] [--size 256] [--repeats 3]

Times `swd_with_references` (the score and its two references, as the generate
step computes them) on random images, each way in turn within every repeat;
the unfold baseline is how the scores were computed before, picking its
patches from `F.unfold`'s every patch (the same numbers: a test holds them equal).
"""

from __future__ import annotations

import argparse
from unittest import mock

import torch
import torch.nn.functional as F

from bench.common import interleaved_medians
from src.gan.scoring import swd


def unfold_descriptors(level: torch.Tensor, per_image: int, generator: torch.Generator):
    patches = F.unfold(level, swd.PATCH)  # [N, C*49, L]: every patch
    index = torch.randint(0, patches.shape[-1], (level.shape[0], per_image), generator=generator)
    chosen = torch.gather(patches, 2, index.unsqueeze(1).expand(-1, patches.shape[1], -1))
    return chosen.permute(0, 2, 1).reshape(-1, patches.shape[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    real = torch.rand(2 * args.images, 3, args.size, args.size, generator=generator)
    fake = torch.rand(args.images, 3, args.size, args.size, generator=generator)
    scores = {}

    def score(name: str) -> None:
        scores[name] = swd.swd_with_references(real, fake)

    def unfolded() -> None:
        with mock.patch.object(swd, "patch_descriptors", unfold_descriptors):
            score("unfold")

    medians = interleaved_medians(
        {"gathered": lambda: score("gathered"), "unfold": unfolded}, args.repeats, lambda: None
    )
    assert scores["gathered"] == scores["unfold"], scores
    print(f"SWD with references, {args.images} generated images at {args.size}px, CPU")
    print(f"  unfold every patch: {medians['unfold']:.3f}s (median of {args.repeats})")
    print(f"  gather the drawn:   {medians['gathered']:.3f}s")
    print(f"  speed-up: {medians['unfold'] / medians['gathered']:.2f}x (scores identical)")


if __name__ == "__main__":
    main()
