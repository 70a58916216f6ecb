"""Build upstream's LightweightGAN (G, D, D_aug, GE, both optimizers) on any device."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from types import ModuleType

import torch
from torch import nn

from src.gan.config import TrainConfig
from src.gan.networks.attention_layout import use_channels_first_attention
from src.gan.networks.upstream import upstream

_build_lock = threading.Lock()
_original_blur: type | None = None


def pick_device(requested: str = "auto") -> torch.device:
    """CUDA when present (or asked for), else CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


@contextlib.contextmanager
def _upstream_choices(config: TrainConfig) -> Iterator[ModuleType]:
    """Upstream's module with antialiasing and the norm layer chosen as `Trainer.init_GAN` does:
    by rebinding module globals before construction (under a lock; put back afterwards)."""
    global _original_blur
    module = upstream()
    with _build_lock:
        if _original_blur is None:
            _original_blur = module.Blur
        saved = module.Blur, module.norm_class
        module.Blur = _original_blur if config.antialias else nn.Identity
        module.norm_class = nn.BatchNorm2d
        try:
            yield module
        finally:
            module.Blur, module.norm_class = saved


def build_gan(config: TrainConfig, device: torch.device) -> nn.Module:
    """Upstream's `LightweightGAN` with upstream's initialisation, moved to `device`.

    Its attention layers compute in channels-first layout (`src.gan.networks.attention_layout`).
    """
    with _upstream_choices(config) as module:

        class PortableLightweightGAN(module.LightweightGAN):
            def cuda(self, device=None):  # upstream's __init__ ends with self.cuda(rank)
                return self

        gan = PortableLightweightGAN(
            optimizer=config.optimizer,
            lr=config.learning_rate,
            latent_dim=config.latent_dim,
            attn_res_layers=list(config.attn_res_layers),
            freq_chan_attn=config.freq_chan_attn,
            image_size=config.image_size,
            ttur_mult=config.ttur_mult,
            fmap_max=config.fmap_max,
            fmap_inverse_coef=config.fmap_inverse_coef,
            disc_output_size=config.disc_output_size,
            transparent=config.transparent,
            greyscale=config.greyscale,
        )
    use_channels_first_attention(gan)
    return _moved(gan, device)


def discriminator_activations(config: TrainConfig) -> int:
    """Elements of every layer's output in one discriminator forward of one image.

    Built and run on the meta device: shapes only, no memory and no arithmetic.
    """
    with _upstream_choices(config) as module, torch.device("meta"):
        discriminator = module.Discriminator(
            image_size=config.image_size,
            fmap_max=config.fmap_max,
            fmap_inverse_coef=config.fmap_inverse_coef,
            transparent=config.transparent,
            greyscale=config.greyscale,
            attn_res_layers=list(config.attn_res_layers),
            disc_output_size=config.disc_output_size,
        )
    total = 0

    def count(layer: nn.Module, inputs: tuple, output: object) -> None:
        nonlocal total
        outputs = output if isinstance(output, (tuple, list)) else (output,)
        total += sum(t.numel() for t in outputs if isinstance(t, torch.Tensor))

    for layer in discriminator.modules():
        if not list(layer.children()):
            layer.register_forward_hook(count)
    discriminator(
        torch.zeros(1, config.channels, config.image_size, config.image_size, device="meta")
    )
    return total


def _moved(gan: nn.Module, device: torch.device) -> nn.Module:
    """`gan` on `device`, its optimizers pointing at the moved parameters.

    To a CUDA device `.to()` moves parameters in place; to devices whose tensors
    are of another kind (meta, for instance) it makes new ones, which the
    optimizers built in upstream's constructor would not see.
    """
    names = {param: name for name, param in gan.named_parameters()}
    gan.to(device)
    moved = dict(gan.named_parameters())
    for optimizer in (gan.G_opt, gan.D_opt):
        for group in optimizer.param_groups:
            group["params"] = [moved[names[param]] for param in group["params"]]
    return gan
