"""Record each parameter's gradient at the moment its optimizer steps."""

from __future__ import annotations

import torch


def capture_gradients(gan: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Hooks `gan.D_opt` and `gan.G_opt`; the returned dict fills in as they step."""
    names = {id(param): name for name, param in gan.named_parameters()}
    captured: dict[str, torch.Tensor] = {}

    def record(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
        for group in optimizer.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    captured[names[id(param)]] = param.grad.detach().clone()

    gan.D_opt.register_step_pre_hook(record)
    gan.G_opt.register_step_pre_hook(record)
    return captured
