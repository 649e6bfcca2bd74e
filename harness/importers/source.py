"""What every source format yields: a chat request body with its line, or a bad line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["BadLine", "SourceItem", "SourceRequest"]


@dataclass(frozen=True)
class SourceRequest:
    """One Chat Completions request body read from ``line`` of the source (1-based)."""

    line: int
    body: dict[str, Any]
    #: a known-good answer to it (a logged reply), when the format carries one
    reference: str | None = None


@dataclass(frozen=True)
class BadLine:
    """A line that holds no request: what is wrong with it, in a few words."""

    line: int
    problem: str


SourceItem = SourceRequest | BadLine
