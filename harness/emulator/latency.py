"""Per-request delays and faults drawn from a profile, and precise sleeping.

Delays are drawn from one stream per API seeded by (seed, API), separate from the fault stream,
and every request makes the same draws, so the same request sequence gets the same draws under
every profile with the same distributions — ``regressed`` is then exactly 1.25× ``parity`` on
every Responses request.

Time to the first token, from request arrival::

    queue + slow_headers + (ttft + cold_penalty + prefill) × cold_factor + thinking

(``cold_penalty``/``cold_factor`` only on cold requests; ``prefill`` per uncached input token;
``thinking`` = reasoning tokens × per-token delay). Output token k is due ``k × per_token``
later. Every term is multiplied by the API's ``speed_factor`` and, on the clock only, by the
run's ``time_scale``.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import select
import selectors
import time
from dataclasses import asdict, dataclass
from typing import Any

from harness.emulator.profiles import ApiProfile

# asyncio's timers fire up to ~1 ms late on Linux: epoll_wait takes its timeout in whole ms and
# Python rounds it up, so a token due in 0.6 ms leaves at 1 ms. The emulator's loop therefore
# uses a selector whose timed waits end within tens of µs (PreciseEpollSelector, below).
#
# A wait whose loop has nothing else to do before its deadline finishes by blocking the loop
# in select() on its own epoll descriptor (it releases the GIL and burns no CPU): the most
# precise finish measured on these machines, and it ends early, handing back to the loop, as
# soon as a request or data arrives. This module once finished waits with a blocking
# time.sleep whenever at most two were pending: two concurrent streams then stood still for
# each other (+3 ms at p99 on a 40-token stream with a second one beside it; tails of 13-35 ms
# in the truth log), and since a stream whose waits all took that path never returned to the
# loop, a request arriving meanwhile went unread until the stream ended (~20 ms in one
# case). On another loop (uvloop, the application's own) a wait is a plain asyncio sleep, at
# most ~1 ms late.
_FINE_S = 0.0012


def _wait_readable(fd: int, timeout: float) -> bool | None:
    """Block in ``select()`` (µs timeout) until ``fd`` is readable (True) or ``timeout`` s
    passed (False); None when ``select()`` cannot take ``fd`` (≥ FD_SETSIZE)."""
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
    except ValueError:
        return None
    return bool(ready)


class PreciseEpollSelector(selectors.EpollSelector):
    """An epoll selector whose timed waits end within tens of µs of their timeout.

    A long wait first blocks in ``epoll_wait`` until shortly before its deadline (whole ms);
    the last stretch blocks in ``select()`` (a µs ``timeval``) on the epoll descriptor itself,
    which is readable once any descriptor it watches is; a zero-timeout ``epoll_wait`` then
    collects the events. One or two extra system calls per timed wait, no thread, no spinning.
    """

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None or timeout <= 0:
            return super().select(timeout)
        deadline = time.monotonic() + timeout
        if timeout - _FINE_S >= 0.001:
            ready = super().select(timeout - _FINE_S)
            if ready:
                return ready
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                return super().select(0)
        if _wait_readable(self.fileno(), timeout) is None:  # fall back to epoll's ms resolution
            return super().select(timeout)
        return super().select(0)


class PreciseLoop(asyncio.SelectorEventLoop):
    """The emulator's event loop: :class:`PreciseEpollSelector` where epoll is the selector."""

    def __init__(self) -> None:
        super().__init__(
            PreciseEpollSelector() if hasattr(selectors, "EpollSelector") else None
        )  # kqueue and IOCP already take finer timeouts

    def free_until(self, when: float) -> bool:
        """Nothing is ready to run and no timer is due before ``when`` (loop time)."""
        if self._ready:  # type: ignore[attr-defined]
            return False
        scheduled = self._scheduled  # type: ignore[attr-defined]
        return not scheduled or scheduled[0].when() >= when

    def block_until_io(self, timeout: float) -> bool:
        """Block the loop for ``timeout`` s or until a descriptor it watches is ready (True).

        A caller that gets True must let the loop run: a request has arrived, or data, or a
        call from another thread."""
        fileno = getattr(self._selector, "fileno", None)  # type: ignore[attr-defined]
        return fileno is None or _wait_readable(fileno(), timeout) is not False


def precise_loop() -> asyncio.AbstractEventLoop:
    """A new :class:`PreciseLoop`; also uvicorn's loop factory
    (``loop="harness.emulator.latency:precise_loop"``)."""
    return PreciseLoop()


async def sleep_until(deadline: float) -> None:
    """Sleep until ``time.perf_counter() >= deadline`` (absolute, so delays never accumulate),
    never holding up anything else due on the loop (see above)."""
    remaining = deadline - time.perf_counter()
    if remaining > _FINE_S:
        await asyncio.sleep(remaining - _FINE_S)
        remaining = deadline - time.perf_counter()
    if remaining <= 0:
        return
    loop = asyncio.get_running_loop()
    if (
        isinstance(loop, PreciseLoop)
        and loop.free_until(loop.time() + remaining)
        and not loop.block_until_io(remaining)
    ):
        return
    remaining = deadline - time.perf_counter()
    if remaining > 0:
        await asyncio.sleep(remaining)


def stream_rng(*parts: object) -> random.Random:
    """A random stream seeded by ``parts`` (stable across runs and Python versions)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest))


@dataclass(frozen=True, slots=True)
class Timing:
    """Delays applied to one request, in ms (speed factor applied, time scale not)."""

    queue_ms: float
    slow_headers_ms: float
    ttft_ms: float
    cold_penalty_ms: float
    cold_factor: float
    prefill_ms: float
    thinking_ms: float
    per_token_ms: float
    time_scale: float

    @property
    def headers_ms(self) -> float:
        """Planned time of the response headers (streams) from arrival."""
        return self.tick_ms(-1)

    @property
    def first_token_ms(self) -> float:
        """Planned time of output token 0 from arrival."""
        return self.tick_ms(0)

    def tick_ms(self, tick: int) -> float:
        """Planned time of output token ``tick`` (-1: the headers) from arrival."""
        # one flat expression: every request and every stream write asks for a tick
        headers = self.queue_ms + self.slow_headers_ms
        if tick < 0:
            return headers
        return (
            headers
            + (self.ttft_ms + self.cold_penalty_ms + self.prefill_ms) * self.cold_factor
            + self.thinking_ms
            + tick * self.per_token_ms
        )

    def offset_s(self, tick: int) -> float:
        """Clock offset of ``tick`` from arrival, in seconds (time scale applied)."""
        return self.tick_ms(tick) * self.time_scale / 1000.0

    def as_truth(self) -> dict[str, Any]:
        """The configured delays, for the truth log."""
        return {k: round(v, 3) for k, v in asdict(self).items()}


def plan_timing(
    api: ApiProfile,
    rng: random.Random,
    *,
    cold: bool,
    uncached_tokens: int,
    reasoning_tokens: int,
    slow_headers: bool,
    time_scale: float,
) -> Timing:
    """Draw one request's delays (always the same number of draws, so streams stay aligned)."""
    f = api.speed_factor
    queue = api.queue_ms.sample(rng)
    ttft = api.ttft_ms.sample(rng)
    cold_penalty = api.cold_penalty_ms.sample(rng)
    per_token = api.per_token_ms.sample(rng)
    slow = api.faults.slow_headers_ms.sample(rng)
    return Timing(
        queue_ms=queue * f,
        slow_headers_ms=slow * f if slow_headers else 0.0,
        ttft_ms=ttft * f,
        cold_penalty_ms=cold_penalty * f if cold else 0.0,
        cold_factor=api.cold_ttft_factor if cold else 1.0,
        prefill_ms=api.prefill_ms_per_1k_tokens * uncached_tokens / 1000.0 * f,
        thinking_ms=reasoning_tokens * per_token * f,
        per_token_ms=per_token * f,
        time_scale=time_scale,
    )


def choose_fault(api: ApiProfile, rng: random.Random, *, stream: bool) -> str | None:
    """At most one fault for this request, by the profile's rates."""
    if not api.faults.any:
        return None
    u = rng.random()
    acc = 0.0
    for name, rate in api.faults.rates(stream=stream).items():
        acc += rate
        if u < acc:
            return name
    return None
