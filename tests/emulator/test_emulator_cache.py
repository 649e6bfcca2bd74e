"""Prompt caching (OpenAI's rules, one cache for both endpoints) and chained-response billing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import openai
import pytest

from harness.emulator.cache import block_floor
from harness.emulator.profiles import load_profile
from harness.emulator.testing import PROMPT_OVERHEAD_TOKENS, nonce, text_of_tokens
from harness.translate.tokens import count_text_tokens

MODEL = "gpt-4.1-mini"


@pytest.fixture
def client(emulator_client: openai.OpenAI) -> openai.OpenAI:
    """The shared server: every test here makes its prefixes new with ``nonce()``."""
    return emulator_client


def _prompt(total_tokens: int) -> str:
    """A user message whose whole prompt is ``total_tokens`` long, with a fresh prefix."""
    return text_of_tokens(total_tokens - PROMPT_OVERHEAD_TOKENS, nonce())


def _chat(client: openai.OpenAI, text: str, **kw: Any) -> tuple[int, int, int]:
    c = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": text}], **kw
    )
    assert c.usage is not None and c.usage.prompt_tokens_details is not None
    details = c.usage.prompt_tokens_details
    return c.usage.prompt_tokens, details.cached_tokens or 0, details.cache_write_tokens or 0


def _resp(client: openai.OpenAI, text: str, **kw: Any) -> tuple[int, int, int]:
    r = client.responses.create(model=MODEL, input=text, store=False, **kw)
    assert r.usage is not None
    d = r.usage.input_tokens_details
    return r.usage.input_tokens, d.cached_tokens, d.cache_write_tokens


@pytest.mark.parametrize(
    "first,second",
    [("chat", "chat"), ("responses", "responses"), ("chat", "responses"), ("responses", "chat")],
)
def test_identical_2000_token_prompt_twice(client: openai.OpenAI, first: str, second: str) -> None:
    text = _prompt(2000)
    call = {"chat": _chat, "responses": _resp}
    assert call[first](client, text) == (2000, 0, 1920)
    assert call[second](client, text) == (2000, 1920, 0)


def test_block_grid() -> None:
    assert [block_floor(n) for n in (0, 1023, 1024, 1151, 1152, 1999, 2000)] == [
        0,
        0,
        1024,
        1024,
        1152,
        1920,
        1920,
    ]


def test_short_prompts_are_never_cached(client: openai.OpenAI) -> None:
    text = _prompt(1000)
    assert _resp(client, text) == (1000, 0, 0)
    assert _resp(client, text) == (1000, 0, 0)


def test_at_least_one_token_is_computed(client: openai.OpenAI) -> None:
    text = _prompt(1025)
    assert _chat(client, text) == (1025, 0, 1024)
    assert _chat(client, text)[1] == 1024
    exact = _prompt(1024)  # a 1,024-token prompt cannot reuse all 1,024 tokens
    _chat(client, exact)
    assert _chat(client, exact)[1] == 0


def test_longest_seen_prefix_is_reused(client: openai.OpenAI) -> None:
    base = text_of_tokens(1500, nonce())
    _resp(client, base)
    longer = base + " and" * 800
    n, cached, written = _resp(client, longer)
    assert cached == block_floor(1500 + PROMPT_OVERHEAD_TOKENS - 3 - 1) == 1408
    assert written == block_floor(n - 1) - cached


def test_cache_is_keyed_by_what_the_sdk_lists_as_miss_reasons(client: openai.OpenAI) -> None:
    # PromptCacheDiagnosticsCacheMiss.reason: prompt_cache_key, reasoning effort, verbosity and
    # service tier changes each miss the cache (issue 17)
    text = _prompt(2000)
    _resp(client, text, prompt_cache_key="tenant-a")
    assert _resp(client, text, prompt_cache_key="tenant-a")[1] == 1920
    assert _resp(client, text, prompt_cache_key="tenant-b")[1] == 0
    _resp(client, text, service_tier="flex")
    assert _resp(client, text, service_tier="priority")[1] == 0
    assert _resp(client, text, service_tier="flex")[1] == 1920
    # unset means the default, so "auto" and "default" share the unset request's cache
    _resp(client, text)
    assert _resp(client, text, service_tier="default")[1] == 1920
    assert _resp(client, text, service_tier="auto")[1] == 1920

    def reasoning(**kw: Any) -> int:
        r = client.responses.create(model="gpt-5-mini", input=text, store=False, **kw)
        assert r.usage is not None
        return r.usage.input_tokens_details.cached_tokens

    reasoning(reasoning={"effort": "low"}, text={"verbosity": "low"})
    assert reasoning(reasoning={"effort": "low"}, text={"verbosity": "low"}) == 1920
    assert reasoning(reasoning={"effort": "high"}, text={"verbosity": "low"}) == 0
    assert reasoning(reasoning={"effort": "low"}, text={"verbosity": "high"}) == 0
    # chat's reasoning_effort/verbosity are the same settings: the same cache entry
    c = client.chat.completions.create(
        model="gpt-5-mini",
        messages=[{"role": "user", "content": text}],
        reasoning_effort="low",
        verbosity="low",
    )
    assert c.usage is not None and c.usage.prompt_tokens_details is not None
    assert c.usage.prompt_tokens_details.cached_tokens == 1920


def test_models_do_not_share_a_cache(client: openai.OpenAI) -> None:
    text = _prompt(2000)
    _resp(client, text)
    r = client.responses.create(model="gpt-4.1", input=text, store=False)
    assert r.usage is not None and r.usage.input_tokens_details.cached_tokens == 0


def test_ttl_expiry(emulators: Any) -> None:
    profile = load_profile("zero").derive({"chat": {"cache_ttl_s": 0.15}})
    with emulators.running(profile) as emu, emulators.client(emu) as c:
        text = _prompt(1200)
        mem = {"prompt_cache_retention": "in_memory"}
        _chat(c, text, **mem)
        assert _chat(c, text, **mem)[1] == 1152
        time.sleep(0.3)
        assert _chat(c, text, **mem)[1] == 0
        assert _chat(c, text, prompt_cache_retention="24h")[1] == 1152  # re-written, now 24 h
        time.sleep(0.3)
        assert _chat(c, text, **mem)[1] == 1152


def test_default_retention_is_24h_as_the_spec_says(emulators: Any) -> None:
    # spec (prompt_cache_retention): organizations without ZDR default to 24h; the profile's
    # cache_ttl_s is the in_memory retention
    profile = load_profile("zero").derive({"chat": {"cache_ttl_s": 0.15}})
    with emulators.running(profile) as emu, emulators.client(emu) as c:
        text = _prompt(1200)
        _chat(c, text)
        time.sleep(0.3)
        assert _chat(c, text)[1] == 1152


def test_guide_claims_responses_cache_better(emulators: Any) -> None:
    with emulators.running("guide-claims", time_scale=0.0) as emu, emulators.client(emu) as c:
        text = _prompt(2000)
        _resp(c, text)
        assert _resp(c, text)[1] == 1920
        assert _chat(c, text)[1] == 1152  # 60 % of 1,920, on the 1,024 + 128·k grid
        ratio = 1920 / 1152
        assert 1.4 <= ratio <= 1.8


def test_write_becomes_visible_when_prefill_is_done(emulators: Any) -> None:
    profile = load_profile("zero").derive({"chat": {"ttft_ms": 150}})
    with emulators.running(profile) as emu:

        async def both(text: str) -> list[int]:
            async with openai.AsyncOpenAI(
                base_url=emu.base_url, api_key="sk-test", max_retries=0
            ) as ac:
                replies = await asyncio.gather(
                    *[
                        ac.chat.completions.create(
                            model=MODEL, messages=[{"role": "user", "content": text}]
                        )
                        for _ in range(2)
                    ]
                )
            return [r.usage.prompt_tokens_details.cached_tokens for r in replies]

        text = _prompt(2000)
        assert asyncio.run(both(text)) == [0, 0]  # sent together: neither sees the other
        assert asyncio.run(both(text)) == [1920, 1920]


# --- chains -------------------------------------------------------------------------------------


def test_chained_turns_bill_like_stateless_turns(client: openai.OpenAI) -> None:
    system = text_of_tokens(1400, nonce())
    turns = ["What are your support hours?", "And on weekends?", "Thanks, any holidays?"]
    chained: list[tuple[int, int]] = []
    previous: str | None = None
    for turn in turns:
        r = client.responses.create(
            model=MODEL,
            instructions=system,
            input=turn,
            previous_response_id=previous,
            temperature=0,
        )
        assert r.usage is not None
        chained.append((r.usage.input_tokens, r.usage.input_tokens_details.cached_tokens))
        previous = r.id

    stateless: list[tuple[int, int]] = []
    chat: list[int] = []
    history: list[dict[str, str]] = []
    for turn in turns:
        history.append({"role": "user", "content": turn})
        r = client.responses.create(
            model=MODEL, instructions=system, input=history, temperature=0, store=False
        )
        c = client.chat.completions.create(
            model=MODEL, temperature=0, messages=[{"role": "system", "content": system}, *history]
        )
        assert r.usage is not None and c.usage is not None
        assert c.choices[0].message.content == r.output_text  # parity: same reply
        stateless.append((r.usage.input_tokens, r.usage.input_tokens_details.cached_tokens))
        chat.append(c.usage.prompt_tokens)
        history.append({"role": "assistant", "content": r.output_text})

    assert [n for n, _ in chained] == [n for n, _ in stateless] == chat
    assert chained[0][1] == 0
    assert all(cached >= 1408 for _, cached in chained[1:])  # the chain reuses its prefix
    assert [cached for _, cached in stateless] == [block_floor(n - 1) for n, _ in chained]


def test_instructions_are_not_carried_over(client: openai.OpenAI) -> None:
    first = client.responses.create(model=MODEL, instructions="Be terse. " * 20, input="Hi")
    again = client.responses.create(model=MODEL, input="More", previous_response_id=first.id)
    resent = client.responses.create(
        model=MODEL, input="More", previous_response_id=first.id, instructions="Be terse. " * 20
    )
    assert again.usage is not None and resent.usage is not None
    # the resent instructions are one more framed segment; the chain did not carry them
    assert (
        resent.usage.input_tokens - again.usage.input_tokens
        == count_text_tokens("Be terse. " * 20, MODEL) + 3
    )


def test_unknown_previous_response_is_400(client: openai.OpenAI) -> None:
    # OpenAI answers 400 invalid_request_error here, not 404 (issue 17, defect 6)
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model=MODEL, input="x", previous_response_id="resp_nope")
    assert info.value.code == "previous_response_not_found"
    assert info.value.param == "previous_response_id"
    assert info.value.type == "invalid_request_error"
    assert info.value.body["message"]  # type: ignore[index] == "Previous response with id 'resp_nope' not found."
    unstored = client.responses.create(model=MODEL, input="x", store=False)
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model=MODEL, input="y", previous_response_id=unstored.id)


def test_chain_with_tool_call_bills_the_call_and_output(client: openai.OpenAI) -> None:
    tools = [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            },
            "strict": True,
        }
    ]
    first = client.responses.create(model=MODEL, input="What is the weather in Paris?", tools=tools)
    call = first.output[0]
    assert call.type == "function_call"
    output = {"type": "function_call_output", "call_id": call.call_id, "output": '{"temp_c": 18}'}
    chained = client.responses.create(
        model=MODEL, tools=tools, temperature=0, previous_response_id=first.id, input=[output]
    )
    stateless = client.responses.create(
        model=MODEL,
        tools=tools,
        store=False,
        temperature=0,
        input=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            output,
        ],
    )
    assert chained.usage is not None and stateless.usage is not None
    assert chained.usage.input_tokens == stateless.usage.input_tokens
    assert chained.output_text == stateless.output_text
    assert "temp_c 18" in chained.output_text


def test_system_message_and_instructions_share_a_prefix(client: openai.OpenAI) -> None:
    system = text_of_tokens(1900, nonce())
    c = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": "Hours?"}],
    )
    r = client.responses.create(model=MODEL, instructions=system, input="Hours?", store=False)
    d = client.responses.create(
        model=MODEL,
        store=False,
        input=[{"role": "developer", "content": system}, {"role": "user", "content": "Hours?"}],
    )
    assert c.usage is not None and r.usage is not None and d.usage is not None
    assert c.usage.prompt_tokens == r.usage.input_tokens == d.usage.input_tokens
    assert r.usage.input_tokens_details.cached_tokens == block_floor(r.usage.input_tokens - 1)
    assert d.usage.input_tokens_details.cached_tokens == block_floor(r.usage.input_tokens - 1)
