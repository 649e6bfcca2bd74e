"""What every source format yields: a chat request body with its line, or a bad line."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["BadLine", "SourceItem", "SourceRequest", "Unusable", "json_lines", "jsonl_requests"]


@dataclass(frozen=True)
class SourceRequest:
    """One Chat Completions request body read from ``line`` of the source (1-based)."""

    line: int
    body: dict[str, Any]
    #: a known-good answer to it (a logged reply), when the format carries one
    reference: str | None = None
    #: the prompt id (default ``line-N``); formats with several requests per line name them
    id: str | None = None
    #: how report notes name the request (``custom_id X``; default: the id)
    label: str | None = None
    #: what reading it changed (a dropped option): recorded as changes in the report
    changes: tuple[str, ...] = ()
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


def json_lines(path: Path) -> Iterator[tuple[int, Any] | BadLine]:
    """Every non-blank line of ``path`` (1-based) parsed as JSON, or the bad line saying why."""
    with path.open(encoding="utf-8", errors="replace") as fh:
        for number, text in enumerate(fh, 1):
            if not text.strip():
                continue
            try:
                yield number, json.loads(text)
            except json.JSONDecodeError as exc:
                yield BadLine(number, f"malformed JSON ({exc.msg} at column {exc.colno})")


#: one parsed line → its request body and reference, or None and the problem
LineParser = Callable[[Any], tuple[dict[str, Any] | None, str | None, str]]


def jsonl_requests(path: Path, parse: LineParser) -> Iterator[SourceItem]:
    """Every non-blank line of a JSON Lines source as a request (``parse``) or a bad line."""
    for item in json_lines(path):
        if isinstance(item, BadLine):
            yield item
            continue
        number, data = item
        body, reference, problem = parse(data)
        yield BadLine(number, problem) if body is None else SourceRequest(number, body, reference)
