"""Transport: send one request through the official SDK (or a lean raw client), with two clocks.

Wire timings come from :mod:`harness.transport.wire` (below the HTTP client); the ``sdk_*`` timings
are taken where the caller's loop sees each typed event — the difference is client CPU a team pays.
SDK retries are off (``max_retries=0``): :func:`send_with_retries` retries itself, honours
``retry-after-ms``/``retry-after`` and keeps every attempt.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import re
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx2
import openai
import orjson

from harness.emulator import PROFILE_HEADER
from harness.records import CASSETTE_MISS, Attempt, BackgroundTiming, ToolCallRecord, Usage
from harness.transport.netio import AsyncioBackend
from harness.transport.wire import (
    CURRENT_RECORDER,
    RecordedTiming,
    TimedAsyncTransport,
    WireRecorder,
    WireTiming,
    analyze_wire,
    split_sse,
)

Api = Literal["chat", "responses"]
ClientKind = Literal["sdk", "raw"]
_NS_PER_MS = 1_000_000
_PATHS = {"chat": "/chat/completions", "responses": "/responses"}
#: the spec's ``maxItems`` of ``items`` on conversation create and conversation items create
MAX_ITEMS_PER_CREATE = 20
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
#: Error codes no retry or later request can fix (the key, the account, the model): a run
#: stops at the first one instead of spending its whole plan on it.
FATAL_CODES = frozenset(
    {"invalid_api_key", "model_not_found", "insufficient_quota", "billing_hard_limit_reached"}
)
#: Statuses that mean the endpoint itself is missing (a server without ``/v1/responses``).
_NO_ENDPOINT_STATUS = frozenset({404, 405, 501})


def fatal_scope(status: int | None, error_type: str | None) -> Literal["run", "arm"] | None:
    """``run`` for an error every later request would repeat (401, 403, a bad key, an unknown
    model, no quota); ``arm`` for a missing endpoint, which only that API's arm shares."""
    if status is None:
        return None
    if status in (401, 403) or error_type in FATAL_CODES:
        return "run"
    # A missing route has no code of its own; a not-found code (``previous_response_not_found``,
    # llama-server's ``not_found_error``, Azure's ``DeploymentNotFound``) is about one request's
    # content or model, not the endpoint.
    if status in _NO_ENDPOINT_STATUS and not _names_not_found(error_type):
        return "arm"
    return None


def _names_not_found(error_type: str | None) -> bool:
    folded = (error_type or "").lower()
    return "not_found" in folded or "notfound" in folded


#: the server closed a reused kept-alive connection before a byte of reply
#: (:func:`dropped_unanswered`): sent again at once, once
CONNECTION_DROPPED = "connection_dropped"


def dropped_unanswered(exc: BaseException | None) -> bool:
    """The server closed a reused connection without a byte of reply ("Server disconnected
    without sending a response"), so sending the request again is safe: llama-server does this
    to a kept-alive connection it has idled out, having served nothing. On a new connection
    (the current :class:`~harness.transport.wire.WireRecorder` saw a connect) the same close
    proves nothing: a proxy's idle timeout on a long request may cut one that was served."""
    if not (
        isinstance(exc, httpx2.RemoteProtocolError) and "without sending a response" in str(exc)
    ):
        return False
    rec = CURRENT_RECORDER.get()
    return rec is not None and not rec.new_connection


def _g(obj: Any, name: str) -> Any:
    """Field of an SDK model or of a plain dict (the raw client), None when absent."""
    if type(obj) is dict:  # the raw client's events: skip the slower ABC check
        return obj.get(name)
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


@dataclass(slots=True)
class CallResult:
    """Outcome of one HTTP attempt, API-neutral."""

    status: int | None = None
    ok: bool = False
    error_type: str | None = None
    error_message: str | None = None
    retry_after_ms: float | None = None
    headers: dict[str, str] = field(default_factory=dict)
    response_id: str | None = None
    finish: str | None = None
    output_text: str | None = None
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    reasoning_items: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage | None = None
    service_tier: str | None = None
    wire: WireTiming = field(default_factory=WireTiming)
    sdk_ttfb_ms: float | None = None
    sdk_ttft_ms: float | None = None
    sdk_total_ms: float | None = None
    sdk_first_output_ms: float | None = None
    #: the model refused (chat ``refusal``, Responses refusal parts): a reply, not an error
    refused: bool = False
    events: int | None = None
    request_bytes: int | None = None
    #: answered from a cassette: the timings are the ones recorded with the interaction
    replayed: bool = False
    #: Responses streams read with ``track`` (background mode): the first and last
    #: ``sequence_number``, how often one did not follow the one before, and when
    #: (``perf_counter_ns``) each lifecycle event first arrived
    first_sequence: int | None = None
    last_sequence: int | None = None
    sequence_breaks: int = 0
    lifecycle_ns: dict[str, int] = field(default_factory=dict)
    #: set by the runner for a ``background: true`` request (harness.runner.background)
    background: BackgroundTiming | None = None

    @property
    def retryable(self) -> bool:
        if self.ok:
            return False
        if self.status is not None:
            return self.status in RETRYABLE_STATUS and self.fatal is None
        return self.error_type in (
            "connection_error",
            CONNECTION_DROPPED,
            "timeout",
            "stream_interrupted",
        )

    @property
    def fatal(self) -> Literal["run", "arm"] | None:
        """Whether this failure stops the run or its arm (:func:`fatal_scope`)."""
        return None if self.ok else fatal_scope(self.status, self.error_type)

    def observation_fields(self, *, stream: bool) -> dict[str, Any]:
        """The :class:`~harness.records.Observation` fields read off this result as they are.

        One mapping for the runner and the shadow engine, so a field added to both records is
        carried by both. TTFTs only for a stream (a whole reply has no first token).
        """
        wire = self.wire
        return dict(
            status=self.status,
            ok=self.ok,
            error_type=self.error_type,
            error_message=self.error_message,
            finish=self.finish,
            ttfb_ms=wire.ttfb_ms,
            ttft_ms=wire.ttft_ms if stream else None,
            first_output_ms=wire.first_output_ms if stream else None,
            total_ms=wire.total_ms,
            sdk_ttfb_ms=self.sdk_ttfb_ms,
            sdk_ttft_ms=self.sdk_ttft_ms if stream else None,
            sdk_first_output_ms=self.sdk_first_output_ms if stream else None,
            sdk_total_ms=self.sdk_total_ms,
            connect_ms=wire.connect_ms,
            events=self.events,
            request_id=self.headers.get("x-request-id"),
            service_tier=self.service_tier,
            response_id=self.response_id,
            usage=self.usage,
            output_text=self.output_text,
            tool_calls=self.tool_calls,
            outcome="refusal" if self.ok and self.refused else None,
        )


# --- reading replies (shared by both clients and both APIs) ------------------------------------


class _Reply:
    """Accumulates one reply from stream events or a final object (SDK models or dicts)."""

    def __init__(self, api: Api, track: bool = False) -> None:
        self.api = api
        #: follow sequence numbers and lifecycle events (background streams); off on the hot path
        self.track = track
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.calls: dict[int, dict[str, str]] = {}
        self.result = CallResult()
        self.events = 0
        self.saw_terminal = False
        #: an event carried output of any kind (reasoning included): first-output time
        self.any_output = False

    def chat_chunk(self, chunk: Any) -> bool:
        """Consume a chat chunk; True when it carried visible output (text, a refusal or tool
        call arguments). Only the first choice is read, as for a whole completion."""
        error = _g(chunk, "error")
        if error is not None:
            # Chat reports a mid-stream failure as a data line {"error": {...}}: keep its words
            self.result.finish = "error"
            self.result.error_type = str(_g(error, "code") or _g(error, "type") or "stream_error")
            self.result.error_message = _one_line(
                str(_g(error, "message") or "error event in stream")
            )
            return False
        self.result.response_id = self.result.response_id or _g(chunk, "id")
        self.result.service_tier = _g(chunk, "service_tier") or self.result.service_tier
        usage = _g(chunk, "usage")
        if usage is not None:
            self.result.usage = _chat_usage(usage)
        visible = False
        for choice in _g(chunk, "choices") or ():
            if _g(choice, "index"):
                continue
            delta = _g(choice, "delta")
            content = _g(delta, "content") if delta is not None else None
            if content:
                self.text.append(content)
                visible = True
            refusal = _g(delta, "refusal") if delta is not None else None
            if refusal:
                self.refusal.append(refusal)
                visible = True
            # servers such as llama.cpp and vLLM stream reasoning as delta.reasoning_content
            if delta is not None and (_g(delta, "reasoning_content") or _g(delta, "reasoning")):
                self.any_output = True
            for call in (_g(delta, "tool_calls") if delta is not None else None) or ():
                slot = self.calls.setdefault(
                    _g(call, "index") or 0, {"id": "", "name": "", "arguments": ""}
                )
                fn = _g(call, "function")
                slot["id"] = _g(call, "id") or slot["id"]
                if fn is not None:
                    slot["name"] = _g(fn, "name") or slot["name"]
                    args = _g(fn, "arguments")
                    if args:
                        slot["arguments"] += args
                        visible = True
            reason = _g(choice, "finish_reason")
            if reason:
                self.result.finish = _chat_finish(reason)
        self.any_output = self.any_output or visible
        return visible

    def chat_final(self, completion: Any) -> None:
        self.result.response_id = _g(completion, "id")
        self.result.service_tier = _g(completion, "service_tier")
        usage = _g(completion, "usage")
        self.result.usage = _chat_usage(usage) if usage is not None else None
        for choice in (_g(completion, "choices") or ())[:1]:
            message = _g(choice, "message")
            content = _g(message, "content")
            if content:
                self.text.append(content)
            refusal = _g(message, "refusal")
            if refusal:
                self.refusal.append(refusal)
            for i, call in enumerate(_g(message, "tool_calls") or ()):
                fn = _g(call, "function")
                self.calls[i] = {
                    "id": _g(call, "id") or "",
                    "name": _g(fn, "name") or "",
                    "arguments": _g(fn, "arguments") or "",
                }
            self.result.finish = _chat_finish(_g(choice, "finish_reason") or "stop")

    def responses_event(self, event: Any) -> bool:
        """Consume a Responses stream event; True when it carried visible output."""
        kind = _g(event, "type")
        if self.track:
            self._track(event, kind)
        if kind == "response.output_text.delta":
            self.text.append(_g(event, "delta") or "")
            self.any_output = True
            return True
        if kind == "response.refusal.delta":
            self.refusal.append(_g(event, "delta") or "")
            self.any_output = True
            return True
        if kind == "response.function_call_arguments.delta":
            visible = bool(_g(event, "delta"))
            self.any_output = self.any_output or visible
            return visible
        if kind in _REASONING_DELTAS:
            self.any_output = self.any_output or bool(_g(event, "delta"))
            return False
        if kind == "response.created":
            self.result.response_id = _g(_g(event, "response"), "id")
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            self.saw_terminal = True
            self.text.clear()
            self.refusal.clear()
            self.responses_final(_g(event, "response"))
        elif kind == "error":
            self.saw_terminal = True
            self.result.finish = "error"
            self.result.error_type = str(_g(event, "code") or "stream_error")
            self.result.error_message = str(_g(event, "message") or "error event in stream")
        return False

    def _track(self, event: Any, kind: Any) -> None:
        res = self.result
        # counted here too: a stream cut mid-way never reaches the count its reader keeps
        res.events = (res.events or 0) + 1
        seq = _g(event, "sequence_number")
        if isinstance(seq, int):
            if res.last_sequence is None:
                res.first_sequence = seq
            elif seq != res.last_sequence + 1:
                res.sequence_breaks += 1
            res.last_sequence = seq
        if kind in _LIFECYCLE:
            res.lifecycle_ns.setdefault(kind, time.perf_counter_ns())
            res.response_id = res.response_id or _g(_g(event, "response"), "id")

    def responses_final(self, response: Any) -> None:
        self.result.response_id = _g(response, "id")
        self.result.service_tier = _g(response, "service_tier")
        status = _g(response, "status")
        self.result.finish = {
            "completed": "completed",
            "incomplete": "incomplete",
            "failed": "failed",
        }.get(status or "", status)
        if status == "failed":
            error = _g(response, "error")
            self.result.error_type = str(_g(error, "code") or "response_failed")
            self.result.error_message = str(_g(error, "message") or "response.failed")
        usage = _g(response, "usage")
        self.result.usage = _responses_usage(usage) if usage is not None else None
        for item in _g(response, "output") or ():
            kind = _g(item, "type")
            if kind == "message":
                for part in _g(item, "content") or ():
                    if _g(part, "type") == "output_text":
                        self.text.append(_g(part, "text") or "")
                    elif _g(part, "type") == "refusal":
                        self.refusal.append(_g(part, "refusal") or "")
            elif kind == "function_call":
                self.calls[len(self.calls)] = {
                    "id": _g(item, "call_id") or "",
                    "name": _g(item, "name") or "",
                    "arguments": _g(item, "arguments") or "",
                }
            elif kind == "reasoning":
                dumped = item if isinstance(item, dict) else item.model_dump(exclude_none=True)
                self.result.reasoning_items.append(dumped)

    def finish(self) -> CallResult:
        res = self.result
        # a refusal's text is kept as the reply's text (what the user saw), flagged apart
        res.refused = bool(self.refusal)
        text = self.text + self.refusal
        res.output_text = "".join(text) if (text or res.finish) else None
        res.tool_calls = [ToolCallRecord(**c) for _, c in sorted(self.calls.items())]
        if res.error_type is None and res.finish not in (None, "failed", "error"):
            res.ok = True
        elif res.finish is None and res.error_type is None:
            res.error_type, res.error_message = "stream_interrupted", "stream ended early"
        return res


#: Responses events whose arrival times a background request measures
_LIFECYCLE = frozenset({"response.created", "response.queued", "response.in_progress"})

#: Responses events that stream reasoning: output, but not visible text (TTFT).
_REASONING_DELTAS = frozenset(
    {"response.reasoning_summary_text.delta", "response.reasoning_text.delta"}
)


def _chat_finish(reason: str) -> str:
    return {"length": "incomplete", "content_filter": "incomplete"}.get(reason, "completed")


def _usage(usage: Any, input_: str, output: str) -> Usage:
    """Normalise usage; the APIs differ only in names (``prompt``/``completion`` for chat,
    ``input``/``output`` for responses). Cached tokens stay a subset of input tokens."""
    details = _g(usage, f"{input_}_tokens_details")
    out_details = _g(usage, f"{output}_tokens_details")

    def detail(obj: Any, name: str) -> int:
        return (_g(obj, name) if obj is not None else 0) or 0

    return Usage(
        input_tokens=_g(usage, f"{input_}_tokens") or 0,
        cached_tokens=detail(details, "cached_tokens"),
        cache_write_tokens=detail(details, "cache_write_tokens"),
        output_tokens=_g(usage, f"{output}_tokens") or 0,
        reasoning_tokens=detail(out_details, "reasoning_tokens"),
    )


def _chat_usage(usage: Any) -> Usage:
    return _usage(usage, "prompt", "completion")


def _responses_usage(usage: Any) -> Usage:
    return _usage(usage, "input", "output")


# --- headers -----------------------------------------------------------------------------------

KEPT_HEADERS = (
    "x-request-id",
    "openai-processing-ms",
    "x-emulator",
    PROFILE_HEADER,
    "retry-after",
    "retry-after-ms",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
    "openai-version",
    "openai-model",
)


_KEPT = frozenset(KEPT_HEADERS)


def _keep_headers(headers: Mapping[str, str]) -> dict[str, str]:
    # one pass over the reply's headers: httpx2 looks each name up by a linear scan
    return {k.lower(): v for k, v in headers.items() if k.lower() in _KEPT}


def retry_after_ms(headers: Mapping[str, str]) -> float | None:
    """``retry-after-ms`` (OpenAI), else ``retry-after`` in seconds; None if absent or bad."""
    for name, scale in (("retry-after-ms", 1.0), ("retry-after", 1000.0)):
        value = headers.get(name)
        if value is not None:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_reset(value: str | None) -> float | None:
    """``x-ratelimit-reset-*`` values like ``1s``, ``6m0s``, ``20ms`` → seconds."""
    if not value:
        return None
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = _DURATION.findall(value)
    return sum(float(n) * scale[u] for n, u in parts) if parts else None


# --- the two clients ---------------------------------------------------------------------------


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every pool: building one reads the CA bundle (~20 ms)."""
    return httpx2.create_ssl_context()


def _http_client(
    timeout_s: float,
    headers: Mapping[str, str] | None = None,
    base_url: str = "",
    max_connections: int = 100,
    native: bool = False,
) -> httpx2.AsyncClient:
    """``native``: sockets on asyncio's transports (:mod:`harness.transport.netio`), not anyio's."""
    transport = TimedAsyncTransport(
        network_backend=AsyncioBackend() if native else None,
        verify=_tls_context(),
        limits=httpx2.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
    )
    return httpx2.AsyncClient(
        transport=transport,
        timeout=httpx2.Timeout(timeout_s),
        headers=dict(headers or {}),
        base_url=base_url,
    )


def request_body(kwargs: Mapping[str, Any]) -> bytes:
    """The JSON body of a request, compact UTF-8 (what the raw client sends and the runner
    counts as ``request_bytes``)."""
    return orjson.dumps(kwargs, option=orjson.OPT_NON_STR_KEYS)


class _RawPost:
    """The raw client's hot path: POST a prebuilt request straight to the transport.

    ``httpx2.AsyncClient.send`` would merge URLs, headers, cookies and auth and wrap the reply
    stream in three more layers for every request; this builds the URL and headers once (the
    same ones the client would send) and reads the transport's stream itself. The transport is
    still an ``httpx2.AsyncHTTPTransport`` (wire clock, and vcrpy's patch for cassettes).
    """

    def __init__(self, client: httpx2.AsyncClient, path: str) -> None:
        template = client.build_request("POST", path, content=b"")
        self.url = template.url
        self.headers = [(k, v) for k, v in template.headers.raw if k.lower() != b"content-length"]
        self.extensions = template.extensions
        self.transport = client._transport  # ours: built by _http_client

    async def __call__(self, body: bytes) -> httpx2.Response:
        request = httpx2.Request(
            "POST", self.url, headers=self.headers, content=body, extensions=self.extensions
        )
        response = await self.transport.handle_async_request(request)
        response.request = request
        return response


class _Lanes:
    """The raw client's connections: a lane per request in flight, each lane a client whose
    pool holds one connection (kept alive, reopened if the server closed it).

    One shared pool would do the same job, but httpcore's pool checks every connection it
    holds on every request (expiry, and a ``poll()`` of each idle socket): at concurrency 32
    that was a tenth of the client's CPU. Lanes are handed out last-in first-out, so a quiet
    run keeps reusing its warmest connection.
    """

    def __init__(
        self, count: int, timeout_s: float, headers: Mapping[str, str], base_url: str
    ) -> None:
        self.clients = [
            _http_client(timeout_s, headers, base_url=base_url, max_connections=1, native=True)
            for _ in range(count)
        ]
        self.posts = [
            {api: _RawPost(c, path) for api, path in _PATHS.items()} for c in self.clients
        ]
        self._free = list(range(count - 1, -1, -1))
        self._available = asyncio.Semaphore(count)

    async def acquire(self) -> int:
        await self._available.acquire()
        return self._free.pop()

    def release(self, lane: int) -> None:
        self._free.append(lane)
        self._available.release()

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


async def _body_chunks(response: httpx2.Response) -> AsyncIterator[bytes]:
    """The reply body as it arrives, decoded only when the server compressed it."""
    if response.headers.get("content-encoding", "identity") == "identity":
        async for chunk in response.stream:  # type: ignore[union-attr]
            yield chunk
    else:
        async for chunk in response.aiter_bytes():
            yield chunk


_WARM_DONE = False


def warm_sdk() -> float:
    """Build the SDK's lazily-created models once, before anything is timed; return ms spent.

    The first Responses event a process parses builds pydantic validators for the whole
    ``Response`` type (~0.7 s here): unwarmed, the first request of a run would report that
    client CPU as API latency — and hold the socket unread, skewing the wire clock too.
    """
    global _WARM_DONE
    if _WARM_DONE:
        return 0.0
    from openai._models import construct_type
    from openai.types.chat import ChatCompletion, ChatCompletionChunk
    from openai.types.responses import Response, ResponseStreamEvent

    start = time.perf_counter_ns()
    response = {
        "id": "resp_warm",
        "object": "response",
        "created_at": 0,
        "model": "m",
        "status": "completed",
        # an output message too: its item and part types build validators of their own (a
        # background poll's first completed reply paid ~0.2 s for them)
        "output": [
            {
                "type": "message",
                "id": "msg_warm",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "x", "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }
    for type_, value in (
        (
            ResponseStreamEvent,
            {"type": "response.created", "sequence_number": 0, "response": response},
        ),
        (
            ResponseStreamEvent,
            {
                "type": "response.output_text.delta",
                "delta": "x",
                "item_id": "m",
                "output_index": 0,
                "content_index": 0,
                "sequence_number": 1,
                "logprobs": [],
            },
        ),
        (Response, response),
        (
            ChatCompletionChunk,
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "m",
                "choices": [],
            },
        ),
        (
            ChatCompletion,
            {"id": "c", "object": "chat.completion", "created": 0, "model": "m", "choices": []},
        ),
    ):
        construct_type(type_=type_, value=value)
    _WARM_DONE = True
    return (time.perf_counter_ns() - start) / _NS_PER_MS


class Transport:
    """One API client per arm (so no arm pays another's connection setup), SDK or raw."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        kind: ClientKind = "sdk",
        timeout_s: float = 120.0,
        max_connections: int = 100,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """``headers``: sent with every request besides the key (e.g. ``OpenAI-Organization``,
        ``OpenAI-Project``, a gateway's own headers); they cannot replace the key's."""
        self.kind = kind
        self.base_url = base_url.rstrip("/")
        extra = {k: v for k, v in (headers or {}).items() if k.lower() != "authorization"}
        if kind == "sdk":
            self._sdk = openai.AsyncOpenAI(
                base_url=self.base_url,
                api_key=api_key,
                max_retries=0,
                default_headers=extra,
                http_client=_http_client(timeout_s, max_connections=max_connections),
            )
            # resolve the lazily-built resource objects now, not inside a timed request
            _ = (
                self._sdk.chat.completions.with_raw_response,
                self._sdk.responses.with_raw_response,
                self._sdk.models.with_raw_response,
            )
        else:
            self._lanes = _Lanes(
                max_connections,
                timeout_s,
                {**extra, "authorization": f"Bearer {api_key}", "content-type": "application/json"},
                self.base_url,
            )

    async def aclose(self) -> None:
        if self.kind == "sdk":
            await self._sdk.close()
        else:
            await self._lanes.aclose()

    async def _raw_request(self, method: str, path: str) -> httpx2.Response:
        lane = await self._lanes.acquire()
        try:
            return await self._lanes.clients[lane].request(method, path)
        finally:
            self._lanes.release(lane)

    async def send(self, api: Api, kwargs: dict[str, Any], body: bytes | None = None) -> CallResult:
        """One attempt. Never raises for HTTP or stream failures: they are data.

        ``body``: ``kwargs`` already serialised (:func:`request_body`), which the raw client
        sends as is; the SDK serialises ``kwargs`` itself.
        """
        stream = bool(kwargs.get("stream"))
        track = bool(kwargs.get("background"))
        if self.kind == "sdk":
            return await self._timed(stream, lambda: self._send_sdk(api, kwargs, stream, track))
        raw = body or request_body(kwargs)
        return await self._timed(stream, lambda: self._send_raw(api, raw, stream, track))

    async def retrieve(
        self, response_id: str, *, stream: bool = False, starting_after: int | None = None
    ) -> CallResult:
        """``GET /responses/{id}``: the stored response as it stands (a background one's
        status), or with ``stream`` its events after ``starting_after`` (a resumed stream).
        Never raises for HTTP or stream failures, like :meth:`send`."""
        if self.kind == "sdk":
            extra = {} if starting_after is None else {"starting_after": starting_after}
            retrieve = self._sdk.responses.with_raw_response.retrieve

            async def call() -> Any:
                return await retrieve(response_id, stream=stream, **extra)  # type: ignore[call-overload]

            return await self._timed(
                stream, lambda: self._send_sdk("responses", {}, stream, True, call)
            )
        params = {"stream": "true"} if stream else {}
        if starting_after is not None:
            params["starting_after"] = str(starting_after)

        async def get(lane: int) -> httpx2.Response:
            client = self._lanes.clients[lane]
            request = client.build_request("GET", f"/responses/{response_id}", params=params)
            return await client.send(request, stream=True)

        return await self._timed(
            stream, lambda: self._send_raw("responses", b"", stream, True, get)
        )

    async def _timed(
        self, stream: bool, attempt: Callable[[], Awaitable[CallResult]]
    ) -> CallResult:
        """Run one attempt under the wire recorder, and take its timings (or a cassette's)."""
        rec = WireRecorder()
        token = CURRENT_RECORDER.set(rec)
        try:
            result = await attempt()
        finally:
            CURRENT_RECORDER.reset(token)
        if rec.replayed is not None:  # from a cassette: the recorded clocks, not replay's
            replayed = rec.replayed
            result.replayed = True
            result.wire = replayed.wire
            result.sdk_ttfb_ms, result.sdk_ttft_ms, result.sdk_total_ms = (
                replayed.sdk_ttfb_ms,
                replayed.sdk_ttft_ms,
                replayed.sdk_total_ms,
            )
            result.sdk_first_output_ms = replayed.sdk_first_output_ms
        else:
            result.wire = analyze_wire(rec, stream=stream, all_events=rec.recording is not None)
        if rec.miss is not None:
            result.ok, result.error_type, result.error_message = False, CASSETTE_MISS, rec.miss
        if result.events is None:
            result.events = result.wire.events
        if rec.recording is not None:
            rec.recording(
                RecordedTiming(
                    result.wire,
                    result.sdk_ttfb_ms,
                    result.sdk_ttft_ms,
                    result.sdk_total_ms,
                    result.sdk_first_output_ms,
                )
            )
        return result

    async def delete_response(self, response_id: str) -> bool:
        """Delete a stored response (True when the server confirmed)."""
        return await self._confirmed(
            lambda: self._sdk.responses.delete(response_id), "DELETE", f"/responses/{response_id}"
        )

    async def delete_chat_completion(self, completion_id: str) -> bool:
        """Delete a stored chat completion (True when the server confirmed)."""
        return await self._confirmed(
            lambda: self._sdk.chat.completions.delete(completion_id),
            "DELETE",
            f"/chat/completions/{completion_id}",
        )

    async def cancel_response(self, response_id: str) -> bool:
        """Cancel a background response (True when the server answered 2xx)."""
        return await self._confirmed(
            lambda: self._sdk.responses.cancel(response_id),
            "POST",
            f"/responses/{response_id}/cancel",
        )

    async def _confirmed(
        self, sdk_call: Callable[[], Awaitable[Any]], method: str, path: str
    ) -> bool:
        """A clean-up call (delete, cancel): True when the server answered 2xx."""
        if self.kind == "sdk":
            return (await _sdk_state(sdk_call)).ok
        return (await self._raw_state(method, path)).ok

    # --- server-side state (Conversations API, stored responses' input items) -------------

    async def create_conversation(self, items: list[dict[str, Any]]) -> StateReply:
        """``POST /conversations`` with at most :data:`MAX_ITEMS_PER_CREATE` starting items."""
        if self.kind == "sdk":
            return await _sdk_state(
                lambda: self._sdk.conversations.create(items=items)  # type: ignore[arg-type]
            )
        return await self._raw_state("POST", "/conversations", {"items": items})

    async def add_conversation_items(
        self, conversation_id: str, items: list[dict[str, Any]]
    ) -> StateReply:
        """``POST /conversations/{id}/items`` (at most :data:`MAX_ITEMS_PER_CREATE` items)."""
        if self.kind == "sdk":
            return await _sdk_state(
                lambda: self._sdk.conversations.items.create(
                    conversation_id,
                    items=items,  # type: ignore[arg-type]
                )
            )
        return await self._raw_state(
            "POST", f"/conversations/{conversation_id}/items", {"items": items}
        )

    async def list_items(self, owner: Literal["conversation", "response"], oid: str) -> StateReply:
        """Every item a conversation holds, or the input items of a stored response, oldest
        first (``data`` is the list of items as JSON)."""
        if self.kind == "sdk":
            lister = (
                self._sdk.conversations.items.list
                if owner == "conversation"
                else self._sdk.responses.input_items.list
            )

            async def collect() -> list[dict[str, Any]]:
                return [
                    item.model_dump(mode="json", exclude_unset=True)
                    async for item in lister(oid, limit=100, order="asc")
                ]

            return await _sdk_state(collect)
        path = (
            f"/conversations/{oid}/items"
            if owner == "conversation"
            else f"/responses/{oid}/input_items"
        )
        found: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            query = {"limit": "100", "order": "asc", **({"after": after} if after else {})}
            reply = await self._raw_state("GET", path, query=query)
            page = reply.data if isinstance(reply.data, dict) else {}
            if not reply.ok:
                return reply
            found.extend(page.get("data") or [])
            after = page.get("last_id")
            if not page.get("has_more") or not after:
                return StateReply(True, reply.status, data=found)

    async def delete_conversation(self, conversation_id: str) -> bool:
        """Delete a conversation (True when the server confirmed)."""
        return await self._confirmed(
            lambda: self._sdk.conversations.delete(conversation_id),
            "DELETE",
            f"/conversations/{conversation_id}",
        )

    async def _raw_state(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
    ) -> StateReply:
        lane = await self._lanes.acquire()
        try:
            reply = await self._lanes.clients[lane].request(
                method, path, content=None if body is None else request_body(body), params=query
            )
        except httpx2.HTTPError as exc:
            return StateReply(False, None, "connection_error", _one_line(repr(exc)))
        finally:
            self._lanes.release(lane)
        try:
            data = reply.json()
        except ValueError:
            data = None
        if reply.status_code >= 400:
            error = data.get("error") if isinstance(data, dict) else None
            error = error if isinstance(error, dict) else {}
            return StateReply(
                False,
                reply.status_code,
                str(error.get("code") or error.get("type") or f"http_{reply.status_code}"),
                _one_line(str(error.get("message") or reply.text[:200])),
            )
        return StateReply(True, reply.status_code, data=data)

    async def list_models(self) -> httpx2.Headers:
        """A cheap GET that warms this client's connection; returns the reply headers."""
        if self.kind == "sdk":
            raw = await self._sdk.models.with_raw_response.list()
            return raw.headers
        reply = await self._raw_request("GET", "/models")
        return reply.headers

    async def _send_sdk(
        self,
        api: Api,
        kwargs: dict[str, Any],
        stream: bool,
        track: bool = False,
        call: Callable[[], Awaitable[Any]] | None = None,
    ) -> CallResult:
        """``call``: another request than a create (a retrieve), read like one."""
        reply = _Reply(api, track)
        res = reply.result
        t0 = time.perf_counter_ns()
        try:
            if call is not None:
                raw = await call()
            else:
                create = (
                    self._sdk.chat.completions.with_raw_response.create
                    if api == "chat"
                    else self._sdk.responses.with_raw_response.create
                )
                raw = await create(**kwargs)
            res.sdk_ttfb_ms = (time.perf_counter_ns() - t0) / _NS_PER_MS
            res.status = raw.status_code
            res.headers = _keep_headers(raw.headers)
            parsed = raw.parse()
            if stream:
                events = 0
                on_event = reply.chat_chunk if api == "chat" else reply.responses_event
                async for event in parsed:
                    events += 1
                    if on_event(event) and res.sdk_ttft_ms is None:
                        res.sdk_ttft_ms = (time.perf_counter_ns() - t0) / _NS_PER_MS
                    if reply.any_output and res.sdk_first_output_ms is None:
                        res.sdk_first_output_ms = (time.perf_counter_ns() - t0) / _NS_PER_MS
                res.events = events
            elif api == "chat":
                reply.chat_final(parsed)
            else:
                reply.responses_final(parsed)
        except openai.APIStatusError as exc:
            return _status_error(
                res, exc.status_code, exc.response.headers, exc.body, exc.message, t0
            )
        except openai.APIError as exc:  # error event in stream, connection, timeout
            kind = (
                "timeout"
                if isinstance(exc, openai.APITimeoutError)
                else CONNECTION_DROPPED
                if dropped_unanswered(exc.__cause__)
                else "connection_error"
                if isinstance(exc, openai.APIConnectionError)
                else "stream_error"
            )
            # the SDK says "Connection error."; its cause says which
            cause = f": {exc.__cause__!r}" if isinstance(exc, openai.APIConnectionError) else ""
            res.error_type, res.error_message = kind, _one_line(f"{exc}{cause}")
        except (httpx2.TransportError, httpx2.StreamError) as exc:  # cut mid-stream
            res.error_type, res.error_message = "stream_interrupted", _one_line(repr(exc))
        except ValueError as exc:  # a body or event that is not JSON: the server's fault, data
            res.error_type, res.error_message = "bad_response", _one_line(repr(exc))
        res.sdk_total_ms = (time.perf_counter_ns() - t0) / _NS_PER_MS
        return reply.finish()

    async def _send_raw(
        self,
        api: Api,
        body: bytes,
        stream: bool,
        track: bool = False,
        request: Callable[[int], Awaitable[httpx2.Response]] | None = None,
    ) -> CallResult:
        """``request``: another request than a create's POST on a lane (a retrieve)."""
        reply = _Reply(api, track)
        res = reply.result
        res.request_bytes = len(body)
        lane = await self._lanes.acquire()
        t0 = time.perf_counter_ns()
        try:
            response = await (
                request(lane) if request is not None else self._lanes.posts[lane][api](body)
            )
            try:
                res.sdk_ttfb_ms = (time.perf_counter_ns() - t0) / _NS_PER_MS
                res.status = response.status_code
                res.headers = _keep_headers(response.headers)
                if response.status_code >= 400:
                    content = await response.aread()
                    try:
                        err_body = json.loads(content)
                    except ValueError:
                        err_body = None
                    return _status_error(
                        res,
                        response.status_code,
                        response.headers,
                        (err_body or {}).get("error") if isinstance(err_body, dict) else None,
                        content[:200].decode("utf-8", "replace"),
                        t0,
                    )
                if stream:
                    await self._read_sse(api, _body_chunks(response), reply, t0)
                else:
                    data = orjson.loads(await response.aread())
                    (reply.chat_final if api == "chat" else reply.responses_final)(data)
            finally:
                await response.aclose()
        except httpx2.TimeoutException as exc:
            res.error_type, res.error_message = "timeout", _one_line(repr(exc))
        except (httpx2.TransportError, httpx2.StreamError) as exc:
            res.error_type = (
                "stream_interrupted"
                if res.status
                else CONNECTION_DROPPED
                if dropped_unanswered(exc)
                else "connection_error"
            )
            res.error_message = _one_line(repr(exc))
        except ValueError as exc:  # orjson/json errors: a body or event that is not JSON
            res.error_type, res.error_message = "bad_response", _one_line(repr(exc))
        finally:
            self._lanes.release(lane)
        res.sdk_total_ms = (time.perf_counter_ns() - t0) / _NS_PER_MS
        return reply.finish()

    @staticmethod
    async def _read_sse(api: Api, chunks: AsyncIterator[bytes], reply: _Reply, t0: int) -> None:
        res = reply.result
        on_event = reply.chat_chunk if api == "chat" else reply.responses_event
        buffer = b""
        events = 0
        async for chunk in chunks:
            buffer = buffer + chunk if buffer else chunk
            payloads, consumed = split_sse(buffer)
            buffer = buffer[consumed:]
            for payload in payloads:
                if payload.startswith(b"[DONE]"):
                    continue
                events += 1
                if on_event(orjson.loads(payload)) and res.sdk_ttft_ms is None:
                    res.sdk_ttft_ms = (time.perf_counter_ns() - t0) / _NS_PER_MS
                if reply.any_output and res.sdk_first_output_ms is None:
                    res.sdk_first_output_ms = (time.perf_counter_ns() - t0) / _NS_PER_MS
        res.events = events


@dataclass(frozen=True, slots=True)
class StateReply:
    """The outcome of one call on server-side state (create, list, delete); never raises."""

    ok: bool
    status: int | None
    error_type: str | None = None
    error_message: str | None = None
    #: the reply as JSON (for a listing: the items, every page joined)
    data: Any = None


async def _sdk_state(call: Callable[[], Awaitable[Any]]) -> StateReply:
    try:
        found = await call()
    except openai.APIStatusError as exc:
        body = exc.body if isinstance(exc.body, Mapping) else {}
        code = body.get("code") or body.get("type") or f"http_{exc.status_code}"
        return StateReply(False, exc.status_code, str(code), _one_line(exc.message))
    except openai.APIError as exc:
        return StateReply(False, None, "connection_error", _one_line(str(exc)))
    data = found.model_dump(mode="json") if hasattr(found, "model_dump") else found
    return StateReply(True, 200, data=data)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


def _status_error(
    res: CallResult, status: int, headers: Mapping[str, str], body: Any, message: str, t0: int
) -> CallResult:
    res.status = status
    res.headers = _keep_headers(headers)
    res.retry_after_ms = retry_after_ms(headers)
    code = _g(body, "code") if isinstance(body, Mapping) else None
    kind = _g(body, "type") if isinstance(body, Mapping) else None
    res.error_type = str(code or kind or f"http_{status}")
    res.error_message = _one_line(
        str(_g(body, "message") if isinstance(body, Mapping) and _g(body, "message") else message)
    )
    res.sdk_total_ms = (time.perf_counter_ns() - t0) / _NS_PER_MS
    return res


# --- retries -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter; server hints (``retry-after*``) take precedence."""

    max_attempts: int = 4
    base_s: float = 0.5
    cap_s: float = 20.0
    max_retry_after_s: float = 60.0

    def delay_s(self, attempt: int, hint_ms: float | None, rng: random.Random) -> float:
        if hint_ms is not None:
            return min(hint_ms / 1000.0, self.max_retry_after_s)
        return rng.uniform(0, min(self.cap_s, self.base_s * 2 ** (attempt - 1)))


async def send_with_retries(
    send: Callable[[], Awaitable[CallResult]],
    policy: RetryPolicy,
    rng: random.Random,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> tuple[CallResult, list[Attempt]]:
    """Call ``send`` until success, a non-retryable failure, or ``max_attempts``.

    A connection the server dropped before any reply (:data:`CONNECTION_DROPPED`) is sent again
    at once, outside ``max_attempts`` (once per request): nothing was served, so it is not a
    failure of the target's, and its attempt is kept like any other.
    """
    attempts: list[Attempt] = []
    waited = 0.0
    resent = 0
    while True:
        result = await send()
        attempts.append(
            Attempt(
                status=result.status,
                error_type=result.error_type,
                error_message=result.error_message,
                retry_after_ms=result.retry_after_ms,
                waited_ms=waited,
                total_ms=result.wire.total_ms or result.sdk_total_ms,
            )
        )
        if result.error_type == CONNECTION_DROPPED and not resent:
            resent, waited = 1, 0.0
            continue
        if not result.retryable or len(attempts) - resent >= policy.max_attempts:
            return result, attempts
        delay = policy.delay_s(len(attempts), result.retry_after_ms, rng)
        waited = delay * 1000.0
        await sleep(delay)
