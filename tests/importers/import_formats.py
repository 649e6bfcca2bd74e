"""Writers for the round-trip test: chat request bodies as fine-tuning JSONL and as OTLP/JSON in
the three GenAI dialects, spelt as the conventions and OpenLLMetry spell them."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def reply(body: dict[str, Any]) -> str:
    """The logged answer to a body (identical bodies, identical answers)."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:8]
    return f"Logged reply {digest}"


def finetune_line(body: dict[str, Any]) -> dict[str, Any]:
    line: dict[str, Any] = {
        "messages": [*body["messages"], {"role": "assistant", "content": reply(body), "weight": 1}]
    }
    if "tools" in body:
        line["tools"] = body["tools"]
    if "parallel_tool_calls" in body:
        line["parallel_tool_calls"] = body["parallel_tool_calls"]
    return line


# --------------------------------------------------------------------------- OTLP/JSON


def any_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": key_values(value)}}
    raise TypeError(value)


def key_values(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": any_value(v)} for k, v in attrs.items() if v is not None]


def request_attributes(body: dict[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": body["model"],
    }
    for key, name in (
        ("temperature", "gen_ai.request.temperature"),
        ("top_p", "gen_ai.request.top_p"),
        ("seed", "gen_ai.request.seed"),
        ("stop", "gen_ai.request.stop_sequences"),
        ("n", "gen_ai.request.choice.count"),
    ):
        if key in body:
            value = body[key]
            attrs[name] = float(value) if key in ("temperature", "top_p") else value
    return attrs


def span(index: int, attrs: dict[str, Any]) -> dict[str, Any]:
    return {
        "traceId": f"{index:032x}",
        "spanId": f"{index + 1:016x}",
        "name": "chat",
        "kind": 3,
        "startTimeUnixNano": str(1_700_000_000_000_000_000 + index),
        "attributes": key_values(attrs),
        "events": [],
    }


def traces(spans: list[dict[str, Any]], logs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    resource = {"attributes": key_values({"service.name": "acme-support"})}
    doc: dict[str, Any] = {
        "resourceSpans": [
            {"resource": resource, "scopeSpans": [{"scope": {"name": "app"}, "spans": spans}]}
        ]
    }
    if logs:
        doc["resourceLogs"] = [
            {"resource": resource, "scopeLogs": [{"scope": {"name": "app"}, "logRecords": logs}]}
        ]
    return doc


def semconv_span(index: int, body: dict[str, Any]) -> dict[str, Any]:
    """Semantic conventions >= 1.37: messages of typed parts, system instructions and tools."""
    messages = body["messages"]
    system = [m for m in messages if m["role"] == "system"]
    inputs: list[dict[str, Any]] = []
    for m in messages:
        if m["role"] == "system":
            continue
        if m["role"] == "tool":
            part = {"type": "tool_call_response", "id": m["tool_call_id"], "response": m["content"]}
            inputs.append({"role": "tool", "parts": [part]})
            continue
        parts: list[dict[str, Any]] = []
        if m.get("content"):
            parts.append({"type": "text", "content": m["content"]})
        for call in m.get("tool_calls") or []:
            parts.append(
                {
                    "type": "tool_call",
                    "id": call["id"],
                    "name": call["function"]["name"],
                    "arguments": json.loads(call["function"]["arguments"]),
                }
            )
        inputs.append({"role": m["role"], "parts": parts})
    attrs = request_attributes(body)
    # recorded both ways the conventions allow: a JSON string and structured values
    attrs["gen_ai.input.messages"] = json.dumps(inputs)
    if system:
        attrs["gen_ai.system_instructions"] = [
            {"type": "text", "content": m["content"]} for m in system
        ]
    if "tools" in body:
        attrs["gen_ai.tool.definitions"] = json.dumps(
            [
                {
                    "type": "function",
                    "name": t["function"]["name"],
                    "description": t["function"]["description"],
                    "parameters": t["function"]["parameters"],
                }
                for t in body["tools"]
            ]
        )
    output = [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": reply(body)}],
            "finish_reason": "stop",
        }
    ]
    attrs["gen_ai.output.messages"] = json.dumps(output)
    return span(index, attrs)


def _event_bodies(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for m in body["messages"]:
        event: dict[str, Any] = {}
        if m.get("content") is not None:
            event["content"] = m["content"]
        if m.get("tool_calls"):
            event["tool_calls"] = m["tool_calls"]
        if m["role"] == "tool":
            event["id"] = m["tool_call_id"]
        out.append((f"gen_ai.{m['role']}.message", event))
    choice = {"index": 0, "finish_reason": "stop", "message": {"content": reply(body)}}
    out.append(("gen_ai.choice", choice))
    return out


def event_span(index: int, body: dict[str, Any], logs: list[dict[str, Any]]) -> dict[str, Any]:
    """The older per-message events: span events on even spans, log records on odd ones."""
    s = span(index, request_attributes(body))
    for n, (name, event) in enumerate(_event_bodies(body)):
        if index % 2 == 0:
            attrs = {"gen_ai.system": "openai", "gen_ai.event.content": json.dumps(event)}
            s["events"].append({"name": name, "attributes": key_values(attrs)})
        else:
            # listed out of order: the join orders them by time
            logs.insert(
                0,
                {
                    "timeUnixNano": str(1_700_000_000_000_000_000 + 1000 * index + n),
                    "traceId": s["traceId"],
                    "spanId": s["spanId"],
                    "eventName": name,
                    "attributes": key_values({"gen_ai.system": "openai"}),
                    "body": any_value(event),
                },
            )
    return s


def openllmetry_span(index: int, body: dict[str, Any]) -> dict[str, Any]:
    """OpenLLMetry's flattened prompt, function and completion attributes."""
    attrs = request_attributes(body)
    del attrs["gen_ai.operation.name"], attrs["gen_ai.provider.name"]
    attrs["llm.request.type"] = "chat"
    for i, m in enumerate(body["messages"]):
        attrs[f"gen_ai.prompt.{i}.role"] = m["role"]
        if m.get("content") is not None:
            attrs[f"gen_ai.prompt.{i}.content"] = m["content"]
        if m.get("tool_call_id"):
            attrs[f"gen_ai.prompt.{i}.tool_call_id"] = m["tool_call_id"]
        for j, call in enumerate(m.get("tool_calls") or []):
            attrs[f"gen_ai.prompt.{i}.tool_calls.{j}.id"] = call["id"]
            attrs[f"gen_ai.prompt.{i}.tool_calls.{j}.name"] = call["function"]["name"]
            attrs[f"gen_ai.prompt.{i}.tool_calls.{j}.arguments"] = call["function"]["arguments"]
    for i, t in enumerate(body.get("tools") or []):
        attrs[f"llm.request.functions.{i}.name"] = t["function"]["name"]
        attrs[f"llm.request.functions.{i}.description"] = t["function"]["description"]
        attrs[f"llm.request.functions.{i}.parameters"] = json.dumps(t["function"]["parameters"])
    # recorded as OpenLLMetry's OpenAI instrumentation records them
    attrs["llm.is_streaming"] = body.get("stream") or False
    if "user" in body:
        attrs["llm.user"] = body["user"]
    if "response_format" in body:
        schema = body["response_format"]["json_schema"]["schema"]
        attrs["gen_ai.request.structured_output_schema"] = json.dumps(schema)
    attrs["gen_ai.completion.0.role"] = "assistant"
    attrs["gen_ai.completion.0.content"] = reply(body)
    return span(index, attrs)


def otel_document(dialect: str, bodies: list[dict[str, Any]]) -> dict[str, Any]:
    logs: list[dict[str, Any]] = []
    if dialect == "semconv":
        spans = [semconv_span(i, b) for i, b in enumerate(bodies)]
    elif dialect == "events":
        spans = [event_span(i, b, logs) for i, b in enumerate(bodies)]
    else:
        spans = [openllmetry_span(i, b) for i, b in enumerate(bodies)]
    # a non-GenAI span the importer passes over
    spans.append(span(10_000, {"http.request.method": "POST"}))
    return traces(spans, logs)
