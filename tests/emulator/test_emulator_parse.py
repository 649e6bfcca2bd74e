"""The request parsers' 400s for missing parameters and output formats, checked without a server.

Chat and Responses share these checks (``errors.missing_parameter``, ``validate.output_format``,
``prompt.message_segments``); each case pins the message, ``param`` and ``code`` OpenAI sends.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness.emulator import chat, responses_in
from harness.emulator.errors import ApiError
from harness.emulator.prompt import OutputFormat, Segment
from harness.emulator.store import ResponseStore

MODEL = "gpt-4.1-mini"
USER = [{"role": "user", "content": "Reply in json."}]
IMAGE = "data:image/png;base64,iVBORw0KGgo="
SCHEMA = {"name": "s", "schema": {"type": "object"}}


def _chat(**body: Any) -> Any:
    return chat.parse({"model": MODEL, "messages": USER, **body})


def _responses(**body: Any) -> Any:
    return responses_in.parse(
        {"model": MODEL, "input": "Reply in json.", **body}, ResponseStore(), {}
    )


def _missing(param: str) -> tuple[str, str, str]:
    return (f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _bad_type(kind: str, param: str) -> tuple[str, str, str]:
    return (
        f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object', and 'json_schema'.",
        param,
        "invalid_value",
    )


BAD = [
    (
        lambda: _chat(max_completion_tokens=0),
        (
            "Invalid 'max_completion_tokens': "
            "integer below minimum value. Expected a value >= 1, but got 0 instead.",
            "max_completion_tokens",
            "integer_below_min_value",
        ),
    ),
    (
        lambda: _responses(max_output_tokens=8),
        (
            "Invalid 'max_output_tokens': "
            "integer below minimum value. Expected a value >= 16, but got 8 instead.",
            "max_output_tokens",
            "integer_below_min_value",
        ),
    ),
    (
        lambda: _chat(temperature=-0.5),
        (
            "Invalid 'temperature': "
            "decimal below minimum value. Expected a value >= 0, but got -0.5 instead.",
            "temperature",
            "decimal_below_min_value",
        ),
    ),
    (
        lambda: _responses(temperature=2.5),
        (
            "Invalid 'temperature': "
            "decimal above maximum value. Expected a value <= 2, but got 2.5 instead.",
            "temperature",
            "decimal_above_max_value",
        ),
    ),
    (
        lambda: _chat(top_p=1.5),
        (
            "Invalid 'top_p': "
            "decimal above maximum value. Expected a value <= 1, but got 1.5 instead.",
            "top_p",
            "decimal_above_max_value",
        ),
    ),
    (lambda: chat.parse({"model": MODEL}), _missing("messages")),
    (lambda: _chat(messages=[{"role": "user"}]), _missing("messages[0].content")),
    (
        lambda: _chat(messages=[*USER, {"role": "tool", "content": "x"}]),
        _missing("messages[1].tool_call_id"),
    ),
    (
        lambda: _chat(messages=[{"role": "assistant", "content": None, "tool_calls": [{}]}]),
        _missing("messages[0].tool_calls[0].function"),
    ),
    (
        lambda: _chat(messages=[{"role": "user", "content": [{"type": "image_url"}]}]),
        _missing("messages[0].content[0].image_url"),
    ),
    (lambda: _chat(tools=[{"type": "function"}]), _missing("tools[0].function")),
    (lambda: _chat(response_format={"type": "xml"}), _bad_type("xml", "response_format.type")),
    (
        lambda: _chat(response_format={"type": "json_schema", "json_schema": {"schema": {}}}),
        _missing("response_format.json_schema.name"),
    ),
    (
        lambda: _chat(response_format={"type": "json_schema", "json_schema": {"name": "s"}}),
        _missing("response_format.json_schema.schema"),
    ),
    (
        lambda: _chat(
            messages=[{"role": "user", "content": "hi"}], response_format={"type": "json_object"}
        ),
        (
            "'messages' must contain the word 'json' in some form, to use 'response_format' "
            "of type 'json_object'.",
            "messages",
            None,
        ),
    ),
    (lambda: responses_in.parse({"model": MODEL}, ResponseStore(), {}), _missing("input")),
    (lambda: _responses(input=[{"role": "user"}]), _missing("input[0].content")),
    (lambda: _responses(input=[{"type": "function_call"}]), _missing("input[0].call_id")),
    (lambda: _responses(input=[{"type": "function_call_output"}]), _missing("input[0].call_id")),
    (lambda: _responses(text={"format": {"type": "xml"}}), _bad_type("xml", "text.format.type")),
    (
        lambda: _responses(text={"format": {"type": "json_schema", "name": "s"}}),
        _missing("text.format.schema"),
    ),
]


@pytest.mark.parametrize(("call", "expected"), BAD)
def test_bad_requests(call: Any, expected: tuple[str, str, str | None]) -> None:
    with pytest.raises(ApiError) as info:
        call()
    assert (info.value.status, info.value.message, info.value.param, info.value.code) == (
        400,
        *expected,
    )


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: _chat(), None),
        (lambda: _chat(response_format={"type": "text"}), None),
        (lambda: _chat(response_format={"type": "json_object"}), OutputFormat("json_object")),
        (
            lambda: _chat(response_format={"type": "json_schema", "json_schema": SCHEMA}),
            OutputFormat("json_schema", "s", {"type": "object"}),
        ),
        (lambda: _responses(text={}), None),
        (lambda: _responses(text={"format": {"type": "json_object"}}), OutputFormat("json_object")),
        (
            lambda: _responses(text={"format": {"type": "json_schema", **SCHEMA}}),
            OutputFormat("json_schema", "s", {"type": "object"}),
        ),
    ],
)
def test_output_formats(call: Any, expected: OutputFormat | None) -> None:
    assert call().output == expected


def test_message_segments_alike_for_both_apis() -> None:
    """Developer counts as system, an assistant turn with only an image has no text segment,
    and each image is a placeholder of the tokens its detail costs."""
    parts_chat = [{"type": "image_url", "image_url": {"url": IMAGE, "detail": "low"}}]
    parts_resp = [{"type": "input_image", "image_url": IMAGE, "detail": "low"}]
    via_chat = _chat(
        messages=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "Look."},
            {"role": "assistant", "content": parts_chat},
        ]
    )
    via_responses = _responses(
        input=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "Look."},
            {"role": "assistant", "content": parts_resp},
        ]
    )
    for request in (via_chat, via_responses):
        assert [s.role for s in request.prefix if s.role == "system"] == ["system"]
        assert [(s.role, s.placeholder_tokens) for s in request.conversation] == [
            ("user", 0),
            ("assistant", 85),
        ]
    assert via_chat.conversation == via_responses.conversation
    assert isinstance(via_chat.conversation[0], Segment)
