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

    @property
    def key(self) -> tuple[str, str, str, int, int]:
        """Identity of the planned request (run-independent)."""
        return (self.scenario, self.prompt_id, self.arm, self.repeat, self.turn)


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
    versions: dict[str, str] = Field(default_factory=dict)
    machine: dict[str, Any] = Field(default_factory=dict)
    sdk_warmup_ms: float | None = Field(
        default=None, description="one-off SDK model building, done before timing starts"
    )
    replayed_from: str | None = None
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
