"""Timing and copying a live call on the application's own client, at minimal cost.

The application's call must come back unchanged and on time, so the primary path only takes
timestamps and keeps references: the returned stream object is the SDK's own (its internal
iterator is replaced by a pass-through generator that notes when each chunk reached the caller),
and everything else (parsing the chunks with :class:`harness.transport.client._Reply`, wire
analysis) happens later on the shadow side. For the sidecar process (``mode="process"``),
:func:`compact` turns a finished capture into plain, picklable data; it runs on the sender thread,
never on the application's.

Two clocks, as in scenario runs (DESIGN §4):

- the **SDK clock** (``sdk_*``): when ``create`` returned and when each typed chunk reached the
  application's loop. It includes the application's own time between chunks — a slow consumer
  makes ``sdk_total_ms`` longer.
- the **wire clock**: socket reads stamped below the application's own HTTP client. The
  client is kept (custom ``http_client`` included); only its connection pool's network backend
  is wrapped, and only when it is the standard httpx2 transport. Reads are recorded only while
  a sampled call of this thread/task is inside the SDK, so unsampled calls pay one context
  variable lookup per socket read. With any other transport (proxies, mocks) the wire fields
  stay null.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import httpcore2
import httpx2
import openai
from openai.types.chat import ChatCompletionChunk
from pydantic import BaseModel

from harness.shadow.recorder import SDK_REQUEST_OPTIONS
from harness.transport.client import KEPT_HEADERS, CallResult, _Reply, retry_after_ms
from harness.transport.wire import (
    CURRENT_RECORDER,
    SyncTimedBackend,
    TimedBackend,
    WireRecorder,
    analyze_wire,
)

Api = Literal["chat", "responses"]
_NS_PER_MS = 1_000_000


# --- wire clock on the application's client ----------------------------------------------------


#: (the httpx2 transport, its connection pool, the timed backend to put under the pool) for an
#: application's sync and async clients
_WIRE_CLOCKS: tuple[tuple[type[Any], type[Any], type[SyncTimedBackend | TimedBackend]], ...] = (
    (httpx2.HTTPTransport, httpcore2.ConnectionPool, SyncTimedBackend),
    (httpx2.AsyncHTTPTransport, httpcore2.AsyncConnectionPool, TimedBackend),
)


def instrument_client(client: openai.OpenAI | openai.AsyncOpenAI) -> bool:
    """Add the wire clock to ``client``'s own connection pool; False when it cannot be done.

    Idempotent. Only a plain ``httpx2.HTTPTransport`` / ``AsyncHTTPTransport`` with direct
    connections is instrumented (the SDK default and most custom clients); mounts (proxies)
    and other transports are left alone.
    """
    http = getattr(client, "_client", None)
    transport: Any = getattr(http, "_transport", None)
    if getattr(http, "_mounts", None):
        return False
    for transport_type, pool_type, timed in _WIRE_CLOCKS:
        if type(transport) is transport_type:
            pool = transport._pool
            if not isinstance(pool, pool_type):
                return False
            if not isinstance(pool._network_backend, timed):
                pool._network_backend = timed(pool._network_backend)
            return True
    return False


# --- one captured call -------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Capture:
    """What the primary path kept of one live call (references and timestamps only)."""

    api: Api
    kwargs: dict[str, Any]
    stream: bool
    started_at: float
    t0_ns: int
    recorder: WireRecorder | None
    model: str = ""
    ttfb_ns: int | None = None
    end_ns: int | None = None
    items: list[tuple[int, Any]] = field(default_factory=list)
    final: Any = None
    error: BaseException | None = None
    headers: Mapping[str, str] | None = None
    #: the stream was dropped before its end (nothing to compare)
    abandoned: bool = False
    #: canary: why the call was served from chat after all
    fallback: str | None = None
    #: the reply's ``x-request-id`` when ``final`` is plain data (see :func:`compact`)
    request_id: str | None = None

    def returned(self, result: Any) -> None:
        self.ttfb_ns = time.perf_counter_ns()
        self.stream = isinstance(result, openai.Stream | openai.AsyncStream)
        response = getattr(result, "response", None)
        if isinstance(response, httpx2.Response):
            self.headers = response.headers
        if not self.stream:
            self.final = result
            self.end_ns = self.ttfb_ns

    def failed(self, exc: BaseException) -> None:
        self.end_ns = time.perf_counter_ns()
        self.error = exc


def snapshot_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of call kwargs that later edits of the caller's message list cannot change.

    Applications append the reply to ``messages`` right after the call, while the shadow call
    is still queued; a shallow copy of the list and of each message dict is enough for that
    and costs about a microsecond per message (parts edited in place would still leak).
    """
    out = dict(kwargs)
    messages = out.get("messages")
    if isinstance(messages, list | tuple):
        out["messages"] = [dict(m) if isinstance(m, dict) else m for m in messages]
    return out


class _Tap:
    """The bookkeeping of one tapped stream, for both twins (``with`` / ``async with``).

    While the stream is pulled (``token`` set: the wire clock's recorder is on), whatever ends
    the block is the stream's own end or error; at a ``yield`` (``token`` None) it is the
    caller closing the stream or dropping it (then ``capture.abandoned``, and the inner
    iterator is closed). Either way ``on_done(capture)`` runs once.
    """

    __slots__ = ("capture", "inner", "on_done", "token")

    def __init__(self, inner: Any, capture: Capture, on_done: Callable[[Capture], None]) -> None:
        self.inner = inner
        self.capture = capture
        self.on_done = on_done
        self.token: contextvars.Token[WireRecorder | None] | None = None

    def _dropped(self, exc: BaseException | None) -> bool:
        token = self.token
        if token is None:
            self.capture.abandoned = True
            return True
        CURRENT_RECORDER.reset(token)
        if exc is None:
            self.capture.end_ns = time.perf_counter_ns()
        else:
            self.capture.failed(exc)
        return False

    def __enter__(self) -> None:
        pass

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        try:
            close = getattr(self.inner, "close", None)
            if self._dropped(exc) and close is not None:
                close()
        finally:
            self.on_done(self.capture)

    async def __aenter__(self) -> None:
        pass

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        try:
            aclose = getattr(self.inner, "aclose", None)
            if self._dropped(exc) and aclose is not None:
                await aclose()
        finally:
            self.on_done(self.capture)


def tap_stream(inner: Iterator[Any], capture: Capture, on_done: Any) -> Iterator[Any]:
    """Pass chunks through unchanged, noting when each reached the caller.

    ``on_done(capture)`` runs once: at the stream's end, on its error, or when the stream is
    closed or garbage-collected early (then ``capture.abandoned``); see :class:`_Tap`.
    """
    rec, items, clock = capture.recorder, capture.items, time.perf_counter_ns
    tap = _Tap(inner, capture, on_done)
    with tap:
        tap.token = CURRENT_RECORDER.set(rec)
        for chunk in inner:
            CURRENT_RECORDER.reset(tap.token)
            tap.token = None
            items.append((clock(), chunk))
            yield chunk
            tap.token = CURRENT_RECORDER.set(rec)


async def atap_stream(
    inner: AsyncIterator[Any], capture: Capture, on_done: Any
) -> AsyncIterator[Any]:
    """:func:`tap_stream` for async streams."""
    rec, items, clock = capture.recorder, capture.items, time.perf_counter_ns
    tap = _Tap(inner, capture, on_done)
    async with tap:
        tap.token = CURRENT_RECORDER.set(rec)
        async for chunk in inner:
            CURRENT_RECORDER.reset(tap.token)
            tap.token = None
            items.append((clock(), chunk))
            yield chunk
            tap.token = CURRENT_RECORDER.set(rec)


# --- a picklable copy for the sidecar process ----------------------------------------------------


class CapturedError(Exception):
    """A live call's exception reduced to what the records keep (no response objects, so it
    pickles); :func:`read_capture` reads it like the original."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        retry_after_ms: float | None = None,
        error_type: str | None = None,
        error_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}
        self.retry_after_ms = retry_after_ms
        self.error_type = error_type
        self.error_message = error_message

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            CapturedError,
            (
                str(self),
                self.status,
                self.headers,
                self.retry_after_ms,
                self.error_type,
                self.error_message,
            ),
        )


#: SDK request options: not part of the request, never forwarded, and may not pickle.
_SDK_OPTIONS = SDK_REQUEST_OPTIONS


def _plain(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(warnings=False)
    return obj


def _chat_chunk_data(chunk: Any) -> Any:
    # Only what read_capture looks at: ~1 µs a chunk against ~4 µs to pickle the SDK object.
    if type(chunk) is not ChatCompletionChunk:
        return _plain(chunk)
    try:
        choices = []
        for choice in chunk.choices:
            delta = choice.delta
            calls = delta.tool_calls
            choices.append(
                {
                    "finish_reason": choice.finish_reason,
                    "delta": {
                        "content": delta.content,
                        "tool_calls": [c.model_dump(warnings=False) for c in calls]
                        if calls
                        else None,
                    },
                }
            )
        usage = chunk.usage
        return {
            "id": chunk.id,
            "service_tier": chunk.service_tier,
            "choices": choices,
            "usage": usage.model_dump(warnings=False) if usage is not None else None,
        }
    except AttributeError:  # a chunk built without some field: take all of it
        return _plain(chunk)


_KEPT = frozenset(KEPT_HEADERS)
#: stream items converted between two of :func:`compact`'s pauses (~15 µs of work)
PAUSE_EVERY = 8


def _kept(headers: Mapping[str, str]) -> dict[str, str]:
    # one pass: httpx2.Headers looks each name up by a linear scan
    return {k.lower(): v for k, v in headers.items() if k.lower() in _KEPT}


def compact(capture: Capture, pause: Callable[[], None] | None = None) -> Capture:
    """A copy of ``capture`` holding plain data only, for the sidecar process.

    SDK objects become the dicts :func:`read_capture` reads, the exception a
    :class:`CapturedError`, the headers the kept ones, and SDK request options are dropped.
    ``pause()`` runs after every :data:`PAUSE_EVERY` stream items (the sender thread lets the
    application's threads have the GIL there).
    """
    error = capture.error
    if error is not None:
        res = CallResult()
        _error_into(res, error)
        error = CapturedError(
            str(error),
            res.status,
            res.headers,
            res.retry_after_ms,
            res.error_type,
            res.error_message,
        )
    rec = capture.recorder
    if rec is not None:
        rec = WireRecorder(
            connect_start_ns=rec.connect_start_ns,
            connect_end_ns=rec.connect_end_ns,
            first_write_ns=rec.first_write_ns,
            reads=list(rec.reads),
        )
    convert = _chat_chunk_data if capture.api == "chat" else _plain
    items = []
    for n, (ts, item) in enumerate(capture.items, 1):
        items.append((ts, convert(item)))
        if pause is not None and n % PAUSE_EVERY == 0:
            pause()
    request_id = capture.request_id or getattr(capture.final, "_request_id", None)
    return replace(
        capture,
        kwargs={k: v for k, v in capture.kwargs.items() if k not in _SDK_OPTIONS},
        recorder=rec,
        items=items,
        final=_plain(capture.final),
        error=error,
        headers=None if capture.headers is None else _kept(capture.headers),
        request_id=request_id if isinstance(request_id, str) else None,
    )


# --- reading a capture (shadow side) -----------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


def _headers_from_wire(rec: WireRecorder) -> dict[str, str]:
    raw = b"".join(data for _, data in rec.reads[:4])
    end = raw.find(b"\r\n\r\n")
    out: dict[str, str] = {}
    for line in raw[: max(end, 0)].decode("latin-1").split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            out[name.strip().lower()] = value.strip()
    return out


def _error_into(res: CallResult, exc: BaseException) -> None:
    if isinstance(exc, CapturedError):  # already reduced by compact()
        if exc.status is not None:
            res.status = exc.status
        if exc.headers:
            res.headers = dict(exc.headers)
        if exc.retry_after_ms is not None:
            res.retry_after_ms = exc.retry_after_ms
        res.error_type, res.error_message = exc.error_type, exc.error_message
    elif isinstance(exc, openai.APIStatusError):
        res.status = exc.status_code
        headers = exc.response.headers
        res.headers = {n: headers[n] for n in KEPT_HEADERS if n in headers}
        res.retry_after_ms = retry_after_ms(headers)
        body = exc.body if isinstance(exc.body, Mapping) else {}
        res.error_type = str(body.get("code") or body.get("type") or f"http_{exc.status_code}")
        res.error_message = _one_line(str(body.get("message") or exc.message))
    elif isinstance(exc, openai.APITimeoutError):
        res.error_type, res.error_message = "timeout", _one_line(str(exc))
    elif isinstance(exc, openai.APIConnectionError):
        res.error_type, res.error_message = "connection_error", _one_line(str(exc))
    elif isinstance(exc, openai.APIError):
        body = exc.body if isinstance(exc.body, Mapping) else {}
        res.error_type = str(body.get("code") or "stream_error")
        res.error_message = _one_line(str(body.get("message") or exc.message))
    else:
        res.error_type, res.error_message = type(exc).__name__, _one_line(str(exc))


def read_capture(capture: Capture) -> CallResult:
    """Parse what the primary path kept into a :class:`CallResult` (both clocks)."""
    reply = _Reply(capture.api)
    res = reply.result
    t0 = capture.t0_ns
    if capture.ttfb_ns is not None:
        res.sdk_ttfb_ms = (capture.ttfb_ns - t0) / _NS_PER_MS
        res.status = 200
    if capture.stream:
        on_event = reply.chat_chunk if capture.api == "chat" else reply.responses_event
        for ts, item in capture.items:
            if on_event(item) and res.sdk_ttft_ms is None:
                res.sdk_ttft_ms = (ts - t0) / _NS_PER_MS
            if reply.any_output and res.sdk_first_output_ms is None:
                res.sdk_first_output_ms = (ts - t0) / _NS_PER_MS
        res.events = len(capture.items)
    elif capture.final is not None:
        (reply.chat_final if capture.api == "chat" else reply.responses_final)(capture.final)
    if capture.end_ns is not None:
        res.sdk_total_ms = (capture.end_ns - t0) / _NS_PER_MS
    if capture.error is not None:
        _error_into(res, capture.error)
    result = reply.finish()
    rec = capture.recorder
    if rec is not None:
        result.wire = analyze_wire(rec, stream=capture.stream)
        if capture.headers is None and rec.reads:
            capture.headers = _headers_from_wire(rec)
    if capture.headers is not None and not result.headers:
        result.headers = _kept(capture.headers)
    if "x-request-id" not in result.headers:
        request_id = capture.request_id or getattr(capture.final, "_request_id", None)
        if isinstance(request_id, str):
            result.headers["x-request-id"] = request_id
    return result
