"""The channels-first attention equals upstream's `LinearAttention.forward`, values and gradients."""

from __future__ import annotations

import torch

from src.gan.config import TrainConfig
from src.gan.networks.attention_layout import channels_first_forward, use_channels_first_attention
from src.gan.networks.build import build_gan
from src.gan.networks.upstream import upstream


def test_outputs_and_gradients_equal_upstreams_forward():
    torch.manual_seed(0)
    attention = upstream().LinearAttention(32, dim_head=16, heads=4)
    fmap = torch.randn(2, 32, 8, 8, requires_grad=True)
    expected = attention(fmap)  # upstream's own forward: nothing rebound on this instance
    upstream_grads = torch.autograd.grad(expected.square().sum(), [fmap, *attention.parameters()])
    ours = channels_first_forward(attention, fmap)
    our_grads = torch.autograd.grad(ours.square().sum(), [fmap, *attention.parameters()])
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)
    for mine, theirs in zip(our_grads, upstream_grads, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5)


def test_every_attention_layer_of_a_built_gan_is_rebound():
    config = TrainConfig(image_size=32, latent_dim=32, fmap_max=16, attn_res_layers=(16,))
    gan = build_gan(config, torch.device("cpu"))
    layers = [m for m in gan.modules() if type(m) is upstream().LinearAttention]
    assert layers and all(m.forward.__func__ is channels_first_forward for m in layers)
    assert use_channels_first_attention(gan) == len(layers)
