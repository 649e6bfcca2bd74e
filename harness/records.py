"""Typed records the harness writes: one :class:`Observation` per planned request, run metadata.

Every file carries ``schema_version``; the readers (:mod:`harness.rundir`) refuse versions they
do not know.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

OBSERVATION_SCHEMA_VERSION = 1

#: ``error_type`` of a planned tool-result turn that was not needed (the reply called no
#: tool): recorded so every planned request has a record, but neither a request nor an error.
NOT_SENT = "not_sent"
#: ``error_type`` of a replayed request its cassette has no interaction for (nothing was sent).
CASSETTE_MISS = "cassette_miss"
#: error_type of the turns after one whose conversation state the server lost
#: (``previous_response_not_found``, a deleted conversation): skipped, not resent stateless
STATE_LOST = "state_lost"
META_SCHEMA_VERSION = 1

Api = Literal["chat", "responses"]
#: The output format a request asked for; JSON similarity is scored only where JSON was asked.
OutputFormatName = Literal["text", "json_object", "json_schema"]
JSON_OUTPUT_FORMATS: frozenset[str] = frozenset({"json_object", "json_schema"})
Finish = Literal[
    "completed", "incomplete", "failed", "error", "length", "tool_calls", "stop", "content_filter"
]


class Usage(BaseModel):
    """Token usage normalised across APIs. ``cached_tokens`` is a subset of ``input_tokens``."""

    model_config = ConfigDict(extra="forbid")

    input_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0


class Attempt(BaseModel):
    """One HTTP attempt of a request (retries add attempts; the last one is the result)."""

    model_config = ConfigDict(extra="forbid")

    status: int | None = None
    error_type: str | None = None
    error_message: str | None = None
    retry_after_ms: float | None = None
    waited_ms: float = 0.0
    total_ms: float | None = None


class ToolCallRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    arguments: str


#: Event-loop lag beyond which a request's timestamps may carry the client's own delay: about
#: the smallest TTFT difference the reports call out (harness.runner.saturation measures it).
LAG_BOUND_MS = 10.0


class BackgroundTiming(BaseModel):
    """How one ``background: true`` request went, as the client saw it.

    Polling sees a status only when it asks, so without a stream ``queue_wait_ms`` and
    ``poll_lag_max_ms`` are upper bounds at the resolution of ``poll_interval_ms``.
    """

    model_config = ConfigDict(extra="forbid")

    time_to_queued_ms: float | None = Field(
        description="request sent → queued (the create reply; streams: the response.queued event)"
    )
    queue_wait_ms: float | None = Field(
        description="queued → in_progress (streams: between the two events; polling: until the "
        "first poll that saw it running or done, an upper bound)"
    )
    polls: int = Field(0, description="GET /responses/{id} calls made to learn the status")
    poll_interval_ms: float | None = None
    poll_lag_max_ms: float | None = Field(
        None,
        description="the response finished at most this long before a poll saw it (time "
        "since the previous poll)",
    )
    resumes: int = Field(0, description="streams resumed with starting_after")
    resumed_after: list[int] = Field(
        default_factory=list, description="the sequence_number each resumed stream started after"
    )
    events_in_order: bool | None = Field(
        None,
        description="streams: every sequence_number from 0 to the last arrived once, in order, "
        "across the resumed streams",
    )
    final_status: str | None = Field(description="completed, incomplete, failed or cancelled")
    total_ms: float | None = Field(description="request sent → the final status seen")


class Observation(BaseModel):
    """One planned request's outcome. Timings are wire-clock ms unless prefixed ``sdk_``.

    Null means "cannot exist" (a non-streaming request has no TTFT), never "zero".
    """

    model_config = ConfigDict(extra="forbid")

    schema_version: int = OBSERVATION_SCHEMA_VERSION
    run_id: str
    scenario: str
    prompt_id: str
    arm: str
    api: Api
    turn: int
    repeat: int
    conversation: str
    cold: bool
    warmup: bool = False
    model: str
    stream: bool
    order: int = Field(description="position in the run's send order")
    started_at: float = Field(description="unix time the first attempt was sent")

    status: int | None = None
    ok: bool = False
    error_type: str | None = None
    error_message: str | None = None
    finish: str | None = None
    attempts: list[Attempt] = Field(default_factory=list)

    ttfb_ms: float | None = None
    ttft_ms: float | None = Field(
        default=None, description="first visible token: text, refusal or tool-call arguments"
    )
    first_output_ms: float | None = Field(
        default=None,
        description="first output of any kind, a reasoning summary delta included "
        "(≤ ttft_ms; earlier on reasoning models that stream their reasoning)",
    )
    total_ms: float | None = None
    sdk_ttfb_ms: float | None = None
    sdk_ttft_ms: float | None = None
    sdk_first_output_ms: float | None = None
    sdk_total_ms: float | None = None
    connect_ms: float | None = None
    new_connection: bool | None = None
    events: int | None = None

    request_id: str | None = None
    processing_ms: float | None = None
    service_tier: str | None = None
    response_id: str | None = None
    previous_response_id: str | None = None
    # Conversation state (harness.runner.state): what the request sent and what the server
    # holds afterwards; None where not measured (stateless arms, failed turns, other records).
    conversation_id: str | None = Field(
        default=None, description="the Conversations API conversation this request continued"
    )
    items_sent: int | None = Field(
        default=None, description="input items (Responses) or messages (Chat) this request sent"
    )
    items_held: int | None = Field(
        default=None,
        description="items the server holds for this conversation after the turn "
        "(conversations.items.list, or the chain's responses.input_items.list plus outputs)",
    )
    duplicate_items: int | None = Field(
        default=None, description="items sent this turn that the server already held"
    )
    forked: bool | None = Field(
        default=None,
        description="the server's items after this turn do not extend the earlier turns' items",
    )
    state_check_error: str | None = Field(
        default=None, description="why the server's items could not be listed after this turn"
    )

    usage: Usage | None = None
    output_text: str | None = None
    outcome: Literal["refusal"] | None = Field(
        default=None,
        description="refusal: the model declined (chat message.refusal, a Responses refusal "
        "part); ok stays true, output_text holds the refusal, TTFT counts",
    )
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    output_format: OutputFormatName | None = Field(
        default=None,
        description="the output format the request asked for; null when not recorded "
        "(runs before it was recorded, or a shadow call whose request was not seen)",
    )
    replayed: bool = False
    client: Literal["sdk", "raw"] = "sdk"
    request_bytes: int | None = None
    # Distributed runs (harness.runner.distributed); null for a single-process run.
    worker: str | None = Field(
        default=None, description="the Ray worker that sent it (ray-0, ray-1, …)"
    )
    host: str | None = Field(default=None, description="hostname of the machine that sent it")
    loop_lag_ms: float | None = Field(
        default=None,
        description="worst event-loop lag of the client while this request was in flight "
        "(harness.runner.saturation)",
    )
    saturated: bool = Field(
        default=False,
        description="timed while the client's own event loop was saturated (lag beyond the "
        "bound with the loop busy): its latencies include the client's queueing",
    )

    # Production traffic (harness.shadow.client); defaults describe a scenario run.
    origin: Literal["scenario", "shadow", "canary"] = Field(
        default="scenario",
        description="scenario run, either side of a shadow pair, or a "
        "call served from Responses in canary mode",
    )
    contaminated_cache: bool = Field(
        default=False,
        description="cache figures are not clean: the paired call sent the "
        "same prefix moments before (shadow pairs cannot carry a cache nonce)",
    )
    similarity: float | None = Field(
        default=None,
        description="text similarity to the other side of the shadow pair, "
        "computed before redaction",
    )
    output_sha256: str | None = Field(
        default=None, description="SHA-256 of output_text, kept when the text is redacted"
    )
    output_chars: int | None = Field(
        default=None, description="length of output_text, kept when the text is redacted"
    )
    background: BackgroundTiming | None = Field(
        default=None, description="background: true requests: queue, polling and stream resumes"
    )

    @property
    def key(self) -> tuple[str, str, str, int, int]:
        """Identity of the planned request (run-independent)."""
        return (self.scenario, self.prompt_id, self.arm, self.repeat, self.turn)


class ReplayedCassette(BaseModel):
    """Where a replayed scenario's replies came from: its cassette and how that was recorded."""

    model_config = ConfigDict(extra="forbid")

    scenario: str
    cassette: str = Field(description="the cassette file, as given to --replay")
    recorded_at: str = Field(description="when the cassette was recorded (ISO 8601, UTC)")
    target: str
    is_emulator: bool
    emulator_profile: str | None = None
    emulator_time_scale: float | None = Field(
        default=None, description="the emulator's --time-scale; null: unknown or not an emulator"
    )
    repeats: int | None = Field(default=None, description="--repeats of the recording run")
    seed: int
    rerecord: str = Field(description="the command that re-records this cassette")

    @property
    def when(self) -> str:
        """``2026-12-07 22:16 UTC``: when it was recorded, to the minute."""
        when = self.recorded_at.replace("T", " ").removesuffix("Z")
        return f"{when[:16]} UTC" if len(when) >= 16 else self.recorded_at

    def against(self, repeats: str | None = None) -> str:
        """``emulator — not OpenAI (profile parity, time scale 1, 5 repeats)``."""
        from harness.fmt import target_label

        how = [f"profile {self.emulator_profile}"] if self.emulator_profile else []
        if self.emulator_time_scale is not None:
            how.append(f"time scale {self.emulator_time_scale:g}")
        if repeats is None and self.repeats is not None:
            repeats = str(self.repeats)
        if repeats is not None:
            how.append(f"{repeats} repeats")
        return target_label(self.target, self.is_emulator) + (f" ({', '.join(how)})" if how else "")

    @property
    def label(self) -> str:
        """``replay of cassettes/x.yaml, recorded 2026-12-07 22:16 UTC against … (profile …)``."""
        return f"replay of {self.cassette}, recorded {self.when} against {self.against()}"


def replay_label(cassettes: Iterable[ReplayedCassette]) -> str | None:
    """Every output of a replay says so: what it replays, when and against what that was
    recorded; None when it is not a replay. Several cassettes recorded alike (one directory,
    one target and emulator setting) make one line, not one per scenario."""
    items = list(cassettes)
    if len(items) <= 1:
        return items[0].label if items else None
    folders = {str(Path(c.cassette).parent) for c in items}
    if len({c.against("") for c in items}) > 1 or len(folders) > 1:
        return "; ".join(c.label for c in items)
    whens = sorted(c.when for c in items)
    when = whens[0] if whens[0] == whens[-1] else f"{whens[0]} – {whens[-1]}"
    counts = sorted({c.repeats for c in items if c.repeats is not None})
    repeats = (
        None if not counts else str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    )
    return (
        f"replay of {len(items)} cassettes in {folders.pop()}/ "
        f"({', '.join(c.scenario for c in items)}), recorded {when} against "
        f"{items[0].against(repeats)}"
    )


class RunMeta(BaseModel):
    """``runs/<run-id>/meta.json``."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = META_SCHEMA_VERSION
    run_id: str
    created_at: float
    finished_at: float | None = None
    seed: int
    target: str
    target_url: str | None = None
    is_emulator: bool
    emulator_profile: str | None = None
    emulator_seed: int | None = None
    scenarios: list[dict[str, Any]] = Field(
        default_factory=list, description="name, path, sha256 of each scenario file"
    )
    cache_nonces: dict[str, str] = Field(default_factory=dict)
    client: Literal["sdk", "raw"] = "sdk"
    concurrency: int = 1
    planned_requests: int = 0
    stored_responses_deleted: int | None = None
    stored_chat_completions_deleted: int | None = Field(
        default=None,
        description="chat completions the run stored (store: true) and deleted at its end",
    )
    keep_stored: bool = Field(
        default=False,
        description="--keep-stored: what the run stored at the provider was left there",
    )
    conversations_deleted: int | None = Field(
        default=None,
        description="Conversations API conversations the run created and deleted at its end",
    )
    versions: dict[str, str] = Field(default_factory=dict)
    machine: dict[str, Any] = Field(default_factory=dict)
    sdk_warmup_ms: float | None = Field(
        default=None, description="one-off SDK model building, done before timing starts"
    )
    replayed_from: str | None = None
    replay: list[ReplayedCassette] = Field(
        default_factory=list,
        description="for a replay: each scenario's cassette and how it was recorded",
    )
    recorded_to: str | None = None
    capabilities: dict[str, Any] | None = Field(
        default=None,
        description="what the target serves (harness.runner.capabilities.Capabilities), "
        "probed once when the run started; null for replays",
    )
    skipped: dict[str, str] = Field(
        default_factory=dict,
        description="arms/prompts not run because the target cannot serve them, and why",
    )
    max_output_tokens: int | None = Field(
        default=None,
        description="the cap on every request's output tokens (harness run "
        "--max-output-tokens); null: the scenario's own limits",
    )
    loop: dict[str, Any] | None = Field(
        default=None,
        description="the client's event loop while it sent "
        "(harness.runner.saturation.LoopStats); null for runs made before it was measured",
    )
    distributed: dict[str, Any] | None = Field(
        default=None,
        description="engine, workers (id, host, node, share of rate and concurrency), "
        "conversations redone after a worker died (harness.runner.distributed."
        "DistributedInfo); null for a single-process run",
    )
    prices: dict[str, Any] | None = Field(
        default=None,
        description="the prices of the run's models when it was made "
        "(harness.analysis.pricing.PriceSnapshot); null: priced at analysis time",
    )
    translation_notes: list[str] = Field(
        default_factory=list,
        description="what the default translation changed so the real APIs accept the "
        "requests (harness.runner.plan.translation_notes): migration findings",
    )
    shadow: dict[str, Any] | None = Field(
        default=None,
        description="shadow/canary settings of a production-traffic run "
        "(harness.shadow.client); null for scenario runs",
    )

    @property
    def target_label(self) -> str:
        from harness.fmt import target_label

        return target_label(self.target, self.is_emulator)

    @property
    def replay_label(self) -> str | None:
        """``replay of <cassette>, recorded <date> against <target> (…)``; None: not a replay."""
        return replay_label(self.replay)


class ObservationWriter:
    """Appends observations as JSONL. Every ``group`` records go to the OS at once (they then
    survive a crash of this process, even ``kill -9``) and are fsync'd from a background
    thread, at most every ``fsync_interval_s``: a disk flush costs ~1–2 ms of CPU, which at a
    few hundred requests a second would stall the requests in flight if the event loop paid it
    for every group. ``sync``/``close`` fsync at once.

    So a crash of the harness loses at most the current group (not yet handed to the OS); an
    OS crash or power cut at most what was written in the last ``fsync_interval_s`` too.
    ``--resume`` redoes the conversations either leaves incomplete.
    """

    def __init__(self, path: Path, group: int = 16, fsync_interval_s: float = 0.25) -> None:
        self._path = path
        self._group = group
        self._interval = fsync_interval_s
        self._pending = 0
        self._fh = path.open("a", encoding="utf-8")
        self._wanted = threading.Event()
        self._closing = threading.Event()
        self._syncer: threading.Thread | None = None

    def write(self, obs: Observation) -> None:
        self._fh.write(obs.model_dump_json() + "\n")
        self._pending += 1
        if self._pending >= self._group:
            self._fh.flush()
            self._pending = 0
            if self._syncer is None:
                self._syncer = threading.Thread(
                    target=self._sync_loop, daemon=True, name="harness-fsync"
                )
                self._syncer.start()
            self._wanted.set()

    def _sync_loop(self) -> None:
        fd = self._fh.fileno()
        while True:
            self._wanted.wait()
            if self._closing.is_set():
                return
            self._wanted.clear()
            with contextlib.suppress(OSError):  # sync()/close() fsync again, and raise
                os.fsync(fd)
            if self._closing.wait(self._interval):  # groups flushed meanwhile share one fsync
                return

    def sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._pending = 0

    def close(self) -> None:
        if self._fh.closed:
            return
        if self._syncer is not None:
            self._closing.set()
            self._wanted.set()
            self._syncer.join()
        self.sync()
        self._fh.close()

    def __enter__(self) -> ObservationWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_lines(items: Iterable[BaseModel]) -> Iterator[str]:
    for item in items:
        yield item.model_dump_json()
