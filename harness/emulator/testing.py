"""Helpers for tests that drive the emulator: exact-size prompts and raw SSE capture.

Nothing here is used by the emulator itself.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.emulator.content import WORDS
from harness.emulator.prompt import MESSAGE_FRAMING_TOKENS, count
from harness.emulator.truth import read_truth

#: Tokens a one-message prompt adds around its text: message framing + reply priming.
PROMPT_OVERHEAD_TOKENS = MESSAGE_FRAMING_TOKENS + 3


def nonce() -> str:
    """A short random tag that makes a prompt prefix new to the emulator's cache."""
    return secrets.token_hex(4)


def text_of_tokens(n: int, tag: str = "") -> str:
    """Text of exactly ``n`` tokens (``o200k_base``), starting with ``tag`` when given."""
    head = f"[{tag}]" if tag else ""
    words: list[str] = []
    used = count(head) if head else 0
    i = 0
    while used < n:
        words.append(WORDS[(i * 7 + len(tag)) % len(WORDS)])
        used += 1
        i += 1
    text = head + "".join((" " if (head or k) else "") + w for k, w in enumerate(words))
    actual = count(text)
    if actual != n:
        raise ValueError(f"cannot build exactly {n} tokens with tag {tag!r} (got {actual})")
    return text


def truth_record(path: Path, request_id: str, timeout_s: float = 5.0) -> dict[str, Any]:
    """The truth record of one request, waiting for it: the server writes it just *after* the
    last bytes went out, so a fast client can finish reading before the line exists."""
    deadline = time.monotonic() + timeout_s
    while True:
        if path.exists():
            for record in read_truth(path):
                if record["request_id"] == request_id:
                    return record
        if time.monotonic() > deadline:
            raise AssertionError(f"no truth record for {request_id} in {path}")
        time.sleep(0.005)


def sse_data(lines: Iterable[str]) -> list[str]:
    """The ``data:`` payloads of an SSE stream, in order."""
    return [line[len("data: ") :] for line in lines if line.startswith("data: ")]


def sse_events(lines: Iterable[str]) -> list[dict[str, Any]]:
    """Parsed JSON events of a Responses SSE stream (checks ``event:`` matches ``type``)."""
    out: list[dict[str, Any]] = []
    name: str | None = None
    for line in lines:
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            event = json.loads(line[len("data: ") :])
            if name is not None and event.get("type") != name:
                raise AssertionError(f"event line {name!r} != data type {event.get('type')!r}")
            out.append(event)
            name = None
    return out
