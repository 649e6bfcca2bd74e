"""Background responses (``background: true``): a timeline the clock walks through.

A background response is planned whole when it is created, like any other reply: a queue wait
(the profile's ``background_queue_ms``), then the foreground timeline shifted by that wait. Its
status is read off the clock — ``queued`` until the wait ends, ``in_progress`` until its last
event is due, then its final status — so polling, cancelling and resuming a stream need no task
running beside the server. Every event keeps its ``sequence_number``: a stream resumed with
``starting_after=N`` sends the events after N, each when it is due (at once if already past), so
a client that resumes from the last number it saw loses and repeats nothing.

Stream: ``response.created`` and ``response.queued`` (status ``queued``) at once, then the
foreground events from ``response.in_progress`` on. The public record does not say what a
cancelled background stream sends last; here it just ends (``GET`` then says ``cancelled``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from harness.emulator import responses_out
from harness.emulator.content import Reply
from harness.emulator.latency import Timing
from harness.emulator.prompt import GenRequest

__all__ = [
    "NOT_STREAMED",
    "STORE_REQUIRED",
    "SYNCHRONOUS",
    "BackgroundJob",
    "plan_job",
]

#: OpenAI's exact words for ``background`` with ``store: false`` are not on the public record;
#: these are vLLM's (the most used re-implementation), see docs/api-fidelity.md.
STORE_REQUIRED = "background can only be used when `store` is true"
#: cancelling a response not created with ``background: true`` (vLLM's and SGLang's words)
SYNCHRONOUS = "Cannot cancel a synchronous response."
#: OpenAI's guide: a new stream can only be started from a background response created with
#: ``stream: true``; the error's words are ours
NOT_STREAMED = (
    "This response was not created with 'stream' set to true, so it cannot be streamed; "
    "poll it with GET /v1/responses/{id} instead."
)

#: (offset from creation in seconds, SSE frame, is a delta); frame i has sequence_number i
Frames = list[tuple[float, bytes, bool]]


@dataclass(slots=True)
class BackgroundJob:
    """One background response: its planned timeline and whether it was cancelled."""

    t0: float
    #: offsets from ``t0`` (s, time scale applied) of ``in_progress`` and of the final status
    start_s: float
    done_s: float
    queued: dict[str, Any]
    in_progress: dict[str, Any]
    final: dict[str, Any]
    frames: Frames
    streamed: bool
    cancelled_at: float | None = None

    def status(self, now: float) -> str:
        """``queued``, ``in_progress``, ``cancelled`` or the final status, at ``now``."""
        if self.cancelled_at is not None:
            return "cancelled"
        if now < self.t0 + self.start_s:
            return "queued"
        if now < self.t0 + self.done_s:
            return "in_progress"
        return str(self.final["status"])

    def body(self, now: float) -> dict[str, Any]:
        """The response object as ``GET /v1/responses/{id}`` shows it at ``now``."""
        status = self.status(now)
        if status == "queued":
            return self.queued
        if status == "in_progress":
            return self.in_progress
        if status == "cancelled":
            return {**self.in_progress, "status": "cancelled"}
        return self.final

    def cancel(self, now: float) -> dict[str, Any]:
        """Cancel if still queued or running (cancelling again returns the same object)."""
        if self.status(now) in ("queued", "in_progress"):
            self.cancelled_at = now
        return self.body(now)

    def halted(self) -> bool:
        """Cancelled: a stream still sending stops."""
        return self.cancelled_at is not None

    def frames_after(self, starting_after: int | None, t0: float) -> Frames:
        """The frames after sequence number ``starting_after``, as offsets from ``t0`` (a
        resuming request's arrival); those due after a cancellation are left out."""
        first = 0 if starting_after is None else max(0, starting_after + 1)
        end = self.cancelled_at
        out: Frames = []
        for offset, frame, delta in self.frames[first:]:
            due = self.t0 + offset
            if end is not None and due > end:
                break
            out.append((max(0.0, due - t0), frame, delta))
        return out


def plan_job(
    t0: float,
    req: GenRequest,
    reply: Reply,
    built: responses_out.Built,
    timing: Timing,
    wait_ms: float,
) -> BackgroundJob:
    """The timeline of a background response created at ``t0`` that waits ``wait_ms`` (profile
    ms, before the time scale) in the queue."""
    wait_s = wait_ms * timing.time_scale / 1000.0
    queued = responses_out.response_object(req, built, "queued")
    in_progress = responses_out.response_object(req, built, "in_progress")
    final = responses_out.response_object(req, built, built.status)
    timed: list[tuple[float, dict[str, Any], bool]] = [
        (0.0, {"type": "response.created", "response": queued}, False),
        (0.0, {"type": "response.queued", "response": queued}, False),
    ]
    for tick, event, delta in responses_out.events(req, reply, built):
        if event["type"] == "response.created":
            continue  # created once, above, as queued
        timed.append((wait_s + timing.offset_s(tick), event, delta))
    data = responses_out.serialize([e for _, e, _ in timed])
    frames = [(at, frame, delta) for (at, _, delta), frame in zip(timed, data, strict=True)]
    if final.get("completed_at") is not None:
        # planned now, completed later: the timestamp of when it will be
        final["completed_at"] = int(time.time() + frames[-1][0])
    return BackgroundJob(
        t0=t0,
        start_s=frames[2][0],
        done_s=frames[-1][0],
        queued=queued,
        in_progress=in_progress,
        final=final,
        frames=frames,
        streamed=req.stream,
    )
