"""Errors a user can act on: each names the file, the key, the value and what is allowed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    key: str  # dotted path inside the file, e.g. "axes.threads_per_task[1]"
    value: object
    allowed: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key or '(top level)'} = {shown(self.value)}: {self.allowed}"


MAX_SHOWN = 160  # characters of a value quoted in a message


def shown(value) -> str:
    """repr(value), cut short: a message names the value, it does not repeat 20,000 seeds."""
    text = repr(value)
    if len(text) <= MAX_SHOWN:
        return text
    size = f", {len(value):,} items" if isinstance(value, (list, dict, tuple)) else f", {len(text):,} characters"
    return f"{text[:MAX_SHOWN]}... (cut{size})"


class ConfigError(Exception):
    """One or more problems in the configuration, found before anything runs."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = list(problems)
        lines = [f"invalid configuration ({len(self.problems)} problem(s)); nothing was run:"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))
