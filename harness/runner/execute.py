"""Run a plan against a target: concurrency, rate limits, retries, observations, resume.

Every planned request ends as exactly one :class:`~harness.records.Observation` — successful,
failed with its error, or ``skipped`` because an earlier turn of its conversation failed.
Observations are appended in groups of :data:`FSYNC_GROUP` (and fsync'd); a crash loses at most
that group, and ``--resume`` redoes every conversation that is not complete from turn 1, so
chains and cold flags stay true.
"""

from __future__ import annotations

import asyncio
import gc
import os
import platform
import random
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx2
import openai

from harness import __version__, fmt
from harness.errors import HarnessError, TargetError, TranslationError
from harness.records import (
    NOT_SENT,
    Attempt,
    Observation,
    ObservationWriter,
    RunMeta,
)
from harness.rundir import (
    OBSERVATIONS_FILE,
    read_meta,
    read_observations,
    scenario_changed,
    scenario_digest,
    write_meta,
)
from harness.runner.background import send_background
from harness.runner.capabilities import Capabilities, check_plans, target_capabilities
from harness.runner.cleanup import ServerObjects
from harness.runner.plan import (
    Plan,
    PlannedConversation,
    build_plan,
    dry_run,
    estimate_input_tokens,
    translation_notes,
)
from harness.runner.saturation import LoopMonitor, new_event_loop
from harness.runner.state import (
    STATE_LOST,
    ConversationState,
    StateCheck,
    lost_state,
    open_conversation,
)
from harness.runner.target import Target, check_target, open_target
from harness.scenario.load import Scenario, load_scenario
from harness.translate.convert import conversation_items, to_chat_kwargs, to_responses_kwargs
from harness.translate.request import Message, NeutralRequest, ToolCall
from harness.transport.client import (
    CallResult,
    ClientKind,
    RetryPolicy,
    Transport,
    fatal_scope,
    parse_reset,
    request_body,
    send_with_retries,
    warm_sdk,
)

if TYPE_CHECKING:
    from harness.cassettes.replay import ReplaySetup

FSYNC_GROUP = 16


@dataclass
class RunOptions:
    """Everything ``harness run`` accepts (the CLI maps flags 1:1 onto these)."""

    target: str = "emulator"
    emulator_profile: str = "parity"
    emulator_seed: int = 0
    emulator_time_scale: float = 1.0
    truth_log: Path | None = None
    out: Path = Path("runs")
    concurrency: int = 1
    repeats: int | None = None
    rps: float | None = None
    client: ClientKind = "sdk"
    max_requests: int | None = None
    max_cost_usd: float | None = None
    resume: Path | None = None
    seed: int | None = None
    #: report progress to the ``progress`` observer given to :func:`run` (False: stay silent)
    progress: bool = True
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: record every interaction into one cassette per scenario in this directory
    record: Path | None = None
    #: replay from the cassettes in this directory (no target is contacted)
    replay: Path | None = None
    #: skip the arms and prompts the target cannot serve (else refuse to start)
    skip_unsupported: bool = False
    #: price overrides (harness.analysis.pricing.PriceOverrideFile), recorded in meta.json
    prices: Path | None = None
    #: cap every request's output tokens (a cheap smoke run); recorded in meta.json
    max_output_tokens: int | None = None
    #: leave what the run stored at the provider (responses, chat completions, conversations)
    #: instead of deleting it at the end, e.g. to look at it in the dashboard
    keep_stored: bool = False


class RunProgress(Protocol):
    """What :func:`run` reports while it sends, so a front end can show progress (the CLI draws
    a progress bar); the runner itself never writes to the terminal."""

    def start(self, label: str, total: int) -> None:
        """Sending starts: ``total`` requests to ``label`` (the target)."""

    def advance(self, errors: int) -> None:
        """One more planned request has an outcome; ``errors`` failed so far."""

    def stop(self) -> None:
        """Sending has ended (completed, interrupted or failed)."""


@dataclass(frozen=True)
class FatalError:
    """An error that stopped a run or an arm, from its first request to get it."""

    conversation: str
    turn: int
    status: int | None
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.conversation} turn {self.turn}: {self.status} {self.code}: {self.message}"


@dataclass
class RunResult:
    run_dir: Path
    meta: RunMeta
    recorded: int
    errors: int
    interrupted: bool = False
    #: for --replay: the cassettes, with what was played (``unplayed()``) and ``misses``
    replay: ReplaySetup | None = None
    #: the error that stopped the run after its first occurrence (a bad key, an unknown model)
    fatal: FatalError | None = None
    #: (scenario, arm)s stopped because the target lacks their endpoint, each with the error
    stopped_arms: dict[tuple[str, str], FatalError] = field(default_factory=dict)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"harness": __version__, "python": platform.python_version()}
    for dist in ("openai", "httpx2", "vcrpy", "pydantic"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _price_snapshot(
    conversations: list[PlannedConversation], overrides: Path | None
) -> dict[str, Any]:
    """The prices of every model the run will send to, for meta.json (analysis uses them).

    Analysis prices each request at the service tier its response reports, which the request
    does not fix ("auto"), so every tier the SDK knows is resolved."""
    from typing import get_args

    from openai.types.responses.response import Response

    from harness.analysis.pricing import PriceBook, load_price_overrides

    tier_type = Response.model_fields["service_tier"].annotation
    tiers = [None, *(t for arg in get_args(tier_type) for t in get_args(arg))]
    book = PriceBook(
        load_price_overrides(overrides) if overrides else None, override_file=overrides
    )
    models = {c.base.model for c in conversations}
    return book.snapshot((m, t) for m in models for t in tiers)


def _machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python_implementation": platform.python_implementation(),
    }


def _new_run_id(names: Sequence[str]) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    slug = "-".join(names)[:40] or "run"
    return f"{stamp}-{slug}-{secrets.token_hex(2)}"


# --- pacing ------------------------------------------------------------------------------------


class Pacer:
    """Client-side pacing: a fixed request rate, plus pauses the server's rate-limit headers ask
    for (proactive throttling: when a window is exhausted, wait for its reset)."""

    def __init__(self, rps: float | None) -> None:
        self._interval = 1.0 / rps if rps else 0.0
        self._next = 0.0
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self._interval and time.monotonic() >= self._paused_until:
            return  # no rate set and no server pause: nothing to wait for
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next, self._paused_until)
            self._next = start + self._interval
        if start > now:
            await asyncio.sleep(start - now)

    def observe(self, headers: dict[str, str]) -> None:
        for kind in ("requests", "tokens"):
            remaining = headers.get(f"x-ratelimit-remaining-{kind}")
            if remaining is not None and remaining.strip() == "0":
                reset = parse_reset(headers.get(f"x-ratelimit-reset-{kind}"))
                if reset:
                    self._paused_until = max(self._paused_until, time.monotonic() + reset)


# --- one conversation --------------------------------------------------------------------------


class ObservationSink(Protocol):
    """Where a runner's records go: the run's file (:class:`ObservationWriter`), or a Ray
    worker's buffer that the driver drains (:mod:`harness.runner.distributed`)."""

    def write(self, obs: Observation) -> None: ...

    def sync(self) -> None: ...


class Engine(Protocol):
    """Sends a run's conversations somewhere other than this process's event loop (e.g.
    :class:`harness.runner.distributed.RayEngine`), recording through ``shared``."""

    def prepare(self, options: RunOptions) -> None:
        """Check and connect, before the run directory is made or a resume rewrites it."""

    def execute(self, job: EngineJob) -> None:
        """Send ``job.todo``; every observation goes through ``job.shared.writer``, in send
        order."""


@dataclass(eq=False)
class EngineJob:
    """What an :class:`Engine` is given: the conversations still to send, where and how, and
    the run they are recorded in (scenarios in ``new_connection`` send turn 1 on a new
    connection)."""

    todo: list[PlannedConversation]
    target: Target
    options: RunOptions
    shared: _Shared
    meta: RunMeta
    new_connection: frozenset[str]
    run_dir: Path


@dataclass
class _Shared:
    run_id: str
    writer: ObservationSink
    pacer: Pacer
    policy: RetryPolicy
    client: ClientKind
    rng: random.Random
    progress: RunProgress | None
    order: int = 0
    recorded: int = 0
    errors: int = 0
    #: what the run created on the server: cancelled and deleted when it ends
    objects: ServerObjects = field(default_factory=ServerObjects)
    #: the event loop's lag and CPU while requests were in flight (set by _execute)
    monitor: LoopMonitor | None = None
    #: requests in flight at once: with one, a late loop is that request's own work, not a queue
    concurrency: int = 1
    #: the first error no later request could escape (a bad key, an unknown model): run stops
    fatal: FatalError | None = None
    #: arms whose endpoint the target lacks, each with its first error: only they stop. Keyed
    #: by scenario too: another scenario's arm of that name may have another model or target
    stopped_arms: dict[tuple[str, str], FatalError] = field(default_factory=dict)
    _pending: list[Callable[[], Observation]] = field(default_factory=list)

    def halted(self, conv: PlannedConversation) -> bool:
        """Whether ``conv`` may send no more (the run or its arm stopped at a fatal error)."""
        return self.fatal is not None or (conv.scenario, conv.arm) in self.stopped_arms

    def stop_on(self, conv: PlannedConversation, step: int, result: CallResult) -> bool:
        """Stop the run (or the arm) if ``result`` is fatal; True when this conversation ends."""
        scope = result.fatal
        if scope is None:
            return False
        why = FatalError(
            conv.conversation,
            step + 1,
            result.status,
            result.error_type or "",
            result.error_message or "no message",
        )
        if scope == "run":
            self.fatal = self.fatal or why
        else:
            self.stopped_arms.setdefault((conv.scenario, conv.arm), why)
        return True

    def record(self, build: Callable[..., Observation], *, failed: bool) -> None:
        """Count a planned request's outcome now; build and write its record with its group.

        Records are built and serialised a group at a time: one at a time, between requests,
        that code runs with cold CPU caches (measured at concurrency 32: ~90 µs a record,
        against ~15 µs in a batch). A crash loses the same either way: the group in flight.
        """
        self._pending.append(partial(build, order=self.order))
        self.order += 1
        self.recorded += 1
        if failed:
            self.errors += 1
        if self.progress is not None:
            self.progress.advance(self.errors)
        if len(self._pending) >= FSYNC_GROUP:
            self.flush()

    def flush(self) -> None:
        """Build and write the records counted so far."""
        for build in self._pending:
            self.writer.write(build())
        self._pending.clear()


def _kwargs(
    conv: PlannedConversation,
    step: int,
    request: NeutralRequest,
    new_from: int,
    previous_id: str | None,
    conversation_id: str | None = None,
) -> tuple[dict[str, Any], str | None]:
    if conv.api == "chat":
        return to_chat_kwargs(request), None
    prev = previous_id if conv.chained and step > 0 else None
    return to_responses_kwargs(
        request,
        chained=conv.chained,
        previous_response_id=prev,
        new_from=new_from,
        conversation=conversation_id,
        carry_reasoning=conv.carry_reasoning,
    ), prev


def _output_items(result: CallResult) -> list[dict[str, Any]]:
    """The reply's output items as a chain holds them (for the state check)."""
    items: list[dict[str, Any]] = list(result.reasoning_items)
    if result.output_text:
        items.append({"type": "message", "role": "assistant", "content": result.output_text})
    items.extend(
        {"type": "function_call", "call_id": c.id, "arguments": c.arguments}
        for c in result.tool_calls
    )
    return items


def _assistant_message(result: CallResult) -> Message:
    # An empty reply (e.g. a reasoning model that spent max_output_tokens on reasoning) is
    # still an assistant turn: send it back as "" — None is only valid beside tool calls.
    return Message(
        role="assistant",
        content=result.output_text or (None if result.tool_calls else ""),
        tool_calls=tuple(
            ToolCall(id=c.id, name=c.name, arguments=c.arguments) for c in result.tool_calls
        ),
        reasoning_items=tuple(result.reasoning_items),
    )


def _unsent(
    conv: PlannedConversation, step: int, shared: _Shared, why: str, error_type: str = "skipped"
) -> None:
    """Record a planned request that was not sent (``why``)."""
    build = partial(
        _observation, conv, step, shared, time.time(), skipped=why, error_type=error_type
    )
    shared.record(build, failed=error_type != NOT_SENT)


def _observation(
    conv: PlannedConversation,
    step: int,
    shared: _Shared,
    started: float,
    result: CallResult | None = None,
    attempts: Sequence[Attempt] = (),
    previous_id: str | None = None,
    request_bytes: int | None = None,
    *,
    order: int,
    skipped: str | None = None,
    error_type: str = "skipped",
    window: tuple[float, float] | None = None,
    state: dict[str, Any] | None = None,
) -> Observation:
    stream = conv.base.params.stream
    base: dict[str, Any] = dict(
        run_id=shared.run_id,
        scenario=conv.scenario,
        prompt_id=conv.prompt_id,
        arm=conv.arm,
        api=conv.api,
        turn=step + 1,
        repeat=conv.repeat,
        conversation=conv.conversation,
        cold=step == 0,
        warmup=conv.warmup,
        model=conv.base.model,
        stream=stream,
        order=order,
        started_at=started,
        client=shared.client,
        previous_response_id=previous_id,
        request_bytes=request_bytes,
        output_format=asked.type if (asked := conv.base.output_format) is not None else "text",
        **(state or {}),
    )
    if result is not None and result.background is not None:
        base["background"] = result.background
    if result is None:
        return Observation(
            **base,
            ok=False,
            error_type=error_type,
            error_message=skipped or error_type,
            attempts=[],
        )
    wire = result.wire
    headers = result.headers
    processing = headers.get("openai-processing-ms")
    # A replay's timings are the recording's: the replaying loop's lag says nothing about them.
    if window is not None and shared.monitor is not None and not result.replayed:
        loop = shared.monitor.window(*window)
        saturated = loop.saturated and shared.concurrency > 1
        base.update(loop_lag_ms=round(loop.lag_ms, 3), saturated=saturated)
    return Observation(
        **base,
        **result.observation_fields(stream=stream),
        attempts=list(attempts),
        new_connection=wire.new_connection,
        processing_ms=float(processing)
        if processing and processing.replace(".", "", 1).isdigit()
        else None,
        replayed=result.replayed,
    )


async def _run_conversation(
    conv: PlannedConversation,
    transport: Transport,
    shared: _Shared,
    fresh: Callable[[], Transport] | None = None,
) -> None:
    """Send a conversation's turns in order; ``fresh`` gives turn 1 its own new connection
    (scenario ``cold: new-connection``)."""
    history: tuple[Message, ...] = ()
    previous_id: str | None = None
    failure: str | None = None
    failure_type = "skipped"
    conversation_id: str | None = None
    held = ConversationState()
    for step in range(len(conv.steps)):
        if shared.halted(conv):
            return  # left incomplete, so --resume redoes the whole conversation
        if failure is None and not conv.should_send(step, history):
            _unsent(
                conv,
                step,
                shared,
                "the model made no tool call, so the canned tool results were not sent",
                NOT_SENT,
            )
            continue
        if failure is not None:
            _unsent(conv, step, shared, failure, failure_type)
            continue
        request, new_from = conv.request_for(step, history)
        if conv.state == "conversation" and conversation_id is None:
            conversation_id, refused = await _open(conv, request, new_from, transport, shared)
            if refused is not None:
                why = (
                    f"conversations.create failed: {refused.status} {refused.error_type}: "
                    f"{refused.error_message}"
                )
                _unsent(conv, step, shared, why, "conversation_error")
                if shared.stop_on(conv, step, refused):
                    return  # no Conversations API (or no access): the arm or the run stops
                failure = f"turn {step + 1} has no conversation; later turns cannot be sent"
                continue
        try:
            kwargs, prev = _kwargs(conv, step, request, new_from, previous_id, conversation_id)
        except TranslationError as exc:  # run-time history the scenario check could not see
            _unsent(conv, step, shared, str(exc), "translation_error")
            failure = f"turn {step + 1} could not be translated; later turns cannot be sent"
            continue
        kwargs = conv.with_background(kwargs)
        body = request_body(kwargs)
        await shared.pacer.wait()
        started = time.time()
        t0 = time.perf_counter()
        sender = fresh() if fresh is not None and step == 0 else transport
        send = (
            partial(sender.send, conv.api, kwargs, body)
            if conv.background_poll_ms is None
            else partial(
                send_background,
                sender,
                kwargs,
                body,
                conv.background_poll_ms,
                tracker=shared.objects.of(conv.arm),
            )
        )
        try:
            result, attempts = await send_with_retries(send, shared.policy, shared.rng)
        finally:
            if sender is not transport:
                await sender.aclose()
        window = (t0, time.perf_counter())
        shared.pacer.observe(result.headers)
        if (
            result.response_id
            and kwargs.get("store")
            and conv.background_poll_ms is None  # a background one was noted when created
        ):
            shared.objects.stored(conv.arm, result.response_id)
        sent = kwargs["input"] if conv.api == "responses" else kwargs["messages"]
        check = StateCheck(items_sent=len(sent))
        if result.ok and conv.state != "history":
            check = await held.after_turn(
                transport,
                conversation_id=conversation_id,
                response_id=result.response_id,
                sent=sent,
                outputs=_output_items(result),
            )
        shared.record(
            partial(
                _observation,
                conv,
                step,
                shared,
                started,
                result,
                attempts,
                prev,
                len(body),
                window=window,
                state={"conversation_id": conversation_id, **check.fields()},
            ),
            failed=not result.ok,
        )
        if (
            not result.ok
            and (prev is not None or conversation_id is not None)
            and lost_state(result.status, result.error_type, result.error_message)
        ):
            # the server lost the chain or the conversation: resending the history would
            # measure another arm, so the rest of this conversation is recorded as lost
            failure = (
                f"turn {step + 1}: the server lost this conversation's state "
                f"({result.error_type}); later turns are not resent without it"
            )
            failure_type = STATE_LOST
            continue
        if shared.stop_on(conv, step, result):
            return
        if not result.ok:
            failure = (
                f"turn {step + 1} failed ({result.error_type}); later turns of this "
                "conversation cannot be sent"
            )
            continue
        if step + 1 < len(conv.steps):  # the next turn needs the history; the last does not
            history = conv.history_after(request, _assistant_message(result))
            previous_id = result.response_id


async def _open(
    conv: PlannedConversation,
    request: NeutralRequest,
    new_from: int,
    transport: Transport,
    shared: _Shared,
) -> tuple[str | None, CallResult | None]:
    """Create the Conversations API conversation of ``conv``, holding its fixed history; (its
    id, None) or (None, the failed call as a result the run's stop rules can read)."""
    items = conversation_items(request, new_from, store=bool(request.params.store))
    cid, failed = await open_conversation(transport, items)
    if cid is not None:
        shared.objects.conversation(conv.arm, cid)
    if failed is None:
        return cid, None
    return None, CallResult(
        status=failed.status, error_type=failed.error_type, error_message=failed.error_message
    )


# --- the run -----------------------------------------------------------------------------------


def _load(paths: Sequence[Path]) -> list[tuple[Path, Scenario]]:
    if not paths:
        raise HarnessError("no scenario given — e.g. harness run scenarios/quickstart.yaml")
    return [(p, load_scenario(p)) for p in paths]


@dataclass
class _Resume:
    """What a resumed run keeps: complete conversations, the next send-order number, and the
    responses and chat completions of discarded (incomplete) conversations, which may still be
    stored."""

    done: set[str] = field(default_factory=set)
    next_order: int = 0
    orphans: list[tuple[str, str]] = field(default_factory=list)
    orphan_conversations: list[tuple[str, str]] = field(default_factory=list)


def stored_by(
    observations: Iterable[Observation], conversations: Iterable[PlannedConversation]
) -> list[tuple[str, str]]:
    """(arm, id) of what ``observations`` may have left stored at the provider: every response
    (a delete of an unstored one is refused, harmlessly) and the chat completions of the
    ``conversations`` that send ``store: true`` (chat stores nothing otherwise)."""
    chat_stores = {c.conversation for c in conversations if c.api == "chat" and c.base.params.store}
    return [
        (o.arm, o.response_id)
        for o in observations
        if o.response_id and (o.api == "responses" or o.conversation in chat_stores)
    ]


def _prepare_resume(run_dir: Path, conversations: list[PlannedConversation]) -> _Resume:
    """Keep only complete conversations in the observations file (atomically rewritten)."""
    path = run_dir / OBSERVATIONS_FILE
    if not path.exists():
        return _Resume()
    steps = {c.conversation: len(c.steps) for c in conversations}
    by_conv: dict[str, list[Observation]] = defaultdict(list)
    for obs in read_observations(path):
        by_conv[obs.conversation].append(obs)
    # A fatal error (a bad key, no quota) says nothing about the API: redo its conversation.
    complete = {
        conv
        for conv, items in by_conv.items()
        if conv in steps
        and len({o.turn for o in items}) == steps[conv]
        and not any(not o.ok and fatal_scope(o.status, o.error_type) for o in items)
    }
    keep = [o for conv in complete for o in sorted(by_conv[conv], key=lambda o: o.turn)]
    orphans = stored_by(
        [o for conv, items in by_conv.items() if conv not in complete for o in items],
        conversations,
    )
    orphan_conversations = sorted(
        {
            (o.arm, o.conversation_id)
            for conv, items in by_conv.items()
            if conv not in complete
            for o in items
            if o.conversation_id
        }
    )
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for obs in keep:
            fh.write(obs.model_dump_json() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    next_order = 1 + max((o.order for items in by_conv.values() for o in items), default=-1)
    return _Resume(complete, next_order, orphans, orphan_conversations)


def _resume_settings(options: RunOptions, prior: RunMeta) -> None:
    """A resumed run goes on where it started: same target, profile, client and concurrency."""
    if prior.replayed_from:
        raise HarnessError(
            f"--resume: run {prior.run_id} replayed cassettes from "
            f"{prior.replayed_from}; a replay is offline and quick — start a new "
            "one instead"
        )
    if prior.target != "emulator" and options.target == "emulator":
        options.target = prior.target
    elif options.target != prior.target:
        raise HarnessError(
            f"--resume: run {prior.run_id} was sent to {prior.target}, not "
            f"{options.target} — drop --target to continue it there"
        )
    if prior.emulator_profile is not None:
        options.emulator_profile = prior.emulator_profile
    if prior.emulator_seed is not None:
        options.emulator_seed = prior.emulator_seed
    options.client, options.concurrency = prior.client, prior.concurrency
    if options.max_output_tokens not in (None, prior.max_output_tokens):
        raise HarnessError(
            f"--resume: run {prior.run_id} capped outputs at "
            f"{prior.max_output_tokens or 'the scenario limits'}, not "
            f"{options.max_output_tokens} — drop --max-output-tokens to continue it"
        )
    options.max_output_tokens = prior.max_output_tokens
    # a run that left its stored objects goes on leaving them: one meta.json, one answer
    options.keep_stored = options.keep_stored or prior.keep_stored


#: Output tokens assumed per request when a scenario sets no max_output_tokens (for estimates).
DEFAULT_OUTPUT_ESTIMATE = 1024


def estimate_cost_usd(plans: Sequence[Plan]) -> float | None:
    """Upper-bound cost of a plan: estimated input, every reply at its token cap, no caching.

    None when a model has no known price.
    """
    from harness.analysis.pricing import exact_cost_usd

    total = 0.0
    for plan in plans:
        for planned in dry_run(plan):
            request = planned.request
            output = request.params.max_output_tokens or DEFAULT_OUTPUT_ESTIMATE
            try:
                total += exact_cost_usd(request.model, estimate_input_tokens(request), 0, 0, output)
            except LookupError:
                return None
    return total


def _budget_check(plans: Sequence[Plan], options: RunOptions, live: bool) -> None:
    planned = sum(len(c.steps) for p in plans for c in p.conversations)
    if options.max_requests is not None and planned > options.max_requests:
        raise TargetError(
            f"the plan has {planned} requests, over --max-requests "
            f"{options.max_requests} — lower --repeats or raise the limit"
        )
    if options.max_cost_usd is not None and live:
        estimate = estimate_cost_usd(plans)
        if estimate is None:
            raise TargetError(
                "--max-cost-usd: cannot price this plan (a model has no known "
                "price) — add a price override or drop the limit"
            )
        if estimate > options.max_cost_usd:
            raise TargetError(
                f"estimated cost up to {fmt.usd(estimate)} exceeds --max-cost-usd "
                f"{options.max_cost_usd} — lower --repeats or raise the limit"
            )


def run(
    paths: Sequence[Path],
    options: RunOptions,
    progress: RunProgress | None = None,
    engine: Engine | None = None,
) -> RunResult:
    """Run scenarios (or resume a run) and return where the observations are; ``progress``
    hears of every request's outcome (unless ``options.progress`` is False); ``engine`` sends
    the conversations elsewhere (default: this process's event loop)."""
    prior: RunMeta | None = read_meta(options.resume) if options.resume else None
    if prior is not None:
        _resume_settings(options, prior)
        if not paths:
            paths = [Path(s["path"]) for s in prior.scenarios]
    loaded = _load(paths)
    replay = _prepare_replay(options, loaded, prior)
    seed = (
        prior.seed
        if prior
        else (options.seed if options.seed is not None else secrets.randbelow(2**31))
    )
    if prior is not None:
        for (path, scenario), saved in zip(loaded, prior.scenarios, strict=False):
            if scenario_changed(saved.get("sha256"), scenario, unrecorded=True):
                raise HarnessError(
                    f"{path}: scenario changed since run {prior.run_id} started "
                    "— resume needs the same file; start a new run instead"
                )
        options.repeats = prior.scenarios[0].get("repeats", options.repeats)
    plans = [
        build_plan(
            s,
            repeats=_repeats(options, replay, s),
            seed=seed,
            max_output_tokens=options.max_output_tokens,
        )
        for _, s in loaded
    ]
    conversations = [c for plan in plans for c in plan.conversations]
    _budget_check(plans, options, live=options.target != "emulator" and replay is None)
    if replay is None and options.target != "emulator":
        check_target(options.target)  # a bad target starts nothing, not even the run directory
    if replay is None and options.target == "emulator":
        from harness.emulator.profiles import load_profile

        load_profile(options.emulator_profile)  # a mistyped profile starts no emulator process
    plans, capabilities, skipped = _check_capabilities(plans, options, prior, replay)
    conversations = [c for plan in plans for c in plan.conversations]
    for plan in plans:
        if plan.cold == "process-start":
            raise HarnessError(
                f"scenario {plan.scenario}: cold: process-start is not "
                "implemented yet — use new-prompt-prefix (default) or "
                "new-connection"
            )
    new_connection = frozenset(p.scenario for p in plans if p.cold == "new-connection")
    if engine is not None:
        # before the run directory is made or a resume rewrites it: a bad address or a Ray
        # version mismatch leaves the run's files as they were
        engine.prepare(options)

    if prior is not None and options.resume is not None:
        run_dir = options.resume
        resumed = _prepare_resume(run_dir, conversations)
        meta = prior
    else:
        run_id = _new_run_id([s.name for _, s in loaded])
        prices = _price_snapshot(conversations, options.prices)
        run_dir = options.out / run_id
        run_dir.mkdir(parents=True, exist_ok=False)
        resumed = _Resume()
        meta = RunMeta(
            run_id=run_id,
            created_at=time.time(),
            seed=seed,
            target=options.target,
            is_emulator=options.target == "emulator",
            emulator_profile=options.emulator_profile if options.target == "emulator" else None,
            emulator_seed=options.emulator_seed if options.target == "emulator" else None,
            scenarios=[
                {
                    "name": s.name,
                    "path": str(p),
                    "sha256": scenario_digest(s),
                    "repeats": options.repeats,
                }
                for p, s in loaded
            ],
            cache_nonces={c.conversation: c.nonce for c in conversations if c.nonce},
            client=options.client,
            concurrency=options.concurrency,
            planned_requests=sum(len(c.steps) for c in conversations),
            versions=_versions(),
            machine=_machine(),
            recorded_to=str(options.record) if options.record else None,
            capabilities=capabilities.model_dump() if capabilities else None,
            skipped=skipped,
            prices=prices,
            max_output_tokens=options.max_output_tokens,
            keep_stored=options.keep_stored,
            translation_notes=[n for _, s in loaded for n in translation_notes(s)],
        )
        if replay is not None:
            recorded = replay.recorded
            meta.target, meta.is_emulator = recorded.target, recorded.is_emulator
            meta.emulator_profile, meta.emulator_seed = (
                recorded.emulator_profile,
                recorded.emulator_seed,
            )
            meta.replayed_from = str(replay.directory)
            meta.replay = replay.sources(
                {s.name: p for p, s in loaded}, {plan.scenario: plan.repeats for plan in plans}
            )
    write_meta(run_dir, meta)
    todo = [c for c in conversations if c.conversation not in resumed.done]

    interrupted = False
    shared: _Shared | None = None
    target_cm = (
        open_target(
            options.target,
            emulator_profile=options.emulator_profile,
            emulator_seed=options.emulator_seed,
            emulator_time_scale=options.emulator_time_scale,
            truth_log=options.truth_log,
        )
        if replay is None
        else nullcontext(replay_target(replay))
    )
    with (
        target_cm as target,
        ObservationWriter(run_dir / OBSERVATIONS_FILE, group=FSYNC_GROUP) as writer,
    ):
        meta.target_url = target.base_url if not target.is_emulator else None
        if replay is not None:
            meta.target_url = replay.recorded_url
        observer = progress if options.progress else None
        shared = _Shared(
            run_id=meta.run_id,
            writer=writer,
            pacer=Pacer(options.rps),
            policy=options.retry,
            client=options.client,
            rng=random.Random(seed),
            progress=observer,
            order=resumed.next_order,
            objects=ServerObjects(list(resumed.orphans), list(resumed.orphan_conversations)),
            concurrency=options.concurrency,
        )
        try:
            if observer is not None:
                observer.start(f"{target.label}", sum(len(c.steps) for c in todo))
            with _cassettes(options, replay, loaded, plans, meta, target):
                # Everything allocated so far (plans, scenarios, modules) is long-lived: keep
                # it out of the collector's scans, so GC pauses during requests stay short.
                gc.freeze()
                try:
                    if engine is not None:
                        engine.execute(
                            EngineJob(todo, target, options, shared, meta, new_connection, run_dir)
                        )
                    else:
                        with asyncio.Runner(loop_factory=new_event_loop) as runner:
                            runner.run(
                                _execute(todo, target, options, shared, meta, new_connection)
                            )
                finally:
                    gc.unfreeze()
        except KeyboardInterrupt:
            interrupted = True
        finally:
            shared.flush()  # records counted but not yet written (also on Ctrl-C)
            if observer is not None:
                observer.stop()
    # A stopped run is unfinished, like an interrupted one: --resume completes it after the fix.
    meta.finished_at = None if interrupted or shared.fatal else time.time()
    write_meta(run_dir, meta)
    return RunResult(
        run_dir,
        meta,
        shared.recorded,
        shared.errors,
        interrupted,
        replay,
        shared.fatal,
        dict(shared.stopped_arms),
    )


def _check_capabilities(
    plans: list[Plan],
    options: RunOptions,
    prior: RunMeta | None,
    replay: ReplaySetup | None,
) -> tuple[list[Plan], Capabilities | None, dict[str, str]]:
    """Probe the target once (a resumed run reuses its first probe; a replay sends nothing) and
    drop — or refuse, naming them — the conversations it cannot serve, before anything is sent."""
    if prior is not None:
        if prior.capabilities is None:
            return plans, None, dict(prior.skipped)
        caps = Capabilities.model_validate(prior.capabilities)
        kept, _ = check_plans(plans, caps, skip_unsupported=True)
        return kept, caps, dict(prior.skipped)
    if replay is not None:
        return plans, None, {}
    model = next((c.base.model for p in plans for c in p.conversations), "gpt-4.1-mini")
    caps = target_capabilities(options.target, model)
    kept, skipped = check_plans(plans, caps, skip_unsupported=options.skip_unsupported)
    return kept, caps, skipped


# --- cassettes (harness.cassettes.replay is imported only by runs that record or replay) ----------


def _prepare_replay(
    options: RunOptions, loaded: list[tuple[Path, Scenario]], prior: RunMeta | None
) -> ReplaySetup | None:
    """Check --record/--replay and, for a replay, take seed and repeats from the cassettes."""
    if options.record is not None and options.replay is not None:
        raise HarnessError("--record and --replay exclude each other — pick one")
    if prior is not None and (options.record is not None or options.replay is not None):
        raise HarnessError("--resume cannot record or replay cassettes — start a new run")
    if options.replay is None:
        return None
    from harness.cassettes.replay import prepare_replay

    setup = prepare_replay(
        options.replay, [(s.name, scenario_digest(s)) for _, s in loaded], seed=options.seed
    )
    options.seed = setup.recorded.seed
    return setup


def _repeats(options: RunOptions, replay: ReplaySetup | None, scenario: Scenario) -> int | None:
    """--repeats, else (replaying) the recording run's --repeats for this scenario."""
    if options.repeats is not None or replay is None:
        return options.repeats
    return replay.metas[scenario.name].repeats


def replay_target(setup: ReplaySetup) -> Target:
    """A target that cannot be reached: every request is answered by the cassettes."""
    from harness.runner.target import NO_KEY

    recorded = setup.recorded
    return Target(
        recorded.target,
        setup.base_url,
        NO_KEY,
        recorded.is_emulator,
        recorded.emulator_profile,
        recorded.emulator_seed,
    )


def _cassettes(
    options: RunOptions,
    replay: ReplaySetup | None,
    loaded: list[tuple[Path, Scenario]],
    plans: list[Plan],
    meta: RunMeta,
    target: Target,
) -> AbstractContextManager[object]:
    if replay is not None:
        from harness.cassettes.replay import replaying

        return replaying(replay)
    if options.record is None:
        return nullcontext()
    from harness.cassettes.replay import RecordingInfo, ScenarioInfo, recording

    infos = [
        ScenarioInfo(
            name=s.name,
            path=p,
            sha256=scenario_digest(s),
            nonces={c.conversation: c.nonce for c in plan.conversations if c.nonce},
        )
        for (p, s), plan in zip(loaded, plans, strict=True)
    ]

    def info() -> RecordingInfo:  # at the end: _execute learns whether it is an emulator
        return RecordingInfo(
            target=options.target,
            is_emulator=target.is_emulator,
            emulator_profile=target.emulator_profile,
            emulator_seed=target.emulator_seed,
            # the built-in emulator's delays × this: a replay's figures depend on it
            emulator_time_scale=(
                options.emulator_time_scale if options.target == "emulator" else None
            ),
            base_url=target.base_url,
            seed=meta.seed,
            repeats=options.repeats,
            client=options.client,
            run_id=meta.run_id,
        )

    return recording(options.record, infos, info)


def _scenario_scope(options: RunOptions) -> Callable[[str], AbstractContextManager[object]]:
    if options.record is None and options.replay is None:
        return lambda _name: nullcontext()
    from harness.cassettes.replay import scenario_scope

    return scenario_scope


async def _execute(
    todo: list[PlannedConversation],
    target: Target,
    options: RunOptions,
    shared: _Shared,
    meta: RunMeta,
    new_connection: frozenset[str] = frozenset(),
) -> None:
    """Run the conversations; scenarios in ``new_connection`` send turn 1 on a new connection."""
    # orphans: what conversations a resume discarded stored, deleted with the rest
    arms = sorted({c.arm for c in todo} | shared.objects.arms())
    if options.client == "sdk":
        meta.sdk_warmup_ms = warm_sdk() or meta.sdk_warmup_ms
    transports = {
        arm: Transport(
            target.base_url,
            target.api_key,
            kind=options.client,
            max_connections=max(2, options.concurrency + 1),
        )
        for arm in arms
    }
    try:
        # Warm each arm's own connection so no arm's first request pays TCP/TLS setup
        # (DESIGN §4), and learn whether the target is an emulator.
        for transport in transports.values():
            try:
                headers = await transport.list_models()
            except (openai.APIError, httpx2.HTTPError) as exc:
                raise TargetError(
                    f"cannot reach {target.base_url} (GET /models: "
                    f"{type(exc).__name__}) — check --target and that the "
                    "server is up"
                ) from None
            if "x-emulator" in headers:
                target.is_emulator = True
        meta.is_emulator = target.is_emulator
        queue: asyncio.Queue[PlannedConversation] = asyncio.Queue()
        for conv in todo:
            queue.put_nowait(conv)

        scope = _scenario_scope(options)

        async def worker() -> None:
            while not queue.empty():
                conv = queue.get_nowait()
                fresh = (
                    partial(
                        Transport,
                        target.base_url,
                        target.api_key,
                        kind=options.client,
                        max_connections=2,
                    )
                    if conv.scenario in new_connection
                    else None
                )
                with scope(conv.scenario):
                    await _run_conversation(conv, transports[conv.arm], shared, fresh)

        monitor = shared.monitor = LoopMonitor()
        workers: list[asyncio.Task[None]] = []
        try:
            async with monitor:
                workers = [
                    asyncio.create_task(worker()) for _ in range(max(1, options.concurrency))
                ]
                await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            shared.flush()
            meta.loop = monitor.stats().model_dump()
            shared.writer.sync()
            # also on Ctrl-C or a crash: the provider would keep stored responses otherwise,
            # and background responses the run stopped following would run on, billed
            await asyncio.shield(
                shared.objects.clean_up(transports, meta, keep=options.keep_stored)
            )
    finally:
        for transport in transports.values():
            await transport.aclose()
