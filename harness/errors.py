"""The few exception types users see. Each carries a one-line, actionable message."""

from __future__ import annotations


class HarnessError(Exception):
    """Base class: anything the CLI turns into a one-line message and exit status 2."""

    exit_code = 2


class ScenarioError(HarnessError):
    """A scenario file is invalid. ``problems`` holds one ``file:line: field: message`` each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class TranslationError(HarnessError):
    """A neutral request cannot be expressed for one of the APIs (reason and fix in message)."""


class TargetError(HarnessError):
    """The target cannot be used as asked (missing key, unreachable URL, budget exceeded)."""


class CassetteError(HarnessError):
    """A cassette is missing, stale, or lacks the interaction a replay needs."""


class StaleSummaryError(HarnessError):
    """A summary.json written under an older schema: its figures mean something else now."""
