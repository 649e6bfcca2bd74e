"""Stored chat completions (``store: true``) and their endpoints.

``GET /v1/chat/completions`` lists them (oldest first by default, filtered by ``model`` and
``metadata[KEY]=VALUE``), ``GET``/``POST`` (``metadata`` only)/``DELETE
/v1/chat/completions/{id}`` read, update and forget one, ``GET /v1/chat/completions/{id}/messages``
lists the request's messages as sent (ids ``{id}-{index}``). Paging is the one of conversation
items (:func:`~harness.emulator.conversations.item_page`); retention is the responses store's
(:class:`~harness.emulator.store.BoundedStore`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.emulator.conversations import item_page
from harness.emulator.errors import ApiError, missing_parameter, not_found, unknown_parameter
from harness.emulator.store import BoundedStore
from harness.emulator.validate import metadata_of

__all__ = ["CompletionStore", "StoredCompletion", "listed_message"]

_METADATA_KEY = re.compile(r"^metadata\[(?P<key>[^\]]+)\]$")
#: the content parts a stored message lists (the spec's ``content_parts`` union)
_LISTED_PARTS = ("text", "image_url")


@dataclass(slots=True)
class StoredCompletion:
    """One stored completion: its body as ``GET`` returns it, the model as requested (a list
    filter may name the alias or the snapshot) and the request's messages as listed."""

    body: dict[str, Any]
    requested_model: str
    messages: list[dict[str, Any]]


def listed_message(completion_id: str, index: int, message: Mapping[str, Any]) -> dict[str, Any]:
    """A request message as ``/messages`` lists it: text ``content``, the parts it was sent as
    in ``content_parts`` (else null), and its tool calls or the call it answers."""
    content = message.get("content")
    parts: list[dict[str, Any]] | None = None
    if isinstance(content, list):
        parts = [p for p in content if isinstance(p, dict) and p.get("type") in _LISTED_PARTS]
        text = "".join(str(p.get("text", "")) for p in parts if p.get("type") == "text")
        content = text or None
    out: dict[str, Any] = {
        "id": f"{completion_id}-{index}",
        "role": message.get("role"),
        "content": content,
        "refusal": message.get("refusal"),
        "name": message.get("name"),
        "content_parts": parts,
    }
    if message.get("tool_calls"):
        out["tool_calls"] = message["tool_calls"]
    if message.get("tool_call_id") is not None:
        out["tool_call_id"] = message["tool_call_id"]
    return out


def _unknown(completion_id: str) -> ApiError:
    return not_found("Chat completion", completion_id, "completion_id")


class CompletionStore(BoundedStore[StoredCompletion]):
    """Completion id → :class:`StoredCompletion`, insertion-ordered and bounded."""

    def keep(self, body: dict[str, Any], request: Mapping[str, Any]) -> None:
        """Store a completion: its reply ``body`` and the (validated) request that made it."""
        cid = str(body["id"])
        messages = request.get("messages") or []
        self.put(
            cid,
            StoredCompletion(
                {**body, "metadata": dict(metadata_of(dict(request)) or {})},
                str(request.get("model", "")),
                [listed_message(cid, i, m) for i, m in enumerate(messages)],
            ),
        )

    def require(self, completion_id: str) -> StoredCompletion:
        """The stored completion, or a 404 :class:`ApiError`."""
        stored = self.get(completion_id)
        if stored is None:
            raise _unknown(completion_id)
        return stored

    # --- endpoints (each returns the reply body or raises ApiError) ---------------------------

    def list_page(self, query: Mapping[str, str]) -> dict[str, Any]:
        """``GET /v1/chat/completions``: ``model``, ``metadata[KEY]=VALUE`` (every pair must
        match), ``after``, ``limit`` (1–100, default 20), ``order`` (default ``asc``)."""
        wanted = {
            m["key"]: value for key, value in query.items() if (m := _METADATA_KEY.match(key))
        }
        model = query.get("model")
        chosen = [
            s.body
            for s in self
            if (model is None or model in (s.requested_model, s.body["model"]))
            and all(s.body["metadata"].get(k) == v for k, v in wanted.items())
        ]
        return item_page(chosen, query, default_order="asc", unknown_after=_unknown)

    def messages_page(self, completion_id: str, query: Mapping[str, str]) -> dict[str, Any]:
        """``GET /v1/chat/completions/{id}/messages``: ``after``, ``limit``, ``order`` (``asc``)."""
        stored = self.require(completion_id)
        return item_page(
            stored.messages,
            query,
            default_order="asc",
            unknown_after=lambda after: not_found("Message", after, "after"),
        )

    def update(self, completion_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /v1/chat/completions/{id}``: replace ``metadata`` (required; null clears it)."""
        stored = self.require(completion_id)
        for key in body:
            if key != "metadata":
                raise unknown_parameter(key, "responses")
        if "metadata" not in body:
            raise missing_parameter("metadata")
        stored.body["metadata"] = dict(metadata_of(dict(body)) or {})
        return stored.body

    def remove(self, completion_id: str) -> dict[str, Any]:
        """``DELETE /v1/chat/completions/{id}``."""
        if not self.delete(completion_id):
            raise _unknown(completion_id)
        return {"object": "chat.completion.deleted", "id": completion_id, "deleted": True}
