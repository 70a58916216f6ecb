"""A rank's share of a least-squares problem, for the gradient-averaging test."""

from __future__ import annotations

import torch

from src.gan.training.ranks import Ranks, average_gradients


def half_batch_gradients(
    ranks: Ranks, device: torch.device, inputs: torch.Tensor, targets: torch.Tensor, fail_rank: int
) -> dict:
    """Gradient of the mean squared error on this rank's half of the batch, averaged over ranks."""
    torch.manual_seed(0)
    model = torch.nn.Linear(inputs.shape[1], 1)
    mine = slice(ranks.rank, None, ranks.world_size)
    loss = torch.nn.functional.mse_loss(model(inputs[mine]), targets[mine])
    loss.backward()
    failed = average_gradients(model.parameters(), ranks, failed=False)
    flagged = average_gradients(model.parameters(), ranks, failed=ranks.rank == fail_rank)
    return {"grads": [p.grad for p in model.parameters()], "failed": failed, "flagged": flagged}
