"""Transport pieces: the wire clock's arithmetic, retries, rate-limit pacing."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import pytest

from harness.runner.execute import Pacer
from harness.transport.client import (
    CallResult,
    RetryPolicy,
    parse_reset,
    retry_after_ms,
    send_with_retries,
)
from harness.transport.wire import WireRecorder, analyze_wire, split_sse

MS = 1_000_000


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _sse(obj: dict[str, object]) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _chat(content: str | None, role: str | None = None) -> dict[str, object]:
    delta: dict[str, object] = {}
    if role:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    return {"id": "c", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}


def test_wire_timing_from_chunked_stream() -> None:
    """Headers at 2 ms, an empty role delta at 5 ms, first text at 9 ms, end at 15 ms."""
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    role = _chunk(_sse(_chat("", role="assistant")))
    first = _chunk(_sse(_chat("Hello")))
    # the first text event arrives split over two reads: it counts when its last byte lands
    rec = WireRecorder(
        first_write_ns=0,
        reads=[
            (2 * MS, head),
            (5 * MS, role),
            (7 * MS, first[:10]),
            (9 * MS, first[10:]),
            (12 * MS, _chunk(_sse(_chat(" world")))),
            (15 * MS, _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"),
        ],
    )
    timing = analyze_wire(rec, stream=True)
    assert timing.ttfb_ms == 2.0
    assert timing.ttft_ms == 9.0
    assert timing.total_ms == 15.0
    assert timing.events == 3  # [DONE] is not an event
    assert timing.event_ms == [5.0, 9.0, 12.0]
    assert timing.new_connection is False and timing.connect_ms is None


def test_wire_timing_responses_and_non_stream() -> None:
    body = (
        b"event: response.created\ndata: "
        + json.dumps({"type": "response.created"}).encode()
        + b"\n\nevent: response.output_text.delta\n"
        b"data: "
        + json.dumps({"type": "response.output_text.delta", "delta": "Hi"}).encode()
        + b"\n\n"
    )
    head = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body)
    rec = WireRecorder(
        connect_start_ns=0,
        connect_end_ns=MS,
        first_write_ns=MS,
        reads=[(3 * MS, head + body[:40]), (8 * MS, body[40:])],
    )
    timing = analyze_wire(rec, stream=True)
    assert (timing.ttfb_ms, timing.ttft_ms, timing.total_ms) == (2.0, 7.0, 7.0)
    assert timing.connect_ms == 1.0 and timing.new_connection
    plain = analyze_wire(rec, stream=False)
    assert plain.ttft_ms is None and plain.total_ms == 7.0
    assert analyze_wire(WireRecorder(), stream=True).ttfb_ms is None  # nothing on the wire


def test_wire_timing_up_to_first_content_gives_the_same_clocks() -> None:
    """The hot path reads only up to the first content event: same TTFB, TTFT and total."""
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    rec = WireRecorder(
        first_write_ns=0,
        reads=[
            (2 * MS, head),
            (5 * MS, _chunk(_sse(_chat("", role="assistant")))),
            (9 * MS, _chunk(_sse(_chat("Hello")))),
            (12 * MS, _chunk(_sse(_chat(" world")))),
            (15 * MS, _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"),
        ],
    )
    full, short = analyze_wire(rec, stream=True), analyze_wire(rec, stream=True, all_events=False)
    assert (short.ttfb_ms, short.ttft_ms, short.total_ms) == (2.0, 9.0, 15.0)
    assert (full.ttfb_ms, full.ttft_ms, full.total_ms) == (2.0, 9.0, 15.0)
    assert short.events is None and short.event_ms == []  # not counted on this path
    assert full.events == 3


@pytest.mark.parametrize(
    ("buffer", "payloads", "rest"),
    [
        (b'data: {"a":1}\n\n', [b'{"a":1}'], b""),  # the fast path
        (b'data: {"a":1}\n\ndata: [DONE]\n\n', [b'{"a":1}', b"[DONE]"], b""),
        (b'event: x\ndata: {"a":1}\n\ndata: {"b"', [b'{"a":1}'], b'data: {"b"'),
        (b'data: {"a":1}\n', [], b'data: {"a":1}\n'),  # incomplete
        (b'data: {"a":1}\r\n\r\n', [b'{"a":1}'], b""),
        (b"data: line one\ndata: line two\n\n", [b"line one\nline two"], b""),
        (b"", [], b""),
    ],
)
def test_split_sse(buffer: bytes, payloads: list[bytes], rest: bytes) -> None:
    got, used = split_sse(buffer)
    assert got == payloads and buffer[used:] == rest


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("", None),
        (None, None),
        ("soon", None),
    ],
)
def test_parse_reset(value: str | None, seconds: float | None) -> None:
    assert parse_reset(value) == seconds


@pytest.mark.parametrize(
    ("headers", "ms"),
    [
        ({"retry-after-ms": "250"}, 250.0),
        ({"retry-after": "2"}, 2000.0),
        ({"retry-after-ms": "x", "retry-after": "1"}, 1000.0),
        ({}, None),
    ],
)
def test_retry_after(headers: dict[str, str], ms: float | None) -> None:
    assert retry_after_ms(headers) == ms


def test_retries_honour_server_hints_and_keep_every_attempt() -> None:
    replies = [
        CallResult(status=429, error_type="rate_limit_exceeded", retry_after_ms=120.0),
        CallResult(status=503, error_type="overloaded"),
        CallResult(status=200, ok=True),
    ]
    slept: list[float] = []

    async def send() -> CallResult:
        return replies.pop(0)

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    result, attempts = asyncio.run(
        send_with_retries(send, RetryPolicy(max_attempts=4, base_s=0.5), random.Random(1), sleep)
    )
    assert result.ok and [a.status for a in attempts] == [429, 503, 200]
    assert slept[0] == pytest.approx(0.12)  # the server's hint, not backoff
    assert 0 <= slept[1] <= 1.0  # jittered backoff for attempt 2
    assert attempts[1].waited_ms == pytest.approx(120.0)


def test_retries_stop_at_max_attempts_and_on_client_errors() -> None:
    async def always_500() -> CallResult:
        return CallResult(status=500, error_type="server_error")

    async def bad_request() -> CallResult:
        return CallResult(status=400, error_type="invalid_request_error")

    async def no_sleep(_: float) -> None:
        return None

    _, attempts = asyncio.run(
        send_with_retries(always_500, RetryPolicy(max_attempts=3), random.Random(0), no_sleep)
    )
    assert len(attempts) == 3
    _, attempts = asyncio.run(
        send_with_retries(bad_request, RetryPolicy(max_attempts=3), random.Random(0), no_sleep)
    )
    assert len(attempts) == 1


def test_pacer_waits_for_an_exhausted_rate_limit_window() -> None:
    async def scenario() -> float:
        pacer = Pacer(rps=None)
        await pacer.wait()
        pacer.observe(
            {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "150ms"}
        )
        start = time.monotonic()
        await pacer.wait()
        return time.monotonic() - start

    assert asyncio.run(scenario()) >= 0.14


def test_pacer_spaces_requests_at_the_requested_rate() -> None:
    async def scenario() -> float:
        pacer = Pacer(rps=50)
        start = time.monotonic()
        for _ in range(6):
            await pacer.wait()
        return time.monotonic() - start

    assert asyncio.run(scenario()) >= 5 / 50 - 0.005


def test_bad_json_from_a_server_is_a_failed_request_not_a_crash() -> None:
    """A compatible server that sends an event that is not JSON: the request fails as data."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from harness.transport.client import Transport

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            self.wfile.write(b"data: {not json\n\n")

        def log_message(self, *args: object) -> None:
            return None

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/v1"
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}

    async def both() -> list[CallResult]:
        out = []
        for kind in ("sdk", "raw"):
            transport = Transport(base, "sk-x", kind=kind)  # type: ignore[arg-type]
            try:
                out.append(await transport.send("chat", body))
            finally:
                await transport.aclose()
        return out

    try:
        for result in asyncio.run(both()):
            assert not result.ok and result.error_type == "bad_response"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("kind", ["sdk", "raw"])
def test_a_chat_mid_stream_error_keeps_its_message(kind: str, emulators: Any) -> None:
    # issue 17: the raw client used to lose a chat {"error": ...} data line ("stream ended early")
    from harness.emulator.profiles import load_profile
    from harness.transport.client import Transport

    profile = load_profile("zero").derive({"both": {"faults": {"error_event": 1.0}}})
    body = {
        "model": "gpt-4.1-mini",
        "messages": [{"role": "user", "content": "Tell me about the weather today."}],
        "stream": True,
    }

    async def send(base: str) -> CallResult:
        transport = Transport(base, "sk-x", kind=kind)  # type: ignore[arg-type]
        try:
            return await transport.send("chat", body)
        finally:
            await transport.aclose()

    with emulators.running(profile) as emu:
        result = asyncio.run(send(emu.base_url))
    assert not result.ok
    assert result.error_message is not None
    assert "An error occurred while processing your request" in result.error_message
    if kind == "raw":
        assert (result.finish, result.error_type) == ("error", "server_error")


@pytest.mark.parametrize("kind", ["sdk", "raw"])
def test_first_output_and_ttft_of_a_reasoning_stream(kind: str, emulators: Any) -> None:
    # issue 17, defect 10: a reasoning summary streams before the first visible token; both
    # times are recorded, and TTFT is the visible one
    from harness.emulator.profiles import load_profile
    from harness.transport.client import Transport

    profile = load_profile("zero").derive({"both": {"ttft_ms": {"median": 120, "sigma": 0}}})
    body = {
        "model": "o4-mini",
        "input": "Plan a trip.",
        "reasoning": {"effort": "low", "summary": "auto"},
        "stream": True,
    }

    async def send(base: str) -> CallResult:
        transport = Transport(base, "sk-x", kind=kind)  # type: ignore[arg-type]
        try:
            return await transport.send("responses", body)
        finally:
            await transport.aclose()

    with emulators.running(profile) as emu:
        result = asyncio.run(send(emu.base_url))
    assert result.ok and result.output_text
    wire = result.wire
    assert wire.first_output_ms is not None and wire.ttft_ms is not None
    assert wire.ttft_ms - wire.first_output_ms >= 100  # the 120 ms before the first token
    # the SDK clock also pays first-use model building (hundreds of ms): only the order holds
    assert result.sdk_first_output_ms is not None and result.sdk_ttft_ms is not None
    assert result.sdk_first_output_ms <= result.sdk_ttft_ms
    fields = result.observation_fields(stream=True)
    assert fields["first_output_ms"] == wire.first_output_ms and fields["ttft_ms"] == wire.ttft_ms


@pytest.mark.parametrize(
    ("status", "code", "fatal"),
    [
        (401, "invalid_api_key", "run"),
        (401, "http_401", "run"),
        (403, "unsupported_country_region_territory", "run"),
        (404, "model_not_found", "run"),
        (429, "insufficient_quota", "run"),
        (404, "invalid_request_error", "arm"),  # OpenAI's "Invalid URL (POST /v1/responses)"
        (404, "http_404", "arm"),
        (405, "http_405", "arm"),
        (404, "previous_response_not_found", None),
        (429, "rate_limit_exceeded", None),
        (500, "server_error", None),
        (400, "invalid_value", None),
    ],
)
def test_errors_no_retry_can_fix_stop_the_run_or_the_arm(
    status: int, code: str, fatal: str | None
) -> None:
    result = CallResult(status=status, error_type=code, error_message="x")
    assert result.fatal == fatal
    if fatal is not None:
        assert not result.retryable  # a quota 429 is not waited out and retried


def _send_to_dropping_server(
    server: Any, kind: str, max_attempts: int, *, kept_alive: bool
) -> tuple[CallResult, list[Any], list[float]]:
    """One streamed chat request to :class:`DroppingServer` through ``send_with_retries``
    (``kept_alive``: after a ``GET /models`` on the same connection); result, attempts, sleeps."""
    from harness.transport.client import Transport

    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    async def go() -> tuple[CallResult, list[Any]]:
        transport = Transport(server.base_url, "sk-x", kind=kind)  # type: ignore[arg-type]
        try:
            if kept_alive:
                await transport.list_models()
            return await send_with_retries(
                lambda: transport.send("chat", body),
                RetryPolicy(max_attempts=max_attempts),
                random.Random(0),
                sleep,
            )
        finally:
            await transport.aclose()

    result, attempts = asyncio.run(go())
    return result, attempts, slept


@pytest.mark.parametrize("kind", ["sdk", "raw"])
@pytest.mark.parametrize("dropping_server", [1, 2], indirect=True)
def test_a_kept_alive_connection_dropped_without_reply_is_sent_again_once(
    kind: str, dropping_server: Any
) -> None:
    # llama-server closes a kept-alive connection it has idled out; a request that meets the
    # close gets no byte of reply (nothing was served): sent again at once, outside the retry
    # budget, and kept as an attempt; a second drop (on the resend's new connection) is an
    # ordinary connection failure
    from harness.transport.client import CONNECTION_DROPPED

    result, attempts, slept = _send_to_dropping_server(dropping_server, kind, 1, kept_alive=True)
    assert attempts[0].error_type == CONNECTION_DROPPED and attempts[0].status is None
    assert "without sending a response" in (attempts[0].error_message or "")
    assert slept == []  # at once
    if dropping_server.drops == 1:
        assert result.ok and result.output_text == dropping_server.REPLY, result.error_message
        assert len(attempts) == 2 and attempts[1].waited_ms == 0.0
        assert dropping_server.served == 2  # GET /models, then the one chat request
    else:
        assert not result.ok and result.error_type == "connection_error"
        assert len(attempts) == 2 and dropping_server.served == 1


@pytest.mark.parametrize("kind", ["sdk", "raw"])
@pytest.mark.parametrize("max_attempts", [1, 2])
def test_a_new_connection_dropped_without_reply_is_not_sent_again_for_free(
    kind: str, max_attempts: int, dropping_server: Any
) -> None:
    # a fresh connection's close (a proxy's idle timeout cutting a long request, cold turn 1)
    # does not prove the request went unserved: an ordinary connection failure, resent only
    # within --max-attempts, after the backoff
    result, attempts, slept = _send_to_dropping_server(
        dropping_server, kind, max_attempts, kept_alive=False
    )
    assert dropping_server.dropped == 1
    assert attempts[0].error_type == "connection_error" and attempts[0].status is None
    assert "without sending a response" in (attempts[0].error_message or "")
    assert len(attempts) == max_attempts
    if max_attempts == 1:
        assert not result.ok and result.error_type == "connection_error"
        assert dropping_server.served == 0 and slept == []
    else:
        assert result.ok and result.output_text == dropping_server.REPLY, result.error_message
        assert dropping_server.served == 1 and len(slept) == 1


@pytest.mark.parametrize(
    ("status", "code", "scope"),
    [
        (404, "invalid_request_error", "arm"),  # OpenAI: Invalid URL (POST /v1/responses)
        (404, "http_404", "arm"),  # a route with no JSON error body
        (405, None, "arm"),
        (501, "not_implemented", "arm"),
        (404, "previous_response_not_found", None),
        (404, "not_found", None),
        (404, "not_found_error", None),  # llama-server: an unknown model or slot
        (404, "DeploymentNotFound", None),  # Azure: the deployment (model), not the route
        (404, "model_not_found", "run"),
        (401, "invalid_api_key", "run"),
        (400, "invalid_request_error", None),
    ],
)
def test_only_a_404_without_a_not_found_code_is_a_missing_endpoint(
    status: int, code: str | None, scope: str | None
) -> None:
    from harness.transport.client import fatal_scope

    assert fatal_scope(status, code) == scope
