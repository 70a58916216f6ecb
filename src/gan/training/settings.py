"""A TrainConfig from pipeline parameters, and the check that every setting can train.

Kept apart from src/gan/config.py, which the generate step ships too: only training
needs the rules (src/params/rules.py) that these apply.
"""

from __future__ import annotations

from typing import Any

from src.common.errors import ConfigError
from src.gan.config import TrainConfig
from src.params import checks, rules

_POSITIVE = (
    "latent_dim",
    "fmap_max",
    "batch_size",
    "gradient_accumulate_every",
    "steps",
    "save_every",
    "log_every",
    "learning_rate",
)


def config_from_params(**values: Any) -> TrainConfig:
    """The config for pipeline parameters (lists as the comma-separated strings they arrive as)."""
    if "attn_res_layers" in values:
        values["attn_res_layers"] = tuple(
            int(v) for v in checks.split_list(values["attn_res_layers"])
        )
    if "aug_types" in values:
        values["aug_types"] = tuple(checks.split_list(values["aug_types"]))
    return TrainConfig(**values)


def check_config(config: TrainConfig) -> None:
    """Raises one ConfigError listing every bad setting and its fix."""
    problems = [
        rules.image_size_problem(config.image_size),
        rules.attention_problem(",".join(map(str, config.attn_res_layers)), config.image_size),
        rules.dual_contrast_problem(config.dual_contrast_loss, config.disc_output_size),
        rules.aug_prob_problem(config.aug_prob),
        rules.aug_types_problem(",".join(config.aug_types)),
        checks.one_of("amp", checks.AMP_MODES)(config.amp),
        checks.one_of("optimizer", ("adam", "adabelief"))(config.optimizer),
        checks.at_least("max_nan_restarts", 0, "0 or more")(config.max_nan_restarts),
    ]
    problems += [checks.positive(name)(getattr(config, name)) for name in _POSITIVE]
    problems.append(rules.channels_problem(config.transparent, config.greyscale))
    problems = [problem for problem in problems if problem]
    if problems:
        raise ConfigError.from_problems(problems)
