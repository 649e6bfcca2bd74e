"""The wire clock: timestamps taken below the HTTP client, where bytes leave and arrive.

A transport that wraps the client sits *above* vcrpy's class-level patch and, while recording,
sees one buffered blob; and the SDK's own loop adds its parsing time (DESIGN §4). So the harness
times at the network-stream level instead: :class:`TimedAsyncTransport` is an
``httpx2.AsyncHTTPTransport`` (still patched by vcrpy) whose connection pool uses a network
backend that stamps every socket write and read with ``perf_counter_ns`` into the
:class:`WireRecorder` of the current request (a context variable, so concurrent requests in their
own tasks never mix). The hot path only appends ``(t, bytes)``; :func:`analyze_wire` works out
TTFB, TTFT and total afterwards by parsing the recorded bytes.
"""

from __future__ import annotations

import contextvars
import re
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpcore2
import httpx2
import orjson
from httpcore2 import AsyncNetworkBackend, AsyncNetworkStream

_NS_PER_MS = 1_000_000


@dataclass(slots=True)
class WireRecorder:
    """Raw timestamps of one HTTP attempt (ns, ``perf_counter_ns``)."""

    connect_start_ns: int | None = None
    connect_end_ns: int | None = None
    first_write_ns: int | None = None
    reads: list[tuple[int, bytes]] = field(default_factory=list)
    #: set by a replaying cassette (:mod:`harness.cassettes.replay`): the timing stored with the
    #: interaction it played; no socket was read
    replayed: RecordedTiming | None = None
    #: set by a replaying cassette when no recorded interaction matched (the message)
    miss: str | None = None
    #: set by a recording cassette: receives this attempt's timing once it is known
    recording: Callable[[RecordedTiming], None] | None = None

    @property
    def new_connection(self) -> bool:
        return self.connect_start_ns is not None


CURRENT_RECORDER: contextvars.ContextVar[WireRecorder | None] = contextvars.ContextVar(
    "harness_wire_recorder", default=None
)


# The recorder's four stamps, written once for the async sockets (the harness's own client) and
# their sync twins (an application's sync client under shadow capture).


def _noted_read(data: bytes) -> bytes:
    rec = CURRENT_RECORDER.get()
    if rec is not None and data:
        rec.reads.append((time.perf_counter_ns(), data))
    return data


def _note_write() -> None:
    rec = CURRENT_RECORDER.get()
    if rec is not None and rec.first_write_ns is None:
        rec.first_write_ns = time.perf_counter_ns()


def _note_tls() -> None:
    rec = CURRENT_RECORDER.get()
    if rec is not None and rec.connect_start_ns is not None:
        rec.connect_end_ns = time.perf_counter_ns()  # connection setup includes TLS


def _note_connect(rec: WireRecorder | None, start_ns: int) -> None:
    if rec is not None:
        rec.connect_start_ns, rec.connect_end_ns = start_ns, time.perf_counter_ns()


class _TimedStream(AsyncNetworkStream):
    __slots__ = ("_inner",)

    def __init__(self, inner: AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return _noted_read(await self._inner.read(max_bytes, timeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        _note_write()
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> AsyncNetworkStream:
        stream = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        _note_tls()
        return _TimedStream(stream)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _SyncTimedStream(httpcore2.NetworkStream):
    __slots__ = ("_inner",)

    def __init__(self, inner: httpcore2.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return _noted_read(self._inner.read(max_bytes, timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        _note_write()
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.NetworkStream:
        stream = self._inner.start_tls(ssl_context, server_hostname, timeout)
        _note_tls()
        return _SyncTimedStream(stream)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class TimedBackend(AsyncNetworkBackend):
    """An async network backend whose sockets report to the current :class:`WireRecorder`."""

    def __init__(self, inner: AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> AsyncNetworkStream:
        # times whatever connect the inner backend makes; httpcore's arguments pass untouched
        rec, start = CURRENT_RECORDER.get(), time.perf_counter_ns()
        stream = await self._inner.connect_tcp(*args, **kwargs)
        _note_connect(rec, start)
        return _TimedStream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> AsyncNetworkStream:
        return _TimedStream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class SyncTimedBackend(httpcore2.NetworkBackend):
    """The sync twin of :class:`TimedBackend` (an application's ``openai.OpenAI`` client)."""

    def __init__(self, inner: httpcore2.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore2.NetworkStream:
        # times whatever connect the inner backend makes; httpcore's arguments pass untouched
        rec, start = CURRENT_RECORDER.get(), time.perf_counter_ns()
        stream = self._inner.connect_tcp(*args, **kwargs)
        _note_connect(rec, start)
        return _SyncTimedStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.NetworkStream:
        return _SyncTimedStream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class TimedAsyncTransport(httpx2.AsyncHTTPTransport):
    """``httpx2.AsyncHTTPTransport`` whose sockets report to the current :class:`WireRecorder`.

    It deliberately does not override ``handle_async_request``: vcrpy patches that method on
    ``httpx2.AsyncHTTPTransport`` and the patch must keep applying to this subclass, or a replay
    would go live.
    """

    def __init__(
        self, *, network_backend: AsyncNetworkBackend | None = None, **kwargs: Any
    ) -> None:
        """``network_backend``: the sockets under the wire clock (default httpcore's own)."""
        super().__init__(**kwargs)
        pool = self._pool
        if not isinstance(pool, httpcore2.AsyncConnectionPool):  # pragma: no cover - proxies
            raise TypeError("TimedAsyncTransport supports direct connections only")
        pool._network_backend = TimedBackend(network_backend or pool._network_backend)


# --- post-hoc analysis -------------------------------------------------------------------------


@dataclass(slots=True)
class WireTiming:
    """Wire-clock figures of one attempt, ms from the first byte written."""

    ttfb_ms: float | None = None
    ttft_ms: float | None = None
    #: the first event with output of any kind (a reasoning summary delta included)
    first_output_ms: float | None = None
    total_ms: float | None = None
    connect_ms: float | None = None
    new_connection: bool = False
    events: int | None = None
    #: ms of each SSE event's arrival (for cassettes: replay re-emits them on this schedule)
    event_ms: list[float] = field(default_factory=list)


@dataclass(slots=True)
class RecordedTiming:
    """Both clocks of one attempt as a cassette stores them with its interaction."""

    wire: WireTiming
    sdk_ttfb_ms: float | None = None
    sdk_ttft_ms: float | None = None
    sdk_total_ms: float | None = None
    sdk_first_output_ms: float | None = None


def _dechunk(raw: bytes, start: int) -> tuple[bytes, list[tuple[int, int]]]:
    """Body of a chunked message, and (body_offset, raw_offset) at each chunk start."""
    body = bytearray()
    segments: list[tuple[int, int]] = []
    pos = start
    while True:
        eol = raw.find(b"\r\n", pos)
        if eol < 0:
            break
        try:
            size = int(raw[pos:eol].split(b";", 1)[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        data_start = eol + 2
        segments.append((len(body), data_start))
        body += raw[data_start : data_start + size]
        pos = data_start + size + 2
    return bytes(body), segments


_VISIBLE_EVENTS = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
    }
)
_REASONING_EVENTS = frozenset(
    {"response.reasoning_summary_text.delta", "response.reasoning_text.delta"}
)


def _event_output(data: dict[str, Any]) -> int:
    """What an event carries: 2 visible output (a text, refusal or tool-call argument delta:
    TTFT, DESIGN §4), 1 other output (a reasoning delta: first output only), 0 none."""
    kind = data.get("type")
    if kind is not None:
        if not data.get("delta"):
            return 0
        return 2 if kind in _VISIBLE_EVENTS else 1 if kind in _REASONING_EVENTS else 0
    found = 0
    for choice in data.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("refusal"):
            return 2
        for call in delta.get("tool_calls") or ():
            if (call.get("function") or {}).get("arguments"):
                return 2
        # not OpenAI's: llama.cpp and vLLM stream reasoning as delta.reasoning_content
        if delta.get("reasoning_content") or delta.get("reasoning"):
            found = 1
    return found


def _is_content_event(data: dict[str, Any]) -> bool:
    """First visible output: a text, refusal or tool-call argument delta (DESIGN §4)."""
    return _event_output(data) == 2


_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")


def iter_sse(body: bytes) -> Iterator[tuple[int, str | None, bytes]]:
    """Yield ``(end_offset, event_name, data)`` for each complete SSE event in ``body``.

    Works on bytes and only splits lines when a block is not the common single
    ``data: …`` line: this runs once per streamed event, on the client's hot path.
    """
    pos = 0
    for match in _EVENT_END.finditer(body):
        block = body[pos : match.start()]
        pos = match.end()
        if block.startswith(b"data: ") and b"\n" not in block and b"\r" not in block:
            yield pos, None, block[6:]
            continue
        name: str | None = None
        data_lines = []
        for line in block.splitlines():
            if line.startswith(b"data:"):
                data_lines.append(line[5:].removeprefix(b" "))
            elif line.startswith(b"event:"):
                name = line[6:].strip().decode("utf-8", "replace")
        if data_lines:
            yield pos, name, b"\n".join(data_lines)


def split_sse(buffer: bytes) -> tuple[list[bytes], int]:
    """Data payloads of the complete SSE events in ``buffer``, and how many bytes they used.

    The common chunk — exactly one ``data: …`` line and its blank line — skips the general
    parser: the raw client calls this once per chunk received.
    """
    end = len(buffer) - 2
    if (
        buffer.startswith(b"data: ")
        and buffer.find(b"\n") == end
        and buffer.endswith(b"\n\n")
        and b"\r" not in buffer
    ):
        return [buffer[6:end]], len(buffer)
    payloads: list[bytes] = []
    consumed = 0
    for end, _name, payload in iter_sse(buffer):
        payloads.append(payload)
        consumed = end
    return payloads, consumed


def analyze_wire(rec: WireRecorder, *, stream: bool, all_events: bool = True) -> WireTiming:
    """Work out wire timings from a recorder (empty timing if nothing went over a socket).

    With ``all_events=False`` the stream is read only up to the first content event: TTFT,
    TTFB and total are the same, but ``events`` and ``event_ms`` stay empty (the reader counts
    events itself; only a recording cassette needs every event's time). This runs once per
    request on the client's hot path.
    """
    timing = WireTiming(new_connection=rec.new_connection)
    if rec.connect_start_ns is not None and rec.connect_end_ns is not None:
        timing.connect_ms = (rec.connect_end_ns - rec.connect_start_ns) / _NS_PER_MS
    if rec.first_write_ns is None or not rec.reads:
        return timing
    t0 = rec.first_write_ns
    ends: list[int] = []
    total = 0
    for _, data in rec.reads:
        total += len(data)
        ends.append(total)
    raw = b"".join(data for _, data in rec.reads)

    def ms_at(raw_offset: int) -> float:
        idx = min(bisect_left(ends, raw_offset), len(ends) - 1)
        return (rec.reads[idx][0] - t0) / _NS_PER_MS

    head_end = raw.find(b"\r\n\r\n")
    if head_end < 0:
        return timing
    timing.ttfb_ms = ms_at(head_end + 4)
    timing.total_ms = (rec.reads[-1][0] - t0) / _NS_PER_MS
    if not stream:
        return timing
    head = raw[:head_end].lower()
    body_start = head_end + 4
    if b"transfer-encoding: chunked" in head:
        body, segments = _dechunk(raw, body_start)
    else:
        body, segments = raw[body_start:], [(0, body_start)]
    seg_body = [b for b, _ in segments]

    def raw_offset(body_offset: int) -> int:
        i = max(0, bisect_left(seg_body, body_offset + 1) - 1)
        b, r = segments[i] if segments else (0, body_start)
        return r + (body_offset - b)

    events = 0
    for end, _name, payload in iter_sse(body):
        if payload.startswith(b"[DONE]"):
            continue
        events += 1
        if all_events:  # the time of the read holding the event's last byte
            timing.event_ms.append(ms_at(raw_offset(end - 1) + 1))
        if timing.ttft_ms is None:
            output = _payload_output(payload)
            if output and timing.first_output_ms is None:
                timing.first_output_ms = ms_at(raw_offset(end - 1) + 1)
            if output == 2:
                timing.ttft_ms = ms_at(raw_offset(end - 1) + 1)
                if not all_events:
                    return timing
    if all_events:
        timing.events = events
    return timing


def _payload_output(payload: bytes) -> int:
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return 0
    return _event_output(parsed) if isinstance(parsed, dict) else 0
