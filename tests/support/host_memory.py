"""How much anonymous (process-private) memory a training process's image bank costs."""

from __future__ import annotations

from pathlib import Path

import torch

from src.gan.images import load_images
from src.gan.training.image_bank import ImageBank
from src.gan.training.ranks import Ranks


def anonymous_bytes() -> int:
    """RssAnon: memory of this process that no file backs (a private copy of the images would be)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon in /proc/self/status")


def bank_anonymous_growth(ranks: Ranks, device: torch.device, folder: Path) -> int:
    """Anonymous memory added by loading `folder` into a bank and drawing a whole epoch."""
    before = anonymous_bytes()
    bank = ImageBank(load_images(folder, 3), 3, 0, device, ranks)
    for _ in range(len(bank) // bank.world_size // 8):
        bank.next_batch(8)
    return anonymous_bytes() - before
