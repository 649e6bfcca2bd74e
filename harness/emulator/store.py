"""Stored responses (``store: true``) for ``GET``/``DELETE /v1/responses/{id}`` and chains.

Each entry keeps the response object and its *conversation*: the stored chain it continued,
its own input and its output, as prompt segments (not the instructions, which OpenAI does not
carry over ``previous_response_id``). A chained request renders that conversation plus its new
input, so it bills the whole chain as input. The store is bounded: past ``max_entries`` the
oldest responses are forgotten (like an expired retention window).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.emulator.prompt import Segment

if TYPE_CHECKING:
    from harness.emulator.background import BackgroundJob


@dataclass(slots=True)
class StoredResponse:
    """One stored response: its body (as returned by ``GET``), its conversation and its own
    input items (``GET /v1/responses/{id}/input_items``)."""

    body: dict[str, Any]
    conversation: list[Segment]
    input_items: list[dict[str, Any]] = field(default_factory=list)
    #: a background response's timeline: its body depends on when it is read
    job: BackgroundJob | None = None


class ResponseStore:
    """Response id → :class:`StoredResponse`, insertion-ordered and bounded."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._items: dict[str, StoredResponse] = {}
        self._max = max_entries

    def __len__(self) -> int:
        return len(self._items)

    def put(self, response_id: str, item: StoredResponse) -> None:
        """Store (or replace) a response."""
        self._items[response_id] = item
        while len(self._items) > self._max:
            del self._items[next(iter(self._items))]

    def get(self, response_id: str) -> StoredResponse | None:
        """The stored response, or None."""
        return self._items.get(response_id)

    def delete(self, response_id: str) -> bool:
        """Forget a response; False when it was not stored."""
        return self._items.pop(response_id, None) is not None
