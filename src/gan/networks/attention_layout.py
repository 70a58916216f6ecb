"""Upstream's `LinearAttention`, computed in channels-first layout.

Upstream rearranges every query, key and value to (batch, pixels, channels)
and unfolds the 3x3 keys and values into (batch, pixels, 9, channels). Those
permutations are copies, and the 3x3 attention becomes tens of thousands of
1x64 by 64x9 matrix products: on a CPU this layer is about half of a 32 px
training step. Here the same formulas run on (batch, channels, pixels) views,
so nothing is permuted, and the 3x3 attention is nine shifted element-wise
products instead of an unfolded copy of every key and value. Same parameters,
same state_dict keys, same results up to float rounding
(`tests/test_attention_layout.py` compares outputs and gradients with
upstream's own forward; `tests/test_training_faithful.py` compares whole steps).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from src.gan.networks.upstream import upstream


def channels_first_forward(self: nn.Module, fmap: torch.Tensor) -> torch.Tensor:
    """`LinearAttention.forward` of lightweight-gan 1.2.1 without layout copies."""
    batch, _, height, width = fmap.shape
    heads, dim_head, pixels = self.heads, self.dim_head, height * width
    split = (batch * heads, dim_head, pixels)

    # linear attention: softmax over channels for q, over pixels for k
    lin_q = self.to_lin_q(fmap).reshape(split).softmax(dim=1) * self.scale
    lin_k, lin_v = (t.reshape(split) for t in self.to_lin_kv(fmap).chunk(2, dim=1))
    lin_k = lin_k.softmax(dim=-1)
    context = torch.bmm(lin_k, lin_v.transpose(1, 2))  # (bh, d, e)
    lin_out = torch.bmm(context.transpose(1, 2), lin_q)  # (bh, e, n)
    lin_out = lin_out.reshape(batch, heads * dim_head, height, width)

    # conv-like full attention: each pixel attends to its 3x3 neighbourhood, one shift at a time
    q = self.to_q(fmap).reshape(batch * heads, dim_head, height, width) * self.scale
    k, v = (t.reshape(q.shape) for t in self.to_kv(fmap).chunk(2, dim=1))
    pad = self.kernel_size // 2
    k, v = (F.pad(t, (pad, pad, pad, pad)) for t in (k, v))
    shifts = [(row, col) for row in range(self.kernel_size) for col in range(self.kernel_size)]
    sim = torch.stack(
        [(q * k[:, :, row : row + height, col : col + width]).sum(dim=1) for row, col in shifts],
        dim=1,
    )  # (bh, 9, x, y), neighbours in F.unfold's order
    sim = sim - sim.amax(dim=1, keepdim=True).detach()
    attn = sim.softmax(dim=1)
    full_out = attn[:, :1] * v[:, :, :height, :width]
    for index, (row, col) in enumerate(shifts[1:], start=1):
        full_out = (
            full_out + attn[:, index : index + 1] * v[:, :, row : row + height, col : col + width]
        )
    full_out = full_out.reshape(batch, heads * dim_head, height, width)

    out = torch.cat((self.nonlin(lin_out), full_out), dim=1)
    return self.to_out(out)


def use_channels_first_attention(model: nn.Module) -> int:
    """Rebinds `forward` of every upstream `LinearAttention` in `model`; returns how many."""
    attention_class = upstream().LinearAttention
    count = 0
    for module in model.modules():
        if type(module) is attention_class:
            module.forward = channels_first_forward.__get__(module)
            count += 1
    return count
