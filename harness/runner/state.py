"""Server-side conversation state: opening a Conversations API conversation, and checking after
each turn what the server holds against what the arm sent.

The state bugs agent frameworks hit are items re-sent and duplicated, and chains that fork; a
conversation or chain the server lost must end the conversation, not turn it stateless. After
every successful turn of a state-keeping arm the runner lists the server's items
(``conversations.items.list`` for a conversation, ``responses.input_items.list`` for a chain)
and records, on the turn's observation, how many items it sent, how many the server holds, how
many of the sent items the server already held (duplicates) and whether the server's items no
longer extend the earlier turns' (a fork).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from harness.records import STATE_LOST
from harness.transport.client import MAX_ITEMS_PER_CREATE, StateReply, Transport

__all__ = [
    "STATE_LOST",
    "ConversationState",
    "StateCheck",
    "fingerprint",
    "lost_state",
    "open_conversation",
]

Fingerprint = tuple[str, str, str, str]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(_text(p.get("text", "")) if isinstance(p, dict) else "" for p in value)
    return "" if value is None else json.dumps(value, sort_keys=True)


def fingerprint(item: dict[str, Any]) -> Fingerprint:
    """What makes an item the same item, whether sent or listed (ids and status aside)."""
    kind = str(item.get("type", "message"))
    if kind == "message":
        return (kind, str(item.get("role", "")), "", _text(item.get("content")))
    if kind in ("function_call", "function_call_output"):
        body = item.get("arguments") if kind == "function_call" else item.get("output")
        return (kind, "", str(item.get("call_id", "")), _text(body))
    return (kind, "", str(item.get("id", "")), "")


def lost_state(status: int | None, error_type: str | None, message: str | None) -> bool:
    """Whether a failed turn means the server no longer holds the chain or the conversation."""
    if error_type == "previous_response_not_found":
        return True
    return status == 404 and "conversation" in (message or "").lower()


async def open_conversation(
    transport: Transport, items: list[dict[str, Any]]
) -> tuple[str | None, StateReply | None]:
    """Create a conversation holding ``items``: the first :data:`MAX_ITEMS_PER_CREATE` in the
    create call, the rest added in batches of as many. Returns the id of the conversation the
    server created (None if none: then nothing needs deleting) and the failing reply, if any."""
    reply = await transport.create_conversation(items[:MAX_ITEMS_PER_CREATE])
    cid = reply.data.get("id") if reply.ok and isinstance(reply.data, dict) else None
    if not isinstance(cid, str):
        return None, reply if not reply.ok else StateReply(False, reply.status, "bad_response")
    for start in range(MAX_ITEMS_PER_CREATE, len(items), MAX_ITEMS_PER_CREATE):
        added = await transport.add_conversation_items(
            cid, items[start : start + MAX_ITEMS_PER_CREATE]
        )
        if not added.ok:
            return cid, added  # created but incomplete: unusable, still to be deleted
    return cid, None


@dataclass(frozen=True)
class StateCheck:
    """One turn's items: sent, held by the server afterwards, sent again, and a fork."""

    items_sent: int | None = None
    items_held: int | None = None
    duplicate_items: int | None = None
    forked: bool | None = None
    state_check_error: str | None = None

    def fields(self) -> dict[str, Any]:
        """The :class:`~harness.records.Observation` fields of this check."""
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class ConversationState:
    """What the server held after the last turn of one conversation of a state-keeping arm."""

    #: fingerprints of the items the server holds, oldest first
    held: list[Fingerprint] = field(default_factory=list)

    async def after_turn(
        self,
        transport: Transport,
        *,
        conversation_id: str | None,
        response_id: str | None,
        sent: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
    ) -> StateCheck:
        """List the server's items after a successful turn and compare them with ``sent``."""
        if conversation_id is not None:
            reply = await transport.list_items("conversation", conversation_id)
        elif response_id is not None:
            reply = await transport.list_items("response", response_id)
        else:
            return StateCheck(items_sent=len(sent))
        if not reply.ok or not isinstance(reply.data, list):
            return StateCheck(
                items_sent=len(sent),
                state_check_error=f"{reply.status} {reply.error_type}: {reply.error_message}",
            )
        listed = [fingerprint(i) for i in reply.data if isinstance(i, dict)]
        before = self.held
        forked: bool | None
        if conversation_id is not None:
            after = listed  # a conversation lists every item it holds
            forked = after[: len(before)] != before
        elif len(listed) > len(sent):  # a server that lists the whole chain
            after = [*listed, *map(fingerprint, outputs)]
            forked = listed[: len(before)] != before
        else:
            # input_items lists only what this response was sent: the chain is everything so
            # far, and whether it still extends the earlier turns cannot be seen (not a "no")
            after = [*before, *listed, *map(fingerprint, outputs)]
            forked = None
        held_before = set(before)
        duplicates = sum(1 for item in map(fingerprint, sent) if item in held_before)
        self.held = after
        return StateCheck(
            items_sent=len(sent),
            items_held=len(after),
            duplicate_items=duplicates,
            forked=forked,
        )
