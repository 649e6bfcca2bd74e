"""harness.shadow.client: live calls unchanged, a sampled share mirrored to Responses, canary mode.

Against the emulator (in-process, ``zero`` profile unless a test needs faults or divergence)
and, where results must be byte-for-byte comparable, a mocked primary (``httpx2.MockTransport``
serving canned bytes) with the shadow side on the emulator.

Where the shadow side runs changes how calls reach it, how it is counted, flushed and closed:
tests of that (sampling end to end, faults, drops, redaction in files, flush/close, canary
records, async) run in both modes (the ``mode`` fixture). The rest use ``mode="thread"``: a
sidecar process costs about a second of start-up per client. Sidecar-only behaviour (crashes,
restarts, pickling) is in ``test_shadow_sidecar.py``.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import multiprocessing
import os
import re
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessage

from harness.cli.app import main
from harness.emulator.server import EmulatorThread
from harness.errors import TranslationError
from harness.rundir import read_meta, read_observations
from harness.shadow import (
    AsyncShadowClient,
    ShadowClient,
    drop_text,
    keep_text,
    merge_shards,
    neutral_from_chat_kwargs,
    sample_point,
    shadow_responses_kwargs,
)
from harness.shadow.canary import CanaryCall, CanaryStreamError, ChunkTranslator, _chunks_sync
from harness.shadow.capture import Capture
from harness.shadow.store import shard_paths

MODEL = "gpt-4.1-mini"
HELLO = [{"role": "user", "content": "What are your support hours?"}]
WEATHER_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
WEATHER = [{"role": "user", "content": "Weather in Paris?"}]


@pytest.fixture(params=["process", "thread"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def scrub(obs: Any) -> Any:
    """A custom redactor (module level, so a sidecar process can import it)."""
    return obs.model_copy(update={"output_text": "[scrubbed]", "request_id": None})


def _profile(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"extends: zero\nname: {name}\n{body}", encoding="utf-8")
    return path


def _client(url: str, run_dir: Path, **options: Any) -> ShadowClient:
    options.setdefault("mode", "thread")
    return ShadowClient(
        openai.OpenAI(base_url=url, api_key="test", max_retries=0), run_dir=run_dir, **options
    )


def _observations(run_dir: Path) -> list[Any]:
    merge_shards(run_dir)
    return list(read_observations(run_dir / "observations.jsonl"))


def _pairs(run_dir: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for o in _observations(run_dir):
        out.setdefault(o.prompt_id, {})[o.arm] = o
    return out


# --- a mocked primary: exact bytes, so "unchanged" can be checked exactly ------------------------

_COMPLETION = {
    "id": "chatcmpl-mock",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": MODEL,
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "logprobs": None,
            "message": {
                "role": "assistant",
                "content": "We are open 9 to 5.",
                "refusal": None,
                "annotations": [],
            },
        }
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
    "service_tier": "default",
    "system_fingerprint": "fp_mock",
}


def _sse() -> bytes:
    head = {
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": MODEL,
        "system_fingerprint": "fp_mock",
    }
    deltas = [
        {"role": "assistant", "content": ""},
        {"content": "We are "},
        {"content": "open 9 to 5."},
    ]
    chunks = [
        {**head, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas
    ]
    chunks.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return (
        b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    )


def _mock_handler(request: httpx2.Request) -> httpx2.Response:
    body = json.loads(request.content)
    headers = {"x-request-id": "req_mock"}
    if body["messages"][-1]["content"] == "fail":
        return httpx2.Response(
            429,
            headers={**headers, "retry-after-ms": "5"},
            json={"error": {"message": "slow down", "type": "rate_limit", "code": "rate_limit"}},
        )
    if body.get("stream"):
        return httpx2.Response(
            200, headers={**headers, "content-type": "text/event-stream"}, content=_sse()
        )
    return httpx2.Response(200, headers=headers, json=_COMPLETION)


def _mock_openai() -> openai.OpenAI:
    return openai.OpenAI(
        base_url="http://mock.test/v1",
        api_key="test",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(_mock_handler)),
    )


def _mock_shadow(emu: EmulatorThread, run_dir: Path, **options: Any) -> ShadowClient:
    options.setdefault("mode", "thread")
    return ShadowClient(
        _mock_openai(),
        run_dir=run_dir,
        shadow_base_url=emu.base_url,
        shadow_api_key="test",
        **options,
    )


def _settled(stats: Any) -> None:
    """Every mirrored call ended in exactly one counted state."""
    assert stats.unsettled == 0, stats
    assert stats.sampled == (
        stats.pairs_written
        + stats.pairs_failed
        + stats.dropped_queue_full
        + stats.dropped_closed
        + stats.dropped_sidecar_down
        + stats.abandoned_streams
        + stats.cancelled_at_close
        + stats.lost_in_crash
    )


# --- translation of live kwargs --------------------------------------------------------------


def test_chat_kwargs_translate_like_scenarios() -> None:
    history = ChatCompletionMessage(
        role="assistant",
        content=None,
        tool_calls=[
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    )
    kwargs = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look: "},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
                ],
            },
            history,
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 18}'},
        ],
        "tools": WEATHER_TOOLS,
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "w", "schema": {"type": "object"}},
        },
        "max_tokens": 64,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
        "store": True,
        "n": 1,
        "user": "u-1",
        "safety_identifier": "s-1",
        "top_p": openai.NOT_GIVEN,
        "extra_headers": {"x-a": "b"},
    }
    out = shadow_responses_kwargs(kwargs)
    assert out["instructions"] == "Be brief."
    assert out["input"][0]["content"][1] == {
        "type": "input_image",
        "image_url": "data:image/png;base64,AA",
        "detail": "auto",
    }
    assert out["input"][1] == {
        "type": "function_call",
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": '{"city":"Paris"}',
    }
    assert out["input"][2] == {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": '{"temp_c": 18}',
    }
    assert out["tools"][0]["strict"] is False and out["tool_choice"] == {
        "type": "function",
        "name": "get_weather",
    }
    assert out["text"]["format"] == {
        "type": "json_schema",
        "name": "w",
        "schema": {"type": "object"},
        "strict": False,
    }
    assert out["max_output_tokens"] == 64 and out["temperature"] == 0
    assert out["store"] is False  # a mirrored call is never stored
    assert out["stream"] is True and "stream_options" not in out
    assert out["user"] == "u-1" and out["safety_identifier"] == "s-1" and "top_p" not in out


def test_non_streaming_call_mirrors_as_non_streaming() -> None:
    assert shadow_responses_kwargs({"model": MODEL, "messages": HELLO})["stream"] is False
    req = neutral_from_chat_kwargs({"model": MODEL, "messages": HELLO, "stream": True})
    assert req.params.stream is True


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"seed": 3}, "seed"),
        ({"n": 2}, "n"),
        ({"stop": ["x"]}, "stop"),
        ({"logit_bias": {"1": 2}}, "logit_bias"),
        ({"frequency_penalty": 0.5}, "frequency_penalty"),
        ({"max_tokens": 5, "max_completion_tokens": 5}, "max_completion_tokens"),
        ({"extra_body": {"foo": 1}}, "extra_body"),
        ({"whatever": 1}, "whatever"),
        ({"messages": [{"role": "user", "content": "hi", "name": "bob"}]}, "messages[0].name"),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "messages[0].content[0]",
        ),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"max_completion_tokens": 4}, "max_output_tokens"),  # Responses minimum is 16
    ],
)
def test_untranslatable_calls_name_the_parameter(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(TranslationError, match=f"responses: {re.escape(param)}"):
        shadow_responses_kwargs({"model": MODEL, "messages": HELLO, **extra})


def test_no_op_defaults_are_accepted() -> None:
    # issue 17: apps that send the defaults must not be refused (that biases the shadow sample)
    defaults = {
        "logprobs": False,
        "frequency_penalty": 0,
        "presence_penalty": 0.0,
        "modalities": ["text"],
        "logit_bias": {},
        "n": 1,
    }
    out = shadow_responses_kwargs({"model": MODEL, "messages": HELLO, **defaults})
    assert not set(defaults) & set(out)
    for name, value in (("logprobs", True), ("presence_penalty", 0.1), ("modalities", ["audio"])):
        with pytest.raises(TranslationError, match=f"responses: {name}:"):
            shadow_responses_kwargs({"model": MODEL, "messages": HELLO, name: value})


def test_enum_values_are_the_sdks() -> None:
    # gpt-5.1 effort "none", service tiers "scale"/"fast", image detail "original" (issue 17)
    image = {"type": "image_url", "image_url": {"url": "https://x/a.png", "detail": "original"}}
    out = shadow_responses_kwargs(
        {
            "model": "gpt-5.1",
            "messages": [{"role": "user", "content": [image]}],
            "reasoning_effort": "none",
            "service_tier": "scale",
        }
    )
    assert out["reasoning"] == {"effort": "none"} and out["service_tier"] == "scale"
    assert out["input"][0]["content"][0]["detail"] == "original"
    assert shadow_responses_kwargs({"model": MODEL, "messages": HELLO, "service_tier": "fast"})
    with pytest.raises(TranslationError) as info:
        shadow_responses_kwargs(
            {"model": "gpt-5.1", "messages": HELLO, "reasoning_effort": "ultra"}
        )
    assert str(info.value) == (
        "responses: reasoning_effort: 'ultra' is not a value the API accepts; use one of: "
        "none, minimal, low, medium, high, xhigh, max"
    )


def test_ignore_params_drops_instead_of_rejecting() -> None:
    out = shadow_responses_kwargs({"model": MODEL, "messages": HELLO, "seed": 1}, ignore={"seed"})
    assert "seed" not in out


# --- sampling --------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.02, 0.10, 0.5])
def test_sampling_share_within_two_points_over_5000_keys(rate: float) -> None:
    salt = b"fixed-seed-salt!"
    points = [sample_point(f"user-{i}", salt) for i in range(5000)]
    share = sum(p < rate for p in points) / len(points)
    assert abs(share - rate) <= 0.02
    assert points == [sample_point(f"user-{i}", salt) for i in range(5000)]  # deterministic


def test_sampled_share_end_to_end_over_5000_calls(
    emulator: EmulatorThread, tmp_path: Path, mode: str
) -> None:
    run_dir = tmp_path / "run"
    with _mock_shadow(
        emulator, run_dir, sample_rate=0.10, seed=7, max_queue=10_000, mode=mode
    ) as client:
        for i in range(5000):
            client.chat.completions.create(model=MODEL, messages=HELLO, shadow_key=f"u{i}")
        assert client.shadow.flush(30)
        stats = client.shadow.stats()
    pairs = _pairs(run_dir)
    assert abs(len(pairs) / 5000 - 0.10) <= 0.02
    assert stats.calls == 5000 and stats.sampled == len(pairs) == stats.pairs_written
    _settled(stats)
    assert all(set(p) == {"chat", "responses"} and p["responses"].ok for p in pairs.values())
    # the same keys are sampled again in a second process with the same seed
    expected = {i for i in range(5000) if sample_point(f"u{i}", client.shadow._salt) < 0.10}
    assert len(expected) == len(pairs)


def test_calls_without_a_key_use_a_seeded_draw(emulator: EmulatorThread, tmp_path: Path) -> None:
    routes = []
    for run in ("a", "b"):
        with _mock_shadow(emulator, tmp_path / run, sample_rate=0.3, seed=5) as client:
            routes.append([client.shadow.route({"model": MODEL}) for _ in range(200)])
    assert routes[0] == routes[1] and 30 <= routes[0].count("shadow") <= 90


def test_key_sources(emulator: EmulatorThread, tmp_path: Path) -> None:
    with _mock_shadow(
        emulator, tmp_path / "r", sample_rate=0.5, key_metadata_field="tenant"
    ) as client:
        shadow = client.shadow
        by_point = {k: sample_point(k, shadow._salt) < 0.5 for k in ("a", "b", "c", "d")}
        for key, sampled in by_point.items():
            for kwargs in (
                {"shadow_key": key},
                {"user": key},
                {"safety_identifier": key},
                {"metadata": {"tenant": key}},
            ):
                assert (shadow.route(dict(kwargs)) == "shadow") == sampled
        kwargs: dict[str, Any] = {"shadow_key": "a", "model": MODEL}
        shadow.route(kwargs)
        assert kwargs == {"model": MODEL}  # never reaches the SDK


# --- the primary is untouched ----------------------------------------------------------------


def test_primary_results_identical_with_and_without_wrapper(
    emulator: EmulatorThread, tmp_path: Path, mode: str
) -> None:
    plain = _mock_openai()
    with _mock_shadow(emulator, tmp_path / "run", sample_rate=1.0, mode=mode) as client:
        a = plain.chat.completions.create(model=MODEL, messages=HELLO)
        b = client.chat.completions.create(model=MODEL, messages=HELLO)
        assert type(a) is type(b) is ChatCompletion
        assert a.model_dump() == b.model_dump() and a._request_id == b._request_id
        sa = plain.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
        sb = client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
        assert type(sa) is type(sb) is openai.Stream
        with sb:
            chunks_b = [c.model_dump() for c in sb]
        assert [c.model_dump() for c in sa] == chunks_b and len(chunks_b) == 4
        fail = [{"role": "user", "content": "fail"}]
        with pytest.raises(openai.RateLimitError) as ea:
            plain.chat.completions.create(model=MODEL, messages=fail)
        with pytest.raises(openai.RateLimitError) as eb:
            client.chat.completions.create(model=MODEL, messages=fail)
        assert (ea.value.status_code, ea.value.body) == (eb.value.status_code, eb.value.body)
        assert client.shadow.flush(10)
    plain.close()
    obs = _pairs(tmp_path / "run")
    failed = [p for p in obs.values() if not p["chat"].ok]
    assert len(obs) == 3 and len(failed) == 1
    assert failed[0]["chat"].status == 429 and failed[0]["chat"].error_type == "rate_limit"
    assert failed[0]["responses"].ok  # the shadow still ran: both sides are data


def test_primary_identical_against_emulator_and_timed(
    emulator: EmulatorThread, tmp_path: Path, emulators: Any
) -> None:
    plain = emulators.client(emulator, api_key="test")
    kw: dict[str, Any] = {"model": MODEL, "messages": HELLO, "temperature": 0}
    with _client(emulator.base_url, tmp_path / "run", sample_rate=1.0, redact=keep_text) as client:
        assert client.shadow.wire_clock
        for stream in (False, True):
            a = plain.chat.completions.create(**kw, stream=stream)
            b = client.chat.completions.create(**kw, stream=stream)
            if stream:
                ca, cb = list(a), list(b)
                assert [type(c) for c in ca] == [type(c) for c in cb]
                text_a = "".join(c.choices[0].delta.content or "" for c in ca if c.choices)
                text_b = "".join(c.choices[0].delta.content or "" for c in cb if c.choices)
            else:
                text_a, text_b = a.choices[0].message.content, b.choices[0].message.content
            assert text_a == text_b and text_a
        client.shadow.flush(10)
    plain.close()
    pairs = list(_pairs(tmp_path / "run").values())
    assert len(pairs) == 2
    for pair in pairs:
        chat, resp = pair["chat"], pair["responses"]
        assert chat.ok and resp.ok and chat.output_text == resp.output_text
        assert chat.similarity == resp.similarity == 1.0
        assert chat.contaminated_cache and resp.contaminated_cache
        assert chat.origin == resp.origin == "shadow" and chat.client == "sdk"
        for o in (chat, resp):  # both clocks on both sides
            assert o.ttfb_ms is not None and o.total_ms is not None
            assert o.sdk_ttfb_ms is not None and o.sdk_total_ms is not None
            assert o.request_id and o.request_id.startswith("req_")
            if o.stream:
                assert o.ttft_ms is not None and o.ttfb_ms <= o.ttft_ms <= o.total_ms
                assert o.sdk_ttft_ms is not None
    meta = read_meta(tmp_path / "run")
    assert meta.is_emulator and "not OpenAI" in meta.target_label
    assert meta.shadow is not None and meta.shadow["sample_rate"] == 1.0


def test_shadow_faults_leave_primary_untouched(
    emulator: EmulatorThread, tmp_path: Path, mode: str, emulators: Any
) -> None:
    faults = _profile(
        tmp_path,
        "faulty",
        "responses:\n  faults: {server_error: 0.3, "
        "overloaded: 0.2, stream_cut: 0.2, response_failed: 0.15, "
        "error_event: 0.15}\n",
    )
    plain = emulators.client(emulator, api_key="test")
    kw: dict[str, Any] = {"model": MODEL, "messages": HELLO, "temperature": 0}
    expected = plain.chat.completions.create(**kw).choices[0].message.content
    with (
        emulators.running(str(faults)) as shadow_emu,
        _client(
            emulator.base_url,
            tmp_path / "run",
            sample_rate=1.0,
            mode=mode,
            shadow_base_url=shadow_emu.base_url,
        ) as client,
    ):
        for i in range(40):
            if i % 2:
                got = client.chat.completions.create(**kw).choices[0].message.content
            else:
                got = "".join(
                    c.choices[0].delta.content or ""
                    for c in client.chat.completions.create(**kw, stream=True)
                    if c.choices
                )
            assert got == expected
        client.shadow.flush(20)
        stats = client.shadow.stats()
    plain.close()
    pairs = _pairs(tmp_path / "run")
    assert len(pairs) == 40 and all(p["chat"].ok for p in pairs.values())
    errors = {p["responses"].error_type for p in pairs.values() if not p["responses"].ok}
    assert stats.shadow_errors == sum(not p["responses"].ok for p in pairs.values()) >= 10
    assert {"server_error", "stream_interrupted"} <= errors or len(errors) >= 3
    assert stats.pairs_written == 40
    _settled(stats)


def test_slow_or_dead_shadow_never_slows_the_primary(
    emulator: EmulatorThread, tmp_path: Path, mode: str, emulators: Any
) -> None:
    slow = _profile(
        tmp_path, "slow", "responses:\n  faults: {slow_headers: 1.0, slow_headers_ms: 2000}\n"
    )
    with (
        emulators.running(str(slow)) as shadow_emu,
        _client(
            emulator.base_url,
            tmp_path / "run",
            sample_rate=1.0,
            timeout_s=0.3,
            max_queue=2,
            max_concurrency=2,
            mode=mode,
            shadow_base_url=shadow_emu.base_url,
        ) as client,
    ):
        durations = []
        for _ in range(12):
            t0 = time.perf_counter()
            client.chat.completions.create(model=MODEL, messages=HELLO)
            durations.append(time.perf_counter() - t0)
        assert max(durations) < 0.25  # the shadow calls take 2 s each (cut at 0.3 s)
        client.shadow.flush(10)
        stats = client.shadow.stats()
    assert stats.dropped_queue_full >= 1 and stats.timeouts >= 1
    _settled(stats)
    timed_out = [
        p["responses"]
        for p in _pairs(tmp_path / "run").values()
        if p["responses"].error_type == "shadow_timeout"
    ]
    assert timed_out and all(p.ok is False for p in timed_out)
    # a shadow target that refuses connections: errors recorded, primary fine
    with _client(
        emulator.base_url,
        tmp_path / "dead",
        sample_rate=1.0,
        mode=mode,
        shadow_base_url="http://127.0.0.1:9/v1",
    ) as client:
        assert client.chat.completions.create(model=MODEL, messages=HELLO).choices
        client.shadow.flush(10)
    (pair,) = _pairs(tmp_path / "dead").values()
    assert pair["chat"].ok and pair["responses"].error_type == "connection_error"


def test_untranslatable_call_is_a_shadow_error_not_an_exception(
    emulator: EmulatorThread, tmp_path: Path
) -> None:
    with _client(emulator.base_url, tmp_path / "run", sample_rate=1.0) as client:
        reply = client.chat.completions.create(model=MODEL, messages=HELLO, seed=42)
        assert reply.choices[0].message.content
        client.shadow.flush(10)
        assert client.shadow.stats().untranslatable == 1
    (pair,) = _pairs(tmp_path / "run").values()
    assert pair["chat"].ok and pair["responses"].error_type == "untranslatable"
    assert "seed" in (pair["responses"].error_message or "")


def test_abandoned_stream_is_counted_not_compared(emulator: EmulatorThread, tmp_path: Path) -> None:
    with _client(emulator.base_url, tmp_path / "run", sample_rate=1.0) as client:
        stream = client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
        next(iter(stream))
        stream.close()
        del stream
        gc.collect()  # the SDK's stream and its iterators form a cycle
        client.chat.completions.create(model=MODEL, messages=HELLO)
        client.shadow.flush(10)
        stats = client.shadow.stats()
    assert stats.abandoned_streams == 1 and stats.pairs_written == 1


def test_flush_and_close_account_for_every_call(
    emulator: EmulatorThread, tmp_path: Path, mode: str, emulators: Any
) -> None:
    slow = _profile(
        tmp_path,
        "slow",
        "responses:\n  faults: {slow_headers: 1.0, slow_headers_ms: {median: 1500}}\n",
    )
    run_dir = tmp_path / "run"
    with emulators.running(str(slow)) as shadow_emu:
        client = _client(
            emulator.base_url,
            run_dir,
            sample_rate=1.0,
            mode=mode,
            max_concurrency=2,
            shadow_base_url=shadow_emu.base_url,
        )
        assert client.shadow.flush(10)  # nothing accepted yet
        for _ in range(6):
            client.chat.completions.create(model=MODEL, messages=HELLO)
        assert not client.shadow.flush(0.2)  # each mirror takes 1.5 s
        t0 = time.perf_counter()
        client.shadow.close(timeout_s=0.5)  # what is not done by then is cancelled
        assert time.perf_counter() - t0 < 5
        stats = client.shadow.stats()
        assert stats.cancelled_at_close >= 1
        assert stats.pairs_written + stats.cancelled_at_close == 6
        _settled(stats)
        on_disk = merge_shards(run_dir).stats
        assert {k: on_disk[k] for k in ("sampled", "pairs_written", "cancelled_at_close")} == {
            "sampled": 6,
            "pairs_written": stats.pairs_written,
            "cancelled_at_close": stats.cancelled_at_close,
        }
        # closed: the application's calls are still served, and no longer mirrored
        assert client.chat.completions.create(model=MODEL, messages=HELLO).choices
        client.shadow.close()  # idempotent
        after = client.shadow.stats()
        assert (after.calls, after.sampled) == (7, 6)
        _settled(after)
        client.close()
    assert merge_shards(run_dir).records == 2 * stats.pairs_written


# --- files: redaction, shards, merge, analysis -----------------------------------------------


def test_default_redaction_keeps_hashes_and_lengths_only(
    emulator: EmulatorThread, tmp_path: Path, mode: str
) -> None:
    run_dir = tmp_path / "run"
    with _client(emulator.base_url, run_dir, sample_rate=1.0, mode=mode) as client:
        text = (
            client.chat.completions.create(model=MODEL, messages=HELLO, temperature=0)
            .choices[0]
            .message.content
        )
        call = client.chat.completions.create(
            model=MODEL, messages=WEATHER, tools=WEATHER_TOOLS, temperature=0
        )
        client.shadow.flush(10)
    assert text and call.choices[0].message.tool_calls
    args = call.choices[0].message.tool_calls[0].function.arguments
    raw = b"".join(p.read_bytes() for p in shard_paths(run_dir))
    assert text.encode() not in raw and text[:25].encode() not in raw
    assert b"Paris" not in raw and args.encode() not in raw
    every_file = b"".join(p.read_bytes() for p in run_dir.iterdir() if p.is_file())
    assert b"test" not in every_file.replace(b"tests", b"")  # the API key, nowhere
    by_kind = {("tool" if o.tool_calls else "text", o.arm): o for o in _observations(run_dir)}
    chat = by_kind[("text", "chat")]
    assert chat.output_text is None and chat.output_chars == len(text)
    assert chat.output_sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert chat.similarity == 1.0  # computed before the text was dropped
    calls = [by_kind[("tool", arm)].tool_calls[0] for arm in ("chat", "responses")]
    assert calls[0].name == "get_weather" and calls[0].arguments.startswith("sha256:")
    assert calls[0].arguments == calls[1].arguments  # equal arguments still compare equal


@pytest.mark.parametrize(("redact", "stored"), [(keep_text, True), (drop_text, False)])
def test_redaction_choices(
    emulator: EmulatorThread, tmp_path: Path, redact: Any, stored: bool
) -> None:
    with _client(emulator.base_url, tmp_path / "run", sample_rate=1.0, redact=redact) as client:
        text = client.chat.completions.create(model=MODEL, messages=HELLO).choices[0]
        client.shadow.flush(10)
    raw = b"".join(p.read_bytes() for p in shard_paths(tmp_path / "run"))
    assert (str(text.message.content).encode() in raw) is stored
    obs = _observations(tmp_path / "run")
    assert all((o.output_sha256 is not None) is stored and o.output_chars for o in obs)


def test_custom_redactor_runs_before_anything_is_written(
    emulator: EmulatorThread, tmp_path: Path, mode: str
) -> None:
    with _client(
        emulator.base_url, tmp_path / "run", sample_rate=1.0, mode=mode, redact=scrub
    ) as client:
        client.chat.completions.create(model=MODEL, messages=HELLO)
        client.shadow.flush(10)
    assert {(o.output_text, o.request_id) for o in _observations(tmp_path / "run")} == {
        ("[scrubbed]", None)
    }


def test_shards_rotate_merge_is_idempotent_and_skips_torn_lines(
    emulator: EmulatorThread, tmp_path: Path, capsys: Any
) -> None:
    run_dir = tmp_path / "run"
    with _client(
        emulator.base_url, run_dir, sample_rate=1.0, max_shard_bytes=1, fsync_every=1
    ) as client:
        for _ in range(3):
            client.chat.completions.create(model=MODEL, messages=HELLO)
            client.shadow.flush(10)
    shards = shard_paths(run_dir)
    assert len(shards) == 3  # rotated by size: one pair per shard
    first = merge_shards(run_dir)
    content = (run_dir / "observations.jsonl").read_bytes()
    again = merge_shards(run_dir)
    assert first.records == again.records == 6 and first.merged and not again.merged
    assert (run_dir / "observations.jsonl").read_bytes() == content
    with shards[-1].open("ab") as fh:  # a process killed mid-write
        fh.write(b'{"schema_version": 1, "run_id": "x", "scen')
    torn = merge_shards(run_dir)
    assert torn.merged and torn.records == 6 and torn.skipped_lines == 1 and not torn.problems
    assert main(["shadow", "merge", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "6 records from 3 shard(s), unchanged, 1 incomplete line(s) skipped" in out
    assert "mirrored 3, pairs written 3 (100.0%), not written 0," in out
    # another process's counters: every way a mirrored call can end unwritten is summed
    (run_dir / "shadow-stats-elsewhere-1-0.json").write_text(
        json.dumps({"sampled": 3, "dropped_queue_full": 2, "lost_in_crash": 1})
    )
    assert main(["shadow", "merge", str(run_dir)]) == 0
    assert (
        "mirrored 6, pairs written 3 (50.0%), not written 3 (dropped queue full 2, lost in crash 1)"
    ) in capsys.readouterr().out
    assert json.loads((run_dir / "shadow_stats.json").read_text())["pairs_written"] == 3


def test_processes_share_a_run_directory(emulator: EmulatorThread, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    code = (
        "import sys, openai\n"
        "from pathlib import Path\n"
        "from harness.shadow.client import ShadowClient\n"
        "c = ShadowClient(openai.OpenAI(base_url=sys.argv[1], api_key='t', max_retries=0),\n"
        "                 sample_rate=1.0, run_dir=Path(sys.argv[2]))\n"
        "for _ in range(3):\n"
        "    c.chat.completions.create(model='gpt-4.1-mini', messages=[{'role': 'user',\n"
        "                              'content': 'hi'}])\n"
        "c.close()\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", code, emulator.base_url, str(run_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr
    with _client(emulator.base_url, run_dir, sample_rate=1.0) as client:
        client.chat.completions.create(model=MODEL, messages=HELLO)
        client.shadow.flush(10)
    assert len({p.name.rsplit("-", 2)[1] for p in shard_paths(run_dir)}) == 2  # two pids
    assert len(_observations(run_dir)) == 8
    assert json.loads((run_dir / "shadow_stats.json").read_text())["pairs_written"] == 4


def _gates(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "gates.yaml"
    path.write_text(f"version: 1\ngates:\n{body}", encoding="utf-8")
    return path


def test_analyze_report_and_gate_work_on_a_shadow_run(
    emulator: EmulatorThread, tmp_path: Path, capsys: Any, emulators: Any
) -> None:
    diverging = _profile(tmp_path, "diverging", "divergence: 0.3\n")
    run_dir = tmp_path / "run"
    with (
        emulators.running(str(diverging)) as emu,
        _client(emu.base_url, run_dir, sample_rate=1.0, redact=keep_text) as client,
    ):
        for i in range(12):
            msgs = [{"role": "user", "content": f"Question {i}: what are your hours?"}]
            list(
                client.chat.completions.create(
                    model=MODEL, messages=msgs, temperature=0, stream=True
                )
            )
        client.shadow.flush(10)
    assert not (run_dir / "observations.jsonl").exists()  # shards only, until analysis
    assert main(["analyze", str(run_dir), "--quiet", "--resamples", "200"]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    (scenario,) = summary["scenarios"]
    comparison = scenario["comparisons"]["responses_vs_chat"]
    assert comparison["n_pairs"] == 12 and comparison["ttft_p50_ratio"] is not None
    assert 0.6 <= comparison["similarity"]["text"]["mean"] <= 0.8
    shadow_scores = [o.similarity for o in _observations(run_dir) if o.arm == "responses"]
    assert sum(shadow_scores) / len(shadow_scores) == pytest.approx(
        comparison["similarity"]["text"]["mean"]
    )  # stored score = analysis' score
    reports = ["--reports", str(tmp_path / "reports")]
    ok = _gates(
        tmp_path, "  responses.error_rate_max: 0.5\n  responses_vs_chat.similarity_mean_min: 0.5\n"
    )
    assert main(["gate", str(run_dir), "--config", str(ok), *reports]) == 0
    strict = _gates(tmp_path, "  responses_vs_chat.similarity_mean_min: 0.9\n")
    assert main(["gate", str(run_dir), "--config", str(strict), *reports]) == 1  # roll back
    capsys.readouterr()


# --- canary ----------------------------------------------------------------------------------


def _shape(value: Any) -> Any:
    """Keys and container structure of a JSON value (not the values themselves)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return None


def test_canary_results_have_the_shape_of_chat_results(
    emulator: EmulatorThread, tmp_path: Path, emulators: Any
) -> None:
    plain = emulators.client(emulator, api_key="test")
    with _client(emulator.base_url, tmp_path / "run", sample_rate=0.0, canary_rate=1.0) as client:
        for kw in ({"messages": HELLO}, {"messages": WEATHER, "tools": WEATHER_TOOLS}):
            chat = plain.chat.completions.create(model=MODEL, temperature=0, **kw)
            canary = client.chat.completions.create(model=MODEL, temperature=0, **kw)
            assert type(canary) is ChatCompletion and canary.id.startswith("resp_")
            assert _shape(canary.model_dump()) == _shape(chat.model_dump())
            assert canary.choices[0].message.content == chat.choices[0].message.content
            assert canary.choices[0].finish_reason == chat.choices[0].finish_reason
            assert canary.usage is not None and chat.usage is not None
            assert canary.usage.prompt_tokens == chat.usage.prompt_tokens
            for stream_options in (None, {"include_usage": True}):
                extra = {"stream_options": stream_options} if stream_options else {}
                a = list(
                    plain.chat.completions.create(
                        model=MODEL, temperature=0, stream=True, **kw, **extra
                    )
                )
                s = client.chat.completions.create(
                    model=MODEL, temperature=0, stream=True, **kw, **extra
                )
                assert type(s) is openai.Stream
                b = list(s)
                assert all(type(c) is ChatCompletionChunk for c in b)
                assert b[0].choices[0].delta.role == "assistant"
                assert [c.choices[0].finish_reason for c in a if c.choices][-1] == [
                    c.choices[0].finish_reason for c in b if c.choices
                ][-1]
                assert (a[-1].usage is None) == (b[-1].usage is None)
                assert _texts(a) == _texts(b) and _tool_args(a) == _tool_args(b)
        client.shadow.flush(10)
        stats = client.shadow.stats()
    plain.close()
    assert stats.canary_served == 6 and stats.canary_fallbacks == 0
    obs = _observations(tmp_path / "run")
    assert len(obs) == 6 and {(o.arm, o.origin, o.scenario, o.ok) for o in obs} == {
        ("responses", "canary", "shadow-canary", True)
    }


def _texts(chunks: list[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def _tool_args(chunks: list[ChatCompletionChunk]) -> list[tuple[str, str]]:
    calls: dict[int, list[str]] = {}
    for c in chunks:
        for call in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            slot = calls.setdefault(call.index, ["", ""])
            slot[0] = slot[0] or (call.function.name or "" if call.function else "")
            slot[1] += call.function.arguments or "" if call.function else ""
    return [(n, json.dumps(json.loads(a), sort_keys=True)) for n, a in calls.values()]


def test_canary_falls_back_to_chat(
    emulator: EmulatorThread, tmp_path: Path, mode: str, emulators: Any
) -> None:
    broken = _profile(tmp_path, "broken", "responses:\n  faults: {server_error: 1.0}\n")
    with (
        emulators.running(str(broken)) as emu,
        _client(
            emu.base_url, tmp_path / "run", sample_rate=0.0, canary_rate=1.0, mode=mode
        ) as client,
    ):
        reply = client.chat.completions.create(model=MODEL, messages=HELLO)
        assert type(reply) is ChatCompletion and reply.id.startswith("chatcmpl")
        stream = client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
        chunks = list(stream)
        assert chunks and chunks[0].id.startswith("chatcmpl") and _texts(chunks)
        seeded = client.chat.completions.create(model=MODEL, messages=HELLO, seed=1)
        assert seeded.id.startswith("chatcmpl")  # untranslatable: straight to chat
        client.shadow.flush(10)
        stats = client.shadow.stats()
        assert stats.canary_fallbacks == 3 and stats.canary_written == 3
    obs = _observations(tmp_path / "run")
    assert sorted(o.error_type or "" for o in obs) == [
        "server_error",
        "server_error",
        "untranslatable",
    ]
    assert all(
        not o.ok and (o.error_message or "").startswith("served by chat instead") for o in obs
    )


def test_canary_stream_failing_after_delivery_raises_like_chat(
    emulator: EmulatorThread, tmp_path: Path, emulators: Any
) -> None:
    failing = _profile(tmp_path, "failing", "responses:\n  faults: {response_failed: 1.0}\n")
    with (
        emulators.running(str(failing)) as emu,
        _client(emu.base_url, tmp_path / "run", sample_rate=0.0, canary_rate=1.0) as client,
    ):
        stream = client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
        with pytest.raises(openai.APIError):
            list(stream)
        client.shadow.flush(10)
    (obs,) = _observations(tmp_path / "run")
    assert not obs.ok and obs.finish == "failed"


class _FakeEvents:
    """A Responses stream that fails before producing output."""

    response = None

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self._events = iter(events)
        self.closed = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self._events

    def close(self) -> None:
        self.closed = True


class _FakeCompletions:
    def __init__(self) -> None:
        self.calls = 0

    def create(self, **kwargs: Any) -> list[ChatCompletionChunk]:
        self.calls += 1
        return [
            ChatCompletionChunk.model_validate(
                {
                    "id": "chatcmpl-x",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": MODEL,
                    "choices": [
                        {"index": 0, "delta": {"content": "from chat"}, "finish_reason": "stop"}
                    ],
                }
            )
        ]


_CREATED = {
    "type": "response.created",
    "response": {
        "id": "resp_1",
        "created_at": 1,
        "model": MODEL,
        "status": "in_progress",
        "output": [],
    },
}


@pytest.mark.parametrize(
    "last",
    [
        {
            "type": "response.failed",
            "response": {
                "id": "resp_1",
                "status": "failed",
                "error": {"code": "server_error", "message": "x"},
            },
        },
        {"type": "error", "code": "server_error", "message": "x"},
        {"type": "response.completed", "response": {"status": "completed"}},  # cannot translate
    ],
)
def test_canary_stream_failing_before_output_falls_back(last: dict[str, Any]) -> None:
    events, completions, done = _FakeEvents([_CREATED, last]), _FakeCompletions(), []
    capture = Capture(
        api="responses", kwargs={}, stream=True, started_at=0.0, t0_ns=0, recorder=None
    )
    call = CanaryCall({"model": MODEL, "messages": HELLO}, capture, (), done.append)
    call.result = events
    chunks = list(_chunks_sync(call, completions))
    assert [c.choices[0].delta.content for c in chunks] == ["from chat"]
    assert completions.calls == 1 and events.closed and done == [capture]
    assert capture.fallback == "responses_error"


def _event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, **fields}


_RESPONSE = {
    "id": "resp_1",
    "created_at": 1_700_000_000,
    "model": MODEL,
    "status": "completed",
    "output": [],
    "usage": {
        "input_tokens": 10,
        "output_tokens": 3,
        "input_tokens_details": {"cached_tokens": 4},
        "output_tokens_details": {"reasoning_tokens": 0},
    },
}


@pytest.mark.parametrize(
    ("status", "details", "tool", "finish"),
    [
        ("completed", None, False, "stop"),
        ("completed", None, True, "tool_calls"),
        ("incomplete", {"reason": "max_output_tokens"}, False, "length"),
        ("incomplete", {"reason": "content_filter"}, False, "content_filter"),
    ],
)
def test_chunk_translator_text_tools_usage_finish(
    status: str, details: Any, tool: bool, finish: str
) -> None:
    t = ChunkTranslator(include_usage=True)
    assert t.feed(_event("response.created", response=_RESPONSE)) == []
    out: list[dict[str, Any]] = []
    if tool:
        out += t.feed(
            _event(
                "response.output_item.added",
                item={
                    "type": "function_call",
                    "id": "fc_1",
                    "call_id": "call_1",
                    "name": "f",
                    "arguments": "",
                },
            )
        )
        out += t.feed(
            _event("response.function_call_arguments.delta", item_id="fc_1", delta='{"a":')
        )
        out += t.feed(_event("response.function_call_arguments.delta", item_id="fc_1", delta="1}"))
        output = [
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": '{"a":1}'}
        ]
    else:
        out += t.feed(_event("response.output_text.delta", delta="Hel"))
        out += t.feed(_event("response.output_text.delta", delta="lo"))
        output = [
            {
                "type": "message",
                "content": [{"type": "output_text", "text": "Hello", "annotations": []}],
            }
        ]
    final = {**_RESPONSE, "status": status, "incomplete_details": details, "output": output}
    out += t.feed(_event(f"response.{status}", response=final))
    chunks = [ChatCompletionChunk.model_validate(c) for c in out]
    first = chunks[0].choices[0].delta
    assert first.role == "assistant"
    if tool:
        calls = [
            d.tool_calls[0]
            for c in chunks
            if c.choices and (d := c.choices[0].delta) and d.tool_calls
        ]
        assert calls[0].id == "call_1" and calls[0].function.name == "f"
        assert "".join(c.function.arguments or "" for c in calls) == '{"a":1}'
    else:
        assert _texts(chunks) == "Hello"
    assert chunks[-2].choices[0].finish_reason == finish
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (10, 3)
    assert usage.prompt_tokens_details and usage.prompt_tokens_details.cached_tokens == 4


def test_chunk_translator_holds_the_role_until_output_and_raises_on_failure() -> None:
    t = ChunkTranslator(include_usage=False)
    t.feed(_event("response.created", response=_RESPONSE))
    assert t.feed(_event("response.in_progress", response=_RESPONSE)) == []
    assert not t.started
    with pytest.raises(CanaryStreamError, match="boom"):
        t.feed(_event("error", code="server_error", message="boom"))


# --- async ------------------------------------------------------------------------------------


def test_async_client_mirrors_and_canaries(
    emulator: EmulatorThread, tmp_path: Path, mode: str
) -> None:
    async def scenario() -> list[tuple[str, str]]:
        plain = openai.AsyncOpenAI(base_url=emulator.base_url, api_key="test", max_retries=0)
        client = AsyncShadowClient(
            openai.AsyncOpenAI(base_url=emulator.base_url, api_key="test", max_retries=0),
            run_dir=tmp_path / "run",
            sample_rate=0.5,
            canary_rate=0.5,
            redact=keep_text,
            mode=mode,
        )
        texts = []
        try:
            for i in range(8):
                kw: dict[str, Any] = {
                    "model": MODEL,
                    "temperature": 0,
                    "messages": [{"role": "user", "content": f"Question {i}?"}],
                }
                expected = (await plain.chat.completions.create(**kw)).choices[0].message
                got = await client.chat.completions.create(**kw, shadow_key=str(i))
                assert type(got) is ChatCompletion
                texts.append((str(expected.content), str(got.choices[0].message.content)))
                stream = await client.chat.completions.create(**kw, stream=True, shadow_key=str(i))
                assert type(stream) is openai.AsyncStream
                streamed = "".join(
                    [c.choices[0].delta.content or "" async for c in stream if c.choices]
                )
                texts.append((str(expected.content), streamed))
            await asyncio.to_thread(client.shadow.flush, 10)
        finally:
            await client.close()
            await plain.close()
        return texts

    for expected, got in asyncio.run(scenario()):
        assert expected == got
    obs = _observations(tmp_path / "run")
    shadowed = {o.prompt_id for o in obs if o.origin == "shadow"}
    canaried = [o for o in obs if o.origin == "canary"]
    # every key goes one way for both of its calls: 2 pairs, or 2 canary calls
    assert len(shadowed) % 2 == 0 and len(shadowed) // 2 + len(canaried) // 2 == 8
    assert 0 < len(canaried) < 16 and all(o.ok for o in obs)


def test_forked_worker_starts_its_own_shadow_side(
    emulator: EmulatorThread, tmp_path: Path, mode: str
) -> None:
    run_dir = tmp_path / "run"
    with _client(emulator.base_url, run_dir, sample_rate=1.0, mode=mode) as client:
        client.chat.completions.create(model=MODEL, messages=HELLO)
        client.shadow.flush(10)
        parent_sidecar = getattr(client.shadow.engine, "pid", None)
        with warnings.catch_warnings():  # 3.12+ warns about fork with threads; we handle it
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # a pre-forked web worker: its first sampled call restarts the side
            code = 1
            try:
                client.chat.completions.create(model=MODEL, messages=HELLO)
                client.shadow.close()
                code = 0 if client.shadow.stats().pairs_written == 1 else 3
                # the parent's sidecar is not this worker's to stop or join at exit
                if parent_sidecar in {p.pid for p in multiprocessing.active_children()}:
                    code = 4
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    assert len({p.name.rsplit("-", 2)[1] for p in shard_paths(run_dir)}) == 2
    assert len(_pairs(run_dir)) == 2


def test_pairs_record_the_output_format_the_call_asked_for(
    emulator: EmulatorThread, tmp_path: Path
) -> None:
    schema = {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"hours": {"type": "string"}},
                "required": ["hours"],
                "additionalProperties": False,
            },
        },
    }
    asks: dict[str, dict[str, Any]] = {
        "text": {},
        "json_object": {"response_format": {"type": "json_object"}},
        "json_schema": {"response_format": schema},
    }
    with _client(emulator.base_url, tmp_path / "run", sample_rate=1.0) as client:
        for name, extra in asks.items():
            messages = [{"role": "user", "content": f"Support hours as JSON? ({name})"}]
            client.chat.completions.create(model=MODEL, messages=messages, **extra)
        assert client.shadow.flush(10)
    got = {(o.arm, o.output_format) for o in _observations(tmp_path / "run")}
    assert got == {(arm, name) for arm in ("chat", "responses") for name in asks}
