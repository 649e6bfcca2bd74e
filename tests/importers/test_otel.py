"""``harness.importers.otel``: the less common shapes of OTLP/JSON GenAI telemetry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from import_formats import any_value, key_values, semconv_span, span, traces

from harness.importers.otel import read_otel
from harness.importers.source import BadLine, SourceRequest, Unusable

MODEL = "gpt-4.1-mini"
BODY = {
    "model": MODEL,
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ],
}


def _read(tmp_path: Path, text: str) -> list[Any]:
    path = tmp_path / "t.json"
    path.write_text(text, encoding="utf-8")
    return list(read_otel(path))


def test_inference_details_log_record_joins_its_span(tmp_path: Path) -> None:
    chat = span(0, {"gen_ai.operation.name": "chat", "gen_ai.request.model": MODEL})
    details = {
        "traceId": chat["traceId"],
        "spanId": chat["spanId"],
        "eventName": "gen_ai.client.inference.operation.details",
        "attributes": key_values(
            {
                "gen_ai.input.messages": [
                    {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
                    {"role": "user", "parts": [{"type": "text", "content": "Hi"}]},
                ],
                "gen_ai.output.messages": [
                    {"role": "assistant", "parts": [{"type": "text", "content": "Hello"}]}
                ],
            }
        ),
    }
    (item,) = _read(tmp_path, json.dumps(traces([chat], [details])))
    assert item == SourceRequest(1, BODY, "Hello", id=f"span-{chat['spanId']}")


def test_one_document_per_line_and_a_bad_later_line(tmp_path: Path) -> None:
    first = json.dumps(traces([semconv_span(0, BODY)]))
    second = json.dumps(traces([semconv_span(1, BODY)]))
    items = _read(tmp_path, f"{first}\n{second}\n{{oops\n")
    assert [type(i).__name__ for i in items] == ["BadLine", "SourceRequest", "SourceRequest"]
    bad, one, two = items
    assert isinstance(bad, BadLine) and bad.line == 3
    assert (one.line, two.line) == (1, 2) and one.body == two.body == BODY


def test_a_part_the_importer_cannot_express_is_listed(tmp_path: Path) -> None:
    chat = span(
        0,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": MODEL,
            "gen_ai.input.messages": json.dumps(
                [
                    {
                        "role": "user",
                        "parts": [{"type": "blob", "modality": "image", "content": "AA=="}],
                    }
                ]
            ),
        },
    )
    (item,) = _read(tmp_path, json.dumps(traces([chat])))
    assert isinstance(item, Unusable)
    assert item.reason.endswith(
        "gen_ai.input.messages: a 'blob' part is not imported (text and tools only)"
    )


def test_agent_and_http_spans_are_passed_over(tmp_path: Path) -> None:
    agent = span(0, {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"})
    http = span(1, {"http.request.method": "POST"})
    chat = semconv_span(2, BODY)
    items = _read(tmp_path, json.dumps(traces([agent, http, chat])))
    assert [i.id for i in items] == [f"span-{chat['spanId']}"]


def test_event_body_as_log_record_kvlist_with_an_event_name_attribute(tmp_path: Path) -> None:
    chat = span(0, {"gen_ai.request.model": MODEL, "gen_ai.system": "openai"})
    logs = [
        {
            "timeUnixNano": str(10 + n),
            "traceId": chat["traceId"],
            "spanId": chat["spanId"],
            # the event name as an attribute: what SDKs wrote before LogRecord.eventName
            "attributes": key_values({"event.name": name}),
            "body": any_value(body),
        }
        for n, (name, body) in enumerate(
            [
                ("gen_ai.system.message", {"content": "Be brief."}),
                ("gen_ai.user.message", {"content": "Hi"}),
                ("gen_ai.choice", {"index": 0, "message": {"content": "Hello"}}),
            ]
        )
    ]
    (item,) = _read(tmp_path, json.dumps(traces([chat], logs[::-1])))
    assert item == SourceRequest(1, BODY, "Hello", id=f"span-{chat['spanId']}")


def test_events_without_content_are_capture_off(tmp_path: Path) -> None:
    chat = span(0, {"gen_ai.request.model": MODEL})
    chat["events"] = [
        {"name": "gen_ai.user.message", "attributes": key_values({"gen_ai.system": "openai"})}
    ]
    (item,) = _read(tmp_path, json.dumps(traces([chat])))
    assert isinstance(item, Unusable) and "content capture was off" in item.reason


def test_openllmetry_with_the_conventions_tool_definitions(tmp_path: Path) -> None:
    tool = {"type": "function", "name": "lookup", "description": "Look up", "parameters": {}}
    chat = span(
        0,
        {
            "gen_ai.request.model": MODEL,
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "Hi",
            "gen_ai.tool.definitions": json.dumps([tool]),
        },
    )
    (item,) = _read(tmp_path, json.dumps(traces([chat])))
    assert item.body["tools"] == [
        {
            "type": "function",
            "function": {"name": "lookup", "description": "Look up", "parameters": {}},
        }
    ]


def test_malformed_otlp_structures_are_listed_not_tracebacks(tmp_path: Path) -> None:
    broken = {"resourceSpans": [{"scopeSpans": ["not a scope"]}]}
    chat = semconv_span(0, BODY)
    chat["attributes"].append({"key": "gen_ai.request.seed", "value": {"intValue": "seven"}})
    items = _read(tmp_path, json.dumps(broken) + "\n" + json.dumps(traces([chat])) + "\n")
    bad, unusable = items
    assert isinstance(bad, BadLine) and bad.line == 1
    assert bad.problem.startswith("malformed OTLP/JSON (AttributeError: ")
    assert isinstance(unusable, Unusable) and unusable.line == 2
    assert unusable.reason.startswith(f"span {chat['spanId']}: malformed attributes (invalid")


def test_exception_texts_in_report_notes_are_scrubbed(tmp_path: Path) -> None:
    """An exception quoting a malformed value (here an API key) is listed without the key."""
    from harness.cli.app import main

    key = "sk-proj-Abc123def456GHI789jkl0"
    good = semconv_span(0, BODY)
    chat = semconv_span(1, BODY)
    chat["attributes"].append({"key": "gen_ai.request.seed", "value": {"intValue": key}})
    source = tmp_path / "t.json"
    source.write_text(json.dumps(traces([good, chat])) + "\n", encoding="utf-8")
    report = tmp_path / "report.json"
    out = tmp_path / "s.yaml"
    args = ["import", "otel", str(source), "--out", str(out), "--report", str(report)]
    assert main(args) == 0
    text = report.read_text(encoding="utf-8")
    assert "malformed attributes (invalid literal" in text  # the note is kept
    assert key not in text and key not in out.read_text(encoding="utf-8")
