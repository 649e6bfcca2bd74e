"""What every source format yields: a chat request body with its line, or a bad line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["BadLine", "SourceItem", "SourceRequest", "Unusable"]


@dataclass(frozen=True)
class SourceRequest:
    """One Chat Completions request body read from ``line`` of the source (1-based)."""

    line: int
    body: dict[str, Any]
    #: a known-good answer to it (a logged reply), when the format carries one
    reference: str | None = None
    #: the prompt id (default ``line-N``); formats with several requests per line name them
    id: str | None = None
    #: (field, note): what the source shows of a field it did not record (the note is reported
    #: when neither the source nor --defaults gives the field)
    gaps: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class BadLine:
    """A line that holds no request: what is wrong with it, in a few words."""

    line: int
    problem: str


@dataclass(frozen=True)
class Unusable:
    """A request the source records without what a request needs (content capture off, …):
    listed as not imported with the reason, not a bad line."""

    line: int
    reason: str


SourceItem = SourceRequest | BadLine | Unusable
