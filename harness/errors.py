"""The few exception types users see. Each carries a one-line, actionable message."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from pydantic import ValidationError


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


class HistoryError(HarnessError):
    """The run history cannot be used: unreadable path, a damaged file, or a newer schema."""


class StaleSummaryError(HarnessError):
    """A summary.json written under an older schema: its figures mean something else now."""


def first_problem(exc: ValidationError, root: str = "(top level)") -> tuple[str, str]:
    """The first field pydantic rejected, dotted (``root`` for the value itself), and why."""
    err = exc.errors()[0]
    return ".".join(str(p) for p in err["loc"]) or root, err["msg"]


def invalid_file(path: Path, exc: ValidationError, fix: str) -> HarnessError:
    """``FILE: FIELD: why — fix`` for a file that parsed but does not fit its model."""
    where, why = first_problem(exc)
    return HarnessError(f"{path}: {where}: {why} — {fix}")


def closest(word: str, known: Iterable[str], n: int = 1, cutoff: float = 0.6) -> list[str]:
    """The ``n`` known names nearest to a mistyped ``word`` (for "did you mean …?")."""
    return difflib.get_close_matches(word, list(known), n=n, cutoff=cutoff)
