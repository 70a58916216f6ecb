"""Real non-finite losses in the real training step: the discriminator's output turns NaN on cue."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from src.gan.training.step import GanStep, StepLosses


class NanInjector:
    """Spies on every GanStep built (training itself is untouched) and poisons D's output when armed.

    `armed` D calls after arming return a NaN main output, so the discriminator's
    loss is really NaN and the real step raises as it would on a diverging run.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.steps: list[GanStep] = []
        self.armed = 0
        self.on_poison: Callable[[], None] = lambda: None  # runs as each output is poisoned
        original = GanStep.__init__
        injector = self

        def spying_init(step: GanStep, *args, **kwargs) -> None:
            original(step, *args, **kwargs)
            injector.steps.append(step)
            step.gan.D.register_forward_hook(injector._hook)

        monkeypatch.setattr(GanStep, "__init__", spying_init)

    def _hook(self, module, inputs, output):
        if self.armed <= 0:
            return None
        self.armed -= 1
        self.on_poison()
        main, *rest = output
        return (main * float("nan"), *rest)

    def arm_after(self, step: int, calls: int = 1) -> Callable[[int, StepLosses], None]:
        """An `on_step` callback that poisons the next `calls` D calls the first time `step`
        steps are done (a restart that redoes the step is not poisoned again)."""
        fired = []

        def on_step(done: int, losses: StepLosses) -> None:
            if done == step and not fired:
                fired.append(done)
                self.armed = calls

        return on_step
