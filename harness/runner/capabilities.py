"""What a target can serve: a handful of tiny requests, one per feature.

A compatible server is rarely complete: llama.cpp's ``llama-server`` serves both endpoints but
has no ``previous_response_id`` and no Conversations API (DESIGN §9). Without a probe, a run
against it records hundreds of identical failures for the arm it cannot serve, and the verdict
reads "Responses errors 100 %". ``harness run`` probes each live target once, records what it
found in ``meta.json`` and refuses (or, with ``--skip-unsupported``, skips) the arms and prompts
that need a missing feature before it sends anything.

Each probe is a plain HTTP request (no SDK), so what is recorded is what the server answered.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpcore2
import httpx2
from pydantic import BaseModel, ConfigDict, Field

from harness.arms import Arm
from harness.errors import TargetError
from harness.runner.plan import Plan, PlannedConversation
from harness.runner.probe import CACHEABLE_FILLER
from harness.runner.target import check_target, url_key
from harness.translate.request import ImagePart
from harness.transport.client import dropped_unanswered
from harness.transport.wire import CURRENT_RECORDER, SyncTimedBackend, WireRecorder

__all__ = [
    "ARM_NEEDS",
    "FEATURES",
    "Capabilities",
    "Feature",
    "check_plans",
    "conversation_needs",
    "emulator_capabilities",
    "probe_capabilities",
    "target_capabilities",
    "unsupported",
]

#: Every feature probed, in the order probed (and shown), with what it means.
FEATURES: dict[str, str] = {
    "models": "GET /models lists models",
    "chat": "POST /chat/completions answers",
    "chat_stream": "chat streams SSE chunks ending in [DONE]",
    "chat_stream_usage": "chat stream reports usage (stream_options.include_usage)",
    "responses": "POST /responses answers",
    "responses_stream": "Responses streams typed events ending in response.completed",
    "sequence_number": "Responses stream events carry sequence_number",
    "cached_tokens": "a repeated ≥1,024-token prompt reports cached tokens",
    "store": "a stored response can be retrieved (GET /responses/{id})",
    "previous_response_id": "a response can continue a stored one (previous_response_id)",
    "json_schema": "structured output with a strict JSON schema, both APIs",
    "tools": "function tools, both APIs",
    "images": "image input (a 1×1 PNG), both APIs",
    "conversations": "the Conversations API (POST /conversations)",
    "background": "background responses (background: true, then GET /responses/{id})",
}

#: Features each arm needs on every request, beyond what its prompts ask for.
ARM_NEEDS: dict[str, tuple[str, ...]] = {
    "chat": ("chat",),
    "responses": ("responses",),
    "responses_chained": ("responses", "store", "previous_response_id"),
    "responses_conversation": ("responses", "conversations"),
}

_PNG_1X1 = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/"
    "iZk9HQAAAABJRU5ErkJggg=="
)
_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}
_TOOL_PARAMS = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}


class Feature(BaseModel):
    """One probed feature: supported (True/False), or None when it could not be told."""

    model_config = ConfigDict(extra="forbid")

    supported: bool | None
    detail: str = ""


class Capabilities(BaseModel):
    """What one target serves (``meta.json``'s ``capabilities``)."""

    model_config = ConfigDict(extra="forbid")

    target: str
    model: str
    probed_at: float = Field(description="Unix time of the probe")
    source: str = Field(default="probe", description="'probe', or 'built-in' for the emulator")
    features: dict[str, Feature]

    def supports(self, feature: str) -> bool:
        """Unknown (None) counts as supported: only a clear refusal stops a run."""
        found = self.features.get(feature)
        return found is None or found.supported is not False

    def reason(self, feature: str) -> str:
        found = self.features.get(feature)
        return found.detail if found is not None and found.detail else FEATURES.get(feature, "")


#: What the built-in emulator does not serve (a test probes it and compares).
_EMULATOR_LACKS: frozenset[str] = frozenset()


def emulator_capabilities(model: str = "gpt-4.1-mini") -> Capabilities:
    """What the built-in emulator serves, without probing it (a test checks the list against a
    real probe)."""
    return Capabilities(
        target="emulator",
        model=model,
        probed_at=time.time(),
        source="built-in",
        features={
            name: (
                Feature(supported=False, detail="not implemented by the emulator yet")
                if name in _EMULATOR_LACKS
                else Feature(supported=True, detail="built-in emulator")
            )
            for name in FEATURES
        },
    )


def unsupported(caps: Capabilities, needs: Iterable[str]) -> list[str]:
    """The features of ``needs`` that ``caps`` clearly lacks, in probe order."""
    wanted = set(needs)
    return [f for f in FEATURES if f in wanted and not caps.supports(f)]


# --- the probe ----------------------------------------------------------------------------------


class _Http:
    """A small synchronous JSON/SSE client: what the server answered, as it answered."""

    def __init__(self, base_url: str, api_key: str, timeout_s: float) -> None:
        self.base_url = base_url.rstrip("/")
        transport = httpx2.HTTPTransport()
        pool = transport._pool
        if isinstance(pool, httpcore2.ConnectionPool):  # to tell a new connection from a reused one
            pool._network_backend = SyncTimedBackend(pool._network_backend)
        self._client = httpx2.Client(
            base_url=base_url.rstrip("/") + "/",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout_s,
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def _send(
        self, method: str, path: str, body: dict[str, Any] | None, *, stream: bool = False
    ) -> httpx2.Response:
        """One request, sent once more when the server dropped a kept-alive connection without
        a reply (the runner's rule: :func:`~harness.transport.client.dropped_unanswered`;
        llama-server does it, and the real-server tier then found /responses unsupported)."""
        rec = WireRecorder()
        token = CURRENT_RECORDER.set(rec)
        try:
            return self._client.send(
                self._client.build_request(method, path, json=body), stream=stream
            )
        except httpx2.RemoteProtocolError as exc:
            if not dropped_unanswered(exc):
                raise
        finally:
            CURRENT_RECORDER.reset(token)
        return self._client.send(self._client.build_request(method, path, json=body), stream=stream)

    def json(self, method: str, path: str, body: dict[str, Any] | None = None) -> _Answer:
        try:
            r = self._send(method, path, body)
        except httpx2.HTTPError as exc:  # a transport failure is an answer here
            return _Answer(None, None, f"{type(exc).__name__}: {exc}")
        try:
            data = r.json()
        except ValueError:
            data = None
        return _Answer(r.status_code, data, _error_text(r.status_code, data, r.text))

    def events(self, path: str, body: dict[str, Any]) -> _Answer:
        """POST a streaming request; ``data`` is the list of SSE data payloads."""
        payloads: list[str] = []
        try:
            r = self._send("POST", path, body, stream=True)
            try:
                if r.status_code != 200:
                    r.read()
                    try:
                        data = r.json()
                    except ValueError:
                        data = None
                    return _Answer(r.status_code, data, _error_text(r.status_code, data, r.text))
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        payloads.append(line[5:].strip())
            finally:
                r.close()
        except httpx2.HTTPError as exc:
            return _Answer(None, payloads, f"{type(exc).__name__}: {exc}")
        return _Answer(200, payloads, "")


@dataclass(frozen=True)
class _Answer:
    """What one probe request got: the status (None: no answer), the body, an error line."""

    status: int | None
    data: Any
    error: str

    @property
    def ok(self) -> bool:
        return self.status == 200


def _error_text(status: int | None, data: Any, text: str) -> str:
    if status == 200:
        return ""
    message = ""
    if isinstance(data, dict):
        err = data.get("error")
        message = str(err.get("message") if isinstance(err, dict) else err or "")
    message = (message or text or "").strip().replace("\n", " ")
    return f"HTTP {status}: {message[:160]}" if status is not None else message[:160]


def _refused(answer: _Answer) -> Feature:
    return Feature(supported=False, detail=answer.error or "no answer")


def _events_json(payloads: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in payloads:
        if p and p != "[DONE]":
            try:
                event = json.loads(p)
            except ValueError:
                continue
            if isinstance(event, dict):
                out.append(event)
    return out


def _cached(usage: Any) -> int | None:
    if not isinstance(usage, dict):
        return None
    for key in ("prompt_tokens_details", "input_tokens_details"):
        details = usage.get(key)
        if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
            return int(details["cached_tokens"])
    return None


def probe_capabilities(
    base_url: str,
    api_key: str,
    *,
    model: str = "gpt-4.1-mini",
    target: str | None = None,
    timeout_s: float = 180.0,
) -> Capabilities:
    """Probe ``base_url`` feature by feature (about 22 small requests, ~4,400 input tokens in
    all)."""
    http = _Http(base_url, api_key, timeout_s)
    try:
        features = dict(_probe_all(http, model))
    finally:
        http.close()
    return Capabilities(
        target=target or base_url, model=model, probed_at=time.time(), features=features
    )


def _probe_all(http: _Http, model: str) -> Iterator[tuple[str, Feature]]:
    hello = [{"role": "user", "content": "Reply with OK."}]

    models = http.json("GET", "models")
    if models.status is None:  # nothing answered at all: not a missing feature but no server
        raise TargetError(
            f"cannot reach {http.base_url} (GET /models: {models.error.split(':')[0]}) — "
            "check --target and that the server is up"
        )
    ok_models = models.ok and isinstance(models.data, dict) and "data" in models.data
    yield "models", Feature(supported=ok_models, detail="" if ok_models else models.error)

    chat = http.json(
        "POST", "chat/completions", {"model": model, "messages": hello, "max_completion_tokens": 8}
    )
    chat_ok = chat.ok and isinstance(chat.data, dict) and bool(chat.data.get("choices"))
    yield "chat", Feature(supported=True) if chat_ok else _refused(chat)

    if chat_ok:
        stream = http.events(
            "chat/completions",
            {
                "model": model,
                "messages": hello,
                "max_completion_tokens": 8,
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        )
        chunks = _events_json(stream.data or [])
        done = bool(stream.data) and stream.data[-1] == "[DONE]"
        yield (
            "chat_stream",
            (
                Feature(supported=True)
                if stream.ok and chunks and done
                else Feature(supported=False, detail=stream.error or "no [DONE] at the end")
            ),
        )
        usage = any(isinstance(c.get("usage"), dict) for c in chunks)
        yield (
            "chat_stream_usage",
            Feature(supported=usage, detail="" if usage else "no chunk carried usage"),
        )
    else:
        yield "chat_stream", Feature(supported=None, detail="chat unavailable")
        yield "chat_stream_usage", Feature(supported=None, detail="chat unavailable")

    base = {"model": model, "max_output_tokens": 16}
    resp = http.json("POST", "responses", {**base, "input": "Reply with OK.", "store": False})
    resp_ok = resp.ok and isinstance(resp.data, dict) and resp.data.get("object") == "response"
    yield "responses", Feature(supported=True) if resp_ok else _refused(resp)

    if resp_ok:
        stream = http.events(
            "responses", {**base, "input": "Reply with OK.", "store": False, "stream": True}
        )
        events = _events_json(stream.data or [])
        kinds = [e.get("type") for e in events]
        completed = bool(kinds) and kinds[-1] in ("response.completed", "response.incomplete")
        yield (
            "responses_stream",
            (
                Feature(supported=True)
                if stream.ok and completed
                else Feature(supported=False, detail=stream.error or f"last event {kinds[-1:]}")
            ),
        )
        numbered = bool(events) and all(isinstance(e.get("sequence_number"), int) for e in events)
        yield (
            "sequence_number",
            Feature(
                supported=numbered, detail="" if numbered else "events without sequence_number"
            ),
        )
    else:
        yield "responses_stream", Feature(supported=None, detail="responses unavailable")
        yield "sequence_number", Feature(supported=None, detail="responses unavailable")

    yield "cached_tokens", _probe_cache(http, model, chat_ok, resp_ok)

    if resp_ok:
        yield from _probe_store(http, base)
    else:
        yield "store", Feature(supported=None, detail="responses unavailable")
        yield "previous_response_id", Feature(supported=None, detail="responses unavailable")

    yield (
        "json_schema",
        _both(
            http,
            chat_ok,
            resp_ok,
            {
                "model": model,
                "messages": [{"role": "user", "content": "Answer OK in JSON."}],
                "max_completion_tokens": 32,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "probe", "schema": _SCHEMA, "strict": True},
                },
            },
            {
                **base,
                "max_output_tokens": 32,
                "input": "Answer OK in JSON.",
                "store": False,
                "text": {
                    "format": {
                        "type": "json_schema",
                        "name": "probe",
                        "schema": _SCHEMA,
                        "strict": True,
                    }
                },
            },
        ),
    )
    yield (
        "tools",
        _both(
            http,
            chat_ok,
            resp_ok,
            {
                "model": model,
                "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
                "max_completion_tokens": 32,
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "get_weather",
                            "description": "Weather of a city",
                            "parameters": _TOOL_PARAMS,
                        },
                    }
                ],
            },
            {
                **base,
                "max_output_tokens": 32,
                "input": "What is the weather in Paris?",
                "store": False,
                "tools": [
                    {
                        "type": "function",
                        "name": "get_weather",
                        "description": "Weather of a city",
                        "parameters": _TOOL_PARAMS,
                        "strict": True,
                    }
                ],
            },
        ),
    )
    yield (
        "images",
        _both(
            http,
            chat_ok,
            resp_ok,
            {
                "model": model,
                "max_completion_tokens": 8,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "What colour is this?"},
                            {"type": "image_url", "image_url": {"url": _PNG_1X1}},
                        ],
                    }
                ],
            },
            {
                **base,
                "store": False,
                "input": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_text", "text": "What colour is this?"},
                            {"type": "input_image", "image_url": _PNG_1X1, "detail": "low"},
                        ],
                    }
                ],
            },
        ),
    )
    conv = http.json("POST", "conversations", {})
    if conv.ok and isinstance(conv.data, dict) and conv.data.get("object") == "conversation":
        http.json("DELETE", f"conversations/{conv.data['id']}")
        yield "conversations", Feature(supported=True)
    else:
        yield "conversations", _refused(conv)
    yield "background", _probe_background(http, base)


def _both(
    http: _Http,
    chat_ok: bool,
    resp_ok: bool,
    chat_body: dict[str, Any],
    responses_body: dict[str, Any],
) -> Feature:
    """A feature both APIs must serve; the first refusal is the detail."""
    failures: list[str] = []
    if chat_ok:
        a = http.json("POST", "chat/completions", chat_body)
        if not a.ok:
            failures.append(f"chat: {a.error}")
    if resp_ok:
        a = http.json("POST", "responses", responses_body)
        if not a.ok:
            failures.append(f"responses: {a.error}")
    if not chat_ok and not resp_ok:
        return Feature(supported=None, detail="neither endpoint available")
    return Feature(supported=not failures, detail="; ".join(failures))


def _probe_cache(http: _Http, model: str, chat_ok: bool, resp_ok: bool) -> Feature:
    """The same fresh long prompt twice: does the second report cached tokens?"""
    prompt = f"[probe {secrets.token_hex(4)}] {CACHEABLE_FILLER}"
    seen: int | None = None
    for attempt in range(2):
        if attempt:
            time.sleep(0.5)  # let the cache write land before the repeat
        if chat_ok:
            a = http.json(
                "POST",
                "chat/completions",
                {
                    "model": model,
                    "max_completion_tokens": 4,
                    "messages": [
                        {"role": "system", "content": prompt},
                        {"role": "user", "content": "Reply with OK."},
                    ],
                },
            )
        elif resp_ok:
            a = http.json(
                "POST",
                "responses",
                {
                    "model": model,
                    "max_output_tokens": 16,
                    "store": False,
                    "instructions": prompt,
                    "input": "Reply with OK.",
                },
            )
        else:
            return Feature(supported=None, detail="neither endpoint available")
        if not a.ok or not isinstance(a.data, dict):
            return Feature(supported=None, detail=a.error)
        seen = _cached(a.data.get("usage"))
    if seen is None:
        return Feature(supported=False, detail="usage has no cached_tokens field")
    return Feature(
        supported=seen > 0, detail=f"repeat reported {seen} cached tokens" if seen else ""
    )


def _probe_background(http: _Http, base: dict[str, Any]) -> Feature:
    """A background create answers a response marked ``background`` that GET returns; it is
    cancelled (if still running) and deleted at once."""
    created = http.json(
        "POST", "responses", {**base, "input": "Say OK.", "background": True, "store": True}
    )
    data = created.data if created.ok and isinstance(created.data, dict) else {}
    rid = data.get("id")
    if not isinstance(rid, str) or data.get("background") is not True:
        return (
            _refused(created)
            if not created.ok
            else Feature(supported=False, detail="the reply is not a background response")
        )
    got = http.json("GET", f"responses/{rid}")
    if data.get("status") in ("queued", "in_progress"):
        http.json("POST", f"responses/{rid}/cancel")
    http.json("DELETE", f"responses/{rid}")
    ok = got.ok and isinstance(got.data, dict) and got.data.get("id") == rid
    return Feature(supported=True) if ok else _refused(got)


def _probe_store(http: _Http, base: dict[str, Any]) -> Iterator[tuple[str, Feature]]:
    first = http.json("POST", "responses", {**base, "input": "Say one word.", "store": True})
    rid = first.data.get("id") if first.ok and isinstance(first.data, dict) else None
    if not isinstance(rid, str):
        yield "store", _refused(first)
        yield "previous_response_id", Feature(supported=None, detail="no stored response")
        return
    got = http.json("GET", f"responses/{rid}")
    stored = got.ok and isinstance(got.data, dict) and got.data.get("id") == rid
    yield "store", Feature(supported=True) if stored else _refused(got)
    chained = http.json(
        "POST",
        "responses",
        {**base, "input": "And another.", "store": False, "previous_response_id": rid},
    )
    yield "previous_response_id", Feature(supported=True) if chained.ok else _refused(chained)
    http.json("DELETE", f"responses/{rid}")


# --- what a plan needs ----------------------------------------------------------------------------


def conversation_needs(conv: PlannedConversation) -> set[str]:
    """Features one planned conversation needs of its target."""
    needs = set(ARM_NEEDS.get(Arm.of(conv.arm).base, ()))
    if conv.base.params.store:
        needs.add("store")
    request = conv.base
    if request.params.stream:
        needs.add("chat_stream" if conv.api == "chat" else "responses_stream")
    if request.output_format is not None and request.output_format.type == "json_schema":
        needs.add("json_schema")
    if request.tools:
        needs.add("tools")
    if conv.background_poll_ms is not None:
        needs.add("background")
    contents = [m.content for m in request.messages] + [s.content for s in conv.steps]
    if any(isinstance(c, tuple) and any(isinstance(p, ImagePart) for p in c) for c in contents):
        needs.add("images")
    return needs


def check_plans(
    plans: list[Plan], caps: Capabilities, *, skip_unsupported: bool
) -> tuple[list[Plan], dict[str, str]]:
    """Plans without the conversations ``caps`` cannot serve, and what was skipped and why.

    Without ``skip_unsupported`` any such conversation is a :class:`TargetError` naming each arm
    (or prompt) and the missing feature — raised before anything is sent.
    """
    skipped: dict[str, str] = {}
    refused: tuple[str, str] | None = None  # the first: (what, why)
    kept: list[Plan] = []
    for plan in plans:
        keep: list[PlannedConversation] = []
        for conv in plan.conversations:
            missing = unsupported(caps, conversation_needs(conv))
            if not missing:
                keep.append(conv)
                continue
            arm_needs = set(ARM_NEEDS.get(Arm.of(conv.arm).base, ()))
            feature = missing[0]
            what = (
                f"arm {conv.arm}"
                if feature in arm_needs
                else f"prompt {conv.prompt_id} on arm {conv.arm}"
            )
            why = f"{feature} unsupported ({caps.reason(feature)})"
            skipped.setdefault(f"{plan.scenario}: {what}", why)
            refused = refused or (what, why)
        kept.append(plan.model_copy(update={"conversations": keep}))
    if refused is not None and not skip_unsupported:
        what, why = refused
        more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
        raise TargetError(
            f"{caps.target}: {why} → {what} cannot run{more}; "
            "use --skip-unsupported to run the rest, or `harness probe capabilities "
            "--target URL` to see what the target serves"
        )
    return kept, skipped


def target_capabilities(target: str, model: str) -> Capabilities:
    """What ``target`` serves: the emulator's known list, else a probe of the live target."""
    if target == "emulator":
        return emulator_capabilities(model)
    url = check_target(target)
    key = os.environ["OPENAI_API_KEY"] if target == "openai" else url_key(url)
    return probe_capabilities(url, key, model=model, target=target)
