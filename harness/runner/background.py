"""Background requests (scenario ``background: true``) on the Responses arms.

A background create returns at once with status ``queued``; the reply comes later. Without a
stream the runner polls ``GET /responses/{id}`` every ``poll_interval_ms`` until the status is
final; with a stream it reads the events, and when the connection drops before the last one it
resumes with ``GET /responses/{id}?stream=true&starting_after=<last sequence_number>`` (as
OpenAI's background guide does), checking that no event is lost or repeated. What it saw goes
into the observation's :class:`~harness.records.BackgroundTiming`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

from harness.records import BackgroundTiming
from harness.runner.cleanup import ArmObjects
from harness.transport.client import CallResult, Transport

__all__ = ["MAX_FAILED_POLLS", "MAX_RESUMES", "send_background"]

#: resumed streams per request before giving up (each resume is one more dropped connection)
MAX_RESUMES = 5
#: polls in a row that may fail before the request is recorded as that failure
MAX_FAILED_POLLS = 3
_RUNNING = frozenset({"queued", "in_progress"})
_NS_PER_MS = 1_000_000
#: transport failures after which a stream is worth resuming (the response runs on)
_RESUMABLE = frozenset({"stream_interrupted", "connection_error", "connection_dropped"})


def _ms(start_ns: int, end_ns: int | None) -> float | None:
    return None if end_ns is None else round((end_ns - start_ns) / _NS_PER_MS, 3)


async def send_background(
    transport: Transport,
    kwargs: dict[str, Any],
    body: bytes | None,
    poll_interval_ms: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    tracker: ArmObjects | None = None,
) -> CallResult:
    """Create a background response and follow it to its final status (one attempt: a create
    that fails is returned as it is, for the caller's retries)."""
    kwargs = {**kwargs, "background": True}
    start = time.perf_counter_ns()
    created = await transport.send("responses", kwargs, body)
    returned = time.perf_counter_ns()
    rid = created.response_id
    if rid is None:
        return created
    if tracker is not None:
        tracker.created(rid)
    if kwargs.get("stream"):
        result = await _follow_stream(transport, created, start)
    elif not created.ok:
        result = created
    else:
        result = await _poll(transport, created, start, returned, poll_interval_ms, sleep)
    if tracker is not None:  # not reached when the run is stopped while it waits
        tracker.finished(rid)
    return result


async def _poll(
    transport: Transport,
    created: CallResult,
    start: int,
    returned: int,
    interval_ms: float,
    sleep: Callable[[float], Awaitable[None]],
) -> CallResult:
    assert created.response_id is not None
    status = created.finish
    polls = 0
    running_ns: int | None = None if status == "queued" else returned
    previous = returned
    result = created
    failed_polls = 0
    while status in _RUNNING:
        await sleep(interval_ms / 1000.0)
        asked = time.perf_counter_ns()
        result = await transport.retrieve(created.response_id)
        polls += 1
        if not result.ok:
            # a poll that failed says nothing of the response: ask again, and only after
            # several in a row is the request's outcome that failure (a retry would create
            # another response)
            failed_polls += 1
            if failed_polls >= MAX_FAILED_POLLS:
                break
            continue
        failed_polls = 0
        status = result.finish
        if status in _RUNNING:
            previous = asked
        if status != "queued" and running_ns is None:
            running_ns = time.perf_counter_ns()
    seen = time.perf_counter_ns()
    if status == "cancelled":  # not by us: the run did not get its reply
        result.ok, result.error_type = False, "cancelled"
        result.error_message = "the background response was cancelled"
    result.background = BackgroundTiming(
        time_to_queued_ms=_ms(start, returned),
        queue_wait_ms=_ms(returned, running_ns),
        polls=polls,
        poll_interval_ms=interval_ms,
        poll_lag_max_ms=_ms(previous, seen) if polls else None,
        final_status=None if status in _RUNNING else status,
        total_ms=_ms(start, seen),
    )
    return _with_created_timings(result, created, seen - start)


async def _follow_stream(transport: Transport, created: CallResult, start: int) -> CallResult:
    result = created
    lifecycle = dict(created.lifecycle_ns)
    in_order = created.first_sequence in (0, None) and created.sequence_breaks == 0
    last = created.last_sequence
    resumed_after: list[int] = []
    ttft_ms = created.wire.ttft_ms
    events = created.events or 0
    while (
        not result.ok
        and result.error_type in _RESUMABLE
        and created.response_id is not None
        and last is not None
        and len(resumed_after) < MAX_RESUMES
    ):
        resumed_after.append(last)
        asked = time.perf_counter_ns()
        result = await transport.retrieve(created.response_id, stream=True, starting_after=last)
        events += result.events or 0
        for kind, at in result.lifecycle_ns.items():
            lifecycle.setdefault(kind, at)
        if result.first_sequence is not None:
            in_order = in_order and result.first_sequence == last + 1
        in_order = in_order and result.sequence_breaks == 0
        last = result.last_sequence if result.last_sequence is not None else last
        if ttft_ms is None and result.wire.ttft_ms is not None:
            ttft_ms = (asked - start) / _NS_PER_MS + result.wire.ttft_ms
    seen = time.perf_counter_ns()
    queued = lifecycle.get("response.queued", lifecycle.get("response.created"))
    running = lifecycle.get("response.in_progress")
    result.background = BackgroundTiming(
        time_to_queued_ms=_ms(start, queued),
        queue_wait_ms=_ms(queued, running) if queued is not None else None,
        resumes=len(resumed_after),
        resumed_after=resumed_after,
        events_in_order=in_order if last is not None else None,
        final_status=result.finish if result.ok else None,
        total_ms=_ms(start, seen),
    )
    result = _with_created_timings(result, created, seen - start)
    result.wire = dataclasses.replace(result.wire, ttft_ms=ttft_ms)
    result.events = events  # over every stream of the response
    return result


def _with_created_timings(result: CallResult, created: CallResult, total_ns: int) -> CallResult:
    """The final result with the create's connection timings and the whole wait as its total
    (a background request's latency is until its final status was seen, not its create)."""
    if result is created:
        result.wire = dataclasses.replace(result.wire, total_ms=total_ns / _NS_PER_MS)
        return result
    result.wire = dataclasses.replace(created.wire, total_ms=total_ns / _NS_PER_MS)
    result.headers = created.headers or result.headers
    result.sdk_ttfb_ms = created.sdk_ttfb_ms
    result.sdk_total_ms = total_ns / _NS_PER_MS
    result.response_id = result.response_id or created.response_id
    return result
