"""The Conversations API: ``/v1/conversations`` and its items, held in memory.

A conversation is an ordered list of items, each kept in two forms: the item as the API returns
it (with ``id`` and ``status``) and the prompt segments it renders to. ``POST /v1/responses``
with ``conversation`` prepends those segments to its input (like a stored chain) and appends its
input and output items afterwards (:meth:`Conversation.extend`), so a conversation turn renders,
bills and hits the prompt cache exactly as the same turn chained by ``previous_response_id``.

Error wording the public record does not show (an unknown conversation or item) is modelled on
``GET /v1/responses/{id}``'s 404; see ``docs/api-fidelity.md``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.emulator.errors import ApiError, invalid, missing_parameter, not_found
from harness.emulator.prompt import Segment
from harness.emulator.responses_out import new_id as _new_id
from harness.emulator.validate import metadata_of, type_error

__all__ = [
    "MAX_ITEMS_PER_CREATE",
    "Conversation",
    "ConversationStore",
    "Held",
    "ItemParser",
    "item_page",
    "stored_item",
]

#: the spec's ``maxItems`` on ``items`` of conversation create and items create
MAX_ITEMS_PER_CREATE = 20
_MAX_LIMIT = 100
_DEFAULT_LIMIT = 20

#: an item as returned by the API, and the prompt segments it renders to
Held = tuple[dict[str, Any], list[Segment]]
#: input items → held items (validates; raises :class:`ApiError`), given the conversation so far
ItemParser = Callable[[list[Any], str, list[Segment]], list[Held]]


def stored_item(item: dict[str, Any], segments: list[Segment]) -> dict[str, Any]:
    """An input item in the form a conversation returns it: with ``id`` and ``status``."""
    kind = item.get("type", "message")
    if kind == "message":
        role = str(item.get("role"))
        content = item.get("content")
        if isinstance(content, str):
            part: dict[str, Any] = (
                {"type": "output_text", "text": content, "annotations": [], "logprobs": []}
                if role == "assistant"
                else {"type": "input_text", "text": content}
            )
            content = [part]
        return {
            "type": "message",
            "id": item.get("id") or _new_id("msg"),
            "status": "completed",
            "role": role,
            "content": content,
        }
    if kind == "function_call":
        return {
            "type": "function_call",
            "id": item.get("id") or _new_id("fc"),
            "call_id": item["call_id"],
            "name": item["name"],
            "arguments": str(item.get("arguments", "")),
            "status": "completed",
        }
    if kind == "function_call_output":
        return {
            "type": "function_call_output",
            "id": item.get("id") or _new_id("fco"),
            "call_id": item["call_id"],
            "output": item.get("output", ""),
            "status": "completed",
        }
    # reasoning: the encrypted content is shown only when a listing asks for it (``include``)
    return {
        "type": "reasoning",
        "id": item.get("id") or _new_id("rs"),
        "summary": list(item.get("summary") or []),
    }


@dataclass(slots=True)
class Conversation:
    """One conversation: metadata and its items in order (item id → held item)."""

    id: str
    created_at: int
    metadata: dict[str, str]
    items: dict[str, Held] = field(default_factory=dict)

    def resource(self) -> dict[str, Any]:
        """The ``ConversationResource`` body."""
        return {
            "id": self.id,
            "object": "conversation",
            "created_at": self.created_at,
            "metadata": self.metadata,
        }

    def segments(self) -> list[Segment]:
        """The prompt a response in this conversation starts from: every item, in order."""
        return [seg for _, segs in self.items.values() for seg in segs]

    def extend(self, held: list[Held]) -> list[dict[str, Any]]:
        """Append items (a later item with an existing id replaces it); returns them."""
        for item, segs in held:
            self.items[item["id"]] = (item, segs)
        return [item for item, _ in held]


def _shown(
    item: dict[str, Any], segments: list[Segment], include: frozenset[str]
) -> dict[str, Any]:
    if item["type"] == "reasoning" and "reasoning.encrypted_content" in include and segments:
        return {**item, "encrypted_content": segments[0].text}
    return item


def _item_list(shown: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    # The spec requires first_id/last_id as strings even for an empty page.
    return {
        "object": "list",
        "data": shown,
        "first_id": shown[0]["id"] if shown else "",
        "last_id": shown[-1]["id"] if shown else "",
        "has_more": has_more,
    }


def _items_param(body: Mapping[str, Any], *, required: bool) -> list[Any]:
    raw = body.get("items")
    if raw is None:
        if required:
            raise missing_parameter("items")
        return []
    if not isinstance(raw, list):
        raise type_error("items", "an array", raw)
    if len(raw) > MAX_ITEMS_PER_CREATE:
        raise invalid(
            f"Invalid 'items': array too long. Expected an array with maximum length "
            f"{MAX_ITEMS_PER_CREATE}, but got an array with length {len(raw)} instead.",
            param="items",
            code="array_above_max_length",
        )
    return raw


class ConversationStore:
    """Conversation id → :class:`Conversation`, insertion-ordered and bounded."""

    def __init__(self, parse_items: ItemParser, max_entries: int = 100_000) -> None:
        self._items: dict[str, Conversation] = {}
        self._parse = parse_items
        self._max = max_entries

    def __len__(self) -> int:
        return len(self._items)

    def get(self, conversation_id: str) -> Conversation | None:
        """The conversation, or None."""
        return self._items.get(conversation_id)

    def require(self, conversation_id: str) -> Conversation:
        """The conversation, or a 404 :class:`ApiError`."""
        conv = self._items.get(conversation_id)
        if conv is None:
            raise not_found("Conversation", conversation_id, "conversation_id")
        return conv

    # --- endpoints (each returns the reply body or raises ApiError) ---------------------------

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/conversations``: optional ``metadata`` and at most 20 ``items``."""
        _only(body, ("metadata", "items"))
        metadata = metadata_of(body) or {}
        conv = Conversation(_new_id("conv"), int(time.time()), dict(metadata))
        conv.extend(self._parse(_items_param(body, required=False), "items", []))
        self._items[conv.id] = conv
        while len(self._items) > self._max:
            del self._items[next(iter(self._items))]
        return conv.resource()

    def update(self, conversation_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/conversations/{id}``: replace ``metadata`` (required)."""
        conv = self.require(conversation_id)
        _only(body, ("metadata",))
        if body.get("metadata") is None:
            raise missing_parameter("metadata")
        conv.metadata = dict(metadata_of(body) or {})
        return conv.resource()

    def delete(self, conversation_id: str) -> dict[str, Any]:
        """``DELETE /v1/conversations/{id}``."""
        self.require(conversation_id)
        del self._items[conversation_id]
        return {"id": conversation_id, "object": "conversation.deleted", "deleted": True}

    def add_items(
        self, conversation_id: str, body: dict[str, Any], include: frozenset[str]
    ) -> dict[str, Any]:
        """``POST /v1/conversations/{id}/items``: append at most 20 items; lists them."""
        conv = self.require(conversation_id)
        _only(body, ("items",))
        held = self._parse(_items_param(body, required=True), "items", conv.segments())
        conv.extend(held)
        return _item_list([_shown(item, segs, include) for item, segs in held], False)

    def list_items(
        self, conversation_id: str, query: Mapping[str, str], include: frozenset[str]
    ) -> dict[str, Any]:
        """``GET /v1/conversations/{id}/items``: ``limit`` (1–100, 20), ``order`` (``desc``),
        ``after`` (an item id)."""
        conv = self.require(conversation_id)
        return item_page([_shown(*held, include) for held in conv.items.values()], query)

    def get_item(
        self, conversation_id: str, item_id: str, include: frozenset[str]
    ) -> dict[str, Any]:
        """``GET /v1/conversations/{id}/items/{item_id}``."""
        held = self.require(conversation_id).items.get(item_id)
        if held is None:
            raise not_found("Item", item_id, "item_id")
        return _shown(*held, include)

    def delete_item(self, conversation_id: str, item_id: str) -> dict[str, Any]:
        """``DELETE /v1/conversations/{id}/items/{item_id}``: returns the conversation."""
        conv = self.require(conversation_id)
        if conv.items.pop(item_id, None) is None:
            raise not_found("Item", item_id, "item_id")
        return conv.resource()


def item_page(
    items: list[dict[str, Any]],
    query: Mapping[str, str],
    *,
    default_order: str = "desc",
    unknown_after: Callable[[str], ApiError] = lambda after: not_found("Item", after, "item_id"),
) -> dict[str, Any]:
    """One page of ``items`` (oldest first) per the list query: ``limit`` (1–100, default 20),
    ``order`` (default ``desc``: the spec's for items; stored chat completions say ``asc``),
    ``after`` (an item id)."""
    limit = _limit(query.get("limit"))
    order = query.get("order", default_order)
    if order not in ("asc", "desc"):
        raise invalid(
            f"Invalid value: '{order}'. Supported values are: 'asc' and 'desc'.",
            param="order",
            code="invalid_value",
        )
    ordered = items[::-1] if order == "desc" else items
    after = query.get("after")
    if after is not None:
        at = next((i for i, item in enumerate(ordered) if item["id"] == after), None)
        if at is None:
            raise unknown_after(after)
        ordered = ordered[at + 1 :]
    return _item_list(ordered[:limit], len(ordered) > limit)


def _only(body: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    for key in body:
        if key not in keys:
            raise invalid(f"Unknown parameter: '{key}'.", param=key, code="unknown_parameter")


def _limit(raw: str | None) -> int:
    if raw is None:
        return _DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise invalid(
            f"Invalid 'limit': expected an integer, but got '{raw}' instead.",
            param="limit",
            code="invalid_type",
        ) from None
    if not 1 <= limit <= _MAX_LIMIT:
        raise invalid(
            f"Invalid 'limit': integer must be between 1 and {_MAX_LIMIT} (got {limit}).",
            param="limit",
            code="integer_out_of_range",
        )
    return limit
