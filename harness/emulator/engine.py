"""The emulator's request pipeline, shared by both endpoints.

parse (chat / responses adapter) → fault draw → render prompt tokens → prompt-cache lookup →
reply content → delays → cache write (visible when the first token is due) → usage → body or
SSE events (with any stream fault applied) → store (``store: true``: responses and chat
completions) → a :class:`Plan` that :class:`TimedResponse` sends on time, writing the truth
record. A background response (``background: true``) is planned the same way, its timeline
shifted by a queue wait and read off the clock later (:mod:`harness.emulator.background`).

What a body alone decides — the parsed request, its prompt's prefix hashes and the draft of its
reply (:class:`~harness.emulator.content.Draft`) — is kept per distinct body: harness load
repeats prompts, and a repeat then only draws, looks the cache up and builds its reply.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.emulator import chat, jsonio, responses_in, responses_out
from harness.emulator.background import NOT_STREAMED, SYNCHRONOUS, BackgroundJob, plan_job
from harness.emulator.cache import Prefixes, PromptCache, prefixes
from harness.emulator.chat_store import CompletionStore
from harness.emulator.content import Draft, Reply, content_key, draft, sample
from harness.emulator.conversations import ConversationStore, item_page
from harness.emulator.errors import ApiError, invalid, model_not_found, not_found
from harness.emulator.headers import (
    JSON,
    SSE,
    RateLimiter,
    base_headers,
    profile_header,
    request_id,
)
from harness.emulator.latency import Timing, choose_fault, plan_timing, stream_rng
from harness.emulator.models import find_model, model_list
from harness.emulator.profiles import ApiProfile, EmulatorConfig
from harness.emulator.prompt import GenRequest, Segment, decode_pieces, encode, render
from harness.emulator.store import ResponseStore, StoredResponse
from harness.emulator.streaming import Plan
from harness.emulator.truth import TruthLog

_BAD_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you "
    "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
    "but what was sent was not valid JSON.)"
)
_FAULT_ERRORS = {
    "server_error": (
        500,
        "The server had an error processing your request. Sorry about that! "
        "You can retry your request, or contact us through our help center at "
        "help.openai.com if you keep seeing this error.",
        "server_error",
    ),
    "overloaded": (503, "The server is overloaded or not ready yet.", "server_error"),
}
_STREAM_FAULTS = ("stream_cut", "response_failed", "error_event")
_STREAM_ERROR = "An error occurred while processing your request. You can retry your request."
_MAX_SIDE_ENTRIES = 200_000
_MAX_PARSED = 4096
_MAX_PARSED_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class _Prepared:
    """What a request body alone decides: parsed, rendered and hashed, its reply drafted."""

    req: GenRequest
    key: int
    prefixes: Prefixes
    draft: Draft
    #: tokens of earlier turns' reasoning items the request carries but the model does not see
    unrendered_reasoning_tokens: int


@dataclass(frozen=True, slots=True)
class _Delivery:
    """One generated reply on its way out: the plan it fills, what was asked and made, and the
    clock and fault draws it is sent by."""

    plan: Plan
    req: GenRequest
    reply: Reply
    timing: Timing
    rng: random.Random


@dataclass(slots=True)
class _ApiState:
    """One API's profile, draw streams and request counter.

    One draw stream per API and purpose: the n-th request to an API gets the n-th delay draws
    under every profile (seeding a generator per request would cost more than a reply). Draws
    that happen only sometimes (faults, cache misses, cut points) use the second stream, so
    they never shift the delays of later requests.
    """

    profile: ApiProfile
    latency_rng: random.Random
    fault_rng: random.Random
    faulty: bool
    #: the all-zero timing when the profile cannot delay or fail (``zero``): no draws
    instant: Timing | None
    requests: int = 0

    @classmethod
    def of(cls, config: EmulatorConfig, api: str) -> _ApiState:
        prof = config.profile.api(api)
        return cls(
            prof,
            stream_rng(config.seed, api, "latency"),
            stream_rng(config.seed, api, "fault"),
            prof.faults.any,
            _instant(prof, config.time_scale),
        )


def _bounded_put(d: dict[Any, Any], key: Any, value: Any) -> None:
    d[key] = value
    if len(d) > _MAX_SIDE_ENTRIES:
        for old in list(d)[: _MAX_SIDE_ENTRIES // 10]:
            del d[old]


#: What the truth record keeps of a reply, under the reply's own names.
_REPLY_TRUTH = (
    "output_tokens",
    "reasoning_tokens",
    "finish",
    "divergence_words",
    "variation_words",
)


def _same_names(record: object, *names: str) -> dict[str, Any]:
    """Fields of ``record`` that the truth record keeps under the same names."""
    return {name: getattr(record, name) for name in names}


class Emulator:
    """State of one emulator: prompt cache, stored responses, counters, truth log."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.profile = config.profile
        self.cache = PromptCache(config.max_cache_entries)
        self.store = ResponseStore(config.max_stored_responses)
        self.completions = CompletionStore(config.max_stored_responses)
        self.truth = TruthLog(config.truth_log)
        self.limiter = RateLimiter(self.profile.rate_limits)
        self._profile_header = profile_header(self.profile.name)
        self._reasoning_items: dict[str, Segment] = {}
        self.conversations = ConversationStore(
            lambda raw, where, before: responses_in.held_items(
                raw, where, before, self._reasoning_items
            ),
            config.max_stored_responses,
        )
        self._apis = {api: _ApiState.of(config, api) for api in ("chat", "responses")}
        self._occurrences: dict[tuple[int, str], int] = {}
        self._prepared: dict[tuple[str, bytes], _Prepared] = {}
        # Load the tokenizer now: its ~0.5 s first use would otherwise pose as a cold start.
        decode_pieces(encode("Warm up the tokenizer."))

    def close(self) -> None:
        """Flush and close the truth log."""
        self.truth.close()

    # --- plans -----------------------------------------------------------------------------

    def _truth(
        self, req_id: str, api: str, model: str | None, stream: bool, status: int
    ) -> dict[str, Any] | None:
        if not self.truth.enabled:
            return None
        return {
            "request_id": req_id,
            "api": api,
            "model": model,
            "stream": stream,
            "status": status,
            "t_unix": round(time.time(), 6),
            "profile": self.profile.name,
            "time_scale": self.config.time_scale,
        }

    def error_plan(
        self,
        t0: float,
        err: ApiError,
        *,
        api: str,
        model: str | None = None,
        at_s: float = 0.0,
        fault: str | None = None,
        exhausted: float | None = None,
        req_id: str | None = None,
    ) -> Plan:
        """A plan that sends an OpenAI-shaped error."""
        req_id = req_id or request_id()
        headers = [
            *base_headers(req_id, JSON, self._profile_header),
            *self.limiter.headers(model or "-", 0, exhausted=exhausted),
            *err.headers,
        ]
        truth = self._truth(req_id, api, model, False, err.status)
        if truth is not None:
            truth.update(fault=fault, error_code=err.code, error_message=err.message)
        return Plan(t0, err.status, headers, headers_at=at_s, body=err.body(), truth=truth)

    def plan_json(self, t0: float, obj: dict[str, Any], *, api: str) -> Plan:
        """A plan that sends a JSON object right away (GET/DELETE, model list)."""
        req_id = request_id()
        headers = [*base_headers(req_id, JSON, self._profile_header), *self.limiter.headers("-", 0)]
        return Plan(
            t0,
            200,
            headers,
            body=jsonio.dumps(obj),
            truth=self._truth(req_id, api, None, False, 200),
        )

    # --- endpoints -------------------------------------------------------------------------

    def create(self, api: str, raw: bytes, t0: float) -> Plan:
        """``POST /v1/chat/completions`` (api ``chat``) or ``POST /v1/responses``."""
        req_id = request_id()
        prepared = self._prepared.get((api, raw))
        if prepared is None:
            body: Any = None
            try:
                body = json_object(raw)
                prepared = self._prepare(api, body)
            except ApiError as err:
                model = body.get("model") if isinstance(body, dict) else None
                return self.error_plan(
                    t0, err, api=api, req_id=req_id, model=model if isinstance(model, str) else None
                )
            self._remember(api, raw, prepared)
        return self._generate(prepared, t0, req_id)

    def _prepare(self, api: str, body: dict[str, Any]) -> _Prepared:
        """Parse, render, hash and draft a request body (raises :class:`ApiError`)."""
        req = (
            chat.parse(body)
            if api == "chat"
            else responses_in.parse(body, self.store, self._reasoning_items, self.conversations)
        )
        context = req.model_context()
        prompt = render(req.prefix + context)
        if prompt.n_tokens > req.model.context_window:
            raise invalid(
                f"This model's maximum context length is "
                f"{req.model.context_window} tokens. However, your messages "
                f"resulted in {prompt.n_tokens} tokens.",
                param="messages" if api == "chat" else "input",
                code="context_length_exceeded",
            )
        key = content_key(req, self.config.seed)
        return _Prepared(
            req,
            key,
            prefixes(f"{req.model.id}\x1f{req.cache_partition()}", prompt),
            draft(req, key=key, content=self.profile.content, divergence=self.profile.divergence),
            _reasoning_tokens(req.conversation) - _reasoning_tokens(context),
        )

    def _remember(self, api: str, raw: bytes, prepared: _Prepared) -> None:
        # Identical bodies prepare identically unless they depend on stored state; harness
        # load repeats prompts, so skip re-preparing them.
        req = prepared.req
        if (
            len(raw) > _MAX_PARSED_BYTES
            or req.previous_response_id is not None
            or req.conversation_id is not None
            or any(s.role == "reasoning" for s in req.conversation)
        ):
            return
        if len(self._prepared) >= _MAX_PARSED:
            self._prepared.clear()
        self._prepared[(api, raw)] = prepared

    def get_response(
        self, response_id: str, t0: float, query: Mapping[str, str] | None = None
    ) -> Plan:
        """``GET /v1/responses/{id}``: a background response as it stands now, or (``stream``,
        ``starting_after``) its events after a sequence number, each when it is due."""
        stored = self.store.get(response_id)
        if stored is None:
            return self.error_plan(t0, _no_response(response_id), api="responses")
        job = stored.job
        if query is not None and query.get("stream", "false").lower() == "true":
            try:
                after = _starting_after(query.get("starting_after"))
                if job is None or not job.streamed:
                    raise invalid(NOT_STREAMED, param="stream")
            except ApiError as err:
                return self.error_plan(t0, err, api="responses")
            return self._resumed_stream(job, after, t0)
        body = stored.body if job is None else job.body(time.perf_counter())
        return self.plan_json(t0, body, api="responses")

    def cancel_response(self, response_id: str, t0: float) -> Plan:
        """``POST /v1/responses/{id}/cancel``: only background responses; cancelling a finished
        one returns it unchanged (OpenAI's guide: cancelling is idempotent)."""
        stored = self.store.get(response_id)
        if stored is None:
            return self.error_plan(t0, _no_response(response_id), api="responses")
        if stored.job is None:
            return self.error_plan(t0, invalid(SYNCHRONOUS), api="responses")
        return self.plan_json(t0, stored.job.cancel(time.perf_counter()), api="responses")

    def _resumed_stream(self, job: BackgroundJob, after: int | None, t0: float) -> Plan:
        req_id = request_id()
        headers = [*base_headers(req_id, SSE, self._profile_header), *self.limiter.headers("-", 0)]
        plan = Plan(t0, 200, headers, truth=self._truth(req_id, "responses", None, True, 200))
        _group(plan, job.frames_after(after, t0), float)
        plan.halt = job.halted
        return plan

    def input_items(self, response_id: str, query: Mapping[str, str], t0: float) -> Plan:
        """``GET /v1/responses/{id}/input_items``: the items the request sent (paged)."""
        stored = self.store.get(response_id)
        if stored is None:
            return self.error_plan(t0, _no_response(response_id), api="responses")
        try:
            page = item_page(stored.input_items, query)
        except ApiError as err:
            return self.error_plan(t0, err, api="responses")
        return self.plan_json(t0, page, api="responses")

    def delete_response(self, response_id: str, t0: float) -> Plan:
        """``DELETE /v1/responses/{id}``."""
        if not self.store.delete(response_id):
            return self.error_plan(t0, _no_response(response_id), api="responses")
        return self.plan_json(
            t0, {"id": response_id, "object": "response.deleted", "deleted": True}, api="responses"
        )

    def models(self, t0: float, model: str | None = None) -> Plan:
        """``GET /v1/models`` and ``GET /v1/models/{model}``."""
        if model is None:
            return self.plan_json(t0, {"object": "list", "data": model_list()}, api="models")
        info = find_model(model)
        if info is None:
            return self.error_plan(t0, model_not_found(model), api="models")
        return self.plan_json(
            t0,
            {"id": model, "object": "model", "created": info.created, "owned_by": "system"},
            api="models",
        )

    # --- generation ------------------------------------------------------------------------

    def _generate(self, prepared: _Prepared, t0: float, req_id: str) -> Plan:
        req = prepared.req
        api, model = req.api, req.model
        state = self._apis[api]
        prof = state.profile
        n = state.requests
        state.requests = n + 1
        chance = state.fault_rng
        background = api == "responses" and req.body.get("background") is True
        # a background stream's connection is not the response: only the HTTP faults apply,
        # and the profile's background_stream_drop stands in for the stream faults
        faulty_stream = req.stream and not background
        fault = choose_fault(prof, chance, stream=faulty_stream) if state.faulty else None
        lat_rng = state.latency_rng

        n_in = prepared.prefixes.n_tokens
        scale = self.config.time_scale
        if fault in ("rate_limit", "server_error", "overloaded"):
            timing = plan_timing(
                prof,
                lat_rng,
                cold=False,
                uncached_tokens=0,
                reasoning_tokens=0,
                slow_headers=False,
                time_scale=scale,
            )
            return self._fault_reply(req, t0, req_id, fault, timing, chance)

        if prof.bill_unrendered_reasoning:
            # billed, not processed: input tokens grow, prefill time and the cache do not
            n_in += prepared.unrendered_reasoning_tokens
        now = time.perf_counter()
        cache = self.cache.lookup(
            prepared.prefixes,
            now=now,
            hit_share=prof.cache_hit_share,
            hit_probability=prof.cache_hit_probability,
            rng=chance,
        )
        occurrence = 0
        if req.temperature > 0:
            seen = (prepared.key, api)
            occurrence = self._occurrences.get(seen, 0)
            _bounded_put(self._occurrences, seen, occurrence + 1)
        reply = sample(prepared.draft, occurrence)
        timing = state.instant or plan_timing(
            prof,
            lat_rng,
            cold=cache.cold,
            uncached_tokens=prepared.prefixes.n_tokens - cache.cached_tokens,
            reasoning_tokens=reply.reasoning_tokens,
            slow_headers=fault == "slow_headers",
            time_scale=scale,
        )
        # a background response runs after its queue wait: its prefix is cached that much later
        wait_ms = prof.background_queue_ms.sample(chance) * prof.speed_factor if background else 0.0
        # the profile's TTL is in-memory retention; a request may ask to keep prefixes longer
        ttl = (
            prof.cache_ttl_s if req.cache_ttl_s is None else max(req.cache_ttl_s, prof.cache_ttl_s)
        )
        self.cache.write(
            prepared.prefixes.digests,
            now=now,
            ttl_s=ttl,
            visible_at=t0 + wait_ms * scale / 1000.0 + timing.offset_s(0),
        )

        n_ticks = len(reply.pieces) + sum(len(c.pieces) for c in reply.tool_calls)
        last_tick = max(0, n_ticks - 1)
        if api == "chat":
            use = chat.usage(n_in, cache.cached_tokens, cache.cache_write_tokens, reply, req.n)
        else:
            use = responses_out.usage(n_in, cache.cached_tokens, cache.cache_write_tokens, reply)
        est_tokens = n_in + (req.max_output_tokens or reply.output_tokens)
        headers = base_headers(req_id, SSE if req.stream else JSON, self._profile_header)
        headers += self.limiter.headers(model.id, est_tokens)
        truth = self._truth(req_id, api, model.id, req.stream, 200)
        plan = Plan(
            t0,
            200,
            headers,
            headers_at=timing.offset_s(-1 if req.stream else last_tick),
            truth=truth,
        )

        out = _Delivery(plan, req, reply, timing, chance)
        response_id: str | None = None
        if background:
            built = responses_out.build(req, reply, use)
            response_id = built.response_id
            self._background(out, built, t0, wait_ms)
            if req.conversation_id is not None:
                self._append_turn(req, built)
        elif api == "chat":
            # a stored completion is listed under the id its client got
            cid = chat.completion_id() if req.store else None
            if req.stream:
                self._chat_stream(out, use, fault, cid)
            else:
                plan.body = jsonio.dumps(chat.body(req, reply, use, cid))
            # a failed stream is not a completion: nothing to store
            if req.store and not (req.stream and fault in _STREAM_FAULTS):
                self.completions.keep(chat.body(req, reply, use, cid), req.body)
        else:
            built = responses_out.build(req, reply, use)
            response_id = built.response_id
            final = responses_out.response_object(req, built, built.status)
            if req.stream:
                self._responses_stream(out, built, fault)
            else:
                plan.body = jsonio.dumps(final)
            if req.store and fault in _STREAM_FAULTS and req.stream:
                # a failed stream is stored as failed, and there is no output to continue from
                failed = responses_out.response_object(
                    req, built, "failed", error={"code": "server_error", "message": _STREAM_ERROR}
                )
                self.store.put(built.response_id, StoredResponse(failed, list(req.conversation)))
            elif req.store:
                self._store(req, built, final)
            if req.conversation_id is not None and not (req.stream and fault in _STREAM_FAULTS):
                self._append_turn(req, built)

        if truth is not None:
            truth.update(
                endpoint="/v1/chat/completions" if api == "chat" else "/v1/responses",
                cold_prefix=cache.cold,
                input_tokens=n_in,
                seen_prefix_tokens=cache.seen_tokens,
                fault=fault,
                delays_ms=timing.as_truth(),
                # the profile's timeline; the wall clock runs it × time_scale
                planned_headers_ms=round(timing.tick_ms(-1 if req.stream else last_tick), 3),
                planned_first_delta_ms=round(timing.tick_ms(0), 3)
                if req.stream and n_ticks
                else None,
                planned_total_ms=round(timing.tick_ms(last_tick), 3),
                api_request_index=n,
                response_id=response_id,
                background_queue_ms=round(wait_ms, 3) if background else None,
                **_same_names(cache, "cached_tokens", "cache_write_tokens"),
                **_same_names(reply, *_REPLY_TRUTH),
                **_same_names(
                    req,
                    "previous_response_id",
                    "conversation_id",
                    "prompt_cache_key",
                    "temperature",
                ),
            )
        return plan

    def _background(
        self, out: _Delivery, built: responses_out.Built, t0: float, wait_ms: float
    ) -> None:
        """Plan a background response that waits ``wait_ms`` (profile ms) in the queue: the
        queued body (or its stream) now, the rest on the clock."""
        plan, req, rng = out.plan, out.req, out.rng
        prof = self._apis["responses"].profile
        job = plan_job(t0, req, out.reply, built, out.timing, wait_ms)
        plan.headers_at = 0.0
        if req.stream:
            frames = job.frames
            drop = prof.faults.background_stream_drop
            if drop > 0 and rng.random() < drop:
                # the connection goes, the response runs on: resume it with starting_after
                frames = frames[: self._cut_index(frames, rng)]
                plan.cut = True
            _group(plan, frames, float)
            plan.halt = job.halted
        else:
            plan.body = jsonio.dumps(job.queued)
        self._store(req, built, job.final)
        stored = self.store.get(built.response_id)
        assert stored is not None
        stored.job = job

    def _store(self, req: GenRequest, built: responses_out.Built, final: dict[str, Any]) -> None:
        own_input = req.conversation
        # the items as sent, with ids (a conversation's turn shares its items' ids); built only
        # for stored responses so the unstored request path stays lean
        held = req.new_items or responses_in.held_items(
            req.body.get("input", []),
            "input",
            [s for s in req.conversation if s.role == "function_call"],
            self._reasoning_items,
        )
        self.store.put(
            built.response_id,
            StoredResponse(final, [*own_input, *built.segments], [item for item, _ in held]),
        )
        for item, seg in zip(built.output, built.segments, strict=False):
            if item["type"] == "reasoning":
                _bounded_put(self._reasoning_items, item["id"], seg)

    def _append_turn(self, req: GenRequest, built: responses_out.Built) -> None:
        """Add a finished turn's input and output items to its conversation (if it still
        exists: it may have been deleted while the response ran)."""
        conv = self.conversations.get(req.conversation_id or "")
        if conv is None:
            return
        conv.extend(req.new_items)
        # as stored, a reasoning item shows its encrypted content only when a listing asks
        shown = [{k: v for k, v in o.items() if k != "encrypted_content"} for o in built.output]
        conv.extend(list(zip(shown, ([s] for s in built.segments), strict=True)))
        for item, seg in zip(built.output, built.segments, strict=True):
            if item["type"] == "reasoning":
                # a conversation keeps its reasoning items: replaying one by id works
                _bounded_put(self._reasoning_items, item["id"], seg)

    def conversation_call(self, t0: float, call: Callable[[], dict[str, Any]]) -> Plan:
        """A Conversations API endpoint: its body, or its :class:`ApiError`."""
        return self.object_call(t0, call, api="conversations")

    def object_call(self, t0: float, call: Callable[[], dict[str, Any]], *, api: str) -> Plan:
        """An endpoint on stored objects (conversations, chat completions): its body, or its
        :class:`ApiError`."""
        try:
            return self.plan_json(t0, call(), api=api)
        except ApiError as err:
            return self.error_plan(t0, err, api=api)

    def _fault_reply(
        self,
        req: GenRequest,
        t0: float,
        req_id: str,
        fault: str,
        timing: Timing,
        rng: random.Random,
    ) -> Plan:
        at = timing.offset_s(-1)
        if fault == "rate_limit":
            wait_ms = max(1, round(self.profile.api(req.api).faults.retry_after_ms.sample(rng)))
            err = ApiError(
                429,
                f"Rate limit reached for {req.model.id} in organization org-emulator on "
                f"requests per min (RPM): Limit {self.profile.rate_limits.requests_per_min}, "
                f"Used {self.profile.rate_limits.requests_per_min}, Requested 1. Please try "
                f"again in {wait_ms}ms.",
                type="requests",
                code="rate_limit_exceeded",
                headers=(
                    (b"retry-after", str(math.ceil(wait_ms / 1000)).encode()),
                    (b"retry-after-ms", str(wait_ms).encode()),
                ),
            )
            return self.error_plan(
                t0,
                err,
                api=req.api,
                model=req.model.id,
                at_s=at,
                fault=fault,
                exhausted=wait_ms / 1000,
                req_id=req_id,
            )
        status, message, kind = _FAULT_ERRORS[fault]
        return self.error_plan(
            t0,
            ApiError(status, message, type=kind),
            api=req.api,
            model=req.model.id,
            at_s=at,
            fault=fault,
            req_id=req_id,
        )

    def _cut_index(self, frames: Sequence[tuple[Any, Any, bool]], rng: random.Random) -> int:
        """Frame index a stream fault happens before: a delta in the middle of the reply."""
        deltas = [i for i, f in enumerate(frames) if f[2]]
        if len(deltas) >= 3:
            return deltas[rng.randint(1, len(deltas) - 2)]
        return deltas[-1] if deltas else max(0, len(frames) - 1)

    def _chat_stream(
        self, out: _Delivery, use: dict[str, Any], fault: str | None, cid: str | None
    ) -> None:
        plan = out.plan
        frames = chat.stream_frames(out.req, out.reply, use, cid)
        ticked: list[tuple[int, bytes, bool]] = list(frames)
        if fault in _STREAM_FAULTS:
            cut = self._cut_index(frames, out.rng)
            tick = frames[cut][0]
            ticked = ticked[:cut]
            if fault == "stream_cut":
                plan.cut = True
            else:
                ticked.append((tick, chat.error_frame(_STREAM_ERROR), False))
        else:
            ticked.append((frames[-1][0], chat.DONE, False))
        _group(plan, ticked, out.timing.offset_s)

    def _responses_stream(
        self, out: _Delivery, built: responses_out.Built, fault: str | None
    ) -> None:
        plan, req = out.plan, out.req
        events = responses_out.events(req, out.reply, built)
        if fault in _STREAM_FAULTS:
            cut = self._cut_index(events, out.rng)
            tick = events[cut][0]
            events = events[:cut]
            if fault == "response_failed":
                events.append((tick, responses_out.failed_event(req, built, _STREAM_ERROR), False))
            elif fault == "error_event":
                events.append((tick, responses_out.error_event(_STREAM_ERROR), False))
            else:
                plan.cut = True
        data = responses_out.serialize([e[1] for e in events])
        _group(
            plan, [(e[0], d, e[2]) for e, d in zip(events, data, strict=True)], out.timing.offset_s
        )


def _reasoning_tokens(segments: list[Segment]) -> int:
    return sum(s.placeholder_tokens for s in segments if s.role == "reasoning")


def json_object(raw: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object (else OpenAI's 400 for an unparsable body)."""
    try:
        body = jsonio.loads(raw)
    except ValueError:
        raise invalid(_BAD_JSON) from None
    if not isinstance(body, dict):
        raise invalid(_BAD_JSON)
    return body


def _instant(api: ApiProfile, time_scale: float) -> Timing | None:
    """The all-zero timing of an API whose profile cannot delay or fail, else None."""
    delays = (api.queue_ms, api.ttft_ms, api.cold_penalty_ms, api.per_token_ms)
    if any(d.median > 0 for d in delays) or api.prefill_ms_per_1k_tokens or api.faults.any:
        return None
    return Timing(0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, time_scale)


def _group(
    plan: Plan, frames: Sequence[tuple[Any, bytes, bool]], offset_s: Callable[[Any], float]
) -> None:
    """Coalesce frames due at the same tick into one write; mark the first delta's write.

    A frame's tick is an output-token index (``offset_s``: the timing's clock) or already an
    offset in seconds (``offset_s``: ``float``)."""
    groups: list[tuple[float, bytes]] = []
    first: int | None = None
    buf: list[bytes] = []
    current: Any = None
    for tick, data, is_delta in frames:
        if tick != current and buf:
            groups.append((offset_s(current if current is not None else -1), b"".join(buf)))
            buf = []
        current = tick
        buf.append(data)
        if is_delta and first is None:
            first = len(groups)
    if buf:
        groups.append((offset_s(current if current is not None else -1), b"".join(buf)))
    plan.groups = groups
    plan.first_group = first


def _starting_after(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise invalid(
            f"Invalid type for 'starting_after': expected an integer, but got '{raw}' instead.",
            param="starting_after",
            code="invalid_type",
        ) from None


def _no_response(response_id: str) -> ApiError:
    return not_found("Response", response_id, "response_id")
