"""Stored responses (``store: true``) for ``GET``/``DELETE /v1/responses/{id}`` and chains.

Each entry keeps the response object and its *conversation*: the stored chain it continued,
its own input and its output, as prompt segments (not the instructions, which OpenAI does not
carry over ``previous_response_id``). A chained request renders that conversation plus its new
input, so it bills the whole chain as input. The store is bounded: past ``max_entries`` the
oldest responses are forgotten (like an expired retention window).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from harness.emulator.prompt import Segment

__all__ = ["BoundedStore", "ResponseStore", "StoredResponse"]

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


_T = TypeVar("_T")


class BoundedStore(Generic[_T]):
    """Id → stored object, insertion-ordered; past ``max_entries`` the oldest is forgotten.

    One retention rule for every stored object (responses, chat completions), so a long
    emulator run holds bounded memory whatever the clients store.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self._items: dict[str, _T] = {}
        self._max = max_entries

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[_T]:
        return iter(self._items.values())

    def put(self, key: str, item: _T) -> None:
        """Store (or replace) an object."""
        self._items[key] = item
        while len(self._items) > self._max:
            del self._items[next(iter(self._items))]

    def get(self, key: str) -> _T | None:
        """The stored object, or None."""
        return self._items.get(key)

    def delete(self, key: str) -> bool:
        """Forget an object; False when it was not stored."""
        return self._items.pop(key, None) is not None


class ResponseStore(BoundedStore[StoredResponse]):
    """Response id → :class:`StoredResponse`, insertion-ordered and bounded."""
