"""Background responses through the official SDK: store required, queued → in_progress →
completed on the clock, polling, cancel, and a dropped stream resumed with ``starting_after``.
Every body and event validates against OpenAI's spec."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx2
import openai
import pytest

from harness.emulator.background import NOT_STREAMED, STORE_REQUIRED, SYNCHRONOUS
from harness.emulator.profiles import Profile, load_profile
from harness.emulator.testing import sse_events
from harness.translate.spec import schema_problems, stream_event_schemas

MODEL = "gpt-4.1-mini"
#: queued for 80 ms, then ~2 ms per output token: fast, yet every state lasts long enough to see
SLOW = load_profile("zero").derive(
    {"responses": {"background_queue_ms": 80, "per_token_ms": 2, "ttft_ms": 20}}
)


def _valid(name: str, obj: Any) -> None:
    problems = schema_problems(name, obj)
    assert not problems, "\n".join(problems[:5])


def _valid_events(events: list[dict[str, Any]]) -> None:
    schemas = stream_event_schemas()
    for event in events:
        _valid(schemas[event["type"]], event)


@pytest.fixture(scope="module")
def slow(module_emulators: Any) -> openai.OpenAI:
    client: openai.OpenAI = module_emulators.client(module_emulators.start(SLOW))
    return client


def test_background_needs_store(emulator_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        emulator_client.responses.create(model=MODEL, input="hi", background=True, store=False)
    body = err.value.response.json()
    _valid("ErrorResponse", body)
    assert body["error"]["message"] == STORE_REQUIRED
    assert body["error"]["param"] == "background"
    # store left out defaults to true on Responses, so background alone is fine
    created = emulator_client.responses.create(model=MODEL, input="hi", background=True)
    assert created.background is True and created.store is True


def test_polling_walks_queued_in_progress_completed(slow: openai.OpenAI) -> None:
    started = time.perf_counter()
    raw = slow.responses.with_raw_response.create(model=MODEL, input="hello", background=True)
    created = raw.http_response.json()
    _valid("Response", created)
    assert created["status"] == "queued" and created["background"] is True
    assert created["output"] == [] and "usage" not in created
    seen: list[tuple[float, str]] = []
    while not seen or seen[-1][1] in ("queued", "in_progress"):
        body = slow.responses.with_raw_response.retrieve(created["id"]).http_response.json()
        _valid("Response", body)
        seen.append((time.perf_counter() - started, body["status"]))
        time.sleep(0.005)
    statuses = [s for _, s in seen]
    assert statuses[-1] == "completed"
    # in order, each state seen (queued 80 ms, then ≥ 20 ms to the first token)
    order = [s for i, s in enumerate(statuses) if i == 0 or statuses[i - 1] != s]
    assert order == ["queued", "in_progress", "completed"]
    first_running = next(t for t, s in seen if s != "queued")
    assert first_running >= 0.08
    assert body["output"] and body["usage"]["output_tokens"] > 0
    assert body["completed_at"] is not None


def test_dropped_stream_resumes_without_losing_or_repeating_an_event(
    module_emulators: Any,
) -> None:
    dropping = SLOW.derive({"responses": {"faults": {"background_stream_drop": 1.0}}})
    client = module_emulators.client(module_emulators.start(dropping))
    lines: list[str] = []
    with (
        client.responses.with_streaming_response.create(
            model=MODEL, input="Tell me about tides.", background=True, stream=True
        ) as resp,
        pytest.raises(httpx2.RemoteProtocolError),
    ):
        lines.extend(resp.iter_lines())
    first = sse_events(lines)
    assert [e["type"] for e in first[:3]] == [
        "response.created",
        "response.queued",
        "response.in_progress",
    ]
    assert first[0]["response"]["status"] == "queued"
    assert not first[-1]["type"].endswith(("completed", "failed", "incomplete"))
    last = first[-1]["sequence_number"]

    # the SDK's typed resume: every event parses into its model
    rid = first[0]["response"]["id"]
    rest = list(client.responses.retrieve(rid, stream=True, starting_after=last))
    resumed = [e.model_dump(mode="json", exclude_unset=True) for e in rest]
    every = first + resumed
    _valid_events(every)
    assert [e["sequence_number"] for e in every] == list(range(len(every)))
    assert every[-1]["type"] == "response.completed"
    text = "".join(e["delta"] for e in every if e["type"] == "response.output_text.delta")
    final = client.responses.retrieve(rid)
    assert text == final.output_text != ""

    # resuming from any point gives exactly the events after it
    middle = len(every) // 2
    again = list(client.responses.retrieve(final.id, stream=True, starting_after=middle))
    assert [e.sequence_number for e in again] == list(range(middle + 1, len(every)))


def test_cancel_per_spec(slow: openai.OpenAI, module_emulators: Any) -> None:
    queued = slow.responses.create(model=MODEL, input="hi", background=True)
    cancelled = slow.responses.with_raw_response.cancel(queued.id).http_response.json()
    _valid("Response", cancelled)
    assert cancelled["status"] == "cancelled" and cancelled["background"] is True
    time.sleep(0.15)  # past when it would have completed
    assert slow.responses.retrieve(queued.id).status == "cancelled"
    assert slow.responses.cancel(queued.id).status == "cancelled"  # idempotent

    done = slow.responses.create(model=MODEL, input="hi", background=True)
    while slow.responses.retrieve(done.id).status != "completed":
        time.sleep(0.01)
    assert slow.responses.cancel(done.id).status == "completed"  # finished: unchanged

    foreground = slow.responses.create(model=MODEL, input="hi", store=True)
    with pytest.raises(openai.BadRequestError) as err:
        slow.responses.cancel(foreground.id)
    _valid("ErrorResponse", err.value.response.json())
    assert err.value.response.json()["error"]["message"] == SYNCHRONOUS
    with pytest.raises(openai.NotFoundError):
        slow.responses.cancel("resp_missing")


def test_cancel_ends_a_background_stream(module_emulators: Any) -> None:
    waiting: Profile = SLOW.derive({"responses": {"background_queue_ms": 3000}})
    server = module_emulators.start(waiting)
    client = module_emulators.client(server)
    other = module_emulators.client(server)
    events: list[dict[str, Any]] = []
    started = time.perf_counter()
    with client.responses.with_streaming_response.create(
        model=MODEL, input="hi", background=True, stream=True
    ) as resp:
        lines = resp.iter_lines()
        head: list[str] = []
        while len(sse_events(head)) < 2:
            head.append(next(lines))
        rid = sse_events(head)[0]["response"]["id"]
        threading.Timer(0.05, lambda: other.responses.cancel(rid)).start()
        events = sse_events([*head, *lines])
    assert time.perf_counter() - started < 2.0  # ended by the cancel, not the 3 s queue
    assert [e["type"] for e in events] == ["response.created", "response.queued"]
    assert client.responses.retrieve(rid).status == "cancelled"


def test_stream_resume_errors(slow: openai.OpenAI) -> None:
    polled = slow.responses.create(model=MODEL, input="hi", background=True)
    with pytest.raises(openai.BadRequestError) as err:
        list(slow.responses.retrieve(polled.id, stream=True))
    assert err.value.response.json()["error"]["message"] == NOT_STREAMED
    foreground = slow.responses.create(model=MODEL, input="hi", store=True)
    with pytest.raises(openai.BadRequestError):
        list(slow.responses.retrieve(foreground.id, stream=True, starting_after=0))
    with pytest.raises(openai.BadRequestError, match="starting_after"):
        slow.responses.with_raw_response.retrieve(
            polled.id, extra_query={"stream": "true", "starting_after": "x"}
        )
