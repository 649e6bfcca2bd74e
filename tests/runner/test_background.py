"""Scenario ``background: true``: the runner polls or follows the stream of each Responses
request, resumes a dropped stream with ``starting_after``, and records what it saw."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from harness.cli.run import finish_run
from harness.emulator.profiles import load_profile
from harness.records import Observation, RunMeta
from harness.rundir import read_meta, read_observations
from harness.runner.background import send_background
from harness.runner.cleanup import ServerObjects
from harness.runner.execute import RunOptions, run
from harness.runner.plan import build_plan, dry_run
from harness.scenario.load import load_scenario
from harness.summary import Summary
from harness.transport.client import CallResult, Transport

#: every background response waits exactly this long in the queue (sigma 0)
QUEUE_MS = 80.0
POLL_MS = 25.0
#: scheduling slack on a shared 2-core machine
SLACK_MS = 60.0

SCENARIO = f"""\
version: 1
name: bg
model: gpt-4.1-mini
defaults: {{temperature: 0, max_output_tokens: 64, store: true, stream: false}}
arms: [chat, responses]
repeats: 2
background: true
background_poll_ms: {POLL_MS}
prompts:
  - id: polled
    input: "Say hello to the team."
  - id: streamed
    input: "Tell me about tides."
    params: {{stream: true}}
"""
PROFILE = f"""\
extends: zero
both:
  background_queue_ms: {QUEUE_MS}
  ttft_ms: 10
  per_token_ms: 1
  faults: {{background_stream_drop: 1.0}}
"""


@dataclass
class BackgroundRun:
    observations: list[Observation]
    summary: Summary
    output: str
    report: str
    markdown: str
    deleted: int | None


@pytest.fixture(scope="module")
def background_run(tmp_path_factory: pytest.TempPathFactory) -> BackgroundRun:
    root = tmp_path_factory.mktemp("background")
    (root / "bg.yaml").write_text(SCENARIO, encoding="utf-8")
    (root / "profile.yaml").write_text(PROFILE, encoding="utf-8")
    options = RunOptions(
        out=root / "runs",
        seed=3,
        progress=False,
        emulator_profile=str(root / "profile.yaml"),
    )
    result = run([root / "bg.yaml"], options)
    out = io.StringIO()
    assert finish_run(result, Console(file=out, width=200), root / "report") == 0
    summary = Summary.model_validate_json((result.run_dir / "summary.json").read_text())
    return BackgroundRun(
        list(read_observations(result.run_dir / "observations.jsonl")),
        summary,
        out.getvalue(),
        (root / "report" / "report.html").read_text(encoding="utf-8"),
        (root / "report" / "summary.md").read_text(encoding="utf-8"),
        read_meta(result.run_dir).stored_responses_deleted,
    )


def _responses(run_: BackgroundRun, prompt: str) -> list[Observation]:
    return [o for o in run_.observations if o.arm == "responses" and o.prompt_id == prompt]


def test_polled_requests_report_queue_wait_and_polling(background_run: BackgroundRun) -> None:
    polled = _responses(background_run, "polled")
    assert len(polled) == 2
    for o in polled:
        b = o.background
        assert o.ok and b is not None and b.final_status == "completed", o
        assert b.time_to_queued_ms is not None and b.queue_wait_ms is not None
        # the first poll that saw it running came after the server's 80 ms wait, measured from
        # when the create returned: the wait lies inside queued + wait
        assert b.time_to_queued_ms + b.queue_wait_ms >= QUEUE_MS
        assert b.polls >= 1 and b.poll_interval_ms == POLL_MS
        # the poll that saw it done came one interval after the last that saw it running
        assert b.poll_lag_max_ms is not None and b.poll_lag_max_ms >= POLL_MS
        assert b.total_ms is not None
        assert b.poll_lag_max_ms <= b.total_ms - b.time_to_queued_ms
        assert b.resumes == 0 and b.events_in_order is None
        # the request's latency is until the reply was seen, not the create's round trip
        assert o.total_ms is not None and o.total_ms >= QUEUE_MS
        assert b.total_ms >= b.time_to_queued_ms + b.queue_wait_ms
        assert o.output_text
    assert all(o.background is None for o in background_run.observations if o.arm == "chat")


def test_dropped_stream_resumes_after_its_last_sequence_number(
    background_run: BackgroundRun,
) -> None:
    streamed = _responses(background_run, "streamed")
    chat = {o.repeat: o for o in background_run.observations if o.arm == "chat"}
    assert len(streamed) == 2
    for o in streamed:
        b = o.background
        assert o.ok and b is not None and b.final_status == "completed", o
        # every stream drops once (background_stream_drop: 1.0) and the resumed one finishes
        assert b.resumes == 1 and len(b.resumed_after) == 1 and b.resumed_after[0] >= 2
        assert b.events_in_order is True
        assert b.polls == 0 and b.poll_interval_ms is None
        # the first token follows in_progress, so TTFT holds the whole queue wait
        assert b.queue_wait_ms is not None and b.queue_wait_ms > 0
        assert o.ttft_ms is not None and o.ttft_ms >= QUEUE_MS
        assert o.ttft_ms >= b.queue_wait_ms
        # the same words as chat (parity content, temperature 0): the reply came whole
        assert o.output_text and o.output_text == chat[o.repeat].output_text


def test_summary_report_and_terminal_show_background_mode(
    background_run: BackgroundRun,
) -> None:
    arms = background_run.summary.scenarios[0].arms
    assert arms["chat"].background is None
    stats = arms["responses"].background
    assert stats is not None
    assert stats.requests == 4 and stats.polled_requests == 2 and stats.streamed_requests == 2
    assert stats.resumed_requests == 2 and stats.resumes == 2 and stats.events_out_of_order == 0
    assert stats.final_status == {"completed": 4}
    assert stats.poll_interval_ms == POLL_MS
    assert stats.queue_wait_ms is not None and stats.queue_wait_ms.n == 4
    assert "Background mode" in background_run.report
    assert "| background | requests | to queued |" in background_run.markdown
    assert "background mode" in background_run.output
    # every response the run stored (background ones are stored) was deleted at the end
    assert background_run.deleted == 4


@pytest.mark.timing
def test_waits_are_the_servers_within_a_poll(background_run: BackgroundRun) -> None:
    """Polling sees the wait at most one interval late; a stream sees it between its events."""
    for o in _responses(background_run, "polled"):
        b = o.background
        assert b is not None and b.queue_wait_ms is not None and b.poll_lag_max_ms is not None
        assert b.queue_wait_ms <= QUEUE_MS + POLL_MS + SLACK_MS
        assert b.poll_lag_max_ms <= POLL_MS + SLACK_MS
    for o in _responses(background_run, "streamed"):
        b = o.background
        assert b is not None and b.queue_wait_ms is not None
        assert QUEUE_MS - SLACK_MS / 2 <= b.queue_wait_ms <= QUEUE_MS + SLACK_MS


def test_background_records_round_trip(background_run: BackgroundRun) -> None:
    o = _responses(background_run, "streamed")[0]
    again = Observation.model_validate(json.loads(o.model_dump_json()))
    assert again.background == o.background


def test_a_stopped_run_cancels_then_deletes_what_it_was_following(emulators: Any) -> None:
    """Ctrl-C while a background response is queued: the run cancels it (it would run on,
    billed) and deletes it with the other stored responses."""
    server = emulators.start(load_profile("zero").derive({"both": {"background_queue_ms": 5000}}))
    store = server.app.emulator.store

    async def stop_while_queued() -> tuple[str, str, RunMeta]:
        transport = Transport(server.base_url, "sk-test")
        objects = ServerObjects()
        kwargs = {"model": "gpt-4.1-mini", "input": "hi", "store": True}
        task = asyncio.create_task(
            send_background(transport, kwargs, None, 50.0, tracker=objects.of("responses"))
        )
        while not objects.running:
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        ((arm, rid),) = objects.running
        assert objects.stored_ids == [(arm, rid)]
        job = store.get(rid).job
        meta = RunMeta.model_construct(stored_responses_deleted=None, conversations_deleted=None)
        await objects.clean_up({arm: transport}, meta)
        status = job.status(time.perf_counter()) if job is not None else "-"
        again = RunMeta.model_construct(stored_responses_deleted=None, conversations_deleted=None)
        await objects.clean_up({arm: transport}, again)  # nothing is sent twice
        await transport.aclose()
        assert again.stored_responses_deleted == 0
        return rid, status, meta

    rid, status, meta = asyncio.run(stop_while_queued())
    assert status == "cancelled" and meta.stored_responses_deleted == 1
    assert meta.conversations_deleted is None  # the run made none
    assert store.get(rid) is None


def test_the_plan_shows_background_on_responses_requests_only(tmp_path: Path) -> None:
    scenario = tmp_path / "bg.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    planned = list(dry_run(build_plan(load_scenario(scenario), repeats=1)))
    assert {p.conversation.api: p.kwargs().get("background") for p in planned} == {
        "chat": None,
        "responses": True,
    }
    assert all(p.kwargs()["store"] is True for p in planned)


class _Flaky:
    """A transport whose background response is queued, then whose polls answer ``replies``
    in turn (a status, or None for a failed poll)."""

    def __init__(self, replies: list[str | None]) -> None:
        self.replies = replies
        self.polls = 0

    async def send(self, api: str, kwargs: dict[str, Any], body: bytes | None) -> CallResult:
        return CallResult(status=200, ok=True, response_id="resp_1", finish="queued")

    async def retrieve(self, response_id: str) -> CallResult:
        reply = self.replies[self.polls]
        self.polls += 1
        if reply is None:
            return CallResult(status=500, error_type="server_error", error_message="boom")
        return CallResult(status=200, ok=True, response_id=response_id, finish=reply)


async def _no_wait(_: float) -> None:
    return None


@pytest.mark.parametrize(
    ("replies", "ok", "final", "polls"),
    [
        (["queued", None, None, "in_progress", "completed"], True, "completed", 5),
        (["queued", None, None, None, "completed"], False, None, 4),
        (["cancelled"], False, "cancelled", 1),
    ],
)
def test_failed_polls_are_asked_again_before_the_request_fails(
    replies: list[str | None], ok: bool, final: str | None, polls: int
) -> None:
    flaky = _Flaky(replies)
    kwargs = {"model": "m", "input": "hi", "store": True}
    result = asyncio.run(send_background(flaky, kwargs, None, 10.0, sleep=_no_wait))  # type: ignore[arg-type]
    assert result.ok is ok and flaky.polls == polls
    assert result.background is not None and result.background.final_status == final
    assert result.background.polls == polls


class _Dropping:
    """A transport whose background stream drops after sequence number 5; the resumed stream
    starts at ``resumed_from`` and finishes."""

    def __init__(self, resumed_from: int) -> None:
        self.resumed_from = resumed_from
        self.starting_after: list[int | None] = []

    async def send(self, api: str, kwargs: dict[str, Any], body: bytes | None) -> CallResult:
        return CallResult(
            status=200,
            error_type="stream_interrupted",
            response_id="resp_1",
            events=6,
            first_sequence=0,
            last_sequence=5,
        )

    async def retrieve(
        self, response_id: str, *, stream: bool = False, starting_after: int | None = None
    ) -> CallResult:
        self.starting_after.append(starting_after)
        first = self.resumed_from
        return CallResult(
            status=200,
            ok=True,
            response_id=response_id,
            finish="completed",
            events=4,
            first_sequence=first,
            last_sequence=first + 3,
        )


@pytest.mark.parametrize(("resumed_from", "in_order"), [(6, True), (8, False), (5, False)])
def test_a_resumed_stream_is_in_order_only_when_it_starts_right_after_the_last_event(
    resumed_from: int, in_order: bool
) -> None:
    """8: two events never came (a gap); 5: the last one came twice."""
    dropping = _Dropping(resumed_from)
    kwargs = {"model": "m", "input": "hi", "store": True, "stream": True}
    result = asyncio.run(send_background(dropping, kwargs, None, 10.0))  # type: ignore[arg-type]
    assert dropping.starting_after == [5]
    b = result.background
    assert result.ok and b is not None and b.final_status == "completed"
    assert (b.resumes, b.resumed_after, b.events_in_order) == (1, [5], in_order)
    assert result.events == 6 + 4 and result.last_sequence == resumed_from + 3


class _SlowCreate(_Flaky):
    """A create that takes ``CREATE_S`` to come back, then polls that answer at once."""

    CREATE_S = 0.06

    async def send(self, api: str, kwargs: dict[str, Any], body: bytes | None) -> CallResult:
        await asyncio.sleep(self.CREATE_S)
        return await super().send(api, kwargs, body)


def test_queue_wait_runs_from_the_create_reply_not_from_the_send() -> None:
    """The create's own round trip is time_to_queued; the queue wait starts when it returned
    (here the first poll already sees the response running: no wait to speak of)."""
    slow = _SlowCreate(["in_progress", "completed"])
    kwargs = {"model": "m", "input": "hi", "store": True}
    result = asyncio.run(send_background(slow, kwargs, None, 10.0, sleep=_no_wait))  # type: ignore[arg-type]
    b = result.background
    assert b is not None and b.time_to_queued_ms is not None and b.queue_wait_ms is not None
    assert b.time_to_queued_ms >= 0.9 * _SlowCreate.CREATE_S * 1000  # timers may fire a hair early
    assert b.queue_wait_ms < _SlowCreate.CREATE_S * 1000 / 2  # a poll's own time, not the create's
    assert b.total_ms is not None and b.total_ms >= b.time_to_queued_ms + b.queue_wait_ms
