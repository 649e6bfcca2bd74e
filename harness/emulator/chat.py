"""Chat Completions: request → :class:`GenRequest`, reply → body or ``chat.completion.chunk``s.

Streams send a role chunk, one chunk per output token (``delta.content``, or
``delta.tool_calls[].function.arguments`` for tool calls), a chunk with ``finish_reason``, the
usage chunk (empty ``choices``) when ``stream_options.include_usage`` is set, then
``data: [DONE]``. Mid-stream errors are an ``{"error": {...}}`` data line, as Chat sends them.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from functools import lru_cache
from typing import Any

from harness.emulator import jsonio
from harness.emulator.content import Reply
from harness.emulator.errors import (
    ApiError,
    invalid,
    missing_parameter,
    not_emulated,
    unsupported_parameter,
)
from harness.emulator.prompt import (
    GenRequest,
    OutputFormat,
    Segment,
    message_segments,
)
from harness.emulator.validate import (
    check_keys,
    effort_of,
    enum_value,
    gen_request,
    metadata_of,
    model_of,
    opt_bool,
    opt_int,
    output_format,
    require_json_word,
    sampling,
    stream_of,
    text_of_parts,
    tools_of,
    type_error,
    verbosity_of,
)
from harness.translate.enums import CHAT_SERVICE_TIERS

_TEXT_PARTS = frozenset({"text", "image_url", "input_audio", "file", "refusal"})
_ROLES = ("system", "developer", "user", "assistant", "tool", "function")

#: (output-token tick, SSE bytes, is a delta) per chunk.
Frames = list[tuple[int, bytes, bool]]


def _messages(raw: Any) -> list[Segment]:
    if raw is None:
        raise missing_parameter("messages")
    if not isinstance(raw, list):
        raise type_error("messages", "an array", raw)
    if not raw:
        raise invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length "
            "1, but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    segments: list[Segment] = []
    names: dict[str, str] = {}
    # OpenAI's rule: an assistant message's tool calls are answered by the tool messages that
    # directly follow it, each call once; anything else is a 400 naming the message.
    unanswered: list[str] = []
    calls_at = 0
    for i, msg in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise type_error(where, "an object", msg)
        role = msg.get("role")
        if role not in _ROLES:
            raise invalid(
                f"Invalid value: '{role}'. Supported values are: 'system', "
                "'assistant', 'user', 'function', 'tool', and 'developer'.",
                param=f"{where}.role",
                code="invalid_value",
            )
        if unanswered and role != "tool":
            raise _unanswered(calls_at, unanswered)
        content = msg.get("content")
        if role in ("tool", "function"):
            call_id = msg.get("tool_call_id") or msg.get("name") or ""
            if role == "tool" and not msg.get("tool_call_id"):
                raise missing_parameter(f"{where}.tool_call_id")
            if role == "tool":
                if call_id not in unanswered:
                    raise invalid(
                        "Invalid parameter: messages with role 'tool' must be a response to a "
                        "preceeding message with 'tool_calls'.",
                        param=f"messages.[{i}].role",
                    )
                unanswered.remove(call_id)
            text, _ = text_of_parts(content or "", f"{where}.content", allowed=_TEXT_PARTS)
            name = names.get(call_id, msg.get("name") or "")
            segments.append(Segment("tool", text, name=name, call_id=call_id))
            continue
        if content is None and not (role == "assistant" and msg.get("tool_calls")):
            raise missing_parameter(f"{where}.content")
        text, images = text_of_parts(content or "", f"{where}.content", allowed=_TEXT_PARTS)
        segments += message_segments(str(role), text, images)
        for j, call in enumerate(msg.get("tool_calls") or []):
            fn = call.get("function") if isinstance(call, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise missing_parameter(f"{where}.tool_calls[{j}].function")
            call_id = str(call.get("id", ""))
            names[call_id] = fn["name"]
            unanswered.append(call_id)
            calls_at = i
            segments.append(
                Segment(
                    "function_call", str(fn.get("arguments", "")), name=fn["name"], call_id=call_id
                )
            )
    if unanswered:
        raise _unanswered(calls_at, unanswered)
    return segments


def _unanswered(index: int, call_ids: list[str]) -> ApiError:
    return invalid(
        "An assistant message with 'tool_calls' must be followed by tool messages responding "
        "to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        + ", ".join(call_ids),
        param=f"messages.[{index}].role",
    )


def parse(body: dict[str, Any]) -> GenRequest:
    """Validate a ``POST /v1/chat/completions`` body (raises :class:`ApiError`)."""
    check_keys(body, "chat")
    model = model_of(body)
    conversation = _messages(body.get("messages"))
    temperature = sampling(body, model, "chat")
    if body.get("max_tokens") is not None and model.reasoning:
        raise unsupported_parameter("max_tokens", " Use 'max_completion_tokens' instead.")
    cap = opt_int(body, "max_completion_tokens", 1) or opt_int(body, "max_tokens", 1)
    effort = effort_of(body.get("reasoning_effort"), model, "reasoning_effort")
    verbosity = verbosity_of(body.get("verbosity"), model, "verbosity")
    enum_value(body.get("service_tier"), "service_tier", CHAT_SERVICE_TIERS)
    n = opt_int(body, "n", 1) or 1
    store = opt_bool(body, "store", False)
    if metadata_of(body) is not None and not store:
        raise invalid(
            "The 'metadata' parameter is only allowed when 'store' is enabled.", param="metadata"
        )
    if body.get("audio") is not None or "audio" in (body.get("modalities") or []):
        raise not_emulated("Audio output", param="audio")
    if body.get("web_search_options") is not None:
        raise not_emulated("Web search", param="web_search_options")
    stream = stream_of(body)
    options = body.get("stream_options")
    tools = tools_of(body, nested=True)
    if body.get("parallel_tool_calls") is not None:
        if model.o_series:
            raise unsupported_parameter("parallel_tool_calls")
        if not tools[0]:
            raise invalid(
                "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only "
                "allowed when 'tools' are specified.",
                param="parallel_tool_calls",
            )
    output = _response_format(body.get("response_format"), conversation)
    return gen_request(
        "chat",
        body,
        model,
        conversation,
        tools,
        output,
        max_output_tokens=cap,
        temperature=temperature,
        effort=effort,
        verbosity=verbosity,
        stream=stream,
        include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
        store=store,
        n=n,
    )


def _response_format(raw: Any, conversation: list[Segment]) -> OutputFormat | None:
    output = output_format(raw, "response_format", schema_key="json_schema")
    require_json_word(
        output,
        conversation,
        "'messages' must contain the word 'json' in some form, to use 'response_format' of "
        "type 'json_object'.",
        "messages",
    )
    return output


# --- replies ------------------------------------------------------------------------------------


_B64_TO_ALNUM = bytes.maketrans(b"+/=", b"xyz")


def completion_id() -> str:
    """A ``chatcmpl-…`` id like OpenAI's (29 letters and digits after the prefix)."""
    return "chatcmpl-" + base64.b64encode(os.urandom(24)).translate(_B64_TO_ALNUM)[:29].decode()


@lru_cache(maxsize=64)
def fingerprint(snapshot: str) -> str:
    """A stable ``system_fingerprint`` per model snapshot."""
    return "fp_" + hashlib.blake2b(snapshot.encode(), digest_size=5).hexdigest()


def usage(input_tokens: int, cached: int, written: int, reply: Reply, n: int = 1) -> dict[str, Any]:
    """Chat ``usage`` (cached tokens are a subset of prompt tokens; ``n`` choices bill ``n``
    completions)."""
    return {
        "prompt_tokens": input_tokens,
        "completion_tokens": n * reply.output_tokens,
        "total_tokens": input_tokens + n * reply.output_tokens,
        "prompt_tokens_details": {
            "cached_tokens": cached,
            "audio_tokens": 0,
            "cache_write_tokens": written,
        },
        "completion_tokens_details": {
            "reasoning_tokens": n * reply.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _tool_calls(reply: Reply) -> list[dict[str, Any]]:
    return [
        {
            "id": c.call_id,
            "type": "function",
            "function": {"name": c.name, "arguments": c.arguments},
        }
        for c in reply.tool_calls
    ]


def finish_reason(req: GenRequest, reply: Reply) -> str:
    """How a choice finished: a call forced by ``tool_choice`` naming a function finishes
    ``stop`` on Chat, as OpenAI's does (only a call the model chose is ``tool_calls``)."""
    if reply.finish == "tool_calls" and req.forced_tool is not None:
        return "stop"
    return reply.finish


def body(
    req: GenRequest, reply: Reply, use: dict[str, Any], cid: str | None = None
) -> dict[str, Any]:
    """The non-streaming ``chat.completion`` object (``n`` choices repeat the one reply);
    ``cid`` is its id when a stored copy must share it."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": None if reply.refusal else reply.text or None,
        "refusal": reply.text if reply.refusal else None,
        "annotations": [],
    }
    if reply.tool_calls:
        message["tool_calls"] = _tool_calls(reply)
    finish = finish_reason(req, reply)
    return {
        "id": cid or completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req.model.snapshot,
        "choices": [
            {"index": i, "message": message, "logprobs": None, "finish_reason": finish}
            for i in range(req.n)
        ],
        "usage": use,
        "service_tier": req.service_tier,
        "system_fingerprint": fingerprint(req.model.snapshot),
    }


def _data(obj: dict[str, Any]) -> bytes:
    return b"data: " + jsonio.dumps(obj) + b"\n\n"


def stream_frames(
    req: GenRequest, reply: Reply, use: dict[str, Any], cid: str | None = None
) -> Frames:
    """Chunks tagged with the output-token tick they wait for (-1: right after the headers);
    ``cid`` is the completion's id when a stored copy must share it."""
    head = {
        "id": cid or completion_id(),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": req.model.snapshot,
        "service_tier": req.service_tier,
        "system_fingerprint": fingerprint(req.model.snapshot),
    }
    if req.include_usage:
        head["usage"] = None

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        # n > 1: every choice gets the same delta at the same moment, one chunk each
        return b"".join(
            _data(
                {
                    **head,
                    "choices": [
                        {"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}
                    ],
                }
            )
            for i in range(req.n)
        )

    frames: Frames = []
    tick = 0
    if reply.tool_calls:
        first = True
        for index, call in enumerate(reply.tool_calls):
            opener: dict[str, Any] = {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call.call_id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": ""},
                    }
                ]
            }
            if first:
                opener = {"role": "assistant", "content": None, **opener, "refusal": None}
                first = False
            frames.append((tick, chunk(opener), False))
            for piece in call.pieces:
                frames.append(
                    (
                        tick,
                        chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                        True,
                    )
                )
                tick += 1
    else:
        frames.append((0, chunk({"role": "assistant", "content": "", "refusal": None}), False))
        field = "refusal" if reply.refusal else "content"
        for piece in reply.pieces:
            frames.append((tick, chunk({field: piece}), True))
            tick += 1
    last = max(0, tick - 1)
    frames.append((last, chunk({}, finish_reason(req, reply)), False))
    if req.include_usage:
        frames.append((last, _data({**head, "choices": [], "usage": use}), False))
    return frames


DONE = b"data: [DONE]\n\n"


def error_frame(message: str) -> bytes:
    """A mid-stream error as Chat sends it."""
    return _data(
        {
            "error": {
                "message": message,
                "type": "server_error",
                "param": None,
                "code": "server_error",
            }
        }
    )
