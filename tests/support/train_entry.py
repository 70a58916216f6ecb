"""Train the SMOKE settings on a cleansed set: a script a launcher such as torchrun starts per rank.

python tests/support/train_entry.py DATA_DIR MODEL_DIR STEPS
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from src.gan.training.loop import train_gan
from tests.conftest import SMOKE

if __name__ == "__main__":
    data, model, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    train_gan(Path(data), Path(model), replace(SMOKE, steps=steps, save_every=steps))
