"""OpenAI's prompt-caching rules, with one cache shared by both endpoints.

- Prompts shorter than 1,024 tokens are never cached.
- A prompt is cached as prefixes of 1,024 + 128·k tokens (``k ≥ 0``); a hit is the longest such
  prefix seen before, per model, within its TTL. At least one token is always computed, so a
  prefix may be at most ``input_tokens - 1`` long: an identical 2,000-token prompt sent twice
  gets 0 then 1,920 cached tokens.
- The key is the exact rendered token prefix (tools, schema, instructions, messages) and the
  model — not the endpoint: a Chat request warms Responses and vice versa. ``prompt_cache_key``
  is only a routing hint on OpenAI and does not partition anything here.
- A write becomes visible when the request's first token is due (its prefill is done), so two
  identical requests sent at the same moment both miss, as on a real server.
- ``cache_write_tokens`` = tokens of this request's longest cacheable prefix that were not
  already cached (the prefix it newly wrote). Re-sending a cached prompt writes 0.
- A request is *cold* when less than half of its prompt was seen before (at a message or cache
  block boundary, any length, within the TTL) — the first turn of a new conversation, but not
  a later turn or a repeat. The cold-prefix latency penalty keys off this.

Profiles may make one API reuse only a share of a hit (``cache_hit_share``, rounded down to the
grid) or miss a share of hits (``cache_hit_probability``); writes are never reduced.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from dataclasses import dataclass

from harness.emulator.prompt import Rendered

MIN_CACHE_TOKENS = 1024
CACHE_BLOCK_TOKENS = 128


def block_floor(tokens: float) -> int:
    """The largest cacheable length (0 or 1,024 + 128·k) not above ``tokens``."""
    if tokens < MIN_CACHE_TOKENS:
        return 0
    return MIN_CACHE_TOKENS + CACHE_BLOCK_TOKENS * int(
        (tokens - MIN_CACHE_TOKENS) // CACHE_BLOCK_TOKENS
    )


@dataclass(slots=True)  # not frozen: one per request, and a frozen init costs twice as much
class CacheResult:
    """What the cache did for one request (token counts are subsets of the input tokens)."""

    cached_tokens: int
    cache_write_tokens: int
    present_tokens: int
    seen_tokens: int
    cold: bool


@dataclass(frozen=True, slots=True)
class Prefixes:
    """A prompt's checkpoints (message and cache-block boundaries) and their prefix hashes.

    They depend only on the model and the prompt, so identical requests (the usual load) hash
    them once and only look them up afterwards.
    """

    n_tokens: int
    checkpoints: tuple[int, ...]
    digests: tuple[bytes, ...]
    is_block: tuple[bool, ...]
    longest_block: int


def prefixes(model: str, prompt: Rendered) -> Prefixes:
    """Hash every checkpoint prefix of ``prompt`` (keyed by ``model``, not the endpoint)."""
    n = prompt.n_tokens
    blocks = set(range(MIN_CACHE_TOKENS, n, CACHE_BLOCK_TOKENS))
    checkpoints = sorted(blocks.union(prompt.boundaries))
    view = memoryview(prompt.data)
    h = hashlib.blake2b(model.encode(), digest_size=16)
    digests: list[bytes] = []
    pos = 0
    for cp in checkpoints:
        h.update(view[pos * 4 : cp * 4])
        pos = cp
        digests.append(h.digest())
    return Prefixes(
        n,
        tuple(checkpoints),
        tuple(digests),
        tuple(cp in blocks for cp in checkpoints),
        max(blocks, default=0),
    )


class PromptCache:
    """Prefix hashes → (visible from, expires at), on the ``time.perf_counter`` clock."""

    def __init__(self, max_entries: int = 2_000_000) -> None:
        self._entries: dict[bytes, tuple[float, float]] = {}
        self._max = max_entries

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every prefix."""
        self._entries.clear()

    def lookup(
        self,
        keys: Prefixes,
        *,
        now: float,
        hit_share: float = 1.0,
        hit_probability: float = 1.0,
        rng: random.Random | None = None,
    ) -> CacheResult:
        """The counts for usage; pass ``keys.digests`` to :meth:`write` once the request's
        prefill is scheduled."""
        entries = self._entries
        present = seen = 0
        for cp, digest, is_block in zip(keys.checkpoints, keys.digests, keys.is_block, strict=True):
            entry = entries.get(digest)
            if entry is not None and entry[0] <= now < entry[1]:
                seen = cp
                if is_block:
                    present = cp
        cached = present
        if cached and hit_probability < 1.0 and (rng or random).random() >= hit_probability:
            cached = 0
        if cached and hit_share < 1.0:
            cached = block_floor(cached * hit_share)
        return CacheResult(
            cached_tokens=cached,
            cache_write_tokens=max(0, keys.longest_block - present),
            present_tokens=present,
            seen_tokens=seen,
            cold=seen * 2 < keys.n_tokens,
        )

    def write(
        self, digests: Iterable[bytes], *, now: float, ttl_s: float, visible_at: float | None = None
    ) -> None:
        """Store prefix hashes, visible from ``visible_at`` and kept ``ttl_s`` from ``now``."""
        entries = self._entries
        visible = now if visible_at is None else visible_at
        expires = now + ttl_s
        for digest in digests:
            old = entries.pop(digest, None)
            if old is not None and old[1] > now:
                entries[digest] = (min(old[0], visible), max(old[1], expires))
            else:
                entries[digest] = (visible, expires)
        if len(entries) > self._max:
            self._evict()

    def _evict(self) -> None:
        # Entries are re-inserted on every touch, so the front of the dict is least recent.
        drop = max(1, len(self._entries) - int(self._max * 0.9))
        for key in list(self._entries)[:drop]:
            del self._entries[key]
