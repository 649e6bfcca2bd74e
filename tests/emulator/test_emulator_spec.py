"""Every emulator body and stream event validates against OpenAI's OpenAPI spec (DESIGN §3).

Replies are captured raw through the SDK (``with_raw_response`` / ``with_streaming_response``)
and checked with :func:`harness.translate.spec.schema_problems`; the requests the tests send are
checked with :func:`harness.translate.spec.request_problems`, so both sides of the wire follow the
spec.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from harness.emulator.profiles import load_profile
from harness.emulator.testing import sse_data, sse_events
from harness.emulator.validate import CHAT_KEYS, RESPONSES_KEYS
from harness.translate.spec import (
    request_problems,
    schema_problems,
    stream_event_schemas,
    top_level_properties,
)

MODEL = "gpt-4.1-mini"
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "strict": True,
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
}
USER = [{"role": "user", "content": "What's the weather in Paris?"}]

CHAT_CASES: dict[str, dict[str, Any]] = {
    "text": {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello"},
        ],
        "temperature": 0.3,
    },
    "tool_call": {"messages": USER, "tools": [{"type": "function", "function": TOOL}]},
    "json_schema": {
        "messages": [{"role": "user", "content": "Extract: Bo is 9"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "p", "schema": SCHEMA, "strict": True},
        },
    },
    "length": {
        "messages": [{"role": "user", "content": "Write a detailed essay."}],
        "max_completion_tokens": 20,
    },
    "reasoning": {
        "model": "o4-mini",
        "reasoning_effort": "low",
        "messages": [{"role": "user", "content": "Think hard."}],
    },
    "image": {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
                    },
                ],
            }
        ]
    },
}
RESPONSE_CASES: dict[str, dict[str, Any]] = {
    "text": {
        "input": "Hello",
        "instructions": "Be brief.",
        "temperature": 0.3,
        "metadata": {"k": "v"},
    },
    "tool_call": {"input": USER, "tools": [{"type": "function", **TOOL}]},
    "json_schema": {
        "input": "Extract: Bo is 9",
        "text": {"format": {"type": "json_schema", "name": "p", "schema": SCHEMA, "strict": True}},
    },
    "incomplete": {"input": "Write a detailed essay.", "max_output_tokens": 20},
    "reasoning": {
        "model": "o3",
        "input": "Think hard.",
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "reasoning": {"effort": "low"},
    },
    "image": {
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {
                        "type": "input_image",
                        "image_url": "data:image/png;base64,iVBORw0KGgo=",
                        "detail": "low",
                    },
                ],
            }
        ]
    },
}


def _valid(name: str, obj: Any) -> None:
    problems = schema_problems(name, obj)
    assert not problems, "\n".join(problems[:5])


def _request(endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    body = {"model": MODEL, **body}
    problems = request_problems(endpoint, body)
    assert not problems, "\n".join(problems[:5])
    return body


def _check_response_events(events: list[dict[str, Any]]) -> None:
    for event in events:
        _valid(stream_event_schemas()[event["type"]], event)


@pytest.fixture
def client(emulator_client: openai.OpenAI) -> openai.OpenAI:
    return emulator_client


def test_request_keys_match_the_spec() -> None:
    assert top_level_properties("CreateChatCompletionRequest") == CHAT_KEYS
    assert top_level_properties("CreateResponse") == RESPONSES_KEYS


@pytest.mark.parametrize("case", sorted(CHAT_CASES))
def test_chat_bodies_and_chunks(client: openai.OpenAI, case: str) -> None:
    body = _request("/chat/completions", CHAT_CASES[case])
    raw = client.chat.completions.with_raw_response.create(**body)
    _valid("CreateChatCompletionResponse", raw.http_response.json())
    streamed = _request(
        "/chat/completions", {**body, "stream": True, "stream_options": {"include_usage": True}}
    )
    with client.chat.completions.with_streaming_response.create(**streamed) as resp:
        data = sse_data(resp.iter_lines())
    assert data[-1] == "[DONE]"
    for chunk in data[:-1]:
        _valid("CreateChatCompletionStreamResponse", json.loads(chunk))


@pytest.mark.parametrize("case", sorted(RESPONSE_CASES))
def test_response_bodies_and_events(client: openai.OpenAI, case: str) -> None:
    body = _request("/responses", RESPONSE_CASES[case])
    raw = client.responses.with_raw_response.create(**body)
    created = raw.http_response.json()
    _valid("Response", created)
    with client.responses.with_streaming_response.create(
        **_request("/responses", {**body, "stream": True})
    ) as resp:
        events = sse_events(resp.iter_lines())
    _check_response_events(events)
    if created["store"]:
        fetched = client.responses.with_raw_response.retrieve(created["id"])
        _valid("Response", fetched.http_response.json())


def test_chained_request_and_reply(client: openai.OpenAI) -> None:
    first = client.responses.create(**_request("/responses", {"input": "Hi"}))
    raw = client.responses.with_raw_response.create(
        **_request(
            "/responses",
            {"input": [{"role": "user", "content": "And then?"}], "previous_response_id": first.id},
        )
    )
    _valid("Response", raw.http_response.json())


def test_models_and_errors(client: openai.OpenAI) -> None:
    _valid("ListModelsResponse", client.models.with_raw_response.list().http_response.json())
    _valid("Model", client.models.with_raw_response.retrieve("o3").http_response.json())
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.create(model=MODEL, input="x", max_output_tokens=15)
    _valid("ErrorResponse", bad.value.response.json())
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.retrieve("resp_missing")
    _valid("ErrorResponse", missing.value.response.json())


@pytest.mark.parametrize("fault", ["response_failed", "error_event"])
def test_fault_events(fault: str, emulators: Any) -> None:
    profile = load_profile("zero").derive({"both": {"faults": {fault: 1.0}}})
    with emulators.running(profile) as emu, emulators.client(emu) as c:
        with c.responses.with_streaming_response.create(
            model=MODEL, input="hi", stream=True
        ) as resp:
            events = sse_events(resp.iter_lines())
        _check_response_events(events)
        with c.chat.completions.with_streaming_response.create(
            model=MODEL, messages=USER, stream=True
        ) as chat:
            data = sse_data(chat.iter_lines())
        for chunk in data[:-1]:
            _valid("CreateChatCompletionStreamResponse", json.loads(chunk))
        _valid("ErrorResponse", json.loads(data[-1]))
    with (
        emulators.running(
            load_profile("zero").derive({"both": {"faults": {"rate_limit": 1.0}}})
        ) as emu,
        emulators.client(emu) as c,
    ):
        with pytest.raises(openai.RateLimitError) as limited:
            c.responses.create(model=MODEL, input="hi")
        _valid("ErrorResponse", limited.value.response.json())


def test_refusals_validate_against_the_spec(emulators: Any) -> None:
    profile = load_profile("zero").derive({"content": {"refusal_share": 1.0}})
    with emulators.running(profile) as emu, emulators.client(emu) as c:
        raw = c.responses.with_raw_response.create(model=MODEL, input="hi")
        _valid("Response", raw.http_response.json())
        with c.responses.with_streaming_response.create(
            model=MODEL, input="hi", stream=True
        ) as resp:
            _check_response_events(sse_events(resp.iter_lines()))
        chat = c.chat.completions.with_raw_response.create(model=MODEL, messages=USER)
        _valid("CreateChatCompletionResponse", chat.http_response.json())
        with c.chat.completions.with_streaming_response.create(
            model=MODEL, messages=USER, stream=True
        ) as stream:
            data = sse_data(stream.iter_lines())
        for chunk in data[:-1]:
            _valid("CreateChatCompletionStreamResponse", json.loads(chunk))


def test_reasoning_summary_events_validate_against_the_spec(client: openai.OpenAI) -> None:
    body = {"model": "o4-mini", "input": "hi", "reasoning": {"effort": "low", "summary": "auto"}}
    raw = client.responses.with_raw_response.create(**_request("/responses", body))
    created = raw.http_response.json()
    _valid("Response", created)
    assert created["output"][0]["summary"][0]["type"] == "summary_text"
    with client.responses.with_streaming_response.create(
        **_request("/responses", {**body, "stream": True})
    ) as resp:
        events = sse_events(resp.iter_lines())
    _check_response_events(events)
    kinds = [e["type"] for e in events]
    first_text = kinds.index("response.output_text.delta")
    assert kinds.index("response.reasoning_summary_text.delta") < first_text
