"""The message rules both APIs enforce, read the same from a neutral request and a YAML prompt."""

from __future__ import annotations

from typing import Any

import pytest

from harness.scenario.models import ImagePartSpec, MessageSpec
from harness.translate.request import ImagePart, Message, ToolCall
from harness.translate.rules import message_problems, repeated_tools, tool_choice_problem

CALL = {"id": "c1", "name": "get_weather", "arguments": "{}"}
IMAGE = "https://example.com/a.png"

#: (case, messages as plain dicts, expected (index, field) of each problem in order)
CASES: list[tuple[str, list[dict[str, Any]], list[tuple[int, str | None]]]] = [
    ("fine", [{"role": "user", "content": "Hi"}], []),
    (
        "answered call",
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "c1", "content": "18"},
        ],
        [],
    ),
    ("tool without id", [{"role": "tool", "content": "x"}], [(0, "tool_call_id")]),
    (
        "id on a user",
        [{"role": "user", "content": "x", "tool_call_id": "c1"}],
        [(0, "tool_call_id")],
    ),
    (
        "calls on a user",
        [{"role": "user", "content": "x", "tool_calls": [CALL]}],
        [(0, "tool_calls"), (0, None)],  # and the call is left unanswered
    ),
    ("no content", [{"role": "user"}], [(0, "content")]),
    (
        "image from the system",
        [{"role": "system", "content": [IMAGE]}, {"role": "user", "content": "Hi"}],
        [(0, "content")],
    ),
    (
        "answered too late",
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "tool_calls": [CALL]},
            {"role": "user", "content": "Hurry"},
            {"role": "tool", "tool_call_id": "c1", "content": "18"},
        ],
        [(2, None), (3, "tool_call_id")],
    ),
    (
        "unanswered at the end",
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "tool_calls": [CALL]}],
        [(1, None)],
    ),
]


def _neutral(m: dict[str, Any]) -> Message:
    content = m.get("content")
    if isinstance(content, list):
        content = tuple(ImagePart(url=url) for url in content)
    calls = tuple(ToolCall(**c) for c in m.get("tool_calls", ()))
    return Message(
        role=m["role"], content=content, tool_calls=calls, tool_call_id=m.get("tool_call_id")
    )


def _spec(m: dict[str, Any]) -> MessageSpec:
    content = m.get("content")
    if isinstance(content, list):
        content = [{"image_url": url} for url in content]
    return MessageSpec.model_validate({**m, "content": content})


@pytest.mark.parametrize(
    ("messages", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_both_shapes_of_a_history_break_the_same_rules(
    messages: list[dict[str, Any]], expected: list[tuple[int, str | None]]
) -> None:
    neutral = list(message_problems([_neutral(m) for m in messages], ImagePart))
    spec = list(message_problems([_spec(m) for m in messages], ImagePartSpec))
    assert [(i, f) for i, f, _, _ in neutral] == expected
    assert neutral == spec


def test_tool_choice_names_a_declared_tool_or_a_mode() -> None:
    assert tool_choice_problem(None, []) is None
    assert tool_choice_problem("required", ["f"]) is None
    assert tool_choice_problem("f", ["f"]) is None
    assert tool_choice_problem("auto", []) == (
        "tool_choice without tools",
        "declare tools or remove tool_choice",
    )
    assert tool_choice_problem("g", ["f", "h"]) == (
        "tool_choice g is not a tool of this prompt",
        "use auto, none, required or one of: f, h",
    )


def test_a_tool_name_declared_again_is_named_where_it_repeats() -> None:
    assert list(repeated_tools(["f", "g"])) == []
    assert [t for t, _, _ in repeated_tools(["f", "g", "f", "f"])] == [2, 3]
