"""How close the CPU memory guard's estimate comes to the peak memory training really takes.

    python -m bench.memory_model [--configs 32:16:2,32:16:8,64:32:2,...]

Each config (image size : fmap_max : batch size) trains two steps (a gradient-
penalty step and a plain one) in a fresh process; the growth of its peak RSS
(VmHWM) over what it held once the networks and images were in place is the
measured baseline. The estimate is src/gan/training/memory.py's. Prints each
ratio estimate/measured and their median; ACTIVATION_BYTES there comes from here.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT

DEFAULT_CONFIGS = "32:16:2,32:16:8,64:32:2,64:32:8,128:64:2,128:64:6,256:32:1,256:32:3"
PROBE = """
import json, sys, torch
from pathlib import Path
from src.gan.config import TrainConfig
from src.gan.images import load_images
from src.gan.networks.build import build_gan
from src.gan.training.image_bank import ImageBank
from src.gan.training.precision import AmpChoice, Precision
from src.gan.training.step import GanStep

def status(key):
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(key))

size, fmap, batch = (int(v) for v in sys.argv[1:4])
config = TrainConfig(image_size=size, fmap_max=fmap, batch_size=batch, latent_dim=64,
                     attn_res_layers=(32,) if size >= 64 else ())
cpu = torch.device("cpu")
gan = build_gan(config, cpu)
bank = ImageBank(load_images(Path(sys.argv[4]), 3, size), 3, 0, cpu)
step = GanStep(gan, bank, config, Precision(AmpChoice(None, "off"), cpu), 0.3)
before = status("VmRSS")
step(0)
step(1)
print("RESULT " + json.dumps({"growth": status("VmHWM") - before}))
"""


def estimate(size: int, fmap: int, batch: int) -> float:
    import torch

    from src.gan.config import TrainConfig
    from src.gan.networks.build import build_gan
    from src.gan.training.memory import image_step_bytes, optimiser_bytes

    config = TrainConfig(image_size=size, fmap_max=fmap, batch_size=batch, latent_dim=64,
                         attn_res_layers=(32,) if size >= 64 else ())  # fmt: skip
    return optimiser_bytes(build_gan(config, torch.device("cpu"))) + batch * image_step_bytes(
        config
    )


def measure(size: int, fmap: int, batch: int, folder: Path) -> float:
    from bench.gpu_check import make_images

    data = folder / f"images_{size}"
    if not data.exists():
        make_images(data, size, count=max(8, batch * 2))
    command = [sys.executable, "-c", PROBE, str(size), str(fmap), str(batch), str(data)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(run.stdout.rsplit("RESULT ", 1)[1])["growth"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", default=DEFAULT_CONFIGS)
    args = parser.parse_args()
    configs = [tuple(int(v) for v in item.split(":")) for item in args.configs.split(",")]
    ratios = []
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:
        print(
            f"{'size':>5} {'fmap':>5} {'batch':>5} {'measured GB':>12} {'estimate GB':>12} {'ratio':>6}"
        )
        for size, fmap, batch in configs:
            measured, guessed = (
                measure(size, fmap, batch, Path(folder)),
                estimate(size, fmap, batch),
            )
            ratios.append(guessed / measured)
            print(
                f"{size:>5} {fmap:>5} {batch:>5} {measured / 1e9:>12.2f} {guessed / 1e9:>12.2f} {ratios[-1]:>6.2f}"
            )
    print(f"median ratio estimate/measured: {statistics.median(ratios):.2f} "
          f"(from {min(ratios):.2f} to {max(ratios):.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
