"""Batch-style JSONL: OpenAI Batch API input lines, ``{"body": …}`` lines or bare bodies.

The file is read one line at a time (memory does not grow with its length). A Batch API line
must be ``POST /v1/chat/completions``; a ``/v1/responses`` line (``harness record`` writes
those for ``responses.create``) is listed as not imported, with the reason; any other URL is a
bad line, as is malformed JSON or a body without a ``messages`` list.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.importers.source import BadLine, SourceItem, SourceRequest, Unusable, json_lines

__all__ = ["CHAT_URL", "read_batch"]

CHAT_URL = "/v1/chat/completions"
RESPONSES_URL = "/v1/responses"
_BATCH_KEYS = frozenset({"custom_id", "method", "url"})


def _body(data: Any) -> tuple[dict[str, Any] | None, str | None, str]:
    """The chat request body of one parsed line (a batch line carries no reference), or the
    problem."""
    if not isinstance(data, dict):
        return None, None, f"expected a JSON object, got {type(data).__name__}"
    if _BATCH_KEYS & data.keys():
        url = data.get("url")
        if url != CHAT_URL:
            return None, None, f"unknown url {url!r}: only {CHAT_URL} requests are imported"
        method = data.get("method", "POST")
        if method != "POST":
            return None, None, f"method {method!r}: a batch request is POST"
    if "body" in data and "messages" not in data:
        data = data["body"]
        if not isinstance(data, dict):
            return None, None, "body is not a JSON object"
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        return None, None, "not a Chat Completions request body (no messages list)"
    model = data.get("model")
    if not isinstance(model, str) or not model:
        return None, None, "not a Chat Completions request body (no model)"
    return data, None, ""


def read_batch(path: Path) -> Iterator[SourceItem]:
    """Every non-blank line of ``path`` as a request or a bad line, in order."""
    for item in json_lines(path):
        if isinstance(item, BadLine):
            yield item
            continue
        number, data = item
        if isinstance(data, dict) and data.get("url") == RESPONSES_URL:
            yield Unusable(
                number,
                "a Responses API request (url /v1/responses): only Chat Completions requests "
                "are imported",
            )
            continue
        body, reference, problem = _body(data)
        yield BadLine(number, problem) if body is None else SourceRequest(number, body, reference)
