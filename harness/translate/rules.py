"""Rules both APIs enforce on a request's messages and tools, written once.

Two callers hold a request in two shapes: the translator a neutral request (it raises the first
problem) and the scenario check a YAML prompt (it lists every problem at its path). Both ask
here, so a fixed history the check passes is one the translator accepts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

__all__ = [
    "TOOL_CHOICE_MODES",
    "MessageProblem",
    "message_problems",
    "repeated_tools",
    "tool_choice_problem",
]

#: the tool_choice values that name no tool
TOOL_CHOICE_MODES = ("auto", "none", "required")


class _Call(Protocol):
    @property
    def id(self) -> str: ...


class _Message(Protocol):
    @property
    def role(self) -> str: ...

    @property
    def content(self) -> str | Sequence[object] | None: ...

    @property
    def tool_calls(self) -> Sequence[_Call] | None: ...

    @property
    def tool_call_id(self) -> str | None: ...


#: (message index, its field or None for the whole message, what is wrong, what to do)
MessageProblem = tuple[int, str | None, str, str]


def message_problems(messages: Sequence[_Message], image: type[object]) -> Iterator[MessageProblem]:
    """Every problem of ``messages`` in order: roles and content, and each tool call answered
    by the tool messages right after it (``image``: the class of an image part)."""
    pending: list[str] = []
    for i, msg in enumerate(messages):
        if msg.role == "tool":
            if msg.tool_call_id is None:
                yield (
                    i,
                    "tool_call_id",
                    "a tool message needs tool_call_id",
                    "set it to the id of the call it answers",
                )
            elif msg.tool_call_id not in pending:
                yield (
                    i,
                    "tool_call_id",
                    f"{msg.tool_call_id} answers no tool call of the assistant message before it",
                    "use the id of one of that message's tool_calls",
                )
            else:
                pending.remove(msg.tool_call_id)
        else:
            if pending:
                yield (
                    i,
                    None,
                    f"tool call(s) {', '.join(pending)} have no tool message",
                    "answer each tool call with a role: tool message right after the call",
                )
                pending = []
            if msg.tool_call_id is not None:
                yield (
                    i,
                    "tool_call_id",
                    f"a {msg.role} message has a tool_call_id",
                    "remove it (only role: tool messages answer calls)",
                )
        if msg.tool_calls:
            if msg.role != "assistant":
                yield (
                    i,
                    "tool_calls",
                    f"a {msg.role} message makes tool calls",
                    "move them to an assistant message",
                )
            pending = [call.id for call in msg.tool_calls]
        yield from _content_problems(i, msg, image)
    if pending:
        yield (
            len(messages) - 1,
            None,
            f"the last message makes tool call(s) {', '.join(pending)} that are not answered",
            "add a role: tool message for each call",
        )


def _content_problems(i: int, msg: _Message, image: type[object]) -> Iterator[MessageProblem]:
    if msg.content is None:
        if not (msg.role == "assistant" and msg.tool_calls):
            yield (
                i,
                "content",
                f"a {msg.role} message without content",
                "add content (only an assistant message with tool_calls may omit it)",
            )
    elif isinstance(msg.content, str):
        return
    elif not msg.content:
        yield (
            i,
            "content",
            "an empty part list (both APIs reject it)",
            "give at least one part or a string",
        )
    elif msg.role != "user" and any(isinstance(p, image) for p in msg.content):
        yield (
            i,
            "content",
            f"an image in a {msg.role} message",
            "move the image to a user message (both APIs take images only from users)",
        )


def repeated_tools(names: Sequence[str]) -> Iterator[tuple[int, str, str]]:
    """Each tool declared under an earlier tool's name: its index, what is wrong, what to do."""
    for t, name in enumerate(names):
        if name in names[:t]:
            yield t, f"tool {name} is defined twice", "give each tool a unique name"


def tool_choice_problem(choice: str | None, tools: Sequence[str]) -> tuple[str, str] | None:
    """What is wrong with ``choice`` given the declared ``tools`` (and what to do); None when
    it is fine."""
    if choice is None:
        return None
    if not tools:
        return "tool_choice without tools", "declare tools or remove tool_choice"
    if choice not in (*TOOL_CHOICE_MODES, *tools):
        return (
            f"tool_choice {choice} is not a tool of this prompt",
            "use auto, none, required or one of: " + ", ".join(tools),
        )
    return None
