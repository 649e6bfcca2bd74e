"""Responses API replies: the ``response`` object and its typed SSE events, in OpenAI's order.

Stream: ``response.created`` → ``response.in_progress`` → per output item
``response.output_item.added`` → (message) ``response.content_part.added`` →
``response.output_text.delta``… → ``response.output_text.done`` →
``response.content_part.done`` / (function call) ``response.function_call_arguments.delta``… →
``response.function_call_arguments.done`` → ``response.output_item.done``, then
``response.completed`` — or ``response.incomplete`` when ``max_output_tokens`` was reached.
Faults end a stream early with ``response.failed`` or an ``error`` event. ``sequence_number``
is assigned when the stream is finalised (after any fault truncation), so it always increases
by one.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from harness.emulator import jsonio
from harness.emulator.content import Reply, encrypted_reasoning
from harness.emulator.prompt import GenRequest, Segment, decode_pieces, encode

#: (output-token tick, event without sequence_number, is a delta) per event.
Events = list[tuple[int, dict[str, Any], bool]]


#: the reasoning summary of a request that asks for one (``reasoning.summary``)
SUMMARY_TEXT = "**Working out the answer** Reading the question and planning a short reply."


def new_id(prefix: str) -> str:
    """An id like OpenAI's: ``resp_…``, ``msg_…``, ``fc_…``, ``rs_…`` + 48 hex digits."""
    return f"{prefix}_{os.urandom(24).hex()}"


@dataclass(slots=True)
class Built:
    """The finished output of one response: items, conversation segments and usage."""

    response_id: str
    created_at: int
    output: list[dict[str, Any]]
    segments: list[Segment]
    usage: dict[str, Any]
    status: str


def usage(input_tokens: int, cached: int, written: int, reply: Reply) -> dict[str, Any]:
    """Responses ``usage``; ``cache_write_tokens`` is required by the spec."""
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
        "output_tokens": reply.output_tokens,
        "output_tokens_details": {"reasoning_tokens": reply.reasoning_tokens},
        "total_tokens": input_tokens + reply.output_tokens,
    }


def build(req: GenRequest, reply: Reply, use: dict[str, Any]) -> Built:
    """Output items (final form) and the segments a stored chain continues from."""
    output: list[dict[str, Any]] = []
    segments: list[Segment] = []
    if req.model.reasoning:
        encrypted = encrypted_reasoning(reply.reasoning_tokens, reply.key)
        summary = [{"type": "summary_text", "text": SUMMARY_TEXT}] if req.reasoning_summary else []
        item: dict[str, Any] = {"id": new_id("rs"), "type": "reasoning", "summary": summary}
        if req.include_encrypted:
            item["encrypted_content"] = encrypted
        output.append(item)
        segments.append(Segment("reasoning", encrypted, placeholder_tokens=reply.reasoning_tokens))
    status = "incomplete" if reply.finish == "length" else "completed"
    for call in reply.tool_calls:
        output.append(
            {
                "id": new_id("fc"),
                "type": "function_call",
                "status": "completed",
                "arguments": call.arguments,
                "call_id": call.call_id,
                "name": call.name,
            }
        )
        segments.append(
            Segment("function_call", call.arguments, name=call.name, call_id=call.call_id)
        )
    if not reply.tool_calls and (reply.text or reply.finish != "length"):
        output.append(
            {
                "id": new_id("msg"),
                "type": "message",
                "status": status,
                "content": [_refusal_part(reply.text) if reply.refusal else _text_part(reply.text)],
                "role": "assistant",
            }
        )
        segments.append(Segment("assistant", reply.text))
    return Built(new_id("resp"), int(time.time()), output, segments, use, status)


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _refusal_part(text: str) -> dict[str, Any]:
    return {"type": "refusal", "refusal": text}


def response_object(
    req: GenRequest, built: Built, status: str, *, error: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``response`` object in a given lifecycle state (output/usage only when finished)."""
    body = req.body
    finished = status in ("completed", "incomplete")
    raw_reasoning = body.get("reasoning")
    reasoning: dict[str, Any] = raw_reasoning if isinstance(raw_reasoning, dict) else {}
    raw_text = body.get("text")
    text_cfg: dict[str, Any] = raw_text if isinstance(raw_text, dict) else {}
    fmt: dict[str, Any] = {"type": "text"}
    if req.output is not None and req.output.kind == "json_object":
        fmt = {"type": "json_object"}
    elif req.output is not None:
        raw = text_cfg.get("format") or {}
        fmt = {
            "type": "json_schema",
            "name": req.output.name,
            "schema": req.output.schema,
            "strict": bool(raw.get("strict", False)),
        }
        if raw.get("description") is not None:
            fmt["description"] = raw["description"]
    obj: dict[str, Any] = {
        "id": built.response_id,
        "object": "response",
        "created_at": built.created_at,
        "status": status,
        "background": body.get("background") is True,
        "completed_at": int(time.time()) if status == "completed" else None,
        "error": error,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": req.model.snapshot,
        "output": built.output if finished else [],
        "parallel_tool_calls": req.parallel_tool_calls,
        "previous_response_id": req.previous_response_id,
        "prompt_cache_key": req.prompt_cache_key,
        "prompt_cache_retention": body.get("prompt_cache_retention"),
        "reasoning": {
            "effort": (reasoning.get("effort") or "medium") if req.model.reasoning else None,
            "summary": reasoning.get("summary"),
        },
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": req.service_tier,
        "store": req.store,
        "temperature": body.get("temperature", 1.0),
        "text": {"format": fmt, "verbosity": text_cfg.get("verbosity") or "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": [
            {
                "type": "function",
                "name": t.name,
                "description": t.description or None,
                "parameters": t.parameters,
                "strict": True if t.strict is None else t.strict,
            }
            for t in req.tools
        ],
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "metadata": body.get("metadata") or {},
    }
    # The spec does not let these be null: leave them out until they have a value.
    if finished:
        obj["usage"] = built.usage
    if req.conversation_id is not None:
        obj["conversation"] = {"id": req.conversation_id}
    if isinstance(body.get("user"), str):
        obj["user"] = body["user"]
    return obj


def events(req: GenRequest, reply: Reply, built: Built) -> Events:
    """Stream events (without sequence numbers) tagged with the output-token tick they wait for.

    Tick -1 is "right after the headers"; tick k is "when output token k is due".
    """
    out: Events = []

    def add(tick: int, event: dict[str, Any], delta: bool = False) -> None:
        out.append((tick, event, delta))

    start = response_object(req, built, "in_progress")
    add(-1, {"type": "response.created", "response": start})
    add(-1, {"type": "response.in_progress", "response": start})
    tick = 0
    for index, item in enumerate(built.output):
        kind = item["type"]
        if kind == "reasoning":
            add(
                -1,
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": {**item, "summary": []},
                },
            )
            if item["summary"]:
                # the summary streams while the model reasons, before the first visible token:
                # output (first_output_ms), not a delta that TTFT counts
                _summary_events(add, item, index)
            add(0, {"type": "response.output_item.done", "output_index": index, "item": item})
            continue
        if kind == "function_call":
            call = next(c for c in reply.tool_calls if c.call_id == item["call_id"])
            add(
                tick,
                {
                    "type": "response.output_item.added",
                    "output_index": index,
                    "item": {**item, "status": "in_progress", "arguments": ""},
                },
            )
            for piece in call.pieces:
                add(
                    tick,
                    {
                        "type": "response.function_call_arguments.delta",
                        "item_id": item["id"],
                        "output_index": index,
                        "delta": piece,
                    },
                    True,
                )
                tick += 1
            last = max(0, tick - 1)
            add(
                last,
                {
                    "type": "response.function_call_arguments.done",
                    "item_id": item["id"],
                    "output_index": index,
                    "arguments": item["arguments"],
                    "name": item["name"],
                },
            )
            add(last, {"type": "response.output_item.done", "output_index": index, "item": item})
            continue
        ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
        add(
            tick,
            {
                "type": "response.output_item.added",
                "output_index": index,
                "item": {**item, "status": "in_progress", "content": []},
            },
        )
        if reply.refusal:
            add(tick, {"type": "response.content_part.added", **ids, "part": _refusal_part("")})
            for piece in reply.pieces:
                add(tick, {"type": "response.refusal.delta", **ids, "delta": piece}, True)
                tick += 1
            last = max(0, tick - 1)
            add(last, {"type": "response.refusal.done", **ids, "refusal": reply.text})
            add(
                last,
                {"type": "response.content_part.done", **ids, "part": _refusal_part(reply.text)},
            )
            add(last, {"type": "response.output_item.done", "output_index": index, "item": item})
            continue
        add(tick, {"type": "response.content_part.added", **ids, "part": _text_part("")})
        for piece in reply.pieces:
            add(
                tick,
                {"type": "response.output_text.delta", **ids, "delta": piece, "logprobs": []},
                True,
            )
            tick += 1
        last = max(0, tick - 1)
        add(last, {"type": "response.output_text.done", **ids, "text": reply.text, "logprobs": []})
        add(last, {"type": "response.content_part.done", **ids, "part": _text_part(reply.text)})
        add(last, {"type": "response.output_item.done", "output_index": index, "item": item})
    final = response_object(req, built, built.status)
    add(max(0, tick - 1), {"type": f"response.{built.status}", "response": final})
    return out


def _summary_events(add: Any, item: dict[str, Any], index: int) -> None:
    ids = {"item_id": item["id"], "output_index": index, "summary_index": 0}
    add(
        -1,
        {
            "type": "response.reasoning_summary_part.added",
            **ids,
            "part": {"type": "summary_text", "text": ""},
        },
    )
    for piece in decode_pieces(encode(SUMMARY_TEXT)):
        add(-1, {"type": "response.reasoning_summary_text.delta", **ids, "delta": piece})
    add(-1, {"type": "response.reasoning_summary_text.done", **ids, "text": SUMMARY_TEXT})
    add(
        -1,
        {
            "type": "response.reasoning_summary_part.done",
            **ids,
            "part": {"type": "summary_text", "text": SUMMARY_TEXT},
        },
    )


def failed_event(req: GenRequest, built: Built, message: str) -> dict[str, Any]:
    """``response.failed`` with a ``server_error``."""
    obj = response_object(req, built, "failed", error={"code": "server_error", "message": message})
    return {"type": "response.failed", "response": obj}


def error_event(message: str) -> dict[str, Any]:
    """An ``error`` stream event."""
    return {"type": "error", "code": "server_error", "message": message, "param": None}


def serialize(events_: list[dict[str, Any]]) -> list[bytes]:
    """SSE frames with ``sequence_number`` 0, 1, 2… in order."""
    frames = []
    for seq, event in enumerate(events_):
        event["sequence_number"] = seq
        frames.append(
            b"event: " + event["type"].encode() + b"\ndata: " + jsonio.dumps(event) + b"\n\n"
        )
    return frames
