"""Sending a planned reply on time, and recording when its bytes really left.

A :class:`Plan` holds everything precomputed (headers, body or SSE writes, and when each is
due, as offsets from request arrival). :class:`TimedResponse` sleeps to each absolute deadline
and hands the bytes to uvicorn, whose ``send`` writes to the socket before returning; the
truth log's ``headers_ms``/``first_delta_ms``/``total_ms`` are read right after those
``send`` calls, so they are the times the bytes reached the transport.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from harness.emulator.headers import Headers
from harness.emulator.latency import sleep_until
from harness.emulator.truth import TruthLog

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class StreamCut(Exception):
    """Raised after a partial stream so uvicorn drops the connection (the ``stream_cut`` fault)."""


class _HideStreamCuts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, StreamCut)


_FILTER = _HideStreamCuts()


def hide_stream_cut_logs() -> None:
    """Keep injected stream cuts out of uvicorn's error log (they are not server errors)."""
    logger = logging.getLogger("uvicorn.error")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)


@dataclass(slots=True)
class Plan:
    """A reply ready to send. Offsets are seconds from ``t0`` (request arrival)."""

    t0: float
    status: int
    headers: Headers
    headers_at: float = 0.0
    body: bytes = b""
    groups: list[tuple[float, bytes]] | None = None
    first_group: int | None = None
    cut: bool = False
    truth: dict[str, Any] | None = field(default=None)
    #: checked before each write: True ends the stream cleanly (a cancelled background response)
    halt: Callable[[], bool] | None = None


#: how often a stream that can be halted checks whether it was (a cancel ends it this soon)
_HALT_CHECK_S = 0.02


async def _sleep_unless(deadline: float, halt: Callable[[], bool]) -> bool:
    """Sleep until ``deadline`` unless ``halt()`` turns true first; returns ``halt()``."""
    while not halt():
        step = min(deadline, time.perf_counter() + _HALT_CHECK_S)
        await sleep_until(step)
        if step >= deadline:
            return halt()
    return True


def _ms(t: float, t0: float) -> float:
    return round((t - t0) * 1000.0, 3)


class TimedResponse:
    """An ASGI response that executes a :class:`Plan` and records the truth."""

    __slots__ = ("plan", "truth_log")

    def __init__(self, plan: Plan, truth_log: TruthLog) -> None:
        self.plan = plan
        self.truth_log = truth_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the plan (Starlette calls responses like ASGI apps)."""
        if self.plan.groups is None:
            await self._send_whole(send)
        else:
            await self._send_stream(receive, send)

    def _start(self, extra: Headers) -> dict[str, Any]:
        plan = self.plan
        processing = str(max(0, round((time.perf_counter() - plan.t0) * 1000))).encode()
        return {
            "type": "http.response.start",
            "status": plan.status,
            "headers": [*plan.headers, *extra, (b"openai-processing-ms", processing)],
        }

    async def _send_whole(self, send: Send) -> None:
        plan = self.plan
        await sleep_until(plan.t0 + plan.headers_at)
        await send(self._start([(b"content-length", str(len(plan.body)).encode())]))
        t_headers = time.perf_counter()
        await send({"type": "http.response.body", "body": plan.body, "more_body": False})
        t_end = time.perf_counter()
        if plan.truth is not None:
            self._record(
                headers_ms=_ms(t_headers, plan.t0),
                first_delta_ms=None,
                total_ms=_ms(t_end, plan.t0),
                writes=1,
                disconnected=False,
            )

    async def _send_stream(self, receive: Receive, send: Send) -> None:
        plan = self.plan
        groups = plan.groups or []
        t0 = plan.t0
        # The request body is fully read, so receive() now only returns on disconnect.
        watcher = asyncio.ensure_future(receive())
        t_first: float | None = None
        sent = 0
        halted = False
        try:
            await sleep_until(t0 + plan.headers_at)
            await send(self._start([]))
            t_headers = time.perf_counter()
            last = len(groups) - 1
            for i, (at, data) in enumerate(groups):
                if plan.halt is None:
                    await sleep_until(t0 + at)
                else:
                    halted = await _sleep_unless(t0 + at, plan.halt)
                if watcher.done():
                    break
                if halted:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    break
                await send(
                    {"type": "http.response.body", "body": data, "more_body": plan.cut or i < last}
                )
                sent += 1
                if i == plan.first_group:
                    t_first = time.perf_counter()
            if not groups and not plan.cut:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            t_end = time.perf_counter()
        finally:
            watcher.cancel()
        if plan.truth is not None:
            self._record(
                headers_ms=_ms(t_headers, t0),
                first_delta_ms=None if t_first is None else _ms(t_first, t0),
                total_ms=_ms(t_end, t0),
                writes=sent,
                disconnected=sent < len(groups) and not halted,
            )
        if plan.cut and not halted:
            raise StreamCut("injected mid-stream connection drop")

    def _record(
        self,
        *,
        headers_ms: float,
        first_delta_ms: float | None,
        total_ms: float,
        writes: int,
        disconnected: bool,
    ) -> None:
        record = self.plan.truth
        assert record is not None
        # t0_monotonic: CLOCK_MONOTONIC seconds, comparable with perf_counter() of other
        # processes on this machine (lets a test split a client's latency into legs).
        record.update(
            headers_ms=headers_ms,
            first_delta_ms=first_delta_ms,
            total_ms=total_ms,
            writes=writes,
            client_disconnected=disconnected,
            t0_monotonic=round(self.plan.t0, 7),
        )
        self.truth_log.write(record)
