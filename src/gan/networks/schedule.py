"""Upstream's fixed training schedule (lightweight_gan.py 1.2.1, `Trainer.train`)."""

GP_EVERY = 4  # line 1223: `apply_gradient_penalty = self.steps % 4 == 0`
EMA_EVERY = 10  # line 1350: `if ... self.steps % 10 == 0 and self.steps > 20000: self.GAN.EMA()`
EMA_AVERAGING_STARTS = 20_000  # line 1350: before this step GE is only a periodic copy of G
EMA_RESET_EVERY = 1_000  # line 1353: `if ... self.steps <= 25000 and self.steps % 1000 == 2:`
EMA_RESET_OFFSET = 2
EMA_RESETS_UNTIL = 25_000


def applies_gradient_penalty(step: int) -> bool:
    return step % GP_EVERY == 0


def averages_ema(step: int) -> bool:
    return step % EMA_EVERY == 0 and step > EMA_AVERAGING_STARTS


def resets_ema(step: int) -> bool:
    """Upstream copies G into GE (`reset_parameter_averaging`) on these steps."""
    return step <= EMA_RESETS_UNTIL and step % EMA_RESET_EVERY == EMA_RESET_OFFSET


def ema_is_averaged(step: int) -> bool:
    """Before this, GE is a stale copy of G: samples should come from G itself."""
    return step > EMA_AVERAGING_STARTS
