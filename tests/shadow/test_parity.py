"""Sync/async parity: the same table of calls through ``ShadowClient`` and ``AsyncShadowClient``.

The two clients share one core (:mod:`harness.shadow.client`, :mod:`harness.shadow.canary`,
:mod:`harness.shadow.capture`); this table keeps them honest. Every case runs once on each side
and must come out the same — what the caller gets (the reply's source and text, or the
exception), the shadow side's counters and the records written — and as the case expects.

The primary is a mocked OpenAI (``httpx2.MockTransport`` serving scripted bytes for both Chat and
Responses, chosen by a marker in the message), so every canary fallback can be provoked on
purpose; the mirror goes to the emulator. The shadow side runs on threads (``mode="thread"``):
where it runs is not what differs between the twins.
"""

from __future__ import annotations

import asyncio
import gc
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from harness.emulator.server import EmulatorThread
from harness.rundir import read_observations
from harness.shadow import AsyncShadowClient, ShadowClient, merge_shards

MODEL = "gpt-4.1-mini"
CREATED = 1_700_000_000
CHAT_TEXT = "We are open 9 to 5."
CANARY_TEXT = "Open nine to five."


# --- the scripted primary ------------------------------------------------------------------------


def _sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + (
        b"data: [DONE]\n\n"
    )


def _chat(request: httpx2.Request, body: dict[str, Any]) -> httpx2.Response:
    headers = {"x-request-id": "req_chat"}
    if b"chat-429" in request.content:
        return httpx2.Response(
            429,
            headers=headers,
            json={"error": {"message": "slow down", "type": "rate_limit", "code": "rate_limit"}},
        )
    if not body.get("stream"):
        return httpx2.Response(
            200,
            headers=headers,
            json={
                "id": "chatcmpl-mock",
                "object": "chat.completion",
                "created": CREATED,
                "model": MODEL,
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "logprobs": None,
                        "message": {"role": "assistant", "content": CHAT_TEXT, "refusal": None},
                    }
                ],
                "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
            },
        )
    head = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": CREATED}
    deltas = [{"role": "assistant", "content": ""}, {"content": "We are "}, {"content": "open"}]
    chunks = [{**head, "model": MODEL, "choices": [{"index": 0, "delta": d}]} for d in deltas]
    chunks.append(
        {**head, "model": MODEL, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    )
    return httpx2.Response(
        200, headers={**headers, "content-type": "text/event-stream"}, content=_sse(chunks)
    )


def _response(status: str = "completed", **extra: Any) -> dict[str, Any]:
    return {
        "id": "resp_mock",
        "object": "response",
        "created_at": CREATED,
        "model": MODEL,
        "status": status,
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": CANARY_TEXT, "annotations": []}],
            }
        ],
        "usage": {
            "input_tokens": 12,
            "output_tokens": 5,
            "total_tokens": 17,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
        **extra,
    }


_CREATED_EVENT = {
    "type": "response.created",
    "response": {**_response("in_progress"), "output": []},
}
_DELTA = {"type": "response.output_text.delta", "item_id": "msg_1", "delta": CANARY_TEXT}
_SDK_ERROR = {"error": {"message": "stream broke", "code": "server_error"}}  # the SDK raises
_FAILED = {
    "type": "response.failed",
    "response": {**_response("failed"), "error": {"code": "server_error", "message": "failed"}},
}
#: a response that finished in a way chat has no finish_reason for
_ODD = _response("incomplete", incomplete_details={"reason": "other"})

#: marker in the last message → what Responses streams
_STREAMS = {
    "responses-ok": [
        _CREATED_EVENT,
        _DELTA,
        {"type": "response.completed", "response": _response()},
    ],
    "responses-sdk-error-first": [_CREATED_EVENT, _SDK_ERROR],
    "responses-error-event-first": [_CREATED_EVENT, {"type": "error", "message": "x", "code": "e"}],
    "responses-odd": [_CREATED_EVENT, {"type": "response.incomplete", "response": _ODD}],
    "responses-sdk-error-late": [_CREATED_EVENT, _DELTA, _SDK_ERROR],
    "responses-failed-late": [_CREATED_EVENT, _DELTA, _FAILED],
}


def _responses(request: httpx2.Request, body: dict[str, Any]) -> httpx2.Response:
    headers = {"x-request-id": "req_responses"}
    if b"responses-500" in request.content:
        return httpx2.Response(
            500, headers=headers, json={"error": {"message": "down", "code": "server_error"}}
        )
    marker = next((m for m in _STREAMS if m.encode() in request.content), "responses-ok")
    if body.get("stream"):
        return httpx2.Response(
            200,
            headers={**headers, "content-type": "text/event-stream"},
            content=_sse(_STREAMS[marker]),
        )
    return httpx2.Response(
        200, headers=headers, json=_ODD if marker == "responses-odd" else _response()
    )


def _handler(request: httpx2.Request) -> httpx2.Response:
    body = json.loads(request.content)
    if request.url.path.endswith("/responses"):
        return _responses(request, body)
    return _chat(request, body)


# --- the table -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One call: the client's settings, the call, how it is read, and what must come of it."""

    id: str
    options: dict[str, Any]
    marker: str = "hours"
    stream: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    #: "read" every chunk, or "abandon" after the first; "twice" makes two calls
    read: str = "read"
    #: before the call: "shadow_closed" (client.shadow.close()), "engine_closed" (its engine only)
    before: str | None = None
    #: what the caller gets: ("completion" | "stream", source, text[, exception that ended it]),
    #: ("abandoned", source) or ("error", exception class name)
    reply: tuple[str, ...] = ()
    #: counters that must have these values (all of them must agree between the twins)
    counts: dict[str, int] = field(default_factory=dict)


MIRROR = {"sample_rate": 1.0}
CANARY = {"sample_rate": 0.0, "canary_rate": 1.0}
FULL = {"sample_rate": 1.0, "max_queue": 0, "max_concurrency": 1, "timeout_s": 5.0}

CASES = [
    Case("not_sampled", {"sample_rate": 0.0}, reply=("completion", "chat", CHAT_TEXT)),
    Case(
        "not_sampled_stream",
        {"sample_rate": 0.0},
        stream=True,
        reply=("stream", "chat", "We are open"),
    ),
    Case(
        "mirrored",
        MIRROR,
        reply=("completion", "chat", CHAT_TEXT),
        counts={"sampled": 1, "pairs_written": 1, "shadow_ok": 1},
    ),
    Case(
        "mirrored_stream",
        MIRROR,
        stream=True,
        reply=("stream", "chat", "We are open"),
        counts={"sampled": 1, "pairs_written": 1, "shadow_ok": 1},
    ),
    Case(
        "mirrored_primary_error",
        MIRROR,
        marker="chat-429",
        reply=("error", "RateLimitError"),
        counts={"sampled": 1, "pairs_written": 1},
    ),
    Case(
        "mirrored_untranslatable",
        MIRROR,
        extra={"seed": 42},
        reply=("completion", "chat", CHAT_TEXT),
        counts={"sampled": 1, "pairs_written": 1, "untranslatable": 1},
    ),
    Case(
        "mirrored_stream_abandoned",
        MIRROR,
        stream=True,
        read="abandon",
        reply=("abandoned", "chat"),
        counts={"sampled": 1, "abandoned_streams": 1, "pairs_written": 0},
    ),
    Case(
        "shadow_closed",
        MIRROR,
        before="shadow_closed",
        reply=("completion", "chat", CHAT_TEXT),
        counts={"calls": 1, "sampled": 0},
    ),
    Case(
        "engine_closed",
        MIRROR,
        stream=True,
        before="engine_closed",
        reply=("stream", "chat", "We are open"),
        counts={"sampled": 1, "dropped_closed": 1, "pairs_written": 0},
    ),
    Case(
        "shadow_full",
        FULL,
        read="twice",
        reply=("completion", "chat", CHAT_TEXT),
        counts={"sampled": 2, "dropped_queue_full": 1, "cancelled_at_close": 1},
    ),
    Case(
        "canary",
        CANARY,
        reply=("completion", "responses", CANARY_TEXT),
        counts={"canary": 1, "canary_served": 1, "canary_written": 1},
    ),
    Case(
        "canary_stream",
        CANARY,
        stream=True,
        extra={"stream_options": {"include_usage": True}},
        reply=("stream", "responses", CANARY_TEXT),
        counts={"canary": 1, "canary_served": 1, "canary_written": 1},
    ),
    Case(
        "canary_stream_abandoned",
        CANARY,
        stream=True,
        read="abandon",
        reply=("abandoned", "responses"),
        counts={"canary": 1, "canary_served": 1, "canary_written": 0},
    ),
    Case(
        "canary_untranslatable",
        CANARY,
        extra={"seed": 42},
        reply=("completion", "chat", CHAT_TEXT),
        counts={"canary": 1, "canary_fallbacks": 1, "canary_written": 1},
    ),
    Case(
        "canary_responses_error",
        CANARY,
        marker="responses-500",
        reply=("completion", "chat", CHAT_TEXT),
        counts={"canary_fallbacks": 1, "canary_written": 1},
    ),
    Case(
        "canary_responses_error_stream",
        CANARY,
        marker="responses-500",
        stream=True,
        reply=("stream", "chat", "We are open"),
        counts={"canary_fallbacks": 1, "canary_written": 1},
    ),
    Case(
        "canary_responses_and_chat_error",
        CANARY,
        marker="responses-500 chat-429",
        reply=("error", "RateLimitError"),
        counts={"canary_fallbacks": 1, "canary_written": 1},
    ),
    Case(
        "canary_untranslatable_response",
        CANARY,
        marker="responses-odd",
        reply=("completion", "chat", CHAT_TEXT),
        counts={"canary_fallbacks": 1, "canary_written": 1},
    ),
    Case(
        "canary_stream_untranslatable_before_output",
        CANARY,
        marker="responses-odd",
        stream=True,
        reply=("stream", "chat", "We are open"),
        counts={"canary_fallbacks": 1, "canary_written": 1},
    ),
    Case(
        "canary_stream_sdk_error_before_output",
        CANARY,
        marker="responses-sdk-error-first",
        stream=True,
        reply=("stream", "chat", "We are open"),
        counts={"canary_fallbacks": 1, "canary_written": 1},
    ),
    Case(
        "canary_stream_error_event_before_output",
        CANARY,
        marker="responses-error-event-first",
        stream=True,
        reply=("stream", "chat", "We are open"),
        counts={"canary_fallbacks": 1, "canary_written": 1},
    ),
    Case(
        "canary_stream_sdk_error_after_output",
        CANARY,
        marker="responses-sdk-error-late",
        stream=True,
        reply=("stream", "responses", CANARY_TEXT, "APIError"),
        counts={"canary_served": 1, "canary_written": 1},
    ),
    Case(
        "canary_stream_failed_after_output",
        CANARY,
        marker="responses-failed-late",
        stream=True,
        reply=("stream", "responses", CANARY_TEXT, "APIError"),
        counts={"canary_served": 1, "canary_written": 1},
    ),
]


@dataclass(frozen=True)
class Outcome:
    """What a caller and the run directory can see of one case."""

    reply: tuple[str, ...]
    counts: dict[str, int]
    #: (arm, origin, ok, error_type, finish) of every record written
    records: list[tuple[Any, ...]]


def _source(ids: set[str]) -> str:
    sources = {"responses" if i.startswith("resp_") else "chat" for i in ids}
    return "/".join(sorted(sources)) or "none"


def _completion(reply: Any) -> tuple[str, ...]:
    return ("completion", _source({reply.id}), str(reply.choices[0].message.content))


def _streamed(items: list[Any]) -> tuple[str, ...]:
    """A read stream: its source and text, and the exception that ended it (the last item)."""
    chunks = [c for c in items if not isinstance(c, Exception)]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    out = ("stream", _source({c.id for c in chunks}), text)
    return out + tuple(type(e).__name__ for e in items if isinstance(e, Exception))


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorThread]:
    with EmulatorThread(profile="zero") as emu:
        yield emu


@pytest.fixture(scope="module")
def black_hole() -> Iterator[str]:
    """A base URL whose server accepts connections and never answers (a shadow side stuck)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def _options(case: Case, emu: EmulatorThread, black_hole: str, run_dir: Path) -> dict[str, Any]:
    return {
        "run_dir": run_dir,
        "mode": "thread",
        "shadow_base_url": black_hole if case.options is FULL else emu.base_url,
        "shadow_api_key": "test",
        "drain_timeout_s": 0.3,
        **case.options,
    }


def _kwargs(case: Case) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": f"Support hours? {case.marker}"}],
        **case.extra,
    }
    if case.stream:
        kwargs["stream"] = True
    return kwargs


def _before(case: Case, shadow: Any) -> None:
    if case.before == "shadow_closed":
        shadow.close()
    elif case.before == "engine_closed":
        shadow.engine.close()


def _outcome(reply: tuple[str, ...], shadow: Any, run_dir: Path) -> Outcome:
    stats = shadow.stats().as_dict()
    merge_shards(run_dir)
    path = run_dir / "observations.jsonl"
    records = sorted(
        (o.arm, o.origin, o.ok, o.error_type, o.finish)
        for o in (read_observations(path) if path.exists() else [])
    )
    return Outcome(reply, {k: v for k, v in stats.items() if v}, records)


def run_sync(case: Case, options: dict[str, Any]) -> Outcome:
    http = httpx2.Client(transport=httpx2.MockTransport(_handler))
    inner = openai.OpenAI(base_url="http://mock.test/v1", api_key="t", http_client=http)
    client = ShadowClient(inner.with_options(max_retries=0), **options)
    _before(case, client.shadow)
    reply: tuple[str, ...] = ()
    for _ in range(2 if case.read == "twice" else 1):
        try:
            result = client.chat.completions.create(**_kwargs(case))
            if not case.stream:
                reply = _completion(result)
            elif case.read == "abandon":
                first = next(iter(result))
                result.close()
                del result
                gc.collect()  # the SDK's stream and its iterators form a cycle
                reply = ("abandoned", _source({first.id}))
            else:
                chunks: list[Any] = []
                try:
                    for chunk in result:
                        chunks.append(chunk)
                except openai.APIError as exc:
                    chunks.append(exc)
                reply = _streamed(chunks)
        except openai.APIError as exc:
            reply = ("error", type(exc).__name__)
    if case.before is None and case.options is not FULL:
        client.shadow.flush(10)  # (on a closed shadow side, flush waits its whole timeout)
    client.close()
    return _outcome(reply, client.shadow, options["run_dir"])


def run_async(case: Case, options: dict[str, Any]) -> Outcome:
    async def calls() -> tuple[tuple[str, ...], Any]:
        http = httpx2.AsyncClient(transport=httpx2.MockTransport(_handler))
        inner = openai.AsyncOpenAI(base_url="http://mock.test/v1", api_key="t", http_client=http)
        client = AsyncShadowClient(inner.with_options(max_retries=0), **options)
        _before(case, client.shadow)
        reply: tuple[str, ...] = ()
        for _ in range(2 if case.read == "twice" else 1):
            try:
                result = await client.chat.completions.create(**_kwargs(case))
                if not case.stream:
                    reply = _completion(result)
                elif case.read == "abandon":
                    first = await result.__aiter__().__anext__()
                    await result.close()
                    del result
                    gc.collect()
                    await asyncio.sleep(0.01)  # the loop's finalizer closes the generators
                    reply = ("abandoned", _source({first.id}))
                else:
                    chunks: list[Any] = []
                    try:
                        async for chunk in result:
                            chunks.append(chunk)
                    except openai.APIError as exc:
                        chunks.append(exc)
                    reply = _streamed(chunks)
            except openai.APIError as exc:
                reply = ("error", type(exc).__name__)
        if case.before is None and case.options is not FULL:
            await asyncio.to_thread(client.shadow.flush, 10)
        await client.close()
        return reply, client.shadow

    reply, shadow = asyncio.run(calls())
    return _outcome(reply, shadow, options["run_dir"])


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_sync_and_async_clients_agree(
    case: Case, emulator: EmulatorThread, black_hole: str, tmp_path: Path
) -> None:
    sync = run_sync(case, _options(case, emulator, black_hole, tmp_path / "sync"))
    async_ = run_async(case, _options(case, emulator, black_hole, tmp_path / "async"))
    assert sync == async_
    assert sync.reply == case.reply
    assert {k: sync.counts.get(k, 0) for k in case.counts} == case.counts
    assert sync.counts.get("calls") == (2 if case.read == "twice" else 1)
    assert sync.counts.get("unsettled", 0) == 0
