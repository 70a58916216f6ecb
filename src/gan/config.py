"""Training and architecture settings, with upstream lightweight-gan's meanings."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

# Settings that change tensor shapes: a checkpoint only resumes when these match.
ARCHITECTURE_FIELDS = (
    "image_size",
    "latent_dim",
    "fmap_max",
    "fmap_inverse_coef",
    "transparent",
    "greyscale",
    "attn_res_layers",
    "freq_chan_attn",
    "disc_output_size",
    "antialias",
    "optimizer",
)


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; defaults suit a CPU smoke run at 32 px.

    Defaults of pipeline parameters equal their local defaults in src/params/schema.py
    (a test holds them equal; importing the schema here would ship it in every GAN step).
    """

    image_size: int = 32
    latent_dim: int = 64
    fmap_max: int = 32
    fmap_inverse_coef: int = 12
    transparent: bool = False
    greyscale: bool = False
    attn_res_layers: tuple[int, ...] = ()
    freq_chan_attn: bool = False
    disc_output_size: int = 1
    antialias: bool = False
    optimizer: str = "adam"
    learning_rate: float = 2e-4
    ttur_mult: float = 1.0
    batch_size: int = 4
    gradient_accumulate_every: int = 1
    steps: int = 100
    gp_weight: float = 10.0
    aug_prob: float = -1.0
    aug_types: tuple[str, ...] = ("translation", "cutout")
    dual_contrast_loss: bool = False
    save_every: int = 50
    checkpoint_minutes: float = 10.0  # also save this long after the last save; 0: off
    log_every: int = 10
    seed: int = 0
    amp: str = "auto"
    max_nan_restarts: int = 3
    name: str = "default"

    @property
    def channels(self) -> int:
        return 4 if self.transparent else 1 if self.greyscale else 3

    def aug_probability(self, image_count: int) -> float:
        """Upstream's rule when aug_prob is -1: more augmentation for small sets."""
        if self.aug_prob >= 0:
            return self.aug_prob
        return min(0.5, (1e5 - image_count) * 3e-6) if image_count < 1e5 else 0.0

    def architecture(self) -> dict[str, Any]:
        return {name: _jsonable(getattr(self, name)) for name in ARCHITECTURE_FIELDS}

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        clean = {k: v for k, v in values.items() if k in known}
        for key in ("attn_res_layers", "aug_types"):
            if key in clean:
                clean[key] = tuple(clean[key])
        return cls(**clean)

    def upstream_config(self) -> dict[str, Any]:
        """`.config.json` as upstream's Trainer writes it, plus the fmap_max it forgets."""
        return {
            "image_size": self.image_size,
            "transparent": self.transparent,
            "greyscale": self.greyscale,
            "syncbatchnorm": False,
            "disc_output_size": self.disc_output_size,
            "optimizer": self.optimizer,
            "attn_res_layers": list(self.attn_res_layers),
            "freq_chan_attn": self.freq_chan_attn,
            "fmap_max": self.fmap_max,
        }


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
