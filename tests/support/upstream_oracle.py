"""Run one upstream `Trainer.train()` step on the CPU per input and save what happened.

    python -m tests.support.upstream_oracle IN.pt OUT.pt [IN.pt OUT.pt ...]

IN.pt holds `config` (Trainer kwargs), `init_state` (GAN state_dict), `batch`
(float images) and `seed`. OUT.pt gets the losses, the gradients each optimizer
stepped with, and the GAN state after the step.
"""

from __future__ import annotations

import random
import sys
import tempfile

import torch

from devtools.upstream_cpu import load_upstream_on_cpu
from tests.support.gradient_capture import capture_gradients


def main(paths: list[str]) -> None:
    module = load_upstream_on_cpu()
    blur = module.Blur  # init_GAN replaces this global with nn.Identity when antialias is off
    for in_path, out_path in zip(paths[::2], paths[1::2], strict=True):
        module.Blur = blur
        one_step(module, in_path, out_path)


def one_step(module, in_path: str, out_path: str) -> None:
    """A fresh Trainer from IN.pt takes its step; OUT.pt gets what happened."""
    payload = torch.load(in_path, weights_only=False)
    with tempfile.TemporaryDirectory() as base:
        trainer = module.Trainer(
            base_dir=base,
            use_aim=False,
            num_image_tiles=3,
            save_every=10**9,
            evaluate_every=10**9,
            **payload["config"],
        )
        trainer.init_GAN()
        trainer.GAN.load_state_dict(payload["init_state"])
        batch = payload["batch"]
        trainer.loader = iter(lambda: batch.clone(), None)
        trainer.steps = payload.get("step", 0)
        gradients = capture_gradients(trainer.GAN)
        torch.manual_seed(payload["seed"])
        random.seed(payload["seed"])
        trainer.train()
        torch.save(
            {
                "d_loss": trainer.d_loss,
                "g_loss": trainer.g_loss,
                "gp": trainer.last_gp_loss,
                "state": trainer.GAN.state_dict(),
                "gradients": gradients,
            },
            out_path,
        )


if __name__ == "__main__":
    main(sys.argv[1:])
