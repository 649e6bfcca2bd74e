"""Batch-style JSONL: OpenAI Batch API input lines, ``{"body": …}`` lines or bare bodies, of
Chat Completions or Responses requests.

The file is read one line at a time (memory does not grow with its length). A Batch API line
must be ``POST /v1/chat/completions`` or ``POST /v1/responses``; any other URL is a bad line, as
is malformed JSON or a body that is neither request. A bare body is a chat request if it holds
``messages``, a Responses request if it holds ``input``. A Responses body is translated to the
neutral request (:func:`~harness.translate.from_responses.neutral_from_responses_kwargs`) and
from it to the chat body every other stage reads; what it cannot carry makes the request not
imported (with the reason) or is dropped and recorded as a change.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.errors import TranslationError
from harness.importers.source import BadLine, SourceItem, SourceRequest, Unusable, json_lines

__all__ = ["CHAT_URL", "INSTRUCTIONS_ROLE", "RESPONSES_URL", "read_batch"]

CHAT_URL = "/v1/chat/completions"
RESPONSES_URL = "/v1/responses"
_BATCH_KEYS = frozenset({"custom_id", "method", "url"})
#: the not-carried entry a Responses line with ``instructions`` adds to the report
INSTRUCTIONS_ROLE = {
    "instructions role": "Responses instructions do not say whether the app sent a system or "
    "a developer message: imported as system",
}


def _body(data: Any) -> tuple[dict[str, Any] | None, str]:
    """The request body of one parsed line and its API (``chat`` or ``responses``), or None
    and the problem."""
    if not isinstance(data, dict):
        return None, f"expected a JSON object, got {type(data).__name__}"
    url = None
    if _BATCH_KEYS & data.keys():
        url = data.get("url")
        if url not in (CHAT_URL, RESPONSES_URL):
            return None, (
                f"unknown url {url!r}: only {CHAT_URL} and {RESPONSES_URL} requests are imported"
            )
        method = data.get("method", "POST")
        if method != "POST":
            return None, f"method {method!r}: a batch request is POST"
    if "body" in data and "messages" not in data and "input" not in data:
        data = data["body"]
        if not isinstance(data, dict):
            return None, "body is not a JSON object"
    if url == RESPONSES_URL or (url is None and "input" in data and "messages" not in data):
        if "input" not in data:
            return None, "not a Responses request body (no input)"
        api = "responses"
    else:
        messages = data.get("messages")
        if not isinstance(messages, list) or not messages:
            return None, "not a Chat Completions request body (no messages list)"
        api = "chat"
    model = data.get("model")
    if not isinstance(model, str) or not model:
        return None, f"not a {'Responses' if api == 'responses' else 'Chat Completions'} " + (
            "request body (no model)"
        )
    return data, api


def _chat_body(body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A Responses body as the chat body of the same request, and what was dropped (raises
    TranslationError naming what cannot be carried)."""
    from harness.translate.convert import to_chat_kwargs
    from harness.translate.from_responses import neutral_from_responses_kwargs

    request, notes = neutral_from_responses_kwargs(body)
    chat = to_chat_kwargs(request)
    # the translator adds what a run sends; the import keeps what the source said
    chat.pop("stream_options", None)
    if "stream" not in body:
        del chat["stream"]
    if request.params.metadata is not None:
        chat["metadata"] = dict(request.params.metadata)  # chat drops it unless stored
    return chat, notes


def read_batch(path: Path, not_carried: dict[str, str] | None = None) -> Iterator[SourceItem]:
    """Every non-blank line of ``path`` as a request, a request not imported (a Responses body
    the chat model cannot carry) or a bad line, in order. ``not_carried`` is filled as
    Responses lines are read."""
    for item in json_lines(path):
        if isinstance(item, BadLine):
            yield item
            continue
        number, data = item
        body, api = _body(data)
        label = None
        if isinstance(data, dict) and data.get("custom_id") is not None:
            label = f"custom_id {data['custom_id']}"
        if body is None:
            yield BadLine(number, api)
            continue
        if api == "chat":
            yield SourceRequest(number, body, label=label)
            continue
        try:
            chat, notes = _chat_body(body)
        except TranslationError as exc:
            reason = str(exc).removeprefix("chat: ")
            yield Unusable(number, f"{label}: {reason}" if label else reason)
            continue
        if not_carried is not None and body.get("instructions") is not None:
            not_carried.update(INSTRUCTIONS_ROLE)
        yield SourceRequest(number, chat, label=label, changes=tuple(notes))
