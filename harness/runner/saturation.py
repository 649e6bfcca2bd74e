"""Is the client measuring the server, or its own queue? An event-loop lag monitor.

Every timestamp the runner takes is taken by the event loop. When the loop has more work than
one core can do (many streams parsed by the SDK at high concurrency, on a small machine), a
chunk that arrived at t is seen at t + queueing delay: latencies then measure the client.

A task wakes every :data:`TICK_S` and records how late it woke (the loop's lag) and how long
the loop sat idle in its selector since the last tick (:class:`TimedSelector`; the loop must
be made by :func:`new_event_loop`). A request is *saturated* when, during it, the lag exceeded
:data:`LAG_BOUND_MS` while the loop was busy — not waiting for the network — at least
:data:`BUSY_BOUND` of the time, and other requests were in flight (``--concurrency`` > 1): the
delay was the client's own queue of work. Busy is measured as time outside the selector, not
as CPU time, so a loop that always has work queued counts as busy even on a machine where
other processes take most of the CPU. Lag with an idle loop (the machine paused the process)
is not the client's queue and is not flagged as saturation, but each request keeps its
``loop_lag_ms`` and the summary counts the late ones.

Measured (2 cores, emulator in its own process, 3 ms TTFT, 20-token streams): concurrency 32
with the SDK client, 475 of 600 requests saturated, loop lag p50 212 ms, wire TTFT p50 229 ms;
concurrency 1, 0 of 200 (lag p50 1.6 ms, loop CPU 63 %).
"""

from __future__ import annotations

import asyncio
import contextlib
import selectors
import time
import weakref
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harness.records import LAG_BOUND_MS

__all__ = [
    "BUSY_BOUND",
    "LAG_BOUND_MS",
    "TICK_S",
    "LoopMonitor",
    "LoopStats",
    "TimedSelector",
    "Window",
    "new_event_loop",
]

#: How often the monitor wakes (its own cost: ~200 wake-ups a second, a few µs each).
TICK_S = 0.005
#: Share of wall time the loop's thread spent on the CPU for the lag to count as its own.
BUSY_BOUND = 0.8


class TimedSelector(selectors.DefaultSelector):
    """The default selector, adding up the time the loop spends waiting in it (idle)."""

    def __init__(self) -> None:
        super().__init__()
        self.idle_s = 0.0

    def select(self, timeout: float | None = None) -> Any:
        t0 = time.perf_counter()
        try:
            return super().select(timeout)
        finally:
            self.idle_s += time.perf_counter() - t0


_SELECTORS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TimedSelector] = (
    weakref.WeakKeyDictionary()
)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """An event loop whose idle time :class:`LoopMonitor` can read."""
    selector = TimedSelector()
    loop = asyncio.SelectorEventLoop(selector)
    _SELECTORS[loop] = selector
    return loop


@dataclass(frozen=True)
class Window:
    """The loop during one request: its worst lag and how busy its thread was."""

    lag_ms: float
    busy: float

    @property
    def saturated(self) -> bool:
        return self.lag_ms > LAG_BOUND_MS and self.busy >= BUSY_BOUND


class LoopStats(BaseModel):
    """What the monitor saw over a whole run (``meta.json`` → ``loop``)."""

    model_config = ConfigDict(extra="forbid")

    ticks: int
    lag_p50_ms: float
    lag_p99_ms: float
    lag_max_ms: float
    loop_busy_share: float = Field(description="time the loop was not waiting in its selector")
    loop_cpu_share: float = Field(description="CPU time of the loop's thread / wall time")
    process_cpu_cores: float = Field(description="CPU time of the whole process / wall time")
    lag_bound_ms: float = LAG_BOUND_MS
    busy_bound: float = BUSY_BOUND


class LoopMonitor:
    """Samples the running loop's lag and CPU; :meth:`window` answers for a request."""

    def __init__(self, tick_s: float = TICK_S) -> None:
        self._tick = tick_s
        self._at = array("d")  # perf_counter of each wake-up
        self._lag = array("d")  # ms late
        self._busy = array("d")  # seconds the loop was not idle in its selector, cumulative
        self._cpu = array("d")  # thread CPU seconds at the wake-up
        self._task: asyncio.Task[None] | None = None
        self._selector: TimedSelector | None = None
        self._wall0 = self._proc0 = self._wall1 = self._proc1 = 0.0

    async def __aenter__(self) -> LoopMonitor:
        self._selector = _SELECTORS.get(asyncio.get_running_loop())
        self._wall0, self._proc0 = time.perf_counter(), time.process_time()
        self._sample(0.0)
        self._task = asyncio.create_task(self._run(), name="loop-monitor")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):  # our own cancel, not the run's
                await self._task
        self._sample(0.0)
        self._wall1, self._proc1 = time.perf_counter(), time.process_time()

    def _sample(self, lag_s: float) -> None:
        now = time.perf_counter()
        self._at.append(now)
        self._lag.append(max(0.0, lag_s) * 1000.0)
        cpu = time.thread_time()
        self._cpu.append(cpu)
        # Without a timed selector (a loop made elsewhere), CPU time stands in for busy time.
        self._busy.append(now - self._selector.idle_s if self._selector is not None else cpu)

    async def _run(self) -> None:
        while True:
            due = time.perf_counter() + self._tick
            await asyncio.sleep(self._tick)
            self._sample(time.perf_counter() - due)

    def window(self, start: float, end: float) -> Window:
        """The loop between two ``time.perf_counter()`` readings (a request's send and end).

        The first wake-up after ``end`` counts too: a tick overdue at the end of a request
        carries the lag the request's last timestamps suffered.
        """
        lo = bisect_left(self._at, start)
        hi = min(len(self._at), bisect_right(self._at, end) + 1)
        if hi <= lo:
            return Window(lag_ms=0.0, busy=0.0)
        lag = max(self._lag[lo:hi])
        first = max(0, lo - 1)
        wall = self._at[hi - 1] - self._at[first]
        busy = (self._busy[hi - 1] - self._busy[first]) / wall if wall > 0 else 0.0
        return Window(lag_ms=lag, busy=min(1.0, busy))

    @staticmethod
    def _share(cumulative: array[float], wall: float) -> float:
        return round(min(1.0, (cumulative[-1] - cumulative[0]) / wall), 4) if cumulative else 0.0

    def stats(self) -> LoopStats:
        """The whole run (after the monitor stopped)."""
        lags = sorted(self._lag)
        n = len(lags)
        wall = max(1e-9, self._at[-1] - self._at[0]) if n else 1e-9
        proc_wall = max(1e-9, self._wall1 - self._wall0)

        def q(p: float) -> float:
            return lags[min(n - 1, int(p * (n - 1) + 0.5))] if n else 0.0

        return LoopStats(
            ticks=n,
            lag_p50_ms=round(q(0.5), 3),
            lag_p99_ms=round(q(0.99), 3),
            lag_max_ms=round(lags[-1] if n else 0.0, 3),
            loop_busy_share=round(
                min(1.0, (self._busy[-1] - self._busy[0]) / wall) if n else 0.0, 4
            ),
            loop_cpu_share=round(min(1.0, (self._cpu[-1] - self._cpu[0]) / wall) if n else 0.0, 4),
            process_cpu_cores=round((self._proc1 - self._proc0) / proc_wall, 4),
        )
