"""Reply headers: identity, request id, processing time and OpenAI's rate-limit headers.

Rate limits are token buckets refilled continuously over a minute (``rate_limits`` in the
profile), per model, like OpenAI's. They are reported, not enforced: throttling is injected
only by the ``rate_limit`` fault, so benchmarks are never limited by the emulator's own
accounting.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

from harness.emulator import EMULATOR_ID, PROFILE_HEADER
from harness.emulator.profiles import RateLimits

Headers = list[tuple[bytes, bytes]]

_STATIC: Headers = [(b"x-emulator", EMULATOR_ID.encode()), (b"openai-version", b"2020-10-01")]
JSON = (b"content-type", b"application/json")
SSE = (b"content-type", b"text/event-stream; charset=utf-8")


def request_id() -> str:
    """A fresh ``req_…`` id (32 hex digits, as OpenAI's)."""
    return "req_" + os.urandom(16).hex()


def duration(seconds: float) -> str:
    """OpenAI's reset format: ``20ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:.0f}s"


@dataclass(slots=True)
class _Bucket:
    limit: int
    level: float
    at: float

    def take(self, amount: float, now: float) -> tuple[int, float]:
        """Refill, take ``amount``; (remaining, seconds until full)."""
        rate = self.limit / 60.0
        self.level = min(self.limit, self.level + (now - self.at) * rate)
        self.at = now
        self.level = max(0.0, self.level - amount)
        return math.floor(self.level), (self.limit - self.level) / rate


@dataclass(slots=True)
class _ModelBuckets:
    requests: _Bucket
    tokens: _Bucket
    #: the two ``x-ratelimit-limit-*`` headers, which never change
    limit_headers: tuple[tuple[bytes, bytes], tuple[bytes, bytes]]

    @classmethod
    def full(cls, limits: RateLimits, now: float) -> _ModelBuckets:
        return cls(
            _Bucket(limits.requests_per_min, limits.requests_per_min, now),
            _Bucket(limits.tokens_per_min, limits.tokens_per_min, now),
            (
                (b"x-ratelimit-limit-requests", b"%d" % limits.requests_per_min),
                (b"x-ratelimit-limit-tokens", b"%d" % limits.tokens_per_min),
            ),
        )


class RateLimiter:
    """Per-model request and token buckets."""

    def __init__(self, limits: RateLimits) -> None:
        self._limits = limits
        self._buckets: dict[str, _ModelBuckets] = {}

    def headers(self, model: str, tokens: int, *, exhausted: float | None = None) -> Headers:
        """The six ``x-ratelimit-*`` headers after charging one request of ``tokens``.

        ``exhausted`` (seconds) reports the request limit as used up for that long (a 429).
        """
        now = time.monotonic()
        buckets = self._buckets.get(model)
        if buckets is None:
            buckets = self._buckets[model] = _ModelBuckets.full(self._limits, now)
        req_left, req_reset = buckets.requests.take(1, now)
        tok_left, tok_reset = buckets.tokens.take(tokens, now)
        if exhausted is not None:
            req_left, req_reset = 0, exhausted
        return [
            *buckets.limit_headers,
            (b"x-ratelimit-remaining-requests", b"%d" % req_left),
            (b"x-ratelimit-remaining-tokens", b"%d" % tok_left),
            (b"x-ratelimit-reset-requests", duration(req_reset).encode()),
            (b"x-ratelimit-reset-tokens", duration(tok_reset).encode()),
        ]


def profile_header(name: str) -> tuple[bytes, bytes]:
    """``x-emulator-profile: <name>`` (header values are ASCII; anything else becomes ``?``)."""
    return (PROFILE_HEADER.encode(), name.encode("ascii", "replace"))


def base_headers(
    req_id: str, content_type: tuple[bytes, bytes], profile: tuple[bytes, bytes] | None = None
) -> Headers:
    """Headers every reply carries (``openai-processing-ms`` is added when it is sent)."""
    extra = [profile] if profile is not None else []
    return [*_STATIC, *extra, (b"x-request-id", req_id.encode()), content_type]
