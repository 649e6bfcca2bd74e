"""What a run leaves on the server, and taking it away when the run ends.

Stored responses (``store: true``, the chained arm, background responses), chat completions sent
with ``store: true`` and Conversations API conversations stay on the provider, billed against its
storage, until deleted (unless the user asked to keep them: ``--keep-stored``); a background
response the run stops following (Ctrl-C) runs on, billed, until cancelled. Every id is noted
here the moment the server hands it out, so that one :meth:`ServerObjects.clean_up` at the end
of the run (also on Ctrl-C or a crash) finds them all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from harness.arms import Arm
from harness.records import RunMeta
from harness.transport.client import Transport

__all__ = ["ArmObjects", "ServerObjects"]

#: clean-up calls in flight at once
_AT_ONCE = 8


@dataclass
class ServerObjects:
    """The (arm, id) of every object the run created on the server and has not yet removed."""

    #: stored responses and chat completions (the arm's API says which)
    stored_ids: list[tuple[str, str]] = field(default_factory=list)
    conversations: list[tuple[str, str]] = field(default_factory=list)
    #: background responses created and not yet followed to their end
    running: set[tuple[str, str]] = field(default_factory=set)

    def stored(self, arm: str, response_id: str, *, running: bool = False) -> None:
        """A stored response or chat completion (``running``: a background response the run
        now follows)."""
        self.stored_ids.append((arm, response_id))
        if running:
            self.running.add((arm, response_id))

    def finished(self, arm: str, response_id: str) -> None:
        """A background response followed to its final status: nothing left to cancel."""
        self.running.discard((arm, response_id))

    def conversation(self, arm: str, conversation_id: str) -> None:
        """A Conversations API conversation."""
        self.conversations.append((arm, conversation_id))

    def arms(self) -> set[str]:
        """The arms whose transports the clean-up needs."""
        return {arm for arm, _ in [*self.stored_ids, *self.conversations]}

    def of(self, arm: str) -> ArmObjects:
        """This record as seen by one arm's background sends."""
        return ArmObjects(arm, self)

    async def clean_up(
        self, transports: dict[str, Transport], meta: RunMeta, *, keep: bool = False
    ) -> None:
        """Cancel what still runs (billed otherwise, even when ``keep``), then — unless
        ``keep`` — delete every stored response, chat completion and conversation; the
        server's confirmations are counted in ``meta`` (the provider keeps what is not
        deleted). What was asked for is forgotten, so a second call sends nothing twice."""
        running, stored, conversations = self.running, self.stored_ids, self.conversations
        self.running, self.stored_ids, self.conversations = set(), [], []
        await _on_each(running, transports, Transport.cancel_response)
        if keep:
            meta.keep_stored = True
            return
        chat = [(arm, oid) for arm, oid in stored if Arm.parse(arm).api == "chat"]
        responses = [(arm, oid) for arm, oid in stored if Arm.parse(arm).api != "chat"]
        meta.stored_responses_deleted = (meta.stored_responses_deleted or 0) + await _on_each(
            responses, transports, Transport.delete_response
        )
        if chat:
            meta.stored_chat_completions_deleted = (
                meta.stored_chat_completions_deleted or 0
            ) + await _on_each(chat, transports, Transport.delete_chat_completion)
        if conversations:
            meta.conversations_deleted = (meta.conversations_deleted or 0) + await _on_each(
                conversations, transports, Transport.delete_conversation
            )


@dataclass(frozen=True, slots=True)
class ArmObjects:
    """One arm's view of :class:`ServerObjects`, for the background sends of that arm."""

    arm: str
    objects: ServerObjects

    def created(self, response_id: str) -> None:
        self.objects.stored(self.arm, response_id, running=True)

    def finished(self, response_id: str) -> None:
        self.objects.finished(self.arm, response_id)


async def _on_each(
    ids: Iterable[tuple[str, str]],
    transports: dict[str, Transport],
    action: Callable[[Transport, str], Awaitable[bool]],
) -> int:
    """``action`` (cancel, delete) on each (arm, id), a few at a time; the confirmations."""
    sem = asyncio.Semaphore(_AT_ONCE)

    async def one(arm: str, oid: str) -> bool:
        async with sem:
            return await action(transports[arm], oid)

    return sum(await asyncio.gather(*(one(a, r) for a, r in ids)))
