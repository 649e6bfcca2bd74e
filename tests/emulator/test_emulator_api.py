"""The emulator through the official SDK: shapes, streams, headers, store, reasoning models."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import openai
import pytest

from harness.emulator import EMULATOR_ID, PROFILE_HEADER
from harness.emulator.server import EmulatorThread
from harness.emulator.testing import nonce, sse_data, sse_events, truth_record
from harness.translate.tokens import count_text_tokens

MODEL = "gpt-4.1-mini"
RESPONSE_EVENT_ORDER = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]
RATE_HEADERS = [
    f"x-ratelimit-{kind}-{what}"
    for kind in ("limit", "remaining", "reset")
    for what in ("requests", "tokens")
]


@pytest.fixture(scope="module")
def truth_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("truth") / "truth.jsonl"


@pytest.fixture(scope="module")
def emu(module_emulators: Any, truth_path: Path) -> EmulatorThread:
    """The module's own server: its tests read their requests back from its truth log."""
    return module_emulators.start("zero", truth_log=truth_path)


@pytest.fixture(scope="module")
def client(module_emulators: Any, emu: EmulatorThread) -> openai.OpenAI:
    return module_emulators.client(emu)


def _collapse(types: list[str]) -> list[str]:
    """Event types with runs of deltas collapsed to one."""
    out: list[str] = []
    for t in types:
        if not (out and out[-1] == t and t.endswith(".delta")):
            out.append(t)
    return out


# --- chat ---------------------------------------------------------------------------------------


def test_chat_completion_shape_and_usage(client: openai.OpenAI) -> None:
    question = f"{nonce()} What are your support hours?"
    completion = client.chat.completions.create(
        model=MODEL, temperature=0, messages=[{"role": "user", "content": question}]
    )
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "gpt-4.1-mini-2025-04-14"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    text = choice.message.content
    assert text and text.endswith(".")
    usage = completion.usage
    assert usage is not None
    # real BPE counts: 3 framing tokens per message + 3 reply-priming tokens
    assert usage.prompt_tokens == count_text_tokens(question, MODEL) + 6
    assert usage.completion_tokens == count_text_tokens(text, MODEL)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 0


def test_chat_stream_chunks_usage_and_done(client: openai.OpenAI) -> None:
    kwargs = {
        "model": MODEL,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": f"{nonce()} Tell me about refunds."}],
    }
    with client.chat.completions.with_streaming_response.create(**kwargs) as raw:
        data = sse_data(raw.iter_lines())
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    finish = chunks[-2]["choices"][0]
    assert finish["finish_reason"] == "stop" and finish["delta"] == {}
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    assert all(c["usage"] is None for c in chunks[:-1])
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[1:-2])
    # one content chunk per output token, as OpenAI streams them
    assert len(chunks) - 3 == usage_chunk["usage"]["completion_tokens"]
    assert usage_chunk["usage"]["completion_tokens"] == count_text_tokens(text, MODEL)


def test_chat_stream_without_include_usage_has_no_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL, stream=True, messages=[{"role": "user", "content": "hello"}]
    )
    chunks = list(stream)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


# --- responses ----------------------------------------------------------------------------------


def test_response_shape_and_usage(client: openai.OpenAI) -> None:
    question = f"{nonce()} What are your support hours?"
    response = client.responses.create(model=MODEL, input=question, temperature=0, store=False)
    assert response.object == "response" and response.status == "completed"
    assert response.id.startswith("resp_")
    assert response.output[0].type == "message"
    assert response.output[0].id.startswith("msg_")
    usage = response.usage
    assert usage is not None
    assert usage.input_tokens == count_text_tokens(question, MODEL) + 6
    assert usage.output_tokens == count_text_tokens(response.output_text, MODEL)
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.input_tokens_details.cache_write_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == 0


def test_response_stream_event_order_and_sequence(client: openai.OpenAI) -> None:
    with client.responses.with_streaming_response.create(
        model=MODEL, input=f"{nonce()} hello", stream=True, store=False
    ) as raw:
        events = sse_events(raw.iter_lines())
    assert _collapse([e["type"] for e in events]) == RESPONSE_EVENT_ORDER
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    done = next(e for e in events if e["type"] == "response.output_text.done")
    final = events[-1]["response"]
    assert deltas == done["text"] == final["output"][0]["content"][0]["text"]
    assert final["usage"]["output_tokens"] == sum(
        e["type"] == "response.output_text.delta" for e in events
    )
    assert events[0]["response"]["status"] == "in_progress"
    assert events[0]["response"]["id"] == final["id"]


def test_responses_stream_helper(client: openai.OpenAI) -> None:
    with client.responses.stream(model=MODEL, input=f"{nonce()} Hi there") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert final.status == "completed"
    assert "".join(deltas) == final.output_text
    assert final.usage is not None and final.usage.output_tokens == len(deltas)


def test_with_raw_response_headers(client: openai.OpenAI, truth_path: Path) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}]
    )
    headers = raw.headers
    assert headers["x-emulator"] == EMULATOR_ID
    assert headers["x-request-id"].startswith("req_") and len(headers["x-request-id"]) == 36
    assert int(headers["openai-processing-ms"]) >= 0
    for name in RATE_HEADERS:
        assert headers[name], name
    assert int(headers["x-ratelimit-remaining-requests"]) < int(
        headers["x-ratelimit-limit-requests"]
    )
    assert raw.parse().choices[0].message.content
    record = truth_record(truth_path, raw.request_id)
    assert record["api"] == "chat" and record["status"] == 200
    # ground truth never travels in the reply
    body = raw.http_response.text
    for key in ("delays_ms", "cold_prefix", "first_delta_ms", "planned_total_ms"):
        assert key not in body
    # identity only: the profile's name (a run-level fact a report states), no per-request truth
    assert headers[PROFILE_HEADER] == "zero"
    assert not any(
        name.startswith(("x-truth", "x-emulator-")) for name in headers if name != PROFILE_HEADER
    )


def test_errors_carry_identity_and_rate_limit_headers(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-0", messages=[{"role": "user", "content": "x"}])
    headers = info.value.response.headers
    assert headers["x-emulator"] == EMULATOR_ID and headers[PROFILE_HEADER] == "zero"
    assert headers["x-request-id"].startswith("req_")
    assert all(headers.get(name) for name in RATE_HEADERS)


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
        "o3",
        "o3-mini",
        "o4-mini",
    } <= ids
    assert client.models.retrieve("o3").id == "o3"


def test_store_retrieve_delete(client: openai.OpenAI) -> None:
    created = client.responses.create(model=MODEL, input=f"{nonce()} remember me")
    assert created.store is True
    fetched = client.responses.retrieve(created.id)
    assert fetched.id == created.id and fetched.output_text == created.output_text
    deleted = client.responses.with_raw_response.delete(created.id)
    assert deleted.http_response.json() == {
        "id": created.id,
        "object": "response.deleted",
        "deleted": True,
    }
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        deleted = client.responses.with_raw_response.delete(created.id)
    assert deleted.http_response.json() == {
        "id": created.id,
        "object": "response.deleted",
        "deleted": True,
    }
    unstored = client.responses.create(model=MODEL, input="not kept", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)


# --- length -------------------------------------------------------------------------------------


def test_natural_length_stays_under_the_cap(client: openai.OpenAI) -> None:
    for cap in (16, 40, 300):
        for _ in range(6):  # fresh prompts, default temperature: lengths vary around the cap
            r = client.responses.create(
                model=MODEL,
                input=f"{nonce()} Summarise our policy.",
                max_output_tokens=cap,
                store=False,
            )
            assert r.status == "completed", cap
            assert r.usage is not None and r.usage.output_tokens < cap
    short = client.responses.create(model=MODEL, input="Answer in one word: ready?", store=False)
    assert short.usage is not None and short.usage.output_tokens <= 12


def test_long_output_hits_the_cap_on_both_apis(client: openai.OpenAI) -> None:
    prompt = f"{nonce()} Write a detailed essay about our refund policy."
    r = client.responses.create(model=MODEL, input=prompt, max_output_tokens=64, store=False)
    assert r.status == "incomplete"
    assert r.incomplete_details is not None
    assert r.incomplete_details.reason == "max_output_tokens"
    assert r.usage is not None and r.usage.output_tokens == 64
    assert r.output[0].status == "incomplete"
    c = client.chat.completions.create(
        model=MODEL, max_completion_tokens=64, messages=[{"role": "user", "content": prompt}]
    )
    assert c.choices[0].finish_reason == "length"
    assert c.usage is not None and c.usage.completion_tokens == 64
    uncapped = client.responses.create(model=MODEL, input=prompt, store=False)
    assert uncapped.status == "completed"
    assert uncapped.usage is not None and uncapped.usage.output_tokens > 1000


def test_truncated_stream_ends_with_response_incomplete(client: openai.OpenAI) -> None:
    with client.responses.with_streaming_response.create(
        model=MODEL,
        input="Write a long essay about shipping.",
        max_output_tokens=20,
        stream=True,
        store=False,
    ) as raw:
        events = sse_events(raw.iter_lines())
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert sum(e["type"] == "response.output_text.delta" for e in events) == 20
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


# --- reasoning models ---------------------------------------------------------------------------


def test_reasoning_model_usage_items_and_encrypted_content(client: openai.OpenAI) -> None:
    r = client.responses.create(
        model="o4-mini",
        input=f"{nonce()} Plan a trip.",
        store=False,
        include=["reasoning.encrypted_content"],
        reasoning={"effort": "low"},
    )
    assert r.output[0].type == "reasoning"
    reasoning = r.output[0]
    assert reasoning.encrypted_content
    assert r.usage is not None and r.usage.output_tokens_details.reasoning_tokens > 0
    assert r.usage.output_tokens == r.usage.output_tokens_details.reasoning_tokens + (
        count_text_tokens(r.output_text, "o4-mini")
    )
    # a stateless follow-up sends the reasoning item back; before gpt-5.6 reasoning.context
    # defaults to current_turn, so an earlier turn's reasoning is not model input (issue 17)
    history = [
        {"role": "user", "content": "Plan a trip."},
        reasoning.model_dump(exclude_none=True),
        {"role": "assistant", "content": r.output_text},
        {"role": "user", "content": "And the budget?"},
    ]
    without = [h for h in history if h.get("type") != "reasoning"]
    with_items = client.responses.create(model="o4-mini", input=history, store=False)
    plain = client.responses.create(model="o4-mini", input=without, store=False)
    all_turns = client.responses.create(
        model="o4-mini", input=history, store=False, reasoning={"context": "all_turns"}
    )
    assert with_items.usage is not None and plain.usage is not None
    assert all_turns.usage is not None
    assert with_items.usage.input_tokens == plain.usage.input_tokens
    # asked for all turns, the earlier reasoning is rendered and billed
    assert (
        all_turns.usage.input_tokens - plain.usage.input_tokens
        == r.usage.output_tokens_details.reasoning_tokens + 3
    )


def test_reasoning_stream_has_reasoning_item_first(client: openai.OpenAI) -> None:
    with client.responses.stream(model="gpt-5-mini", input=f"{nonce()} hi") as stream:
        types = [e.type for e in stream]
        final = stream.get_final_response()
    assert types[2] == "response.output_item.added"
    assert final.output[0].type == "reasoning" and final.output[1].type == "message"
    assert final.usage is not None and final.usage.output_tokens_details.reasoning_tokens > 0


def test_reasoning_tokens_in_chat_usage(client: openai.OpenAI) -> None:
    c = client.chat.completions.create(
        model="o3", reasoning_effort="high", messages=[{"role": "user", "content": "Think."}]
    )
    assert c.usage is not None and c.usage.completion_tokens_details is not None
    assert c.usage.completion_tokens_details.reasoning_tokens > 0


# --- async --------------------------------------------------------------------------------------


def test_async_client_stream_and_non_stream(emu: EmulatorThread) -> None:
    async def run() -> tuple[str, str, str]:
        async with openai.AsyncOpenAI(
            base_url=emu.base_url, api_key="sk-test", max_retries=0
        ) as aclient:
            chat = await aclient.chat.completions.create(
                model=MODEL, temperature=0, messages=[{"role": "user", "content": "async hello"}]
            )
            parts = []
            stream = await aclient.chat.completions.create(
                model=MODEL,
                temperature=0,
                stream=True,
                messages=[{"role": "user", "content": "async hello"}],
            )
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    parts.append(chunk.choices[0].delta.content)
            async with aclient.responses.stream(model=MODEL, input="async hi") as rs:
                async for _ in rs:
                    pass
                final = await rs.get_final_response()
            return chat.choices[0].message.content or "", "".join(parts), final.output_text

    whole, streamed, response_text = asyncio.run(run())
    assert whole == streamed  # temperature 0: the same request gives the same reply
    assert response_text


def test_chat_stream_and_parse_helpers(client: openai.OpenAI) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "strict": True,
                "parameters": {
                    "type": "object",
                    "required": ["city"],
                    "additionalProperties": False,
                    "properties": {"city": {"type": "string"}},
                },
            },
        }
    ]
    with client.chat.completions.stream(
        model=MODEL, tools=tools, messages=[{"role": "user", "content": "Weather in Paris?"}]
    ) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert call.function.parsed_arguments == {"city": "Paris"}

    from pydantic import BaseModel

    class Person(BaseModel):
        name: str
        age: int

    parsed = client.chat.completions.parse(
        model=MODEL,
        response_format=Person,
        messages=[{"role": "user", "content": "Extract: Bo is 9"}],
    )
    assert parsed.choices[0].message.parsed == Person(name="Bo", age=9)
