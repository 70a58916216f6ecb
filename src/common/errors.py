"""The project's error for bad input: its message names the problem and the fix."""

from __future__ import annotations


class ConfigError(ValueError):
    """A run parameter or option is invalid; the message says how to fix it.

    Several problems found at once are joined one per line.
    """

    @classmethod
    def from_problems(cls, problems: list[str]) -> ConfigError:
        if len(problems) == 1:
            return cls(problems[0])
        return cls(f"{len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems))
