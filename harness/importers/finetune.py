"""Fine-tuning chat JSONL (``{"messages", "tools", "parallel_tool_calls"}``) as chat requests.

Each line is one example: every message but the last is the request, the final assistant
message is its ``reference``. The format holds no model, output format, streaming or sampling
parameters: :data:`NOT_CARRIED` names them for the import report, and ``--defaults`` supplies them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.importers.source import SourceItem, jsonl_requests

__all__ = ["NOT_CARRIED", "read_finetune"]

NOT_CARRIED = {
    "model": "a training example names no model",
    "response_format": "examples hold no output format",
    "stream": "examples are not sent, so not streamed",
    "tool_choice": "examples hold no tool_choice",
    "user": "examples hold no end-user id",
    "sampling": "temperature, top_p, max_completion_tokens, seed, stop… are not in examples",
}
#: keys of an example that are not chat request parameters (the per-message training weight)
_MESSAGE_EXTRAS = ("weight",)


def _reference(message: dict[str, Any]) -> str | None:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict)) or None
    return None


def _example(data: Any) -> tuple[dict[str, Any] | None, str | None, str]:
    """The request body, its reference, or the problem."""
    if not isinstance(data, dict):
        return None, None, f"expected a JSON object, got {type(data).__name__}"
    messages = data.get("messages")
    if not isinstance(messages, list) or len(messages) < 2:
        return None, None, "not a fine-tuning chat example (no messages list of two or more)"
    if not all(isinstance(m, dict) for m in messages):
        return None, None, "messages: every message must be a JSON object"
    last = messages[-1]
    if last.get("role") != "assistant":
        return None, None, "the last message must be the assistant's (it becomes the reference)"
    body: dict[str, Any] = {
        "messages": [
            {k: v for k, v in m.items() if k not in _MESSAGE_EXTRAS} for m in messages[:-1]
        ]
    }
    for key in ("tools", "parallel_tool_calls"):
        if key in data:
            body[key] = data[key]
    return body, _reference(last), ""


def read_finetune(path: Path) -> Iterator[SourceItem]:
    """Every non-blank line of ``path`` as a request (with its reference) or a bad line."""
    return jsonl_requests(path, _example)
