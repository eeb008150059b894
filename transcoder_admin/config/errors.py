"""Configuration problems, collected and reported together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in one configuration file."""

    file: str
    key: str
    message: str
    value: Any = None
    has_value: bool = False

    def __str__(self) -> str:
        where = f"{self.file}: {self.key}" if self.key else self.file
        if self.has_value:
            return f"{where}: bad value {self.value!r}: {self.message}"
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """The configuration is invalid; carries every problem found, not only the first."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        """All problems, one per line."""
        count = len(self.problems)
        head = f"{count} configuration error{'s' if count != 1 else ''}:"
        return "\n".join([head] + [f"  {p}" for p in self.problems])
