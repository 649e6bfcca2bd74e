"""Reply content: determinism, temperature variation, divergence, structured outputs, tools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import openai
import pytest

from harness.emulator.content import WORDS
from harness.emulator.profiles import load_profile
from harness.emulator.prompt import count
from harness.emulator.testing import nonce, sse_data, sse_events
from harness.emulator.truth import read_truth
from harness.translate.tokens import count_text_tokens

MODEL = "gpt-4.1-mini"
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
    "required": ["city", "unit"],
    "additionalProperties": False,
}
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "city": {"type": "string"},
    },
    "required": ["name", "age", "city"],
    "additionalProperties": False,
}
NESTED = {
    "type": "object",
    "$defs": {
        "item": {
            "type": "object",
            "properties": {
                "sku": {"type": "string", "minLength": 3, "maxLength": 8},
                "qty": {"type": "integer", "minimum": 1, "maximum": 9},
                "price": {"type": "number", "exclusiveMinimum": 0},
                "tags": {
                    "type": "array",
                    "items": {"type": "string", "enum": ["a", "b", "c"]},
                    "minItems": 1,
                    "maxItems": 2,
                    "uniqueItems": True,
                },
            },
            "required": ["sku", "qty", "price", "tags"],
            "additionalProperties": False,
        }
    },
    "properties": {
        "order_id": {"type": "string", "format": "uuid"},
        "placed": {"type": "string", "format": "date-time"},
        "status": {"anyOf": [{"type": "string", "enum": ["open", "shipped"]}, {"type": "null"}]},
        "items": {"type": "array", "items": {"$ref": "#/$defs/item"}, "minItems": 2},
        "gift": {"type": ["boolean", "null"]},
        "note": {"const": "fixed"},
    },
    "required": ["order_id", "placed", "status", "items", "gift", "note"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def client(module_emulators: Any) -> openai.OpenAI:
    """The module's own server: replies depend on its seed (7) and how many it has drawn."""
    return module_emulators.client(module_emulators.start("zero", seed=7))


def _chat_text(client: openai.OpenAI, text: str, **kw: Any) -> str:
    c = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": text}], **kw
    )
    return c.choices[0].message.content or ""


def _differing_words(a: str, b: str) -> float:
    wa, wb = a.split(), b.split()
    assert len(wa) == len(wb)
    return sum(x != y for x, y in zip(wa, wb, strict=True)) / len(wa)


def test_word_bank_is_one_token_per_word() -> None:
    for word in WORDS:
        assert (
            count(" " + word) == count(" " + word.capitalize()) == count(word.capitalize()) == 1
        ), word


def test_output_tokens_are_real_bpe_counts(client: openai.OpenAI) -> None:
    for i in range(10):
        r = client.responses.create(model=MODEL, input=f"question {i} {nonce()}", store=False)
        assert r.usage is not None
        assert r.usage.output_tokens == count_text_tokens(r.output_text, MODEL)


def test_same_seed_same_reply_other_seed_other_reply(client: openai.OpenAI, emulators: Any) -> None:
    question = "What is the return window for shoes?"
    first = _chat_text(client, question, temperature=0)
    assert _chat_text(client, question, temperature=0) == first
    with emulators.running("zero", seed=7) as same, emulators.client(same) as c2:
        assert _chat_text(c2, question, temperature=0) == first
    with emulators.running("zero", seed=8) as other, emulators.client(other) as c3:
        assert _chat_text(c3, question, temperature=0) != first


def test_parity_chat_and_responses_say_the_same(client: openai.OpenAI) -> None:
    question = f"{nonce()} How do I reset my password?"
    r = client.responses.create(model=MODEL, input=question, temperature=0, store=False)
    assert r.output_text == _chat_text(client, question, temperature=0)


def test_system_prompt_nonce_does_not_change_the_reply(client: openai.OpenAI) -> None:
    replies = {
        client.chat.completions.create(
            model=MODEL,
            temperature=0,
            messages=[
                {"role": "system", "content": f"[{nonce()}] Be nice"},
                {"role": "user", "content": "Opening hours?"},
            ],
        )
        .choices[0]
        .message.content
        for _ in range(3)
    }
    assert len(replies) == 1


def test_harness_run_marker_in_the_user_message_does_not_change_the_reply(
    client: openai.OpenAI,
) -> None:
    """Without a system prompt the harness's cache nonce starts the user message."""
    from harness.runner.plan import cache_nonce, nonce_prefix

    replies = {
        _chat_text(
            client, nonce_prefix(cache_nonce(0, "s", "p", arm, 1)) + "Opening hours?", temperature=0
        )
        for arm in ("chat", "chat#2", "responses")
    }
    assert len(replies) == 1
    other = _chat_text(client, "[run zzzz] Opening hours?", temperature=0)
    assert other not in replies  # only the harness's exact marker is ignored


def test_temperature_varies_replicates_reproducibly(client: openai.OpenAI, emulators: Any) -> None:
    question = f"{nonce()} Describe the loyalty programme."
    a, b = (_chat_text(client, question, temperature=1.0) for _ in range(2))
    assert a != b
    words_a, words_b = set(a.split()), set(b.split())
    assert len(words_a & words_b) / len(words_a | words_b) > 0.4  # similar, not identical
    with emulators.running("zero", seed=7) as again, emulators.client(again) as c2:
        assert [_chat_text(c2, question, temperature=1.0) for _ in range(2)] == [a, b]


@pytest.mark.parametrize("divergence", [0.1, 0.35])
def test_divergence_is_the_known_share_of_words(
    tmp_path: Path, divergence: float, emulators: Any
) -> None:
    truth = tmp_path / "truth.jsonl"
    profile = load_profile("zero").derive({"divergence": divergence})
    with emulators.running(profile, truth_log=truth) as emu, emulators.client(emu) as c:
        for i in range(5):
            question = f"Tell me about topic {i}."
            chat = _chat_text(c, question, temperature=0)
            resp = c.responses.create(model=MODEL, input=question, temperature=0, store=False)
            measured = _differing_words(chat, resp.output_text)
            assert measured == pytest.approx(divergence, abs=0.5 / len(chat.split()) + 1e-9)
    logged = [r["divergence_words"] for r in read_truth(truth) if r["api"] == "responses"]
    assert all(d == pytest.approx(divergence, abs=0.03) for d in logged)


# --- structured outputs -------------------------------------------------------------------------


def test_json_schema_on_both_apis_with_prompt_hints(client: openai.OpenAI) -> None:
    prompt = "Extract: John is 30 and lives in NYC"
    r = client.responses.create(
        model=MODEL,
        input=prompt,
        store=False,
        text={
            "format": {"type": "json_schema", "name": "person", "schema": PERSON, "strict": True}
        },
    )
    data = json.loads(r.output_text)
    jsonschema.validate(data, PERSON)
    assert data == {"name": "John", "age": 30, "city": "NYC"}
    c = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": prompt}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": PERSON, "strict": True},
        },
    )
    assert json.loads(c.choices[0].message.content or "") == data


def test_json_schema_keywords(client: openai.OpenAI) -> None:
    for i in range(8):
        r = client.responses.create(
            model=MODEL,
            input=f"order {i} {nonce()}",
            store=False,
            text={
                "format": {"type": "json_schema", "name": "order", "schema": NESTED, "strict": True}
            },
        )
        jsonschema.validate(
            json.loads(r.output_text), NESTED, format_checker=jsonschema.FormatChecker()
        )


def test_json_object_mode(client: openai.OpenAI) -> None:
    c = client.chat.completions.create(
        model=MODEL,
        response_format={"type": "json_object"},
        messages=[{"role": "user", "content": "Reply in JSON please"}],
    )
    assert isinstance(json.loads(c.choices[0].message.content or ""), dict)


def test_responses_parse_helper(client: openai.OpenAI) -> None:
    from pydantic import BaseModel

    class Person(BaseModel):
        name: str
        age: int
        city: str

    parsed = client.responses.parse(
        model=MODEL, input="Extract: Ana is 41 and lives in Lisbon", text_format=Person, store=False
    )
    assert parsed.output_parsed == Person(name="Ana", age=41, city="Lisbon")


# --- tools --------------------------------------------------------------------------------------


def _tools_chat() -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather",
                "parameters": WEATHER,
                "strict": True,
            },
        },
        {
            "type": "function",
            "function": {
                "name": "lookup_order",
                "description": "Orders",
                "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
            },
        },
    ]


def _tools_responses() -> list[dict[str, Any]]:
    return [{"type": "function", **t["function"]} for t in _tools_chat()]


def test_tool_call_when_the_prompt_asks_and_answer_from_its_output(client: openai.OpenAI) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "What's the weather in Paris?"}]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=_tools_chat())
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_") and call.function.name == "get_weather"
    args = json.loads(call.function.arguments)
    jsonschema.validate(args, WEATHER)
    assert args["city"] == "Paris"
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 18}'},
    ]
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=_tools_chat())
    assert second.choices[0].finish_reason == "stop"
    assert "get_weather: temp_c 18" in (second.choices[0].message.content or "")


def test_tool_choice_modes(client: openai.OpenAI) -> None:
    tools = _tools_responses()
    plain = client.responses.create(model=MODEL, input="Tell me a joke", tools=tools, store=False)
    assert [o.type for o in plain.output] == ["message"]
    none = client.responses.create(
        model=MODEL, input="Weather in Rome?", tools=tools, tool_choice="none", store=False
    )
    assert [o.type for o in none.output] == ["message"]
    required = client.responses.create(
        model=MODEL, input="Tell me a joke", tools=tools, tool_choice="required", store=False
    )
    assert [o.type for o in required.output] == ["function_call"]
    forced = client.responses.create(
        model=MODEL,
        input="Weather in Rome?",
        tools=tools,
        tool_choice={"type": "function", "name": "lookup_order"},
        store=False,
    )
    assert [o.name for o in forced.output] == ["lookup_order"]


def test_tool_call_stream_events(client: openai.OpenAI) -> None:
    with client.responses.with_streaming_response.create(
        model=MODEL, input="Weather in Oslo?", tools=_tools_responses(), stream=True, store=False
    ) as raw:
        events = sse_events(raw.iter_lines())
    types = [e["type"] for e in events]
    assert types[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert types[-3:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    done = events[-3]
    assert "".join(deltas) == done["arguments"] and done["name"] == "get_weather"
    assert json.loads(done["arguments"])["city"] == "Oslo"
    assert events[2]["item"]["arguments"] == "" and events[2]["item"]["status"] == "in_progress"

    with client.chat.completions.with_streaming_response.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=_tools_chat(),
        stream=True,
    ) as raw_chat:
        chunks = [json.loads(d) for d in sse_data(raw_chat.iter_lines())[:-1]]
    opener = chunks[0]["choices"][0]["delta"]["tool_calls"][0]
    assert opener["function"] == {"name": "get_weather", "arguments": ""}
    args = "".join(
        c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] for c in chunks[1:-1]
    )
    assert args == done["arguments"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_parallel_tool_calls(client: openai.OpenAI) -> None:
    prompt = "Check the weather in Paris and look up my order 42"
    both = client.responses.create(model=MODEL, input=prompt, tools=_tools_responses(), store=False)
    assert [o.name for o in both.output] == ["get_weather", "lookup_order"]
    one = client.responses.create(
        model=MODEL, input=prompt, tools=_tools_responses(), parallel_tool_calls=False, store=False
    )
    assert len(one.output) == 1
