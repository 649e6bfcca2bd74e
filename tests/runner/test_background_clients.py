"""The SDK and raw clients follow a background response alike: polling, a dropped stream
resumed after its last sequence number, and the same reply."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from harness.emulator.profiles import load_profile
from harness.runner.background import send_background
from harness.transport.client import CallResult, Transport

#: queued 40 ms; every background stream drops mid-way (the response runs on)
PROFILE = load_profile("zero").derive(
    {
        "both": {
            "background_queue_ms": 40,
            "per_token_ms": 1,
            "faults": {"background_stream_drop": 1.0},
        }
    }
)
BODY = {"model": "gpt-4.1-mini", "input": "Tell me about tides.", "store": True, "temperature": 0}


@pytest.fixture(scope="module")
def followed(module_emulators: Any) -> dict[tuple[str, bool], CallResult]:
    server = module_emulators.start(PROFILE)

    async def follow(kind: str, stream: bool) -> CallResult:
        transport = Transport(server.base_url, "sk-test", kind=kind)  # type: ignore[arg-type]
        try:
            return await send_background(transport, {**BODY, "stream": stream}, None, 10.0)
        finally:
            await transport.aclose()

    async def plain() -> CallResult:
        transport = Transport(server.base_url, "sk-test", kind="raw")
        try:
            return await transport.send("responses", dict(BODY), None)
        finally:
            await transport.aclose()

    followed = {
        (kind, stream): asyncio.run(follow(kind, stream))
        for kind in ("sdk", "raw")
        for stream in (False, True)
    }
    # the reply a foreground request gets: what every way of following must come back with
    followed[("plain", False)] = asyncio.run(plain())
    return followed


@pytest.mark.parametrize("kind", ["sdk", "raw"])
def test_polling_finds_the_reply(followed: dict[tuple[str, bool], CallResult], kind: str) -> None:
    result = followed[(kind, False)]
    b = result.background
    assert result.ok and b is not None and b.final_status == "completed"
    assert b.polls >= 1 and b.queue_wait_ms is not None and b.resumes == 0
    assert result.usage is not None and result.usage.output_tokens > 0
    reference = followed[("plain", False)]
    assert reference.ok and reference.output_text and reference.background is None
    assert result.output_text == reference.output_text


@pytest.mark.parametrize("kind", ["sdk", "raw"])
def test_a_dropped_stream_is_resumed(
    followed: dict[tuple[str, bool], CallResult], kind: str
) -> None:
    result = followed[(kind, True)]
    b = result.background
    assert result.ok and b is not None and b.final_status == "completed"
    assert b.resumes == 1 and b.events_in_order is True
    # every event once: sequence numbers run 0 … events − 1 across the two streams
    assert result.last_sequence is not None and result.events == result.last_sequence + 1
    assert b.queue_wait_ms is not None and b.queue_wait_ms > 0
    assert result.finish == "completed" and result.usage is not None
    # the same words whichever client and whether polled or streamed (temperature 0)
    assert result.output_text and result.output_text == followed[("plain", False)].output_text
