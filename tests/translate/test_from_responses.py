"""``neutral_from_responses_kwargs``: a Responses body back to the neutral request — the inverse
of ``to_responses_kwargs`` on what both carry, and a named refusal or note for the rest."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from harness.errors import TranslationError
from harness.translate.convert import to_responses_kwargs
from harness.translate.from_responses import neutral_from_responses_kwargs
from harness.translate.request import JsonSchemaFormat, Message, ToolCall
from harness.translate.spec import request_problems

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": False,
}
HISTORY: list[dict[str, Any]] = [
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {"type": "message", "role": "assistant", "content": "Let me look."},
    {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city":"P"}'},
    {"type": "function_call", "call_id": "c2", "name": "get_weather", "arguments": '{"city":"R"}'},
    {"type": "function_call_output", "call_id": "c1", "output": '{"temp_c": 18}'},
    {"type": "function_call_output", "call_id": "c2", "output": '{"temp_c": 24}'},
    {
        "role": "user",
        "content": [
            {"type": "input_text", "text": "And this chart?"},
            {"type": "input_image", "image_url": "https://x.test/c.png", "detail": "low"},
        ],
    },
]

#: bodies as the harness's own translator writes them: parsing and re-translating is identity
BODIES: list[dict[str, Any]] = [
    {
        "model": "gpt-4.1-mini",
        "input": [{"role": "user", "content": "Hi"}],
        "stream": False,
        "store": False,
    },
    {
        "model": "gpt-4.1-mini",
        "instructions": "Be terse.",
        "input": HISTORY,
        "stream": True,
        "store": False,
        "temperature": 0.2,
        "top_p": 0.9,
        "max_output_tokens": 300,
        "metadata": {"team": "a"},
        "parallel_tool_calls": False,
        "user": "u1",
        "prompt_cache_key": "k",
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "name": "get_weather"},
    },
    {
        "model": "gpt-5-mini",
        "input": [{"role": "user", "content": "Extract: John, 30"}],
        "stream": False,
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "text": {
            "format": {
                "type": "json_schema",
                "name": "person",
                "schema": {"type": "object", "properties": {"age": {"type": "integer"}}},
                "strict": True,
            },
            "verbosity": "low",
        },
    },
    {
        "model": "o4-mini",
        "input": [
            {"role": "developer", "content": "Reply in JSON."},
            {"role": "user", "content": "x"},
        ],
        "stream": False,
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "reasoning": {"effort": "low"},
        "text": {"format": {"type": "json_object"}},
    },
]


@pytest.mark.parametrize("body", BODIES, ids=["plain", "history-tools", "schema", "reasoning"])
def test_the_translators_own_bodies_come_back_unchanged(body: dict[str, Any]) -> None:
    assert request_problems("/responses", body) == []
    request, notes = neutral_from_responses_kwargs(copy.deepcopy(body))
    assert notes == []
    assert to_responses_kwargs(request) == body


def test_items_become_chat_style_messages() -> None:
    request, _ = neutral_from_responses_kwargs(
        {"model": "gpt-4.1-mini", "instructions": "Be terse.", "input": HISTORY}
    )
    roles = [m.role for m in request.messages]
    assert roles == ["system", "user", "assistant", "tool", "tool", "user"]
    assert request.messages[2] == Message(
        role="assistant",
        content="Let me look.",
        tool_calls=(
            ToolCall(id="c1", name="get_weather", arguments='{"city":"P"}'),
            ToolCall(id="c2", name="get_weather", arguments='{"city":"R"}'),
        ),
    )
    assert request.messages[3].tool_call_id == "c1"


def test_the_apis_defaults_apply_where_the_body_is_silent() -> None:
    """Responses stores and makes functions strict by default; a schema is not strict unless
    asked; a plain string input is one user message; stream is off."""
    tool = {k: v for k, v in WEATHER.items() if k != "strict"}
    request, _ = neutral_from_responses_kwargs(
        {
            "model": "gpt-4.1-mini",
            "input": "Hi",
            "tools": [tool],
            "text": {"format": {"type": "json_schema", "name": "p", "schema": {}}},
        }
    )
    assert request.params.store is True and request.params.stream is False
    assert request.tools[0].strict is True
    assert isinstance(request.output_format, JsonSchemaFormat)
    assert request.output_format.strict is False
    assert request.messages == (Message(role="user", content="Hi"),)


def test_calls_without_text_make_their_own_assistant_message() -> None:
    request, _ = neutral_from_responses_kwargs(
        {"model": "gpt-4.1-mini", "input": [HISTORY[0], *HISTORY[2:6]]}
    )
    assert [m.role for m in request.messages] == ["user", "assistant", "tool", "tool"]
    assert request.messages[1].content is None and len(request.messages[1].tool_calls) == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id: not carried: the earlier"),
        ({"conversation": "conv_1"}, "conversation: not carried"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt: not carried"),
        ({"tools": [{"type": "web_search"}]}, "tools[0]: a 'web_search' tool is not carried"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]: an item_reference"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0]: a 'input_file' part is not carried",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0]: an image by file_id is not carried",
        ),
        ({"tool_choice": {"type": "web_search"}}, "tool_choice: only auto, none, required"),
        ({"text": {"format": {"type": "grammar"}}}, "text.format: type 'grammar' is not carried"),
        ({"reasoning": {"effort": "huge"}}, "reasoning.effort: 'huge' is not a value"),
        ({"colour": "red"}, "colour: is not a Responses parameter the harness carries"),
        ({"input": []}, "input: a string or a list of input items is required"),
        ({"model": ""}, "model: a model name is required"),
    ],
)
def test_what_cannot_be_carried_is_named(extra: dict[str, Any], message: str) -> None:
    body = {"model": "gpt-4.1-mini", "input": "Hi", **extra}
    with pytest.raises(TranslationError) as info:
        neutral_from_responses_kwargs(body)
    assert str(info.value).startswith(message)


def test_delivery_options_are_dropped_with_a_note_and_no_ops_silently() -> None:
    body = {
        "model": "o4-mini",
        "input": [
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"role": "user", "content": "Hi"},
        ],
        "include": ["reasoning.encrypted_content", "message.output_text.logprobs"],
        "truncation": "auto",
        "background": False,
        "reasoning": {"effort": "low", "summary": "auto"},
        "max_tool_calls": 3,
    }
    request, notes = neutral_from_responses_kwargs(body)
    assert [n.partition(" ")[0] for n in notes] == [
        "include",
        "truncation",
        "reasoning.summary",
        "max_tool_calls",
        "input[0]:",
    ]
    assert request.params.reasoning_effort == "low"
    _, quiet = neutral_from_responses_kwargs(
        {"model": "gpt-4.1-mini", "input": "Hi", "truncation": "disabled", "background": False}
    )
    assert quiet == []
