"""The few exception types users see. Each carries a one-line, actionable message."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


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


def closest(word: str, known: Iterable[str], n: int = 1, cutoff: float = 0.6) -> list[str]:
    """The ``n`` known names nearest to a mistyped ``word`` (for "did you mean …?")."""
    return difflib.get_close_matches(word, list(known), n=n, cutoff=cutoff)
